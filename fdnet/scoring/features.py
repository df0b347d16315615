"""Per-person features: the values the score's components are computed from.

Every feature is a count or a measure a person can check against the
records (docs/policy.md lists them):

- own record: ``offending``, ``violent_offending``, ``gun_offending`` (an
  offending role in a shooting), ``recent_offending`` (offending in the last
  ``features.recent_days``), ``shooting_victimization``;
- network position: ``degree`` (distinct co-offenders), ``core_number``
  (the person sits in a k-core of this k);
- exposure to gun violence: ``exposure_1`` / ``exposure_2`` (shooting
  victims at co-offending distance 1 / 2), ``exposure_decayed`` (victims at
  distance 1 weighted by how recent their shooting was), ``shooter_exposure``
  (co-offenders who were suspects in a shooting), ``contagion_risk`` (the
  contagion model's hazard of being shot, per 1,000 people per year);
- group heat: ``group_violence`` (shootings in the last
  ``features.group_recent_days`` with a member of the person's group as victim
  or suspect) and ``group_conflicts`` (the group's active conflicts);
- ``age`` on the as-of date (NaN when unknown).

Counts are taken over the incidence inside the window (one entry per person
and incident, roles OR-ed), so an incident counts once per person however
many offending roles they held in it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..graph.exposure import exposure_counts
from ..graph.layers import FLAG_OFFENDING, FLAG_VICTIM, Network

FEATURES = ("offending", "violent_offending", "gun_offending", "recent_offending", "shooting_victimization",
            "degree", "core_number", "exposure_1", "exposure_2", "exposure_decayed", "shooter_exposure",
            "contagion_risk", "group_violence", "group_conflicts", "age")


def group_shooting_pairs(net: Network, primary: np.ndarray, since_day: int) -> pd.DataFrame:
    """(group, inc) pairs, sorted: the shooting incidents (indices) since ``since_day`` with a member
    of the group as victim or suspect; an incident counts once per group however many members it involved.

    A member is a network person whose primary group is the group.
    """
    I = net.incidence
    sh = net.shooting_incidents()
    m = sh[I.inc] & ((I.flags & (FLAG_OFFENDING | FLAG_VICTIM)) != 0) & (net.inc_day[I.inc] >= since_day)
    g = np.asarray(primary, dtype=object)[I.person[m]]
    inc = I.inc[m]
    keep = g != ""
    df = pd.DataFrame({"group": g[keep], "inc": inc[keep].astype(np.int64)}).drop_duplicates()
    return df.sort_values(["group", "inc"], kind="stable").reset_index(drop=True)


def group_shootings_dict(pairs: pd.DataFrame) -> dict[str, np.ndarray]:
    """:func:`group_shooting_pairs` as {group: sorted incident indices} (for one-person lookups)."""
    g = pairs["group"].to_numpy(dtype=object)
    inc = pairs["inc"].to_numpy(dtype=np.int64)
    if not len(g):
        return {}
    starts = np.flatnonzero(np.concatenate([[True], g[1:] != g[:-1]]))
    return dict(zip(g[starts].tolist(), np.split(inc, starts[1:]) if len(starts) > 1 else [inc]))


def group_shootings(net: Network, primary: np.ndarray, since_day: int) -> dict[str, np.ndarray]:
    """Per group: the shooting incidents (indices) since ``since_day`` with a member as victim or suspect.

    A member is a network person whose primary group is the group; an
    incident counts once per group however many members it involved.
    """
    return group_shootings_dict(group_shooting_pairs(net, primary, since_day))


def own_victimization_pairs(net: Network, primary: np.ndarray, since_day: int) -> pd.DataFrame:
    """(person, inc) pairs: group shootings that count for a person's group only because *they* were shot.

    ``group_violence`` counts for enforcement, so a person's own victimization
    must not raise it: a shooting in which the person was the group's only
    member involved, and involved only as a victim, is left out of their count
    (and of the evidence behind it).
    """
    I = net.incidence
    sh = net.shooting_incidents()
    m = sh[I.inc] & ((I.flags & (FLAG_OFFENDING | FLAG_VICTIM)) != 0) & (net.inc_day[I.inc] >= since_day)
    g = primary[I.person[m]]
    keep = g != ""
    df = pd.DataFrame({"group": g[keep], "inc": I.inc[m][keep], "person": I.person[m][keep],
                       "victim_only": ((I.flags[m][keep] & FLAG_OFFENDING) == 0)})
    if df.empty:
        return pd.DataFrame({"person": np.array([], dtype=np.int64), "inc": np.array([], dtype=np.int64)})
    k = df.groupby(["group", "inc"])["person"].transform("nunique")
    return df[(k == 1) & df["victim_only"]].drop_duplicates(["group", "inc", "person"])[["person", "inc"]]


def compute_features(net: Network, analytics: pd.DataFrame | None = None, *, primary: np.ndarray | None = None,
                     conflicts: pd.DataFrame | None = None, age: np.ndarray | None = None,
                     recent_days: int = 180, group_recent_days: int = 365) -> pd.DataFrame:
    """One row per network person (index = person index), one column per feature.

    Also: ``last_offending_day`` and ``last_victimization_day`` (-1 if none).
    Network measures are taken from ``analytics`` (the graph stage's
    per-person frame) when given; without it only degree and exposure counts
    are computed and the other network features are 0.

    >>> import pandas as pd
    >>> from fdnet.graph.layers import build_network
    >>> inc = pd.DataFrame({"incident_id": ["I1", "I2"], "day": [19000, 19100],
    ...                     "gun": [False, True], "violent": [False, True]})
    >>> inv = pd.DataFrame({"incident_id": ["I1", "I1", "I2", "I2"], "person_id": ["A", "B", "B", "C"],
    ...                     "role": ["suspect", "arrestee", "victim", "offender"]})
    >>> net = build_network(inc, inv, as_of_day=19120, window_days=365, half_life_days=365)
    >>> f = compute_features(net, recent_days=30)
    >>> f[["offending", "recent_offending", "shooting_victimization", "exposure_1"]].to_numpy().tolist()
    [[1, 0, 0, 1], [1, 0, 1, 0], [1, 1, 0, 0]]
    """
    rc = net.role_counts()
    co = net.layers["co_offending"]
    n = net.n_persons
    I = net.incidence
    off = (I.flags & FLAG_OFFENDING) != 0
    recent = off & (net.inc_day[I.inc] > net.as_of_day - recent_days)
    zeros = np.zeros(n)
    if analytics is not None:
        e1, e2 = analytics["exposure_1"].to_numpy(), analytics["exposure_2"].to_numpy()
    else:
        e1, e2 = exposure_counts(co.indptr, co.indices, net.shooting_victims())

    def col(name, default=zeros):
        return analytics[name].to_numpy() if analytics is not None and name in analytics else default

    gv = np.zeros(n, dtype=np.int64)
    gc = np.zeros(n, dtype=np.int64)
    if primary is not None:
        cnt = group_shooting_pairs(net, primary, net.as_of_day - group_recent_days + 1)["group"].value_counts()
        gv = pd.Series(primary).map(cnt).fillna(0).to_numpy(dtype=np.int64)
        own = own_victimization_pairs(net, primary, net.as_of_day - group_recent_days + 1)
        # not in place: pandas may hand back a read-only array (copy-on-write; an empty frame does)
        gv = gv - np.bincount(own["person"].to_numpy(dtype=np.int64), minlength=n).astype(np.int64)
        if conflicts is not None and len(conflicts):
            c = conflicts[conflicts["relation"] == "conflict"]
            ncon = pd.concat([c["group_a"], c["group_b"]]).value_counts()
            ncon = ncon[ncon.index != ""]
            gc = pd.Series(primary).map(ncon).fillna(0).to_numpy(dtype=np.int64)
    return pd.DataFrame({
        "offending": rc["offending"],
        "violent_offending": rc["violent_offending"],
        "gun_offending": rc["gun_offending"],
        "recent_offending": np.bincount(I.person[recent], minlength=n).astype(np.int32),
        "shooting_victimization": rc["shooting_victimization"],
        "degree": co.degree(),
        "core_number": col("core_number").astype(np.int64),
        "exposure_1": e1,
        "exposure_2": e2,
        "exposure_decayed": np.round(col("exposure_decayed_1"), 6),
        "shooter_exposure": col("shooter_exposure_1").astype(np.int64),
        "contagion_risk": np.round(col("contagion_hazard") * 1000.0, 6),
        "group_violence": gv,
        "group_conflicts": gc,
        "age": age if age is not None else np.full(n, np.nan),
        "last_offending_day": rc["last_offending_day"],
        "last_victimization_day": rc["last_victimization_day"],
    })
