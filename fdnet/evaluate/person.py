"""Person-level effects: each intervention kind against matched people eligible on the same date.

:func:`person_effects` runs the matched design of :mod:`fdnet.evaluate.effects` for one treatment
(a set of people, each with an index day) and returns, per outcome and horizon, a row of
``evaluation.json``'s ``effects`` with its balance table, its naive comparison, its E-value, its
cumulative-incidence curves and its effect by months since the intervention. The same function
serves the spillover to co-offenders (:mod:`fdnet.evaluate.programme`), whose "treatment" is having
a treated co-offender.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .cohort import COVARIATES, Context, candidates, cohort_of
from .effects import (cumulative_incidence, e_value, match, match_weights, naive_ratio, propensity,
                      risk_ratio, smd)
from .events import EVENT_KINDS

#: outcome -> the event kind it counts (CONTRACT.md section 6)
OUTCOMES = {"shooting": "shooting", "violent": "violent", "offending": "offending"}


def _r(x: float, nd: int = 4):
    return None if x is None or not math.isfinite(x) else round(float(x), nd)


@dataclass
class Design:
    """One matched comparison: the rows (treated first, then candidates) and who matched whom."""

    code: np.ndarray            # person code per row
    day: np.ndarray             # index day per row
    cohort: np.ndarray
    treated: np.ndarray         # bool per row
    X: pd.DataFrame             # covariates per row
    logit: np.ndarray
    t_rows: np.ndarray          # matches: treated row, comparison row
    c_rows: np.ndarray
    weight: np.ndarray          # per row: 1 matched treated, sum of 1/k for comparisons, 0 otherwise
    excluded: dict = field(default_factory=dict)   # reason -> count of treated people left out


def design(ctx: Context, t_code: np.ndarray, t_day: np.ndarray, not_comparison: np.ndarray, *, horizon: int,
           as_of_day: int, cfg) -> Design:
    """Rows and matches for treated persons ``t_code`` on days ``t_day`` followed for ``horizon`` days.

    Treated people whose follow-up would run past ``as_of_day`` are left out (follow-up incomplete),
    as are those with no offending or victim involvement in the ``eligibility_days`` before their
    index day (outside the population the comparison is drawn from).
    """
    excluded = {}
    complete = t_day + horizon <= as_of_day
    excluded["follow-up incomplete"] = int((~complete).sum())
    t_code, t_day = t_code[complete], t_day[complete]
    ev = ctx.ev
    act = ev.count("acting", t_code, t_day - cfg.eligibility_days, t_day) > 0
    excluded["no involvement in the eligibility window"] = int((~act).sum())
    t_code, t_day = t_code[act], t_day[act]
    c_code, c_day, c_cohort = candidates(ctx, t_code, t_day, not_comparison, eligibility_days=cfg.eligibility_days,
                                         max_per_treated=cfg.max_comparisons_per_treated, seed=cfg.seed)
    code = np.concatenate([t_code, c_code]).astype(np.int64)
    day = np.concatenate([t_day, c_day]).astype(np.int64)
    cohort = np.concatenate([cohort_of(t_day), c_cohort]).astype(np.int64)
    treated = np.concatenate([np.ones(len(t_code), bool), np.zeros(len(c_code), bool)])
    X = ctx.covariates(code, day)
    logit = propensity(X, treated, seed=cfg.seed) if len(code) else np.zeros(0)
    t_rows, c_rows = match(logit, cohort, treated, k=cfg.matches, caliper_sd=cfg.caliper_sd)
    w = match_weights(t_rows, c_rows, len(code))
    excluded["no comparison within the caliper"] = int(len(t_code) - len(np.unique(t_rows)))
    return Design(code, day, cohort, treated, X, logit, t_rows, c_rows, w, excluded)


def balance(d: Design) -> list[dict]:
    """Standardised mean differences of every covariate, before (all candidates) and after matching."""
    t = d.treated
    mt = d.weight > 0
    out = []
    for name in COVARIATES:
        x = d.X[name].to_numpy(dtype=float)
        xt, xc = x[t], x[~t]
        sd = math.sqrt(((xt.var(ddof=1) if len(xt) > 1 else 0) + (xc.var(ddof=1) if len(xc) > 1 else 0)) / 2)
        after_t = x[t & mt]
        out.append({
            "covariate": name, "about": COVARIATES[name],
            "treated_mean": _r(float(xt.mean()) if len(xt) else math.nan),
            "comparison_mean_before": _r(float(xc.mean()) if len(xc) else math.nan),
            "comparison_mean_after": _r(float((d.weight[~t] * xc).sum() / d.weight[~t].sum())
                                        if d.weight[~t].sum() > 0 else math.nan),
            "smd_before": _r(smd(xt, xc, None, sd)),
            "smd_after": _r(smd(after_t, xc, d.weight[~t], sd)),
        })
    return out


def _why_naive(naive_rr: float, rr: float, bal: list[dict]) -> str:
    if not (math.isfinite(naive_rr) and math.isfinite(rr)):
        return "One of the two comparisons has no outcome events, so they cannot be set side by side."
    worst = sorted(bal, key=lambda b: -abs(b["smd_before"] or 0))[:2]
    diffs = " and ".join(f"{b['about']} ({b['treated_mean']:.2f} against {b['comparison_mean_before']:.2f}, "
                         f"standardised difference {b['smd_before']:+.2f})" for b in worst)
    return (f"The naive comparison sets the treated against everyone eligible. The treated were chosen for "
            f"their records, so before matching they differed most in {diffs}, and later outcomes follow "
            f"such records. "
            f"Matching compares them with people who looked like them on the day "
            f"(largest difference after matching {max(abs(b['smd_after'] or 0) for b in bal):.2f}), "
            f"which moves the ratio from {naive_rr:.2f} to {rr:.2f}.")


def outcome_effects(ctx: Context, d: Design, *, kind: str, horizon: int, cfg, population: str = "treated") \
        -> list[dict]:
    """One ``effects`` row per outcome for a matched design followed ``horizon`` days."""
    ev = ctx.ev
    t = d.treated
    mt = d.weight > 0
    rows = []
    bal = balance(d)
    max_smd = max((abs(b["smd_after"]) for b in bal if b["smd_after"] is not None), default=math.nan)
    for outcome, evk in OUTCOMES.items():
        n_after = ev.count(evk, d.code, d.day + 1, d.day + horizon + 1)
        y = (n_after > 0).astype(float)
        yt, yc, wc = y[t & mt], y[~t & mt], d.weight[~t & mt]
        rr, lo, hi = risk_ratio(yt, yc, wc)
        rate, rlo, rhi = risk_ratio(n_after[t & mt].astype(float), n_after[~t & mt].astype(float), wc)
        # the naive comparison: every treated person against every eligible candidate, unmatched
        nrr, nlo, nhi = naive_ratio(y[t], y[~t])
        ev_point, ev_ci = e_value(rr, (lo, hi))
        first = ev.first_after(evk, d.code, d.day) - d.day
        first = np.where(first <= horizon, first, horizon + 1)
        tt, ct = cumulative_incidence(first[t & mt], np.ones(int((t & mt).sum())), horizon)
        _, cc = cumulative_incidence(first[~t & mt], wc, horizon)
        by_month = []
        step = cfg.months_step * 30
        edges = list(range(0, horizon, step))
        if len(edges) > 1 and horizon - edges[-1] < step / 2:
            edges.pop()                  # a short last bin (361-365 days) joins the one before
        for a, b in zip(edges, edges[1:] + [horizon]):
            n_bin = ev.count(evk, d.code, d.day + a + 1, d.day + b + 1).astype(float)
            r, l, h = risk_ratio(n_bin[t & mt], n_bin[~t & mt], wc)
            by_month.append({"from_day": a + 1, "to_day": b, "treated_events": int(n_bin[t & mt].sum()),
                             "comparison_events_weighted": _r(float((wc * n_bin[~t & mt]).sum())),
                             "rate_ratio": _r(r), "ci95": [_r(l), _r(h)]})
        rows.append({
            "kind": kind, "outcome": outcome, "population": population, "horizon_days": int(horizon),
            "treated": int((t & mt).sum()), "comparison": int(len(np.unique(d.code[~t & mt]))),
            "comparison_rows": int((~t & mt).sum()),
            "risk_ratio": _r(rr), "ci95": [_r(lo), _r(hi)],
            "method": f"propensity-score matching ({cfg.matches} nearest, with replacement, within monthly "
                      f"cohorts, caliper {cfg.caliper_sd} SD of the logit); delta-method interval",
            "risk_treated": _r(float(yt.mean()) if len(yt) else math.nan),
            "risk_comparison": _r(float((wc * yc).sum() / wc.sum()) if wc.sum() > 0 else math.nan),
            "rate_ratio": _r(rate), "rate_ratio_ci95": [_r(rlo), _r(rhi)],
            "naive": {"risk_ratio": _r(nrr), "ci95": [_r(nlo), _r(nhi)], "treated": int(t.sum()),
                      "comparison": int((~t).sum()), "why_different": _why_naive(nrr, rr, bal)},
            "e_value": {"point": _r(ev_point, 3), "ci": _r(ev_ci, 3)},
            "max_abs_smd_after": _r(max_smd, 3),
            "treated_left_out": d.excluded,
            "outcome_definition": EVENT_KINDS[evk],
            "curve": {"day": tt.tolist(), "treated": [round(float(v), 5) for v in ct],
                      "comparison": [round(float(v), 5) for v in cc]},
            "by_months_since": by_month,
        })
    return rows
