"""Beyond the treated person: spillover to co-offenders, groups before and after, and the city's shootings.

* :func:`spillover_effects`: the people who had a co-offender treated (a tie begun before the
  treatment) are themselves a "treated" population, matched like any other
  (:func:`fdnet.evaluate.person.design`) to eligible people with no treated co-offender (Wood and
  Papachristos 2019 found −1.5 points for the peers of Chicago's call-in participants, −3.2 for the
  participants).
* :func:`group_effects`: a difference in differences: each treated group's incidents in the
  ``h`` days before and after its first member's treatment, against groups with no treated member
  matched on their own before-period (propensity on size and prior violence, within cohorts). The
  estimate is the ratio of the two after/before rate ratios, with a Poisson interval.
* :func:`city_series`: an interrupted time series of the city's monthly shootings around the
  programme's start: a segmented quasi-Poisson regression (statsmodels) with a level change, a
  trend change and, with two years before the start, calendar-month seasonality.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .cohort import Context, cohort_of, group_event_keys, treatments
from .effects import Z95, match, match_weights, propensity
from .events import NO_DAY
from .person import _r, design, outcome_effects

#: the city series' change terms past this log rate ratio (10^8 either way) are reported as not estimable
MAX_LOG_RATIO = math.log(1e8)


def spillover_effects(ctx: Context, iv: pd.DataFrame, first_any: np.ndarray, *, as_of_day: int, cfg) -> list[dict]:
    """Effects on the untreated co-offenders of each kind in ``cfg.spillover_kinds``."""
    ev = ctx.ev
    out: list[dict] = []
    for kind in cfg.spillover_kinds:
        tr = treatments(iv, kind)
        if not len(tr):
            continue
        code = ev.code_of(tr["person_id"].to_numpy())
        ok = code >= 0
        t_code, t_day = code[ok], tr["day"].to_numpy(dtype=np.int64)[ok]
        owner, nb = ctx.neighbours_before(t_code, t_day)
        # a peer's index day: the first treatment of any of its co-offenders
        peer_day = np.full(len(ev.person_ids), NO_DAY, np.int64)
        np.minimum.at(peer_day, nb, t_day[owner])
        untreated = first_any > as_of_day
        is_peer = (peer_day < NO_DAY) & untreated
        p_code = np.flatnonzero(is_peer).astype(np.int64)
        p_day = peer_day[p_code]
        # never a comparison: anyone intervened with, and anyone with a treated co-offender at any time
        ever_owner, ever_nb = ctx.neighbours_before(t_code, np.full(len(t_code), NO_DAY))
        not_comparison = ~untreated
        not_comparison[ever_nb] = True
        for h in cfg.horizons_days:
            d = design(ctx, p_code, p_day, not_comparison, horizon=h, as_of_day=as_of_day, cfg=cfg)
            if len(np.unique(d.t_rows)) < cfg.min_treated:
                continue
            out += outcome_effects(ctx, d, kind=kind, horizon=h, cfg=cfg, population="co-offenders of the treated")
    return out


def _did(post_t, pre_t, post_c, pre_c, w_c) -> tuple[float, float, float]:
    """Ratio of rate ratios ``(post_t/pre_t) / (post_c/pre_c)`` with a Poisson 95% interval."""
    st_post, st_pre = float(post_t.sum()), float(pre_t.sum())
    sc_post, sc_pre = float((w_c * post_c).sum()), float((w_c * pre_c).sum())
    if min(st_post, st_pre, sc_post, sc_pre) <= 0:
        return math.nan, math.nan, math.nan
    var = (1 / st_post + 1 / st_pre + float((w_c ** 2 * post_c).sum()) / sc_post ** 2
           + float((w_c ** 2 * pre_c).sum()) / sc_pre ** 2)
    r = (st_post / st_pre) / (sc_post / sc_pre)
    se = math.sqrt(var)
    return r, r * math.exp(-Z95 * se), r * math.exp(Z95 * se)


def group_effects(ctx: Context, iv: pd.DataFrame, *, as_of_day: int, cfg) -> list[dict]:
    """Difference in differences of treated groups against matched untreated groups, per kind and horizon."""
    ev = ctx.ev
    group = ctx.group
    n_groups = int(group.max()) + 1 if len(group) and group.max() >= 0 else 0
    if not n_groups:
        return []
    size = np.bincount(group[group >= 0], minlength=n_groups)
    keys = {o: group_event_keys(ev, group, k) for o, k in (("shooting", "shooting"), ("violent", "violent"))}
    # the members' offending in the year before: what a call-in list is drawn on
    off_keys = group_event_keys(ev, group, "offending")
    first_any = np.full(n_groups, NO_DAY, np.int64)
    code_all = ev.code_of(iv["person_id"].to_numpy())
    day_all = ((pd.to_datetime(iv["date"], format="%Y-%m-%d", errors="coerce") - pd.Timestamp("1970-01-01"))
               .dt.days.to_numpy(dtype=float))
    ok = (code_all >= 0) & np.isfinite(day_all)
    g_all = np.where(ok, group[np.maximum(code_all, 0)], -1)
    m = g_all >= 0
    np.minimum.at(first_any, g_all[m], day_all[m].astype(np.int64))

    def window(kind_keys, g, a, b):
        lo = np.searchsorted(kind_keys, g * ev.span + np.clip(a - ev.day0, 0, ev.span - 1))
        hi = np.searchsorted(kind_keys, g * ev.span + np.clip(b - ev.day0, 0, ev.span - 1))
        return (hi - lo).astype(float)

    out = []
    for kind in sorted(iv["kind"].unique()):
        tr = treatments(iv, kind)
        code = ev.code_of(tr["person_id"].to_numpy())
        ok = code >= 0
        g = group[code[ok]]
        dd = tr["day"].to_numpy(dtype=np.int64)[ok]
        m = g >= 0
        if not m.any():
            continue
        g_day = np.full(n_groups, NO_DAY, np.int64)
        np.minimum.at(g_day, g[m], dd[m])
        for h in cfg.horizons_days:
            tg = np.flatnonzero((g_day < NO_DAY) & (g_day - h >= ev.first_day) & (g_day + h <= as_of_day)
                                & (size >= 3))
            if len(tg) < 3:
                continue
            t_day = g_day[tg]
            # candidates: groups with nobody intervened with before the after-period ends, on each cohort's day
            cohorts = cohort_of(t_day)
            c_g, c_d, c_k = [], [], []
            for k in np.unique(cohorts):
                days = np.sort(t_day[cohorts == k])
                d0 = int(days[(len(days) - 1) // 2])
                cand = np.flatnonzero((first_any > d0 + h) & (size >= 3))
                c_g.append(cand)
                c_d.append(np.full(len(cand), d0, np.int64))
                c_k.append(np.full(len(cand), k, np.int64))
            c_g, c_d, c_k = np.concatenate(c_g), np.concatenate(c_d), np.concatenate(c_k)
            if len(np.unique(c_g)) < 3:
                continue
            gg = np.concatenate([tg, c_g])
            gd = np.concatenate([t_day, c_d])
            gk = np.concatenate([cohorts, c_k])
            treated = np.concatenate([np.ones(len(tg), bool), np.zeros(len(c_g), bool)])
            pre = {o: window(keys[o], gg, gd - h, gd) for o in keys}
            post = {o: window(keys[o], gg, gd + 1, gd + h + 1) for o in keys}
            X = pd.DataFrame({"size": size[gg].astype(float), "shootings_before": pre["shooting"],
                              "violent_before": pre["violent"],
                              "shootings_365": window(keys["shooting"], gg, gd - 365, gd),
                              "violent_365": window(keys["violent"], gg, gd - 365, gd),
                              "offending_365": window(off_keys, gg, gd - 365, gd),
                              "offending_90": window(off_keys, gg, gd - 90, gd)})
            logit = propensity(X, treated, seed=cfg.seed)
            t_rows, c_rows = match(logit, gk, treated, k=cfg.matches, caliper_sd=cfg.caliper_sd)
            w = match_weights(t_rows, c_rows, len(gg))
            mt = (w > 0) & treated
            mc = (w > 0) & ~treated
            if mt.sum() < 3:
                continue
            for o in ("shooting", "violent"):
                r, lo, hi = _did(post[o][mt], pre[o][mt], post[o][mc], pre[o][mc], w[mc])
                wc = w[mc]
                diff = ((post[o][mt].mean() - pre[o][mt].mean())
                        - ((wc * post[o][mc]).sum() - (wc * pre[o][mc]).sum()) / wc.sum())
                out.append({
                    "kind": kind, "outcome": o, "horizon_days": int(h), "treated_groups": int(mt.sum()),
                    "comparison_groups": int(len(np.unique(gg[mc]))),
                    "treated_before": int(pre[o][mt].sum()), "treated_after": int(post[o][mt].sum()),
                    "comparison_before_weighted": _r(float((wc * pre[o][mc]).sum())),
                    "comparison_after_weighted": _r(float((wc * post[o][mc]).sum())),
                    "ratio_of_rate_ratios": _r(r), "ci95": [_r(lo), _r(hi)],
                    "difference_in_differences_per_group": _r(float(diff)),
                    "method": "difference in differences: treated groups (a member treated) against untreated "
                              f"groups matched on size and prior violence ({cfg.matches} nearest, within monthly "
                              f"cohorts), incidents {h} days before and after; Poisson interval",
                })
    return out


def city_series(rec, iv: pd.DataFrame, *, cfg) -> dict:
    """Interrupted time series of the city's monthly shootings around the programme's start."""
    inc, inv = rec.incidents, rec.involvements
    start = cfg.programme_start or (str(iv["date"].min())[:10] if len(iv) else None)
    source = "policy evaluation.programme_start" if cfg.programme_start else "the first intervention recorded"
    if start is None or not len(inc):
        return {"estimable": False, "reason": "no programme start and no interventions"}
    import pyarrow as pa
    import pyarrow.compute as pc
    # Arrow's hash kernels (pandas' isin on Arrow strings loops in Python: 4 s at 200k people)
    role = pa.array(inv["role"].to_numpy(dtype=object))
    victims = pc.unique(pc.filter(pa.array(inv["incident_id"].to_numpy(dtype=object)), pc.equal(role, "victim")))
    has_victim = pc.is_in(pa.array(inc["incident_id"].to_numpy(dtype=object)), value_set=victims)
    shot = inc["gun"].to_numpy(dtype=bool) & has_victim.to_numpy(zero_copy_only=False)
    month = inc["day"].to_numpy(dtype=np.int64).astype("datetime64[D]").astype("datetime64[M]")
    first_m = month.min()
    last_day = np.datetime64(rec.as_of, "D")
    last_m = last_day.astype("datetime64[M]")
    # only whole months: the last month counts when as_of is its last day
    if (last_day + np.timedelta64(1, "D")).astype("datetime64[M]") == last_m:
        last_m = last_m - np.timedelta64(1, "M")
    first_day = inc["day"].min()
    if np.datetime64(int(first_day), "D") != first_m.astype("datetime64[D]"):
        first_m = first_m + np.timedelta64(1, "M")
    months = np.arange(first_m, last_m + np.timedelta64(1, "M"))
    counts = pd.Series(shot.astype(int)).groupby(month).sum().reindex(months, fill_value=0).to_numpy()
    s_m = np.datetime64(start, "D").astype("datetime64[M]")
    post = (months >= s_m).astype(float)
    n_pre, n_post = int((post == 0).sum()), int(post.sum())
    series = [{"month": str(m), "shootings": int(c)} for m, c in zip(months, counts)]
    base = {"programme_start": start, "start_from": source, "months_before": n_pre, "months_after": n_post,
            "series": series}
    if n_pre < 12 or n_post < 6:
        return {**base, "estimable": False,
                "reason": f"needs 12 whole months before the start and 6 after; the records give {n_pre} and {n_post}"}
    import statsmodels.api as sm
    t = np.arange(len(months), dtype=float)
    t0 = float(np.argmax(post > 0))
    cols = {"const": np.ones(len(t)), "trend": t, "level_change": post, "trend_change": post * (t - t0)}
    seasonal = n_pre >= 24
    if seasonal:
        moy = months.astype(int) % 12
        for k in range(1, 12):
            cols[f"month_{k + 1:02d}"] = (moy == k).astype(float)
    X = pd.DataFrame(cols)
    try:
        fit = sm.GLM(counts.astype(float), X, family=sm.families.Poisson()).fit(scale="X2")
    except Exception as exc:     # a degenerate series (all zeros): reported, not raised
        return {**base, "estimable": False, "reason": f"the model could not be fitted ({type(exc).__name__})"}
    ci = fit.conf_int()
    # a city with a handful of shootings a month can give a fit whose change terms are unbounded (a
    # rate ratio past 10^8 either way, or no estimate at all): reported as not estimable, not overflowed
    est = np.array([[fit.params[n], ci.loc[n, 0], ci.loc[n, 1]] for n in ("level_change", "trend_change")],
                   dtype=float)
    if not np.isfinite(est).all() or np.abs(est).max() > MAX_LOG_RATIO:
        return {**base, "estimable": False,
                "reason": "the monthly shootings are too few for a level and a trend change: the fitted change "
                          "is unbounded"}
    cf = X.copy()
    cf["level_change"] = 0.0
    cf["trend_change"] = 0.0
    fitted = fit.predict(X)
    counter = fit.predict(cf)
    for row, f, c in zip(series, fitted, counter):
        row["fitted"] = round(float(f), 3)
        row["without_programme"] = round(float(c), 3)

    def rr(name):
        return {"rate_ratio": _r(math.exp(fit.params[name])),
                "ci95": [_r(math.exp(ci.loc[name, 0])), _r(math.exp(ci.loc[name, 1]))]}
    return {**base, "estimable": True, "seasonality": seasonal,
            "level_change": rr("level_change"), "trend_change_per_month": rr("trend_change"),
            "dispersion": _r(float(fit.scale), 3),
            "method": "segmented quasi-Poisson regression of monthly shootings (statsmodels GLM, Pearson "
                      "dispersion) with a level and a trend change at the start"
                      + (" and calendar-month seasonality" if seasonal else "")}
