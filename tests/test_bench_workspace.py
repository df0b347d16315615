"""benchmarks/bench_workspace.py runs at a tiny size: reviewers against the real server, then concurrent writer
processes on one SQLite audit log. No latency is asserted (the machine is shared); only that every request was
answered 2xx, that every review answered 201 is in the log once, and that the chain is intact with a distinct
sequence number for every concurrent write."""
from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _module():
    # imported by its package name: the writer processes (spawned) import it the same way
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module("benchmarks.bench_workspace")


def test_bench_workspace_smoke(tmp_path):
    out = tmp_path / "figures.json"
    res = _module().main(["--people", "800", "--reviewers", "3", "--duration", "2", "--writers", "3",
                          "--writes", "6", "--pg", "off", "--workdir", str(tmp_path / "w"), "--json", str(out),
                          "--quiet"])
    r = res["reviewers"]
    assert r["errors"] == 0, r["error_samples"]
    assert all(r["per_kind"][k]["n"] > 0 for k in ("list_page", "candidate_page", "list_api", "review"))
    assert r["reviews_created"] == r["reviews_logged"] > 0 and r["distinct_seqs"] and r["chain_ok"]
    (w,) = res["writers"]
    assert w["backend"] == "sqlite" and not w["failures"]
    assert w["written"] == 18 and w["distinct_seqs"] and w["chain_ok"]
    assert w["entries"] == w["entries_before"] + 18
    assert res["ok"] and json.loads(out.read_text(encoding="utf-8"))["ok"]
