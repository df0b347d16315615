"""benchmarks/bench_run.py runs at a tiny size, and its analyst script agrees with fdnet.

No timing is asserted (the machine is shared); only that the whole benchmark runs end to end and
that the analyst's degree, exposure_1 and exposure_2 equal fdnet's scores.csv person by person,
which is what makes the time comparison fair.
"""
from __future__ import annotations

import doctest
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "bench_run.py"


def _module():
    spec = importlib.util.spec_from_file_location("bench_run", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_bench_run_doctests():
    res = doctest.testmod(_module())
    assert res.attempted and not res.failed


def test_bench_run_tiny_city_agrees_with_fdnet(tmp_path):
    out = tmp_path / "results.json"
    p = subprocess.run([sys.executable, str(SCRIPT), "--sizes", "2000", "--repeat", "1",
                        "--cache", str(tmp_path / "cache"), "--work", str(tmp_path / "work"),
                        "--out", str(out)], capture_output=True, text=True, cwd=str(ROOT), timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "agreement OK" in p.stdout
    res = json.loads(out.read_text())["results"][0]
    a = res["agreement"]
    assert a["ok"] and a["analyst_people"] == a["fdnet_people"] == a["common_people"] > 0
    for col in ("degree", "exposure_1", "exposure_2"):
        assert a["columns"][col]["differ"] == 0
        assert a["columns"][col]["nonzero"] > 0      # the check compares something
    for who in ("analyst", "fdnet"):
        run = res["runs"][who][0]
        assert run["rc"] == 0 and run["peak_rss"] > 0 and run["wall"] > 0
    stages = [s["stage"] for s in res["runs"]["fdnet"][0]["stages"]]
    for name in ("read and validate", "build networks", "network analytics", "features and scores", "lists",
                 "explanations", "report"):
        assert name in stages
    assert not any((tmp_path / "work").iterdir())    # run folders are removed unless --keep
