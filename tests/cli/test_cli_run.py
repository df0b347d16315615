"""The command line and the run folder (CONTRACT.md sections 2 and 3)."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pandas as pd
import pytest
from helpers import write_folder

from fdnet.cli import main

LISTS = ("call_in.csv", "custom_notifications.csv", "service_referrals.csv")
RUN_FILES = {"manifest.json", "rejected.csv", "edges.csv", "groups.csv", "scores.csv", *LISTS,
             "explanations.jsonl", "report.html", "group_table.csv", "conflicts.csv", "contagion_events.csv",
             "call_in_groups.csv", "disparity.csv"}


@pytest.fixture
def data(tmp_path):
    return write_folder(tmp_path / "data")


@pytest.fixture
def run_dir(tmp_path, data):
    out = tmp_path / "run"
    assert main(["run", str(data), "--out", str(out), "-q"]) == 0
    return out


def read(p):
    return pd.read_csv(p, dtype=str, keep_default_na=False)


def test_run_writes_the_whole_contract_folder(run_dir):
    assert {p.name for p in run_dir.iterdir()} == RUN_FILES
    m = json.loads((run_dir / "manifest.json").read_text())
    for k in ("fdnet_version", "as_of", "policy", "inputs", "outputs"):
        assert k in m
    assert m["policy"]["window_days"] == 1095
    assert set(m["outputs"]) == RUN_FILES - {"manifest.json"}
    for name, meta in m["outputs"].items():
        assert hashlib.sha256((run_dir / name).read_bytes()).hexdigest() == meta["sha256"]
    assert m["inputs"]["involvements"]["rows"] == {"read": 14, "used": 14, "rejected": 0, "after_as_of": 0,
                                                  "purged_retention": 0}
    e = read(run_dir / "edges.csv")
    assert list(e.columns[:8]) == ["person_a", "person_b", "layer", "weight", "incidents", "decayed_weight",
                                   "first_date", "last_date"] or {"person_a", "person_b", "layer", "weight",
                                                                  "incidents", "first_date", "last_date",
                                                                  "incident_ids"} <= set(e.columns)
    assert (e["person_a"] < e["person_b"]).all()
    co = e[e["layer"] == "co_offending"].set_index(["person_a", "person_b"])
    assert co.loc[("P1", "P2"), "incident_ids"] == "I01"
    vi = e[e["layer"] == "victimization"]
    assert set(map(tuple, vi[["person_a", "person_b"]].to_numpy().tolist())) == {
        ("P1", "V1"), ("P2", "V1"), ("P1", "P4"), ("P6", "V2")}
    for name in LISTS:
        df = read(run_dir / name)
        assert list(df.columns[:5]) == ["rank", "person_id", "group", "score", "reasons"]


def test_exposure_and_degree_in_scores(run_dir):
    s = read(run_dir / "scores.csv").set_index("person_id")
    # shootings: I01 (victim V1), I04 (victim P1), I06 (victim V2). Co-offending: P1-P2, P2-P3, P3-P4, P5-P6
    assert s.loc["P2", "degree"] == "2"
    assert s.loc["P2", "exposure_1"] == "1"   # P1 shot in I04
    assert s.loc["P3", "exposure_2"] == "1"   # P1 two steps away
    assert s.loc["P4", "exposure_1"] == "0" and s.loc["P4", "exposure_2"] == "0"  # P1 is 3 steps away
    assert s.loc["P1", "exposure_1"] == "0"   # never exposed to oneself
    assert {"W1", "V1", "V2"} <= set(s.index)   # everyone involved in the window is in the network


def test_victims_never_on_enforcement_lists(run_dir):
    s = read(run_dir / "scores.csv").set_index("person_id")
    victim_only = set(s.index[(s["offending"] == "0") & (s["shooting_victimization"] != "0")])
    assert victim_only == {"V1", "V2"}
    for name in ("call_in.csv", "custom_notifications.csv"):
        listed = set(read(run_dir / name)["person_id"])
        assert not (listed & victim_only)
        assert not (listed & set(s.index[s["offending"] == "0"]))
        for r in read(run_dir / name)["reasons"]:
            assert "shot" not in r.lower() or "co-offender" in r.lower() or "victim two steps" in r.lower()
    svc = read(run_dir / "service_referrals.csv")
    assert "V1" in set(svc["person_id"])          # shot in the window, alive
    assert "V2" not in set(svc["person_id"])      # recorded deceased
    assert "P1" in set(svc["person_id"])          # shot in I04 though also an offender


def test_guardrails_incarcerated_and_juvenile(run_dir):
    s = read(run_dir / "scores.csv").set_index("person_id")
    assert s.loc["P5", "enforcement_eligible"] == "false"
    assert "incarcerated" in s.loc["P5", "enforcement_exclusion"]
    assert s.loc["P3", "juvenile"] == "true"       # born 2009, as of 2024
    listed = read(run_dir / "custom_notifications.csv")
    for _, r in listed[listed["juvenile"] == "true"].iterrows():
        assert "JUVENILE" in r["reasons"]


def test_runs_are_byte_identical(tmp_path, data, run_dir):
    out2 = tmp_path / "run2"
    assert main(["run", str(data), "--out", str(out2), "-q"]) == 0
    for name in RUN_FILES:
        assert (run_dir / name).read_bytes() == (out2 / name).read_bytes(), name


def test_explanations_trace_to_inputs(run_dir, data):
    inc = read(data / "incidents.csv").set_index("incident_id")
    lines = (run_dir / "explanations.jsonl").read_text().splitlines()
    listed = set()
    for name in LISTS:
        listed |= set(read(run_dir / name)["person_id"])
    recs = [json.loads(x) for x in lines]
    assert {r["person_id"] for r in recs} == listed
    for r in recs:
        total = sum(c["points"] for c in r["components"])
        assert abs(total - r["score"]) < 1e-9
        counted = {"offending", "violent_offending", "gun_offending", "recent_offending", "shooting_victimization",
                   "degree", "exposure_1", "exposure_2", "shooter_exposure", "group_violence", "group_conflicts"}
        for c in r["components"]:
            for i in c["evidence"].get("incidents", []):
                assert inc.loc[i["incident_id"], "date"] == i["date"]
                if c["name"] != "group_violence":
                    assert i["roles"]
            ev = c["evidence"]
            if c["name"] in counted:
                items = ev.get("incidents", ev.get("co_offenders", ev.get("paths", ev.get("conflicts"))))
                assert len(items) == c["value"], c["name"]
    p2 = next(r for r in recs if r["person_id"] == "P2")
    e1 = next(c for c in p2["components"] if c["name"] == "exposure_1")
    assert e1["evidence"]["paths"][0]["path"] == ["P2", "P1"]
    assert e1["evidence"]["paths"][0]["edges"][0]["incident_ids"] == ["I01"]
    assert e1["evidence"]["paths"][0]["victim_shot_in"] == [{"incident_id": "I04", "date": "2024-03-02"}]


def test_run_dir_must_be_new_or_empty_and_failures_leave_nothing(tmp_path, data, capsys):
    out = tmp_path / "r"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    assert main(["run", str(data), "--out", str(out), "-q"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    # bad input: exit 2, message names the file, no run folder left behind
    (data / "involvements.csv").write_text("incident_id,person,role\nI01,P1,suspect\n")
    out2 = tmp_path / "r2"
    assert main(["run", str(data), "--out", str(out2), "-q"]) == 2
    err = capsys.readouterr().err
    assert "involvements.csv" in err and "person_id" in err and "Traceback" not in err
    assert not out2.exists()
    empty = tmp_path / "r3"
    empty.mkdir()
    assert main(["run", str(data), "--out", str(empty), "-q"]) == 2
    assert list(empty.iterdir()) == []


def test_bad_policy_names_the_key(tmp_path, data, capsys):
    pol = tmp_path / "p.yaml"
    pol.write_text("window_days: 30\nguardrails: {juveniles: maybe}\nlists: {call_in: {sise: 3}}\n")
    assert main(["run", str(data), "--out", str(tmp_path / "r"), "--policy", str(pol), "-q"]) == 2
    err = capsys.readouterr().err
    assert "guardrails.juveniles" in err and "'exclude'" in err and "lists.call_in.sise" in err
    assert not (tmp_path / "r").exists()


def test_policy_window_changes_the_network(tmp_path, data):
    pol = tmp_path / "p.yaml"
    pol.write_text("window_days: 30\n")
    out = tmp_path / "r"
    assert main(["run", str(data), "--out", str(out), "--policy", str(pol), "-q"]) == 0
    e = read(out / "edges.csv")
    assert e["first_date"].min() >= "2024-03-02"
    m = json.loads((out / "manifest.json").read_text())
    assert m["policy"]["window_days"] == 30 and m["window"]["start"] == "2024-03-02"


def test_verify_passes_then_names_an_edited_list(run_dir, capsys):
    assert main(["verify", str(run_dir)]) == 0
    p = run_dir / "call_in.csv"
    text = p.read_text().splitlines()
    p.write_text("\n".join(text[:1] + text[2:]) + "\n")   # drop one listed person
    assert main(["verify", str(run_dir)]) == 1
    captured = capsys.readouterr()
    assert "call_in.csv" in captured.err


def test_verify_reruns_and_detects_changed_inputs(run_dir, data, capsys):
    (data / "involvements.csv").write_text((data / "involvements.csv").read_text() + "I05,P7,offender\n")
    assert main(["verify", str(run_dir)]) == 3          # hashes still match, but the re-run cannot be made
    c = capsys.readouterr()
    assert "changed since the run" in c.out and "NOT re-run" in c.err
    assert main(["verify", str(run_dir), "--no-rerun"]) == 0


def test_explain_on_and_off_lists(run_dir, capsys):
    assert main(["explain", str(run_dir), "V1", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["lists"]["call_in"]["on_list"] is False
    assert "victim only" in info["lists"]["call_in"]["why_not"]
    assert info["lists"]["service_referrals"]["on_list"] is True
    assert main(["explain", str(run_dir), "NOBODY"]) == 0
    assert "Not in the network" in capsys.readouterr().out


def test_report_escapes_input_strings_and_is_offline(tmp_path):
    inv = ("incident_id,person_id,role\nI01,<img src=x onerror=alert(1)>,suspect\nI01,P2,arrestee\n"
           "I01,V1,victim\nI02,P2,offender\n")
    groups = "person_id,group\n<img src=x onerror=alert(1)>,<b>Crew</b>\nP2,<b>Crew</b>\n"
    d = write_folder(tmp_path / "d", involvements=inv, groups=groups, persons=None, relations=None)
    out = tmp_path / "r"
    assert main(["run", str(d), "--out", str(out), "-q"]) == 0
    html = (out / "report.html").read_text()
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<b>Crew</b>" not in html and "&lt;b&gt;Crew&lt;/b&gt;" in html
    for bad in ("http://", "https://", "src=\"//", "<script src", "<link "):
        assert bad not in html


def test_entry_point_exit_codes(tmp_path):
    r = subprocess.run([sys.executable, "-m", "fdnet", "run", str(tmp_path / "missing"), "--out",
                        str(tmp_path / "o")], capture_output=True, text=True)
    assert r.returncode == 2
    assert "does not exist" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "fdnet", "run"], capture_output=True, text=True)
    assert r.returncode == 2
    r = subprocess.run([sys.executable, "-m", "fdnet", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "demo" in r.stdout and "explain" in r.stdout


def test_byte_identical_across_processes_and_hash_seeds(tmp_path, data):
    """No output may depend on dict/set/hash order: two processes with different hash seeds agree."""
    import os
    outs = []
    for seed in ("1", "4242"):
        out = tmp_path / f"run-{seed}"
        env = {**os.environ, "PYTHONHASHSEED": seed}
        r = subprocess.run([sys.executable, "-m", "fdnet", "run", str(data), "--out", str(out), "-q"],
                           capture_output=True, text=True, env=env)
        assert r.returncode == 0, r.stderr
        outs.append(out)
    for name in RUN_FILES:
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name


def test_manifest_reports_capped_incidents_and_data_quality(tmp_path, data, capsys):
    """network.max_pairs_per_incident reaches the network; the capped incidents and the data-quality
    findings are in the manifest (and a note says so), and such a run still verifies."""
    pol = tmp_path / "p.yaml"
    pol.write_text("network: {max_pairs_per_incident: 1}\n")
    out = tmp_path / "r"
    assert main(["run", str(data), "--out", str(out), "--policy", str(pol), "-q"]) == 0
    m = json.loads((out / "manifest.json").read_text())
    assert isinstance(m["data_quality"], list)
    capped = m["network"]["capped_incidents"]
    # I01 has two offenders and a victim: 1 co-offending pair, 2 victimization pairs
    assert {(c["incident_id"], c["layer"]) for c in capped} >= {("I01", "victimization")}
    assert all(c["pairs"] > 1 for c in capped)
    assert any("max_pairs_per_incident" in n for n in m["notes"])
    e = read(out / "edges.csv")
    assert not ((e["layer"] == "victimization") & e["incident_ids"].str.contains("I01")).any()
    capsys.readouterr()
    assert main(["verify", str(out)]) == 0
