"""The places analysis of a run (docs/places.md): cells, hot spots, risk terrain, forecast accuracy, near
repeats, group territories and the place list.

:func:`analyze_places` runs when incidents in the window carry lat and lon (else it returns None and the run is
as it was). It reads the validated records and the network (which incidents are in the window, which are
shootings) and the groups; it never touches the lists. Its :class:`Places` holds places.csv, risk_factors.csv,
place_list.csv, the Knox table, PAI/PEI, the territories and the summary written to the manifest.

>>> import tempfile, pathlib, fdnet
>>> from fdnet.synth import generate_city, write_city
>>> from fdnet.synth.places import plant_place_features
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = write_city(plant_place_features(generate_city(3000, seed=2), relative_risk=3.0, seed=1), d / "c")
>>> r = fdnet.run(d / "c")
>>> list(r.table("places").columns[:5])
['cell_id', 'lat', 'lon', 'shootings', 'risk']
>>> sorted(r.table("risk_factors")["factor"])[:2]
['bus_stop:density_300m', 'bus_stop:within_150m']
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .accuracy import pai_pei
from .grid import Grid, H3Grid
from .knox import knox
from .rtm import Fit, factor_columns, select, terrain_risk
from .territory import TERRITORY_COLUMNS, territories


@dataclass
class Places:
    """Everything the places analysis made (see the module docstring)."""

    grid: Grid
    cells: pd.DataFrame               # places.csv
    factors: pd.DataFrame             # risk_factors.csv
    place_list: pd.DataFrame          # place_list.csv
    knox: pd.DataFrame
    accuracy: dict
    territories: pd.DataFrame         # group, territory columns
    territory_cells: pd.DataFrame     # group, cell_id, incidents (core cells)
    conflict_lines: pd.DataFrame      # group_a, group_b, shootings, incidents, relation (between territories)
    shootings: pd.DataFrame           # incident_id, date, lat, lon of the window's placed shootings
    summary: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)


def _window_points(rec, net):
    """The coordinates of the network's window incidents (rows of rec.incidents, found by ID in Arrow: no
    Python string per incident, 1.8 million of them at a million people)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    ids = pa.array(rec.incidents["incident_id"], type=pa.string())
    pos = pc.index_in(net.incident_ids_arrow(), value_set=ids).to_numpy(zero_copy_only=False)
    lat = rec.incidents["lat"].to_numpy(dtype=float)[pos]
    lon = rec.incidents["lon"].to_numpy(dtype=float)[pos]
    return lat, lon


def has_coordinates(rec) -> bool:
    inc = rec.incidents
    return "lat" in inc and bool((np.isfinite(inc["lat"].to_numpy(dtype=float))
                                  & np.isfinite(inc["lon"].to_numpy(dtype=float))).any())


def _fit_surface(grid, y, other, factors, kind_of, cfg) -> tuple[Fit, np.ndarray]:
    bg = np.log(grid.smooth(other, cfg.background_bandwidth_m) + 1.0)
    blocks = grid.blocks(cfg.block_m)
    fit = select(y, bg, factors, kind_of, max_factors=cfg.max_factors, blocks=blocks)
    return fit, fit.mu / max(float(fit.mu.mean()), 1e-300)


