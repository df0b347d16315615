"""fdnet export: GraphML/GEXF round trips, XLSX for prosecutors (no formula injection), i2 files,
pseudonymised copies (keyed, consistent, no raw ID anywhere), key handling, sealed run folders and
the CLI's exit codes."""
from __future__ import annotations

import hashlib
import hmac
import html
import io
import json
import os
import shutil
import stat
import zipfile
from pathlib import Path

import networkx as nx
import openpyxl
import pandas as pd

from fdnet.tables import read_csv_table
import pytest
from helpers import GROUPS, INVOLVEMENTS, PERSONS, RELATIONS, write_folder

from fdnet.cli import main
from fdnet.errors import FdnetError, UsageError
from fdnet.export import export_run
from fdnet.export.core import FORMATS, pseudonymise_tables
from fdnet.export.pseudonym import Pseudonymiser, check_key_location, key_fingerprint, new_key, read_key

HOSTILE = '=HYPERLINK("http://evil.example/x","SUBJ_HOSTILE")'
RENAME = {"P1": "SUBJ_ALPHA", "P2": HOSTILE, "P3": "SUBJ_CHARLIE", "P4": "SUBJ_DELTA", "P5": "SUBJ_ECHO",
          "P6": "SUBJ_FOXTROT", "V1": "VIC_GOLF", "V2": "VIC_HOTEL", "W1": "WIT_INDIA"}
# strings that identify a person, however a format escapes them
RAW_MARKERS = [v for v in RENAME.values() if v != HOSTILE] + ["SUBJ_HOSTILE", "evil.example"]
LISTS = ("call_in", "custom_notifications", "service_referrals")
POLICY = {"lists": {"call_in": {"min_score": 0}, "custom_notifications": {"min_score": 0},
                    "service_referrals": {"min_score": 0}}}


