#!/usr/bin/env python
"""The workspace under load: concurrent reviewers against ``fdnet serve``, and concurrent audit-log writers.

This is a benchmark, not a test (pytest ignores ``benchmarks/``; tests/test_bench_workspace.py runs it with
tiny settings). Usage::

    .venv/bin/python benchmarks/bench_workspace.py                       # 8 reviewers for 30 s, 4 writers
    .venv/bin/python benchmarks/bench_workspace.py --reviewers 16 --duration 60 --people 20000
    .venv/bin/python benchmarks/bench_workspace.py --pg postgresql+psycopg://user@host/db --json out.json

Prepared once, untimed: a synthetic city of ``--people`` people (``fdnet.synth``, seed 0) run under the
default policy into a run folder ``r1`` under ``--workdir`` (a temporary folder by default); a fresh SQLite
audit database there, with one account per reviewer (alternately prosecutor and supervisor).

Part 1, reviewers: the real server (``python -m fdnet serve`` in a subprocess, loopback, a free port) and
``--reviewers`` threads, each with its own httpx client: it signs in (``POST /login``: argon2 and a sign-in
entry), reads its CSRF token, then until ``--duration`` seconds have passed cycles through four requests:
the custom-notification list page (``list_page``), a candidate's page with the explanation and ego network
(``candidate_page``), the list as JSON (``list_api``) and a review posted to the API (``review``: ``defer``
with a reason). Every page and list answer is itself an audit entry (a release), so every request but the
session read writes to the log. Reported per request kind: count, p50, p95 and max latency, and the
throughput of all requests together; any answer that is not 2xx is counted as an error. Afterwards the audit
log must verify and hold exactly one review entry per 201 answer.

Part 2, writers: ``--writers`` operating-system processes, started together, each appending ``--writes``
entries (reviews and outreach outcomes, alternately) straight through ``fdnet.audit.log.AuditLog`` to one
database: the SQLite file, and PostgreSQL where reachable (``--pg URL``; ``--pg auto``, the default, starts a
throwaway cluster from /usr/lib/postgresql/*/bin when it can; ``--pg off``). Checked: ``AuditLog.verify().ok``,
and that the writes got ``writers x writes`` distinct sequence numbers. Reported: the wall time and writes per
second.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

PASSWORD = "benchmark password, long enough"
KINDS = ("list_page", "candidate_page", "list_api", "review")


# ---------------------------------------------------------------------------- preparation

def prepare(workdir: Path, people: int, reviewers: int) -> dict:
    """The run folder, the SQLite audit database and the reviewers' accounts."""
    from fdnet.audit.log import AuditLog
    from fdnet.run import run
    from fdnet.synth import generate_city, write_city
    from fdnet.workspace.accounts import Accounts
    data, runs = workdir / "data", workdir / "runs"
    write_city(generate_city(n_people=people, seed=0), data)
    runs.mkdir(parents=True)
    r = run(data)
    r.write(runs / "r1")
    cn = [str(x) for x in r.lists["custom_notifications"]["person_id"]]
    sr = [str(x) for x in r.lists["service_referrals"]["person_id"]]
    if not cn or not sr:
        raise SystemExit(f"the {people}-people city has no custom-notification candidate or no service "
                         "referral: use more --people")
    url = f"sqlite:///{workdir / 'audit.sqlite'}"
    acc = Accounts(AuditLog(url).ensure())
    users = []
    for i in range(reviewers):
        role = "prosecutor" if i % 2 == 0 else "supervisor"
        acc.add(f"rev{i}", role, PASSWORD, by="benchmark")
        users.append(f"rev{i}")
    return {"runs": runs, "run_dir": runs / "r1", "url": url, "cn": cn, "sr": sr, "users": users}


def _env() -> dict[str, str]:
    import fdnet
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(fdnet.__file__).resolve().parent.parent) + os.pathsep + env.get("PYTHONPATH", "")
    return env


@contextmanager
def server(runs: Path, url: str, log_path: Path):
    """``fdnet serve`` on a free loopback port (:func:`fdnet.workspace.server.serving`); yields its base URL."""
    from fdnet.workspace.server import serving
    with serving(runs, url, env=_env(), log_path=log_path, timeout=120) as served:
        yield served.base


