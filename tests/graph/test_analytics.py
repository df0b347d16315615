"""The network analytics (fdnet.graph.analytics, centrality, groups, contagion) against oracles.

Every expected value is computed without the code under test:

1. centrality: networkx and igraph on random graphs, on real criminal networks from
   ``../shared/data`` (London gang, Montagna, Caviar; skipped when absent) and on the
   co-offending layer of a small synthetic city; sampled betweenness against exact values
   and its own error bound;
2. exposure variants: a networkx BFS oracle over hypothesis-drawn and seeded random
   incidence tables, through ``build_network`` + ``analyze``;
3. groups: planted membership of synthetic cities (``truth/membership.csv``), by
   normalised mutual information, the members the audit missed, the documented
   confidence rules, and stable ``detected-NNNN`` names across runs;
4. conflicts: a tiny hand-built input folder, positive and negative cases;
5. contagion: parameter recovery on simulated network Hawkes processes, standard-error
   calibration, brute-force hazards and E-step, and ``contagion_events.csv`` in a run;
6. ``scores.csv`` carries every documented per-person quantity.
"""
from __future__ import annotations

import json
import math
import shutil
from itertools import combinations
from pathlib import Path

import igraph as ig
import networkx as nx
import threading

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fdnet import _core
from fdnet.graph import centrality as cen
from fdnet.graph.analytics import PERSON_COLUMNS, analyze
from fdnet.graph.contagion import (CSRGraph, HawkesFit, current_hazard, fit_hawkes, random_network,
                                   simulate)
from fdnet.graph.layers import Layer, build_network
from fdnet.pipeline import compute_run, read_csv_text
from fdnet.records.validate import load_records
from fdnet.policy import Policy, policy_from_dict
from fdnet.synth import generate_city, write_city

from helpers import write_folder

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
OFFENDING = ("offender", "suspect", "arrestee")
EPOCH = np.datetime64("1970-01-01", "D")
DETECTED = r"^detected-\d+$"

# The synthetic runs list nobody, which skips the explanations (the slowest step after the
# analytics) and changes no analytic: groups, centrality, exposure and contagion are the
# default policy's. CHEAP also skips contagion and exact betweenness, which group detection
# does not read.
NO_LISTS = {"lists": {"call_in": {"size": 0}, "custom_notifications": {"size": 0},
                      "service_referrals": {"size": 0, "include_all_shooting_victims": False}}}
CHEAP = {**NO_LISTS, "contagion": {"enabled": False}, "analytics": {"betweenness_exact_work": 1}}


def frame(res, name: str) -> pd.DataFrame:
    return read_csv_text(res.outputs[name])


# ----------------------------------------------------------------------------
# Graph helpers: networkx graph <-> fdnet Layer
# ----------------------------------------------------------------------------

def layer_from_nx(G: nx.Graph, weight: str | None = None) -> tuple[Layer, list]:
    """A Layer over G's nodes (index = position in ``sorted(G)``), as centrality.py's doctest builds one."""
    nodes = sorted(G)
    idx = {v: i for i, v in enumerate(nodes)}
    rows = sorted((min(idx[a], idx[b]), max(idx[a], idx[b]), (d.get(weight, 1) if weight else 1))
                  for a, b, d in G.edges(data=True))
    src = np.array([r[0] for r in rows], np.int32)
    dst = np.array([r[1] for r in rows], np.int32)
    w = np.array([r[2] for r in rows], float)
    L = Layer("co_offending", src, dst, np.ones(len(src), np.int32), None, None, None, None, None)
    L.indptr, L.indices, L.data = _core.edges_to_csr(len(nodes), src, dst, w)
    return L, nodes


def nx_from_layer(layer: Layer, n: int) -> nx.Graph:
    G = nx.Graph()
    G.add_nodes_from(range(n))
    G.add_weighted_edges_from(zip(layer.src.tolist(), layer.dst.tolist(), layer.n_incidents.tolist()))
    return G


def _gnp() -> nx.Graph:
    return nx.gnp_random_graph(300, 0.012, seed=11)          # several components, isolated nodes


def _powerlaw() -> nx.Graph:
    return nx.powerlaw_cluster_graph(400, 3, 0.3, seed=12)    # connected, clustered, hubs


def _with_isolated() -> nx.Graph:
    # a connected core plus 120 isolated people, labels shuffled so isolated nodes are interleaved
    core = nx.powerlaw_cluster_graph(200, 2, 0.2, seed=13)
    G = nx.Graph()
    G.add_nodes_from(range(320))
    G.add_edges_from(core.edges())
    perm = np.random.default_rng(13).permutation(320)
    return nx.relabel_nodes(G, {i: int(perm[i]) for i in range(320)})


def _need(*files: Path) -> None:
    for f in files:
        if not f.is_file():
            pytest.skip(f"shared dataset file {f.parent.name}/{f.name} is absent")


def _london() -> nx.Graph:
    folder = DATA / "london_gang"
    _need(folder / "edges.csv", folder / "nodes.csv")
    nodes = pd.read_csv(folder / "nodes.csv")
    edges = pd.read_csv(folder / "edges.csv")
    G = nx.Graph()
    G.add_nodes_from(nodes["id"].tolist())
    # unweighted structure; the strength (1..4) is kept as the tie weight for weighted_degree
    G.add_weighted_edges_from(zip(edges["source"], edges["target"], edges["weight"]))
    return G


def _montagna() -> nx.Graph:
    path = DATA / "montagna" / "meetings.csv"
    _need(path)
    e = pd.read_csv(path, sep=r"\s+", header=None, names=["a", "b", "w"])
    G = nx.Graph()
    for a, b, w in e.itertuples(index=False):
        if a != b:
            G.add_edge(int(a), int(b), weight=G.get_edge_data(a, b, {"weight": 0})["weight"] + float(w))
    return G


def _caviar() -> nx.Graph:
    path = DATA / "caviar" / "phases_long.csv"
    _need(path)
    e = pd.read_csv(path)
    G = nx.Graph()
    for a, b, w in zip(e["source"], e["target"], e["weight"]):
        if a != b:   # directed wiretap ties over all phases, as an undirected weighted graph
            G.add_edge(int(a), int(b), weight=G.get_edge_data(a, b, {"weight": 0})["weight"] + float(w))
    return G


