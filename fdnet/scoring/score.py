"""The additive points score, list scores and the enforcement guardrails.

Each component turns its feature value into points (a capped linear rule or
a scorecard table, :class:`fdnet.policy.Component`); the score is
their sum, so every point on a list traces to one component and its
evidence. ``risk`` maps the score to an estimated probability of shooting or
being shot within the policy's calibration horizon.

Two list scores are derived from the same components, by each component's
``counts_for``:

- the **enforcement score** (call-in, custom notifications) never includes a
  victimization component (the policy refuses it): being shot, or being at
  risk of being shot, never moves anyone up an enforcement list;
- the **service score** (service referrals) counts victimization and exposure
  to it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .features import FEATURES
from ..policy import VICTIMIZATION_COMPONENTS, Policy

def components_for(policy: Policy, kind: str) -> list[str]:
    """Components that add to the ``kind`` ("enforcement" or "service") score."""
    return [n for n in FEATURES if kind in policy.components[n].counts_for]


def points(features: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """Points per component, one column ``points_<name>`` each."""
    return pd.DataFrame({f"points_{name}": policy.components[name].score(features[name].to_numpy(dtype=float))
                         for name in FEATURES}, index=features.index)


def risk_of(score: np.ndarray, policy: Policy) -> np.ndarray:
    """Estimated probability of shooting involvement within the calibration horizon."""
    c = policy.calibration
    return np.round(1.0 / (1.0 + np.exp(-(c.intercept + c.slope * np.asarray(score, dtype=float)))), 6)


def age_on(persons: pd.DataFrame | None, person_ids: np.ndarray, as_of: str) -> np.ndarray:
    """Age in whole years on ``as_of`` (NaN when unknown, or when the birth is after ``as_of``).

    ``birth_date`` wins over ``birth_year``; a birth year alone gives the
    conservative lower bound ``year(as_of) - birth_year - 1``.

    >>> persons = pd.DataFrame({"person_id": ["a", "b", "c", "d"], "birth_date": ["2008-07-01", "", "2030-01-01", ""],
    ...                         "birth_year": [np.nan, 1990, np.nan, np.nan]})
    >>> age_on(persons, np.array(["a", "b", "c", "d", "zz"]), "2025-06-30").tolist()
    [16.0, 34.0, nan, nan, nan]
    """
    age = np.full(len(person_ids), np.nan)
    if persons is None:
        return age
    pr = persons.drop_duplicates("person_id").set_index("person_id")
    y, m, d = (int(x) for x in as_of.split("-"))
    if "birth_date" in pr:
        bd = pr["birth_date"].reindex(person_ids).fillna("").astype(str).str[:10]
        parts = bd.str.extract(r"^(\d{4})-(\d{2})-(\d{2})$").astype(float)
        by, bm, bdd = (parts[k].to_numpy() for k in range(3))
        before = (m < bm) | ((m == bm) & (d < bdd))       # birthday not yet reached in as_of's year
        age = np.where(np.isnan(by), np.nan, y - by - before.astype(float))
    if "birth_year" in pr:
        byr = pd.to_numeric(pr["birth_year"].reindex(person_ids), errors="coerce").to_numpy(dtype=float)
        fill = np.isnan(age) & ~np.isnan(byr)
        # birth date unknown within the year: the age reached during as_of's year, minus
        # one unless as_of is the last day (a conservative lower bound is y - by - 1)
        age[fill] = np.where(byr[fill] > y, np.nan, np.maximum(y - byr[fill] - 1, 0))
    age[age < 0] = np.nan                                 # born after as_of: no age (records report it)
    return age


def _iso_or_empty(days: np.ndarray) -> pd.Series:
    """ISO dates of days since 1970-01-01, "" for a negative day (none), as a text column: each distinct day
    formatted once in Arrow (formatting a million datetimes with NumPy took 0.5 s a column).

    >>> _iso_or_empty(np.array([19000, -1, 0])).tolist()
    ['2022-01-08', '', '1970-01-01']
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    from ..graph.layers import iso_days
    days = np.asarray(days, dtype=np.int64)
    text = pc.if_else(pa.array(days >= 0), iso_days(np.maximum(days, 0)), pa.scalar("", pa.string()))
    return text.to_pandas()         # pandas' own "str" column over the Arrow strings: no Python object per day


