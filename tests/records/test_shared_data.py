"""fdnet on real, public criminal-network records from ``../shared/data``.

Datasets (read in place, never copied into the package; each folder's
SOURCE.md and LICENSE give the details):

- ``israel_burglary``: Israel National Police solved-burglary co-offending
  records, January to June 2020 (1658 offenders, 1671 burglaries), with the
  publishers' own co-offending pairs. Source: repository
  erichoang/criminal-network-visualization, datasets/preprocessed/
  israel_lea_inp_burglary_offender_id_network_from_2020-01-01_to_2020-06-30.json
  (commit e0eb2239b6610d35148a0dfd61ebe2f7545f7738), provided by the Israel
  National Police to the EU ROXANNE project (BSD-3 style licence). Cite:
  ROXANNE project (roxanne-euproject.org), Israel National Police burglary data.
- ``stlouis_crime``: the St. Louis crime network (Rosenfeld and White): 870
  persons x 552 crime events with roles victim / suspect / witness /
  victim+suspect, no dates. Source: repository schochastics/networkdata,
  data/crime.rda (commit 9f9121ef963e100e7766eaa9877e5198cd38e5f6), MIT
  licence; originally Linton Freeman's collection ("moreno_crime" in KONECT).
  Cite: Rosenfeld, R., and White, N. (St. Louis crime data), via L. C.
  Freeman's network data collection.

The tests skip cleanly when ``../shared/data`` is absent.
"""
from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

from fdnet.pipeline import compute_run
from fdnet.records.validate import load_records

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
ISRAEL = DATA / "israel_burglary"
STLOUIS = DATA / "stlouis_crime"
OFFENDING = ("offender", "suspect", "arrestee")


def need(folder: Path, *files: str) -> None:
    for f in files:
        if not (folder / f).is_file():
            pytest.skip(f"shared dataset file {folder.name}/{f} is absent")


def frame(res, name: str) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(res.outputs[name]), dtype=str, keep_default_na=False)


def pair_counts(rows: pd.DataFrame, inc: str, person: str) -> pd.Series:
    """Distinct shared incidents per unordered person pair (a < b), by a self-merge."""
    rows = rows[[inc, person]].drop_duplicates()
    m = rows.merge(rows, on=inc)
    m = m[m[f"{person}_x"] < m[f"{person}_y"]]
    s = m.groupby([f"{person}_x", f"{person}_y"])[inc].nunique()
    s.index.names = ["person_a", "person_b"]
    return s.sort_index()


def edge_weights(edges: pd.DataFrame, layer: str) -> pd.Series:
    e = edges[edges["layer"] == layer]
    s = e.set_index(["person_a", "person_b"])["weight"].astype(int)
    return s.sort_index()