def _synthetic_co_offending() -> nx.Graph:
    """The co-offending layer build_network makes from a small synthetic city (weights = incidents)."""
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        write_city(generate_city(1000, seed=5), d)
        rec = load_records(d)
    net = build_network(rec.incidents, rec.involvements, as_of_day=rec.as_of_day, window_days=1095,
                        half_life_days=365)
    G = nx_from_layer(net.layers["co_offending"], net.n_persons)
    G.graph["layer"] = net.layers["co_offending"]      # test the layer itself, not a rebuilt one
    return G


def graph_and_layer(name: str) -> tuple[nx.Graph, Layer, list]:
    G = GRAPHS[name]()
    if "layer" in G.graph:
        return G, G.graph["layer"], sorted(G)
    L, nodes = layer_from_nx(G, weight="weight")
    return G, L, nodes


GRAPHS = {"gnp": _gnp, "powerlaw_cluster": _powerlaw, "with_isolated": _with_isolated,
          "london_gang": _london, "montagna": _montagna, "caviar": _caviar,
          "synthetic_co_offending": _synthetic_co_offending}


# ----------------------------------------------------------------------------
# 1. Centrality
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(GRAPHS))
def test_centrality_matches_networkx_and_igraph(name):
    G, L, nodes = graph_and_layer(name)
    n = len(nodes)
    assert L.n_edges == G.number_of_edges() > 0

    def as_array(d: dict) -> np.ndarray:
        return np.array([d[v] for v in nodes], dtype=float)

    pos = {v: i for i, v in enumerate(nodes)}
    g = ig.Graph(n=n, edges=[(pos[a], pos[b]) for a, b in G.edges()], directed=False)

    np.testing.assert_allclose(cen.degree_centrality(L), as_array(nx.degree_centrality(G)), rtol=0, atol=1e-12)

    # exact betweenness: networkx (normalised) and igraph (once per pair, rescaled here)
    bw = cen.betweenness(L)
    assert bw.exact and bw.eps == 0.0
    np.testing.assert_allclose(bw.values, as_array(nx.betweenness_centrality(G)), rtol=0, atol=1e-9)
    ig_bw = np.asarray(g.betweenness(directed=False), float) * 2.0 / ((n - 1) * (n - 2))
    np.testing.assert_allclose(bw.values, ig_bw, rtol=0, atol=1e-9)

    # k-core numbers
    core = cen.core_number(L)
    assert core.tolist() == as_array(nx.core_number(G)).astype(int).tolist()
    assert core.tolist() == g.coreness()

    # eigenvector: networkx's power iteration is defined on connected graphs; on a
    # disconnected graph compare on the largest component, and the whole-graph vector
    # against the dense dominant eigenvector when the top eigenvalue is simple
    comps = sorted(nx.connected_components(G), key=len, reverse=True)
    H = G if len(comps) == 1 else G.subgraph(comps[0]).copy()
    LH, hnodes = layer_from_nx(H)
    ev_nx = nx.eigenvector_centrality(H, max_iter=10_000, tol=1e-13)
    np.testing.assert_allclose(cen.eigenvector(LH), [ev_nx[v] for v in hnodes], rtol=0, atol=1e-8)
    assert np.linalg.norm(cen.eigenvector(LH)) == pytest.approx(1.0, abs=1e-12)
    ev = cen.eigenvector(L)
    assert (ev >= 0).all() and np.linalg.norm(ev) == pytest.approx(1.0, abs=1e-12)
    if len(comps) > 1 and n <= 400:          # (a dense solve stays cheap)
        vals, vecs = np.linalg.eigh(nx.to_numpy_array(G, nodelist=nodes, weight=None))
        if vals[-1] - vals[-2] > 1e-6:
            np.testing.assert_allclose(ev, np.abs(vecs[:, -1]), rtol=0, atol=1e-8)
    isolated = np.array([G.degree(v) == 0 for v in nodes])
    assert (ev[isolated] == 0).all() and (bw.values[isolated] == 0).all() and (core[isolated] == 0).all()


@pytest.mark.parametrize("name", list(GRAPHS))
def test_weighted_degree_matches_networkx(name):
    G, L, nodes = graph_and_layer(name)
    np.testing.assert_allclose(cen.weighted_degree(L), [d for _, d in sorted(G.degree(weight="weight"))],
                               rtol=1e-12)


def test_weighted_degree_last_active_node_before_isolated_ones():
    # triangle 0-1-2 with tie weights 1, 2, 3 and an isolated node 3
    G = nx.Graph()
    G.add_nodes_from(range(4))
    G.add_weighted_edges_from([(0, 1, 1.0), (0, 2, 2.0), (1, 2, 3.0)])
    L, _ = layer_from_nx(G, weight="weight")
    assert cen.weighted_degree(L).tolist() == [3.0, 4.0, 5.0, 0.0]


def _sampled_case(extra_isolated: int):
    G = nx.powerlaw_cluster_graph(3000, 2, 0.1, seed=21)
    G.add_nodes_from(range(3000, 3000 + extra_isolated))
    L, _ = layer_from_nx(G)
    exact = cen.betweenness(L)
    assert exact.exact
    sampled = cen.betweenness(L, exact_work=0, k=512, seed=5, alpha=0.05)
    return exact, sampled


def test_sampled_betweenness_within_its_error_bound():
    exact, sampled = _sampled_case(0)
    assert not sampled.exact and sampled.sampled_components >= 1 and sampled.alpha == 0.05
    assert 0 < sampled.eps < 0.2
    err = np.abs(sampled.values - exact.values)
    assert (err <= sampled.eps).all(), err.max()
    # the estimator is unbiased: the total is within a few % of the exact total
    assert sampled.values.sum() == pytest.approx(exact.values.sum(), rel=0.03)


def test_betweenness_bytes_depend_on_its_parts_not_its_threads():
    # the run computes betweenness on one thread in the background: the same bytes as on two
    G = nx.powerlaw_cluster_graph(3000, 2, 0.1, seed=21)
    L, _ = layer_from_nx(G)
    for kw in ({}, {"exact_work": 0, "k": 512, "seed": 5}):
        two = cen.betweenness(L, n_threads=2, **kw).values
        one = cen.betweenness(L, n_threads=1, **kw).values
        assert two.tobytes() == one.tobytes()
        # the run's way: eight parts, taken by a background thread and this one in turn
        job = cen.BetweennessJob(L, n_parts=8, **kw)
        t = threading.Thread(target=job.work)
        t.start()
        job.work()
        t.join()
        assert job.result().values.tobytes() == cen.betweenness(L, n_threads=1, n_parts=8, **kw).values.tobytes()
        # more parts sum in another order: equal to rounding, not necessarily to the bit
        np.testing.assert_allclose(cen.betweenness(L, n_threads=1, n_parts=4, **kw).values, two, rtol=1e-12, atol=1e-15)


