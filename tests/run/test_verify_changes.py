"""verify on a run made with --previous: changes.csv is re-made, the earlier run is an input of the re-run."""
from __future__ import annotations

import shutil

import pytest

import fdnet
from fdnet.verify import verify_run
from helpers import write_folder

TODAY = "2024-12-31"
OPEN = {"lists": {n: {"min_score": 0} for n in ("call_in", "custom_notifications", "service_referrals")}}


@pytest.fixture()
def runs(tmp_path):
    a = write_folder(tmp_path / "a")
    fdnet.run(a, as_of="2024-03-01", policy=OPEN, today=TODAY).write(tmp_path / "r0")
    fdnet.run(a, as_of="2024-04-01", policy=OPEN, previous_run=tmp_path / "r0", today=TODAY).write(tmp_path / "r1")
    return tmp_path


def _check(rep, name):
    hits = [c for c in rep.checks if c.name == name]
    assert len(hits) == 1, [c.name for c in rep.checks]
    return hits[0]


def test_verify_passes_and_remakes_changes(runs):
    rep = verify_run(runs / "r1")
    assert rep.exit_code == 0, [(c.name, c.detail) for c in rep.failed + rep.unchecked]
    assert _check(rep, "changes.csv").ok and _check(rep, "re-run changes.csv").ok
    assert _check(rep, "previous run").ok
    assert rep.rerun == "re-run: identical"


def test_previous_run_gone_or_changed_means_no_rerun(runs):
    shutil.move(runs / "r0", runs / "moved")
    rep = verify_run(runs / "r1")
    assert rep.exit_code == 3 and _check(rep, "previous run").ok is None
    assert "the previous run" in rep.rerun and "is gone" in rep.rerun
    shutil.move(runs / "moved", runs / "r0")
    p = runs / "r0" / "call_in.csv"
    p.write_bytes(p.read_bytes() + b"\n")
    rep = verify_run(runs / "r1")
    assert rep.exit_code == 3 and "no longer matches its manifest" in rep.rerun


def test_edited_changes_csv_fails(runs):
    p = runs / "r1" / "changes.csv"
    p.write_bytes(p.read_bytes().replace(b"entered", b"stayed", 1))
    rep = verify_run(runs / "r1", rerun=False)
    assert rep.exit_code == 1 and _check(rep, "changes.csv").ok is False


def test_forged_manifest_previous_is_not_followed(runs):
    import json
    m = runs / "r1" / "manifest.json"
    d = json.loads(m.read_text())
    d["previous"]["run_dir"] = "relative/../path"
    m.write_text(json.dumps(d, indent=2) + "\n")
    rep = verify_run(runs / "r1")
    assert rep.exit_code == 1 and _check(rep, "previous run").ok is False
