#!/usr/bin/env python
"""Time fdnet's co-offending projection against its peers on the same data, in one run.

This is a benchmark, not a test (pytest ignores ``benchmarks/``). Usage::

    .venv/bin/python benchmarks/bench_projection.py                    # 1M people, all methods
    .venv/bin/python benchmarks/bench_projection.py --people 100000 --repeat 3
    .venv/bin/python benchmarks/bench_projection.py --methods fdnet,duckdb,polars --json out.json

What is compared (see benchmarks/README.md for the rules):

* input: three int32 arrays shared by every method, prepared once and cached
  (``inc`` incident code and ``person`` person code per involvement row with an
  offending role, in the city's row order; ``day`` days since 1970-01-01 per
  incident code);
* output: the undirected co-offending edge list ``a < b`` with the number of
  distinct shared incidents per pair, plus first/last day of the pair where
  the peer computes it. fdnet always computes, in the same call, first/last
  day, a time-decayed weight and the per-edge list of evidence incidents.

Every method runs in its own subprocess: once to check its result against
fdnet's (all checks happen before any timing), then a warm-up run and
``--repeat`` timed runs; peak memory is the subprocess's ``ru_maxrss``.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import gc
import json
import os
import platform
import resource
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()
CACHE_VERSION = 1
METHODS = ("fdnet", "pandas", "duckdb", "polars", "igraph", "scipy")
OFFENDING_ROLES = ("offender", "suspect", "arrestee")
THREADS = 2  # fdnet's kernel default; DuckDB and polars are given the same

COMPUTES = {
    "fdnet": "count, first/last, decayed, evidence; sorted",
    "pandas": "count, first/last",
    "duckdb": "count, first/last",
    "polars": "count, first/last",
    "igraph": "count",
    "scipy": "count",
}
THREADS_USED = {"fdnet": THREADS, "pandas": 1, "duckdb": THREADS, "polars": THREADS,
                "igraph": 1, "scipy": 1}


# ======================================================================================
# Input preparation (not timed)
# ======================================================================================

def prepare(n_people: int, seed: int, cache_dir: Path, log=print) -> tuple[Path, dict]:
    """Generate the city (or reuse the cache) and return (npz path, its metadata)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"city-v{CACHE_VERSION}-n{n_people}-seed{seed}.npz"
    if path.exists():
        with np.load(path) as z:
            meta = json.loads(str(z["meta"]))
        log(f"input: cached {path}")
        return path, meta

    import pandas as pd
    from fdnet.graph.layers import sorted_codes
    from fdnet.synth import generate_city

    log(f"input: generating the synthetic city, n_people={n_people:,} seed={seed} ...")
    t0 = time.perf_counter()
    city = generate_city(n_people=n_people, seed=seed)
    t_gen = time.perf_counter() - t0
    t0 = time.perf_counter()
    incidents, inv = city.incidents, city.involvements
    del city
    # incidents: dense codes in ascending incident_id order, days since epoch per code
    inc_code_rows, inc_ids = sorted_codes(incidents["incident_id"].to_numpy())
    day_rows = (pd.to_datetime(incidents["date"], format="%Y-%m-%d").to_numpy()
                .astype("datetime64[D]").astype(np.int64))
    day = np.empty(len(inc_ids), np.int32)
    day[inc_code_rows] = day_rows.astype(np.int32)
    # involvements: incident code via the incidents' code space, persons in ascending ID order
    inc_code = pd.Index(inc_ids).get_indexer(inv["incident_id"].to_numpy()).astype(np.int32)
    if (inc_code < 0).any():
        raise SystemExit("input: involvement rows reference unknown incidents")
    p_code, person_ids = sorted_codes(inv["person_id"].to_numpy())
    offending = np.isin(inv["role"].to_numpy(), OFFENDING_ROLES)
    inc_arr = np.ascontiguousarray(inc_code[offending], np.int32)
    person_arr = np.ascontiguousarray(p_code[offending], np.int32)
    meta = {
        "n_people": n_people, "seed": seed, "n_incidents": int(len(inc_ids)),
        "n_persons": int(len(person_ids)), "n_involvement_rows": int(len(inv)),
        "n_rows": int(len(inc_arr)), "generate_s": round(t_gen, 2),
        "prepare_s": round(time.perf_counter() - t0, 2), "cache_version": CACHE_VERSION,
    }
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, inc=inc_arr, person=person_arr, day=day, meta=np.array(json.dumps(meta)))
    os.replace(tmp, path)
    log(f"input: generated in {t_gen:.1f} s, prepared in {meta['prepare_s']:.1f} s, cached {path}")
    return path, meta


