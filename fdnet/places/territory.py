"""Where each group's incidents happen: its territory, from its members' incidents.

A group's incidents are the window's incidents with coordinates in which one of its members (primary group,
groups.csv) had an offending role; an incident counts once per group. Its *core cells* are the fewest cells
holding at least ``places.territory_share`` of those incidents (most incidents first, ties by cell_id);
its *territory centre* is the mean position of the incidents in the core cells. The group table gains
``territory_lat``, ``territory_lon``, ``territory_incidents`` (placed incidents), ``territory_cells`` (core
cells) and ``territory_km2`` (their area).

>>> import numpy as np, pandas as pd
>>> from fdnet.places.grid import Grid
>>> g = Grid.covering(np.array([40.0, 40.02]), np.array([-100.0, -100.02]), cell_m=500)
>>> x, y = g.project(np.array([40.0, 40.0, 40.0, 40.02]), np.array([-100.0, -100.0, -100.0, -100.02]))
>>> t, cells = territories(g, np.array(["A", "A", "A", "A"], dtype=object), np.arange(4), x, y, share=0.5)
>>> t[["group", "territory_incidents", "territory_cells"]].to_dict("records")
[{'group': 'A', 'territory_incidents': 4, 'territory_cells': 1}]
"""
from __future__ import annotations

import numpy as np
import pandas as pd

TERRITORY_COLUMNS = ("territory_lat", "territory_lon", "territory_incidents", "territory_cells", "territory_km2")


def _pair_key(major: np.ndarray, major_lo: int, minor: np.ndarray, minor_lo: int, span: int) -> np.ndarray:
    """One int64 key per row, ``(major - major_lo) * span + (minor - minor_lo)``, made in place in a single
    array (``span`` more than the largest ``minor - minor_lo``, the product under 2**62)."""
    key = major.astype(np.int64)
    if major_lo:
        key -= major_lo
    key *= span
    key += minor
    if minor_lo:
        key -= minor_lo
    return key


def _run_starts(key: np.ndarray) -> np.ndarray:
    """True at the first entry of each run of equal values of the sorted ``key`` (``len(key) >= 1``)."""
    first = np.empty(len(key), dtype=bool)
    first[0] = True
    np.not_equal(key[1:], key[:-1], out=first[1:])
    return first


def _first_rows(g: np.ndarray, inc: np.ndarray) -> np.ndarray:
    """Rows (ascending) of the first occurrence of each distinct (g, inc): pandas' drop_duplicates(keep="first")
    on one int64 key, incident-major so that rows nearly in incident order sort quickly, without the
    DataFrame's copies of the columns."""
    if not np.issubdtype(inc.dtype, np.integer):
        inc = pd.factorize(inc)[0]
    g_lo = int(g.min())                        # factorize's -1 (a missing name) is a code like any other here
    n_g = int(g.max()) - g_lo + 1
    lo, hi = int(inc.min()), int(inc.max())
    if (hi - lo + 1) * n_g >= 2 ** 62:       # cannot happen with incident indexes; stay exact anyway
        inc, lo, hi = pd.factorize(inc)[0], 0, len(inc)
    key = _pair_key(inc, lo, g, g_lo, n_g)
    order = np.argsort(key, kind="stable")     # stable: the first of equal keys is the first row
    first = _run_starts(key[order])
    del key
    rows = order[first]
    rows.sort()
    return rows


def _distinct_pairs(box: list) -> tuple[np.ndarray, np.ndarray] | None:
    """The distinct (g, inc) of ``box = [g, inc]`` sorted by (g, inc), when the rows are in incident order
    (the network's incidence is): within each group that is the order of the groups' first rows, the only
    order the steps after depend on (a centre's sum), and which duplicate is kept does not matter when x, y
    and cell are per incident. One in-place sort of one int64 key, no permutation, and ``box`` is emptied
    once the key is made, so that the inputs can go (at a million people this step's peak is 26 MiB; the
    stable argsort of :func:`_first_rows` with its inputs held 53). None, ``box`` untouched, otherwise."""
    g, inc = box
    if not np.issubdtype(inc.dtype, np.integer) or len(inc) < 2 or not (inc[1:] >= inc[:-1]).all():
        return None
    g_lo, g_hi, lo, hi = int(g.min()), int(g.max()), int(inc[0]), int(inc[-1])
    span = hi - lo + 1
    if (g_hi - g_lo + 1) * span >= 2 ** 62:
        return None
    g_dtype, inc_dtype = g.dtype, inc.dtype
    key = _pair_key(g, g_lo, inc, lo, span)
    box.clear()
    del g, inc
    key.sort()                                 # equal keys are equal: no stability needed
    key = key[_run_starts(key)]
    gk = key // span
    key -= gk * span
    if lo:
        key += lo
    if g_lo:
        gk += g_lo
    return gk.astype(g_dtype), key.astype(inc_dtype)


