"""fdnet.run() -> Run, Run.write, fdnet.open_run and the one run-folder description (fdnet.runfolder).

The run under test is a small synthetic city (big enough for every list to have people) computed
once; the CLI's run folder of the same inputs is the reference for byte identity.
"""
from __future__ import annotations

import json
import shutil
import sys

import pandas as pd
import pytest

import fdnet
from fdnet.cli import main
from fdnet.errors import UsageError
from fdnet.runfolder import (ALWAYS_WRITTEN, FILES, LIST_FILES, LIST_NAMES, RunFolder, open_run, spec)
from fdnet.tables import read_csv_table

# CONTRACT.md section 3: the columns each file must hold (at least)
CONTRACT_COLUMNS = {
    "rejected.csv": ("file", "line", "column", "reason"),
    "edges.csv": ("person_a", "person_b", "layer", "weight", "incidents", "first_date", "last_date", "incident_ids"),
    "groups.csv": ("person_id", "group", "source"),
    "scores.csv": ("person_id", "score", "group", "degree", "exposure_1", "exposure_2"),
    **{f: ("rank", "person_id", "group", "score", "reasons") for f in LIST_FILES},
    "places.csv": ("cell_id", "lat", "lon", "shootings", "risk"),
    "risk_factors.csv": ("factor", "relative_risk", "ci95_low", "ci95_high", "selected"),
    "resolution.csv": ("person_id", "source", "entity_id"),
}
EXPLANATION_KEYS = ("person_id", "lists", "score", "components")


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    from fdnet.synth import generate_city, write_city
    d = tmp_path_factory.mktemp("runobj") / "city"
    write_city(generate_city(n_people=2500, seed=3), d)
    return d


@pytest.fixture(scope="module")
def steps():
    return []


@pytest.fixture(scope="module")
def run(city, steps):
    return fdnet.run(city, progress=steps.append)


@pytest.fixture(scope="module")
def written(run, tmp_path_factory, steps):
    out = run.write(tmp_path_factory.mktemp("written") / "run", progress=steps.append)
    assert steps[-1] == "report"
    del steps[-1]
    return out