def load_input(path: Path):
    with np.load(path) as z:
        meta = json.loads(str(z["meta"]))
        return (np.ascontiguousarray(z["inc"]), np.ascontiguousarray(z["person"]),
                np.ascontiguousarray(z["day"]), meta["n_incidents"], meta["n_persons"], meta)


def workload_stats(path: Path) -> dict:
    """Sizes every method faces: rows, distinct (incident, person), pairs in the self-join."""
    inc, person, day, n_inc, n_per, meta = load_input(path)
    key = np.unique(inc.astype(np.int64) * n_per + person)
    k = np.bincount((key // n_per).astype(np.int64), minlength=n_inc).astype(np.int64)
    return {"rows": int(len(inc)), "distinct_rows": int(len(key)),
            "join_pairs": int((k * (k - 1) // 2).sum()), "max_incident_size": int(k.max(initial=0)),
            "n_incidents": n_inc, "n_persons": n_per}


# ======================================================================================
# The methods. Each setup() does the untimed part and returns (run, to_result):
# run() is what is timed; to_result(out) turns its output into numpy arrays (untimed).
# ======================================================================================

def setup_fdnet(inc, person, day, n_inc, n_per):
    from fdnet.graph.layers import project_incidence
    flags = np.ones(len(inc), np.uint8)          # offending rows only: flag 1
    weight = np.ones(n_inc, np.float64)

    def run():
        return project_incidence(inc, person, flags, n_inc, n_per, day, weight, mode=0)

    def to_result(out):
        src, dst, n, first, last, decayed, ev_indptr, ev_incident = out
        return {"a": src, "b": dst, "count": n, "first": first, "last": last}
    return run, to_result


def setup_pandas(inc, person, day, n_inc, n_per):
    import pandas as pd

    def run():
        df = pd.DataFrame({"inc": inc, "person": person}).drop_duplicates()
        df["day"] = day[df["inc"].to_numpy()]
        m = df.merge(df, on="inc", suffixes=("_a", "_b"))
        m = m[m["person_a"] < m["person_b"]]
        return m.groupby(["person_a", "person_b"], sort=False).agg(
            count=("inc", "size"), first=("day_a", "min"), last=("day_a", "max"))

    def to_result(out):
        r = out.reset_index()
        return {"a": r["person_a"].to_numpy(), "b": r["person_b"].to_numpy(),
                "count": r["count"].to_numpy(), "first": r["first"].to_numpy(),
                "last": r["last"].to_numpy()}
    return run, to_result


DUCKDB_SQL = """
WITH t AS (SELECT DISTINCT inc, person, day FROM inv)
SELECT a.person AS a, b.person AS b, count(*) AS n, min(a.day) AS first, max(a.day) AS last
FROM t AS a JOIN t AS b ON a.inc = b.inc AND a.person < b.person
GROUP BY a.person, b.person
"""


def setup_duckdb(inc, person, day, n_inc, n_per):
    import duckdb
    import pyarrow as pa
    con = duckdb.connect()
    con.execute(f"SET threads={THREADS}")
    con.execute("SET preserve_insertion_order=false")

    def run():
        con.register("inv", pa.table({"inc": inc, "person": person, "day": day[inc]}))
        try:
            return con.execute(DUCKDB_SQL).to_arrow_table()
        finally:
            con.unregister("inv")

    def to_result(out):
        return {k: out.column(c).to_numpy() for k, c in
                (("a", "a"), ("b", "b"), ("count", "n"), ("first", "first"), ("last", "last"))}
    return run, to_result


def setup_polars(inc, person, day, n_inc, n_per):
    import polars as pl

    def run():
        lf = pl.LazyFrame({"inc": inc, "person": person, "day": day[inc]}).unique(["inc", "person"])
        return (lf.join(lf.select("inc", pl.col("person").alias("person_b")), on="inc")
                .filter(pl.col("person") < pl.col("person_b"))
                .group_by("person", "person_b")
                .agg(pl.len().alias("count"), pl.col("day").min().alias("first"),
                     pl.col("day").max().alias("last"))
                .collect())

    def to_result(out):
        return {"a": out["person"].to_numpy(), "b": out["person_b"].to_numpy(),
                "count": out["count"].to_numpy(), "first": out["first"].to_numpy(),
                "last": out["last"].to_numpy()}
    return run, to_result


def setup_igraph(inc, person, day, n_inc, n_per):
    import igraph as ig
    # untimed: the deduplicated bipartite graph, persons 0..n_per-1 (type False),
    # incidents n_per..n_per+n_inc-1 (type True)
    key = np.unique(inc.astype(np.int64) * n_per + person)
    edges = np.column_stack([key % n_per, n_per + key // n_per]).astype(np.int64)
    g = ig.Graph(n=n_per + n_inc, edges=edges)
    g.vs["type"] = np.arange(n_per + n_inc) >= n_per
    del key, edges

    def run():
        return g.bipartite_projection(types="type", multiplicity=True, which=0)

    def to_result(out):
        el = np.array(out.get_edgelist(), dtype=np.int64).reshape(-1, 2)
        w = np.array(out.es["weight"] if out.ecount() else [], dtype=np.int64)
        return {"a": el[:, 0], "b": el[:, 1], "count": w}
    return run, to_result


def setup_scipy(inc, person, day, n_inc, n_per):
    import scipy.sparse as sp
    ones = np.ones(len(inc), np.int32)

    def run():
        B = sp.csr_array((ones, (inc, person)), shape=(n_inc, n_per))  # sums duplicates
        B.data[:] = 1                                                    # -> dedupe
        return sp.triu(B.T @ B, k=1, format="coo")

    def to_result(out):
        return {"a": out.row, "b": out.col, "count": out.data}
    return run, to_result


SETUPS = {"fdnet": setup_fdnet, "pandas": setup_pandas, "duckdb": setup_duckdb,
          "polars": setup_polars, "igraph": setup_igraph, "scipy": setup_scipy}
IMPORTS = {"fdnet": ["fdnet.graph.layers"], "pandas": ["pandas"], "duckdb": ["duckdb", "pyarrow"],
           "polars": ["polars"], "igraph": ["igraph"], "scipy": ["scipy.sparse"]}


# ======================================================================================
# Worker: one method in its own process. Speaks JSON lines on stdout.
# ======================================================================================

def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _vmhwm_mib() -> float:
    """Peak RSS of this process's address space (/proc/self/status VmHWM), as a cross-check."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def _emit(**kw):
    sys.stdout.write(json.dumps(kw) + "\n")
    sys.stdout.flush()


def worker(method: str, input_path: Path, mode: str, repeat: int, result_path: Path | None):
    import importlib
    for mod in IMPORTS[method]:
        importlib.import_module(mod)
    inc, person, day, n_inc, n_per, _ = load_input(input_path)
    gc.collect()
    baseline = _maxrss_mib()
    t0 = time.perf_counter()
    run, to_result = SETUPS[method](inc, person, day, n_inc, n_per)
    _emit(event="ready", baseline_mib=baseline, setup_s=time.perf_counter() - t0)

    if mode == "check":
        t0 = time.perf_counter()
        out = run()
        t = time.perf_counter() - t0
        res = {k: np.asarray(v) for k, v in to_result(out).items()}
        np.savez(result_path, **res)
        _emit(event="run", kind="check", seconds=t)
        _emit(event="done", peak_mib=_maxrss_mib(), baseline_mib=baseline, vmhwm_mib=_vmhwm_mib())
        return

    times, cpu = [], []
    for i in range(repeat + 1):
        gc.collect()
        c0 = time.process_time()
        t0 = time.perf_counter()
        out = run()
        t = time.perf_counter() - t0
        c = time.process_time() - c0
        del out
        if i:
            times.append(t)
            cpu.append(c)
        _emit(event="run", kind="timed" if i else "warmup", seconds=t, cpu_seconds=c)
    peak, hwm = _maxrss_mib(), _vmhwm_mib()
    stages = fdnet_stages(inc, person, day, n_inc, n_per, repeat) if method == "fdnet" else None
    _emit(event="done", peak_mib=peak, baseline_mib=baseline, vmhwm_mib=hwm, times=times,
          cpu_times=cpu, stages=stages)


def fdnet_stages(inc, person, day, n_inc, n_per, repeat):
    """fdnet's two stages timed apart: build_incidence, then project with 2 and with 1 thread.

    Each round builds the incidence, then projects it twice, once per thread count, the
    order alternating between rounds so neither count always gets the first (colder) call.
    """
    from fdnet import _core
    flags = np.ones(len(inc), np.uint8)
    weight = np.ones(n_inc, np.float64)
    keys = ("build_incidence", "project_2_threads", "project_1_thread")
    wall = {k: [] for k in keys}
    cpu = {k: [] for k in keys}
    faults = {k: [] for k in keys}
    entries = None

    def timed(key, keep, fn, *a, **kw):
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        c0, t0 = time.process_time(), time.perf_counter()
        out = fn(*a, **kw)
        t, c = time.perf_counter() - t0, time.process_time() - c0
        if keep:
            wall[key].append(t)
            cpu[key].append(c)
            faults[key].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
        return out

    rounds = max(repeat, 5)
    for i in range(rounds + 1):
        gc.collect()
        keep = i > 0
        I = timed("build_incidence", keep, _core.build_incidence, inc, person, flags, n_inc, n_per)
        i_indptr, i_person, i_flag, p_indptr, p_inc, p_flag = I
        args = (n_per, p_indptr, p_inc, p_flag, i_indptr, i_person, i_flag, day, weight, 0)
        for T in ((2, 1) if i % 2 else (1, 2)):
            out = timed(f"project_{T}_thread" + ("s" if T > 1 else ""), keep, _core.project,
                        *args, n_threads=T)
            entries = {"incidence_entries": int(len(i_person)), "edges": int(len(out[0])),
                       "evidence_entries": int(len(out[7]))}
            del out
        del I, args, i_indptr, i_person, i_flag, p_indptr, p_inc, p_flag
        _emit(event="stage")  # keeps the parent's per-step deadline moving
    return {"rounds": rounds, "wall": wall, "cpu": cpu, "minor_faults": faults, **(entries or {})}


# ======================================================================================
# Parent: run workers with a per-run deadline, check, time, report.
# ======================================================================================

def run_worker(method: str, input_path: Path, mode: str, repeat: int, timeout: float,
               result_path: Path | None, log) -> dict:
    """Run one worker; every step (setup, each run) must report within ``timeout`` s."""
    cmd = [sys.executable, str(HERE), "--worker", method, "--input", str(input_path),
           "--mode", mode, "--repeat", str(repeat)]
    if result_path is not None:
        cmd += ["--result", str(result_path)]
    # Launch through a small shell that forks the worker: on Linux a child's ru_maxrss
    # starts at the RSS of the process it was forked from (and a vfork+exec child's at its
    # parent's peak), so forking straight from this process, which may have generated a
    # city, would floor every worker's peak at ours. The shell is ~1 MiB.
    cmd = ["/bin/sh", "-c", '"$@"; rc=$?; exit $rc', "sh"] + cmd
    env = dict(os.environ)
    env.setdefault("POLARS_MAX_THREADS", str(THREADS))
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, env=env,
                                start_new_session=True)
        fd = proc.stdout.fileno()
        buf = b""
        events = []
        deadline = time.monotonic() + timeout
        status = None
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    status = "timeout"
                    break
                r, _, _ = select.select([fd], [], [], left)
                if not r:
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    try:
                        ev = json.loads(line)
                    except ValueError:
                        continue  # something a library printed; not ours
                    if not isinstance(ev, dict) or "event" not in ev:
                        continue
                    events.append(ev)
                    deadline = time.monotonic() + timeout
                    if ev["event"] == "run":
                        log(f"    {method} {ev['kind']}: {ev['seconds']:.3f} s")
        finally:
            if status == "timeout" or proc.poll() is None and sys.exc_info()[0] is not None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)  # the group we started: sh + worker
                except ProcessLookupError:
                    pass
        rc = proc.wait()
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    out = dict(method=method, events=events, returncode=rc)
    done = [e for e in events if e["event"] == "done"]
    if status == "timeout":
        out["status"] = "timeout"
        runs = [e for e in events if e["event"] == "run"]
        if not any(e["event"] == "ready" for e in events):
            step = "setup (imports, loading the input, untimed preparation)"
        elif mode == "check":
            step = "the correctness run"
        elif not runs:
            step = "the warm-up run"
        else:
            step = f"timed run {len(runs)}" if len(runs) <= repeat else "the fdnet stage runs"
        out["error"] = f"no report within {timeout:g} s during {step}"
    elif rc != 0 or not done:
        out["status"] = "error"
        out["error"] = (f"exit code {rc}" + (" (killed by signal %d)" % -rc if rc < 0 else "")
                        + ": " + "\n".join(stderr.strip().splitlines()[-5:]))
    else:
        out["status"] = "ok"
        out.update(done[0])
    ready = [e for e in events if e["event"] == "ready"]
    if ready:
        out["baseline_mib"] = ready[0]["baseline_mib"]
        out["setup_s"] = ready[0]["setup_s"]
    out["partial_times"] = [e["seconds"] for e in events if e["event"] == "run"
                            and e["kind"] in ("timed", "check")]
    return out


def normalise(res: dict) -> dict:
    """(a < b), sorted by (a, b), int64 arrays."""
    a = np.asarray(res["a"]).astype(np.int64)
    b = np.asarray(res["b"]).astype(np.int64)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    order = np.lexsort((hi, lo))
    out = {"a": lo[order], "b": hi[order], "count": np.asarray(res["count"]).astype(np.int64)[order]}
    for k in ("first", "last"):
        if k in res:
            out[k] = np.asarray(res[k]).astype(np.int64)[order]
    return out


def compare(ref: dict, got: dict, method: str) -> list[str]:
    """Differences between a method's normalised result and fdnet's (empty: identical)."""
    problems = []
    rk = ref["a"] * (1 << 32) + ref["b"]
    gk = got["a"] * (1 << 32) + got["b"]
    if len(np.unique(gk)) != len(gk):
        problems.append(f"{method}: its output repeats some (a, b) pairs")
    if not np.array_equal(rk, gk):
        problems.append(f"{method}: {len(gk):,} edges, fdnet has {len(rk):,}; the edge sets differ")
        for name, x, y in (("fdnet", rk, gk), (method, gk, rk)):
            only = np.setdiff1d(x, y)
            if len(only):
                eg = [(int(v >> 32), int(v & 0xFFFFFFFF)) for v in only[:5]]
                problems.append(f"  {len(only):,} pairs only in {name}, e.g. {eg}")
        return problems
    for k in ("count", "first", "last"):
        if k not in got:
            continue
        bad = np.flatnonzero(ref[k] != got[k])
        if len(bad):
            e = bad[0]
            problems.append(f"{method}: {k!r} differs on {len(bad):,} edges, first at edge "
                            f"({ref['a'][e]}, {ref['b'][e]}): fdnet {ref[k][e]}, {method} {got[k][e]}")
    return problems


def machine_info() -> dict:
    import importlib
    info = {"date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "nproc": os.cpu_count(), "affinity": len(os.sched_getaffinity(0)),
            "python": platform.python_version(), "platform": platform.platform()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["mem_gib"] = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    for name in ("numpy", "pandas", "scipy", "pyarrow", "polars", "duckdb", "igraph", "fdnet"):
        try:
            info[name] = getattr(importlib.import_module(name), "__version__", "?")
        except Exception as exc:  # noqa: BLE001
            info[name] = f"not importable ({type(exc).__name__})"
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS", "POLARS_MAX_THREADS"):
        info[var] = os.environ.get(var)
    info["loadavg_start"] = os.getloadavg()
    return info


def fmt_table(rows: list[list[str]], header: list[str], right: set[int]) -> str:
    w = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    def line(r):
        return "  ".join(str(c).rjust(w[i]) if i in right else str(c).ljust(w[i])
                         for i, c in enumerate(r))
    return "\n".join([line(header), line(["-" * x for x in w])] + [line(r) for r in rows])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--people", type=int, default=1_000_000, help="city size (default 1,000,000)")
    ap.add_argument("--seed", type=int, default=0, help="city seed (default 0)")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/fdnet-bench-cache"),
                    help="where the prepared input arrays are cached (default /tmp/fdnet-bench-cache)")
    ap.add_argument("--methods", default=",".join(METHODS),
                    help=f"comma-separated subset of {','.join(METHODS)} (fdnet is always run)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per method (default 3)")
    ap.add_argument("--timeout", type=float, default=300.0,
                    help="seconds allowed for each step of a method (setup, each run); "
                         "past it the method is recorded as 'timeout' (default 300)")
    ap.add_argument("--json", type=Path, help="save the results here")
    # internal: worker mode
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--input", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="time", help=argparse.SUPPRESS)
    ap.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        worker(args.worker, args.input, args.mode, args.repeat, args.result)
        return 0

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        ap.error(f"unknown method(s) {unknown}; choose from {list(METHODS)}")
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    methods = ["fdnet"] + [m for m in methods if m != "fdnet"]
    log = lambda *a: print(*a, flush=True)  # noqa: E731

    info = machine_info()
    log("== fdnet co-offending projection benchmark ==")
    log(f"date      {info['date']}")
    log(f"machine   nproc={info['nproc']} (affinity {info['affinity']}), {info.get('cpu', '?')}, "
        f"{info.get('mem_gib', '?')} GiB RAM, load average at start "
        + " ".join(f"{x:.2f}" for x in info["loadavg_start"]))
    log(f"versions  python {info['python']}, numpy {info['numpy']}, pandas {info['pandas']}, "
        f"scipy {info['scipy']}, pyarrow {info['pyarrow']}, polars {info['polars']}, "
        f"duckdb {info['duckdb']}, igraph {info['igraph']}, fdnet {info['fdnet']}")
    log(f"env       OPENBLAS_CORETYPE={info['OPENBLAS_CORETYPE']} OPENBLAS_L2_SIZE="
        f"{info['OPENBLAS_L2_SIZE']} (may be set on this machine; left as found)")

    input_path, meta = prepare(args.people, args.seed, args.cache, log)
    wl = workload_stats(input_path)
    log(f"workload  N={args.people:,} people (seed {args.seed}): {meta['n_involvement_rows']:,} "
        f"involvement rows, {wl['rows']:,} offending rows -> {wl['distinct_rows']:,} distinct "
        f"(incident, person); {wl['n_incidents']:,} incidents, {wl['n_persons']:,} persons; "
        f"self-join has {wl['join_pairs']:,} pairs a<b (largest incident: "
        f"{wl['max_incident_size']} offenders)")
    log(f"threads   fdnet {THREADS}, duckdb {THREADS}, polars {THREADS}; pandas, igraph, scipy 1")
    log(f"timeout   {args.timeout:g} s per step; repeat {args.repeat} timed runs after 1 warm-up\n")

    results = {m: {"method": m} for m in methods}
    with tempfile.TemporaryDirectory(prefix="fdnet-bench-") as tmp:
        # ---- 1. correctness, before any timing ------------------------------------------
        log("-- correctness: each method once, in its own process, compared with fdnet --")
        ref = None
        for m in methods:
            rp = Path(tmp) / f"{m}.npz"
            o = run_worker(m, input_path, "check", 1, args.timeout, rp, log)
            results[m]["check"] = {k: v for k, v in o.items() if k != "events"}
            if o["status"] != "ok":
                log(f"    {m}: {o['status']}" + (f" - {o.get('error')}" if o.get("error") else ""))
                if m == "fdnet":
                    raise SystemExit(f"ABORT: fdnet itself did not finish ({o['status']}): "
                                     f"{o.get('error', '')}")
                continue
            with np.load(rp) as z:
                got = normalise({k: z[k] for k in z.files})
            results[m]["edges"] = int(len(got["a"]))
            results[m]["check_s"] = o["partial_times"][0]
            if m == "fdnet":
                ref = got
                log(f"    fdnet: {len(ref['a']):,} edges (reference)")
                continue
            problems = compare(ref, got, m)
            if problems:
                log("\nABORT: results differ from fdnet's:\n  " + "\n  ".join(problems))
                raise SystemExit(2)
            cols = "a, b, count" + (", first, last" if "first" in got else "")
            log(f"    {m}: {len(got['a']):,} edges, identical to fdnet on ({cols})")
            del got
        del ref

    # ---- 2. timing --------------------------------------------------------------------
    log("\n-- timing: each method in its own process, 1 warm-up + "
        f"{args.repeat} timed runs --")
    for m in methods:
        if results[m]["check"]["status"] != "ok":
            results[m]["status"] = results[m]["check"]["status"]
            results[m]["note"] = "did not finish the correctness run"
            continue
        o = run_worker(m, input_path, "time", args.repeat, args.timeout, None, log)
        r = results[m]
        r["status"] = o["status"]
        r["baseline_mib"] = o.get("baseline_mib")
        r["setup_s"] = o.get("setup_s")
        if o["status"] == "ok":
            r["times"] = o["times"]
            r["cpu_times"] = o["cpu_times"]
            r["cpu_median_s"] = statistics.median(o["cpu_times"])
            r["best_s"] = min(o["times"])
            r["median_s"] = statistics.median(o["times"])
            r["peak_mib"] = o["peak_mib"]
            r["delta_mib"] = o["peak_mib"] - o["baseline_mib"]
            r["vmhwm_mib"] = o.get("vmhwm_mib")
            if m == "fdnet":
                r["stages"] = o["stages"]
        else:
            r["times"] = o["partial_times"]
            if o.get("error"):
                r["error"] = o["error"]
            log(f"    {m}: {o['status']}" + (f" - {o.get('error')}" if o.get("error") else ""))
    info["loadavg_end"] = os.getloadavg()

    # ---- 3. report --------------------------------------------------------------------
    f = results["fdnet"]
    rows = []
    for m in methods:
        r = results[m]
        if r.get("status") == "ok":
            ratio_b = r["best_s"] / f["best_s"] if f.get("best_s") else float("nan")
            ratio_m = r["median_s"] / f["median_s"] if f.get("median_s") else float("nan")
            r["ratio_best"], r["ratio_median"] = ratio_b, ratio_m
            rows.append([m, f"{r['best_s']:.3f}", f"{r['median_s']:.3f}", f"{ratio_b:.2f}x",
                         f"{ratio_m:.2f}x", f"{r['cpu_median_s']:.3f}", f"{r['peak_mib']:.0f}", f"{r['delta_mib']:.0f}",
                         f"{r.get('edges', 0):,}", str(THREADS_USED[m]), COMPUTES[m]])
        else:
            st = r.get("status", "?")
            rows.append([m, st, st, "-", "-", "-", "-", "-", f"{r['edges']:,}" if "edges" in r else "-",
                         str(THREADS_USED[m]), COMPUTES[m]])
    header = ["method", "best s", "median s", "ratio best", "ratio median", "cpu s", "peak RSS MiB",
              "peak-base MiB", "edges", "thr", "computes"]
    log(f"\n== results: N={args.people:,} people, {wl['distinct_rows']:,} incidence entries, "
        f"{results['fdnet'].get('edges', 0):,} co-offending edges; {info['date']} ==")
    log(fmt_table(rows, header, right={1, 2, 3, 4, 5, 6, 7, 8, 9}))
    base = f.get("baseline_mib")
    log(f"ratio = method time / fdnet time (>1: fdnet is faster). peak RSS = ru_maxrss of the "
        f"method's process; peak-base = minus its baseline after imports and loading the input "
        f"(fdnet's baseline {base:.0f} MiB). cpu s = median CPU time of the process over the timed runs "
        f"(all threads; less sensitive to other load than wall time)." if base else "")
    log("fdnet's time includes dedupe + both CSR views + kernel, and it also produces first/last "
        "day, the time-decayed weight and the per-edge evidence incident lists, sorted by (a, b).")
    if f.get("stages"):
        s = f["stages"]
        log(f"\n== fdnet stages ({s['rounds']} rounds; project runs twice per round on the "
            f"same incidence, 1 and 2 threads in alternating order) ==")
        srows = []
        for k in ("build_incidence", "project_2_threads", "project_1_thread"):
            w = s["wall"][k]
            srows.append([k, f"{min(w):.3f}", f"{statistics.median(w):.3f}",
                          f"{statistics.median(s['cpu'][k]):.3f}",
                          f"{statistics.median(s['minor_faults'][k]):,.0f}",
                          f"{min(w) / f['best_s'] * 100:.0f}%"])
        log(fmt_table(srows, ["stage", "best s", "median s", "cpu s", "page faults",
                              "of fdnet best"], right={1, 2, 3, 4, 5}))
        p1, p2 = min(s["wall"]["project_1_thread"]), min(s["wall"]["project_2_threads"])
        b = min(s["wall"]["build_incidence"])
        log(f"build_incidence + project (2 threads) = {b + p2:.3f} s best, against "
            f"{f['best_s']:.3f} s for the whole project_incidence call")
        log(f"incidence entries {s['incidence_entries']:,}, edges {s['edges']:,}, evidence "
            f"entries {s['evidence_entries']:,}; project 1 -> 2 threads speed-up (best): "
            f"{p1 / p2:.2f}x")
    log(f"load average at end " + " ".join(f"{x:.2f}" for x in info["loadavg_end"]))

    if args.json:
        payload = {"machine": info, "params": {"people": args.people, "seed": args.seed,
                                               "repeat": args.repeat, "timeout": args.timeout,
                                               "methods": methods},
                   "input": meta, "workload": wl, "results": results}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2, default=str))
        log(f"saved {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
