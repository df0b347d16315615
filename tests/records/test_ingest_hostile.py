"""Real-world and hostile input files (issue 9, items 4, 6-8): every case ends in a correct table, a row in
rejected.csv with its reason, or a clear exit 2 naming the file; never a silent wrong result."""
from __future__ import annotations

import contextlib
import io
import os
import socket
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import INCIDENTS, INVOLVEMENTS, PERSONS, write_folder

from fdnet.cli import main
from fdnet.errors import InputError
from fdnet.records import load_records
from fdnet.records.read import MAX_FIELD_CHARS, parse_csv

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def rej(rec, file=None):
    r = rec.rejected
    return r if file is None else r[r["file"] == file]


def reasons(rec):
    r = rec.rejected
    return dict(zip(zip(r["file"], r["line"]), r["reason"]))


def counts_add_up(rec):
    for key, entry in rec.inputs.items():
        rows = entry["rows"]
        assert rows["read"] == rows["used"] + rows["rejected"], key
        n_file = int((rec.rejected["file"] == Path(entry["path"]).name).sum())
        assert rows["rejected"] == n_file, key


def run_cli(tmp_path, d, *extra):
    out = tmp_path / "run"
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main(["run", str(d), "--out", str(out), "-q", *extra])
    return rc, out, err.getvalue()


def numeric_folder(tmp_path: Path) -> Path:
    """The helper folder with integer person IDs (P1 -> 1, V2 -> 1002, ...)."""
    num = {f"P{i}": str(i) for i in range(1, 7)} | {"V1": "1001", "V2": "1002", "W1": "2001"}
    inv = "\n".join(",".join([a, num.get(b, b), c]) for a, b, c in
                    (ln.split(",") for ln in INVOLVEMENTS.strip().splitlines()))
    return write_folder(tmp_path, involvements=inv + "\n", persons=None, groups=None, relations=None)


# --- 1, 2: Parquet nulls and integer IDs ------------------------------------------------------

def test_parquet_null_ids_are_rejected_never_one_person(tmp_path):
    d = write_folder(tmp_path, persons=None, groups=None, relations=None)
    (d / "involvements.csv").unlink()
    (d / "groups.csv").exists() and (d / "groups.csv").unlink()
    inv = pd.DataFrame({"incident_id": pd.array(["I01", "I01", None, "I02", "I02"], dtype="string"),
                        "person_id": pd.array(["P1", None, "P3", None, "P2"], dtype="string"),
                        "role": ["suspect", "suspect", "offender", "offender", "offender"]})
    inv.to_parquet(d / "involvements.parquet")
    groups = pd.DataFrame({"person_id": pd.array(["P1", "P2"], dtype="string"),
                           "group": pd.array([None, "East"], dtype="string")})
    groups.to_parquet(d / "groups.parquet")
    rec = load_records(d)
    assert "<NA>" not in set(rec.involvements["person_id"]) and "" not in set(rec.involvements["person_id"])
    assert sorted(rec.involvements["person_id"]) == ["P1", "P2"]
    r = reasons(rec)
    assert "person_id is empty" in r[("involvements.parquet", 2)]
    assert "incident_id is empty" in r[("involvements.parquet", 3)]
    assert "person_id is empty" in r[("involvements.parquet", 4)]
    assert "group is empty" in r[("groups.parquet", 1)]
    counts_add_up(rec)


@pytest.mark.parametrize("marker", ["NULL", "NA", "nan", "None", "<NA>", "\\N", "#N/A"])
def test_null_marker_ids_are_rejected_in_csv(tmp_path, marker):
    inv = INVOLVEMENTS + f"I01,{marker},suspect\nI02,{marker},offender\n"
    rec = load_records(write_folder(tmp_path, involvements=inv))
    assert marker not in set(rec.involvements["person_id"])
    rv = rej(rec, "involvements.csv")
    assert len(rv) == 2 and rv["reason"].str.contains("null marker").all()


