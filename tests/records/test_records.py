"""The records stage: every row used or rejected with file, line, column and reason."""
from __future__ import annotations

import pandas as pd
import pytest
from helpers import INCIDENTS, INVOLVEMENTS, write_folder

from fdnet.errors import InputError
from fdnet.records import load_records


def rejected(rec, file=None):
    r = rec.rejected
    return r if file is None else r[r["file"] == file]


def test_clean_folder_uses_every_row(tmp_path):
    rec = load_records(write_folder(tmp_path))
    assert len(rec.rejected) == 0
    assert rec.inputs["incidents"]["rows"] == {"read": 6, "used": 6, "rejected": 0, "after_as_of": 0}
    assert rec.inputs["involvements"]["rows"]["read"] == 14
    assert rec.inputs["involvements"]["rows"]["used"] == 14
    assert rec.as_of == "2024-04-01"  # default: latest incident date
    assert set(rec.involvements["role"]) == {"suspect", "arrestee", "victim", "offender", "witness"}


def test_bad_cells_are_rejected_with_line_column_reason(tmp_path):
    inc = INCIDENTS + "I07,2024-02-30,x,,true,,,\nI08,2024-02-01,x,,maybe,,,\n,2024-02-01,x,,,,,\nI09,2024-02-01,x,,,,,,\n"
    inv = INVOLVEMENTS + "I01,P9,boss\nI77,P9,offender\nI01,,victim\nI01,P1,suspect\n"
    rec = load_records(write_folder(tmp_path, incidents=inc, involvements=inv))
    ri = rejected(rec, "incidents.csv").set_index("line")
    assert ri.loc[8, "column"] == "date" and "2024-02-30" in ri.loc[8, "reason"]
    assert ri.loc[9, "column"] == "gun" and "not a boolean" in ri.loc[9, "reason"]
    assert ri.loc[10, "column"] == "incident_id" and "empty" in ri.loc[10, "reason"]
    assert "fields" in ri.loc[11, "reason"]  # one field too many
    rv = rejected(rec, "involvements.csv").set_index("line")
    assert rv.loc[16, "column"] == "role" and "boss" in rv.loc[16, "reason"]
    assert "I77" in rv.loc[17, "reason"] and "not in incidents.csv" in rv.loc[17, "reason"]
    assert rv.loc[18, "column"] == "person_id"
    assert "duplicate" in rv.loc[19, "reason"] and "line 2" in rv.loc[19, "reason"]
    # raw row kept verbatim enough to find it
    assert rv.loc[16, "raw"] == "I01,P9,boss"
    # counts add up: read = used + rejected
    for entry in rec.inputs.values():
        r = entry["rows"]
        assert r["read"] == r["used"] + r["rejected"]
    assert rec.inputs["incidents"]["rows"]["rejected"] == 4
    assert rec.inputs["involvements"]["rows"]["rejected"] == 4


def test_bom_crlf_case_insensitive_headers_quotes_and_extra_columns(tmp_path):
    inc = ("\ufeffIncident_ID,DATE,Gun,Notes\r\n"
           "I1,2024-01-01T10:30:00Z,TRUE,\"a, quoted\r\nmulti-line note\"\r\n"
           "I2,2024-01-02 08:00,no,\"say \"\"hi\"\"\"\r\n")
    inv = ("incident_id,PERSON_ID,Role\r\n"
           "I1,\"<script>alert(1)</script>\",Suspect\r\n"
           "I1,\"O\"\"Brien, J\",ARRESTEE\r\n"
           "I2,X,victim\r\n"
           "I2,,victim\r\n")
    rec = load_records(write_folder(tmp_path, incidents=inc, involvements=inv, persons=None, groups=None,
                                    relations=None))
    assert sorted(rec.involvements["person_id"]) == ["<script>alert(1)</script>", "O\"Brien, J", "X"]
    assert rec.incidents["date"].tolist() == ["2024-01-01", "2024-01-02"]
    assert rec.incidents["gun"].tolist() == [True, False]
    r = rejected(rec, "involvements.csv")
    assert r["line"].tolist() == [5]
    # the quoted newline in incidents does not shift later line numbers
    inc_bad = inc + "I3,not-a-date,no,\r\n"
    (tmp_path / "incidents.csv").write_text(inc_bad, encoding="utf-8", newline="")
    rec = load_records(tmp_path)
    assert rejected(rec, "incidents.csv")["line"].tolist() == [5]


