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


def territories(grid, group: np.ndarray, inc: np.ndarray, x: np.ndarray, y: np.ndarray, *,
                share: float, names: np.ndarray | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one row per group with the territory columns, the core cells: group, cell, incidents).

    ``group``, ``inc``, ``x``, ``y``: one entry per (member's offending involvement) with coordinates.
    ``group`` holds the groups' names, or with ``names`` (sorted, distinct) codes into it: the work is done
    on integer codes either way, ordered as the names are."""
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
    core = per[before < share * tot].reset_index(drop=True)         # cells until the share is reached
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