def test_parquet_integer_ids_with_nulls_read_as_integers_and_join(tmp_path):
    d = numeric_folder(tmp_path / "d")
    # persons.parquet: nullable int64 IDs with a null; P5 (5) incarcerated, V2 (1002) deceased
    persons = pd.DataFrame({"person_id": pd.array([1, 5, None, 1002, 3], dtype="Int64"),
                            "birth_year": pd.array([1998, 1990, 1991, 2000, 2009], dtype="Int64"),
                            "deceased": [False, False, False, True, False],
                            "incarcerated": [False, True, False, False, False]})
    persons.to_parquet(d / "persons.parquet")
    assert pq.read_schema(d / "persons.parquet").field("person_id").type == pa.int64()
    rec = load_records(d)
    assert rec.persons["person_id"].tolist() == ["1", "1002", "3", "5"]           # never '10.0'
    assert set(rec.persons["person_id"]) <= set(rec.involvements["person_id"])    # every row joins
    assert "person_id is empty" in reasons(rec)[("persons.parquet", 3)]
    # the same IDs stored as float64 (what pandas writes for an int column with NaN) read the same
    persons.astype({"person_id": "float64"}).to_parquet(d / "persons.parquet")
    assert load_records(d).persons["person_id"].tolist() == ["1", "1002", "3", "5"]


def _listed(res) -> dict[str, set[str]]:
    from fdnet.tables import read_csv_table
    return {k: set(read_csv_table(res.outputs[k])["person_id"]) for k in ("call_in.csv", "custom_notifications.csv")
            if k in res.outputs}


def test_guardrails_apply_through_parquet_integer_ids(tmp_path):
    """The deceased, incarcerated and juvenile guardrails still bite when persons.parquet has int IDs with a null."""
    from fdnet import compute_run
    from fdnet.tables import read_csv_table

    d = numeric_folder(tmp_path / "d")
    policy = {"guardrails": {"juveniles": "exclude"}}
    on_lists = sorted(set().union(*_listed(compute_run(d, policy=policy)).values()))
    assert len(on_lists) >= 3, "the helper folder must list several people for this test to mean anything"
    # one listed person deceased, one a juvenile, the rest incarcerated; int64 IDs, one of them null
    n = len(on_lists)
    persons = pd.DataFrame({
        "person_id": pd.array([int(i) for i in on_lists] + [None], dtype="Int64"),
        "deceased": [True] + [False] * n,
        "birth_year": pd.array([None, 2015] + [None] * (n - 1), dtype="Int64"),
        "incarcerated": [False, False] + [True] * (n - 2) + [False],
    })
    persons.to_parquet(d / "persons.parquet")
    res = compute_run(d, policy=policy)
    after = _listed(res)
    assert not set().union(*after.values()) & set(on_lists), after
    sc = read_csv_table(res.outputs["scores.csv"]).set_index("person_id")
    assert str(sc.loc[on_lists[0], "deceased"]).lower() == "true"
    assert str(sc.loc[on_lists[1], "juvenile"]).lower() == "true" and float(sc.loc[on_lists[1], "age"]) < 18
    assert {str(sc.loc[i, "incarcerated"]).lower() for i in on_lists[2:]} == {"true"}


# --- 3: one rejected row per input row; counts add up ---------------------------------------------

def test_long_export_row_bad_twice_is_rejected_once_with_both_reasons(tmp_path):
    export = ("CASE,DT,PID,ROLE,GUN\n"
              "C1,2024-01-01,A,offender,true\n"
              "C1,2024-01-01,B,offender,true\n"
              "C2,not-a-date,B,boss,maybe\n"      # bad as an incident and as an involvement
              "C3,2024-01-05,,offender,true\n")
    mapping = "long:\n  file: export.csv\n  columns: {incident_id: CASE, date: DT, person_id: PID, role: ROLE, gun: GUN}\n"
    d = tmp_path / "d"
    d.mkdir()
    (d / "export.csv").write_text(export)
    (d / "mapping.yaml").write_text(mapping)
    rec = load_records(d)
    r = rej(rec)
    assert r["line"].tolist() == [4, 5]
    why = r.set_index("line")["reason"]
    assert "not-a-date" in why[4] and "maybe" in why[4] and "boss" in why[4]
    assert why[5].count("person_id is empty") == 1
    assert rec.inputs["long_export"]["rows"] == {"read": 4, "used": 2, "rejected": 2, "after_as_of": 0}
    counts_add_up(rec)


def test_same_file_for_two_tables_is_refused(tmp_path):
    d = write_folder(tmp_path, extra={"mapping.yaml": "tables:\n  incidents: {file: incidents.csv}\n"
                                                      "  involvements: {file: incidents.csv}\n"})
    with pytest.raises(InputError, match="named for both incidents and involvements"):
        load_records(d)


# --- 4, 5: over-long fields; the fast and exact CSV paths agree -----------------------------------

