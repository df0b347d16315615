"""Plant place features with a known effect on shootings in a synthetic city, so the risk-terrain model can be
checked against it (docs/synthetic-city.md, docs/places.md).

:func:`plant_place_features` adds a ``place_features`` input table with three kinds over the city's bounding box:

* ``vacant_building``: uniform at random, ``vacant_per_km2`` per km²; **the planted effect**: a shooting
  at more than ``radius_m`` metres from every vacant building is removed (the incident and all its
  involvements) with probability ``1 − 1/relative_risk``, one draw per shooting. So the shooting rate within
  ``radius_m`` of a vacant building, against the rate elsewhere, is ``relative_risk`` times what it is in the
  same city without the planting; ``relative_risk=1`` plants no effect and removes nothing.
* ``request_311``: a *correlated null*: around 70% of the vacant buildings, a Poisson(3) number of requests
  scattered with a 120 m standard deviation, plus a uniform background of ``requests_per_km2``; they sit near
  vacant buildings and have no effect of their own.
* ``bus_stop``: a *pure null*: uniform, ``bus_stops_per_km2`` per km², no effect.

Vacant buildings are placed without regard to where incidents happen, so the planted relative risk is the
effect over the background **on average over placements**. In one city the buildings land, by chance, a little
nearer to or farther from its shooting clusters, and the model estimates ``relative_risk`` times that chance
association (docs/places.md, *The synthetic check*). The features and their places depend on ``seed`` only,
never on ``relative_risk``, so ``relative_risk=1`` with the same seed is the unplanted twin that measures it. A shooting is ``gun=true`` with a victim (CONTRACT.md section 1). The future
shootings of the truth (``truth/future_shootings.csv``, no coordinates) are left as they are. The truth
``truth/place_effect.csv`` names each kind, its factor and its planted relative risk.

>>> from fdnet.synth import generate_city
>>> city = generate_city(3000, seed=4)
>>> p = plant_place_features(city, relative_risk=2.0, seed=1)
>>> sorted(p.extra_inputs["place_features"]["kind"].unique())
['bus_stop', 'request_311', 'vacant_building']
>>> p.n_rows("incidents") < city.n_rows("incidents")
True
>>> plant_place_features(city, relative_risk=1.0, seed=1).n_rows("incidents") == city.n_rows("incidents")
True
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .city import SynthCity


def plant_place_features(city: SynthCity, *, relative_risk: float = 2.0, radius_m: float = 300.0,
                         vacant_per_km2: float = 0.8, requests_per_km2: float = 0.5,
                         bus_stops_per_km2: float = 1.5, seed: int = 0) -> SynthCity:
    """A copy of ``city`` with place features and the planted effect (module docstring)."""
    if not relative_risk >= 1:
        raise ValueError(f"relative_risk must be at least 1, not {relative_risk!r}")
    from pyproj import Transformer

    from ..places.grid import local_crs
    rng = np.random.default_rng(seed)
    inc, inv = city.incidents, city.involvements
    lat = inc["lat"].to_numpy(dtype=float)
    lon = inc["lon"].to_numpy(dtype=float)
    ok = np.isfinite(lat) & np.isfinite(lon)
    crs = local_crs(float(np.median(lat[ok])), float(np.median(lon[ok])))
    fwd = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    inv_t = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    x, y = fwd.transform(lon, lat)
    x, y = np.asarray(x), np.asarray(y)
    x0, x1, y0, y1 = x[ok].min(), x[ok].max(), y[ok].min(), y[ok].max()
    km2 = (x1 - x0) * (y1 - y0) / 1e6

    def uniform(rate):
        k = rng.poisson(rate * km2)
        return x0 + rng.random(k) * (x1 - x0), y0 + rng.random(k) * (y1 - y0)

    vx, vy = uniform(vacant_per_km2)
    with_req = rng.random(len(vx)) < 0.7
    n_req = rng.poisson(3.0, size=len(vx)) * with_req
    src = np.repeat(np.arange(len(vx)), n_req)
    ry_bg = uniform(requests_per_km2)
    rx = np.concatenate([vx[src] + rng.normal(0, 120, len(src)), ry_bg[0]])
    ry = np.concatenate([vy[src] + rng.normal(0, 120, len(src)), ry_bg[1]])
    bx, by = uniform(bus_stops_per_km2)

    # the planted effect: shootings far from every vacant building are thinned
    from scipy.spatial import cKDTree
    victim_inc = pd.unique(inv.loc[(inv["role"] == "victim").to_numpy(), "incident_id"].to_numpy())
    gun = inc["gun"].astype(str).str.lower().isin(["true", "1", "yes"]).to_numpy()
    shooting = gun & inc["incident_id"].isin(victim_inc).to_numpy() & ok
    idx = np.flatnonzero(shooting)
    if len(vx):
        d, _ = cKDTree(np.column_stack([vx, vy])).query(np.column_stack([x[idx], y[idx]]), k=1)
    else:
        d = np.full(len(idx), np.inf)
    far = d > radius_m
    drop = idx[far & (rng.random(len(idx)) >= 1.0 / relative_risk)]
    dropped = inc["incident_id"].to_numpy()[drop]
    keep_inc = np.ones(len(inc), bool)
    keep_inc[drop] = False
    keep_inv = ~inv["incident_id"].isin(dropped).to_numpy()

    kinds = np.array(["vacant_building"] * len(vx) + ["request_311"] * len(rx) + ["bus_stop"] * len(bx), dtype=object)
    fxx = np.concatenate([vx, rx, bx])
    fyy = np.concatenate([vy, ry, by])
    flon, flat = inv_t.transform(fxx, fyy)
    prefix = {"vacant_building": "V", "request_311": "R", "bus_stop": "B"}
    fid = [f"{prefix[k]}{i + 1:06d}" for k in ("vacant_building", "request_311", "bus_stop")
           for i in range(int((kinds == k).sum()))]
    source = {"vacant_building": "synthetic vacant-building register", "request_311": "synthetic 311 requests",
              "bus_stop": "synthetic transit stops"}
    feats = pd.DataFrame({"feature_id": fid, "kind": kinds, "lat": np.round(np.asarray(flat), 6),
                          "lon": np.round(np.asarray(flon), 6), "source": [source[k] for k in kinds]})
    feats = feats.sort_values("feature_id", kind="stable").reset_index(drop=True)
    truth = pd.DataFrame({
        "kind": ["vacant_building", "request_311", "bus_stop"],
        "factor": [f"vacant_building:within_{radius_m:g}m", "", ""],
        "planted_relative_risk": [float(relative_risk), 1.0, 1.0],
        "note": [f"shootings beyond {radius_m:g} m of every vacant building thinned by 1/{relative_risk:g}",
                 "clustered around vacant buildings; no effect of its own", "uniform; no effect"],
        "features": [len(vx), len(rx), len(bx)],
    })
    out = SynthCity(inc[keep_inc].reset_index(drop=True), inv[keep_inv].reset_index(drop=True), city.persons,
                    city.groups, city.group_relations, city.truth_membership, city.truth_future, city.end_date,
                    stats={**city.stats, "place_effect": {"relative_risk": float(relative_risk), "radius_m": radius_m,
                                                          "shootings_removed": int(len(drop)),
                                                          "features": int(len(feats))}})
    out.extra_inputs = dict(city.extra_inputs)
    out.extra_truth = dict(city.extra_truth)
    out.extra_inputs["place_features"] = feats
    out.extra_truth["place_effect"] = truth
    return out
