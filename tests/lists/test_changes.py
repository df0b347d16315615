"""changes.csv: `fdnet run --previous RUN` says who entered, left or stayed on each list, and why."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import fdnet
from fdnet.errors import UsageError
from fdnet.lists.changes import CHANGES_COLUMNS
from fdnet.runfolder import LIST_NAMES, open_run
from fdnet.tables import read_csv_table
from helpers import INCIDENTS, INVOLVEMENTS, PERSONS, write_folder

HOSTILE = "=HYPERLINK(1)<script>alert(1)</script>"
TODAY = "2024-12-31"
# a 60-day window, so that the first run's records age out by the second; lists open to every score
POLICY_0 = {"window_days": 60, "lists": {"call_in": {"min_score": 0}, "custom_notifications": {"min_score": 40},
                                         "service_referrals": {"min_score": 0}}}
POLICY_1 = {"window_days": 60, "lists": {"call_in": {"min_score": 0}, "custom_notifications": {"min_score": 45},
                                         "service_referrals": {"min_score": 0}}}
LATER_INCIDENTS = ("I07,2024-04-10,aggravated assault,13A,true,false,true,1\n"
                   "I08,2024-04-20,robbery,120,false,false,true,1\n"
                   "I09,2024-05-01,burglary,220,false,false,false,2\n")
LATER_INVOLVEMENTS = (f"I07,N2,suspect\nI07,N1,victim\nI08,N2,offender\nI08,{HOSTILE},offender\nI08,P2,offender\n"
                      "I09,P4,offender\nI09,P3,offender\n")


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """Two runs of the small test city: r0 as of 2024-04-01; r1 as of 2024-05-15 with three more incidents,
    P4 now incarcerated and a higher custom-notification minimum. P6 is renamed to a hostile ID."""
    d = tmp_path_factory.mktemp("changes")
    a = write_folder(d / "a", involvements=INVOLVEMENTS.replace("P6", HOSTILE), persons=PERSONS.replace("P6", HOSTILE))
    fdnet.run(a, as_of="2024-04-01", policy=POLICY_0, today=TODAY).write(d / "r0")
    b = write_folder(d / "b", incidents=INCIDENTS + LATER_INCIDENTS,
                     involvements=INVOLVEMENTS.replace("P6", HOSTILE) + LATER_INVOLVEMENTS,
                     persons=PERSONS.replace("P6", HOSTILE).replace("P4,1995,F,parole,false,false",
                                                                    "P4,1995,F,parole,false,true"))
    r1 = fdnet.run(b, as_of="2024-05-15", policy=POLICY_1, previous_run=d / "r0", today=TODAY)
    r1.write(d / "r1")
    return d, r1


def _row(ch: pd.DataFrame, lst: str, pid: str) -> pd.Series:
    sel = ch[(ch["list"] == lst) & (ch["person_id"] == pid)]
    assert len(sel) == 1, (lst, pid, sel)
    return sel.iloc[0]


def test_reasons_say_why_each_person_entered_or_left(small):
    _, r1 = small
    ch = r1.changes
    assert list(ch.columns) == list(CHANGES_COLUMNS)
    # left: a guardrail now applies (incarcerated), with what changed in the score
    p4 = _row(ch, "custom_notifications", "P4")
    assert p4["change"] == "left" and p4["previous_rank"] == 2 and pd.isna(p4["rank"])
    assert p4["reason"].startswith("Guardrail now applies: recorded as incarcerated; score 44 (was 66 in run r0)")
    assert "gun_offending -1 (-17 pts)" in p4["reason"]
    # left: below the list's minimum, which the policy raised
    p3 = _row(ch, "custom_notifications", "P3")
    assert p3["change"] == "left" and p3["score"] == 44
    assert p3["reason"] == ("Score 44 (was 44 in run r0); below the list's minimum of 45 (was 40).")
    # left: no longer in the network (the records aged out of the 60-day window)
    p1 = _row(ch, "service_referrals", "P1")
    assert p1["change"] == "left" and pd.isna(p1["score"]) and p1["previous_score"] == 114
    assert p1["reason"].startswith("No longer in the network: no involvement inside the window (60 days to "
                                   "2024-05-15)")
    # entered: new to the records; a new shooting victim goes to services whatever the score
    n2 = _row(ch, "custom_notifications", "N2")
    assert n2["change"] == "entered" and pd.isna(n2["previous_score"]) and n2["rank"] == 2
    assert n2["reason"].startswith("New to the network since run r0") and n2["reason"].endswith("score 102.")
    n1 = _row(ch, "service_referrals", "N1")
    assert n1["reason"] == ("Shot on 2024-04-10 (a recent shooting victim, referred whatever the score); "
                            "new to the network since run r0.")
    # entered: a score that rose, and the group chosen for the call-in
    h = _row(ch, "call_in", HOSTILE)
    assert h["change"] == "entered" and (h["previous_score"], h["score"]) == (66, 102)
    assert h["reason"] == ("Score 102 (was 66 in run r0): group_violence +2 (+14 pts), group_conflicts +1 (+13 pts), "
                           "core_number +1 (+5 pts); group Eastside chosen for the call-in this cycle.")
    # stayed
    s = _row(ch, "service_referrals", HOSTILE)
    assert s["change"] == "stayed" and s["reason"] == "On the list in both runs: rank 3 (was 3), score 39 (was 39 in run r0)."
    # victims are never moved to an enforcement list by changes: N1 appears only on service_referrals
    assert set(ch.loc[ch["person_id"] == "N1", "list"]) == {"service_referrals"}


def test_every_listed_person_once_per_list_and_sorted(small):
    d, r1 = small
    r0 = open_run(d / "r0")
    ch = r1.changes
    for name in LIST_NAMES:
        sub = ch[ch["list"] == name]
        before = set(r0.table(name)["person_id"])
        now = set(r1.lists[name]["person_id"])
        assert set(sub["person_id"]) == before | now and not sub["person_id"].duplicated().any()
        assert set(sub.loc[sub["change"] == "entered", "person_id"]) == now - before
        assert set(sub.loc[sub["change"] == "left", "person_id"]) == before - now
        assert set(sub.loc[sub["change"] == "stayed", "person_id"]) == before & now
    order = ch.assign(l=ch["list"].map(LIST_NAMES.index),
                      c=ch["change"].map(("entered", "left", "stayed").index),
                      r=np.where(ch["change"] == "left", ch["previous_rank"].astype(float), ch["rank"].astype(float)))
    again = order.sort_values(["l", "c", "r", "person_id"], kind="stable")
    assert again.index.tolist() == list(range(len(ch)))
    assert ch["reason"].str.endswith(".").all() and (ch["reason"].str.len() > 10).all()


def test_hostile_id_stays_inert_in_csv_and_report(small):
    d, _ = small
    raw = (d / "r1" / "changes.csv").read_bytes()
    assert ("'" + HOSTILE).encode() in raw
    for line in raw.decode().splitlines():
        assert not any(cell.lstrip('"').startswith("=") for cell in line.split(","))
    back = read_csv_table(raw)
    assert HOSTILE in set(back["person_id"])
    html = (d / "r1" / "report.html").read_text("utf-8")
    assert "Changes since run r0 (as of 2024-04-01)" in html
    assert "<script>alert(1)" not in html
    assert "=HYPERLINK(1)&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_manifest_records_the_previous_run(small):
    d, r1 = small
    prev = r1.manifest["previous"]
    r0 = open_run(d / "r0")
    assert prev == {"run_dir": str((d / "r0").resolve()), "manifest_sha256": r0.manifest_sha256,
                    "as_of": "2024-04-01"}
    assert open_run(d / "r1").table("changes")["person_id"].tolist() == r1.changes["person_id"].tolist()


def test_no_previous_no_changes(small):
    d, _ = small
    r = fdnet.run(d / "a", as_of="2024-04-01", policy=POLICY_0, today=TODAY)
    assert r.changes is None and "previous" not in r.manifest
    assert "changes.csv" not in dict(r.files())


def test_forged_or_missing_previous_is_refused(small, tmp_path):
    d, _ = small
    forged = tmp_path / "forged"
    shutil.copytree(d / "r0", forged)
    p = forged / "custom_notifications.csv"
    p.write_bytes(p.read_bytes().replace(b"P4", b"P9"))
    with pytest.raises(UsageError, match=r"--previous .*forged.*altered"):
        fdnet.run(d / "b", as_of="2024-05-15", policy=POLICY_1, previous_run=forged, today=TODAY)
    added = tmp_path / "added"
    shutil.copytree(d / "r0", added)
    (added / "extra.csv").write_text("x\n")
    with pytest.raises(UsageError, match="extra.csv is not part of the run"):
        fdnet.run(d / "b", as_of="2024-05-15", policy=POLICY_1, previous_run=added, today=TODAY)
    with pytest.raises(UsageError, match="--previous .*not a run folder"):
        fdnet.run(d / "b", previous_run=tmp_path / "nowhere", today=TODAY)


def test_cli_refuses_a_forged_previous_with_exit_2(small, tmp_path):
    d, _ = small
    forged = tmp_path / "forged"
    shutil.copytree(d / "r0", forged)
    (forged / "scores.csv").write_bytes((forged / "scores.csv").read_bytes() + b"\n")
    env = dict(os.environ, PYTHONPATH=str(Path(fdnet.__file__).resolve().parent.parent))
    r = subprocess.run([sys.executable, "-m", "fdnet", "run", str(d / "b"), "--out", str(tmp_path / "out"),
                        "--previous", str(forged), "-q"], capture_output=True, text=True, env=env)
    assert r.returncode == 2, r.stderr
    assert "--previous" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    from fdnet.synth import generate_city, write_city
    d = tmp_path_factory.mktemp("city")
    write_city(generate_city(n_people=1500, seed=2), d / "city")
    fdnet.run(d / "city", as_of="2025-06-30").write(d / "r0")
    return d


def test_synthetic_city_two_cycles_byte_identical(city):
    d = city
    a = fdnet.run(d / "city", previous_run=d / "r0").write(d / "r1a")
    b = fdnet.run(d / "city", previous_run=d / "r0").write(d / "r1b")
    names = sorted(p.name for p in a.iterdir())
    assert "changes.csv" in names and names == sorted(p.name for p in b.iterdir())
    for n in names:
        assert (a / n).read_bytes() == (b / n).read_bytes(), n
    ch = open_run(a).table("changes")
    r0 = open_run(d / "r0")
    for name in LIST_NAMES:
        sub = ch[ch["list"] == name]
        counts = sub["change"].value_counts()
        assert counts.get("entered", 0) + counts.get("stayed", 0) == len(open_run(a).table(name))
        assert counts.get("left", 0) + counts.get("stayed", 0) == len(r0.table(name))
        assert {"entered", "left", "stayed"} <= set(counts.index), (name, counts)
    # ranks: empty exactly where the person was not on the list in that run
    assert (ch.loc[ch["change"] == "entered", "previous_rank"] == "").all()
    assert (ch.loc[ch["change"] == "left", "rank"] == "").all()
    assert (ch.loc[ch["change"] == "stayed", ["rank", "previous_rank"]] != "").all().all()