@pytest.mark.parametrize("where", ["id", "extra_column", "quoted"])
def test_field_over_128k_rejects_its_row_only(tmp_path, where):
    big = "x" * (MAX_FIELD_CHARS + 5)
    if where == "id":
        inc = INCIDENTS + f"{big},2024-01-01,,,,,,\n"
    elif where == "extra_column":
        inc = INCIDENTS.replace("district\n", "district,narrative\n", 1).replace("\n", ",n\n").replace(
            "district,narrative,n\n", "district,narrative\n") + f"I99,2024-01-01,,,,,,,{big}\n"
    else:
        inc = INCIDENTS + f'I99,2024-01-01,"{big}, with a comma",,,,,\n'
    rec = load_records(write_folder(tmp_path, incidents=inc))
    ri = rej(rec, "incidents.csv")
    assert len(ri) == 1 and ri["line"].iat[0] == 8
    assert "characters long" in ri["reason"].iat[0] and "128 KiB" in ri["reason"].iat[0]
    assert len(ri["raw"].iat[0]) < 1000           # the raw row is cut, its length said
    assert len(rec.incidents) == 6
    counts_add_up(rec)


CSV_CASES = {
    "whitespace_line": "incident_id,date\nI1,2024-01-01\n   \nI2,2024-01-02\n",
    "tab_line": "incident_id,date\nI1,2024-01-01\n\t\nI2,2024-01-02\n",
    "blank_first_line": "\nincident_id,date\nI1,2024-01-01\n",
    "whitespace_last_line": "incident_id,date\nI1,2024-01-01\n  ",
    "crlf_whitespace": "incident_id,date\r\nI1,2024-01-01\r\n \r\nI2,2024-01-02\r\n",
    "trailing_blank_lines": "incident_id,date\nI1,2024-01-01\n\n\n",
    "one_column": "person_id\nP1\n  \nP2\n",
    "nbsp_line": "person_id\nP1\n\u00a0\nP2\n",
    "commas_only": "incident_id,date\nI1,2024-01-01\n,\n",
    "wrong_width": "incident_id,date\nI1,2024-01-01\nI2\nI3,2024-01-03,x\n",
    "plain": "incident_id,date\nI1,2024-01-01\nI2,2024-01-02\n",
    "quoted": 'incident_id,date,note\nI1,2024-01-01,"a, b"\n"I2",2024-01-02,"say ""hi"""\n',
    "quoted_header": '"incident_id","date"\nI1,2024-01-01\n',
    "quoted_newline": 'incident_id,date,note\nI1,2024-01-01,"two\nlines"\nI2,2024-01-02,x\n',
    "quoted_blank_one_column": 'person_id\nP1\n"  "\nP2\n',
    "quote_mid_field": 'incident_id,date,note\nI1,2024-01-01,a"b\nI2,2024-01-02,"c"d\n',
    "quoted_wrong_width": 'incident_id,date\n"I1,2024-01-01"\nI2,2024-01-02\n',
}


@pytest.mark.parametrize("case", sorted(CSV_CASES))
def test_fast_and_exact_csv_paths_agree(tmp_path, case):
    data = CSV_CASES[case].encode()
    p = tmp_path / "t.csv"
    fast = parse_csv(p, "t", data, fast=True)
    exact = parse_csv(p, "t", data, fast=False)
    assert list(fast.df.columns) == list(exact.df.columns)
    assert fast.df.astype(object).values.tolist() == exact.df.astype(object).values.tolist()
    assert fast.lines.tolist() == exact.lines.tolist()
    assert fast.n_read == exact.n_read and fast.bad_rows == exact.bad_rows
    if case in ("whitespace_line", "tab_line", "crlf_whitespace"):
        assert exact.lines.tolist() == [2, 4] and exact.n_read == 2


# --- 6: confusable IDs ----------------------------------------------------------------------------

