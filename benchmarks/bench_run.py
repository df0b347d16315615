#!/usr/bin/env python
"""Time the whole ``fdnet run`` against an analyst's pandas + igraph script, 10k to 1M (10M) people.

This is a benchmark, not a test (pytest ignores ``benchmarks/``; ``tests/test_bench_run.py``
only checks that it runs and that both pipelines agree). Usage::

    .venv/bin/python benchmarks/bench_run.py                          # 10k, 50k, 200k, 1M people
    .venv/bin/python benchmarks/bench_run.py --sizes 10000,50000 --repeat 3
    .venv/bin/python benchmarks/bench_run.py --with-10m               # adds 10M (long, opt-in)
    .venv/bin/python benchmarks/bench_run.py --out results.json --plot benchmarks/scale.png
    .venv/bin/python benchmarks/bench_run.py --plot-only results.json --plot benchmarks/scale.png

For every size the synthetic city of ``fdnet synth --people N --seed S`` is written once
(cached), then, ``--repeat`` times and in alternating order:

* the **analyst's script** (:func:`analyst_pipeline`): pandas (pyarrow CSV engine) + igraph, the
  way a competent analyst writes it: read, window filter, co-offending projection (one self-merge
  per incident), degree, exposure_1 / exposure_2 (igraph neighbourhoods of the shooting victims at
  distance exactly 1 and 2), Leiden communities once, a ranked cut, CSVs written;
* **fdnet run** (``python -m fdnet run CITY --out DIR --as-of DAY``, the CLI's own code path; the
  child only wraps the CLI's progress callback to stamp each stage of ``pipeline.STEPS``).

Each runs in a fresh process started through ``/bin/sh``, so its peak RSS (``ru_maxrss`` from
``wait4``) is its own and not inherited from this process. Per-stage peak memory is the child's
``VmHWM`` read at the end of each stage, reset at its start through ``/proc/self/clear_refs``
(which resets ``ru_maxrss`` too: a run's peak is the largest of its stages' peaks and ``ru_maxrss``).
Before anything is reported the analyst's degree, exposure_1 and exposure_2 are compared with
fdnet's ``scores.csv`` person by person; a disagreement is printed (and makes the exit code 1).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent
OFFENDING_ROLES = ("offender", "suspect", "arrestee")
DEFAULT_SIZES = (10_000, 50_000, 200_000, 1_000_000)
TEN_MILLION = 10_000_000
TOP_N = 500          # the analyst's ranked cut


# ======================================================================================
# The analyst's script (runs in its own process: `bench_run.py _analyst ...`)
# ======================================================================================

def _read_table(city: Path, name: str, columns: list[str]):
    import pandas as pd
    pq = city / f"{name}.parquet"
    if pq.exists():
        return pd.read_parquet(pq, columns=columns)
    return pd.read_csv(city / f"{name}.csv", engine="pyarrow", usecols=columns)


def analyst_pipeline(city: str | Path, out: str | Path, *, as_of: str, window_days: int = 1095,
                     top_n: int = TOP_N, seed: int = 0, stamp=None) -> dict:
    """An analyst's pandas + igraph version of the core of ``fdnet run``; returns counts.

    Writes ``out/scores.csv`` (person_id, degree, exposure_1, exposure_2, offending, community,
    score: one row per person involved in an incident of the window, as fdnet's scores.csv)
    and ``out/cut.csv`` (the ``top_n`` highest scores, ties by person_id). ``stamp(name)`` is
    called at the start of each stage.

    >>> import tempfile, pandas as pd
    >>> d = Path(tempfile.mkdtemp())
    >>> pd.DataFrame({"incident_id": ["I1", "I2"], "date": ["2024-01-01", "2024-01-02"],
    ...               "gun": [True, False]}).to_csv(d / "incidents.csv", index=False)
    >>> pd.DataFrame({"incident_id": ["I1", "I1", "I1", "I2", "I2"], "person_id": list("ABVBC"),
    ...               "role": ["offender", "suspect", "victim", "offender", "arrestee"]}
    ...              ).to_csv(d / "involvements.csv", index=False)
    >>> analyst_pipeline(d, d / "out", as_of="2024-01-02")["edges"]
    2
    >>> pd.read_csv(d / "out" / "scores.csv")[["person_id", "degree", "exposure_1", "exposure_2"]].values.tolist()
    [['A', 1, 0, 0], ['B', 2, 0, 0], ['C', 1, 0, 0], ['V', 0, 0, 0]]
    """
    import igraph as ig
    import numpy as np
    import pandas as pd

    stamp = stamp or (lambda name: None)
    city, out = Path(city), Path(out)
    out.mkdir(parents=True, exist_ok=True)

    stamp("read")
    inc = _read_table(city, "incidents", ["incident_id", "date", "gun"])
    inv = _read_table(city, "involvements", ["incident_id", "person_id", "role"])

    stamp("window")
    day = pd.to_datetime(inc["date"]).to_numpy().astype("datetime64[D]")
    end = np.datetime64(as_of, "D")
    inc = inc[(day >= end - np.timedelta64(window_days, "D")) & (day <= end)]
    # a merge, not Series.isin: isin over pandas 3's default string dtype is 5-10x slower here
    inv = inv.merge(inc[["incident_id", "gun"]], on="incident_id")
    inv = inv.assign(pid=pd.factorize(inv["person_id"], sort=True)[0],
                     iid=pd.factorize(inv["incident_id"])[0])
    people = np.sort(inv["person_id"].unique())
    n = len(people)

    stamp("projection")
    off = inv.loc[inv["role"].isin(OFFENDING_ROLES), ["iid", "pid"]].drop_duplicates()
    pairs = off.merge(off, on="iid")
    pairs = pairs[pairs["pid_x"] < pairs["pid_y"]]
    edges = pairs.groupby(["pid_x", "pid_y"]).size().rename("incidents").reset_index()
    g = ig.Graph(n=n, edges=edges[["pid_x", "pid_y"]].to_numpy(), directed=False)
    g.es["weight"] = edges["incidents"].to_numpy(dtype=float)

    stamp("degree")
    degree = np.asarray(g.degree(), dtype=np.int64)

    stamp("exposure")
    victims = np.unique(inv.loc[(inv["role"] == "victim") & inv["gun"].astype(bool), "pid"].to_numpy())
    exposure = {}
    for k in (1, 2):
        hoods = g.neighborhood(victims.tolist(), order=k, mindist=k)
        flat = np.fromiter((v for h in hoods for v in h), dtype=np.int64)
        exposure[k] = np.bincount(flat, minlength=n)

    stamp("communities")
    comm = g.community_leiden(objective_function="modularity", weights="weight", n_iterations=2)
    membership = np.asarray(comm.membership)

    stamp("cut")
    offending = np.bincount(off["pid"].to_numpy(), minlength=n)
    scores = pd.DataFrame({"person_id": people, "degree": degree, "exposure_1": exposure[1],
                           "exposure_2": exposure[2], "offending": offending,
                           "community": membership})
    scores["score"] = (10 * scores["exposure_1"] + 3 * scores["exposure_2"] + 2 * scores["degree"]
                       + scores["offending"])
    cut = scores.sort_values(["score", "person_id"], ascending=[False, True]).head(top_n)

    stamp("write")
    scores.to_csv(out / "scores.csv", index=False)
    cut.to_csv(out / "cut.csv", index=False)
    return {"people": int(n), "incidents": int(len(inc)), "involvements": int(len(inv)),
            "edges": int(len(edges)), "shooting_victims": int(len(victims)),
            "communities": int(len(comm))}


# ======================================================================================
# Child processes
# ======================================================================================

class _Stamps:
    """Wall time and peak RSS per stage, inside a child (VmHWM reset at each stage start)."""

    def __init__(self):
        self.rows: list[dict] = []
        self._clear = True

    @staticmethod
    def _status(key: str) -> int:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
        return 0

    def _close_last(self, t: float) -> None:
        if self.rows:
            last = self.rows[-1]
            last["end"] = t
            last["peak_rss"] = self._status("VmHWM")

    def __call__(self, name: str) -> None:
        t = time.time()
        self._close_last(t)
        if self._clear:
            try:
                with open("/proc/self/clear_refs", "w") as f:
                    f.write("5")     # resets VmHWM to the current RSS
            except OSError:
                self._clear = False
        self.rows.append({"stage": name, "start": t, "rss_start": self._status("VmRSS")})
        # live, into the child's log: which stage a long run is in
        print(f"[bench_run {_dt.datetime.now():%H:%M:%S}] stage: {name}", file=sys.stderr, flush=True)

    def finish(self, path: str, extra: dict | None = None) -> None:
        self._close_last(time.time())
        Path(path).write_text(json.dumps({"stages": self.rows, "end": time.time(),
                                          "per_stage_peak": self._clear, **(extra or {})}))


def _child_analyst(argv: list[str]) -> int:
    city, out, as_of, window_days, top_n, stages_path = argv
    st = _Stamps()
    st("imports")
    counts = analyst_pipeline(city, out, as_of=as_of, window_days=int(window_days), top_n=int(top_n), stamp=st)
    st.finish(stages_path, {"counts": counts})
    return 0


def _child_fdnet(argv: list[str]) -> int:
    """``python -m fdnet run CITY --out OUT --as-of DAY``, with each progress stage stamped."""
    city, out, as_of, stages_path = argv[:4]
    st = _Stamps()
    st("startup")
    from fdnet import cli
    hooked = False
    if hasattr(cli, "_progress"):
        orig = cli._progress

        def _progress(enabled, _orig=orig):
            inner = _orig(enabled)

            class _Wrap:
                def __enter__(self):
                    self.p = inner.__enter__()
                    return self

                def __call__(self, name):
                    st(name)
                    return self.p(name)

                def __exit__(self, *exc):
                    return inner.__exit__(*exc)
            return _Wrap()
        cli._progress = _progress
        hooked = True
    else:   # a CLI without that helper: stamp the progress callback the pipeline is given
        from fdnet import pipeline
        for fname in ("run", "compute_run"):
            f = getattr(pipeline, fname, None)
            if f is None:
                continue

            def wrapped(*a, _f=f, **kw):
                inner = kw.get("progress") or (lambda name: None)

                def cb(name, _inner=inner):
                    if not st.rows or st.rows[-1]["stage"] != name:
                        st(name)
                    return _inner(name)
                kw["progress"] = cb
                return _f(*a, **kw)
            setattr(pipeline, fname, wrapped)
            hooked = True
    rc = cli.main(["run", city, "--out", out, "--as-of", as_of, *argv[4:]])
    st.finish(stages_path, {"rc": rc, "stages_hooked": hooked})
    return rc


def _child_meta(argv: list[str]) -> int:
    """as_of (latest incident date), default window_days and input row counts of a city."""
    city, path = Path(argv[0]), argv[1]
    import pandas as pd
    from fdnet.policy import load_policy
    d = pd.to_datetime(_read_table(city, "incidents", ["date"])["date"]).max()
    inv = city / "involvements.csv"
    if inv.exists():
        with open(inv, "rb") as f:
            n_inv = sum(buf.count(b"\n") for buf in iter(lambda: f.read(1 << 24), b"")) - 1
    else:
        import pyarrow.parquet as pq
        n_inv = pq.ParquetFile(city / "involvements.parquet").metadata.num_rows
    Path(path).write_text(json.dumps({"as_of": d.strftime("%Y-%m-%d"), "window_days": int(load_policy(None).window_days),
                                      "involvements": int(n_inv)}))
    return 0


def _child_agree(argv: list[str]) -> int:
    """Compare the analyst's degree / exposure with fdnet's scores.csv, person by person."""
    analyst_csv, fdnet_csv, path = argv
    import pandas as pd
    cols = ["person_id", "degree", "exposure_1", "exposure_2"]
    a = pd.read_csv(analyst_csv, engine="pyarrow", usecols=cols, dtype={"person_id": str})
    f = pd.read_csv(fdnet_csv, engine="pyarrow", usecols=cols, dtype={"person_id": str})
    m = a.merge(f, on="person_id", how="outer", suffixes=("_analyst", "_fdnet"), indicator=True)
    both = m[m["_merge"] == "both"]
    res = {"analyst_people": int(len(a)), "fdnet_people": int(len(f)), "common_people": int(len(both)),
           "only_analyst": m.loc[m["_merge"] == "left_only", "person_id"].head(5).tolist(),
           "only_fdnet": m.loc[m["_merge"] == "right_only", "person_id"].head(5).tolist(), "columns": {}}
    for c in cols[1:]:
        eq = both[f"{c}_analyst"].astype("int64") == both[f"{c}_fdnet"].astype("int64")
        bad = both.loc[~eq, ["person_id", f"{c}_analyst", f"{c}_fdnet"]].head(5)
        res["columns"][c] = {"equal": int(eq.sum()), "differ": int((~eq).sum()),
                             "nonzero": int((both[f"{c}_fdnet"] != 0).sum()),
                             "examples": bad.astype(str).values.tolist()}
    res["ok"] = (len(a) == len(f) == len(both)) and all(v["differ"] == 0 for v in res["columns"].values())
    Path(path).write_text(json.dumps(res))
    return 0


CHILDREN = {"_analyst": _child_analyst, "_fdnet": _child_fdnet, "_meta": _child_meta, "_agree": _child_agree}


# ======================================================================================
# The harness (this process stays small: no pandas, no fdnet imported here)
# ======================================================================================

def _spawn(args: list[str], *, log_path: Path, timeout: float | None, module: str | None = None) -> dict:
    """Run ``python bench_run.py <args>`` (or ``python -m <module> <args>``) through /bin/sh, which
    forks it: its wall time and rusage (peak RSS) are its own, not this process's."""
    target = ["-m", module] if module else [str(HERE)]
    cmd = ["/bin/sh", "-c", '"$@"; exit $?', "sh", sys.executable, *target, *args]
    t0 = time.time()
    p0 = time.perf_counter()
    with open(log_path, "wb") as log:
        # its own process group, so a timeout or Ctrl-C ends the worker too, not only the shell
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=str(ROOT), start_new_session=True)

        def kill():
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        timer = threading.Timer(timeout, kill) if timeout else None
        if timer:
            timer.start()
        try:
            _, status, ru = os.wait4(proc.pid, 0)   # blocks; the child's rusage comes with it
        except BaseException:
            kill()
            raise
        finally:
            if timer:
                timer.cancel()
    wall = time.perf_counter() - p0
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == 9 and timeout and wall >= timeout:
        return {"rc": "timeout", "wall": wall, "t0": t0}
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"rc": proc.returncode, "wall": wall, "t0": t0,
            "peak_rss": ru.ru_maxrss * 1024, "user": ru.ru_utime, "sys": ru.ru_stime}