# ---------------------------------------------------------------------------- part 1: reviewers

def _reviewer(base: str, user: str, cn: list[str], offset: int, deadline_s: float, start: threading.Barrier,
              out: dict, lock: threading.Lock) -> None:
    import httpx
    lat: dict[str, list[float]] = {k: [] for k in KINDS + ("signin",)}
    errors: list[str] = []
    created = 0
    with httpx.Client(base_url=base, timeout=60) as c:
        start.wait()
        t = time.perf_counter()
        r = c.post("/login", data={"username": user, "password": PASSWORD})
        lat["signin"].append(time.perf_counter() - t)
        if r.status_code != 303 or "fdnet_session" not in c.cookies:
            errors.append(f"signin {r.status_code}")
            with lock:
                out[user] = {"lat": lat, "errors": errors, "created": 0}
            return
        token = c.get("/api/session").json()["csrf_token"]
        end = time.monotonic() + deadline_s
        i = 0
        while time.monotonic() < end:
            pid = cn[(offset + i) % len(cn)]
            kind = KINDS[i % len(KINDS)]
            t = time.perf_counter()
            if kind == "list_page":
                r = c.get("/runs/r1/lists/custom_notifications")
            elif kind == "candidate_page":
                r = c.get("/runs/r1/person?id=" + quote(pid, safe=""))
            elif kind == "list_api":
                r = c.get("/api/runs/r1/lists/custom_notifications")
            else:
                r = c.post("/api/runs/r1/reviews", headers={"X-CSRF-Token": token},
                           json={"list": "custom_notifications", "person_id": pid, "decision": "defer",
                                 "reason": f"load test: waiting for the case file ({user}, {i})",
                                 "reason_code": "need_more_information"})
            lat[kind].append(time.perf_counter() - t)
            if not 200 <= r.status_code < 300:
                errors.append(f"{kind} {r.status_code}: {r.text[:200]}")
            elif kind == "review":
                created += 1
            i += 1
    with lock:
        out[user] = {"lat": lat, "errors": errors, "created": created}


def _quantiles(xs: list[float]) -> dict:
    """Count, median, 95th percentile and maximum of latencies in seconds, as milliseconds.

    >>> _quantiles([0.01 * i for i in range(1, 101)])
    {'n': 100, 'p50_ms': 510.0, 'p95_ms': 950.0, 'max_ms': 1000.0}
    """
    if not xs:
        return {"n": 0, "p50_ms": None, "p95_ms": None, "max_ms": None}
    s = sorted(xs)

    def q(p: float) -> float:
        return s[min(len(s) - 1, int(round(p * (len(s) - 1))))] * 1000
    return {"n": len(s), "p50_ms": round(q(0.5), 1), "p95_ms": round(q(0.95), 1), "max_ms": round(s[-1] * 1000, 1)}