def analyze_places(rec, net, analytics, policy) -> Places | None:
    """The places analysis (module docstring); None when switched off or no window incident has coordinates."""
    cfg = policy.places
    if not cfg.enabled or not has_coordinates(rec):
        return None
    notes: list[str] = []       # printed after the run and kept in the manifest's notes
    quiet: list[str] = []       # kept in the manifest's places.notes only: true of most runs, not a warning
    lat, lon = _window_points(rec, net)
    placed = np.isfinite(lat) & np.isfinite(lon)
    if not placed.any():
        return None
    if (~placed).any():
        notes.append(f"places: {int((~placed).sum())} of {len(placed)} incidents in the window have no lat/lon "
                     "and are not placed on the map")
    every = bool(placed.all())      # the usual case: no copy of the coordinates for the placed ones
    if cfg.grid == "h3":
        grid = H3Grid.covering(lat if every else lat[placed], lon if every else lon[placed],
                               resolution=cfg.h3_resolution, max_cells=cfg.max_cells)
    if every:
        if cfg.grid == "h3":
            x, y = grid.project(lat, lon)
        else:   # the square grid's extent comes from the projected points: projected once
            grid, x, y = Grid.covering_points(lat, lon, cell_m=cfg.cell_m, max_cells=cfg.max_cells)
    else:
        x = np.full(len(lat), np.nan)
        y = np.full(len(lat), np.nan)
        if cfg.grid == "h3":
            x[placed], y[placed] = grid.project(lat[placed], lon[placed])
        else:
            grid, x[placed], y[placed] = Grid.covering_points(lat[placed], lon[placed], cell_m=cfg.cell_m,
                                                              max_cells=cfg.max_cells)
    shoot = net.shooting_incidents()
    day = net.inc_day               # int32 (no int64 copy per incident)
    # the placed shootings' points now, so that lat and lon (14 MB each at a million people) are gone before
    # the cells and the territories
    sh_idx = np.flatnonzero(shoot & placed)
    shoot_pts = pd.DataFrame({"incident_id": net.incident_ids[sh_idx], "day": day[sh_idx].astype(np.int64),
                              "lat": lat[sh_idx], "lon": lon[sh_idx]})
    del lat, lon
    shoot_pts["date"] = (np.datetime64("1970-01-01", "D") + shoot_pts["day"].to_numpy()
                         .astype("timedelta64[D]")).astype(str)
    if every:
        cell = grid.cell_of(x, y).astype(np.int32)      # int32: half the memory, the same counts
    else:
        cell = np.full(len(x), -1, dtype=np.int32)
        cell[placed] = grid.cell_of(x[placed], y[placed])
    n = grid.n_cells
    shootings = grid.counts(cell[shoot])
    other = grid.counts(cell[~shoot])

    pf = rec.place_features
    if pf is not None and len(pf):
        fx, fy = grid.project(pf["lat"].to_numpy(dtype=float), pf["lon"].to_numpy(dtype=float))
        factors, kind_of = factor_columns(grid, pf, fx, fy, cfg.proximity_m, cfg.density_radius_m)
    else:
        fx = fy = np.zeros(0)
        factors, kind_of = {}, {}
        quiet.append("places: no place_features table: the risk surface rests on the other incidents alone")

    fit, risk = _fit_surface(grid, shootings, other, factors, kind_of, cfg)
    trisk = terrain_risk(fit, factors, n)
    kde = grid.smooth(shootings, cfg.kde_bandwidth_m)
    k_hot = int(np.ceil(cfg.hot_spot_share * n))
    hot = np.zeros(n, bool)
    hot[np.lexsort((np.arange(n), -kde))[:k_hot]] = True
    hot &= kde > 0

    ids = grid.cell_ids
    cx, cy = grid.centres()
    clat, clon = grid.unproject(cx, cy)
    cells = pd.DataFrame({"cell_id": ids, "lat": np.round(clat, 6), "lon": np.round(clon, 6),
                          "shootings": shootings.astype(np.int64), "risk": np.round(risk, 6),
                          "terrain_risk": np.round(trisk, 6), "other_incidents": other.astype(np.int64),
                          "shooting_density_km2": np.round(kde, 6), "hot_spot": hot})
    for f in fit.selected:
        cells[f] = np.round(factors[f], 6)

    place_list = _place_list(cells, fit, factors, kind_of, pf, grid, fx, fy, cfg)
    accuracy = _holdout(grid, cell, shoot, day, net, factors, kind_of, cfg, rec.as_of_day)

    kn = knox(x[sh_idx], y[sh_idx], day[sh_idx].astype(np.int64), cfg.knox_distance_m, cfg.knox_days,
              permutations=cfg.knox_permutations, seed=cfg.seed)

    terr, tcells, lines = _territories(grid, net, analytics, placed, x, y, cell, cfg)
    summary = {
        "cell_m": float(cfg.cell_m) if grid.kind == "square" else round(grid.cell_m, 3), "crs": grid.crs,
        "rows": grid.n_rows, "columns": grid.n_cols, "cells": n,
        **({"grid": "h3", "h3_resolution": grid.resolution} if grid.kind == "h3" else {}),
        "incidents_placed": int(placed.sum()), "incidents_unplaced": int((~placed).sum()),
        "shootings_placed": int(shootings.sum()), "other_incidents_placed": int(other.sum()),
        "place_features": int(0 if pf is None else len(pf)),
        "selected_factors": list(fit.selected), "entry_threshold": round(fit.threshold, 6),
        "dispersion": round(fit.dispersion, 6), "background_coefficient": round(fit.background_coef, 6),
        "selection_steps": fit.steps, "hot_spot_cells": int(hot.sum()),
        "accuracy": accuracy, "territories": int(len(terr)), "notes": notes + quiet,
    }
    return Places(grid, cells, fit.table, place_list, kn, accuracy, terr, tcells, lines, shoot_pts, summary, notes)


