"""Matched comparisons and their risk ratios: the statistics of ``fdnet evaluate``, as plain functions.

The design (docs/evaluation.md) is a matched cohort study:

1. :func:`propensity`: the probability of treatment given the covariates, a logistic regression
   (scikit-learn) on standardised ``log1p`` covariates of the treated and their candidates;
2. :func:`match`: each treated person's ``k`` nearest untreated candidates *of the same monthly
   cohort* on the logit of that probability, with replacement, inside a caliper of ``caliper_sd``
   standard deviations of the logit (Austin 2011 recommends 0.2); a treated person with no candidate
   inside the caliper is left unmatched and counted;
3. :func:`risk_ratio`: the outcome risk of the treated against the weighted risk of their matches
   (each match weighs ``1/k`` of its treated person, summed over its uses), with a 95% interval
   from the delta method on the log scale, whose variance counts the reuse of comparisons
   (``sum w**2``);
4. :func:`smd`: standardised mean differences of every covariate before and after matching;
5. :func:`e_value`: VanderWeele and Ding's (2017) E-value, the strength of unmeasured confounding
   that could explain the estimate away.

>>> round(e_value(0.5)[0], 2), e_value(1.0)[0]
(3.41, 1.0)
>>> rr, lo, hi = risk_ratio(np.array([1, 0, 0, 0]), np.array([1, 1, 0, 0.0]), np.ones(4))
>>> round(rr, 2), lo < rr < hi
(0.5, True)
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

Z95 = 1.959963984540054


def propensity(X: pd.DataFrame, treated: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """The logit of the estimated probability of treatment of each row of ``X``.

    Covariates are ``log1p``-transformed where they are counts (all are non-negative) and
    standardised; the L2-penalised logistic regression (C=1) keeps the fit stable when a covariate
    separates the groups. Deterministic: lbfgs has no random state, and the rows come in a fixed order.

    >>> X = pd.DataFrame({"a": [0, 1, 2, 3, 4, 5.0]})
    >>> lp = propensity(X, np.array([0, 0, 0, 1, 1, 1], bool))
    >>> bool(np.all(np.diff(lp) > 0))
    True
    """
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    Z = np.log1p(np.clip(X.to_numpy(dtype=float), 0, None))
    sd = Z.std(axis=0)
    Z = (Z - Z.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    y = np.asarray(treated, dtype=bool)
    if y.all() or not y.any():
        return np.zeros(len(y))
    with threadpool_limits(1):          # one summation order: identical results run after run
        m = LogisticRegression(C=1.0, max_iter=2000, random_state=seed).fit(Z, y)
    return m.decision_function(Z)


def match(logit: np.ndarray, cohort: np.ndarray, treated: np.ndarray, *, k: int, caliper_sd: float):
    """Nearest-neighbour matching on ``logit`` within cohorts, with replacement.

    Returns ``(t_rows, c_rows)``: for each match, the row of the treated person and the row of its
    comparison (up to ``k`` per treated person, nearest first; ties broken by row order). Rows are
    indices into the inputs. Vectorised: candidates are sorted by (cohort, logit); the ``k`` nearest
    of a treated person lie within ``k`` places either side of where its logit would be inserted.

    >>> lg = np.array([0.0, 0.1, 0.5, 0.52, 3.0]); co = np.zeros(5, int); tr = np.array([1, 0, 1, 0, 0], bool)
    >>> t, c = match(lg, co, tr, k=1, caliper_sd=0.2)
    >>> list(zip(t.tolist(), c.tolist()))
    [(0, 1), (2, 3)]
    """
    logit = np.asarray(logit, dtype=float)
    cohort = np.asarray(cohort, dtype=np.int64)
    treated = np.asarray(treated, dtype=bool)
    caliper = caliper_sd * float(np.std(logit)) if len(logit) > 1 else 0.0
    caliper = max(caliper, 1e-9)
    crow = np.flatnonzero(~treated)
    trow = np.flatnonzero(treated)
    if not len(crow) or not len(trow):
        z = np.zeros(0, np.int64)
        return z, z
    order = np.lexsort((crow, logit[crow], cohort[crow]))
    crow = crow[order]
    c_co, c_lg = cohort[crow], logit[crow]
    # per treated person: its cohort's block among the sorted candidates, and where its logit would
    # be inserted in that block (one search on a key that orders by cohort rank, then logit)
    blo = np.searchsorted(c_co, cohort[trow], side="left")
    bhi = np.searchsorted(c_co, cohort[trow], side="right")
    levels = np.unique(cohort)
    off = 4.0 * (float(np.abs(logit).max()) + 1.0)
    comb = np.searchsorted(levels, c_co) * off + c_lg
    ins = np.searchsorted(comb, np.searchsorted(levels, cohort[trow]) * off + logit[trow])
    span = np.arange(-k, k)
    cand = ins[:, None] + span[None, :]
    valid = (cand >= blo[:, None]) & (cand < bhi[:, None])
    candc = np.clip(cand, 0, len(crow) - 1)
    dist = np.abs(c_lg[candc] - logit[trow][:, None])
    dist = np.where(valid & (dist <= caliper), dist, np.inf)
    # the k nearest (stable: equal distances keep candidate order)
    pick = np.argsort(dist, axis=1, kind="stable")[:, :k]
    d_pick = np.take_along_axis(dist, pick, axis=1)
    c_pick = np.take_along_axis(candc, pick, axis=1)
    ok = np.isfinite(d_pick)
    t_rows = np.repeat(trow, k).reshape(len(trow), k)[ok]
    c_rows = crow[c_pick[ok]]
    return t_rows.astype(np.int64), c_rows.astype(np.int64)


def match_weights(t_rows: np.ndarray, c_rows: np.ndarray, n_rows: int) -> np.ndarray:
    """Per row: 1 for a matched treated person, the sum of ``1/k_i`` over its uses for a comparison."""
    w = np.zeros(n_rows)
    if not len(t_rows):
        return w
    per_t = np.bincount(t_rows, minlength=n_rows)
    w[np.unique(t_rows)] = 1.0
    np.add.at(w, c_rows, 1.0 / per_t[t_rows])
    return w


def risk_ratio(y_t: np.ndarray, y_c: np.ndarray, w_c: np.ndarray) -> tuple[float, float, float]:
    """The risk (or rate) ratio of the treated against the weighted comparisons, with a 95% interval.

    ``y_t``: the outcome of each treated person (0/1 for a risk, a count for a rate); ``y_c`` and
    ``w_c``: each comparison's outcome and weight. The log ratio's variance is the sum of the two
    means' relative variances, the comparison's with weights (``sum w^2 var / (sum w)^2``). NaN
    when either side has no event.
    """
    y_t = np.asarray(y_t, dtype=float)
    y_c = np.asarray(y_c, dtype=float)
    w_c = np.asarray(w_c, dtype=float)
    if not len(y_t) or w_c.sum() <= 0:
        return math.nan, math.nan, math.nan
    m_t = float(y_t.mean())
    m_c = float((w_c * y_c).sum() / w_c.sum())
    if m_t <= 0 or m_c <= 0:
        return math.nan, math.nan, math.nan
    v_t = y_t.var(ddof=1) / len(y_t) if len(y_t) > 1 else m_t
    var_c = float((w_c * (y_c - m_c) ** 2).sum() / w_c.sum())
    v_c = var_c * float((w_c ** 2).sum()) / float(w_c.sum()) ** 2
    se = math.sqrt(v_t / m_t ** 2 + v_c / m_c ** 2)
    rr = float(m_t / m_c)
    return rr, rr * math.exp(-Z95 * se), rr * math.exp(Z95 * se)


def naive_ratio(y_t: np.ndarray, y_c: np.ndarray) -> tuple[float, float, float]:
    """The unadjusted risk ratio of the treated against every eligible untreated person (Katz interval)."""
    return risk_ratio(y_t, y_c, np.ones(len(y_c)))


def smd(x_t: np.ndarray, x_c: np.ndarray, w_c: np.ndarray | None = None, sd_pool: float | None = None) -> float:
    """Standardised mean difference ``(mean_t - mean_c) / sd`` (``sd``: the pooled SD before matching).

    >>> round(smd(np.array([1, 2, 3.0]), np.array([0, 1, 2.0])), 3)
    1.0
    """
    x_t = np.asarray(x_t, dtype=float)
    x_c = np.asarray(x_c, dtype=float)
    w = np.ones(len(x_c)) if w_c is None else np.asarray(w_c, dtype=float)
    if not len(x_t) or w.sum() <= 0:
        return math.nan
    m_c = float((w * x_c).sum() / w.sum())
    if sd_pool is None:
        sd_pool = math.sqrt((x_t.var(ddof=1 if len(x_t) > 1 else 0) + x_c.var(ddof=1 if len(x_c) > 1 else 0)) / 2)
    if not sd_pool:
        return 0.0 if x_t.mean() == m_c else math.inf
    return float((x_t.mean() - m_c) / sd_pool)


def e_value(rr: float, ci: tuple[float, float] | None = None) -> tuple[float, float]:
    """VanderWeele and Ding's E-value of a risk ratio and of the interval's bound nearest 1.

    The minimum strength of association (as a risk ratio) that an unmeasured confounder would need
    with both the treatment and the outcome to explain the estimate away; 1 for the interval when
    it already covers 1.

    >>> [round(v, 2) for v in e_value(0.6, (0.45, 0.8))]
    [2.72, 1.81]
    """
    def ev(r: float) -> float:
        if not math.isfinite(r) or r <= 0:
            return math.nan
        r = 1 / r if r < 1 else r
        return r + math.sqrt(r * (r - 1))
    point = ev(rr)
    if ci is None:
        return point, math.nan
    lo, hi = ci
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return point, math.nan
    if lo <= 1 <= hi:
        return point, 1.0
    return point, ev(hi if hi < 1 else lo)


def cumulative_incidence(first_day_after: np.ndarray, weights: np.ndarray, horizon: int, step: int = 7):
    """Weighted share with a first event within ``t`` days, for ``t = 0, step, ..., horizon``."""
    t = np.arange(0, horizon + 1, step, dtype=np.int64)
    if t[-1] != horizon:
        t = np.append(t, horizon)
    w = np.asarray(weights, dtype=float)
    if w.sum() <= 0:
        return t, np.zeros(len(t))
    d = np.asarray(first_day_after, dtype=np.int64)
    order = np.argsort(d, kind="stable")
    cw = np.concatenate([[0.0], np.cumsum(w[order])])
    pos = np.searchsorted(d[order], t, side="right")
    return t, cw[pos] / w.sum()
