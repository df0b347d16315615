"""Per-person features from the network, and the evidence behind each.

Features are counted over the incidence inside the window (one entry per
person and incident, roles OR-ed), so an incident counts once per person
however many offending roles they held in it.
"""
from __future__ import annotations

import pandas as pd

from ..graph.exposure import exposure_counts
from ..graph.layers import Network

FEATURES = ("offending", "violent_offending", "gun_offending", "shooting_victimization",
            "degree", "exposure_1", "exposure_2")


def compute_features(net: Network, analytics: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per network person (index = person index), one column per feature.

    Also: ``last_offending_day`` and ``last_victimization_day`` (-1 if none).
    Degree and exposure are taken from ``analytics`` (the graph stage's
    per-person frame) when given, computed here otherwise.
    """
    rc = net.role_counts()
    co = net.layers["co_offending"]
    if analytics is not None:
        e1, e2 = analytics["exposure_1"].to_numpy(), analytics["exposure_2"].to_numpy()
    else:
        e1, e2 = exposure_counts(co.indptr, co.indices, net.shooting_victims())
    return pd.DataFrame({
        "offending": rc["offending"],
        "violent_offending": rc["violent_offending"],
        "gun_offending": rc["gun_offending"],
        "shooting_victimization": rc["shooting_victimization"],
        "degree": co.degree(),
        "exposure_1": e1,
        "exposure_2": e2,
        "last_offending_day": rc["last_offending_day"],
        "last_victimization_day": rc["last_victimization_day"],
    })