def test_sampled_betweenness_unbiased_with_isolated_nodes():
    exact, sampled = _sampled_case(3000)
    assert sampled.values.sum() == pytest.approx(exact.values.sum(), rel=0.03)


# ----------------------------------------------------------------------------
# 2. Exposure variants against a networkx BFS oracle
# ----------------------------------------------------------------------------

AS_OF = 19_000
WINDOW = 400


def exposure_oracle(incidents: pd.DataFrame, involvements: pd.DataFrame, *, as_of: int, window: int,
                    max_depth: int, half_life: float) -> pd.DataFrame:
    """victim_distance, exposure_*, exposure_decayed_*, shooter_exposure_* per person, by networkx."""
    inw = incidents[(incidents["day"] >= as_of - window) & (incidents["day"] <= as_of)]
    rows = involvements.merge(inw[["incident_id", "day", "gun"]], on="incident_id")
    persons = sorted(set(rows["person_id"]))
    off = rows[rows["role"].isin(OFFENDING)]
    G = nx.Graph()
    G.add_nodes_from(persons)
    for _, grp in off.groupby("incident_id"):
        G.add_edges_from(combinations(sorted(set(grp["person_id"])), 2))
    vic = rows[rows["role"] == "victim"]
    shootings = set(vic["incident_id"]) & set(inw.loc[inw["gun"], "incident_id"])
    sv = vic[vic["incident_id"].isin(shootings)]
    last_shot = sv.groupby("person_id")["day"].max().to_dict()
    shooters = set(off.loc[off["incident_id"].isin(shootings), "person_id"])
    cols = {c: dict.fromkeys(persons, 0.0) for c in
            ("exposure_1", "exposure_2", "exposure_decayed_1", "exposure_decayed_2",
             "shooter_exposure_1", "shooter_exposure_2")}
    nearest = dict.fromkeys(persons, -1)
    for v, day in last_shot.items():
        w = 0.5 ** ((as_of - day) / half_life)
        for p, d in nx.single_source_shortest_path_length(G, v, cutoff=max(max_depth, 2)).items():
            if d in (1, 2):
                cols[f"exposure_{d}"][p] += 1
                cols[f"exposure_decayed_{d}"][p] += w
            if d <= max_depth and (nearest[p] == -1 or d < nearest[p]):
                nearest[p] = d
    for s in shooters:
        for p, d in nx.single_source_shortest_path_length(G, s, cutoff=2).items():
            if d in (1, 2):
                cols[f"shooter_exposure_{d}"][p] += 1
    out = pd.DataFrame(cols, index=pd.Index(persons, name="person_id"))
    out["victim_distance"] = pd.Series(nearest)
    return out


def check_exposure(incidents, involvements, max_depth: int, half_life: float) -> None:
    net = build_network(incidents, involvements, as_of_day=AS_OF, window_days=WINDOW, half_life_days=365)
    pol = policy_from_dict({"contagion": {"enabled": False},
                            "analytics": {"exposure_max_distance": max_depth,
                                          "exposure_half_life_days": half_life}})
    an = analyze(net, persons=None, audit=None, relations=None, policy=pol)
    exp = exposure_oracle(incidents, involvements, as_of=AS_OF, window=WINDOW, max_depth=max_depth,
                          half_life=half_life)
    got = an.person.set_index("person_id")
    assert got.index.tolist() == exp.index.tolist()
    for c in ("victim_distance", "exposure_1", "exposure_2", "shooter_exposure_1", "shooter_exposure_2"):
        assert got[c].astype(int).tolist() == exp[c].astype(int).tolist(), c
    for c in ("exposure_decayed_1", "exposure_decayed_2"):
        np.testing.assert_allclose(got[c].to_numpy(float), exp[c].to_numpy(float), rtol=0, atol=1e-6,
                                   err_msg=c)


PEOPLE = [f"P{i:02d}" for i in range(14)]
# offending roles drawn more often, so the co-offending graph has paths of length 2 and more
ROLE_DRAW = OFFENDING * 3 + ("victim", "victim", "witness", "other")


@st.composite
def incidence_tables(draw):
    n_inc = draw(st.integers(1, 30))
    inc_rows, inv_rows = [], []
    for k in range(n_inc):
        iid = f"I{k:03d}"
        day = AS_OF + draw(st.integers(-WINDOW - 30, 10))     # some before the window, some after as_of
        gun = draw(st.booleans())
        inc_rows.append((iid, day, gun, gun or draw(st.booleans())))
        for pid, role in draw(st.lists(st.tuples(st.sampled_from(PEOPLE), st.sampled_from(ROLE_DRAW)),
                                       min_size=1, max_size=5)):
            inv_rows.append((iid, pid, role))
    incidents = pd.DataFrame(inc_rows, columns=["incident_id", "day", "gun", "violent"])
    involvements = pd.DataFrame(inv_rows, columns=["incident_id", "person_id", "role"])
    return incidents, involvements


@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(tables=incidence_tables(), max_depth=st.integers(1, 4),
       half_life=st.sampled_from([30.0, 180.0, 1000.0]))
def test_exposure_variants_match_bfs_oracle(tables, max_depth, half_life):
    incidents, involvements = tables
    check_exposure(incidents, involvements, max_depth, half_life)


