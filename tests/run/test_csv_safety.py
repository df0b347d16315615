"""Every CSV fdnet writes is safe to open in a spreadsheet (CONTRACT.md section 3), and every reader
gets the raw values back.

A small synthetic city is made hostile: person IDs, incident IDs, group names, offenses, districts and
free-text sources carry formula starts (= + - @ tab CR), quotes, commas, line breaks and apostrophes.
Every CSV of the run folder and of plain and pseudonymised exports is then parsed with the csv module
and no cell may be one a spreadsheet would evaluate; read_csv_table gives back the hostile values.
"""
from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fdnet.cli import main
from fdnet.tables import (FORMULA_STARTS, NUMBER_PATTERN, csv_bytes, escape_cell, neutralise, read_csv_table,
                          unneutralise)

HOSTILE_IDS = ['=HYPERLINK("http://evil.example/x","click")', "+SUM(1,2)", "-5", "@cmd", "'quoted",
               'comma, "quote"', "-2+3", "=1+1"]
HOSTILE_GROUPS = ['=cmd|" /C calc"!A0', "@crew", "+crew", "-crew", "\tcrew tab", "'crew, \"q\""]
HOSTILE_TEXT = ["=1+1", "@SUM(A1)", "+x", "-y", "\tTAB", "\rCR", "line\nbreak", 'quo"te', "'apos", "a,b"]
HOSTILE_INCIDENT = "-I-HOSTILE"
BAD_ROLE = '=HYPERLINK("http://evil.example/role","r")'
_NUMBER = re.compile(NUMBER_PATTERN)


def spreadsheet_would_evaluate(cell: str) -> bool:
    """A cell Excel, LibreOffice or Sheets would run: a formula start that is not a plain number."""
    return cell.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(cell)


def unsafe_cells(data: bytes) -> list[tuple[int, int, str]]:
    text = data.decode("utf-8-sig")
    return [(i, j, cell) for i, row in enumerate(csv.reader(io.StringIO(text, newline="")))
            for j, cell in enumerate(row) if spreadsheet_would_evaluate(cell)]


# --- the shared writer and reader ------------------------------------------------------------------

ALL_HOSTILE = HOSTILE_IDS + HOSTILE_GROUPS + HOSTILE_TEXT + ["", "'", "''", "'=", "plain", "-", "=", "-1"]


@pytest.mark.parametrize("dtype", [object, "str"])
def test_every_hostile_text_cell_is_escaped_and_read_back_raw(dtype):
    df = pd.DataFrame({"person_id": pd.Series(ALL_HOSTILE, dtype=dtype), "n": np.arange(len(ALL_HOSTILE)) - 3,
                       "x": np.linspace(-1.5, 1.5, len(ALL_HOSTILE))})
    b = csv_bytes(df)
    assert unsafe_cells(b) == []
    back = read_csv_table(b)
    assert back["person_id"].tolist() == ALL_HOSTILE
    # numbers are never escaped: negative numbers stay numbers, and are known as number columns
    rows = list(csv.reader(io.StringIO(b.decode(), newline="")))
    assert [r[1] for r in rows[1:4]] == ["-3", "-2", "-1"] and rows[1][2] == "-1.5"
    assert back.attrs["number_columns"] == ("n", "x")
    # text that merely looks numeric is text: "-5" and "-1" as IDs are escaped
    assert "'-5" in [r[0] for r in rows] and "'-1" in [r[0] for r in rows]
    # re-writing what was read gives the same bytes (pseudonymised exports rely on this)
    assert csv_bytes(back, numbers=back.attrs["number_columns"]) == b


def test_neutralise_keeps_dtype_index_and_missing_values():
    s = pd.Series(["=a", None, "b", "-1"], index=[10, 11, 12, 13], dtype=object, name="v")
    out = neutralise(s)
    assert out.dtype == object and list(out.index) == [10, 11, 12, 13] and out.name == "v"
    assert out.tolist()[0] == "'=a" and out.tolist()[1] is None and out.tolist()[2:] == ["b", "'-1"]
    assert unneutralise(out).tolist()[::2] == ["=a", "b"]
    s2 = pd.Series(["=a", "b"], dtype="str")
    assert neutralise(s2).dtype == s2.dtype and neutralise(s2).tolist() == ["'=a", "b"]
    nums = pd.Series([-1.0, 2.5])
    assert neutralise(nums) is nums                                    # numbers untouched
    cat = pd.Series(pd.Categorical(["=x", "y", "=x"]))
    assert neutralise(cat).astype(str).tolist() == ["'=x", "y", "'=x"]
    mixed = pd.Series([-5, "-5", 2.5, None], dtype=object)
    assert neutralise(mixed).tolist() == [-5, "'-5", 2.5, None]