@pytest.fixture(scope="module")
def cli_run(city, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    assert main(["run", str(city), "--out", str(out), "-q"]) == 0
    return out


def test_fdnet_run_is_the_module_and_the_function(run):
    mod = sys.modules["fdnet.run"]
    assert fdnet.run is mod and callable(fdnet.run) and isinstance(run, fdnet.Run) and fdnet.Run is mod.Run
    with pytest.raises(Exception):
        run.scores = None          # frozen


def test_run_fields_and_repr(run, steps):
    from fdnet.run import STEPS
    # fdnet.run computes every stage but the last; the last, "report", is the write (Run.write(progress=))
    assert steps == list(STEPS[:-1])
    assert set(run.lists) == {*LIST_NAMES, "call_in_groups"}
    assert all(len(run.lists[n]) for n in LIST_NAMES)
    assert list(run.explanations.columns) == ["person_id", "json"]
    assert run.explanations["person_id"].is_monotonic_increasing
    assert set(run.explanations["person_id"]) == set(run.listed())
    assert len(run.scores) == run.network.n_persons == run.summary["persons_in_network"]
    assert {"list", "attribute", "category", "listed"} <= set(run.disparity.columns)
    assert "outputs" not in run.manifest or run.manifest["outputs"]
    r = repr(run)
    assert r.startswith(f"Run(as_of='{run.manifest['as_of']}', people_in_network={run.network.n_persons}")
    assert all(f"{n}={len(run.lists[n])}" in r for n in LIST_NAMES) and len(r) < 300


def test_explain_is_the_stored_line_for_a_listed_person(run, written):
    lines = {json.loads(x)["person_id"]: json.loads(x)
             for x in (written / "explanations.jsonl").read_text(encoding="utf-8").splitlines()}
    for pid in list(lines)[:5]:
        assert run.explain(pid) == lines[pid]
        assert all(k in lines[pid] for k in EXPLANATION_KEYS)
    unlisted = sorted(set(run.scores["person_id"]) - set(lines))[0]
    e = run.explain(unlisted)
    assert e["person_id"] == unlisted and e["lists"] == []
    with pytest.raises(UsageError, match="not in this run's network"):
        run.explain("NO SUCH PERSON")


def test_to_networkx_edges_equal_edges_csv(run, written):
    edges = read_csv_table(written / "edges.csv")
    for layer in ("co_offending", "victimization"):
        g = run.to_networkx(layer)
        e = edges[edges["layer"] == layer]
        assert g.number_of_nodes() == run.network.n_persons
        assert {tuple(sorted(x)) for x in g.edges()} == set(zip(e["person_a"], e["person_b"]))
        a, b, ids = e.iloc[0][["person_a", "person_b", "incident_ids"]]
        assert g.edges[a, b]["incident_ids"] == ids
    with pytest.raises(UsageError):
        run.to_networkx("friendship")


def test_write_then_open_run_is_byte_identical_to_the_cli(run, written, cli_run):
    names = sorted(p.name for p in written.iterdir())
    assert names == sorted(p.name for p in cli_run.iterdir())
    assert set(ALWAYS_WRITTEN) | {"manifest.json"} <= set(names)
    for n in names:
        if n == "manifest.json":
            a, b = (json.loads((d / n).read_text(encoding="utf-8")) for d in (written, cli_run))
            a.pop("environment"), b.pop("environment")
            assert a == b
        else:
            assert (written / n).read_bytes() == (cli_run / n).read_bytes(), n
    rf = open_run(written)
    assert isinstance(rf, RunFolder) and rf.manifest == run.manifest
    assert rf.manifest["outputs"] == run.manifest["outputs"]
    for n, meta in rf.manifest["outputs"].items():
        assert meta["bytes"] == len(rf.raw[n]) == (written / n).stat().st_size
    # the report rendered from the opened folder is the very report the Run wrote (verify's check)
    from fdnet.report.html import render_folder_report
    m = {k: v for k, v in rf.manifest.items() if k != "outputs"}
    assert render_folder_report(RunFolder(rf.path, m, {k: v for k, v in rf.raw.items() if k != "report.html"})) \
        == (written / "report.html").read_text(encoding="utf-8")
    assert run.report_html() == (written / "report.html").read_text(encoding="utf-8")
    assert main(["verify", str(written)]) == 0


def test_files_streams_every_file_with_the_manifest_last(run, written):
    got = list(run.files())
    assert got[-1][0] == "manifest.json" and got[-2][0] == "report.html"
    for name, data in got[:-1]:
        assert data == (written / name).read_bytes(), name


def test_tables_written_piece_by_piece_are_the_same_bytes(run, written, tmp_path, monkeypatch):
    """Run.write streams each table in pieces (fdnet.tables.csv_chunks); with tiny pieces the folder is
    still byte for byte the one written in one piece."""
    import fdnet.run
    import fdnet.tables
    monkeypatch.setattr(fdnet.tables, "CHUNK_ROWS", 97)
    again = run.write(tmp_path / "pieces")
    for p in sorted(written.iterdir()):
        assert (again / p.name).read_bytes() == p.read_bytes(), p.name
    # edges.csv is made a piece of ties at a time too (fdnet.run.edge_frames): the same bytes as the frame
    monkeypatch.setattr(fdnet.run, "EDGE_PIECE", 41)
    assert sum(1 for _ in fdnet.run.edge_frames(run.network)) > 2
    again = run.write(tmp_path / "edge-pieces")
    assert (again / "edges.csv").read_bytes() == (written / "edges.csv").read_bytes() \
        == fdnet.tables.csv_bytes(run.edges)


def test_open_run_tables_are_lazy_text_and_checked(written):
    rf = open_run(written)
    assert rf._tables == {} or all(k[0] in ("edges.csv", "scores.csv", "groups.csv", *LIST_FILES) for k in rf._tables)
    sc = rf.table("scores")
    assert pd.api.types.is_string_dtype(sc["person_id"]) and sc is rf.table("scores.csv")
    assert rf.tables["call_in"].equals(rf.table("call_in"))
    assert rf.table("resolution") is None          # an optional table the run did not write (no resolution)
    assert rf.table("places") is not None         # the synthetic incidents carry lat/lon: the places analysis ran
    pid = rf.table("call_in")["person_id"].iloc[0]
    assert rf.explanation(pid)["person_id"] == pid and rf.explanation("NOBODY") is None
    assert len(rf.policy_sha256) == 64 and rf.as_of == rf.manifest["as_of"]


@pytest.mark.parametrize("damage", ["edit", "remove", "add", "manifest"])
def test_open_run_refuses_an_altered_folder(written, tmp_path, damage):
    d = tmp_path / "copy"
    shutil.copytree(written, d)
    if damage == "edit":
        p = d / "call_in.csv"
        p.write_bytes(p.read_bytes().replace(b",", b";", 1))
        match = "call_in.csv differs from the manifest"
    elif damage == "remove":
        (d / "scores.csv").unlink()
        match = "scores.csv is missing"
    elif damage == "add":
        (d / "notes.txt").write_text("x")
        match = "notes.txt is not part of the run"
    else:
        (d / "manifest.json").write_text("{not json")
        match = "not a valid fdnet manifest"
    with pytest.raises(UsageError, match=match):
        open_run(d)
    with pytest.raises(UsageError, match="no manifest.json|not a run folder"):
        open_run(tmp_path / "nowhere")


def test_the_description_covers_the_contract(written):
    """Every file of CONTRACT.md section 3 is described with its columns; every written file is described,
    holds the described columns in that order, and marks its person-ID columns."""
    for name, cols in CONTRACT_COLUMNS.items():
        assert set(cols) <= set(spec(name).required_columns), name
    described = {f.name for f in FILES}
    assert {"manifest.json", "report.html", "explanations.jsonl", "manifest.sig", "places.csv", "risk_factors.csv",
            "resolution.csv", "changes.csv", "call_in_groups.csv", "disparity.csv"} <= described
    for p in sorted(written.iterdir()):
        assert p.name in described, p.name
        f = spec(p.name)
        if f.kind == "csv":
            header = read_csv_table(p.read_bytes()).columns.tolist()
            cols = [c for c in header if c in f.required_columns]
            assert cols == list(f.required_columns), p.name      # present, in the contract's order
            assert set(f.person_id_columns) <= set(header) or not f.always, p.name
        elif f.kind == "jsonl":
            first = json.loads(p.read_text(encoding="utf-8").splitlines()[0])
            assert set(f.required_columns) <= set(first)
    assert spec("edges").person_id_columns == ("person_a", "person_b")
    assert all(spec(f).person_id_columns == ("person_id",) for f in LIST_FILES)


def test_study_still_works_for_notebooks(city):
    st = fdnet.study(city)
    assert isinstance(st.scores, pd.DataFrame) and st.network.n_persons > 0
