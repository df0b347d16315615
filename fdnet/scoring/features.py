"""Per-person features from the network, and the evidence behind each.

Features are counted over the incidence inside the window (one entry per
person and incident, roles OR-ed), so an incident counts once per person
however many offending roles they held in it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..graph.exposure import exposure_counts
from ..graph.layers import FLAG_OFFENDING, FLAG_VICTIM, Network

FEATURES = ("offending", "violent_offending", "gun_offending", "shooting_victimization",
            "degree", "exposure_1", "exposure_2")


def compute_features(net: Network, analytics: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per network person (index = person index), one column per feature.

    Also: ``last_offending_day`` and ``last_victimization_day`` (-1 if none).
    Degree and exposure are taken from ``analytics`` (the graph stage's
    per-person frame) when given, computed here otherwise.
    """
    I = net.incidence
    n = net.n_persons
    inc = I.inc
    off = (I.flags & FLAG_OFFENDING) != 0
    vic = (I.flags & FLAG_VICTIM) != 0
    shooting = net.shooting_incidents()
    person = I.person

    def count(mask):
        return np.bincount(person[mask], minlength=n).astype(np.int32)

    def last_day(mask):
        out = np.full(n, -1, dtype=np.int64)
        np.maximum.at(out, person[mask], net.inc_day[inc[mask]].astype(np.int64))
        return out

    co = net.layers["co_offending"]
    if analytics is not None:
        e1, e2 = analytics["exposure_1"].to_numpy(), analytics["exposure_2"].to_numpy()
    else:
        e1, e2 = exposure_counts(co.indptr, co.indices, net.shooting_victims())
    shot = vic & shooting[inc]
    return pd.DataFrame({
        "offending": count(off),
        "violent_offending": count(off & net.inc_violent[inc]),
        "gun_offending": count(off & shooting[inc]),
        "shooting_victimization": count(shot),
        "degree": co.degree(),
        "exposure_1": e1,
        "exposure_2": e2,
        "last_offending_day": last_day(off),
        "last_victimization_day": last_day(shot),
    })
