"""The evaluation's statistics against brute force and published values, on random inputs."""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from fdnet.evaluate.cohort import Context
from fdnet.evaluate.effects import e_value, match, risk_ratio, smd
from fdnet.evaluate.events import NO_DAY, EventIndex
from fdnet.evaluate.programme import city_series
from fdnet.policy import Evaluation


def _random_records(rng, n_people=60, n_inc=300, days=700):
    inc = pd.DataFrame({"incident_id": [f"I{i:04d}" for i in range(n_inc)],
                        "day": rng.integers(18000, 18000 + days, n_inc),
                        "gun": rng.random(n_inc) < 0.3, "violent": rng.random(n_inc) < 0.5})
    rows = []
    for i in range(n_inc):
        k = rng.integers(1, 5)
        for p in rng.choice(n_people, size=k, replace=False):
            rows.append((f"I{i:04d}", f"P{p:03d}", rng.choice(["offender", "suspect", "arrestee", "victim", "witness"])))
    inv = pd.DataFrame(rows, columns=["incident_id", "person_id", "role"])
    return inc, inv


@pytest.mark.parametrize("seed", range(5))
def test_event_counts_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    inc, inv = _random_records(rng)
    ev = EventIndex.build(inc, inv)
    m = inv.merge(inc, on="incident_id")
    off = m["role"].isin(["offender", "suspect", "arrestee"])
    vic = m["role"] == "victim"
    shooting_inc = set(m.loc[vic & m["gun"], "incident_id"])
    kinds = {"offending": off, "victim": vic, "violent": m["violent"] & (off | vic),
             "shooting": m["incident_id"].isin(shooting_inc) & (off | vic), "any": pd.Series(True, index=m.index)}
    code = rng.integers(0, len(ev.person_ids), 200)
    a = rng.integers(17990, 18700, 200)
    b = a + rng.integers(0, 400, 200)
    for kind, mask in kinds.items():
        got = ev.count(kind, code, a, b)
        sub = m[mask].drop_duplicates(["incident_id", "person_id"])
        want = [int(((sub["person_id"] == ev.person_ids[c]) & (sub["day"] >= lo) & (sub["day"] < hi)).sum())
                for c, lo, hi in zip(code, a, b)]
        assert got.tolist() == want, kind
        first = ev.first_after(kind, code, a)
        for c, lo, f in zip(code, a, first):
            days = sub.loc[(sub["person_id"] == ev.person_ids[c]) & (sub["day"] > lo), "day"]
            assert f == (days.min() if len(days) else NO_DAY)


def test_co_offenders_and_exposure_match_brute_force():
    rng = np.random.default_rng(7)
    inc, inv = _random_records(rng, n_people=40, n_inc=200)
    rec = SimpleNamespace(incidents=inc, involvements=inv, as_of_day=int(inc["day"].max()), groups=None, persons=None)
    ctx = Context.build(rec)
    ev = ctx.ev
    m = inv.merge(inc, on="incident_id")
    off = m[m["role"].isin(["offender", "suspect", "arrestee"])]
    pairs = off.merge(off, on=["incident_id", "day"])
    pairs = pairs[pairs["person_id_x"] != pairs["person_id_y"]]
    first = pairs.groupby(["person_id_x", "person_id_y"])["day"].min().reset_index()
    shot = m[(m["role"] == "victim") & m["incident_id"].isin(set(m.loc[m["role"] == "victim"]["incident_id"]))
             & m["gun"]].groupby("person_id")["day"].min()
    code = rng.integers(0, len(ev.person_ids), 100)
    day = rng.integers(18100, 18700, 100)
    X = ctx.covariates(code, day)
    for i, (c, d) in enumerate(zip(code, day)):
        p = ev.person_ids[c]
        mine = first[(first["person_id_x"] == p) & (first["day"] < d)]
        assert X["co_offenders"].iloc[i] == len(mine)
        t = np.maximum(mine["day"].to_numpy(), shot.reindex(mine["person_id_y"]).fillna(np.inf).to_numpy())
        assert X["exposure"].iloc[i] == int((t < d).sum())


@pytest.mark.parametrize("seed", range(4))
def test_match_is_the_brute_force_nearest(seed):
    rng = np.random.default_rng(seed)
    n = 400
    logit = rng.normal(size=n)
    cohort = rng.integers(0, 4, n)
    treated = rng.random(n) < 0.2
    k = 3
    t_rows, c_rows = match(logit, cohort, treated, k=k, caliper_sd=0.2)
    caliper = 0.2 * logit.std()
    got = {}
    for t, c in zip(t_rows, c_rows):
        got.setdefault(int(t), []).append(int(c))
    for t in np.flatnonzero(treated):
        cand = np.flatnonzero(~treated & (cohort == cohort[t]))
        dist = np.abs(logit[cand] - logit[t])
        order = np.lexsort((cand, dist))
        want = [int(cand[j]) for j in order[:k] if dist[j] <= caliper]
        assert sorted(got.get(int(t), [])) == sorted(want)