@pytest.mark.parametrize("case, expect", [
    ("missing_incidents", "incidents"),
    ("missing_column", "person_id"),
    ("empty_file", "empty"),
    ("header_only", "no data rows"),
    ("not_utf8", "UTF-8"),
    ("duplicate_header", "twice"),
    ("not_a_folder", "not a folder"),
    ("both_formats", "keep one"),
])
def test_file_level_problems_stop_with_clear_message(tmp_path, case, expect):
    d = write_folder(tmp_path / "d")
    if case == "missing_incidents":
        (d / "incidents.csv").unlink()
    elif case == "missing_column":
        (d / "involvements.csv").write_text("incident_id,who,role\nI01,P1,suspect\n")
    elif case == "empty_file":
        (d / "incidents.csv").write_text("")
    elif case == "header_only":
        (d / "involvements.csv").write_text("incident_id,person_id,role\n")
    elif case == "not_utf8":
        (d / "incidents.csv").write_bytes(INCIDENTS.encode() + "I99,2024-01-01,caf\xe9,,,,,\n".encode("latin-1"))
    elif case == "duplicate_header":
        (d / "incidents.csv").write_text("incident_id,date,DATE\nI1,2024-01-01,2024-01-01\n")
    elif case == "not_a_folder":
        d = d / "incidents.csv"
    elif case == "both_formats":
        pd.DataFrame({"incident_id": ["I1"], "date": ["2024-01-01"]}).to_parquet(d / "incidents.parquet")
    with pytest.raises(InputError) as ei:
        load_records(d)
    assert expect in str(ei.value)


def test_missing_column_error_names_file_and_column(tmp_path):
    d = write_folder(tmp_path)
    (d / "involvements.csv").write_text("incident_id,who,role\nI01,P1,suspect\n")
    with pytest.raises(InputError) as ei:
        load_records(d)
    e = ei.value
    assert e.file == "involvements.csv" and e.column == "person_id" and e.line == 1


def test_as_of_sets_later_records_aside_as_if_absent(tmp_path):
    d = write_folder(tmp_path / "a")
    rec = load_records(d, as_of="2024-02-15")
    assert rec.incidents["incident_id"].tolist() == ["I01", "I02", "I03"]
    assert rec.inputs["incidents"]["rows"]["after_as_of"] == 3
    assert set(rec.involvements["incident_id"]) == {"I01", "I02", "I03"}
    # same as a folder where the later rows are absent
    keep_inc = "\n".join(INCIDENTS.splitlines()[:4]) + "\n"
    keep_inv = "\n".join(l for l in INVOLVEMENTS.splitlines() if l.split(",")[0] not in ("I04", "I05", "I06")) + "\n"
    rec2 = load_records(write_folder(tmp_path / "b", incidents=keep_inc, involvements=keep_inv), as_of="2024-02-15")
    cols = ["incident_id", "person_id", "role"]
    pd.testing.assert_frame_equal(rec.involvements[cols], rec2.involvements[cols])
    with pytest.raises(InputError):
        load_records(d, as_of="15/02/2024")


def test_mapping_renames_columns_and_role_codes(tmp_path):
    inc = "CASE_NO,REPORT_DT,FIREARM\nC1,2024-01-01,Y\nC2,2024-01-03,N\n"
    inv = "CASE_NO,NAME_ID,INV_TYPE\nC1,N1,SUSP\nC1,N2,ARR\nC1,N3,VIC\nC2,N1,VIC+SUSP\nC2,N4,XX\n"
    mapping = """
tables:
  incidents: {columns: {incident_id: CASE_NO, date: REPORT_DT, gun: FIREARM}}
  involvements: {columns: {incident_id: CASE_NO, person_id: NAME_ID, role: INV_TYPE}}
roles: {SUSP: suspect, ARR: arrestee, VIC: victim, "VIC+SUSP": [victim, suspect]}
booleans: {true: [Y], false: [N]}
"""
    d = write_folder(tmp_path, incidents=inc, involvements=inv, persons=None, groups=None, relations=None,
                     extra={"mapping.yaml": mapping})
    rec = load_records(d)
    got = sorted(map(tuple, rec.involvements[["incident_id", "person_id", "role"]].to_numpy().tolist()))
    assert got == [("C1", "N1", "suspect"), ("C1", "N2", "arrestee"), ("C1", "N3", "victim"),
                   ("C2", "N1", "suspect"), ("C2", "N1", "victim")]
    assert rec.incidents["gun"].tolist() == [True, False]
    r = rejected(rec)
    assert r["line"].tolist() == [6] and "XX" in r["reason"].iat[0]


