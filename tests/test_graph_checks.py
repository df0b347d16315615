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

ROOT = Path(__file__).resolve().parents[1]
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