def test_csv_bytes_categorical_mixed_header_and_windows_form():
    df = pd.DataFrame({"=head": ["x"], "g": pd.Categorical(["@g"]), "m": pd.Series(["-a"], dtype=object)})
    b = csv_bytes(df)
    assert b.splitlines() == [b"'=head,g,m", b"x,'@g,'-a"]
    assert unsafe_cells(b) == []
    w = csv_bytes(pd.DataFrame({"a": ["=1", "two"]}), eol="\r\n", bom=True)
    assert w == b"\xef\xbb\xbfa\r\n'=1\r\ntwo\r\n"
    assert read_csv_table(w)["a"].tolist() == ["=1", "two"]          # the BOM is skipped
    mixed = pd.DataFrame({"v": pd.Series([1, "=x", None], dtype=object)})
    assert csv_bytes(mixed) == b"v\n1\n'=x\n\n"
    # a numbers= column still escapes any cell that is not a plain number
    assert csv_bytes(pd.DataFrame({"n": ["-1", "-1+1", "=2"]}), numbers=["n"]) == b"n\n-1\n'-1+1\n'=2\n"


def test_escape_cell_is_the_same_rule():
    b = csv_bytes(pd.DataFrame({"a": ALL_HOSTILE}, dtype=object))
    cells = [r[0] for r in csv.reader(io.StringIO(b.decode(), newline=""))][1:]
    assert cells == [escape_cell(s) for s in ALL_HOSTILE]


# --- a hostile city, end to end --------------------------------------------------------------------

@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("hostile")
    data = root / "city"
    assert main(["synth", "--out", str(data), "--people", "700", "--seed", "3"]) == 0
    read = lambda n: pd.read_csv(data / f"{n}.csv", dtype=str, keep_default_na=False)  # noqa: E731
    inv, inc, grp = read("involvements"), read("incidents"), read("groups")
    offenders = inv[inv["role"].isin(["offender", "suspect", "arrestee"])]
    counts = offenders["person_id"].value_counts().sort_index().sort_values(ascending=False, kind="stable")
    top = counts.index[:len(HOSTILE_IDS)].tolist()       # the busiest offenders: on the lists, in the edges
    rename = dict(zip(top, HOSTILE_IDS))
    for n in ("involvements", "persons", "groups"):
        df = read(n)
        df["person_id"] = df["person_id"].map(lambda x: rename.get(x, x))
        if n == "involvements":
            inv = df
        elif n == "groups":
            grp = df
        else:
            df.to_csv(data / "persons.csv", index=False)
    # hostile group names (in the audit and in the relations)
    gnames = sorted(grp["group"].unique())[:len(HOSTILE_GROUPS)]
    gmap = dict(zip(gnames, HOSTILE_GROUPS))
    grp["group"] = grp["group"].map(lambda g: gmap.get(g, g))
    grp["source"] = [HOSTILE_TEXT[i % len(HOSTILE_TEXT)] for i in range(len(grp))]
    grp.to_csv(data / "groups.csv", index=False)
    rel = read("group_relations")
    for c in ("group_a", "group_b"):
        rel[c] = rel[c].map(lambda g: gmap.get(g, g))
    rel.to_csv(data / "group_relations.csv", index=False)
    # hostile offenses, districts and one incident ID (a shooting, so it reaches edges and evidence)
    inc["offense"] = [HOSTILE_TEXT[i % len(HOSTILE_TEXT)] if i % 7 == 0 else o for i, o in enumerate(inc["offense"])]
    inc["district"] = [("@D" + d) if i % 5 == 0 else d for i, d in enumerate(inc["district"])]
    busy = inv[inv["person_id"] == HOSTILE_IDS[0]]["incident_id"].iloc[0]
    inc["incident_id"] = inc["incident_id"].replace(busy, HOSTILE_INCIDENT)
    inv["incident_id"] = inv["incident_id"].replace(busy, HOSTILE_INCIDENT)
    inc.to_csv(data / "incidents.csv", index=False)
    # one row that is rejected: its raw row (with a formula) goes to rejected.csv
    bad = pd.DataFrame({"incident_id": [inv["incident_id"].iloc[0]], "person_id": ["=evil()"],
                        "role": [BAD_ROLE]})
    pd.concat([inv, bad], ignore_index=True).to_csv(data / "involvements.csv", index=False)
    run = root / "run"
    assert main(["run", str(data), "--out", str(run)]) == 0
    key = root / "keys" / "audit.key"
    key.parent.mkdir()
    assert main(["export", "--new-key", str(key), "-q"]) == 0
    assert main(["export", str(run), "--out", str(root / "plain"), "-q"]) == 0
    assert main(["export", str(run), "--out", str(root / "pseudo"), "--pseudonymise", "--key-file", str(key),
                 "-q"]) == 0
    return {"data": data, "run": run, "plain": root / "plain", "pseudo": root / "pseudo", "key": key,
            "rename": rename, "groups": gmap}