def _stage_table(stages_json: Path, t0: float, wall: float) -> list[dict]:
    """The child's stages, plus interpreter start (fork to first stamp) and exit (last stamp to reaped)."""
    d = json.loads(stages_json.read_text())
    rows = []
    for r in d["stages"]:
        rows.append({"stage": r["stage"], "seconds": r.get("end", r["start"]) - r["start"],
                     "peak_rss": r.get("peak_rss"), "rss_start": r.get("rss_start")})
    # from the fork to the child's first stamp (interpreter start), and after its last one (teardown)
    first = d["stages"][0]["start"] if d["stages"] else t0
    rows.insert(0, {"stage": "process start", "seconds": first - t0, "peak_rss": None, "rss_start": None})
    rows.append({"stage": "process exit", "seconds": max(0.0, t0 + wall - d["end"]), "peak_rss": None,
                 "rss_start": None})
    return rows


def _city(n: int, seed: int, cache: Path, given: dict[int, Path], log) -> Path:
    if n in given:
        return given[n]
    d = cache / f"city-n{n}-seed{seed}"
    if (d / "involvements.csv").exists() and (d / ".complete").exists():
        return d
    if d.exists():
        shutil.rmtree(d)
    log(f"  writing the city: fdnet synth --people {n} --seed {seed} (not timed)")
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "fdnet", "synth", "--out", str(d), "--people", str(n), "--seed", str(seed)],
                   check=True, cwd=str(ROOT), stdout=subprocess.DEVNULL)
    (d / ".complete").write_text("")
    log(f"  city written in {time.perf_counter() - t:.1f} s")
    return d