@pytest.mark.parametrize("max_depth", [3, 6])
def test_exposure_variants_match_bfs_oracle_larger(max_depth):
    rng = np.random.default_rng(max_depth)
    n_people, n_inc = 1200, 2000
    day = AS_OF - rng.integers(-20, WINDOW + 60, n_inc)
    gun = rng.random(n_inc) < 0.08
    incidents = pd.DataFrame({"incident_id": [f"I{k:05d}" for k in range(n_inc)], "day": day,
                              "gun": gun, "violent": gun | (rng.random(n_inc) < 0.2)})
    size = rng.integers(1, 5, n_inc)
    inc_of = np.repeat(np.arange(n_inc), size)
    role = rng.choice(np.array(ROLE_DRAW), len(inc_of))
    involvements = pd.DataFrame({"incident_id": incidents["incident_id"].to_numpy()[inc_of],
                                 "person_id": [f"Q{p:04d}" for p in rng.integers(0, n_people, len(inc_of))],
                                 "role": role})
    check_exposure(incidents, involvements, max_depth, 180.0)


# ----------------------------------------------------------------------------
# 3. Groups against planted membership; stable names
# ----------------------------------------------------------------------------

def nmi_numpy(a, b) -> float:
    """Normalised mutual information, arithmetic normalisation (scikit-learn's default)."""
    _, a = np.unique(np.asarray(a, dtype=object).astype(str), return_inverse=True)
    _, b = np.unique(np.asarray(b, dtype=object).astype(str), return_inverse=True)
    c = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(c, (a, b), 1)
    p = c / c.sum()
    pa, pb = p.sum(1), p.sum(0)
    nz = p > 0
    mi = float((p[nz] * np.log(p[nz] / np.outer(pa, pb)[nz])).sum())
    ha = -float((pa[pa > 0] * np.log(pa[pa > 0])).sum())
    hb = -float((pb[pb > 0] * np.log(pb[pb > 0])).sum())
    return 1.0 if ha == hb == 0 else mi / ((ha + hb) / 2)


def nmi(a, b) -> float:
    """scikit-learn's normalized_mutual_info_score, or the same formula when it is not installed
    (scikit-learn is not among the declared test dependencies)."""
    try:
        from sklearn.metrics import normalized_mutual_info_score
    except ImportError:   # pragma: no cover
        return nmi_numpy(a, b)
    return float(normalized_mutual_info_score(list(a), list(b)))


def test_nmi_fallback_matches_sklearn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    a = rng.integers(0, 12, 3000).astype(str)
    b = np.where(rng.random(3000) < 0.7, a, rng.integers(0, 15, 3000).astype(str))
    assert nmi_numpy(a, b) == pytest.approx(metrics.normalized_mutual_info_score(a, b), abs=1e-12)
    assert nmi_numpy(a, a) == pytest.approx(1.0)


_CITIES: dict = {}


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    return tmp_path_factory.mktemp("cities")


def city_run(root: Path, seed: int):
    """A 20,000-person synthetic city written to ``root/city<seed>`` and run with the default
    analytics (seed 1: every analytic; seed 2, read by the groups tests only: CHEAP)."""
    if seed not in _CITIES:
        d = root / f"city{seed}"
        write_city(generate_city(20_000, seed=seed), d)
        _CITIES[seed] = (d, compute_run(d, policy=NO_LISTS if seed == 1 else CHEAP))
    return _CITIES[seed]


@pytest.fixture(scope="module", params=[1, 2], ids=["seed1", "seed2"])
def city(request, synth_root):
    return city_run(synth_root, request.param)


def test_groups_recover_planted_membership(city):
    d, res = city
    truth = pd.read_csv(d / "truth" / "membership.csv", dtype=str, keep_default_na=False)
    audit = pd.read_csv(d / "groups.csv", dtype=str, keep_default_na=False)
    scores = frame(res, "scores.csv")
    members = truth[truth["group"] != ""].merge(scores[["person_id", "group", "degree"]], on="person_id",
                                                suffixes=("_true", "_run"))
    assert len(members) > 1000
    # people the run leaves without a group form one cluster ("") of their own
    score = nmi(members["group_true"], members["group_run"])
    assert score >= 0.85, score
    missed = members[~members["person_id"].isin(audit["person_id"])]
    assert len(missed) > 300
    share = (missed["group_run"] != "").mean()
    assert share >= 0.5, share


def test_groups_csv_sources_and_confidence(city):
    _, res = city
    g = frame(res, "groups.csv")
    assert list(g.columns) == ["person_id", "group", "source", "network_support", "confidence"]
    assert set(g["source"]) == {"audit", "detected", "both"}
    assert not g.duplicated(["person_id", "group"]).any()
    conf = g["confidence"].astype(float)
    sup = pd.to_numeric(g["network_support"].replace("", np.nan))
    assert conf.between(0, 1).all() and sup.dropna().between(0, 1).all()
    both, aud, det = (g["source"] == s for s in ("both", "audit", "detected"))
    assert (conf[both] == 1.0).all()
    # documented: audit-only = prior + (1 - prior) * support (blank support counts 0); detected = support
    # (both columns are rounded to 4 decimals from the same unrounded support)
    np.testing.assert_allclose(conf[aud], 0.5 + 0.5 * sup[aud].fillna(0), rtol=0, atol=1.0001e-4)
    np.testing.assert_allclose(conf[det], sup[det].fillna(0), rtol=0, atol=1e-9)
    assert g.loc[det, "group"].str.match(DETECTED).any()
    # scores.csv's group is one of the person's groups.csv rows (and empty exactly without rows)
    scores = frame(res, "scores.csv")
    rows = g.groupby("person_id")["group"].apply(set)
    grouped = scores[scores["group"] != ""]
    assert all(grp in rows[pid] for pid, grp in zip(grouped["person_id"], grouped["group"]))
    with_rows = scores["person_id"].isin(rows.index)
    assert (scores.loc[~with_rows, "group"] == "").all() and (scores.loc[with_rows, "group"] != "").all()


def _detected_sets(g: pd.DataFrame) -> dict:
    g = g[g["group"].str.match(DETECTED)]
    return {k: frozenset(v) for k, v in g.groupby("group")["person_id"]}


def _check_stable_names(first: pd.DataFrame, second: pd.DataFrame) -> int:
    """Every detected group of ``first`` whose members are unchanged keeps its name in ``second``;
    names new in ``second`` are numbered above ``first``'s maximum. Returns how many were unchanged."""
    before = _detected_sets(first)
    by_members = {s: name for name, s in before.items()}
    after = {k: frozenset(v) for k, v in second.groupby("group")["person_id"]}
    unchanged = [(by_members[s], name) for name, s in after.items() if s in by_members]
    assert [(a, b) for a, b in unchanged if a != b] == []
    top = max(int(k[9:]) for k in before)
    new = [k for k in _detected_sets(second) if k not in before]
    assert [k for k in new if int(k[9:]) <= top] == []
    return len(unchanged)