def test_mapping_long_export(tmp_path):
    export = ("CASE,DT,PID,ROLE,GUN\n"
              "C1,2024-01-01,A,offender,true\n"
              "C1,2024-01-01,B,offender,true\n"
              "C1,2024-01-01,V,victim,true\n"
              "C2,2024-01-05,A,offender,false\n"
              "C2,2024-01-06,B,offender,false\n")
    mapping = "long:\n  file: export.csv\n  columns: {incident_id: CASE, date: DT, person_id: PID, role: ROLE, gun: GUN}\n"
    d = tmp_path / "d"
    d.mkdir()
    (d / "export.csv").write_text(export)
    (d / "mapping.yaml").write_text(mapping)
    rec = load_records(d)
    assert rec.incidents["incident_id"].tolist() == ["C1", "C2"]
    assert len(rec.involvements) == 4
    r = rejected(rec)
    assert r["line"].tolist() == [6] and "differ" in r["reason"].iat[0]
    assert rec.inputs["long_export"]["rows"] == {"read": 5, "used": 4, "rejected": 1, "after_as_of": 0}


@pytest.mark.parametrize("text, msg", [
    ("tables: {incidents: {columns: {incidentid: X}}}", "unknown column"),
    ("roles: {S: boss}", "unknown role"),
    ("nonsense: 1", "nonsense"),
    ("tables: [", "not valid YAML"),
])
def test_bad_mapping_is_a_clear_error(tmp_path, text, msg):
    d = write_folder(tmp_path, extra={"mapping.yaml": text})
    with pytest.raises(InputError) as ei:
        load_records(d)
    assert msg in str(ei.value) and "mapping.yaml" in str(ei.value)


def test_optional_tables_validated(tmp_path):
    persons = "person_id,birth_year,supervision,deceased\nP1,1990,probation,no\nP1,1991,none,no\nP2,19x0,none,no\nP3,1990,house arrest,no\n"
    groups = "person_id,group,date\nP1,East,2023-01-01\nP2,,2023-01-01\nP3,West,2030-01-01\n"
    rel = "group_a,group_b,relation\nEast,West,conflict\nEast,East,conflict\nEast,West,feud\n"
    d = write_folder(tmp_path, persons=persons, groups=groups, relations=rel)
    rec = load_records(d, today="2030-06-01")
    assert rec.persons["person_id"].tolist() == ["P1"]
    r = rejected(rec)
    reasons = dict(zip(zip(r["file"], r["line"]), r["reason"]))
    assert "first given on line 2" in reasons[("persons.csv", 3)]
    assert "integer" in reasons[("persons.csv", 4)]
    assert "house arrest" in reasons[("persons.csv", 5)]
    assert "empty" in reasons[("groups.csv", 3)]
    assert rec.groups["person_id"].tolist() == ["P1"]          # P3's row is dated after as_of
    assert rec.inputs["groups"]["rows"]["after_as_of"] == 1
    # run on a day before 2030-01-01, the same row is dated in the future: rejected, not set aside
    rec = load_records(d, today="2029-12-31")
    r = rejected(rec)
    assert "dated in the future" in dict(zip(zip(r["file"], r["line"]), r["reason"]))[("groups.csv", 4)]
    assert rec.inputs["groups"]["rows"]["after_as_of"] == 0
    assert "same group" in reasons[("group_relations.csv", 3)]
    assert "feud" in reasons[("group_relations.csv", 4)]


