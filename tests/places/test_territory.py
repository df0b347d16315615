"""territories() with numpy keys against the DataFrame formulation it replaced (drop_duplicates, groupby,
merge), on random inputs: the same frames to the last bit, per row and by incident."""
import numpy as np
import pandas as pd
import pytest

from fdnet.places.grid import Grid
from fdnet.places.territory import TERRITORY_COLUMNS, territories


def _dataframe_territories(grid, group, inc, x, y, *, share, names=None):
    """The formulation before the numpy one (commit 078afbe), kept here as the reference."""
    if names is None:
        group, names = pd.factorize(np.asarray(group, dtype=object), sort=True)
    names = np.asarray(names, dtype=object)
    df = pd.DataFrame({"group": np.asarray(group, dtype=np.int64), "inc": inc, "x": x, "y": y}) \
        .drop_duplicates(["group", "inc"])
    df["cell"] = grid.cell_of(df["x"].to_numpy(), df["y"].to_numpy())
    df = df[df["cell"] >= 0]
    if not len(df):
        return (pd.DataFrame(columns=["group", *TERRITORY_COLUMNS]),
                pd.DataFrame(columns=["group", "cell", "incidents"]))
    per = df.groupby(["group", "cell"], sort=True).size().rename("incidents").reset_index()
    per = per.sort_values(["group", "incidents", "cell"], ascending=[True, False, True], kind="stable")
    tot = per.groupby("group", sort=False)["incidents"].transform("sum")
    before = per.groupby("group", sort=False)["incidents"].cumsum() - per["incidents"]
    core = per[before < share * tot].reset_index(drop=True)
    m = df.merge(core[["group", "cell"]], on=["group", "cell"])
    c = m.groupby("group", sort=True).agg(x=("x", "mean"), y=("y", "mean"))
    lat, lon = grid.unproject(c["x"].to_numpy(), c["y"].to_numpy())
    n_inc = df.groupby("group", sort=True).size()
    n_cells = core.groupby("group", sort=True).size()
    core["group"] = names[core["group"].to_numpy()]
    out = pd.DataFrame({"group": names[c.index.to_numpy()], "territory_lat": np.round(lat, 6),
                        "territory_lon": np.round(lon, 6),
                        "territory_incidents": n_inc.reindex(c.index).to_numpy().astype(np.int64),
                        "territory_cells": n_cells.reindex(c.index).to_numpy().astype(np.int64)})
    out["territory_km2"] = np.round(out["territory_cells"] * (grid.cell_m / 1000.0) ** 2, 6)
    return out.reset_index(drop=True), core


def _same(a, b):
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    for k in a.columns:     # to the last bit, not within a tolerance
        if a[k].dtype.kind == "f":
            assert np.array_equal(a[k].to_numpy(), b[k].to_numpy(), equal_nan=True), k


@pytest.mark.parametrize("seed", range(12))
def test_territories_match_the_dataframe_formulation(seed):
    rng = np.random.default_rng(seed)
    n_inc = int(rng.integers(1, 3000))
    n_groups = int(rng.integers(1, 60))
    n = int(rng.integers(1, 8000))
    lat0, lon0 = 41.8, -87.7
    ilat = lat0 + rng.normal(0, 0.02, n_inc).round(int(rng.integers(3, 7)))     # rounding: shared cells, ties
    ilon = lon0 + rng.normal(0, 0.02, n_inc).round(int(rng.integers(3, 7)))
    # the grid covers only some incidents when inner: points outside it are dropped (cell -1)
    inner = seed % 3 == 0
    box = np.abs(ilat - lat0) < 0.02 if inner else np.ones(n_inc, bool)
    grid = Grid.covering(ilat[box], ilon[box], cell_m=float(rng.choice([100, 250, 500])))
    ix, iy = grid.project(ilat, ilon)
    inc = np.sort(rng.integers(0, n_inc, n)) if seed % 2 else rng.integers(0, n_inc, n)
    group = rng.integers(0, n_groups, n)
    share = float(rng.choice([0.5, 0.8, 1.0, 0.3]))
    names = np.array([f"G{k:03d}" for k in range(n_groups)], dtype=object)
    ref_t, ref_c = _dataframe_territories(grid, group, inc, ix[inc], iy[inc], share=share, names=names)
    for kw in ({}, {"cell": grid.cell_of(ix[inc], iy[inc])}):
        t, c = territories(grid, group, inc, ix[inc], iy[inc], share=share, names=names, **kw)
        _same(t, ref_t)
        _same(c, ref_c)
    for kw in ({}, {"cell": grid.cell_of(ix, iy)}):
        t, c = territories(grid, group.astype(np.int32), inc.astype(np.int32), ix, iy, share=share, names=names,
                           by_incident=True, **kw)
        _same(t, ref_t)
        _same(c, ref_c)
    # by name, with the names found from the groups
    t, c = territories(grid, names[group], inc, ix[inc], iy[inc], share=share)
    ref_t, ref_c = _dataframe_territories(grid, names[group], inc, ix[inc], iy[inc], share=share)
    _same(t, ref_t)
    _same(c, ref_c)