def test_confusable_ids_are_reported_never_merged(tmp_path):
    nfc, nfd = "Jos\u00e9", "Jose\u0301"
    inv = INVOLVEMENTS + (f"I01,{nfc},suspect\nI02,{nfd},offender\n"
                          "I03,P\u200b3,offender\n"        # zero-width space
                          "I04,\uff30\uff14,offender\n")   # fullwidth P4
    persons = PERSONS + "P\ufeff5,1990,M,none,false,false\n"   # BOM inside an ID: persons will not join
    rec = load_records(write_folder(tmp_path, involvements=inv, persons=persons))
    ids = set(rec.involvements["person_id"])
    assert {nfc, nfd, "P3", "P\u200b3", "P4", "\uff30\uff14"} <= ids           # nothing merged
    f = [x for x in rec.findings if x["kind"] == "confusable_ids" and x["column"] == "person_id"]
    assert len(f) == 1
    groups = {g["key"]: sorted(g["ids"]) for g in f[0]["groups"]}
    assert groups["José"] == sorted([nfc, nfd])
    assert groups["P3"] == ["P3", "P\u200b3"]
    assert groups["P4"] == sorted(["P4", "\uff30\uff14"])
    assert groups["P5"] == sorted(["P5", "P\ufeff5"])
    p5 = next(g for g in f[0]["groups"] if g["key"] == "P5")
    assert p5["tables"]["P\ufeff5"] == ["persons"] and "involvements" in p5["tables"]["P5"]
    assert f[0]["n_groups"] == 4 and "never merges" in f[0]["message"]
    assert any("data quality" in n and "person_id" in n for n in rec.notes)
    # a clean folder has no such finding
    assert not [x for x in load_records(write_folder(tmp_path / "clean")).findings if x["kind"] == "confusable_ids"]


# --- 7: dates in the future, impossible times and offsets, birth after as-of -------------------------

def test_future_dated_records_are_rejected_and_do_not_move_as_of(tmp_path):
    inc = INCIDENTS + "I99,2205-03-01,robbery,120,false,false,true,1\n"
    inv = INVOLVEMENTS + "I99,P1,offender\n"
    groups = "person_id,group,source,date\nP1,Eastside,gang_unit,2023-06-01\nP2,Eastside,x,2099-01-01\n"
    rec = load_records(write_folder(tmp_path, incidents=inc, involvements=inv, groups=groups),
                       today="2025-01-01")
    assert rec.as_of == "2024-04-01"                       # the typo does not move the default as-of
    r = reasons(rec)
    assert r[("incidents.csv", 8)].startswith("dated in the future")
    assert "(its row there was rejected)" in r[("involvements.csv", 16)]
    assert "dated in the future" in r[("groups.csv", 3)]
    assert rec.today == "2025-01-01"
    assert any("2 rows dated after today (2025-01-01)" in n and "incidents.csv 1 (first on line 8)" in n
               for n in rec.notes)
    counts_add_up(rec)
    # --as-of after the typo changes nothing: the row is still rejected, not used
    rec2 = load_records(tmp_path, as_of="2300-01-01", today="2025-01-01")
    assert "I99" not in set(rec2.incidents["incident_id"])


def test_future_rows_fail_the_cli_run_never_silently(tmp_path):
    inc = INCIDENTS + "I99,2205-03-01,robbery,120,false,false,true,1\n"
    d = write_folder(tmp_path / "data", incidents=inc)
    rc, out, err = run_cli(tmp_path, d)
    assert rc == 0, err
    rej_csv = (out / "rejected.csv").read_text()
    assert "dated in the future" in rej_csv


@pytest.mark.parametrize("value, why", [
    ("2024-01-01T25:00", "impossible time of day"),
    ("2024-01-01T23:61", "impossible time of day"),
    ("2024-01-01 10:00:61", "impossible time of day"),
    ("2024-01-01T10:00+19:00", "impossible UTC offset"),
    ("2024-01-01T10:00-1260", "impossible UTC offset"),
    ("2024-01-01T10:00+14:30", "impossible UTC offset"),
    ("2024-02-30", "not a calendar date"),
    ("2024-13-01", "not a calendar date"),
    ("2024-1-01", "not an ISO 8601 date"),
])
def test_impossible_clock_times_and_offsets_are_rejected(tmp_path, value, why):
    inc = INCIDENTS + f"I99,{value},x,,,,,\n"
    rec = load_records(write_folder(tmp_path, incidents=inc))
    assert why in reasons(rec)[("incidents.csv", 8)]


@pytest.mark.parametrize("value", ["2024-01-01T23:59:59.999Z", "2024-01-01T00:00+14:00", "2024-01-01 12:30-0930",
                                   "2024-02-29", "2024-01-01T05:00+05"])
def test_valid_times_and_offsets_are_accepted(tmp_path, value):
    inc = INCIDENTS + f"I99,{value},x,,,,,\n"
    rec = load_records(write_folder(tmp_path, incidents=inc))
    assert len(rec.rejected) == 0 and "I99" in set(rec.incidents["incident_id"])