def reviewers_part(prep: dict, workdir: Path, duration: float) -> dict:
    from fdnet.audit.log import AuditLog
    users = prep["users"]
    before = len(AuditLog(prep["url"]).entries(kind="review"))
    with server(prep["runs"], prep["url"], workdir / "server.log") as base:
        out: dict = {}
        lock = threading.Lock()
        start = threading.Barrier(len(users))
        threads = [threading.Thread(target=_reviewer, args=(base, u, prep["cn"], 7 * k, duration, start, out, lock))
                   for k, u in enumerate(users)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
    per_kind = {k: _quantiles([x for o in out.values() for x in o["lat"][k]]) for k in ("signin",) + KINDS}
    n = sum(v["n"] for k, v in per_kind.items() if k != "signin")
    errors = [e for o in out.values() for e in o["errors"]]
    created = sum(o["created"] for o in out.values())
    log = AuditLog(prep["url"])
    rep = log.verify()
    reviews = log.entries(kind="review")
    seqs = [e.seq for e in reviews]
    return {"reviewers": len(users), "duration_s": duration, "wall_s": round(wall, 2), "requests": n,
            "throughput_rps": round(n / wall, 1) if wall else None, "per_kind": per_kind,
            "errors": len(errors), "error_samples": errors[:5], "reviews_created": created,
            "reviews_logged": len(reviews) - before, "distinct_seqs": len(set(seqs)) == len(seqs),
            "chain_ok": rep.ok, "entries": rep.entries}


# ---------------------------------------------------------------------------- part 2: concurrent writers

def _writer(url: str, run_dir: str, cn: list[str], sr: list[str], k: int, writes: int, as_of: str,
            go, q) -> None:
    try:
        from fdnet.audit.log import AuditLog
        log = AuditLog(url)
        go.wait()
        seqs = []
        for i in range(writes):
            if i % 2 == 0:
                e = log.record_review(run_dir, cn[(k + i) % len(cn)], "defer", f"writer {k} entry {i}",
                                      reviewer=f"writer{k}", list_name="custom_notifications", role="prosecutor")
            else:
                e = log.record_outreach(run_dir, sr[(k + i) % len(sr)], "outreach_attempted", as_of,
                                        f"writer{k}", notes=f"writer {k} entry {i}")
            seqs.append(e.seq)
        q.put((k, seqs, None))
    except BaseException as exc:   # reported by the parent
        q.put((k, [], f"{type(exc).__name__}: {exc}"))


def writers_part(url: str, prep: dict, writers: int, writes: int) -> dict:
    from fdnet.audit.log import AuditLog
    log = AuditLog(url).ensure()
    before = log.verify().entries
    as_of = json.loads((prep["run_dir"] / "manifest.json").read_text(encoding="utf-8"))["as_of"]
    ctx = mp.get_context("spawn")
    go, q = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(url, str(prep["run_dir"]), prep["cn"], prep["sr"], k, writes,
                                               as_of, go, q)) for k in range(writers)]
    for p in procs:
        p.start()
    time.sleep(1.0)   # let every process import fdnet and connect before the start signal
    t0 = time.perf_counter()
    go.set()
    results = [q.get(timeout=600) for _ in procs]
    wall = time.perf_counter() - t0
    for p in procs:
        p.join(timeout=60)
    failures = [r[2] for r in results if r[2]]
    seqs = [s for r in results for s in r[1]]
    rep = AuditLog(url).verify()
    return {"backend": url.split(":", 1)[0].split("+", 1)[0], "writers": writers, "writes_each": writes,
            "wall_s": round(wall, 2), "writes_per_s": round(len(seqs) / wall, 1) if wall else None,
            "written": len(seqs), "distinct_seqs": len(set(seqs)) == len(seqs) == writers * writes,
            "failures": failures[:5], "chain_ok": rep.ok, "entries": rep.entries, "entries_before": before}


