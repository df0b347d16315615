"""The interventions and place_features tables (CONTRACT.md section 1): validated like every other
table, every row used or rejected with its reason, and neither changes scores or lists."""
from __future__ import annotations

import pandas as pd
import pytest
from helpers import write_folder

import fdnet
from fdnet.records import load_records
from fdnet.records.retention import apply_retention, retention_report

INTERVENTIONS = """person_id,Kind,date,source,list,notes
P1,call_in_invited,2024-03-20,KCPD,call_in,
P1,CALL_IN_ATTENDED,2024-03-28T18:30,KCPD,call_in,=HYPERLINK("x")
P1,call_in_attended,2024-03-28,KCPD,call_in,again
P1,call_in_attended,2024-03-28,Probation,call_in,another source: not a duplicate
P4,custom_notification_delivered,2024-03-30,,,
P2,street_outreach,2024-03-01,Aim4Peace,,
P3,night walk,2024-03-01,,,
,call_in_attended,2024-03-01,,,
P5,call_in_attended,,,,
P6,outreach_contacted,2099-01-01,,,
P6,outreach_contacted,2024-05-01,,,
"""

PLACES = """feature_id,kind,lat,lon,date,source
VB1,Vacant_Building,39.09,-94.55,2023-01-01,land bank
VB2,vacant_building,39.10,-94.56,,land bank
BS1,bus_stop,,-94.56,,
BS2,bus_stop,95,-94.56,,
VB1,bus_stop,39.0,-94.5,,
LQ1,liquor_outlet,39.0,-94.5,2024-06-01,
"""


def _rows(rec, file):
    r = rec.rejected
    return r[r["file"] == file].set_index("line")


def test_interventions_rows_are_used_or_rejected_with_reasons(tmp_path):
    rec = load_records(write_folder(tmp_path, extra={"interventions.csv": INTERVENTIONS}), today="2024-06-01")
    rj = _rows(rec, "interventions.csv")
    assert "duplicate row 'P1/call_in_attended/2024-03-28/KCPD'" in rj.loc[4, "reason"]   # a time of day is the same date
    assert rj.loc[8, "column"] == "kind" and "'night walk' is not a code" in rj.loc[8, "reason"]
    assert rj.loc[9, "column"] == "person_id" and "empty" in rj.loc[9, "reason"]
    assert rj.loc[10, "column"] == "date" and rj.loc[10, "reason"] == "date is empty"
    assert "dated in the future" in rj.loc[11, "reason"]
    assert sorted(rj.index) == [4, 8, 9, 10, 11]
    iv = rec.interventions
    # kinds case-folded, dates as ISO days, notes kept raw; the row after the as-of date (2024-04-01) set aside
    assert iv[["person_id", "kind", "date", "source"]].values.tolist() == [
        ["P1", "call_in_attended", "2024-03-28", "KCPD"],
        ["P1", "call_in_attended", "2024-03-28", "Probation"],
        ["P1", "call_in_invited", "2024-03-20", "KCPD"],
        ["P2", "street_outreach", "2024-03-01", "Aim4Peace"],
        ["P4", "custom_notification_delivered", "2024-03-30", ""],
    ]
    assert iv.loc[0, "notes"] == '=HYPERLINK("x")' and iv.loc[0, "line"] == 3
    rows = rec.inputs["interventions"]["rows"]
    assert rows == {"read": 11, "used": 6, "rejected": 5, "after_as_of": 1}
    assert any("local kind" in n and "street_outreach (1 row)" in n for n in rec.notes)


def test_place_features_rows_are_used_or_rejected_with_reasons(tmp_path):
    rec = load_records(write_folder(tmp_path, extra={"place_features.csv": PLACES}), today="2024-06-01")
    rj = _rows(rec, "place_features.csv")
    assert rj.loc[4, "reason"] == "lat is empty"
    assert "outside -90..90" in rj.loc[5, "reason"]
    assert "duplicate row 'VB1'" in rj.loc[6, "reason"]
    pf = rec.place_features
    assert pf["feature_id"].tolist() == ["VB1", "VB2"]          # LQ1 is dated after the as-of date
    assert pf["kind"].tolist() == ["vacant_building", "vacant_building"]
    assert pf["lat"].dtype.kind == "f" and pf["lat"].tolist() == [39.09, 39.10]
    assert rec.inputs["place_features"]["rows"] == {"read": 6, "used": 3, "rejected": 3, "after_as_of": 1}