def test_territories_rows_differing_within_an_incident_keep_the_first():
    """Per row, an (group, incident) seen twice keeps its first row's point, as drop_duplicates did."""
    rng = np.random.default_rng(5)
    grid = Grid.covering(np.array([41.7, 41.9]), np.array([-87.8, -87.6]), cell_m=500)
    n = 4000
    x = rng.uniform(0, 15000, n) + grid.x0
    y = rng.uniform(0, 20000, n) + grid.y0
    inc = rng.integers(0, 700, n)
    group = rng.integers(0, 9, n)
    for share in (0.5, 1.0):
        ref = _dataframe_territories(grid, group, inc, x, y, share=share, names=np.arange(9).astype(str))
        got = territories(grid, group, inc, x, y, share=share, names=np.arange(9).astype(str))
        _same(got[0], ref[0])
        _same(got[1], ref[1])


def test_territories_empty_and_outside():
    grid = Grid.covering(np.array([41.7, 41.71]), np.array([-87.8, -87.79]), cell_m=500)
    for n in (0, 3):
        x = np.full(n, grid.x0 - 1e6)
        t, c = territories(grid, np.array(["A"] * n, dtype=object), np.arange(n), x, x, share=0.5)
        assert len(t) == 0 and list(t.columns) == ["group", *TERRITORY_COLUMNS]
        assert len(c) == 0 and list(c.columns) == ["group", "cell", "incidents"]


class _Net:
    def __init__(self, ids):
        import pyarrow as pa
        self.person_ids = np.asarray(ids, dtype=object)
        self._arrow = pa.array(self.person_ids, type=pa.string())

    def person_ids_arrow(self):
        return self._arrow


@pytest.mark.parametrize("case", ["subset", "all", "object_index", "int_index", "blank_and_missing"])
def test_group_codes_match_the_reindex(case):
    """_group_codes against the reindex to every person and factorize it replaced."""
    from fdnet.places import _group_codes
    rng = np.random.default_rng(3)
    ids = np.array([f"P{k:05d}" for k in range(500)], dtype=object)
    groups = np.array([f"g{k}" for k in rng.integers(0, 40, 500)], dtype=object)
    take = np.sort(rng.choice(500, 180, replace=False)) if case != "all" else np.arange(500)
    vals = groups[take].copy()
    if case == "blank_and_missing":
        vals[::7] = ""
        vals[3::11] = None
    index = pd.Index(ids[take], dtype=object) if case == "object_index" else pd.Index(ids[take])
    if case == "int_index":
        ids = np.arange(500)
        index = pd.Index(take)
    primary = pd.Series(vals, index=index, dtype=object).iloc[rng.permutation(len(take))]
    net = _Net(ids.astype(str)) if case != "int_index" else type("N", (), {"person_ids": ids,
                                                                            "person_ids_arrow": lambda s: None})()
    code, names = _group_codes(net, primary)
    old_code, old_names = pd.factorize(primary.reindex(net.person_ids).fillna("").to_numpy(dtype=object), sort=True)
    old = np.asarray(old_names, dtype=object)[old_code]
    got = np.where(code >= 0, names[np.maximum(code, 0)], "")
    assert code.dtype == np.int32 and got.tolist() == old.tolist()
    assert names.tolist() == [n for n in old_names if n != ""]