def territories(grid, group: np.ndarray, inc: np.ndarray, x: np.ndarray, y: np.ndarray, *,
                share: float, names: np.ndarray | None = None, cell: np.ndarray | None = None,
                by_incident: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one row per group with the territory columns, the core cells: group, cell, incidents).

    ``group``, ``inc``, ``x``, ``y``: one entry per (member's offending involvement) with coordinates.
    ``group`` holds the groups' names, or with ``names`` (sorted, distinct) codes into it: the work is done
    on integer codes either way, ordered as the names are. ``cell``: the points' cells (``grid.cell_of(x,
    y)``) when already known. With ``by_incident``, ``inc`` holds integer indexes into ``x``, ``y`` (and
    ``cell``), which are then one entry per incident: no copy of the coordinates per involvement."""
    if names is None:
        group, names = pd.factorize(np.asarray(group, dtype=object), sort=True)
    names = np.asarray(names, dtype=object)
    g = np.asarray(group)
    if not np.issubdtype(g.dtype, np.integer):
        g = g.astype(np.int64)
    inc = np.asarray(inc)
    empty = (pd.DataFrame(columns=["group", *TERRITORY_COLUMNS]), pd.DataFrame(columns=["group", "cell", "incidents"]))
    if not len(g):
        return empty
    # The steps below replace a DataFrame (group, inc, x, y), drop_duplicates, groupby (group, cell) and a
    # merge with the core cells: at a million people (1.7M involvements) the places analysis peaked in them
    # at 366 MiB of tracked allocations (memray); with these steps it peaks at 99 MiB.
    del group
    box = [g, inc]                             # an incident counts once per group
    del g, inc
    pairs = _distinct_pairs(box) if by_incident else None
    if pairs is not None:
        g, pt = pairs
        del pairs
    else:
        g, inc = box
        del box
        rows = _first_rows(g, inc)
        g = g[rows]
        pt = inc[rows] if by_incident else rows    # each row's point in x, y (and cell)
        del rows, inc
    c = np.asarray(cell)[pt] if cell is not None else grid.cell_of(np.asarray(x)[pt], np.asarray(y)[pt])
    ok = c >= 0
    if not ok.all():
        g, pt, c = g[ok], pt[ok], c[ok]
    del ok
    if not len(g):
        return empty
    # incidents per (group, cell), sorted by (group, cell): a stable sort of one int64 key. There are nearly
    # as many (group, cell) pairs as rows (0.9M of 1.2M at a million people): the arrays per pair are int32
    # and each goes once used.
    n_cells = int(grid.n_cells)
    key = _pair_key(g, 0, c, 0, n_cells)
    del c
    order = np.argsort(key, kind="stable").astype(np.int32)     # int32: fewer than 2**31 rows
    key = key[order]
    start = np.flatnonzero(_run_starts(key))
    key = key[start]
    count = np.diff(np.r_[start, len(order)]).astype(np.int32)
    del start
    ug = key // n_cells
    key -= ug * n_cells
    ug = ug.astype(np.int32)                   # each pair's group (ascending) and cell
    uc = key.astype(np.int32)
    del key
    # per group: most incidents first, ties by cell; the cells until the share is reached are its core
    by = np.lexsort((uc, -count, ug)).astype(np.int32)      # ug is sorted: the groups' blocks stay put
    gstart = np.flatnonzero(np.r_[True, ug[1:] != ug[:-1]])
    size = np.diff(np.r_[gstart, len(ug)])
    before = count[by]                         # int32: the sums are at most the rows
    np.cumsum(before, out=before)              # in place (np.cumsum of int32 made two int64 arrays)
    tot = before[np.r_[gstart[1:], len(ug)] - 1].astype(np.int64)
    tot[1:] -= tot[:-1].copy()                 # incidents per group
    before -= count[by]
    before -= np.repeat(before[gstart], size)
    is_core = before < np.repeat(share * tot, size)
    del before, size
    n_core = np.add.reduceat(is_core.astype(np.int64), gstart)
    groups = ug[gstart]
    first = by[is_core]                        # the core cells in their order (the frame is made last)
    core_g, core_c, core_n = ug[first], uc[first], count[first]
    del first, ug, uc
    # the rows in core cells, in their first order (the centre's mean adds them in the same order as the
    # merge did, so its floating-point sums are the same)
    u_core = np.empty(len(by), dtype=bool)
    u_core[by] = is_core
    del by, is_core
    in_core = np.empty(len(order), dtype=bool)
    in_core[order] = np.repeat(u_core, count)
    del order, u_core, count
    sel = np.flatnonzero(in_core)
    del in_core
    ps = pt[sel]
    del pt
    gs = g[sel]
    del g, sel
    xy = np.empty((2, len(ps)))                # one block for the frame, no copy
    np.take(np.asarray(x, float), ps, out=xy[0])
    np.take(np.asarray(y, float), ps, out=xy[1])
    del ps
    cm = pd.DataFrame(xy.T, columns=["x", "y"], copy=False).groupby(gs, sort=True).mean()
    del xy, gs
    has = n_core > 0
    gg = groups[has]
    lat, lon = grid.unproject(cm["x"].to_numpy(), cm["y"].to_numpy())
    core = pd.DataFrame({"group": names[core_g], "cell": core_c.astype(np.int64),
                         "incidents": core_n.astype(np.int64)})
    del core_g, core_c, core_n
    out = pd.DataFrame({"group": names[gg], "territory_lat": np.round(lat, 6),
                        "territory_lon": np.round(lon, 6),
                        "territory_incidents": tot[has].astype(np.int64),
                        "territory_cells": n_core[has].astype(np.int64)})
    out["territory_km2"] = np.round(out["territory_cells"] * (grid.cell_m / 1000.0) ** 2, 6)
    return out.reset_index(drop=True), core