def test_birth_after_as_of_is_flagged_not_a_negative_age(tmp_path):
    persons = ("person_id,birth_date,birth_year,incarcerated\n"
               "P1,2030-05-01,,true\nP2,,2031,false\nP3,2001-01-01,,false\n")
    rec = load_records(write_folder(tmp_path, persons=persons), today="2031-01-01")
    p = rec.persons.set_index("person_id")
    assert p.loc["P1", "birth_date"] == "" and np.isnan(p.loc["P2", "birth_year"])
    assert p.loc["P3", "birth_date"] == "2001-01-01"
    assert bool(p.loc["P1", "incarcerated"])             # the row still counts for the guardrails
    f = [x for x in rec.findings if x["kind"] == "birth_after_as_of"]
    assert len(f) == 1 and f[0]["person_ids"] == ["P1", "P2"] and f[0]["count"] == 2
    from fdnet.scoring.score import age_on
    ages = age_on(rec.persons, np.array(["P1", "P2", "P3"], dtype=object), rec.as_of)
    assert np.isnan(ages[:2]).all() and ages[2] == 23


# --- 8: YAML alias bombs and huge messages ------------------------------------------------------

BOMB = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{c}: &{c} [{','.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi")) + "tables: *i\n"


@pytest.mark.parametrize("text, expect", [
    (BOMB, "anchor"),
    ("roles: {S: *undefined}\n", "alias"),
    ("roles: {S: " + "Z" * 500_000 + "}\n", "unknown role"),
    ("roles: {" + "Z" * 500_000 + ": boss}\n", "not valid YAML"),
    ("tables: {incidents_" + "x" * 1000 + ": {}}\n", "unknown table"),
    ("[" * 50_000 + "]" * 50_000 + "\n", "mapping"),
    ("roles: {S: [" + ", ".join(f"bad{i}" for i in range(5000)) + "]}\n", "unknown role"),
])
def test_hostile_mapping_is_a_short_exit_2(tmp_path, text, expect):
    d = write_folder(tmp_path / "data", extra={"mapping.yaml": text})
    rc, out, err = run_cli(tmp_path, d)
    assert rc == 2 and "Traceback" not in err and not out.exists()
    assert expect in err and len(err) < 2000 and err.count("\n") <= 4


def test_mapping_over_one_mebibyte_is_refused(tmp_path):
    d = write_folder(tmp_path / "data", extra={"mapping.yaml": "# " + "x" * (1 << 20) + "\n"})
    rc, out, err = run_cli(tmp_path, d)
    assert rc == 2 and "bytes" in err and len(err) < 500


def test_reasons_quoting_huge_values_are_cut(tmp_path):
    big = "z" * 50_000
    inc = INCIDENTS + f"I99,{big},x,,{big},,,\n"
    rec = load_records(write_folder(tmp_path, incidents=inc))
    why = reasons(rec)[("incidents.csv", 8)]
    assert len(why) < 600 and "50000 characters" in why


# --- 9: non-regular files -------------------------------------------------------------------------

def _run_with_timeout(tmp_path, d, seconds=60):
    box = {}
    th = threading.Thread(target=lambda: box.update(zip(("rc", "out", "err"), run_cli(tmp_path, d))), daemon=True)
    th.start()
    th.join(seconds)
    assert not th.is_alive(), "the run hangs on a non-regular input file"
    return box["rc"], box["out"], box["err"]


@pytest.mark.parametrize("kind", ["fifo", "socket", "device", "fifo_mapping", "symlink_to_fifo"])
def test_non_regular_input_is_refused_without_hanging(tmp_path, kind):
    d = write_folder(tmp_path / "data")
    sock = None
    if kind == "fifo":
        (d / "persons.csv").unlink()
        os.mkfifo(d / "persons.csv")
        name, expect = "persons.csv", "named pipe"
    elif kind == "socket":
        (d / "groups.csv").unlink()
        sock = socket.socket(socket.AF_UNIX)
        try:
            sock.bind(str(d / "groups.csv"))
        except OSError:
            pytest.skip("cannot bind a unix socket here")
        name, expect = "groups.csv", "socket"
    elif kind == "device":
        (d / "incidents.csv").unlink()
        (d / "incidents.csv").symlink_to("/dev/zero")
        name, expect = "incidents.csv", "character device"
    elif kind == "fifo_mapping":
        os.mkfifo(d / "mapping.yaml")
        name, expect = "mapping.yaml", "named pipe"
    else:
        os.mkfifo(tmp_path / "pipe")
        (d / "involvements.csv").unlink()
        (d / "involvements.csv").symlink_to(tmp_path / "pipe")
        name, expect = "involvements.csv", "named pipe"
    try:
        rc, out, err = _run_with_timeout(tmp_path, d)
    finally:
        if sock:
            sock.close()
    assert rc == 2 and name in err and expect in err and "regular file" in err and not out.exists()


def test_symlink_outside_the_folder_is_followed_and_said(tmp_path):
    d = write_folder(tmp_path / "data")
    elsewhere = tmp_path / "elsewhere.csv"
    elsewhere.write_text(PERSONS)
    (d / "persons.csv").unlink()
    (d / "persons.csv").symlink_to(elsewhere)
    rec = load_records(d)
    assert rec.inputs["persons"]["path"] == str(elsewhere.resolve())
    assert any("symbolic link" in n and "outside the data folder" in n for n in rec.notes)
    (d / "persons.csv").unlink()
    (d / "persons.csv").symlink_to(tmp_path / "gone.csv")
    with pytest.raises(InputError, match="broken symbolic link"):
        load_records(d)


# --- 10: constants in the mapping ---------------------------------------------------------------

def test_mapping_constants_give_a_fixed_role_date_and_flag(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "cases.csv").write_text("CASE\nC1\nC2\n")
    (d / "people.csv").write_text("CASE,WHO\nC1,A\nC1,B\nC2,A\n")
    (d / "mapping.yaml").write_text(
        "tables:\n"
        "  incidents: {file: cases.csv, columns: {incident_id: CASE}, constants: {date: 2024-05-01, gun: yes}}\n"
        "  involvements: {file: people.csv, columns: {incident_id: CASE, person_id: WHO},\n"
        "                 constants: {role: offender}}\n")
    rec = load_records(d)
    assert rec.incidents["date"].tolist() == ["2024-05-01"] * 2 and rec.incidents["gun"].all()
    assert set(rec.involvements["role"]) == {"offender"} and len(rec.involvements) == 3
    assert not any("no 'gun' column" in n for n in rec.notes)


@pytest.mark.parametrize("text, expect", [
    ("tables: {involvements: {constants: {role: boss}}}", "tables.involvements.constants.role: role 'boss'"),
    ("tables: {incidents: {constants: {gun: maybe}}}", "'maybe' is not a boolean"),
    ("tables: {incidents: {constants: {date: 2205-01-01}}}", "dated in the future"),
    ("tables: {incidents: {constants: {date: 01/02/2024}}}", "not an ISO 8601 date"),
    ("tables: {incidents: {constants: {incident_id: X}}}", "ID column cannot be a constant"),
    ("long: {file: x.csv, constants: {person_id: X}}", "ID column cannot be a constant"),
    ("tables: {incidents: {constants: {colour: red}}}", "unknown column"),
    ("tables: {incidents: {columns: {gun: G}, constants: {gun: true}}}", "also mapped"),
    ("tables: {incidents: {constants: {date: 2024-01-01}}}", "has a column date too"),
    ("long: {file: x.csv, columns: {colour: C}}", "long.columns: unknown column"),
    ("long: {file: x.csv}\ntables: {involvements: {constants: {role: offender}}}", "under long.constants"),
])
def test_bad_constants_are_a_clear_error(tmp_path, text, expect):
    d = write_folder(tmp_path, extra={"mapping.yaml": text})
    with pytest.raises(InputError) as ei:
        load_records(d, today="2025-01-01")
    assert expect in str(ei.value) and ("mapping" in str(ei.value))


def test_roles_mapped_codes_work_as_constants(tmp_path):
    d = write_folder(tmp_path, involvements="incident_id,person_id\nI01,P1\nI01,P2\n",
                     extra={"mapping.yaml": "roles: {SUSP: suspect}\ntables: {involvements: {constants: {role: SUSP}}}\n"})
    rec = load_records(d)
    assert set(rec.involvements["role"]) == {"suspect"}


@pytest.mark.skipif(not (SHARED / "israel_burglary").is_dir(), reason="../shared/data not present")
def test_israel_burglary_loads_with_a_mapping_only(tmp_path):
    """docs/data-format.md's worked example: the Israel records, no pandas code."""
    m = tmp_path / "israel.yaml"
    m.write_text("long:\n  file: offender_crime.csv\n"
                 "  columns: {incident_id: crime_id, person_id: offender_id, date: date}\n"
                 "  constants: {role: offender}\n")
    rec = load_records(SHARED / "israel_burglary", mapping_path=m)
    assert len(rec.rejected) == 0
    assert rec.inputs["long_export"]["rows"] == {"read": 2342, "used": 2342, "rejected": 0, "after_as_of": 0}
    assert rec.incidents["incident_id"].nunique() == 1671 and rec.involvements["person_id"].nunique() == 1658
    assert set(rec.involvements["role"]) == {"offender"} and rec.as_of == "2020-06-30"


@pytest.mark.skipif(not (SHARED / "stlouis_crime").is_dir(), reason="../shared/data not present")
def test_stlouis_loads_with_a_mapping_only(tmp_path):
    m = tmp_path / "stl.yaml"
    m.write_text("long:\n  file: person_crime.csv\n  columns: {incident_id: crime_id}\n"
                 "  constants: {date: 2000-01-01}\n"
                 "roles: {victim+suspect: [victim, suspect]}\n"
                 "tables:\n  persons: {columns: {sex: gender}}\n")
    rec = load_records(SHARED / "stlouis_crime", mapping_path=m)
    assert len(rec.rejected) == 0 and rec.incidents["incident_id"].nunique() == 552
    assert rec.involvements["person_id"].nunique() == 830 and len(rec.persons) == 870
    both = rec.involvements.groupby(["incident_id", "person_id"])["role"].nunique()
    assert int((both > 1).sum()) == 41


def test_two_spellings_of_a_table_file_are_refused(tmp_path):
    d = write_folder(tmp_path)
    (d / "Persons.csv").write_text(PERSONS)
    if len({p.name for p in d.iterdir()}) == len({p.name.lower() for p in d.iterdir()}):
        pytest.skip("case-insensitive file system")
    with pytest.raises(InputError, match="Persons.csv and persons.csv"):
        load_records(d)


def test_parquet_decompression_bomb_is_refused(tmp_path, monkeypatch):
    import fdnet.records.read as read_mod

    d = write_folder(tmp_path, persons=None)
    pd.DataFrame({"person_id": ["P1"] * 50_000, "deceased": [False] * 50_000}).to_parquet(d / "persons.parquet")
    monkeypatch.setattr(read_mod, "MAX_PARQUET_CELLS", 60_000)       # the 10^9-cell bound, scaled down
    with pytest.raises(InputError, match="once decompressed"):
        load_records(d)


def test_case_variant_ids_are_reported_apart_from_unicode_forms(tmp_path):
    inv = INVOLVEMENTS + "I01,p1,suspect\nI02,JOSÉ,offender\nI02,jose\u0301,offender\n"
    rec = load_records(write_folder(tmp_path, involvements=inv))
    assert {"P1", "p1"} <= set(rec.involvements["person_id"])              # still two people
    kinds = {f["kind"]: f for f in rec.findings if f["column"] == "person_id"}
    case = {g["key"]: g["ids"] for g in kinds["case_variant_ids"]["groups"]}
    assert case == {"p1": ["P1", "p1"], "josé": ["JOSÉ", "jose\u0301"]}
    assert "case-sensitive" in kinds["case_variant_ids"]["message"]
    assert "confusable_ids" not in kinds                                  # no two IDs share one Unicode-folded form


def test_many_confusable_groups_are_capped_and_counted(tmp_path):
    n = 150
    inv = "incident_id,person_id,role\n" + "".join(f"I01,{i:04d},offender\nI01,{i},offender\n" for i in range(1, n + 1))
    rec = load_records(write_folder(tmp_path, involvements=inv, persons=None, groups=None, relations=None))
    f = next(x for x in rec.findings if x["kind"] == "confusable_ids")
    assert f["n_groups"] == n and len(f["groups"]) == 100 and f["groups_omitted"] == 50
    assert f["groups"][0]["tables"] == {"0001": ["involvements"], "1": ["involvements"]}
    assert len(rec.involvements) == 2 * n


def test_fast_and_exact_csv_paths_agree_on_random_bytes():
    """Seeded fuzz: whitespace of every kind, NULs, quotes, separators, blank lines, one to three columns."""
    import random

    rng = random.Random(9)
    alphabet = ["a", "b", ",", ",", " ", "\t", "\n", "\n", "\u00a0", "é", "\x00", "\u2028", "\x1c", "\x0b", "\x0c",
                '"', '"', "\r\n"]
    p = Path("t.csv")
    for _ in range(600):
        text = rng.choice(["x,y\n", "x\n", "x,y,z\n", '"x","y"\n']) + "".join(
            rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        got = []
        for fast in (True, False):
            try:
                t = parse_csv(p, "t", text.encode(), fast=fast)
                got.append((t.df.astype(object).values.tolist(), t.lines.tolist(), t.n_read, t.bad_rows))
            except InputError as e:
                got.append(str(e))
        assert got[0] == got[1], repr(text)


def test_csv_and_typed_parquet_give_the_same_records(tmp_path):
    """The helper folder as CSV, and as Parquet with the types a records system would use, read the same."""
    num = numeric_folder(tmp_path / "csv")
    (num / "persons.csv").write_text("person_id,birth_year,deceased,incarcerated\n1,1998,false,false\n5,1990,false,true\n"
                                     "1002,,true,false\n")
    pq_dir = tmp_path / "pq"
    pq_dir.mkdir()
    for name in ("incidents", "involvements", "persons"):
        df = pd.read_csv(num / f"{name}.csv")           # pandas' own type inference: ints, floats with NaN, ...
        if "date" in df:
            df["date"] = pd.to_datetime(df["date"])
        if name == "persons":
            df = df.astype({"birth_year": "Int64", "deceased": bool, "incarcerated": bool})
        df.to_parquet(pq_dir / f"{name}.parquet")
    a, b = load_records(num), load_records(pq_dir)
    for t in ("incidents", "involvements", "persons"):
        x, y = getattr(a, t).drop(columns="line"), getattr(b, t).drop(columns="line")
        pd.testing.assert_frame_equal(x.reset_index(drop=True), y.reset_index(drop=True), check_dtype=False)
    assert len(a.rejected) == len(b.rejected) == 0


def test_excel_sep_line_and_utf16_exports(tmp_path):
    d = write_folder(tmp_path, incidents="sep=,\r\n" + INCIDENTS.replace("\n", "\r\n"))
    rec = load_records(d)
    assert len(rec.incidents) == 6 and len(rec.rejected) == 0
    (d / "incidents.csv").write_text("sep=;\nincident_id;date\nI01;2024-01-01\n")
    with pytest.raises(InputError, match="sep= line"):
        load_records(d)
    (d / "incidents.csv").write_bytes(INCIDENTS.encode("utf-16"))
    with pytest.raises(InputError, match="UTF-16"):
        load_records(d)
    bad = write_folder(tmp_path / "b", incidents="sep=,\n" + INCIDENTS + "I07,2024-02-30,x,,,,,\n")
    assert rej(load_records(bad))["line"].tolist() == [9]        # physical lines: sep= is line 1


def test_quoted_csv_takes_the_fast_path_when_no_record_spans_lines(tmp_path, monkeypatch):
    import fdnet.records.read as read_mod

    data = ('incident_id,date,offense\n' + "".join(f'I{i},2024-01-01,"robbery, armed"\n' for i in range(50))).encode()
    monkeypatch.setattr(read_mod, "_exact_csv", lambda *a: pytest.fail("the exact path was used"))
    t = parse_csv(tmp_path / "incidents.csv", "incidents", data)
    assert len(t.df) == 50 and t.df["offense"].iat[0] == "robbery, armed" and t.lines[-1] == 51


def test_rejected_rows_made_column_wise_match_one_row_at_a_time():
    """Issue 10: raw lines and reasons are built for all rejected rows at once; each must be what
    the csv module and clip() give for that one row (quotes, commas, newlines, Unicode, long cells)."""
    from fdnet.records.read import RawTable
    from fdnet.records.schema import clip
    from fdnet.records.validate import _Reason, clip_many, raw_lines

    rng = np.random.default_rng(10)
    alphabet = list("ab,\"' \\\n\r\té\u200bＰ0") + ["", "x" * 90]
    cells = ["".join(rng.choice(alphabet, rng.integers(0, 4))) for _ in range(600)]
    df = pd.DataFrame({"a": pd.Series(cells[:300], dtype="string[pyarrow]"),
                       "b": pd.Series(cells[300:], dtype="string[pyarrow]")})
    t = RawTable("t", Path("t.csv"), "", df, np.arange(2, 302), ["a", "b"], 300)
    idx = np.arange(300)
    assert raw_lines(t, idx).tolist() == [t.raw(i) for i in idx]
    one = RawTable("t", Path("t.csv"), "", df[["a"]], np.arange(2, 302), ["a"], 300)
    assert raw_lines(one, idx).tolist() == [one.raw(i) for i in idx]
    assert clip_many(pa.array(cells)).tolist() == [clip(c) for c in cells]
    why = _Reason("a ", df["a"], " is odd")
    assert why.at(idx).tolist() == [f"a {clip(c)} is odd" for c in cells[:300]]