@pytest.fixture(scope="module")
def naming_city(synth_root):
    """A 6,000-person city and a first run (default group detection) whose groups.csv is --previous."""
    d = synth_root / "naming"
    write_city(generate_city(6000, seed=3), d)
    return d, frame(compute_run(d, policy=CHEAP), "groups.csv")


def test_stable_group_names_other_leiden_seed(naming_city):
    d, prev = naming_city
    second = compute_run(d, policy={**CHEAP, "groups": {"seed": 7}}, previous_groups=prev)
    second_groups = frame(second, "groups.csv")
    n_same = _check_stable_names(prev, second_groups)
    assert n_same >= 20                          # the check above is not vacuous
    assert second.summary["groups_named_from_previous_run"] >= n_same
    assert _detected_sets(second_groups) != _detected_sets(prev)   # the seed did change communities


def test_stable_group_names_modified_data(naming_city, tmp_path):
    d, prev = naming_city
    d2 = tmp_path / "modified"
    shutil.copytree(d, d2)
    inc = pd.read_csv(d / "incidents.csv", dtype=str, keep_default_na=False)
    inv = pd.read_csv(d / "involvements.csv", dtype=str, keep_default_na=False)
    keep = np.random.default_rng(0).random(len(inc)) >= 0.01       # drop 1% of incidents
    inc[keep].to_csv(d2 / "incidents.csv", index=False)
    inv[inv["incident_id"].isin(inc.loc[keep, "incident_id"])].to_csv(d2 / "involvements.csv", index=False)
    second = compute_run(d2, policy=CHEAP, previous_groups=prev)
    second_groups = frame(second, "groups.csv")
    n_same = _check_stable_names(prev, second_groups)
    assert n_same >= 20
    assert _detected_sets(second_groups) != _detected_sets(prev)   # the data change did change groups


# ----------------------------------------------------------------------------
# 4. Conflicts
# ----------------------------------------------------------------------------

GROUP_AUDIT = """person_id,group,source,date
A1,Alpha,gang_unit,2023-06-01
A2,Alpha,gang_unit,2023-06-01
A3,Alpha,gang_unit,2023-06-01
B1,Bravo,gang_unit,2023-06-01
B2,Bravo,gang_unit,2023-06-01
B3,Bravo,gang_unit,2023-06-01
D1,Delta,gang_unit,2023-06-01
D2,Delta,gang_unit,2023-06-01
D3,Delta,gang_unit,2023-06-01
"""
GROUP_RELATIONS = """group_a,group_b,relation,date
Delta,Alpha,alliance,2024-02-01
"""
# (incident, date, gun, violent, [(person, role)]); the three crews co-offend among themselves
BASE_INCIDENTS = [
    ("C1", "2024-01-10", "false", "false", [("A1", "offender"), ("A2", "offender"), ("A3", "offender")]),
    ("C2", "2024-01-12", "false", "false", [("B1", "offender"), ("B2", "offender"), ("B3", "offender")]),
    ("C3", "2024-01-14", "false", "false", [("D1", "offender"), ("D2", "offender"), ("D3", "offender")]),
    # violence between Alpha and Bravo that is not a shooting
    ("V1", "2024-03-05", "false", "true", [("A2", "offender"), ("B2", "victim")]),
    # violence between Delta and Alpha, not a shooting: never a conflict (conflict_min_violent 0)
    ("N1", "2024-04-01", "false", "true", [("D1", "offender"), ("A3", "victim")]),
    # a shooting inside Delta
    ("S2", "2024-04-10", "true", "true", [("D2", "suspect"), ("D3", "victim")]),
    # a shooting of an ungrouped person by a Bravo member
    ("S3", "2024-04-12", "true", "true", [("B3", "arrestee"), ("X1", "victim")]),
    # a Delta member witnesses the shooting of an Alpha member: no offending role
    ("S4", "2024-04-15", "true", "true", [("D1", "witness"), ("A1", "victim")]),
    ("Z9", "2024-06-30", "false", "false", [("X2", "offender")]),
]
SHOOTING_ALPHA_BRAVO = ("S1", "2024-03-01", "true", "true", [("A1", "offender"), ("B1", "victim")])


def conflict_folder(root: Path, incidents: list) -> Path:
    inc = "incident_id,date,gun,violent\n" + "".join(f"{i},{d},{g},{v}\n" for i, d, g, v, _ in incidents)
    inv = "incident_id,person_id,role\n" + "".join(f"{i},{p},{r}\n" for i, _, _, _, pr in incidents
                                                  for p, r in pr)
    return write_folder(root, incidents=inc, involvements=inv, persons=None, groups=GROUP_AUDIT,
                        relations=GROUP_RELATIONS)


def test_conflict_inferred_from_a_shooting_between_groups(tmp_path):
    res = compute_run(conflict_folder(tmp_path / "pos", BASE_INCIDENTS + [SHOOTING_ALPHA_BRAVO]))
    c = frame(res, "conflicts.csv")
    assert c.to_dict("records") == [
        {"group_a": "Alpha", "group_b": "Bravo", "relation": "conflict", "source": "inferred",
         "shootings": "1", "incidents": "2", "incident_ids": "S1;V1",
         "first_date": "2024-03-01", "last_date": "2024-03-05"},
        {"group_a": "Alpha", "group_b": "Delta", "relation": "alliance", "source": "group_relations",
         "shootings": "0", "incidents": "0", "incident_ids": "",
         "first_date": "2024-02-01", "last_date": "2024-02-01"},
    ]
    gt = frame(res, "group_table.csv").set_index("group")
    assert gt.loc["Alpha", "conflicts"] == "Bravo" and gt.loc["Bravo", "conflicts"] == "Alpha"
    assert gt.loc["Delta", "conflicts"] == "" and gt.loc["Alpha", "alliances"] == "Delta"
    assert res.summary["conflicts"] == 1


def test_no_conflict_without_a_shooting_between_groups(tmp_path):
    res = compute_run(conflict_folder(tmp_path / "neg", BASE_INCIDENTS))
    c = frame(res, "conflicts.csv")
    assert (c["source"] == "group_relations").all() and len(c) == 1
    assert res.summary["conflicts"] == 0
    assert (frame(res, "group_table.csv")["conflicts"] == "").all()


