"""The graph stage against mass incidents, data-chosen Leiden resolution and the contagion interval.

1. ``network.max_pairs_per_incident``: an incident with 3,000 offenders projects no
   co-offending ties, is named in ``Network.capped_incidents``, runs in seconds, and the
   rest of the network is exactly the network built without it.
2. ``groups.resolution: auto``: deterministic, and sensible on real networks with no
   group audit (the Infinito summits, ../shared/data) and on a synthetic city.
3. The contagion model's mean-delay 95% interval (profile likelihood) covers the truth
   at its nominal rate on simulations from the model.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fdnet.graph.layers import LAYERS, build_network
from fdnet.synth import generate_city

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
EPOCH = np.datetime64("1970-01-01", "D")


# ----------------------------------------------------------------------------
# 1. Mass incidents
# ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_city():
    city = generate_city(2000, seed=5)
    inc = city.incidents.copy()
    inc["day"] = (pd.to_datetime(inc["date"]).to_numpy().astype("datetime64[D]") - EPOCH).astype(int)
    for c in ("gun", "violent"):
        inc[c] = inc[c].astype(str).str.lower().isin(["true", "1", "yes"])
    as_of = int(inc["day"].max())
    return inc, city.involvements[["incident_id", "person_id", "role"]].copy(), as_of


def _with_mass_incident(inc, inv, as_of, n_offenders=3000, n_victims=2, with_known=True):
    """Add incident ZMASS: n_offenders offenders (new people, plus two of the city's), n_victims victims."""
    known = sorted(inv["person_id"].unique())[:2] if with_known else []
    people = [f"MASS{k:05d}" for k in range(n_offenders - len(known))] + known
    victims = [f"MV{k}" for k in range(n_victims)]
    inc2 = pd.concat([inc, pd.DataFrame({"incident_id": ["ZMASS"], "date": ["x"], "day": [as_of - 3],
                                         "gun": [True], "violent": [True]})], ignore_index=True)
    inv2 = pd.concat([inv, pd.DataFrame({"incident_id": "ZMASS", "person_id": people + victims,
                                         "role": ["arrestee"] * len(people) + ["victim"] * len(victims)})],
                     ignore_index=True)
    return inc2, inv2


def _edges(net, layer):
    return net.layers[layer].edges_frame(net).reset_index(drop=True)


def test_mass_incident_projects_no_ties_and_leaves_the_rest_unchanged(small_city):
    inc, inv, as_of = small_city
    base = build_network(inc, inv, as_of_day=as_of, window_days=1095, half_life_days=365)
    assert base.capped_incidents == []
    inc2, inv2 = _with_mass_incident(inc, inv, as_of)
    t0 = time.perf_counter()
    net = build_network(inc2, inv2, as_of_day=as_of, window_days=1095, half_life_days=365)
    elapsed = time.perf_counter() - t0
    assert elapsed < 5, elapsed
    # named, with its pair counts (3000 offenders: 3000*2999/2; 2 victims: 2*3000)
    assert net.capped_incidents == [
        {"incident_id": "ZMASS", "layer": "co_offending", "pairs": 3000 * 2999 // 2},
        {"incident_id": "ZMASS", "layer": "victimization", "pairs": 2 * 3000},
    ]
    for layer in LAYERS:
        e = _edges(net, layer)
        assert not e["incident_ids"].str.split(";").explode().eq("ZMASS").any()
        pd.testing.assert_frame_equal(e, _edges(base, layer))
    # its people are in the network and keep their own counts
    rc = net.role_counts()
    k = net.person_index("MASS00000")
    assert k >= 0 and rc["offending"][k] == 1 and rc["gun_offending"][k] == 1
    assert rc["shooting_victimization"][net.person_index("MV0")] == 1
    known = sorted(inv["person_id"].unique())[0]
    assert rc["offending"][net.person_index(known)] == base.role_counts()["offending"][base.person_index(known)] + 1
    assert net.layers["co_offending"].degree()[k] == 0


def test_cap_is_per_layer_and_at_the_threshold(small_city):
    inc, inv, as_of = small_city
    # 50 offenders: 1225 co-offending pairs, exactly the default cap (kept); 1 victim: 50 pairs
    inc2, inv2 = _with_mass_incident(inc, inv, as_of, n_offenders=50, n_victims=1, with_known=False)
    net = build_network(inc2, inv2, as_of_day=as_of, window_days=1095, half_life_days=365)
    assert net.capped_incidents == []
    assert (_edges(net, "co_offending")["incident_ids"] == "ZMASS").sum() == 1225
    # a cap of 100 keeps ZMASS out of co-offending only (victimization has 50 pairs)
    net = build_network(inc2, inv2, as_of_day=as_of, window_days=1095, half_life_days=365,
                        max_pairs_per_incident=100)
    assert net.capped_incidents == [{"incident_id": "ZMASS", "layer": "co_offending", "pairs": 1225}]
    assert (_edges(net, "victimization")["incident_ids"] == "ZMASS").sum() == 50
    assert not (_edges(net, "co_offending")["incident_ids"] == "ZMASS").any()
    # None: no cap at all
    net = build_network(inc2, inv2, as_of_day=as_of, window_days=1095, half_life_days=365,
                        max_pairs_per_incident=None)
    assert (_edges(net, "co_offending")["incident_ids"] == "ZMASS").sum() == 1225


def test_pairs_per_incident_matches_the_projection(small_city):
    """The counted pairs are exactly the pairs the kernel emits (before merging repeated pairs)."""
    inc, inv, as_of = small_city
    net = build_network(inc, inv, as_of_day=as_of, window_days=1095, half_life_days=365,
                        max_pairs_per_incident=None)
    for layer, mode in LAYERS.items():
        pairs = net.incidence.pairs_per_incident(mode)
        L = net.layers[layer]
        per_inc = np.bincount(L.ev_incident, minlength=len(net.incident_ids))
        np.testing.assert_array_equal(pairs, per_inc)


# ----------------------------------------------------------------------------
# 2. groups.resolution: auto
# ----------------------------------------------------------------------------

def _layer(n, src, dst, w=None):
    from fdnet.graph.layers import Layer
    src, dst = np.asarray(src, np.int32), np.asarray(dst, np.int32)
    w = np.ones(len(src), np.int32) if w is None else np.asarray(w, np.int32)
    return Layer("co_offending", src, dst, w, None, None, None, None, None)


def _infinito():
    path = DATA / "infinito" / "person_summit.csv"
    if not path.is_file():
        pytest.skip("shared dataset infinito/person_summit.csv is absent")
    att = pd.read_csv(path, dtype=str)
    day = (pd.to_datetime(att["date"]).to_numpy().astype("datetime64[D]") - EPOCH).astype(int)
    inc = (pd.DataFrame({"incident_id": att["summit_id"], "day": day}).drop_duplicates("incident_id")
           .assign(gun=False, violent=False))
    inv = pd.DataFrame({"incident_id": att["summit_id"], "person_id": att["person_id"], "role": "offender"})
    return build_network(inc, inv, as_of_day=int(day.max()), window_days=10_000, half_life_days=365)


def test_auto_resolution_on_infinito_summits():
    """151 people x 47 summits, no audit: the fixed 8.0 left 41 people ungrouped in 16 groups."""
    from fdnet.graph.groups import adjusted_rand, choose_resolution, leiden_communities
    net = _infinito()
    co = net.layers["co_offending"]
    assert net.n_persons == 151
    fixed = leiden_communities(net.n_persons, co, resolution=8.0)
    sizes = np.bincount(fixed[fixed >= 0])
    assert (sizes >= 3).sum() == 16 and (sizes[fixed] < 3).sum() == 41    # the complaint, reproduced
    ch = choose_resolution(net.n_persons, co, seed=42)
    assert ch.criterion == "modularity_stability"
    assert len(ch.scan) == 15 and ch.scan["resolution"].is_monotonic_increasing
    s = np.bincount(ch.labels[ch.labels >= 0])
    assert 4 <= (s >= 3).sum() <= 10                # a handful of locali, as Calderoni et al. (2017) found
    assert (s[ch.labels[ch.labels >= 0]] < 3).mean() <= 0.05
    # modularity (gamma = 1) of the choice is within the tolerance of the best on the grid
    from fdnet.graph.groups import MODULARITY_TOLERANCE
    row = ch.scan.set_index("resolution").loc[ch.resolution]
    assert row["modularity"] >= ch.scan["modularity"].max() - MODULARITY_TOLERANCE and row["modularity"] > 0.4
    # deterministic: the same labels again, and the summary is JSON-ready
    again = choose_resolution(net.n_persons, co, seed=42)
    assert np.array_equal(again.labels, ch.labels) and again.resolution == ch.resolution
    import json
    json.dumps(ch.summary(), allow_nan=False)
    assert adjusted_rand(ch.labels, ch.labels) == 1.0


def test_adjusted_rand_matches_sklearn():
    metrics = pytest.importorskip("sklearn.metrics")
    from fdnet.graph.groups import adjusted_rand
    rng = np.random.default_rng(0)
    a = rng.integers(0, 9, 500)
    b = np.where(rng.random(500) < 0.6, a, rng.integers(0, 12, 500))
    assert adjusted_rand(a, b) == pytest.approx(metrics.adjusted_rand_score(a, b), abs=1e-12)


def test_auto_resolution_uses_the_audit_when_there_is_one():
    """Planted cliques joined in pairs: modularity alone merges each pair; a group audit naming the
    cliques apart makes the held-out criterion pick a resolution that keeps them apart."""
    import networkx as nx

    from fdnet.graph.groups import choose_resolution
    G = nx.relaxed_caveman_graph(16, 8, 0.05, seed=2)
    for k in range(0, 16, 2):          # tie clique k to clique k + 1 densely
        for i in range(4):
            G.add_edge(8 * k + i, 8 * (k + 1) + i)
    e = np.array(sorted((min(u, v), max(u, v)) for u, v in G.edges()), np.int32)
    L = _layer(128, e[:, 0], e[:, 1])
    truth = np.repeat(np.arange(16), 8)
    audit = np.where(np.random.default_rng(0).random(128) < 0.5, np.char.add("g", truth.astype(str)), "")
    plain = choose_resolution(128, L, seed=1)
    with_audit = choose_resolution(128, L, audit_labels=audit.astype(object), seed=1)
    assert with_audit.criterion == "audit_holdout"
    assert with_audit.resolution >= plain.resolution
    from fdnet.graph.groups import adjusted_rand
    assert adjusted_rand(with_audit.labels, truth) > adjusted_rand(plain.labels, truth) + 0.2
    assert adjusted_rand(with_audit.labels, truth) > 0.9
    # too few audited people: the audit is not used
    few = np.where(np.arange(128) < 10, audit, "").astype(object)
    assert choose_resolution(128, L, audit_labels=few, seed=1).criterion == "modularity_stability"


def test_auto_resolution_with_no_ties():
    from fdnet.graph.groups import choose_resolution
    ch = choose_resolution(5, _layer(5, [], []))
    assert ch.criterion == "no_ties" and (ch.labels == -1).all()


def test_analyze_reports_the_chosen_resolution():
    from fdnet.graph.analytics import analyze
    from fdnet.policy import Policy, policy_from_dict
    net = _infinito()
    an = analyze(net, persons=None, audit=None, relations=None, policy=Policy())
    assert Policy().groups.resolution == "auto"
    assert an.group_detection["criterion"] == "modularity_stability" and an.group_detection["detect"]
    assert an.group_detection["resolution"] in [r["resolution"] for r in an.group_detection["scan"]]
    fixed = analyze(net, persons=None, audit=None, relations=None,
                    policy=policy_from_dict({"groups": {"resolution": 8.0}, "contagion": {"enabled": False}}))
    assert fixed.group_detection == {"detect": True, "resolution": 8.0, "criterion": "policy"}
    assert (fixed.groups.table["group"].nunique()) > an.groups.table["group"].nunique()


# ----------------------------------------------------------------------------
# 3. The contagion model's 95% intervals: coverage on simulations from the model
# ----------------------------------------------------------------------------

def test_profile_likelihood_intervals_cover_at_95_percent():
    """Many small replications with known parameters (about 75 triggered shootings each): the
    profile-likelihood intervals for the mean delay and alpha cover the truth at a rate inside
    the central 99.9% of Binomial(reps, 0.95)."""
    import math

    from scipy.stats import binom

    from fdnet.graph.contagion import fit_hawkes, random_network, simulate
    alpha, mean_delay, T, reps, n = 0.12, 125.0, 3650.0, 240, 600
    t0 = time.perf_counter()
    cover = {"mean_delay": 0, "alpha": 0}
    for r in range(reps):
        net = random_network(n, 4.0, seed=r)
        X = np.ones((n, 1))
        ev = simulate(net, X, theta=np.array([math.log(3e-5)]), alpha=alpha, beta=1 / mean_delay, T=T,
                      seed=10_000 + r)
        s = fit_hawkes(net, ev.person, ev.time, X, T).summary()
        assert s["ci95_method"].startswith("profile likelihood")
        for key, truth in (("mean_delay", mean_delay), ("alpha", alpha)):
            lo, hi = s[f"{key}_ci95"]
            assert lo is None or hi is None or lo < s[key if key == "alpha" else "mean_delay_days"] < hi
            cover[key] += (lo is None or lo <= truth) and (hi is None or truth <= hi)
    lo_ok, hi_ok = binom.ppf(0.0005, reps, 0.95), binom.ppf(0.9995, reps, 0.95)
    for key, k in cover.items():
        assert lo_ok <= k <= hi_ok, (key, k / reps)
    assert time.perf_counter() - t0 < 60


def test_profile_interval_is_skewed_like_the_likelihood():
    """With few triggered shootings the mean delay's likelihood is right-skewed: the profile interval
    reaches further above the estimate than below it (the Wald interval is symmetric)."""
    import math

    from fdnet.graph.contagion import fit_hawkes, random_network, simulate
    net = random_network(400, 4.0, seed=3)
    X = np.ones((400, 1))
    ev = simulate(net, X, theta=np.array([math.log(3e-5)]), alpha=0.12, beta=1 / 125, T=3650, seed=4)
    s = fit_hawkes(net, ev.person, ev.time, X, 3650).summary()
    lo, hi = s["mean_delay_ci95"]
    md = s["mean_delay_days"]
    assert hi - md > md - lo > 0
    wlo, whi = s["mean_delay_ci95_wald"]
    assert whi - md == pytest.approx(md - wlo)
    assert fit_hawkes(net, ev.person, ev.time, X, 3650, standard_errors=False).summary()["mean_delay_ci95"] == [None, None]


@pytest.mark.parametrize("name", ["london_gang", "montagna", "caviar"])
def test_auto_resolution_on_shared_networks(name):
    """No audit: auto leaves few people ungrouped and keeps modularity near the best, where the
    fixed 8 left a fifth to two thirds of them in communities under three."""
    from fdnet.graph.groups import choose_resolution, leiden_communities
    if name == "london_gang":
        path = DATA / name / "edges.csv"
        cols = ("source", "target", "weight")
        read = lambda p: pd.read_csv(p)  # noqa: E731
    elif name == "montagna":
        path = DATA / name / "meetings.csv"
        cols = ("a", "b", "w")
        read = lambda p: pd.read_csv(p, sep=r"\s+", header=None, names=list(cols))  # noqa: E731
    else:
        path = DATA / name / "phases_long.csv"
        cols = ("source", "target", "weight")
        read = lambda p: pd.read_csv(p)  # noqa: E731
    if not path.is_file():
        pytest.skip(f"shared dataset {name} is absent")
    e = read(path)
    a, b = e[cols[0]].to_numpy(), e[cols[1]].to_numpy()
    df = pd.DataFrame({"a": np.minimum(a, b), "b": np.maximum(a, b), "w": e[cols[2]].to_numpy()})
    df = df[df["a"] != df["b"]].groupby(["a", "b"], as_index=False)["w"].sum()
    ids = np.unique(np.concatenate([df["a"], df["b"]]))
    src, dst = np.searchsorted(ids, df["a"]), np.searchsorted(ids, df["b"])
    o = np.lexsort((dst, src))
    L = _layer(len(ids), src[o], dst[o], np.maximum(np.round(df["w"].to_numpy()[o]), 1))
    ch = choose_resolution(len(ids), L, seed=42)
    s = np.bincount(ch.labels[ch.labels >= 0])
    ungrouped = (s[ch.labels[ch.labels >= 0]] < 3).mean()
    fixed = leiden_communities(len(ids), L, resolution=8.0)
    fs = np.bincount(fixed[fixed >= 0])
    assert ungrouped <= 0.10 and ungrouped < (fs[fixed[fixed >= 0]] < 3).mean() - 0.1
    assert 2 <= (s >= 3).sum() <= 12
    assert ch.scan.set_index("resolution").loc[ch.resolution, "modularity"] > 0.3


def test_profile_intervals_survive_a_fit_that_breaks_down_at_extreme_values(tmp_path):
    """With six shootings the EM fit overflows at an extreme fixed mean delay (about 60,000 days); the
    profile must treat that value as outside the interval instead of stopping the run with a NaN."""
    import math

    from fdnet import study
    from fdnet.synth import write_city
    write_city(generate_city(n_people=700, seed=5), tmp_path / "city")
    c = study(tmp_path / "city").analytics.contagion.summary()
    assert c["events"] < 20 and c["ci95_method"].startswith("profile likelihood")
    for key, est in (("alpha_ci95", c["alpha"]), ("mean_delay_ci95", c["mean_delay_days"])):
        lo, hi = c[key]
        assert lo is None or (math.isfinite(lo) and lo <= est)
        assert hi is None or (math.isfinite(hi) and hi >= est)
