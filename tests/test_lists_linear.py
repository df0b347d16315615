"""Lists and explanations built column-wise equal the one-row references they replaced.

The lists' reason sentences are built per component over whole columns, the
call-in's group statistics from one sort by group, the explanations from one
gather per component. Each is checked here against the plain per-row (or
per-group, per-person) definition on a small synthetic city and on hostile
hand-made rows.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from fdnet.api import study
from fdnet.lists import build
from fdnet.lists.reach import induced_csr
from fdnet.scoring.features import FEATURES
from fdnet.scoring.policy import Policy, policy_from_dict
from fdnet.synth import generate_city, write_city


@pytest.fixture(scope="module")
def st(tmp_path_factory):
    d = tmp_path_factory.mktemp("city")
    write_city(generate_city(n_people=2500, seed=11), d)
    return study(d)


@pytest.fixture(scope="module")
def lists(st):
    rec, net = st.records, st.network
    return build.build_lists(st.scores, st.policy, rec.as_of_day, co_offending=net.layers["co_offending"],
                             persons=rec.persons, as_of=rec.as_of)


def random_rows(n: int, seed: int) -> pd.DataFrame:
    """Rows with every component scoring or not, NaN values, ties in points, juveniles, odd dates."""
    rng = np.random.default_rng(seed)
    df = {}
    for name in FEATURES:
        v = rng.integers(0, 4, n).astype(float)
        if name in ("exposure_decayed", "contagion_risk"):
            v = rng.random(n) * 3
        v[rng.random(n) < 0.1] = np.nan
        df[name] = v
        df[f"points_{name}"] = rng.choice([0.0, 0.0, 1.0, 2.5, 3.0, 1e-7, 12.125], n)
    df["last_offending_date"] = rng.choice(["", "2025-01-02"], n)
    df["last_victimization_date"] = rng.choice(["", "2024-12-31"], n)
    df["juvenile"] = rng.random(n) < 0.3
    df["supervision"] = rng.choice(["", "none", "parole", "probation"], n)
    df["supervision_end"] = rng.choice(["", "2025-01-01", "2026-01-01"], n)
    df["violent_offending"] = rng.integers(0, 3, n)
    df["gun_offending"] = rng.integers(0, 3, n)
    return pd.DataFrame(df)


@pytest.mark.parametrize("juveniles", ["flag", "exclude"])
def test_reason_columns_equal_the_one_row_sentences(juveniles):
    pol = policy_from_dict({"guardrails": {"juveniles": juveniles},
                            "components": {"age": {"points": [0, 2, 1], "bins": [18, 25], "counts_for":
                                                   ["enforcement", "service"], "justification":
                                                   "the partnership reviewed this weighting by age in writing"}}})
    df = random_rows(400, 3)
    rows = list(df.itertuples())
    assert build.enforcement_reasons(df, pol).tolist() == [build.enforcement_reason(r, pol) for r in rows]
    assert build.service_reasons(df, pol).tolist() == [build.service_reason(r, pol) for r in rows]
    for as_of in ("2025-06-30", None):
        assert build.legal_risks(df, as_of).tolist() == [build.legal_risk(r, as_of) for r in rows]
    assert build.reasons(df.iloc[:0], pol, "enforcement").tolist() == []


def test_list_reasons_equal_the_one_row_sentences(st, lists):
    pol = st.policy
    by_pid = st.scores.set_index("person_id")
    for name, fn in (("custom_notifications", build.enforcement_reason), ("service_referrals", build.service_reason)):
        df = lists[name]
        assert len(df)
        rows = by_pid.loc[df["person_id"]].reset_index()
        assert df["reasons"].tolist() == [fn(r, pol) for r in rows.itertuples()]
    ci = lists["call_in"]
    if len(ci):
        rows = by_pid.loc[ci["person_id"]].reset_index()
        tails = [build.enforcement_reason(r, pol) for r in rows.itertuples()]
        assert all(t.endswith(". " + e) for t, e in zip(ci["reasons"], tails))


def test_call_in_groups_are_the_per_group_definition(st, lists):
    """The groups chosen equal the plain loop over every group (members alive and free, counts read
    on the first member, at least one invitable member), sorted by shootings, conflicts, size, name."""
    s, rule = st.scores, st.policy.lists.call_in
    grp = s["group"].to_numpy(dtype=object)
    gone = s["deceased"].to_numpy(bool) | s["incarcerated"].to_numpy(bool)
    can = s["enforcement_eligible"].to_numpy(bool) & (s["enforcement_score"].to_numpy() >= rule.min_score)
    stats = []
    for g in sorted(set(grp) - {""}):
        members = np.flatnonzero((grp == g) & ~gone)
        if len(members) and can[members].any():
            k = members[0]
            gv, gc = int(s["group_violence"].iat[k]), int(s["group_conflicts"].iat[k])
            if gv > 0 or gc > 0:
                stats.append((-gv, -gc, -len(members), g))
    want = [g for *_, g in sorted(stats)[:rule.max_groups]]
    got = lists["call_in_groups"]["group"].tolist()
    assert got == want[:len(got)] and len(got) > 0
    for row in lists["call_in_groups"].itertuples():
        members = np.flatnonzero((grp == row.group) & ~gone)
        assert row.members == len(members)


def test_induced_csr_equals_scipy_slicing():
    rng = np.random.default_rng(5)
    n = 60
    a = sparse.random(n, n, density=0.1, random_state=7, format="csr")
    a = ((a + a.T) > 0).astype(np.int8).tocsr()
    a.setdiag(0)
    a.eliminate_zeros()
    a.sort_indices()
    for k in (0, 1, 7, 30, 60):
        members = rng.choice(n, size=k, replace=False)
        ip, ix = induced_csr(a.indptr, a.indices, members)
        sub = a[members][:, members].tocsr()
        sub.sort_indices()
        assert ip.tolist() == sub.indptr.tolist() and ix.tolist() == sub.indices.tolist()
