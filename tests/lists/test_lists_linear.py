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
from fdnet.policy import Policy, policy_from_dict
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


# ------------------------------------------------------------------------------------------
# explanations: the column-wise lines against the one-person Explainer
# ------------------------------------------------------------------------------------------

def listed_of(lists) -> dict[str, list[str]]:
    listed: dict[str, list[str]] = {}
    for name in ("call_in", "custom_notifications", "service_referrals"):
        for pid in lists[name]["person_id"]:
            listed.setdefault(pid, []).append(name)
    return listed


def test_explanation_lines_equal_the_one_person_explainer(st, lists):
    from fdnet.scoring.explain import Explainer, explain_listed
    rec, net = st.records, st.network
    lists = {k: v for k, v in lists.items() if k != "call_in_groups"}
    listed = listed_of(lists)
    # also explain a few people who are not listed, on every list, to reach every branch
    others = st.scores.sort_values("score", ascending=False)["person_id"].iloc[:40].tolist()
    victims = st.scores.loc[st.scores["shooting_victimization"] > 0, "person_id"].iloc[:20].tolist()
    for pid in others + victims:
        listed.setdefault(pid, ["call_in", "custom_notifications", "service_referrals"])
    df = explain_listed(net, rec.involvements, st.scores, st.policy, listed, analytics=st.analytics,
                        persons=rec.persons, lists=lists)
    assert df["person_id"].tolist() == sorted(listed)
    ex = Explainer(net, rec.involvements, st.scores, st.policy, sorted(listed), analytics=st.analytics,
                   persons=rec.persons, lists=lists)
    kinds = set()
    for pid, line in zip(df["person_id"], df["json"]):
        want = json.dumps(ex.explain(pid, listed[pid]), ensure_ascii=False, sort_keys=False)
        assert json.loads(line) == json.loads(want), pid
        assert line == want, pid                       # the same text, key order included
        obj = json.loads(line)
        for c in obj["components"]:
            if c["evidence"].get("paths") or c["evidence"].get("contributions") or c["evidence"].get("conflicts"):
                kinds.add(c["name"])
        kinds |= {v["leaves_because"] for v in obj["off_list"].values()}
    # the city exercises paths, contagion, conflicts and several leaving reasons
    assert {"exposure_1", "exposure_2", "shooter_exposure", "group_conflicts"} <= kinds, kinds
    assert len([k for k in kinds if k and k.startswith(("the ", "fewer"))]) >= 2, kinds


def test_explanation_lines_with_hostile_ids_and_no_persons(tmp_path):
    """IDs with quotes, backslashes, commas, control characters and non-ASCII text, no persons
    table: the text is still json.dumps's."""
    from fdnet.graph.layers import build_network
    from fdnet.scoring.explain import Explainer, explain_listed
    from fdnet.scoring.features import compute_features
    from fdnet.scoring.score import score_table
    inc = pd.DataFrame({"incident_id": ['I"1', "I\\2", "I\n3", "Ï4"], "day": [19000, 19100, 19150, 19160],
                        "gun": [False, True, True, False], "violent": [True, True, True, False]})
    inv = pd.DataFrame({"incident_id": ['I"1', 'I"1', "I\\2", "I\\2", "I\n3", "I\n3", "Ï4", "Ï4"],
                        "person_id": ["a,\"b", "c\\d", "c\\d", "é\tf", "a,\"b", "g", "g", "c\\d"],
                        "role": ["offender", "suspect", "victim", "offender", "offender", "victim", "arrestee",
                                 "offender"]})
    net = build_network(inc, inv, as_of_day=19200, window_days=365, half_life_days=365)
    pol = Policy()
    scores = score_table(net.person_ids, compute_features(net), pol, None, pd.Series(dtype=object), "2022-07-26")
    listed = {p: ["custom_notifications", "service_referrals"] for p in net.person_ids}
    df = explain_listed(net, inv, scores, pol, listed)
    ex = Explainer(net, inv, scores, pol, list(net.person_ids))
    for pid, line in zip(df["person_id"], df["json"]):
        assert line == json.dumps(ex.explain(pid, listed[pid]), ensure_ascii=False), pid
    assert explain_listed(net, inv, scores, pol, {})["json"].tolist() == []


@pytest.mark.parametrize("variant", [
    {"guardrails": {"juveniles": "exclude", "min_offending_incidents": 2}, "contagion": {"enabled": False},
     "lists": {"call_in": {"method": "greedy"}}},
    {"features": {"recent_days": 60, "group_recent_days": 90}, "analytics": {"exposure_half_life_days": 30},
     "lists": {"service_referrals": {"victim_recent_days": 30, "min_score": 1}}},
])
def test_explanation_lines_equal_the_explainer_under_other_policies(tmp_path, variant):
    from fdnet.scoring.explain import Explainer, explain_listed
    write_city(generate_city(n_people=1200, seed=4), tmp_path)
    s = study(tmp_path, policy=variant)
    rec, net = s.records, s.network
    lists = build.build_lists(s.scores, s.policy, rec.as_of_day, co_offending=net.layers["co_offending"],
                              persons=rec.persons, as_of=rec.as_of)
    lists.pop("call_in_groups")
    listed = listed_of(lists)
    assert listed
    df = explain_listed(net, rec.involvements, s.scores, s.policy, listed, analytics=s.analytics,
                        persons=rec.persons, lists=lists)
    ex = Explainer(net, rec.involvements, s.scores, s.policy, sorted(listed), analytics=s.analytics,
                   persons=rec.persons, lists=lists)
    for pid, line in zip(df["person_id"], df["json"]):
        assert line == json.dumps(ex.explain(pid, listed[pid]), ensure_ascii=False), pid


def test_json_text_helpers_equal_json_dumps():
    from fdnet.scoring.explain_columns import _jfloat, _jnum, _jstr
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(size=300) * 10.0 ** rng.integers(-12, 18, 300), [0.0, -0.0, 1.0, 1e16, 1e-5,
                        123456789012345.0, 0.1 + 0.2, 1 / 3, np.nan, np.inf, -np.inf, 2.5e-7, 1e22]])
    assert _jfloat(x).tolist() == [json.dumps(float(v)) for v in x]
    from fdnet.scoring.explain import _num
    assert _jnum(x).tolist() == [json.dumps(_num(v)) for v in x]
    alphabet = list('ab"\\\n\t\x00\x1f\x7fé€😀 ;,') + ["\u2028"]
    strs = ["".join(rng.choice(alphabet, rng.integers(0, 8))) for _ in range(300)]
    assert _jstr(np.array(strs, dtype=object)).tolist() == [json.dumps(s, ensure_ascii=False) for s in strs]