def _csvs(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.csv"))


@pytest.mark.parametrize("where", ["run", "plain", "pseudo"])
def test_no_cell_of_any_csv_would_be_evaluated(hostile, where):
    files = _csvs(hostile[where])
    expected = {"scores.csv", "edges.csv", "groups.csv", "call_in.csv", "rejected.csv"} if where == "run" else \
        {"scores.csv", "edges.csv", "entities.csv", "links.csv"}
    assert expected <= {p.name for p in files}
    for p in files:
        bad = unsafe_cells(p.read_bytes())
        assert bad == [], f"{where}/{p.name}: cells a spreadsheet would evaluate: {bad[:5]}"


def test_the_hostile_values_did_reach_the_files_and_read_back_raw(hostile):
    run = hostile["run"]
    scores = read_csv_table(run / "scores.csv")
    ids = set(scores["person_id"])
    assert set(HOSTILE_IDS) <= ids
    on_disk = {r[0] for r in csv.reader(io.StringIO((run / "scores.csv").read_text(encoding="utf-8"), newline=""))}
    assert {"'-5", "'=1+1", "''quoted", "'+SUM(1,2)"} <= on_disk and not {"-5", "=1+1"} & on_disk   # escaped
    groups = read_csv_table(run / "groups.csv")
    assert set(hostile["groups"].values()) & set(groups["group"]), "hostile group names reach groups.csv"
    edges = read_csv_table(run / "edges.csv")
    assert edges["incident_ids"].str.contains(HOSTILE_INCIDENT, regex=False).any()
    assert set(edges["person_a"]) | set(edges["person_b"]) >= set(HOSTILE_IDS) - {""}
    rejected = read_csv_table(run / "rejected.csv")
    assert rejected.astype(str).apply(lambda c: c.str.contains(BAD_ROLE, regex=False)).to_numpy().any()
    # numbers stay numbers: a negative number in scores.csv is written bare
    negative = [c for c in scores.attrs["number_columns"] if scores[c].str.startswith("-").any()]
    assert negative, "the run has a column with negative numbers"
    # the manifest's hashes still cover the escaped bytes
    m = json.loads((run / "manifest.json").read_text())
    assert hashlib.sha256((run / "scores.csv").read_bytes()).hexdigest() == m["outputs"]["scores.csv"]["sha256"]


def test_plain_export_copies_and_i2_files_read_back_raw(hostile):
    plain = hostile["plain"]
    assert (plain / "scores.csv").read_bytes() == (hostile["run"] / "scores.csv").read_bytes()
    ent = read_csv_table(plain / "entities.csv")
    links = read_csv_table(plain / "links.csv")
    assert set(HOSTILE_IDS) <= set(ent["identity"])
    assert set(links["from_identity"]) | set(links["to_identity"]) <= set(ent["identity"])
    assert (ent["identity"] == ent["label"]).all()
    # numeric attributes are numbers in the i2 files too
    assert {"score", "degree"} <= set(ent.attrs["number_columns"])
    assert {"weight", "incidents"} <= set(links.attrs["number_columns"])


def test_pseudonymised_export_is_safe_and_keeps_numbers_and_hostile_group_names(hostile):
    pseudo, run = hostile["pseudo"], hostile["run"]
    key = hostile["key"].read_bytes()
    ps = lambda pid: "P" + hmac.new(key, pid.encode(), hashlib.sha256).hexdigest()[:20]  # noqa: E731
    scores = read_csv_table(pseudo / "scores.csv")
    assert {ps(h) for h in HOSTILE_IDS} <= set(scores["person_id"])
    assert not set(HOSTILE_IDS) & set(scores["person_id"])
    orig = read_csv_table(run / "scores.csv")
    assert scores.attrs["number_columns"] == orig.attrs["number_columns"]
    o = orig.assign(person_id=orig["person_id"].map(ps)).set_index("person_id").sort_index()
    s = scores.set_index("person_id").sort_index()
    for c in orig.attrs["number_columns"]:
        assert s[c].tolist() == o[c].tolist()
    groups = read_csv_table(pseudo / "groups.csv")
    assert set(hostile["groups"].values()) & set(groups["group"])
    assert set(read_csv_table(pseudo / "edges.csv")["incident_ids"].str.split(";").explode()) >= {HOSTILE_INCIDENT}


@pytest.mark.parametrize("as_json", [True, False])
def test_explain_works_on_a_hostile_id(hostile, capsys, as_json):
    for pid in ('=HYPERLINK("http://evil.example/x","click")', "-5", "'quoted"):
        # "--" ends the options, so an ID such as "-5" is not read as one
        args = ["explain", *(["--json"] if as_json else []), str(hostile["run"]), "--", pid]
        assert main(args) == 0, capsys.readouterr().err
        out = capsys.readouterr().out
        if as_json:
            assert json.loads(out)["person_id"] == pid
        else:
            assert pid in out