def _rename(text: str) -> str:
    df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    df["person_id"] = df["person_id"].map(lambda x: RENAME.get(x, x))
    return df.to_csv(index=False)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A small run whose IDs are distinctive, one of them a spreadsheet formula, and whose audit
    group is named after a person (so a person ID appears in free text: group names, reasons)."""
    from fdnet.pipeline import run

    root = tmp_path_factory.mktemp("export")
    data = write_folder(root / "data", involvements=_rename(INVOLVEMENTS), persons=_rename(PERSONS),
                        groups=_rename(GROUPS).replace("Eastside", "Crew of SUBJ_ALPHA"),
                        relations=RELATIONS.replace("Eastside", "Crew of SUBJ_ALPHA"))
    run(data, root / "run", policy=POLICY)
    return root / "run"


@pytest.fixture(scope="module")
def exported(run_dir, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("exp") / "plain"
    return out, export_run(run_dir, out)


@pytest.fixture(scope="module")
def key_path(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("keys") / "audit.key"
    new_key(p)
    return p


@pytest.fixture(scope="module")
def pseudo(run_dir, key_path, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("exp") / "pseudo"
    return out, export_run(run_dir, out, key_path=key_path)


def _read(p: Path) -> pd.DataFrame:
    return read_csv_table(p)   # the raw values back: spreadsheet escapes undone


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _all_text(folder: Path) -> dict[str, bytes]:
    """Every byte of every exported file; XLSX (a zip) opened up into its XML parts."""
    out = {}
    for p in sorted(folder.iterdir()):
        if p.suffix == ".xlsx":
            with zipfile.ZipFile(p) as z:
                for n in z.namelist():
                    out[f"{p.name}/{n}"] = z.read(n)
        else:
            out[p.name] = p.read_bytes()
    return out


def _hmac_pseudonym(key: bytes, pid: str) -> str:
    return "P" + hmac.new(key, pid.encode("utf-8"), hashlib.sha256).hexdigest()[:20]


# --- plain export ----------------------------------------------------------------------------------

def test_export_writes_every_format_with_checksums_and_leaves_the_run_untouched(run_dir, tmp_path):
    before = _hashes(run_dir)
    out = tmp_path / "exp"
    m = export_run(run_dir, out)
    assert _hashes(run_dir) == before
    names = {p.name for p in out.iterdir()}
    assert names == {"co_offending.graphml", "victimization.graphml", "co_offending.gexf", "victimization.gexf",
                     "lists.xlsx", "entities.csv", "links.csv", "edges.csv", "scores.csv", "groups.csv",
                     *(f"{n}.csv" for n in LISTS), "export_manifest.json"} | (
                        {"disparity.csv"} & set(json.loads((run_dir / "manifest.json").read_text())["outputs"]))
    on_disk = json.loads((out / "export_manifest.json").read_text(encoding="utf-8"))
    assert on_disk == m
    assert set(m["files"]) == names - {"export_manifest.json"}
    for name, meta in m["files"].items():
        b = (out / name).read_bytes()
        assert hashlib.sha256(b).hexdigest() == meta["sha256"] and len(b) == meta["bytes"]
    assert m["run"]["manifest_sha256"] == hashlib.sha256((run_dir / "manifest.json").read_bytes()).hexdigest()
    assert m["pseudonymised"] is False and m["key_fingerprint"] is None
    assert m["formats"] == list(FORMATS)
    # CSV copies of a plain export are the run's own bytes
    for n in ("edges.csv", "scores.csv", "call_in.csv", "disparity.csv"):
        if (run_dir / n).exists():
            assert (out / n).read_bytes() == (run_dir / n).read_bytes()
    assert not any(p.name.startswith(".") for p in out.iterdir())


def test_only_the_requested_formats(run_dir, tmp_path):
    m = export_run(run_dir, tmp_path / "x", formats="xlsx,graphml")
    assert m["formats"] == ["graphml", "xlsx"]
    assert {p.name for p in (tmp_path / "x").iterdir()} == {"co_offending.graphml", "victimization.graphml",
                                                             "lists.xlsx", "export_manifest.json"}


@pytest.mark.parametrize("ext", ["graphml", "gexf"])
@pytest.mark.parametrize("layer", ["co_offending", "victimization"])
def test_graph_files_round_trip_through_networkx(run_dir, exported, ext, layer):
    out, _ = exported
    g = nx.read_graphml(out / f"{layer}.{ext}") if ext == "graphml" else \
        nx.read_gexf(out / f"{layer}.{ext}", version="1.3")
    assert not g.is_directed() and not g.is_multigraph()
    e = _read(run_dir / "edges.csv")
    e = e[e["layer"] == layer]
    want = {frozenset((a, b)): (float(w), int(k), ids) for a, b, w, k, ids in
            zip(e["person_a"], e["person_b"], e["weight"], e["incidents"], e["incident_ids"])}
    got = {frozenset((a, b)): (d["weight"], d["incidents"], d["incident_ids"]) for a, b, d in g.edges(data=True)}
    assert got == want
    assert len(want) > 0
    # nodes: everyone tied in the layer plus everyone listed, with their scores and list flags
    listed = {n: set(_read(run_dir / f"{n}.csv")["person_id"]) for n in LISTS}
    tied = set(e["person_a"]) | set(e["person_b"])
    assert set(g.nodes) == tied | set().union(*listed.values())
    scores = _read(run_dir / "scores.csv").set_index("person_id")
    assert HOSTILE in g.nodes
    for pid, d in g.nodes(data=True):
        assert d["score"] == float(scores.loc[pid, "score"])
        assert d["degree"] == int(scores.loc[pid, "degree"])
        assert d["betweenness"] == pytest.approx(float(scores.loc[pid, "betweenness"]))
        assert d.get("group", "") == scores.loc[pid, "group"]
        for n in LISTS:
            assert d[f"on_{n}"] is (pid in listed[n])


def test_xlsx_cells_from_input_are_text_never_formulas(exported):
    out, _ = exported
    wb = openpyxl.load_workbook(out / "lists.xlsx")
    hits = []
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for c in row:
                assert c.data_type != "f", f"formula in {ws.title}!{c.coordinate}: {c.value!r}"
                if c.value == HOSTILE:
                    hits.append(c)
    assert hits, "the hostile person ID should appear as text"
    assert all(c.data_type == "s" and c.quotePrefix for c in hits)
    with zipfile.ZipFile(out / "lists.xlsx") as z:
        for n in z.namelist():
            if n.startswith("xl/worksheets/"):
                assert b"<f>" not in z.read(n) and b"<f " not in z.read(n)


def test_xlsx_layout_for_prosecutors(run_dir, exported):
    out, m = exported
    wb = openpyxl.load_workbook(out / "lists.xlsx")
    assert wb.sheetnames == ["About this export", "Call-in", "Custom notifications", "Service referrals"]
    cover = {r[0]: r[1] for r in wb["About this export"].iter_rows(values_only=True) if r[0]}
    text = " ".join(str(k) for k in cover)
    assert "not probable cause" in text
    assert cover["as of"].date().isoformat() == m["run"]["as_of"]     # a real date, not text
    assert cover["policy SHA-256"] == m["run"]["policy_sha256"]
    assert cover["run manifest SHA-256"] == m["run"]["manifest_sha256"]
    assert cover["pseudonymised"] == "no"
    for title, name in zip(wb.sheetnames[1:], LISTS):
        ws = wb[title]
        df = _read(run_dir / f"{name}.csv")
        assert ws.freeze_panes == "A2"
        assert ws.auto_filter.ref == f"A1:{openpyxl.utils.get_column_letter(len(df.columns))}{len(df) + 1}"
        header = [c.value for c in ws[1]]
        assert header == list(df.columns)
        rows = list(ws.iter_rows(min_row=2, values_only=True))
        assert len(rows) == len(df)
        at = {c: j for j, c in enumerate(header)}
        for got, want in zip(rows, df.itertuples(index=False)):
            assert got[at["rank"]] == int(want.rank) and got[at["person_id"]] == want.person_id
            assert float(got[at["score"]]) == float(want.score)
            assert got[at["reasons"]] == want.reasons
        reasons = openpyxl.utils.get_column_letter(at["reasons"] + 1)
        assert ws.column_dimensions[reasons].width > ws.column_dimensions["A"].width


def test_i2_files_bom_crlf_and_consistent_identities(run_dir, exported):
    out, _ = exported
    for name in ("entities.csv", "links.csv"):
        b = (out / name).read_bytes()
        assert b.startswith(b"\xef\xbb\xbf") and b"\r\n" in b and b.replace(b"\r\n", b"").count(b"\n") == 0
    ent = pd.read_csv(out / "entities.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    links = pd.read_csv(out / "links.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert list(ent.columns[:3]) == ["entity_type", "identity", "label"]
    assert list(links.columns[:4]) == ["from_identity", "to_identity", "link_type", "label"]
    assert (ent["entity_type"] == "Person").all() and ent["identity"].is_unique
    # formula-like text gets an apostrophe, identically in both files, so links still resolve
    assert "'" + HOSTILE in set(ent["identity"]) and HOSTILE not in set(ent["identity"])
    assert set(links["from_identity"]) | set(links["to_identity"]) <= set(ent["identity"])
    e = _read(run_dir / "edges.csv")
    assert len(links) == len(e)
    assert sorted(links["link_type"].unique()) == sorted(e["layer"].unique())
    call_in = _read(run_dir / "call_in.csv")
    row = ent.set_index("identity").loc[call_in["person_id"].iloc[0]]
    assert row["on_call_in"] == "yes" and row["call_in_rank"] == "1"


def test_a_re_export_is_byte_identical(run_dir, exported, tmp_path):
    out, _ = exported
    again = tmp_path / "again"
    export_run(run_dir, again)
    assert _hashes(again) == _hashes(out)


# --- the run folder is sealed; the export folder is new ----------------------------------------------

def _copy_run(run_dir: Path, dst: Path) -> Path:
    shutil.copytree(run_dir, dst)
    return dst


def test_an_altered_run_folder_is_refused(run_dir, tmp_path):
    r = _copy_run(run_dir, tmp_path / "run")
    p = r / "call_in.csv"
    p.write_bytes(p.read_bytes().replace(b"SUBJ_ALPHA", b"SUBJ_ALPHX", 1))
    with pytest.raises(UsageError, match="call_in.csv differs from the manifest"):
        export_run(r, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    r2 = _copy_run(run_dir, tmp_path / "run2")
    (r2 / "notes.txt").write_text("added later")
    with pytest.raises(UsageError, match="notes.txt is not part of the run"):
        export_run(r2, tmp_path / "out")
    r3 = _copy_run(run_dir, tmp_path / "run3")
    (r3 / "edges.csv").unlink()
    with pytest.raises(UsageError, match="edges.csv is missing"):
        export_run(r3, tmp_path / "out")
    (tmp_path / "not-a-run").mkdir()
    with pytest.raises(UsageError, match="no manifest.json"):
        export_run(tmp_path / "not-a-run", tmp_path / "out")


def test_export_folder_must_be_new_or_empty_and_outside_the_run(run_dir, tmp_path):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("x")
    with pytest.raises(UsageError, match="not empty"):
        export_run(run_dir, busy)
    assert [p.name for p in busy.iterdir()] == ["keep.txt"]
    r = _copy_run(run_dir, tmp_path / "run")
    with pytest.raises(UsageError, match="inside the run folder"):
        export_run(r, r / "exports")
    with pytest.raises(UsageError, match="inside the run folder"):
        export_run(r, r)
    link = tmp_path / "link"
    link.symlink_to(r, target_is_directory=True)
    with pytest.raises(UsageError, match="inside the run folder"):
        export_run(r, link / "exports")
    assert _hashes(r) == _hashes(run_dir)
    empty = tmp_path / "empty"
    empty.mkdir()
    export_run(run_dir, empty, formats="i2")
    assert {p.name for p in empty.iterdir()} == {"entities.csv", "links.csv", "export_manifest.json"}


def test_a_failed_export_leaves_nothing_behind(run_dir, tmp_path, monkeypatch):
    import errno

    import fdnet.atomic as core  # the all-or-nothing writer export_run uses
    calls = []
    real = os.fsync

    def disk_full(fd):
        calls.append(fd)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)

    monkeypatch.setattr(core.os, "fsync", disk_full)
    with pytest.raises((OSError, FdnetError), match="[Nn]o space left"):
        export_run(run_dir, tmp_path / "new")
    assert not (tmp_path / "new").exists()
    assert [p.name for p in tmp_path.iterdir()] == []          # no staging folder left beside it either
    empty = tmp_path / "empty"
    empty.mkdir()
    calls.clear()
    with pytest.raises((OSError, FdnetError)):
        export_run(run_dir, empty)
    assert list(empty.iterdir()) == []
    assert [p.name for p in tmp_path.iterdir()] == ["empty"]


# --- pseudonymisation ------------------------------------------------------------------------------

def test_new_key_is_private_random_and_never_overwritten(tmp_path):
    p = tmp_path / "k"
    fp = new_key(p)
    key = p.read_bytes()
    assert len(key) == 32 and stat.S_IMODE(p.stat().st_mode) == 0o600
    assert fp == hmac.new(key, b"fdnet key fingerprint v1", hashlib.sha256).hexdigest()[:16]
    with pytest.raises(UsageError, match="exists"):
        new_key(p)
    assert p.read_bytes() == key
    new_key(tmp_path / "k2")
    assert (tmp_path / "k2").read_bytes() != key
    with pytest.raises(UsageError, match="does not exist"):
        new_key(tmp_path / "nowhere" / "k")
    (tmp_path / "short").write_bytes(b"abc")
    with pytest.raises(UsageError, match="at least 32"):
        read_key(tmp_path / "short")


def test_the_key_must_lie_outside_the_run_and_export_folders(run_dir, tmp_path, key_path):
    r = _copy_run(run_dir, tmp_path / "run")
    inside = r / "k"
    shutil.copy(key_path, inside)
    with pytest.raises(UsageError, match="inside the run folder"):
        export_run(r, tmp_path / "out", key_path=inside)
    # a symlink that lives outside but points inside is resolved
    link = tmp_path / "k-link"
    link.symlink_to(inside)
    with pytest.raises(UsageError, match="inside the run folder"):
        export_run(r, tmp_path / "out", key_path=link)
    out = tmp_path / "out"
    with pytest.raises(UsageError, match="inside the export folder"):
        check_key_location(out / "k", {"the run folder": r, "the export folder": out})
    with pytest.raises(UsageError, match="inside the export folder"):
        new_key(tmp_path / "k3", {"the export folder": tmp_path})
    assert not (tmp_path / "out").exists()


def test_pseudonymised_export_holds_no_raw_person_id_anywhere(pseudo):
    out, m = pseudo
    assert m["pseudonymised"] is True
    blobs = _all_text(out)
    assert len(blobs) > 10
    for name, b in blobs.items():
        for marker in RAW_MARKERS:
            for form in {marker, html.escape(marker), marker.replace('"', '""')}:
                assert form.encode("utf-8") not in b, f"{marker!r} found in {name}"


def test_pseudonyms_are_the_keyed_hmac_consistently_in_every_file(run_dir, pseudo, key_path):
    out, m = pseudo
    key = key_path.read_bytes()
    ps = {pid: _hmac_pseudonym(key, pid) for pid in _read(run_dir / "scores.csv")["person_id"]}
    assert m["key_fingerprint"] == key_fingerprint(key)
    assert key.hex().encode() not in (out / "export_manifest.json").read_bytes()
    scores = _read(out / "scores.csv")
    assert set(scores["person_id"]) == set(ps.values())
    assert list(scores["person_id"]) == sorted(scores["person_id"])
    for n in LISTS:
        orig, new = _read(run_dir / f"{n}.csv"), _read(out / f"{n}.csv")
        assert list(new["person_id"]) == [ps[p] for p in orig["person_id"]]
        assert list(new["rank"]) == list(orig["rank"])
    e_orig, e_new = _read(run_dir / "edges.csv"), _read(out / "edges.csv")
    want = {(frozenset((ps[a], ps[b])), layer, w) for a, b, layer, w in
            zip(e_orig["person_a"], e_orig["person_b"], e_orig["layer"], e_orig["weight"])}
    got = {(frozenset((a, b)), layer, w) for a, b, layer, w in
           zip(e_new["person_a"], e_new["person_b"], e_new["layer"], e_new["weight"])}
    assert got == want and (e_new["person_a"] < e_new["person_b"]).all()
    # the same pseudonyms in the graphs, the i2 entities and the workbook
    g = nx.read_graphml(out / "co_offending.graphml")
    assert set(g.nodes) <= set(ps.values())
    ent = pd.read_csv(out / "entities.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert set(ent["identity"]) <= set(ps.values())
    wb = openpyxl.load_workbook(out / "lists.xlsx")
    ws = wb["Custom notifications"]
    cn = _read(run_dir / "custom_notifications.csv")
    assert [r[1] for r in ws.iter_rows(min_row=2, values_only=True)] == [ps[p] for p in cn["person_id"]]
    cover = {r[0]: r[1] for r in wb["About this export"].iter_rows(values_only=True) if r[0]}
    assert cover["key fingerprint"] == m["key_fingerprint"]
    # free text: the group named after a person carries the pseudonym, in reasons too
    crew = f"Crew of {ps['SUBJ_ALPHA']}"
    assert crew in set(_read(out / "groups.csv")["group"])
    assert any(crew in r for r in _read(out / "call_in.csv")["reasons"]) or \
        crew in set(_read(out / "call_in.csv")["group"])


def test_same_key_same_pseudonyms_other_key_others(run_dir, pseudo, key_path, tmp_path):
    out, _ = pseudo
    again = tmp_path / "again"
    export_run(run_dir, again, key_path=key_path)
    assert _hashes(again) == _hashes(out)
    other = tmp_path / "k2"
    new_key(other)
    export_run(run_dir, tmp_path / "other", key_path=other, formats="csv")
    assert not set(_read(tmp_path / "other" / "scores.csv")["person_id"]) & set(_read(out / "scores.csv")["person_id"])


def test_free_text_ids_are_found_on_their_own_only():
    p = Pseudonymiser(b"k" * 32, ["P1", "P12", "A-7", "9"])
    s = p.text("P1 met P12 (P123 absent), A-7; 9 of 19 and 9.")
    assert s == (f"{p('P1')} met {p('P12')} (P123 absent), {p('A-7')}; {p('9')} of 19 and {p('9')}.")
    assert p.text("nothing here") == "nothing here" and p.text("") == ""
    tables = {
        "edges": pd.DataFrame({"person_a": ["P1"], "person_b": ["P12"], "layer": ["co_offending"], "weight": ["1"],
                               "incidents": ["1"], "first_date": ["2024-01-01"], "last_date": ["2024-01-01"],
                               "incident_ids": ["9"]}, dtype=object),
        "scores": pd.DataFrame({"person_id": ["P1", "P12"], "score": ["9", "1"], "group": ["crew of P1", ""]},
                               dtype=object),
        "groups": pd.DataFrame({"person_id": ["P1"], "group": ["crew of P1"]}, dtype=object),
        **{n: pd.DataFrame({"rank": ["1"], "person_id": ["P12"], "group": [""], "score": ["9"],
                            "reasons": ["tied to P1 in incident 9"]}, dtype=object) for n in LISTS},
    }
    t = pseudonymise_tables(tables, p)
    assert t["call_in"]["reasons"].iloc[0] == f"tied to {p('P1')} in incident {p('9')}"
    assert t["edges"]["incident_ids"].iloc[0] == "9"           # incident IDs are not person IDs
    assert t["scores"].set_index("person_id").loc[p("P1"), "score"] == "9"   # numbers are not free text
    assert t["groups"]["group"].iloc[0] == f"crew of {p('P1')}"


def test_colliding_pseudonyms_are_refused(monkeypatch):
    import fdnet.export.pseudonym as ps
    monkeypatch.setattr(ps, "PSEUDONYM_HEX", 0)
    with pytest.raises(FdnetError, match="share a pseudonym"):
        Pseudonymiser(b"k" * 32, ["a", "b"])


# --- the command line ------------------------------------------------------------------------------

def _err(capsys) -> str:
    e = capsys.readouterr().err
    assert "Traceback" not in e
    return e


def test_cli_export_and_exit_codes(run_dir, tmp_path, capsys):
    out = tmp_path / "e"
    assert main(["export", str(run_dir), "--out", str(out), "--format", "xlsx", "-q"]) == 0
    assert (out / "lists.xlsx").is_file()
    assert main(["export", str(run_dir), "--out", str(out)]) == 2
    assert "not empty" in _err(capsys)
    assert main(["export", str(run_dir), "--out", str(tmp_path / "f"), "--format", "pdf"]) == 2
    assert "unknown format" in _err(capsys)
    assert main(["export", str(run_dir)]) == 2
    assert "--out" in _err(capsys)
    assert main(["export"]) == 2
    _err(capsys)
    assert main(["export", str(run_dir), "--out", str(tmp_path / "g"), "--pseudonymise"]) == 2
    assert "needs a key" in _err(capsys)
    key = tmp_path / "k"
    assert main(["export", "--new-key", str(key)]) == 0
    assert "fingerprint" in capsys.readouterr().out and len(key.read_bytes()) == 32
    assert main(["export", "--new-key", str(key)]) == 2
    assert "exists" in _err(capsys)
    assert main(["export", str(run_dir), "--out", str(tmp_path / "g"), "--key-file", str(key)]) == 2
    assert "add --pseudonymise" in _err(capsys)
    assert main(["export", str(run_dir), "--out", str(tmp_path / "g"), "--pseudonymise", "--key-file", str(key),
                 "--format", "csv", "-q"]) == 0
    assert json.loads((tmp_path / "g" / "export_manifest.json").read_text())["key_fingerprint"] == \
        key_fingerprint(key.read_bytes())
    r = _copy_run(run_dir, tmp_path / "run")
    shutil.copy(key, r / "k")
    assert main(["export", str(r), "--out", str(tmp_path / "h"), "--pseudonymise", "--key-file", str(r / "k")]) == 2
    assert "inside the run folder" in _err(capsys)
    assert not (tmp_path / "h").exists()
    (r / "k").unlink()
    (r / "scores.csv").write_text("person_id\n")
    assert main(["export", str(r), "--out", str(tmp_path / "h")]) == 2
    assert "fdnet verify" in _err(capsys)


def test_cli_new_key_with_pseudonymise_creates_and_uses_it(run_dir, tmp_path, capsys):
    key = tmp_path / "fresh.key"
    assert main(["export", str(run_dir), "--out", str(tmp_path / "e"), "--pseudonymise", "--new-key", str(key),
                 "--format", "i2"]) == 0
    m = json.loads((tmp_path / "e" / "export_manifest.json").read_text())
    assert m["key_fingerprint"] == key_fingerprint(key.read_bytes())
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    # no key is created when the export would be refused anyway
    bad = tmp_path / "bad.key"
    assert main(["export", str(run_dir), "--out", str(tmp_path / "e"), "--pseudonymise", "--new-key", str(bad)]) == 2
    assert not bad.exists()
    capsys.readouterr()


def test_cli_records_the_export_in_the_audit_log(run_dir, tmp_path, monkeypatch):
    pytest.importorskip("sqlalchemy")
    from fdnet.audit.log import AuditLog
    db = tmp_path / "audit.sqlite"
    monkeypatch.setenv("FDNET_AUDIT_DB", str(db))
    assert main(["export", str(run_dir), "--out", str(tmp_path / "e"), "--format", "graphml", "-q"]) == 0
    entries = AuditLog(str(db)).entries(kind="export")
    assert len(entries) == 1
    payload = entries[0].payload if hasattr(entries[0], "payload") else entries[0]["payload"]
    if isinstance(payload, str):
        payload = json.loads(payload)
    assert payload["pseudonymised"] is False
    assert set(payload["files"]) == {"co_offending.graphml", "victimization.graphml", "export_manifest.json"}


# --- hostile strings in every format ---------------------------------------------------------------

def _tables(pid_a: str, pid_b: str, group: str) -> dict[str, pd.DataFrame]:
    lst = pd.DataFrame({"rank": ["1"], "person_id": [pid_a], "group": [group], "score": ["5"],
                        "reasons": [f"tied to {pid_b}\nsecond line"]}, dtype=object)
    return {
        "edges": pd.DataFrame({"person_a": [pid_a], "person_b": [pid_b], "layer": ["co_offending"],
                               "weight": ["2"], "incidents": ["2"], "first_date": ["2024-01-01"],
                               "last_date": ["2024-02-01"], "incident_ids": ["I1;I2"]}, dtype=object),
        "scores": pd.DataFrame({"person_id": [pid_a, pid_b], "score": ["5", "1"], "group": [group, ""],
                                "degree": ["1", "1"], "exposure_1": ["0", "0"], "exposure_2": ["0", "0"]},
                               dtype=object),
        "groups": pd.DataFrame({"person_id": [pid_a], "group": [group]}, dtype=object),
        "call_in": lst, "custom_notifications": lst.iloc[0:0], "service_referrals": lst.iloc[0:0],
    }


def test_markup_quotes_line_breaks_and_control_characters_stay_well_formed():
    from fdnet.export.graphs import gexf_bytes, graphml_bytes, layer_data
    from fdnet.export.i2 import i2_files
    from fdnet.export.xlsx import lists_workbook

    a, b = 'A&<b>"q\'\tx', "B\x01ctl"
    group = "<script>alert(1)</script> & \"crew\"\r\nline"
    t = _tables(a, b, group)
    d = layer_data(t, "co_offending")
    for g in (nx.read_graphml(io.BytesIO(graphml_bytes(d))),
              nx.read_gexf(io.BytesIO(gexf_bytes(d, "2024-03-01")), version="1.3")):
        assert set(g.nodes) == {a, "B\ufffdctl"}                     # XML cannot hold \x01: shown as U+FFFD
        assert g.nodes[a]["group"] == group                           # tab, CR, LF and markup survive
        assert g.edges[a, "B\ufffdctl"]["weight"] == 2.0
    meta = {"as_of": "2024-03-01", "window_start": "2021-03-02", "policy_sha256": "0" * 64,
            "run_fdnet_version": "x", "fdnet_version": "x", "run_manifest_sha256": "1" * 64,
            "pseudonymised": False, "key_fingerprint": None}
    wb = openpyxl.load_workbook(io.BytesIO(lists_workbook(t, meta)))
    row = [c.value for c in wb["Call-in"][2]]
    # XML reads CR LF inside a cell as LF: the line break stays, the CR goes
    assert row[1] == a and row[2] == group.replace("\r\n", "\n")
    assert row[4] == f"tied to {b.replace(chr(1), chr(0xfffd))}\nsecond line"
    files = i2_files(t)
    ent = pd.read_csv(io.BytesIO(files["entities.csv"]), dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert ent.set_index("identity").loc[a, "group"] == "<script>alert(1)</script> & \"crew\" line"
    assert files["links.csv"].decode("utf-8-sig").count("\r\n") == 2   # header + one link: one line each


def test_policy_hash_is_the_audit_logs():
    from fdnet.audit.log import canonical_json
    from fdnet.export.runfolder import policy_sha256
    from fdnet.policy import Policy
    p = Policy().effective()
    assert policy_sha256(p) == hashlib.sha256(canonical_json(p).encode("utf-8")).hexdigest()


# --- XLSX dates, GEXF 1.3 ----------------------------------------------------------------------------

def test_xlsx_dates_are_real_excel_dates(run_dir, exported):
    import datetime as dt
    out, _ = exported
    wb = openpyxl.load_workbook(out / "lists.xlsx")
    checked = 0
    for title, name in zip(wb.sheetnames[1:], LISTS):
        ws = wb[title]
        header = [c.value for c in ws[1]]
        df = _read(run_dir / f"{name}.csv")
        for col in [c for c in df.columns if c.endswith("_date")]:
            j = header.index(col) + 1
            for i, want in enumerate(df[col], start=2):
                c = ws.cell(row=i, column=j)
                if want == "":
                    assert c.value is None
                    continue
                assert isinstance(c.value, dt.datetime) and c.is_date, (title, col, c.value)
                assert c.number_format == "yyyy-mm-dd" and c.value.date().isoformat() == want
                checked += 1
    assert checked > 0, "the lists carry dates"
    cover = wb["About this export"]
    as_of = [r[1] for r in cover.iter_rows() if r[0].value == "as of"][0]
    assert as_of.is_date and as_of.number_format == "yyyy-mm-dd"


def test_xlsx_date_columns_keep_impossible_dates_and_formulas_as_text():
    from fdnet.export.xlsx import lists_workbook
    t = _tables("A1", "B1", "G")
    t["call_in"] = t["call_in"].assign(last_offending_date=["2024-02-30"], first_date=["1899-12-31"],
                                       note=["=1+1"])
    t["custom_notifications"] = t["call_in"].iloc[0:0]
    t["service_referrals"] = t["call_in"].assign(last_offending_date=["2024-02-29"])
    meta = {"as_of": "2024-03-01", "window_start": "2021-03-02", "policy_sha256": "0" * 64,
            "run_fdnet_version": "x", "fdnet_version": "x", "run_manifest_sha256": "1" * 64,
            "pseudonymised": False, "key_fingerprint": None}
    wb = openpyxl.load_workbook(io.BytesIO(lists_workbook(t, meta)))
    ws = wb["Call-in"]
    row = {h.value: c for h, c in zip(ws[1], ws[2])}
    assert row["last_offending_date"].value == "2024-02-30" and row["last_offending_date"].data_type == "s"
    assert row["first_date"].value == "1899-12-31" and row["first_date"].data_type == "s"
    assert row["note"].value == "=1+1" and row["note"].data_type == "s" and row["note"].quotePrefix
    ok = {h.value: c for h, c in zip(wb["Service referrals"][1], wb["Service referrals"][2])}
    assert ok["last_offending_date"].is_date and ok["last_offending_date"].value.day == 29


@pytest.mark.parametrize("layer", ["co_offending", "victimization"])
def test_gexf_is_version_1_3_with_gephi_attributes(exported, layer):
    import xml.etree.ElementTree as ET
    out, _ = exported
    b = (out / f"{layer}.gexf").read_bytes()
    root = ET.fromstring(b)
    assert root.tag == "{http://gexf.net/1.3}gexf" and root.get("version") == "1.3"
    assert b"1.2draft" not in b and b"www.gexf.net" not in b
    ns = {"g": "http://gexf.net/1.3"}
    graph = root.find("g:graph", ns)
    assert graph.get("defaultedgetype") == "undirected" and graph.get("mode") == "static"
    titles = {a.get("title"): a.get("type") for a in graph.iterfind("g:attributes[@class='node']/g:attribute", ns)}
    assert titles["score"] == "double" and titles["group"] == "string" and titles["on_call_in"] == "boolean"
    assert titles["degree"] == "long"
    g = nx.read_gexf(out / f"{layer}.gexf", version="1.3")
    assert g.number_of_nodes() == len(graph.findall("g:nodes/g:node", ns))
    n, d = next(iter(g.nodes(data=True)))
    assert d["label"] == n and isinstance(d["score"], float) and isinstance(d["on_call_in"], bool)
    for _, _, e in g.edges(data=True):
        assert isinstance(e["weight"], float) and e["layer"] == layer and e["first_date"] <= e["last_date"]


# --- key strength ------------------------------------------------------------------------------------

WEAK_KEYS = {
    "human16": b"Summer2024Police",                                  # the key that was guessed in seconds
    "passphrase": b"correct horse battery staple for the police audit\n",
    "unicode": "pässwörd für die prüfung, κλειδί ключ".encode(),
    "repeated": b"\x9c\x01\xfe\x42" * 10,
    "counting": bytes(range(100, 140)),
    "zeros-hex": b"00" * 32 + b"\n",
    "short-hex": bytes(range(7, 55, 2)).hex().encode(),              # 24 bytes of hex
    "small-alphabet": bytes([0x80, 0x81, 0x82, 0x90] * 3 + [0x81, 0x80, 0x90, 0x82] * 3 + [0x82, 0x90] * 8),
}


@pytest.mark.parametrize("name", sorted(WEAK_KEYS))
def test_weak_keys_are_refused_with_a_clear_exit_2(run_dir, tmp_path, capsys, name):
    key = tmp_path / "weak.key"
    key.write_bytes(WEAK_KEYS[name])
    key.chmod(0o600)
    with pytest.raises(UsageError, match="not a strong random key"):
        read_key(key)
    rc = main(["export", str(run_dir), "--out", str(tmp_path / "e"), "--pseudonymise", "--key-file", str(key),
               "--format", "csv"])
    err = _err(capsys)
    assert rc == 2 and "not a strong random key" in err and "--new-key" in err and str(key) in err
    assert not (tmp_path / "e").exists()


def test_hex_and_base64_key_files_are_the_decoded_bytes(tmp_path):
    import base64
    raw = tmp_path / "raw.key"
    new_key(raw)
    k = raw.read_bytes()
    forms = {"hex": k.hex().encode() + b"\n", "HEX": k.hex().upper().encode(), "b64": base64.b64encode(k) + b"\r\n",
             "urlsafe": base64.urlsafe_b64encode(k).rstrip(b"=")}
    for name, text in forms.items():
        (tmp_path / name).write_bytes(text)
        assert read_key(tmp_path / name) == k, name
    assert read_key(raw) == k
    (tmp_path / "long").write_bytes(os.urandom(64))
    assert len(read_key(tmp_path / "long")) == 64
    (tmp_path / "huge").write_bytes(os.urandom(100_000))
    with pytest.raises(UsageError, match="not a key file"):
        read_key(tmp_path / "huge")
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(UsageError, match="not a file"):
        read_key(tmp_path / "fifo")                                  # refused at once, never read (no hang)


def test_random_keys_are_never_refused():
    from fdnet.export.pseudonym import parse_key, weakness
    assert sum(weakness(os.urandom(32)) is not None for _ in range(20_000)) == 0
    for _ in range(200):
        k = os.urandom(32)
        assert parse_key(k) == k and parse_key(k.hex().encode()) == k


# --- nothing leaves the folders asked for ------------------------------------------------------------

def test_export_file_names_never_come_from_data(tmp_path):
    from fdnet.export.core import write_all_or_nothing
    from fdnet.export.graphs import graph_files
    from fdnet.export.i2 import i2_files
    t = _tables("../../etc/passwd", "/abs/B", "../group")
    t["edges"] = pd.concat([t["edges"], t["edges"].assign(layer="../../evil")], ignore_index=True)
    names = set(graph_files(t, ("graphml", "gexf"), "2024-03-01")) | set(i2_files(t))
    assert names == {"co_offending.graphml", "victimization.graphml", "co_offending.gexf", "victimization.gexf",
                     "entities.csv", "links.csv"}
    for bad in ("../x.csv", "/tmp/x.csv", "sub/x.csv", ".hidden.csv", "x.sh"):
        with pytest.raises(ValueError, match="not plain names"):
            write_all_or_nothing({bad: b"x"}, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "x.csv").exists()


def test_a_manifest_naming_files_outside_the_run_or_symlinks_is_refused(run_dir, tmp_path):
    r = _copy_run(run_dir, tmp_path / "run")
    m = json.loads((r / "manifest.json").read_text())
    outside = tmp_path / "secret.txt"
    outside.write_text("not part of the run")
    m["outputs"]["../secret.txt"] = {"sha256": hashlib.sha256(outside.read_bytes()).hexdigest()}
    (r / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(UsageError, match="not a plain file name"):
        export_run(r, tmp_path / "out")
    r2 = _copy_run(run_dir, tmp_path / "run2")
    target = tmp_path / "scores-elsewhere.csv"
    shutil.move(r2 / "scores.csv", target)
    (r2 / "scores.csv").symlink_to(target)
    with pytest.raises(UsageError, match="symbolic link"):
        export_run(r2, tmp_path / "out")
    assert not (tmp_path / "out").exists()
