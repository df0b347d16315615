"""Many malformed input folders: each run either succeeds (bad rows in rejected.csv) or stops with
exit 2, a one-paragraph message naming the file, and no run folder left behind. Never exit 1."""
from __future__ import annotations

import contextlib
import io

import pandas as pd
import pytest
from helpers import write_folder

from fdnet.cli import main

OK, STOP = 0, 2
CASES = {
    # name: (write_folder kwargs, expected exit code, text expected in stderr or rejected.csv)
    "all_involvements_bad": (dict(involvements="incident_id,person_id,role\nI01,P1,boss\n"), OK, "boss"),
    "no_offenders": (dict(involvements="incident_id,person_id,role\nI01,P1,victim\nI02,P2,witness\n"), OK, ""),
    "one_row": (dict(incidents="incident_id,date\nI1,2024-01-01\n",
                     involvements="incident_id,person_id,role\nI1,A,offender\n",
                     persons=None, groups=None, relations=None), OK, ""),
    "binary": (dict(incidents=b"\x00\x01\x02\xff\xfe"), STOP, "not UTF-8"),
    "only_newlines": (dict(incidents="\n\n\n"), STOP, "empty"),
    "header_spaces": (dict(incidents=" incident_id , date \nI01,2024-01-01\n"), OK, ""),
    "tab_separated": (dict(incidents="incident_id\tdate\nI01\t2024-01-01\n"), STOP, "tab-separated"),
    "semicolons": (dict(incidents="incident_id;date\nI01;2024-01-01\n"), STOP, "';'-separated"),
    "unclosed_quote": (dict(incidents='incident_id,date\n"I01,2024-01-01\nI02,2024-01-02\n'), STOP, "no valid incident rows"),
    "huge_field": (dict(incidents="incident_id,date\n" + "I" * 200_000 + ",2024-01-01\nI01,2024-01-01\n"), OK, ""),
    "all_dates_bad": (dict(incidents="incident_id,date\nI1,yesterday\nI2,2024-13-01\n"), STOP, "yesterday"),
    "groups_header_only": (dict(groups="person_id,group\n"), OK, ""),
    "persons_wrong_columns": (dict(persons="id,name\n1,x\n"), STOP, "persons.csv"),
    "relations_missing_column": (dict(relations="group_a,group_b\nA,B\n"), STOP, "relation"),
    "nul_in_field": (dict(involvements="incident_id,person_id,role\nI01,P\x001,suspect\n"), OK, ""),
    "unicode_ids": (dict(involvements="incident_id,person_id,role\nI01,😀,suspect\nI01,Ω,offender\n"), OK, ""),
    "coordinates_out_of_range": (dict(incidents="incident_id,date,lat,lon\nI01,2024-01-01,95,10\nI02,2024-01-01,abc,10\n"), STOP, "outside -90..90"),
    "mapping_is_a_list": (dict(extra={"mapping.yaml": "- a\n- b\n"}), STOP, "YAML mapping"),
    "mapping_names_missing_file": (dict(extra={"mapping.yaml": "tables: {incidents: {file: nope.csv}}\n"}), STOP, "nope.csv"),
    "mapping_path_escape": (dict(extra={"mapping.yaml": "tables: {incidents: {file: ../../etc/passwd}}\n"}), STOP, "plain file name"),
    "short_and_long_rows": (dict(involvements="incident_id,person_id,role\nI01,P1\nI01,P2,suspect,extra\nI01,P3,suspect\n"), OK, "fields"),
    # issue 9: hostile and careless input
    "dated_in_the_future": (dict(incidents="incident_id,date\nI01,2024-01-01\nI02,2205-01-01\n"), OK, "dated in the future"),
    "impossible_clock": (dict(incidents="incident_id,date\nI01,2024-01-01\nI02,2024-01-01T25:61\n"), OK, "impossible time"),
    "impossible_offset": (dict(incidents="incident_id,date\nI01,2024-01-01\nI02,2024-01-01T10:00+19:00\n"), OK, "UTC offset"),
    "null_marker_ids": (dict(involvements="incident_id,person_id,role\nI01,P1,suspect\nI01,NULL,suspect\n"), OK, "null marker"),
    "huge_quoted_field": (dict(involvements='incident_id,person_id,role\nI01,P1,suspect\nI01,"' + "x" * 200_000 + '",suspect\n'),
                          OK, "128 KiB"),
    "whitespace_lines": (dict(involvements="incident_id,person_id,role\nI01,P1,suspect\n   \n\t\nI01,P2,suspect\n"), OK, ""),
    "mapping_alias_bomb": (dict(extra={"mapping.yaml": "a: &a [x, x]\nb: &b [*a, *a]\nroles: *b\n"}), STOP, "anchor"),
    "mapping_bad_constant": (dict(extra={"mapping.yaml": "tables: {incidents: {constants: {gun: perhaps}}}\n"}), STOP, "perhaps"),
    "mapping_constant_id": (dict(extra={"mapping.yaml": "tables: {involvements: {constants: {person_id: X}}}\n"}), STOP,
                            "ID column cannot be a constant"),
    "mapping_same_file_twice": (dict(extra={"mapping.yaml": "tables: {persons: {file: groups.csv}}\n"}), STOP, "named for both"),
}


def _run(tmp_path, d):
    out = tmp_path / "run"
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main(["run", str(d), "--out", str(out), "-q"])
    return rc, out, err.getvalue()


@pytest.mark.parametrize("name", sorted(CASES))
def test_malformed_folder(tmp_path, name):
    kw, expect_rc, text = CASES[name]
    d = write_folder(tmp_path / "data", **kw)
    rc, out, err = _run(tmp_path, d)
    assert rc == expect_rc, err
    assert "Traceback" not in err
    if rc == STOP:
        assert not out.exists()
        assert err.startswith("fdnet: error:") and text in err
        assert err.count("\n") <= 4  # one paragraph
    else:
        assert (out / "manifest.json").is_file()
        if text:
            rej = pd.read_csv(out / "rejected.csv", dtype=str, keep_default_na=False)
            assert rej["reason"].str.contains(text, regex=False).any()


def test_folder_named_like_a_table(tmp_path):
    d = write_folder(tmp_path / "data")
    (d / "persons.csv").unlink()
    (d / "persons.csv").mkdir()
    rc, out, err = _run(tmp_path, d)
    assert rc == STOP and "persons.csv" in err and "folder" in err and not out.exists()


def test_corrupt_parquet(tmp_path):
    d = write_folder(tmp_path / "data")
    (d / "incidents.csv").unlink()
    (d / "incidents.parquet").write_bytes(b"PAR1garbage")
    rc, out, err = _run(tmp_path, d)
    assert rc == STOP and "incidents.parquet" in err and "Parquet" in err and not out.exists()