def _place_list(cells, fit, factors, kind_of, pf, grid, fx, fy, cfg) -> pd.DataFrame:
    """The highest-risk cells with the selected factors that apply there and their counts. No person appears."""
    k = min(cfg.place_list_size, len(cells))
    order = np.lexsort((np.arange(len(cells)), -cells["risk"].to_numpy()))[:k]
    top = cells.iloc[order][["cell_id", "lat", "lon", "risk", "terrain_risk", "shootings", "other_incidents",
                             "hot_spot"]].reset_index(drop=True)
    top.insert(0, "rank", np.arange(1, k + 1))
    rr = fit.table.set_index("factor")["relative_risk"]
    drivers = []
    for i in order:
        parts = [f"{f} (RR {rr[f]:.2f}, {factors[f][i]:.0%} of cell)" if ":within_" in f
                 else f"{f} (RR {rr[f]:.2f} per feature, {factors[f][i]:g} features)"
                 for f in fit.selected if factors[f][i] > 0]
        drivers.append("; ".join(parts) if parts else "background of other incidents only")
    top["drivers"] = drivers
    if pf is not None and len(pf):
        from scipy.spatial import cKDTree
        xc, yc = grid.centres()
        kinds = pf["kind"].to_numpy(dtype=object)
        pts = np.column_stack([xc[order], yc[order]])
        for kd in sorted(set(kinds.tolist())):
            sel = kinds == kd
            top[f"{kd}_within_{cfg.density_radius_m:g}m"] = cKDTree(np.column_stack([fx[sel], fy[sel]])) \
                .query_ball_point(pts, r=cfg.density_radius_m, return_length=True).astype(np.int64) if k else []
    return top


def _holdout(grid, cell, shoot, day, net, factors, kind_of, cfg, as_of_day) -> dict:
    """PAI/PEI on the last ``holdout_days`` of the window, the model fitted on the days before."""
    cut = as_of_day - cfg.holdout_days
    fit_part = day <= cut
    test = shoot & ~fit_part
    y = grid.counts(cell[shoot & fit_part])
    other = grid.counts(cell[~shoot & fit_part])
    future = grid.counts(cell[test])
    from ..records.validate import day_to_iso
    out = {"method": "internal holdout: the risk-terrain model refitted on the window up to the cut, scored on "
                     "the shootings after it (records after as_of are never used)",
           "fit_end": day_to_iso(int(cut)), "holdout_start": day_to_iso(int(cut) + 1),
           "holdout_end": day_to_iso(int(as_of_day)), "holdout_shootings": int(future.sum()),
           "fit_shootings": int(y.sum()), "maps": {}}
    if future.sum() == 0 or y.sum() == 0:
        out["skipped"] = "no shootings " + ("in the holdout" if future.sum() == 0 else "before the holdout")
        return out
    fit, risk = _fit_surface(grid, y, other, factors, kind_of, cfg)
    out["selected_factors"] = list(fit.selected)
    out["maps"] = {"risk_terrain": pai_pei(risk, future, cfg.area_shares),
                   "past_shootings": pai_pei(y, future, cfg.area_shares),
                   "past_shootings_kde": pai_pei(grid.smooth(y, cfg.kde_bandwidth_m), future, cfg.area_shares)}
    return out