def test_conflict_inferred_from_a_shooting_not_flagged_violent(tmp_path):
    shooting = ("W1", "2024-03-01", "true", "false", [("A1", "offender"), ("B1", "victim")])
    res = compute_run(conflict_folder(tmp_path / "w", BASE_INCIDENTS + [shooting]))
    c = frame(res, "conflicts.csv")
    inferred = c[c["source"] == "inferred"]
    assert inferred[["group_a", "group_b", "shootings"]].values.tolist() == [["Alpha", "Bravo", "1"]]
    assert "W1" in inferred["incident_ids"].iloc[0].split(";")


# ----------------------------------------------------------------------------
# 5. Contagion
# ----------------------------------------------------------------------------

ALPHA, MEAN_DELAY, T_SIM = 0.12, 125.0, 3650.0
THETA = np.array([math.log(3e-5), 0.8, -0.4])


def simulate_case(seed: int, n: int):
    net = random_network(n, 4.0, seed=seed)
    rng = np.random.default_rng(1000 + seed)
    X = np.column_stack([np.ones(n), rng.random(n) < 0.4, rng.normal(size=n)]).astype(float)
    ev = simulate(net, X, theta=THETA, alpha=ALPHA, beta=1 / MEAN_DELAY, T=T_SIM, seed=2000 + seed)
    return net, X, ev


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_hawkes_recovers_parameters(seed):
    net, X, ev = simulate_case(seed, 30_000)
    triggered = int((ev.parent >= 0).sum())
    assert 4000 < triggered < len(ev.person) < 20_000
    fit = fit_hawkes(net, ev.person, ev.time, X, T_SIM, names=["intercept", "x1", "x2"])
    assert fit.converged and fit.n_events == len(ev.person)
    true_share = triggered / len(ev.person)
    assert abs(fit.alpha / ALPHA - 1) < 0.10
    assert abs(fit.mean_delay / MEAN_DELAY - 1) < 0.10
    assert abs(fit.contagion_share / true_share - 1) < 0.10
    # standard errors: the truth lies within 4 of them ...
    assert abs(fit.alpha - ALPHA) < 4 * fit.se["alpha"]
    assert abs(fit.mean_delay - MEAN_DELAY) < 4 * fit.se["mean_delay"]
    for k, name in enumerate(["intercept", "x1", "x2"]):
        assert abs(fit.theta[k] - THETA[k]) < 4 * fit.se[f"theta_{name}"], name
    # ... and they are neither smaller than the complete-data standard error (knowing every
    # parent: alpha / sqrt(triggered), mean delay / sqrt(triggered)) nor far above it
    for key, value in (("alpha", ALPHA), ("mean_delay", MEAN_DELAY)):
        complete = value / math.sqrt(triggered)
        assert 0.8 * complete < fit.se[key] < 3 * complete, key


def test_hawkes_standard_errors_calibrated():
    """Across replications, the spread of the estimates matches the reported standard errors."""
    est, se = [], []
    for rep in range(24):
        net, X, ev = simulate_case(100 + rep, 8000)
        fit = fit_hawkes(net, ev.person, ev.time, X, T_SIM, names=["intercept", "x1", "x2"])
        est.append([fit.alpha, fit.mean_delay, *fit.theta])
        se.append([fit.se["alpha"], fit.se["mean_delay"], fit.se["theta_intercept"], fit.se["theta_x1"],
                   fit.se["theta_x2"]])
    est, se = np.array(est), np.array(se)
    truth = np.array([ALPHA, MEAN_DELAY, *THETA])
    ratio = est.std(axis=0, ddof=1) / se.mean(axis=0)
    assert ((ratio > 0.5) & (ratio < 2.0)).all(), ratio
    z = (est - truth) / se
    assert (np.abs(z) < 4).all() and np.abs(z.mean(axis=0)).max() < 1.0, z


def brute_force_network_hazard(net: CSRGraph, person, time, alpha, beta, at, max_lag=np.inf):
    """Per person i: sum over neighbours j, over j's shootings s with 0 <= at - s <= max_lag,
    of alpha w_ij beta exp(-beta (at - s))."""
    pulled = {}
    for p, t in zip(np.asarray(person).tolist(), np.asarray(time, float).tolist()):
        if 0 <= at - t <= max_lag:
            pulled[p] = pulled.get(p, 0.0) + alpha * beta * math.exp(-beta * (at - t))
    out = np.zeros(net.n)
    for i in range(net.n):
        for k in range(net.indptr[i], net.indptr[i + 1]):
            out[i] += net.weight[k] * pulled.get(int(net.indices[k]), 0.0)
    return out


def weighted_random_network(n: int, seed: int) -> CSRGraph:
    base = random_network(n, 3.0, seed=seed)
    rows = np.repeat(np.arange(n), np.diff(base.indptr))
    up = rows < base.indices
    src, dst = rows[up].astype(np.int32), base.indices[up].astype(np.int32)
    w = np.random.default_rng(seed).integers(1, 4, len(src)).astype(float)
    return CSRGraph(*_core.edges_to_csr(n, src, dst, w))


def test_current_hazard_equals_brute_force():
    n = 150
    net = weighted_random_network(n, 3)
    rng = np.random.default_rng(3)
    person = rng.integers(0, n, 120)
    time = rng.uniform(0, 1000, 120)
    X = np.column_stack([np.ones(n), rng.random(n) < 0.5])
    fit = HawkesFit(np.array([-7.0, 0.5]), 0.2, 1 / 90, {}, 0.0, 120, 0, True, 0.0)
    at = 800.0                      # events after `at` must not count
    bg, nw = current_hazard(net, person, time, X, fit, at=at)
    np.testing.assert_allclose(bg, np.exp(-7.0 + 0.5 * X[:, 1]), rtol=1e-12)
    np.testing.assert_allclose(nw, brute_force_network_hazard(net, person, time, 0.2, 1 / 90, at),
                               rtol=1e-10, atol=1e-15)
    assert (nw > 0).any() and (nw == 0).any()