def test_parquet_input(tmp_path):
    d = tmp_path / "p"
    d.mkdir()
    pd.DataFrame({"incident_id": ["I1", "I2"], "date": pd.to_datetime(["2024-01-01", "2024-02-01"]),
                  "gun": [True, False]}).to_parquet(d / "incidents.parquet")
    pd.DataFrame({"incident_id": ["I1", "I1", "I2"], "person_id": ["A", "B", "A"],
                  "role": ["suspect", "victim", "nope"]}).to_parquet(d / "involvements.parquet")
    rec = load_records(d)
    assert rec.incidents["date"].tolist() == ["2024-01-01", "2024-02-01"]
    assert rec.incidents["gun"].tolist() == [True, False]
    assert rejected(rec)["line"].tolist() == [3]  # Parquet: 1-based row number


def test_parquet_types_become_text_like_csv(tmp_path):
    """Every Arrow type a records system writes reads as the text a CSV export would hold."""
    import datetime as dt

    import pyarrow as pa
    import pyarrow.parquet as pq

    d = tmp_path / "p"
    d.mkdir()
    inc = pa.table({
        "incident_id": pa.array(["I1", "I2", "I3"]).dictionary_encode(),           # categorical
        "date": pa.array([pd.Timestamp("2024-01-01 22:30", tz="America/Chicago"),
                          pd.Timestamp("2024-01-02", tz="America/Chicago"), None],
                         pa.timestamp("us", tz="America/Chicago")),
        "gun": pa.array([True, None, False]),
        "lat": pa.array([41.5, None, 41.0]),
        "district": pa.array([7, None, 12], pa.int16()),
    })
    pq.write_table(inc, d / "incidents.parquet")
    inv = pa.table({"incident_id": ["I1", "I1", "I2"], "person_id": pa.array([10, 11, None], pa.int64()),
                    "role": ["suspect", "victim", "offender"]})
    pq.write_table(inv, d / "involvements.parquet")
    pq.write_table(pa.table({"person_id": pa.array([10.0, 11.0]), "birth_date": pa.array(
        [dt.date(2001, 5, 1), None], pa.date32()), "birth_year": pa.array([None, 1990.0])}), d / "persons.parquet")
    rec = load_records(d, today="2025-01-01")
    assert rec.incidents["incident_id"].tolist() == ["I1", "I2"]
    assert rec.incidents["date"].tolist() == ["2024-01-01", "2024-01-02"]   # local date, as written
    assert rec.incidents["gun"].tolist() == [True, False]                     # null boolean = false
    assert rec.incidents["district"].tolist() == ["7", ""]
    assert rec.involvements["person_id"].tolist() == ["10", "11"]
    assert rec.persons["person_id"].tolist() == ["10", "11"]
    assert rec.persons["birth_date"].tolist() == ["2001-05-01", ""]
    r = rejected(rec)
    assert "date is empty" in r[r["file"] == "incidents.parquet"]["reason"].iat[0]
    assert "person_id is empty" in r[r["file"] == "involvements.parquet"]["reason"].iat[0]
    # a nested extra column is kept as JSON text in the raw row; a nested column fdnet reads is an error
    pq.write_table(pa.table({"person_id": ["10", ""], "aliases": pa.array([["a", "b"], None])}), d / "persons.parquet")
    rec = load_records(d, today="2025-01-01")
    assert rejected(rec, "persons.parquet")["raw"].tolist() == [","]
    assert rec.persons["person_id"].tolist() == ["10"]
    pq.write_table(pa.table({"person_id": pa.array([["10"]])}), d / "persons.parquet")
    with pytest.raises(InputError, match="nested Parquet column"):
        load_records(d, today="2025-01-01")


def test_every_mapping_example_in_data_format_md_is_valid():
    """The YAML examples of docs/data-format.md parse and validate (the docs cannot rot)."""
    import re
    from pathlib import Path

    import yaml

    from fdnet.records.mapping import Mapping

    doc = (Path(__file__).resolve().parents[2] / "docs" / "data-format.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", doc, flags=re.DOTALL)
    assert len(blocks) >= 5
    for b in blocks:
        m = Mapping.model_validate(yaml.load(b, Loader=yaml.BaseLoader))
        assert m.tables or m.long or m.roles
    assert any(m for b in blocks if (m := Mapping.model_validate(yaml.load(b, Loader=yaml.BaseLoader))).constants())