# ----------------------------------------------------------------------------
# Israel burglary: projection against the publishers' pairs, and time windows
# ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def israel_rows() -> pd.DataFrame:
    need(ISRAEL, "offender_crime.csv", "published_pairs.csv")
    return pd.read_csv(ISRAEL / "offender_crime.csv", dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def israel_dir(tmp_path_factory, israel_rows) -> Path:
    """The records as one long records-system export, read through mapping.yaml."""
    d = tmp_path_factory.mktemp("israel")
    export = israel_rows.rename(columns={"offender_id": "OFFENDER", "crime_id": "CASE_NO",
                                         "date": "Report_Date"})
    export["INV_TYPE"] = "BURG-OFF"
    export.to_csv(d / "burglary_export.csv", index=False)
    (d / "mapping.yaml").write_text(
        "long:\n"
        "  file: burglary_export.csv\n"
        "  columns: {incident_id: CASE_NO, date: Report_Date, person_id: OFFENDER, role: INV_TYPE}\n"
        "roles:\n"
        "  BURG-OFF: offender\n", encoding="utf-8")
    return d


def test_israel_projection_reproduces_published_pairs(israel_dir, israel_rows):
    res = compute_run(israel_dir, policy={"window_days": 3650, "retention_days": 3650})
    assert res.manifest["as_of"] == israel_rows["date"].max() == "2020-06-30"
    assert frame(res, "rejected.csv").empty
    edges = frame(res, "edges.csv")
    published = pd.read_csv(ISRAEL / "published_pairs.csv", dtype=str)
    pub = published.set_index(["source", "target"])["n_shared_crimes"].astype(int)
    pub.index.names = ["person_a", "person_b"]
    pub = pub.sort_index()
    got = edge_weights(edges, "co_offending")
    assert len(got) == len(pub) == 864
    assert got.index.tolist() == pub.index.tolist()
    assert got.tolist() == pub.tolist()
    co = edges[edges["layer"] == "co_offending"]
    assert (co["weight"] == co["incidents"]).all()
    assert (edges["layer"] == "co_offending").all()  # no victims in these records
    # every published pair's evidence is crimes both offenders took part in
    crimes_of = israel_rows.groupby("offender_id")["crime_id"].agg(set)
    for r in co.itertuples():
        ids = set(r.incident_ids.split(";"))
        assert ids == crimes_of[r.person_a] & crimes_of[r.person_b]
    # degree in scores.csv = the number of published partners, for all 1658 offenders
    scores = frame(res, "scores.csv").set_index("person_id")
    assert len(scores) == israel_rows["offender_id"].nunique() == 1658
    partners = pd.concat([published["source"], published["target"]]).value_counts()
    degree = partners.reindex(scores.index).fillna(0).astype(int)
    assert scores["degree"].astype(int).tolist() == degree.tolist()


@pytest.mark.parametrize("as_of, window_days, first, last", [
    ("2020-03-31", 90, "2020-01-01", "2020-03-31"),   # January to March
    ("2020-06-30", 90, "2020-04-01", "2020-06-30"),   # April to June: earlier rows excluded
    ("2020-02-15", 20, "2020-01-26", "2020-02-15"),
])
def test_israel_time_window_gives_pairs_of_window_rows_only(israel_dir, israel_rows, as_of, window_days,
                                                             first, last):
    res = compute_run(israel_dir, as_of=as_of, policy={"window_days": window_days})
    assert res.manifest["window"]["start"] == first
    rows = israel_rows[(israel_rows["date"] >= first) & (israel_rows["date"] <= last)]
    expected = pair_counts(rows, "crime_id", "offender_id")
    edges = frame(res, "edges.csv")
    got = edge_weights(edges, "co_offending")
    assert len(expected) > 0
    assert got.index.tolist() == expected.index.tolist()
    assert got.tolist() == expected.tolist()
    assert edges["first_date"].min() >= first and edges["last_date"].max() <= last
    scores = frame(res, "scores.csv")
    assert sorted(scores["person_id"]) == sorted(set(rows["offender_id"]))


def _yaml_code_folder(path: Path, roles_yaml: str) -> Path:
    """Two offenders and a victim, role codes as a records system might export them."""
    pd.DataFrame({"incident_id": ["I1"], "date": ["2020-01-01"]}).to_csv(path / "incidents.csv", index=False)
    pd.DataFrame({"incident_id": ["I1", "I1", "I1"], "person_id": ["A", "B", "C"],
                  "role": ["OFF", "OFF", "NO"]}).to_csv(path / "involvements.csv", index=False)
    (path / "mapping.yaml").write_text("roles:\n" + roles_yaml, encoding="utf-8")
    return path


def test_mapping_quoted_role_codes_are_mapped(tmp_path):
    """Found while mapping the Israel export's role code: the quoted spelling works."""
    rec = load_records(_yaml_code_folder(tmp_path, '  "OFF": offender\n  "NO": victim\n'))
    assert rec.rejected.empty
    assert rec.involvements[["person_id", "role"]].values.tolist() == [
        ["A", "offender"], ["B", "offender"], ["C", "victim"]]


def test_mapping_unquoted_role_codes_that_look_boolean(tmp_path):
    """YAML 1.1 reads OFF/NO/YES as booleans; the mapping must keep them as the codes written."""
    rec = load_records(_yaml_code_folder(tmp_path, "  OFF: offender\n  NO: victim\n"))
    assert rec.rejected.empty
    assert rec.involvements[["person_id", "role"]].values.tolist() == [
        ["A", "offender"], ["B", "offender"], ["C", "victim"]]


# ----------------------------------------------------------------------------
# St. Louis: roles, victimization edges, victim-offender overlap, lists
# ----------------------------------------------------------------------------

FIXED_DATE = "2020-01-15"
BIG = 100_000


@pytest.fixture(scope="module")
def stl_rows() -> pd.DataFrame:
    need(STLOUIS, "person_crime.csv")
    return pd.read_csv(STLOUIS / "person_crime.csv", dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def stl_expanded(stl_rows) -> pd.DataFrame:
    """One row per (crime, person, fdnet role): victim+suspect split in two."""
    r = stl_rows.assign(role=stl_rows["role"].str.split("+")).explode("role")
    return r.drop_duplicates().reset_index(drop=True)


@pytest.fixture(scope="module")
def stl_dir(tmp_path_factory, stl_rows) -> Path:
    """Every crime on one date, as a gun incident; roles mapped through mapping.yaml."""
    d = tmp_path_factory.mktemp("stlouis")
    crimes = pd.DataFrame({"crime_id": sorted(stl_rows["crime_id"].unique())})
    crimes["date"] = FIXED_DATE
    crimes["gun"] = "true"
    crimes.to_csv(d / "crimes.csv", index=False)
    stl_rows.to_csv(d / "person_crime.csv", index=False)
    (d / "mapping.yaml").write_text(
        "tables:\n"
        "  incidents:\n"
        "    file: crimes.csv\n"
        "    columns: {incident_id: crime_id}\n"
        "  involvements:\n"
        "    file: person_crime.csv\n"
        "    columns: {incident_id: crime_id}\n"
        "roles:\n"
        '  "victim+suspect": [victim, suspect]\n', encoding="utf-8")
    return d


STL_POLICY = {
    "window_days": 30,
    "lists": {
        "call_in": {"size": BIG, "min_score": 0},
        "custom_notifications": {"size": BIG, "min_score": 0},
        "service_referrals": {"size": BIG, "min_score": 0},
    },
}


@pytest.fixture(scope="module")
def stl_run(stl_dir):
    return compute_run(stl_dir, policy=STL_POLICY)


def test_stlouis_roles_are_mapped_and_both_roles_kept(stl_dir, stl_rows, stl_expanded):
    rec = load_records(stl_dir)
    assert rec.rejected.empty
    got = rec.involvements[["incident_id", "person_id", "role"]]
    got = set(map(tuple, got.to_numpy().tolist()))
    exp = set(map(tuple, stl_expanded[["crime_id", "person_id", "role"]].to_numpy().tolist()))
    assert got == exp
    both = stl_rows[stl_rows["role"] == "victim+suspect"]
    assert len(both) == 41
    for c, p in both[["crime_id", "person_id"]].itertuples(index=False):
        assert {(c, p, "victim"), (c, p, "suspect")} <= got


def test_stlouis_victimization_edges_join_suspects_to_victims(stl_run, stl_expanded):
    edges = frame(stl_run, "edges.csv")
    sus = stl_expanded[stl_expanded["role"] == "suspect"][["crime_id", "person_id"]]
    vic = stl_expanded[stl_expanded["role"] == "victim"][["crime_id", "person_id"]]
    m = sus.merge(vic, on="crime_id", suffixes=("_s", "_v"))
    m = m[m["person_id_s"] != m["person_id_v"]]
    m = pd.DataFrame({"a": m[["person_id_s", "person_id_v"]].min(axis=1),
                      "b": m[["person_id_s", "person_id_v"]].max(axis=1),
                      "crime_id": m["crime_id"]}).drop_duplicates()
    exp = m.groupby(["a", "b"])["crime_id"].agg(lambda s: frozenset(s))
    got = edges[edges["layer"] == "victimization"].set_index(["person_a", "person_b"])
    assert len(exp) > 0
    assert sorted(got.index.tolist()) == sorted(exp.index.tolist())
    for (a, b), ids in exp.items():
        g = got.loc[(a, b)]
        assert frozenset(g["incident_ids"].split(";")) == ids
        assert int(g["incidents"]) == int(g["weight"]) == len(ids)
        assert g["first_date"] == g["last_date"] == FIXED_DATE
    # co-offending: suspects (incl. victim+suspect) of the same crime
    co_exp = pair_counts(sus, "crime_id", "person_id")
    co_got = edge_weights(edges, "co_offending")
    assert co_got.index.tolist() == co_exp.index.tolist() and co_got.tolist() == co_exp.tolist()


def test_stlouis_witnesses_take_no_part_in_edges(stl_run, stl_rows, stl_expanded):
    edges = frame(stl_run, "edges.csv")
    roles = stl_expanded.groupby(["crime_id", "person_id"])["role"].agg(set)
    for r in edges.itertuples():
        for c in r.incident_ids.split(";"):
            ra, rb = roles[(c, r.person_a)], roles[(c, r.person_b)]
            assert ra - {"witness"} and rb - {"witness"}, (r.person_a, r.person_b, c)
            if r.layer == "co_offending":
                assert "suspect" in ra and "suspect" in rb
            else:
                assert ("suspect" in ra and "victim" in rb) or ("victim" in ra and "suspect" in rb)
    only_witness = set(stl_rows["person_id"]) - set(stl_rows.loc[stl_rows["role"] != "witness", "person_id"])
    assert len(only_witness) > 0
    in_edges = set(edges["person_a"]) | set(edges["person_b"])
    assert not (only_witness & in_edges)
    scores = frame(stl_run, "scores.csv").set_index("person_id")
    w = scores.loc[sorted(only_witness)]
    assert (w["degree"].astype(int) == 0).all() and (w["offending"].astype(int) == 0).all()
    assert (w["shooting_victimization"].astype(int) == 0).all()


def test_stlouis_victim_suspects_hold_both_roles_in_scores(stl_run, stl_rows):
    scores = frame(stl_run, "scores.csv").set_index("person_id")
    both = stl_rows[stl_rows["role"] == "victim+suspect"]
    for p, n in both.groupby("person_id")["crime_id"].nunique().items():
        rows = stl_rows[stl_rows["person_id"] == p]
        off = rows[rows["role"].isin(["suspect", "victim+suspect"])]["crime_id"].nunique()
        vic = rows[rows["role"].isin(["victim", "victim+suspect"])]["crime_id"].nunique()
        assert int(scores.loc[p, "offending"]) == off >= n
        assert int(scores.loc[p, "shooting_victimization"]) == vic >= n
        assert scores.loc[p, "enforcement_eligible"] == "true"


def test_stlouis_lists_never_put_victim_only_people_on_enforcement_lists(stl_run, stl_rows):
    offenders = set(stl_rows.loc[stl_rows["role"].isin(["suspect", "victim+suspect"]), "person_id"])
    victims = set(stl_rows.loc[stl_rows["role"].isin(["victim", "victim+suspect"]), "person_id"])
    victim_only = victims - offenders
    assert len(victim_only) > 100
    call_in = set(frame(stl_run, "call_in.csv")["person_id"])
    custom = set(frame(stl_run, "custom_notifications.csv")["person_id"])
    services = frame(stl_run, "service_referrals.csv")
    assert call_in and custom
    assert not (victim_only & call_in)
    assert not (victim_only & custom)
    # with min_score 0 and no size limit, the enforcement lists hold exactly the offenders
    assert custom == offenders
    assert call_in <= offenders  # call-ins invite group members chosen for reach, all with an offending role
    # every shooting victim (all crimes are gun incidents on as_of) is referred to services,
    # victim-only people included, and only on the recent-victim basis
    assert victims <= set(services["person_id"])
    basis = services.set_index("person_id")["referral_basis"]
    assert (basis.loc[sorted(victims)] == "recent shooting victim").all()
    # the enforcement score never counts victimization
    scores = frame(stl_run, "scores.csv").set_index("person_id")
    vo = scores.loc[sorted(victim_only)]
    assert (vo["enforcement_eligible"] == "false").all()
    ci = frame(stl_run, "call_in.csv").set_index("person_id")
    assert (ci["score"].astype(float) == scores.loc[ci.index, "enforcement_score"].astype(float)).all()
    enf = scores["enforcement_score"].astype(float)
    victim_pts = scores["points_shooting_victimization"].astype(float) + scores["points_contagion_risk"].astype(float)
    only_service = sum(scores[f"points_{c}"].astype(float) for c in ("shooting_victimization", "contagion_risk"))
    expect = scores["score"].astype(float) - only_service
    assert ((enf - expect).abs() < 1e-6).all()
    assert (victim_pts >= 0).all()
    assert (scores.loc[sorted(victim_only), "points_shooting_victimization"].astype(float) > 0).all()