def test_hawkes_estep_equals_brute_force():
    n = 80
    net = weighted_random_network(n, 4)
    rng = np.random.default_rng(4)
    person = np.sort(rng.integers(0, n, 90))
    time = rng.uniform(0, 500, 90).round(0)            # whole days: ties at lag 0 happen
    order = np.lexsort((time, person))
    person, time = person[order], time[order]
    ev_ptr = np.searchsorted(person, np.arange(n + 1)).astype(np.int64)
    mu = rng.uniform(1e-4, 1e-3, len(person))
    alpha, beta, max_lag = 0.3, 1 / 40, 150.0
    lam, p0, par, ppar, s1, s2 = _core.hawkes_estep(net.indptr, net.indices, net.weight, ev_ptr,
                                                     np.ascontiguousarray(time), mu, alpha, beta, max_lag)
    nbr_w = {(i, int(net.indices[k])): net.weight[k] for i in range(n)
             for k in range(net.indptr[i], net.indptr[i + 1])}
    S1 = S2 = 0.0
    for e in range(len(person)):
        trig = {f: alpha * nbr_w[(person[e], person[f])] * beta * math.exp(-beta * (time[e] - time[f]))
                for f in range(len(person)) if (person[e], person[f]) in nbr_w
                and 0 < time[e] - time[f] <= max_lag}
        total = mu[e] + sum(trig.values())
        assert lam[e] == pytest.approx(total, rel=1e-12)
        assert p0[e] == pytest.approx(mu[e] / total, rel=1e-12)
        if trig:
            best = max(trig.values())
            assert trig[int(par[e])] == pytest.approx(best, rel=1e-12)
            assert ppar[e] == pytest.approx(best / total, rel=1e-12)
        else:
            assert par[e] == -1 and ppar[e] == 0
        S1 += sum(trig.values()) / total
        S2 += sum(a * (time[e] - time[f]) for f, a in trig.items()) / total
    assert s1 == pytest.approx(S1, rel=1e-10) and s2 == pytest.approx(S2, rel=1e-10)
    assert (par >= 0).sum() > 10


def test_fit_on_zero_events():
    net = random_network(200, 3.0, seed=1)
    X = np.column_stack([np.ones(200), np.arange(200) % 2])
    fit = fit_hawkes(net, np.zeros(0, np.int64), np.zeros(0), X, 365.0)
    assert fit.n_events == 0 and fit.alpha == 0.0 and fit.contagion_share == 0.0
    assert len(fit.p_background) == len(fit.parent) == len(fit.parent_prob) == 0
    s = fit.summary()
    json.dumps(s, allow_nan=False)          # the manifest can hold it
    assert s["events"] == 0 and "alpha" not in s and "mean_delay_days" not in s   # no placeholder estimates


def test_run_without_shootings(tmp_path):
    inc = ("incident_id,date,gun,violent\nI1,2024-01-05,false,true\nI2,2024-02-05,false,false\n"
           "I3,2024-03-05,false,true\n")
    inv = ("incident_id,person_id,role\nI1,P1,offender\nI1,P2,offender\nI1,V1,victim\nI2,P2,offender\n"
           "I2,P3,offender\nI3,P3,suspect\nI3,V2,victim\n")
    res = compute_run(write_folder(tmp_path / "quiet", incidents=inc, involvements=inv))
    con = res.manifest["analytics"]["contagion"]
    assert con["events"] == 0 and "alpha" not in con and "nothing to fit" in con["note"]
    assert len(frame(res, "contagion_events.csv")) == 0
    s = frame(res, "scores.csv")
    for c in ("contagion_background", "contagion_network", "contagion_hazard", "exposure_1", "exposure_2",
              "victim_distance"):
        assert set(s[c].astype(float)) <= {0.0, -1.0}, c
    assert (s["victim_distance"] == "-1").all()


def simulated_records(seed: int, n: int = 4000):
    """Records whose co-offending layer is a random network and whose shootings follow the model:
    one co-offending incident per tie on the window's first day, one shooting per simulated event."""
    net = random_network(n, 3.0, seed=seed)
    ev = simulate(net, np.ones((n, 1)), theta=np.array([math.log(6e-5)]), alpha=0.15, beta=1 / 60,
                  T=1000.0, seed=seed)
    rows = np.repeat(np.arange(n), np.diff(net.indptr))
    up = rows < net.indices
    src, dst = rows[up], net.indices[up]
    start = AS_OF - 999
    pid = np.array([f"P{i:05d}" for i in range(n)], dtype=object)
    m, k = len(src), len(ev.time)
    co_ids = np.array([f"C{j:06d}" for j in range(m)], dtype=object)
    sh_ids = np.array([f"S{j:06d}" for j in range(k)], dtype=object)
    incidents = pd.DataFrame({
        "incident_id": np.concatenate([co_ids, sh_ids]),
        "day": np.concatenate([np.full(m, start), start + np.floor(ev.time).astype(int)]),
        "gun": np.r_[np.zeros(m, bool), np.ones(k, bool)],
        "violent": np.r_[np.zeros(m, bool), np.ones(k, bool)]})
    involvements = pd.DataFrame({
        "incident_id": np.concatenate([np.repeat(co_ids, 2), sh_ids]),
        "person_id": np.concatenate([np.column_stack([pid[src], pid[dst]]).ravel(), pid[ev.person]]),
        "role": ["offender"] * (2 * m) + ["victim"] * k})
    return incidents, involvements


def _analyze_hazard_case(max_lag: int):
    incidents, involvements = simulated_records(7, n=2500)
    net = build_network(incidents, involvements, as_of_day=AS_OF, window_days=999, half_life_days=365)
    pol = policy_from_dict({"contagion": {"max_lag_days": max_lag, "standard_errors": False}})
    an = analyze(net, persons=None, audit=None, relations=None, policy=pol)
    fit = an.contagion
    assert fit is not None and fit.n_events > 100 and fit.alpha > 0.05
    co = net.layers["co_offending"]
    g = CSRGraph(co.indptr, co.indices, np.ones(len(co.indices)))
    shot = involvements[involvements["role"] == "victim"].merge(incidents[incidents["gun"]], on="incident_id")
    day = shot["day"].to_numpy()
    who = np.array([net.person_index(p) for p in shot["person_id"]])
    T = AS_OF - net.window_start_day + 1
    expect = brute_force_network_hazard(g, who, day - net.window_start_day, fit.alpha, fit.beta, T, max_lag)
    got = an.person["contagion_network"].to_numpy() / 365.25
    return got, expect, an, fit