def test_risk_ratio_is_katz_for_unweighted_samples():
    rng = np.random.default_rng(1)
    yt = (rng.random(400) < 0.2).astype(float)
    yc = (rng.random(900) < 0.3).astype(float)
    rr, lo, hi = risk_ratio(yt, yc, np.ones(len(yc)))
    a, n1, c, n2 = yt.sum(), len(yt), yc.sum(), len(yc)
    se = math.sqrt(1 / a - 1 / n1 + 1 / c - 1 / n2)
    assert math.isclose(rr, (a / n1) / (c / n2))
    # the sample variance (ddof=1) differs from Katz's by a factor n/(n-1)
    assert math.isclose(math.log(hi / rr) / 1.959963984540054, se, rel_tol=5e-3)
    # reusing comparisons widens the interval (sum w^2 grows)
    w = np.where(np.arange(len(yc)) < 300, 3.0, 0.0)
    _, lo_w, hi_w = risk_ratio(yt, yc, w)
    assert hi_w / lo_w > hi / lo


def test_e_value_published_example():
    # VanderWeele and Ding (2017): RR 3.9 (95% CI 1.8 to 8.7) -> E-values 7.26 and 3.02
    point, ci = e_value(3.9, (1.8, 8.7))
    assert round(point, 2) == 7.26 and round(ci, 2) == 3.0
    # protective: the same on the inverse scale
    assert math.isclose(e_value(1 / 3.9)[0], point)
    assert e_value(0.8, (0.6, 1.1))[1] == 1.0


def test_smd_matches_definition():
    x = np.array([1.0, 2, 3, 4]); y = np.array([0.0, 0, 1, 1])
    sd = math.sqrt((x.var(ddof=1) + y.var(ddof=1)) / 2)
    assert math.isclose(smd(x, y), (x.mean() - y.mean()) / sd)
    assert math.isclose(smd(x, y, np.array([0, 0, 1, 1.0]), sd), (x.mean() - 1) / sd)


def test_city_series_recovers_a_level_change():
    rng = np.random.default_rng(3)
    months = pd.date_range("2021-01-01", "2024-12-01", freq="MS")
    rows_i, rows_v = [], []
    n = 0
    for m in months:
        lam = 30 if m < pd.Timestamp("2023-07-01") else 15
        for _ in range(rng.poisson(lam)):
            d = (m + pd.Timedelta(days=int(rng.integers(0, 28))) - pd.Timestamp("1970-01-01")).days
            rows_i.append((f"I{n}", d, True))
            rows_v.append((f"I{n}", f"P{n}", "victim"))
            n += 1
    inc = pd.DataFrame(rows_i, columns=["incident_id", "day", "gun"])
    inv = pd.DataFrame(rows_v, columns=["incident_id", "person_id", "role"])
    rec = SimpleNamespace(incidents=inc, involvements=inv, as_of="2024-12-31")
    iv = pd.DataFrame({"person_id": ["P1"], "kind": ["call_in_attended"], "date": ["2023-07-01"]})
    c = city_series(rec, iv, cfg=Evaluation())
    assert c["estimable"] and c["months_before"] == 30 and c["months_after"] == 18 and c["seasonality"]
    lo, hi = c["level_change"]["ci95"]
    assert lo < 0.5 < hi and hi < 1
    short = city_series(SimpleNamespace(incidents=inc[inc["day"] > 19400], involvements=inv, as_of="2024-12-31"),
                        iv, cfg=Evaluation())
    assert not short["estimable"] and "12 whole months" in short["reason"]


def test_city_series_with_no_shooting_after_the_start_is_not_estimable():
    # the monthly shootings of a 3,000-person synthetic city: a few before the start, none in the 12 months
    # after. The level change's estimate runs off towards minus infinity and math.exp overflowed; it is
    # reported as not estimable, not raised
    counts = [0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 2, 2, 0, 0, 0, 1, 0, 1, 1, 1, 0, 0] + [0] * 12
    months = pd.date_range("2023-01-01", periods=len(counts), freq="MS")
    rows_i = [(f"I{m:%Y%m}-{j}", (m - pd.Timestamp("1970-01-01")).days + 3, True)
              for m, c in zip(months, counts) for j in range(c)]
    rows_i.append(("I-first", (months[0] - pd.Timestamp("1970-01-01")).days, False))   # the records' first day
    inc = pd.DataFrame(rows_i, columns=["incident_id", "day", "gun"])
    inv = pd.DataFrame({"incident_id": inc["incident_id"], "person_id": [f"P{k}" for k in range(len(inc))],
                        "role": "victim"})
    rec = SimpleNamespace(incidents=inc, involvements=inv, as_of="2025-11-30")
    iv = pd.DataFrame({"person_id": ["P1"], "kind": ["call_in_attended"], "date": ["2024-12-16"]})
    c = city_series(rec, iv, cfg=Evaluation())
    assert (c["months_before"], c["months_after"]) == (23, 12)
    assert [r["shootings"] for r in c["series"]] == counts
    assert not c["estimable"] and "unbounded" in c["reason"]