def test_without_the_tables_nothing_is_read(tmp_path):
    rec = load_records(write_folder(tmp_path))
    assert rec.interventions is None and rec.place_features is None
    assert "interventions" not in rec.inputs and "place_features" not in rec.inputs


def test_parquet_and_mapping_read_the_interventions_table(tmp_path):
    d = write_folder(tmp_path / "d")
    pd.DataFrame({"subject": ["P1", "P4"], "kind": ["call_in_attended", "custom_notification_delivered"],
                  "date": ["2024-03-28", "2024-03-30"]}).to_parquet(d / "done.parquet")
    (d / "mapping.yaml").write_text("tables:\n  interventions:\n    file: done.parquet\n    columns: {person_id: subject}\n",
                                    encoding="utf-8")
    rec = load_records(d)
    assert rec.interventions["person_id"].tolist() == ["P1", "P4"]
    assert rec.inputs["interventions"]["rows"]["used"] == 2


def test_intervention_rows_past_retention_are_purged(tmp_path):
    text = "person_id,kind,date\nP1,call_in_attended,2015-01-01\nP1,call_in_attended,2024-03-01\n"
    d = write_folder(tmp_path, extra={"interventions.csv": text})
    rec = apply_retention(load_records(d), 1826)
    assert rec.interventions["date"].tolist() == ["2024-03-01"]
    assert rec.inputs["interventions"]["rows"]["purged_retention"] == 1
    due, _ = retention_report(d, as_of="2024-04-01")
    assert due[due["table"] == "interventions"]["key"].tolist() == ["P1 / call_in_attended"]


def test_the_tables_change_no_list_and_are_hashed_into_the_manifest(tmp_path):
    from fdnet.synth import generate_city, write_city
    city = tmp_path / "city"
    write_city(generate_city(n_people=600, seed=3), city)
    plain = fdnet.run(city, as_of="2025-12-30")
    people = plain.scores["person_id"].head(3).tolist()
    (city / "interventions.csv").write_text(
        "person_id,kind,date\n" + "".join(f"{p},call_in_attended,2025-06-01\n" for p in people), encoding="utf-8")
    (city / "place_features.csv").write_text("feature_id,kind,lat,lon\nF1,bus_stop,40.0,-100.0\n", encoding="utf-8")
    both = fdnet.run(city, as_of="2025-12-30")
    a, b = dict(plain.files()), dict(both.files())
    for name in ("call_in.csv", "custom_notifications.csv", "service_referrals.csv", "scores.csv", "edges.csv",
                 "groups.csv", "explanations.jsonl"):
        assert a[name] == b[name], name
    assert both.manifest["inputs"]["interventions"]["rows"] == {"read": 3, "used": 3, "rejected": 0,
                                                                "after_as_of": 0, "purged_retention": 0}
    assert len(both.manifest["inputs"]["place_features"]["sha256"]) == 64


@pytest.mark.parametrize("bad, why", [
    ("person_id,date\nP1,2024-01-01\n", "missing required column kind"),
    ("feature_id,kind,lat\nF1,bus_stop,40\n", "missing required column lon"),
])
def test_a_missing_required_column_stops_the_run(tmp_path, bad, why):
    from fdnet.errors import InputError
    name = "interventions.csv" if bad.startswith("person_id") else "place_features.csv"
    with pytest.raises(InputError) as e:
        load_records(write_folder(tmp_path, extra={name: bad}))
    assert why in str(e.value) and name in str(e.value)


def test_an_intervention_id_that_only_looks_like_a_records_id_is_reported(tmp_path):
    text = "person_id,kind,date\nP\u200b1,call_in_attended,2024-03-28\n"
    rec = load_records(write_folder(tmp_path, extra={"interventions.csv": text}))
    found = [f for f in rec.findings if f["kind"] == "confusable_ids" and f["column"] == "person_id"]
    assert found and any("interventions" in str(g["tables"]) for g in found[0]["groups"])