def score_table(person_ids: np.ndarray, features: pd.DataFrame, policy: Policy,
                persons: pd.DataFrame | None, primary_group: pd.Series, as_of: str,
                analytics: pd.DataFrame | None = None) -> pd.DataFrame:
    """scores.csv: one row per network person, sorted by person_id.

    ``analytics`` (the graph stage's per-person frame, same order) adds its
    columns (centrality, exposure variants, contagion hazard) after the
    score components.
    """
    pts = points(features, policy)
    enf_cols = [f"points_{n}" for n in components_for(policy, "enforcement")]
    svc_cols = [f"points_{n}" for n in components_for(policy, "service")]
    assert not any(c[len("points_"):] in VICTIMIZATION_COMPONENTS for c in enf_cols)
    df = pd.DataFrame({"person_id": person_ids})
    # Columns taken over from the features, points and analytics frames are assigned as Series on the same
    # RangeIndex, which pandas' copy-on-write shares instead of copying (``.to_numpy()`` copied them all:
    # about 200 MB more at the peak of a million-person run, and the analytics' columns stayed twice in
    # memory for the rest of the run).
    def take(frame: pd.DataFrame, col: str):
        return frame[col] if frame.index.equals(df.index) else frame[col].to_numpy()
    df["score"] = np.round(pts.sum(axis=1).to_numpy(), 6)
    df["probability_shooting"] = risk_of(df["score"].to_numpy(), policy)
    df["group"] = primary_group.reindex(person_ids).fillna("").to_numpy(dtype=object)
    for n in ("degree", "exposure_1", "exposure_2"):
        df[n] = take(features, n)
    for n in FEATURES:
        if n not in df:
            df[n] = take(features, n)
    for c in pts.columns:
        df[c] = take(pts, c)
    df["enforcement_score"] = np.round(pts[enf_cols].sum(axis=1).to_numpy(), 6)
    df["service_score"] = np.round(pts[svc_cols].sum(axis=1).to_numpy(), 6)
    for col, src in (("last_offending_date", "last_offending_day"),
                     ("last_victimization_date", "last_victimization_day")):
        df[col] = _iso_or_empty(features[src].to_numpy())
    # guardrails
    g = policy.guardrails
    age = features["age"].to_numpy(dtype=float) if "age" in features else age_on(persons, person_ids, as_of)
    juvenile = age < 18
    deceased = np.zeros(len(df), bool)
    incarcerated = np.zeros(len(df), bool)
    supervision = np.full(len(df), "", dtype=object)
    if persons is not None:
        pr = persons.set_index("person_id")
        if "deceased" in pr:
            deceased = pr["deceased"].reindex(person_ids).fillna(False).to_numpy(dtype=bool)
        if "incarcerated" in pr:
            incarcerated = pr["incarcerated"].reindex(person_ids).fillna(False).to_numpy(dtype=bool)
        if "supervision" in pr:
            supervision = pr["supervision"].reindex(person_ids).fillna("").to_numpy(dtype=object)
    df["supervision"] = supervision
    df["juvenile"] = juvenile
    reasons = np.full(len(df), "", dtype=object)

    def exclude(mask, why):
        sel = mask & (reasons == "")
        reasons[sel] = why

    off = features["offending"].to_numpy()
    exclude((off == 0) & (features["shooting_victimization"].to_numpy() > 0),
            "victim only: no offending role in the window")
    exclude(off < g.min_offending_incidents,
            "no incident in an offending role in the window" if g.min_offending_incidents == 1 else
            f"fewer than {g.min_offending_incidents} incidents in an offending role in the window")
    if g.exclude_deceased:
        exclude(deceased, "recorded as deceased")
    if g.exclude_incarcerated:
        exclude(incarcerated, "recorded as incarcerated")
    if g.juveniles == "exclude":
        exclude(juvenile, "under 18 on the as-of date (policy excludes juveniles)")
    df["enforcement_eligible"] = reasons == ""
    df["enforcement_exclusion"] = reasons
    df["deceased"] = deceased
    df["incarcerated"] = incarcerated
    if analytics is not None:
        for c in analytics.columns:
            if c not in df.columns:
                df[c] = take(analytics, c)
    return df