@contextmanager
def throwaway_postgres():
    """A PostgreSQL cluster on a unix socket in a private folder (like tests/audit/conftest.py); yields the
    URL of a fresh database, or None when it cannot be started here."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        yield None
        return
    bin_ = found[-1].parent
    tmp = Path(tempfile.mkdtemp(prefix="fdnet-bench-pg-"))
    as_pg: list[str] = []
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        if shutil.which("runuser") is None:
            yield None
            return
        shutil.chown(tmp, "postgres")
        as_pg = ["runuser", "-u", "postgres", "--"]
    data, port = tmp / "data", 5439
    try:
        subprocess.run(as_pg + [str(bin_ / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E",
                                "UTF8", "--locale=C", "--no-sync"], check=True, capture_output=True, timeout=120)
        subprocess.run(as_pg + [str(bin_ / "pg_ctl"), "-D", str(data), "-l", str(tmp / "server.log"), "-w", "-t",
                                "60", "-o", f"-c listen_addresses='' -c unix_socket_directories={tmp} -p {port}",
                                "start"], check=True, capture_output=True, timeout=120)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError):
        shutil.rmtree(tmp, ignore_errors=True)
        yield None
        return
    try:
        import sqlalchemy as sa
        admin = sa.create_engine(f"postgresql+psycopg://postgres@/postgres?host={tmp}&port={port}",
                                 isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.exec_driver_sql("CREATE DATABASE fdnet_bench")
        admin.dispose()
        yield f"postgresql+psycopg://postgres@/fdnet_bench?host={tmp}&port={port}"
    finally:
        subprocess.run(as_pg + [str(bin_ / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------- main

def _print(res: dict) -> None:
    r = res["reviewers"]
    print(f"\nPart 1: {r['reviewers']} reviewers for {r['duration_s']:g} s against fdnet serve "
          f"({res['people']:,}-people city)")
    print(f"{'request':<16}{'n':>7}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}")
    for k, v in r["per_kind"].items():
        if v["n"]:
            print(f"{k:<16}{v['n']:>7}{v['p50_ms']:>10.1f}{v['p95_ms']:>10.1f}{v['max_ms']:>10.1f}")
    print(f"throughput {r['throughput_rps']} requests/s over {r['wall_s']} s; errors {r['errors']}; "
          f"reviews answered 201: {r['reviews_created']}, logged: {r['reviews_logged']}; "
          f"audit chain {'intact' if r['chain_ok'] else 'BROKEN'} ({r['entries']} entries)")
    for w in res["writers"]:
        print(f"\nPart 2 ({w['backend']}): {w['writers']} processes x {w['writes_each']} writes: "
              f"{w['wall_s']} s, {w['writes_per_s']} writes/s; distinct seqs: {w['distinct_seqs']}; "
              f"chain {'intact' if w['chain_ok'] else 'BROKEN'} ({w['entries']} entries)"
              + (f"; failures: {w['failures']}" if w["failures"] else ""))
    if res.get("pg_note"):
        print(res["pg_note"])


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--people", type=int, default=3000, help="synthetic city size (default 3000)")
    ap.add_argument("--reviewers", type=int, default=8, help="concurrent reviewers (default 8)")
    ap.add_argument("--duration", type=float, default=30, help="seconds of reviewing (default 30)")
    ap.add_argument("--writers", type=int, default=4, help="concurrent writer processes (default 4)")
    ap.add_argument("--writes", type=int, default=100, help="entries each writer appends (default 100)")
    ap.add_argument("--pg", default="auto", help="PostgreSQL for part 2: a SQLAlchemy URL, auto or off")
    ap.add_argument("--workdir", type=Path, default=None, help="a new or empty folder (default: temporary)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    ap.add_argument("--quiet", action="store_true", help="print nothing")
    a = ap.parse_args(argv)
    tmp = None
    if a.workdir is None:
        tmp = Path(tempfile.mkdtemp(prefix="fdnet-bench-ws-"))
        workdir = tmp
    else:
        workdir = a.workdir
        if workdir.exists() and any(workdir.iterdir()):
            raise SystemExit(f"--workdir {workdir} must be new or empty")
        workdir.mkdir(parents=True, exist_ok=True)
    try:
        prep = prepare(workdir, a.people, a.reviewers)
        res: dict = {"people": a.people, "reviewers": reviewers_part(prep, workdir, a.duration), "writers": []}
        res["writers"].append(writers_part(prep["url"], prep, a.writers, a.writes))
        if a.pg == "auto":
            with throwaway_postgres() as url:
                if url is None:
                    res["pg_note"] = "PostgreSQL: no throwaway cluster could be started here; part 2 ran on SQLite only"
                else:
                    res["writers"].append(writers_part(url, prep, a.writers, a.writes))
        elif a.pg != "off":
            res["writers"].append(writers_part(a.pg, prep, a.writers, a.writes))
        res["ok"] = (res["reviewers"]["chain_ok"] and res["reviewers"]["errors"] == 0
                     and res["reviewers"]["reviews_logged"] == res["reviewers"]["reviews_created"]
                     and res["reviewers"]["distinct_seqs"]
                     and all(w["chain_ok"] and w["distinct_seqs"] and not w["failures"] for w in res["writers"]))
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    if not a.quiet:
        _print(res)
    if a.json is not None:
        a.json.write_text(json.dumps(res, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return res


if __name__ == "__main__":
    sys.exit(0 if main()["ok"] else 1)