def _meta(city: Path, work: Path) -> dict:
    path = work / "meta.json"
    r = _spawn(["_meta", str(city), str(path)], log_path=work / "meta.log", timeout=None)
    if r["rc"] != 0:
        raise SystemExit(f"reading {city} failed: see {work / 'meta.log'}")
    return json.loads(path.read_text())


def _mib(b) -> str:
    return "-" if b is None else f"{b / 2**20:,.0f}"


def _loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def _machine() -> dict:
    mem = 0
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) * 1024
    except OSError:
        pass
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = {}
    out = subprocess.run([sys.executable, "-c", "import json, numpy, pandas, pyarrow, igraph, scipy, fdnet; "
                          "print(json.dumps({m.__name__: m.__version__ for m in (numpy, pandas, pyarrow, igraph, scipy, fdnet)}))"],
                         capture_output=True, text=True, cwd=str(ROOT))
    if out.returncode == 0:
        versions = json.loads(out.stdout)
    git = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True)
    # the last commit that changed fdnet's own code (the benchmark's commits do not change what is measured)
    code = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%h", "--", "fdnet"], capture_output=True, text=True)
    code_dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no", "--", "fdnet"],
                                capture_output=True, text=True)
    return {"nproc": os.cpu_count(), "cpu": cpu, "mem_bytes": mem, "python": platform.python_version(),
            "versions": versions, "git": git.stdout.strip() + ("+dirty" if dirty.stdout.strip() else ""),
            "fdnet_code": code.stdout.strip() + ("+dirty" if code_dirty.stdout.strip() else ""),
            "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}


def run_size(n: int, args, cache: Path, given: dict[int, Path], log) -> dict:
    city = _city(n, args.seed, cache, given, log)
    work = Path(tempfile.mkdtemp(prefix=f"bench-run-{n}-", dir=args.work))
    meta = _meta(city, work)
    log(f"  city {city}: {meta['involvements']:,} involvement rows, as of {meta['as_of']}, "
        f"window {meta['window_days']} days")
    runs = {"analyst": [], "fdnet": []}
    agreement = None
    for rep in range(args.repeat):
        order = ("analyst", "fdnet") if rep % 2 == 0 else ("fdnet", "analyst")
        for who in order:
            out = work / f"{who}-{rep}"
            stages = work / f"{who}-{rep}.stages.json"
            if who == "analyst":
                child = ["_analyst", str(city), str(out), meta["as_of"], str(meta["window_days"]), str(TOP_N),
                         str(stages)]
            elif args.plain:
                child = ["run", str(city), "--out", str(out), "--as-of", meta["as_of"]]
            else:
                child = ["_fdnet", str(city), str(out), meta["as_of"], str(stages)]
            plain = who == "fdnet" and args.plain
            r = _spawn(child, log_path=work / f"{who}-{rep}.log", timeout=args.timeout,
                       module="fdnet" if plain else None)
            load = _loadavg()
            if r["rc"] != 0:
                tail = (work / f"{who}-{rep}.log").read_text(errors="replace")[-2000:]
                log(f"  {who} run {rep + 1} failed (rc {r['rc']}):\n{tail}")
                r["stages"] = []
            elif plain:
                r["stages"] = []
            else:
                r["stages"] = _stage_table(stages, r["t0"], r["wall"])
                r["ru_maxrss"] = r["peak_rss"]
                r["peak_rss"] = _run_peak(r)
                d = json.loads(stages.read_text())
                if who == "analyst":
                    r["counts"] = d["counts"]
            r["load_after"] = load
            runs[who].append(r)
            log(f"  {who:<7} run {rep + 1}/{args.repeat}: {r['wall']:7.2f} s, peak {_mib(r.get('peak_rss'))} MiB"
                f"  (load {load})")
        if agreement is None and runs["analyst"][-1]["rc"] == 0 and runs["fdnet"][-1]["rc"] == 0:
            path = work / "agree.json"
            a = _spawn(["_agree", str(work / f"analyst-{rep}" / "scores.csv"), str(work / f"fdnet-{rep}" / "scores.csv"),
                        str(path)], log_path=work / "agree.log", timeout=None)
            agreement = json.loads(path.read_text()) if a["rc"] == 0 else {"ok": False, "error": "agree failed"}
            log("  agreement " + _agreement_line(agreement))
        if not args.keep:
            for who in order:
                shutil.rmtree(work / f"{who}-{rep}", ignore_errors=True)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    counts = next((r["counts"] for r in runs["analyst"] if "counts" in r), {})
    return {"people": n, "seed": args.seed, "city": str(city), "involvement_rows": meta["involvements"],
            "as_of": meta["as_of"], "counts": counts, "runs": runs, "agreement": agreement}


def _agreement_line(a: dict | None) -> str:
    if not a or "columns" not in a:
        return "not checked"
    parts = [f"{c} {v['equal']:,}/{a['common_people']:,} equal ({v['nonzero']:,} nonzero)" for c, v in a["columns"].items()]
    people = (f"people analyst {a['analyst_people']:,} / fdnet {a['fdnet_people']:,}")
    return ("OK: " if a["ok"] else "DIFFERENT: ") + people + "; " + "; ".join(parts)


def _run_peak(r: dict):
    """A run's peak RSS: the largest of its stages' peaks and its ru_maxrss.

    Resetting VmHWM through clear_refs (for the per-stage peaks) also resets the counter behind
    ru_maxrss, so ru_maxrss alone is only the peak since the last stage began.
    """
    return max([r.get("peak_rss") or 0] + [x.get("peak_rss") or 0 for x in r.get("stages") or []]) or None


def _median(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    k = len(xs) // 2
    return xs[k] if len(xs) % 2 else (xs[k - 1] + xs[k]) / 2


def summarise(res: dict) -> dict:
    """Best and median wall time and the largest peak RSS of each side, per size."""
    out = {}
    for who in ("analyst", "fdnet"):
        ok = [r for r in res["runs"][who] if r["rc"] == 0]
        out[who] = {"best": min((r["wall"] for r in ok), default=None), "median": _median([r["wall"] for r in ok]),
                    "cpu": _median([r["user"] + r["sys"] for r in ok]),
                    "peak_rss": max((_run_peak(r) for r in ok), default=None), "n": len(ok)}
    # per stage: the median over repeats, peak as the largest
    for who in ("analyst", "fdnet"):
        ok = [r for r in res["runs"][who] if r["rc"] == 0 and r["stages"]]
        names = [s["stage"] for s in ok[0]["stages"]] if ok else []
        out[who]["stages"] = [{"stage": s, "seconds": _median([next((x["seconds"] for x in r["stages"] if x["stage"] == s), None) for r in ok]),
                               "peak_rss": max((x["peak_rss"] or 0 for r in ok for x in r["stages"] if x["stage"] == s), default=0) or None}
                              for s in names]
    return out


def print_tables(results: list[dict], log=print) -> None:
    log("")
    log("== fdnet run against the analyst's pandas + igraph script ==")
    log("(wall seconds: best / median of the repeats; ratio best/best and median/median; cpu s: median user+sys "
        "of the process; peak: the largest peak RSS of a run)")
    hdr = ["people", "involvements", "repeats", "analyst s", "fdnet s", "ratio fdnet/analyst", "analyst cpu s",
           "fdnet cpu s", "cpu ratio", "analyst peak MiB", "fdnet peak MiB", "agreement"]
    rows = []
    for res in results:
        s = summarise(res)
        a, f = s["analyst"], s["fdnet"]
        ratio = (f"{f['best'] / a['best']:.2f}x / {f['median'] / a['median']:.2f}x"
                 if a["best"] and f["best"] else "-")
        rows.append([f"{res['people']:,}", f"{res['involvement_rows']:,}", f"{min(a['n'], f['n'])}",
                     _fmt_pair(a), _fmt_pair(f), ratio, _fmt_s(a["cpu"]), _fmt_s(f["cpu"]),
                     f"{f['cpu'] / a['cpu']:.2f}x" if a["cpu"] and f["cpu"] else "-", _mib(a["peak_rss"]), _mib(f["peak_rss"]),
                     "ok" if (res["agreement"] or {}).get("ok") else "DIFFERENT" if res["agreement"] else "-"])
    _table(hdr, rows, log)
    for who in ("fdnet", "analyst"):
        per = [(res["people"], summarise(res)[who]) for res in results]
        per = [(n, s) for n, s in per if s["stages"]]
        if not per:
            continue
        names: list[str] = []
        for _, s in per:
            names += [x["stage"] for x in s["stages"] if x["stage"] not in names]
        log("")
        log(f"-- {who} stages: median seconds over the repeats (% of the median run), peak RSS MiB during the stage --")
        hdr = ["stage"] + [h for n, _ in per for h in (f"{_short(n)} s", "%", "MiB")]
        rows = []
        for name in names:
            row = [name]
            for _, s in per:
                x = next((x for x in s["stages"] if x["stage"] == name), None)
                if x is None:
                    row += ["", "", ""]
                else:
                    row += [f"{x['seconds']:.2f}", f"{100 * x['seconds'] / (s['median'] or 1):.0f}%", _mib(x["peak_rss"])]
            rows.append(row)
        rows.append(["whole run (wall)"] + [c for _, s in per for c in (f"{s['median']:.2f}", "100%", _mib(s["peak_rss"]))])
        _table(hdr, rows, log)


def _short(n: int) -> str:
    """A size as a column header.

    >>> _short(1_000_000), _short(50_000), _short(2_500)
    ('1M', '50k', '2.5k')
    """
    for div, suf in ((1_000_000, "M"), (1_000, "k")):
        if n >= div:
            return f"{n / div:g}{suf}"
    return str(n)


def _fmt_s(x) -> str:
    return "-" if x is None else f"{x:.2f}"


def _fmt_pair(x: dict) -> str:
    if x["best"] is None:
        return "failed"
    return f"{x['best']:.2f}" if x["n"] == 1 else f"{x['best']:.2f} / {x['median']:.2f}"


def _table(hdr, rows, log):
    w = [max(len(str(r[i])) for r in [hdr, *rows]) for i in range(len(hdr))]
    log("  ".join(h.ljust(w[i]) for i, h in enumerate(hdr)))
    log("  ".join("-" * w[i] for i in range(len(hdr))))
    for r in rows:
        log("  ".join((str(c).rjust(w[i]) if i else str(c).ljust(w[i])) for i, c in enumerate(r)))


def plot(results: list[dict], path: Path, title: str = "") -> None:
    """Time and peak memory against people, log-log, for both pipelines (matplotlib, Agg)."""
    try:
        import matplotlib
    except ImportError:
        raise SystemExit("--plot needs matplotlib (pip install matplotlib); the results were still written")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker  # noqa: F401

    results = sorted(results, key=lambda r: r["people"])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.4), dpi=110)
    style = {"analyst": ("tab:blue", "o", "analyst (pandas + igraph)"), "fdnet": ("tab:red", "s", "fdnet run")}
    for who, (color, marker, label) in style.items():
        pts = [(r["people"], summarise(r)[who]) for r in results]
        pts = [(n, s) for n, s in pts if s["best"]]
        if not pts:
            continue
        xs = [n for n, _ in pts]
        ax1.plot(xs, [s["median"] for _, s in pts], marker=marker, color=color, label=label)
        for r in results:   # every repeat as a faint dot: the noise of the shared machine
            if r["people"] in xs:
                ax1.scatter([r["people"]] * len(r["runs"][who]), [x["wall"] for x in r["runs"][who] if x["rc"] == 0],
                            color=color, alpha=0.35, s=12)
        ax1.plot(xs, [s["cpu"] for _, s in pts], marker=marker, color=color, linestyle=":", alpha=0.7,
                 label=f"{label}, CPU s (user+sys)")
        ax2.plot(xs, [s["peak_rss"] / 2**20 for _, s in pts], marker=marker, color=color, label=label)
    ax2.axhline(2.4 * 1024, color="grey", linestyle="--", linewidth=1)
    ax2.annotate("issue 10 target at 1M: 2.4 GiB", (results[0]["people"], 2.4 * 1024), xytext=(0, 4),
                 textcoords="offset points", fontsize=8, color="grey")
    for ax, ylabel in ((ax1, "wall seconds (median; dots: each run)"), (ax2, "peak RSS, MiB")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("people in the synthetic city")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.10g}"))
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.legend(fontsize=8)
    lo, hi = ax2.get_ylim()
    ax2.set_yticks([t for t in (64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768) if lo <= t <= hi])
    ax1.set_title("time")
    ax2.set_title("peak memory")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in CHILDREN:
        return CHILDREN[argv[0]](argv[1:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default=",".join(str(s) for s in DEFAULT_SIZES),
                    help="comma-separated numbers of people (default 10000,50000,200000,1000000)")
    ap.add_argument("--with-10m", action="store_true", help="also 10,000,000 people (long)")
    ap.add_argument("--seed", type=int, default=12, help="city seed (default 12)")
    ap.add_argument("--repeat", type=int, default=None,
                    help="runs of each pipeline per size (default 3 below 1M people, 1 from 1M)")
    ap.add_argument("--city", action="append", default=[], metavar="N=DIR",
                    help="use this existing input folder for size N instead of writing one")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "fdnet-bench-run",
                    help="where the synthetic cities are kept (default /tmp/fdnet-bench-run)")
    ap.add_argument("--work", type=Path, default=None, help="where run folders go (default a temporary folder)")
    ap.add_argument("--plain", action="store_true",
                    help="run fdnet as a bare `python -m fdnet run` (no stage times), to check the stamps cost nothing")
    ap.add_argument("--keep", action="store_true", help="keep the run folders and logs")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds one run may take (default 3600)")
    ap.add_argument("--out", type=Path, help="save every measurement as JSON")
    ap.add_argument("--plot", type=Path, help="draw the scale curves into this PNG")
    ap.add_argument("--plot-only", type=Path, metavar="RESULTS_JSON", help="only draw --plot from saved results")
    args = ap.parse_args(argv)

    if args.plot_only:
        saved = json.loads(args.plot_only.read_text())
        print_tables(saved["results"])
        if args.plot:
            plot(saved["results"], args.plot, _title(saved["machine"]))
        return 0

    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    if args.with_10m and TEN_MILLION not in sizes:
        sizes.append(TEN_MILLION)
    given = {}
    for spec in args.city:
        k, _, v = spec.partition("=")
        given[int(k.replace("_", ""))] = Path(v).resolve()
    args.cache.mkdir(parents=True, exist_ok=True)
    if args.work:
        args.work.mkdir(parents=True, exist_ok=True)

    machine = _machine()
    log = lambda s="": print(s, flush=True)   # noqa: E731
    log(f"machine  nproc={machine['nproc']}, {machine['cpu']}, {machine['mem_bytes'] / 2**30:.1f} GiB RAM, "
        f"load average {_loadavg()}; python {machine['python']}; "
        + ", ".join(f"{k} {v}" for k, v in machine["versions"].items()) + f"; commit {machine['git']} (fdnet/ last changed in {machine['fdnet_code']})")
    results = []
    ok = True
    for n in sizes:
        repeat = args.repeat if args.repeat is not None else (3 if n < 1_000_000 else 1)
        log(f"\n== {n:,} people, {repeat} run(s) each ==")
        a = argparse.Namespace(**{**vars(args), "repeat": repeat})
        res = run_size(n, a, args.cache, given, log)
        results.append(res)
        ok &= bool((res["agreement"] or {}).get("ok"))
        if args.out:   # saved after every size, so a long run that is stopped keeps what it measured
            args.out.write_text(json.dumps({"machine": machine, "results": results}, indent=1))
    machine["finished"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    machine["load_at_end"] = _loadavg()
    print_tables(results, log)
    log(f"\nload average at end {machine['load_at_end']}")
    if args.out:
        args.out.write_text(json.dumps({"machine": machine, "results": results}, indent=1))
    if args.plot:
        plot(results, args.plot, _title(machine))
        log(f"wrote {args.plot}")
    if not ok:
        log("WARNING: the analyst's degree/exposure differ from fdnet's scores.csv (see 'agreement' above)")
    return 0 if ok else 1


def _title(machine: dict) -> str:
    return (f"fdnet code {machine.get('fdnet_code') or machine.get('git', '?')}, {machine.get('started', '')[:16]} UTC; "
            f"{machine.get('nproc')} cores, {machine.get('mem_bytes', 0) / 2**30:.0f} GiB, "
            f"load average at the end {machine.get('load_at_end', '?')}")


if __name__ == "__main__":
    sys.exit(main())