def _group_codes(net, primary: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Each network person's primary group as an int32 code into the sorted names, -1 for none (not in
    ``primary``, or ""). Only the people with a group are factorized, and they are found among the network's
    people in Arrow: at a million people (325k with a group) the former reindex to every person and factorize
    over them (most of them "") peaked at 86 MiB, this at 26 MiB, and keeps 4 MiB (the codes)."""
    vals = primary.to_numpy(dtype=object)
    named = ~pd.isna(vals)
    named[named] = vals[named] != ""
    sub = np.full(len(vals), -1, dtype=np.int32)
    sub[named], names = pd.factorize(vals[named], sort=True)
    del vals, named
    names = np.asarray(names, dtype=object)
    idx = primary.index
    if len(idx) == len(net.person_ids) and idx.equals(pd.Index(net.person_ids)):   # the network's order
        return sub, names
    pos = _positions(net.person_ids_arrow(), idx)
    if pos is None:                           # not strings: as before
        return _group_codes(net, primary.reindex(net.person_ids))
    code = np.full(len(pos), -1, dtype=np.int32)
    hit = pos >= 0
    code[hit] = sub[pos[hit]]
    return code, names


def _positions(ids, index: pd.Index) -> np.ndarray | None:
    """Position in ``index`` (distinct) of each of the Arrow strings ``ids``, -1 when absent; None when the
    index is not strings."""
    import pyarrow as pa
    import pyarrow.compute as pc
    try:
        a = index.array
        vs = pa.array(a) if hasattr(a, "__arrow_array__") else pa.array(index.to_numpy(dtype=object),
                                                                          type=pa.string())
        if isinstance(vs, pa.ChunkedArray):
            vs = vs.combine_chunks()
        if pa.types.is_large_string(vs.type):
            vs = vs.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError):
        return None
    if not pa.types.is_string(vs.type) or vs.null_count:
        return None
    return pc.fill_null(pc.index_in(ids, value_set=vs), -1).to_numpy(zero_copy_only=False).astype(np.int32,
                                                                                                    copy=False)


def _territories(grid, net, analytics, placed, x, y, cell, cfg):
    from ..graph.layers import FLAG_OFFENDING
    I = net.incidence
    code, names = _group_codes(net, analytics.groups.primary)
    # the qualifying involvements, found per person and per incident (no group code per involvement), and
    # handed over as int32 group codes and incident indexes: territories reads x, y and cell by incident
    # (no copy of them per involvement; 4M involvements, 1.7M qualifying at a million people)
    m = (I.flags & FLAG_OFFENDING) != 0
    m &= (code >= 0)[I.person]
    m &= placed[I.inc]
    terr, core = territories(grid, code[I.person[m]], I.inc[m], x, y, share=cfg.territory_share,
                             names=np.asarray(names, dtype=object), cell=cell, by_incident=True)
    del m, code
    ids = grid.cell_ids
    tcells = pd.DataFrame({"group": core["group"].to_numpy(dtype=object),
                           "cell_id": ids[core["cell"].to_numpy(dtype=np.int64)] if len(core) else [],
                           "incidents": core["incidents"].to_numpy()})
    c = analytics.conflicts
    lines = pd.DataFrame(columns=["group_a", "group_b", "relation", "shootings", "incidents"])
    if c is not None and len(c) and len(terr):
        have = set(terr["group"])
        keep = c["group_a"].isin(have) & c["group_b"].isin(have) & (c["relation"] == "conflict")
        cols = [k for k in ("group_a", "group_b", "relation", "shootings", "incidents") if k in c]
        lines = c.loc[keep, cols].drop_duplicates(["group_a", "group_b"]).reset_index(drop=True)
    return terr, tcells, lines


def with_territory(group_table: pd.DataFrame, places: Places | None) -> pd.DataFrame:
    """The group table with the territory columns (unchanged without a places analysis)."""
    if places is None:
        return group_table
    t = group_table.merge(places.territories, on="group", how="left")
    t["territory_incidents"] = t["territory_incidents"].fillna(0).astype(np.int64)
    t["territory_cells"] = t["territory_cells"].fillna(0).astype(np.int64)
    return t[list(group_table.columns) + list(TERRITORY_COLUMNS)]