def test_analyze_contagion_hazard_equals_brute_force():
    got, expect, an, fit = _analyze_hazard_case(1095)
    np.testing.assert_allclose(got, expect, rtol=1e-6, atol=1e-8 / 365.25)
    assert (expect > 0).sum() > 100
    # background: exp(theta . x) per year, x = (intercept, any offending role); everyone in the
    # simulated records co-offends except the victims without a tie
    assert tuple(fit.covariates) == ("intercept", "offender")
    offender = (an.person["degree"] > 0).to_numpy(float)
    np.testing.assert_allclose(an.person["contagion_background"],
                               np.round(np.exp(fit.theta[0] + fit.theta[1] * offender) * 365.25, 8), rtol=1e-7)
    np.testing.assert_allclose(an.person["contagion_hazard"],
                               an.person["contagion_background"] + an.person["contagion_network"], atol=2e-8)


def test_analyze_contagion_hazard_respects_max_lag():
    got, expect, _, _ = _analyze_hazard_case(60)
    np.testing.assert_allclose(got, expect, rtol=1e-6, atol=1e-8 / 365.25)


def test_run_contagion_summary_and_events(synth_root):
    d, res = city_run(synth_root, 1)
    con = res.manifest["analytics"]["contagion"]
    for key in ("alpha", "alpha_se", "mean_delay_days", "mean_delay_se", "contagion_share", "theta", "theta_se"):
        assert con[key] is not None, key
    assert con["alpha"] > 0 and 0 < con["alpha_se"] < con["alpha"]
    assert con["mean_delay_days"] > 0 and 0 < con["mean_delay_se"] < con["mean_delay_days"]
    assert 0 < con["contagion_share"] < 1
    assert all(v is not None and v > 0 for v in con["theta_se"].values())
    assert res.manifest["analytics"]["betweenness"]["exact"] is True

    ev = frame(res, "contagion_events.csv")
    inc = pd.read_csv(d / "incidents.csv", dtype=str, keep_default_na=False).set_index("incident_id")
    inv = pd.read_csv(d / "involvements.csv", dtype=str, keep_default_na=False)
    window_start = res.manifest["window"]["start"]
    in_win = inc[(inc["date"] >= window_start) & (inc["date"] <= res.manifest["as_of"])]
    victims = inv[(inv["role"] == "victim") & inv["incident_id"].isin(in_win.index[in_win["gun"] == "true"])]
    # one event per (shooting, victim) in the window
    assert sorted(zip(ev["incident_id"], ev["person_id"])) == sorted(
        set(zip(victims["incident_id"], victims["person_id"])))
    assert con["events"] == len(ev)
    assert ev.equals(ev.sort_values(["date", "incident_id", "person_id"], kind="stable"))
    edges = frame(res, "edges.csv")
    co = edges[edges["layer"] == "co_offending"]
    ties = set(zip(co["person_a"], co["person_b"]))
    victim_of = set(zip(victims["incident_id"], victims["person_id"]))
    has = ev[ev["likely_infector"] != ""]
    assert len(has) > 10
    for r in has.itertuples():
        a, b = sorted([r.person_id, r.likely_infector])
        assert (a, b) in ties                                     # a co-offending neighbour
        assert (r.infector_incident_id, r.likely_infector) in victim_of   # shot in that shooting
        assert inc.loc[r.infector_incident_id, "date"] == r.infector_date < r.date
        assert float(r.infector_probability) > float(r.p_background)
    assert (ev.loc[ev["likely_infector"] == "", ["infector_incident_id", "infector_date"]] == "").all().all()


# ----------------------------------------------------------------------------
# 6. scores.csv carries every documented per-person quantity
# ----------------------------------------------------------------------------

def test_scores_has_one_column_per_person_quantity(synth_root):
    _, res = city_run(synth_root, 1)
    header = res.outputs["scores.csv"].split(b"\n", 1)[0].decode().split(",")
    assert len(header) == len(set(header))
    for name, doc in PERSON_COLUMNS.items():
        assert header.count(name) == 1, name
        assert isinstance(doc, str) and len(doc) > 10, name
    s = frame(res, "scores.csv")
    assert len(s) == res.summary["persons_in_network"]
    for name in PERSON_COLUMNS:
        assert pd.to_numeric(s[name]).notna().all(), name


def test_analyze_person_frame_is_person_columns():
    incidents, involvements = simulated_records(3, n=300)
    net = build_network(incidents, involvements, as_of_day=AS_OF, window_days=999, half_life_days=365)
    an = analyze(net, persons=None, audit=None, relations=None, policy=Policy())
    assert list(an.person.columns) == ["person_id", *PERSON_COLUMNS]
    assert an.person["person_id"].tolist() == net.person_ids.tolist()


def test_run_folder_doc_documents_every_person_column():
    text = (ROOT / "docs" / "run-folder.md").read_text(encoding="utf-8")
    section = text.split("## scores.csv", 1)[1].split("\n## ", 1)[0]
    missing = [c for c in PERSON_COLUMNS if f"`{c}`" not in section]
    assert missing == []


def test_a_failed_analysis_stops_the_background_betweenness(monkeypatch):
    # an error on the main thread cancels the job: the background thread takes no further part
    from fdnet.graph import analytics as an_mod
    from fdnet.policy import Policy
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        write_city(generate_city(3000, seed=3), d)
        rec = load_records(d)
    net = build_network(rec.incidents, rec.involvements, as_of_day=rec.as_of_day, window_days=1095,
                        half_life_days=365)
    jobs = []
    real = an_mod.cen.BetweennessJob

    class Spy(real):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            jobs.append(self)

    def boom(*a, **k):
        raise RuntimeError("groups failed")
    monkeypatch.setattr(an_mod.cen, "BetweennessJob", Spy)
    monkeypatch.setattr(an_mod, "merge_groups", boom)
    pol = Policy.model_validate({"analytics": {"betweenness_exact_work": 1}})
    with pytest.raises(RuntimeError, match="groups failed"):
        an_mod.analyze(net, persons=None, audit=None, relations=None, policy=pol)
    job = jobs[0]
    assert job._cancelled and len(job._parts) > 1
    job.work()                       # a cancelled job hands out nothing more
    assert job._next <= len(job._parts)
