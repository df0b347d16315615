"""Calibrate the scorecard from history, and backtest rankings against baselines.

A ranking that decides who is invited to a call-in or whose door is
knocked on must be shown to beat what an analyst would do by hand. This
module does it the honest way, with **rolling-origin** time splits:

1. *Snapshots.* For origins ``o_1 < ... < o_m`` (every ``step_days`` back
   from the last date at which a full horizon is observed), the pipeline is
   run exactly as ``fdnet run --as-of o_k`` would run it (records after
   ``o_k`` absent), giving every network person's features. The label is
   whether the person **shoots or is shot** (a victim, or an offending role,
   in a shooting) in ``(o_k, o_k + horizon_days]``; other targets
   (``violent``, ``offending``) serve data without shootings.
2. *Folds.* Each origin after the first is a test fold; its training data are
   the snapshots whose label period ended by that origin (``o + horizon <=
   o_k``), so nothing from the future of a test origin is ever used.
3. *Model.* scikit-learn's histogram gradient boosting with
   ``interaction_cst="no_interactions"`` (every tree uses one feature, so the
   fitted log-odds are a sum of one function per feature: an additive model)
   and monotone constraints (more offending, exposure or group violence never
   lowers the score; age only lowers it). Each feature's function is read off
   the fitted model and compressed into a scorecard table of at most
   ``max_bins`` bins with whole points (20 points double the odds), so the
   explanation of every score stays exact: the policy *is* the model.
4. *Evaluation.* Every test fold is scored with that scorecard exactly as a
   run would score it, and compared with baselines: single features (violent
   offending, offending, shooting involvement), demographics only (age, sex;
   logistic regression), and an SSL-style eight-predictor points score
   (Chicago's Strategic Subject List: shooting victimizations, age,
   assault/battery victimizations, violent arrests, gang affiliation,
   narcotics arrests, trend in activity, weapon arrests; logistic regression
   turned into points). Metrics: ROC AUC, capture of the next period's
   shooting-involved people in the top 1%, 2% and top K, and a calibration
   table.

The final scorecard is fitted on every snapshot whose label is observed.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from ..errors import UsageError
from ..records.schema import normalise_sex
from ..records.validate import day_to_iso, iso_to_day, load_records
from .features import FEATURES
from ..policy import VICTIMIZATION_COMPONENTS, Component, Policy, is_demographic, policy_from_dict

PDO = 20.0                        # points to double the odds
SCALE = PDO / math.log(2.0)       # points per unit of log-odds
DECREASING = frozenset({"age"})   # features whose points can only fall as the value rises
TARGETS = ("shooting", "violent", "offending")
SSL_PREDICTORS = ("ssl_shooting_victim", "ssl_age", "ssl_assault_victim", "ssl_violent_arrests",
                  "ssl_gang", "ssl_narcotics_arrests", "ssl_trend", "ssl_weapon_arrests")
NARCOTICS = frozenset({"35A", "35B"})
WEAPONS = frozenset({"520"})
ASSAULT = frozenset({"13A", "13B"})
# How many label-positive person-periods the test origins must hold, in all, before a margin is
# reported: below REFUSE_BELOW_POSITIVES the backtest is refused (an AUC from a handful of people
# means nothing); below WARN_BELOW_POSITIVES it runs and says the intervals are wide (docs/calibration.md).
REFUSE_BELOW_POSITIVES = 10
WARN_BELOW_POSITIVES = 100
Z95 = 1.959963984540054


# --------------------------------------------------------------------------------------
# snapshots
# --------------------------------------------------------------------------------------

@dataclass
class Snapshot:
    data: str
    origin: str
    frame: pd.DataFrame            # one row per network person: features, baselines' inputs, y
    positives_outside: int         # label-positive people not in the network at the origin


def _labels(records, origin_day: int, horizon: int, target: str) -> tuple[set, set, set]:
    """(people involved, victims, offenders) in the target events of (origin, origin + horizon]."""
    inc, inv = records.incidents, records.involvements
    days = inc["day"].to_numpy()
    inper = (days > origin_day) & (days <= origin_day + horizon)
    if target == "shooting":
        gun = inc["gun"].to_numpy(dtype=bool) if "gun" in inc else np.zeros(len(inc), bool)
        with_victim = inc["incident_id"].isin(set(inv.loc[inv["role"] == "victim", "incident_id"])).to_numpy()
        sel = inper & gun & with_victim
    elif target == "violent":
        sel = inper & (inc["violent"].to_numpy(dtype=bool) if "violent" in inc else np.zeros(len(inc), bool))
    else:
        sel = inper
    ids = set(inc["incident_id"].to_numpy()[sel])
    rows = inv[inv["incident_id"].isin(ids)]
    off = rows[rows["role"].isin(["offender", "suspect", "arrestee"])]
    vic = rows[rows["role"] == "victim"]
    if target == "offending":
        return set(off["person_id"]), set(), set(off["person_id"])
    return set(off["person_id"]) | set(vic["person_id"]), set(vic["person_id"]), set(off["person_id"])


def _ssl_inputs(st) -> pd.DataFrame:
    """The SSL-style baseline's eight predictors, from the same window as the run."""
    net, rec = st.network, st.records
    from ..graph.layers import FLAG_OFFENDING, FLAG_VICTIM
    I = net.incidence
    code = pd.Series("", index=net.incident_ids)
    inc = rec.incidents.set_index("incident_id")
    for col in ("nibrs_code", "offense"):
        if col in inc:
            code = code.where(code != "", inc[col].reindex(net.incident_ids).fillna("").astype(str).str.upper())
    code = code.to_numpy(dtype=object)
    n = net.n_persons
    off = (I.flags & FLAG_OFFENDING) != 0
    vic = (I.flags & FLAG_VICTIM) != 0
    c = code[I.inc]

    def count(mask):
        return np.bincount(I.person[mask], minlength=n)

    s = st.scores
    last = net.as_of_day - 365
    recent = count(off & (net.inc_day[I.inc] > last))
    older = count(off & (net.inc_day[I.inc] <= last))
    return pd.DataFrame({
        "ssl_shooting_victim": s["shooting_victimization"].to_numpy(),
        "ssl_age": s["age"].to_numpy(dtype=float),
        "ssl_assault_victim": count(vic & np.isin(c, list(ASSAULT))),
        "ssl_violent_arrests": s["violent_offending"].to_numpy(),
        "ssl_gang": (s["group"].to_numpy(dtype=object) != "").astype(int),
        "ssl_narcotics_arrests": count(off & np.isin(c, list(NARCOTICS))),
        "ssl_trend": recent - older / max(1.0, (net.as_of_day - net.window_start_day - 365) / 365.0),
        "ssl_weapon_arrests": count(off & np.isin(c, list(WEAPONS))),
    })


def snapshots(data_dirs: Sequence[str | Path], *, policy: Policy, horizon_days: int = 120,
              origins: int = 6, step_days: int | None = None, min_history_days: int = 365,
              as_of: Sequence[str] | None = None, target: str = "shooting",
              progress: Callable[[str], None] | None = None) -> list[Snapshot]:
    """Run the pipeline at each origin of each input folder and attach next-period labels."""
    from ..api import study

    if target not in TARGETS:
        raise UsageError(f"--target must be one of {', '.join(TARGETS)}")
    step = step_days or horizon_days
    say = progress or (lambda s: None)
    out = []
    for d in data_dirs:
        full = load_records(d)
        first = int(full.incidents["day"].min())
        last = int(full.incidents["day"].max())
        if as_of:
            days = sorted(iso_to_day(a) for a in as_of)
        else:
            days = [last - horizon_days - k * step for k in range(origins)][::-1]
            days = [x for x in days if x - first >= min_history_days]
        if not days:
            raise UsageError(f"{d}: the records span {day_to_iso(first)}..{day_to_iso(last)}, too short for "
                             f"{horizon_days}-day labels after {min_history_days} days of history")
        for od in days:
            if od + horizon_days > last:
                raise UsageError(f"{d}: origin {day_to_iso(od)} plus the {horizon_days}-day horizon passes the "
                                 f"last record ({day_to_iso(last)}); its labels would be incomplete")
            o = day_to_iso(od)
            say(f"{Path(d).name} as of {o}")
            st = study(d, as_of=o, policy=policy)
            f = st.scores.copy()
            feats = f[list(FEATURES)].copy()
            feats.insert(0, "person_id", f["person_id"].to_numpy())
            sex = pd.Series("", index=f["person_id"])
            if st.records.persons is not None and "sex" in st.records.persons:
                sex = st.records.persons.set_index("person_id")["sex"].reindex(f["person_id"]).fillna("")
            feats["male"] = (normalise_sex(sex) == "M").to_numpy().astype(int)   # the one shared reading
            feats["score_policy"] = f["score"].to_numpy()
            feats["shooting_involvement"] = f["gun_offending"].to_numpy() + f["shooting_victimization"].to_numpy()
            feats = pd.concat([feats, _ssl_inputs(st)], axis=1)
            people, vic, off = _labels(full, od, horizon_days, target)
            feats["y"] = feats["person_id"].isin(people).astype(int)
            feats["y_victim"] = feats["person_id"].isin(vic).astype(int)
            feats["y_offender"] = feats["person_id"].isin(off).astype(int)
            outside = len(people - set(feats["person_id"]))
            out.append(Snapshot(str(d), o, feats, outside))
    return out


# --------------------------------------------------------------------------------------
# the scorecard fit
# --------------------------------------------------------------------------------------

def _segment(g: np.ndarray, w: np.ndarray, k: int) -> list[int]:
    """Cut a monotone step function into at most k contiguous segments (weighted least squares).

    Returns the start index of each segment after the first. Exact dynamic
    programme, O(k n^2) with n <= 256 steps.
    """
    n = len(g)
    if n <= 1 or k <= 1:
        return []
    w = np.maximum(w, 1e-9)
    cw = np.concatenate([[0], np.cumsum(w)])
    cg = np.concatenate([[0], np.cumsum(w * g)])
    cg2 = np.concatenate([[0], np.cumsum(w * g * g)])

    def sse(i, j):  # segment [i, j)
        ww = cw[j] - cw[i]
        s = cg[j] - cg[i]
        return (cg2[j] - cg2[i]) - s * s / ww

    k = min(k, n)
    INF = float("inf")
    cost = np.full((k + 1, n + 1), INF)
    arg = np.zeros((k + 1, n + 1), dtype=int)
    cost[0, 0] = 0.0
    for s in range(1, k + 1):
        for j in range(1, n + 1):
            best, bi = INF, 0
            for i in range(s - 1, j):
                c = cost[s - 1, i] + sse(i, j)
                if c < best - 1e-15:
                    best, bi = c, i
            cost[s, j], arg[s, j] = best, bi
    s = int(np.argmin(cost[1:, n]) + 1)
    # fewest segments within a whisker of the best
    best = cost[s, n]
    for t in range(1, k + 1):
        if cost[t, n] <= best + 1e-9 * max(1.0, abs(best)):
            s = t
            break
    cuts = []
    j = n
    while s > 0:
        i = arg[s, j]
        if i > 0:
            cuts.append(i)
        j, s = i, s - 1
    return sorted(cuts)


def _nice_threshold(t: float, integer: bool, values: np.ndarray) -> float:
    """A readable threshold ``b`` with the fitted split's meaning: value <= t scores below, value > t above.

    The table reads "value >= b", so ``b`` is the smallest observed value above
    ``t``, rounded down to three significant digits while it stays above ``t``.
    """
    if integer:
        return float(math.floor(t) + 1)
    above = values[values > t]
    v = float(above.min()) if len(above) else float(t) + 1e-9
    if v == 0:
        return 0.0
    mag = 10 ** (math.floor(math.log10(abs(v))) - 2)
    nice = float(round(math.floor(v / mag) * mag, 12))
    return nice if nice > t else v


def fit_scorecard(X: pd.DataFrame, y: np.ndarray, *, base: Policy, max_bins: int = 6, seed: int = 0,
                  features: Sequence[str] = FEATURES, offset: str | None = None) -> dict[str, Component]:
    """Fit monotone additive points per feature (see the module docstring).

    ``offset`` names a column of ``X`` (a score fitted before) that enters the
    model as one more monotone term but gets no points: the features' points
    are then what they add on top of it.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier

    # a feature without two distinct known values in the training data cannot be fitted: 0 points
    flat = [c for c in features if X[c].dropna().nunique() < 2]
    cols = [c for c in features if c not in flat]
    if offset is not None and X[offset].nunique() >= 2:
        cols.append(offset)
    Xa = X[cols].to_numpy(dtype=float)
    mono = [-1 if c in DECREASING else 1 for c in cols]
    big = len(y) >= 20_000
    # small histories (a few hundred people) need smaller leaves and no held-out early stopping
    model = HistGradientBoostingClassifier(
        loss="log_loss", learning_rate=0.05, max_iter=400 if big else 100, max_leaf_nodes=4,
        min_samples_leaf=int(np.clip(len(y) // 100, 10, 200)),
        l2_regularization=1.0, interaction_cst="no_interactions", monotonic_cst=mono,
        early_stopping=big, validation_fraction=0.2 if big else None, n_iter_no_change=30, random_state=seed)
    model.fit(Xa, y)
    # Reference row: every feature at its lowest-risk value (0 for counts, the oldest age).
    finite_max = np.nanmax(np.where(np.isfinite(Xa), Xa, np.nan), axis=0)
    ref = np.array([finite_max[i] if c in DECREASING else 0.0 for i, c in enumerate(cols)])
    ref = np.nan_to_num(ref)
    raw_ref = float(model.decision_function(ref[None, :])[0])
    thresholds = model._bin_mapper.bin_thresholds_  # the only places the fitted function can step
    comps: dict[str, Component] = {}
    for i, c in enumerate(cols):
        if c == offset:
            continue
        th = np.asarray(thresholds[i], dtype=float)
        vals = Xa[:, i]
        fin = vals[np.isfinite(vals)]
        integer = bool(np.all(np.equal(np.mod(fin, 1), 0))) if len(fin) else True
        # one representative value per step: below the first threshold, between thresholds, above the last
        if len(th):
            reps = np.concatenate([[th[0] - 1.0], (th[:-1] + th[1:]) / 2.0, [th[-1] + 1.0]])
        else:
            reps = np.array([0.0])
        grid = np.tile(ref, (len(reps) + 1, 1))
        grid[:-1, i] = reps
        grid[-1, i] = np.nan
        raw = model.decision_function(grid) - raw_ref
        g, g_missing = raw[:-1] * SCALE, raw[-1] * SCALE
        counts = np.bincount(np.searchsorted(th, fin, side="left"), minlength=len(reps)).astype(float) \
            if len(th) else np.array([float(len(fin))])
        cuts = _segment(g, counts + 1e-3, max_bins)
        bounds = [0] + cuts + [len(g)]
        pts = []
        for a, b in zip(bounds[:-1], bounds[1:]):
            w = counts[a:b] + 1e-3
            pts.append(float(np.round(np.sum(w * g[a:b]) / np.sum(w))))
        bins = [_nice_threshold(float(th[k - 1]), integer, fin) for k in cuts]
        # merge equal neighbours (after rounding) and duplicate thresholds
        mb, mp = [], [pts[0]]
        for t, p in zip(bins, pts[1:]):
            if p == mp[-1] or (mb and t <= mb[-1]):
                mp[-1] = mp[-1] if p == mp[-1] else p
                continue
            mb.append(t)
            mp.append(p)
        counts_for = base.components[c].counts_for
        can_miss = bool(np.isnan(vals).any())
        if not mb:
            comps[c] = Component(points=0.0, counts_for=counts_for,
                                 missing_points=float(np.round(g_missing)) if can_miss else 0.0)
        else:
            shift = min(mp)  # points are relative to the lowest-risk bin
            comps[c] = Component(points=[p - shift for p in mp], bins=mb, counts_for=counts_for,
                                 missing_points=float(max(0.0, np.round(g_missing) - shift)) if can_miss else 0.0)
    for c in flat:
        comps[c] = Component(points=0.0, counts_for=base.components[c].counts_for)
    return {c: comps[c] for c in features}


def split_features(base: Policy, features: Sequence[str] = FEATURES) -> tuple[list[str], list[str]]:
    """(enforcement components, the others): the points that rank the enforcement lists are fitted
    first, on those components alone; the others (victimization, and demographic attributes the policy
    does not justify for enforcement) are fitted afterwards on top of that score, so the enforcement
    points never depend on them (docs/calibration.md).

    >>> first, later = split_features(Policy())
    >>> later
    ['shooting_victimization', 'contagion_risk', 'age']
    """
    first = [c for c in features if "enforcement" in base.components[c].counts_for]
    return first, [c for c in features if c not in first]


def score_with(components: dict[str, Component], X: pd.DataFrame) -> np.ndarray:
    """The score a run would give: the sum of each component's points."""
    return np.round(sum(components[c].score(X[c].to_numpy(dtype=float)) for c in components), 6)


# --------------------------------------------------------------------------------------
# evaluation
# --------------------------------------------------------------------------------------

def _auc(y: np.ndarray, s: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score
    if y.min() == y.max():
        return None
    return float(roc_auc_score(y, s))


def delong(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """ROC AUCs of several rankings of the same people, and their covariance (DeLong et al. 1988).

    ``scores`` is (rankings, people). The fast midrank form (Sun and Xu 2014);
    ties count one half, as in scikit-learn's ``roc_auc_score``. ``None`` when
    ``y`` holds one class only.

    >>> y = np.array([0, 0, 1, 1, 0, 1])
    >>> auc, cov = delong(y, np.array([[1, 2, 3, 4, 2, 5], [6, 5, 4, 3, 2, 1]], dtype=float))
    >>> np.round(auc, 4).tolist(), bool(cov[0, 0] >= 0)
    ([1.0, 0.2222], True)
    """
    from scipy.stats import rankdata

    y = np.asarray(y).astype(bool)
    m, n = int(y.sum()), int((~y).sum())
    if m == 0 or n == 0:
        return None
    S = np.atleast_2d(np.asarray(scores, dtype=float))
    pos, neg = S[:, y], S[:, ~y]
    tx = rankdata(pos, axis=1)
    ty = rankdata(neg, axis=1)
    tz = rankdata(np.concatenate([pos, neg], axis=1), axis=1)
    auc = (tz[:, :m].sum(axis=1) - m * (m + 1) / 2.0) / (m * n)
    v01 = (tz[:, :m] - tx) / n           # per positive: share of negatives ranked below
    v10 = 1.0 - (tz[:, m:] - ty) / m     # per negative: share of positives ranked above
    sx = np.atleast_2d(np.cov(v01)) if m > 1 else np.zeros((len(S), len(S)))
    sy = np.atleast_2d(np.cov(v10)) if n > 1 else np.zeros((len(S), len(S)))
    return auc, sx / m + sy / n


def proportion_ci(k, n, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Clopper-Pearson) binomial interval for ``k`` successes in ``n``; NaN where ``n`` is 0.

    >>> lo, hi = proportion_ci(np.array([0, 5, 10]), np.array([10, 10, 10]))
    >>> np.round(lo, 3).tolist(), np.round(hi, 3).tolist()
    ([0.0, 0.187, 0.692], [0.308, 0.813, 1.0])
    """
    from scipy.stats import beta

    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    a = (1 - level) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        lo = np.where(k > 0, beta.ppf(a, k, n - k + 1), 0.0)
        hi = np.where(k < n, beta.ppf(1 - a, k + 1, n - k), 1.0)
    bad = n <= 0
    return np.where(bad, np.nan, lo), np.where(bad, np.nan, hi)


def _capture_counts(y: np.ndarray, s: np.ndarray, k: int, tie_key: np.ndarray) -> int:
    """Positives found in the top ``k`` (ties broken by person_id, as the lists do)."""
    order = np.lexsort((tie_key, -s))
    return int(y[order[:k]].sum())


def _capture(y: np.ndarray, s: np.ndarray, k: int, total: int, tie_key: np.ndarray) -> float | None:
    """Share of ``total`` positives found in the top ``k`` (ties broken by person_id, as the lists do)."""
    if total == 0:
        return None
    return float(_capture_counts(y, s, k, tie_key) / total)


def capture_cuts(n: int, top_k: int) -> list[tuple[str, int]]:
    """The capture cut-offs: top 1%, top 2% and top K of ``n`` people."""
    return [("top_1pct", max(1, n // 100)), ("top_2pct", max(1, n // 50)), (f"top_{top_k}", top_k)]


def evaluate(y: np.ndarray, s: np.ndarray, person_id: np.ndarray, *, outside: int, top_k: int,
             auc_se: float | None = None) -> dict:
    """One ranking on one test origin: AUC (with a 95% interval when ``auc_se`` is given) and capture
    (found / all positives, with an exact binomial 95% interval)."""
    n = len(y)
    total = int(y.sum()) + outside
    auc = _auc(y, s)
    res = {"auc": auc, "people": n, "positives": int(y.sum()), "positives_outside_network": outside}
    if auc_se is not None and auc is not None:
        res["auc_ci95_low"] = max(0.0, auc - Z95 * auc_se)
        res["auc_ci95_high"] = min(1.0, auc + Z95 * auc_se)
    for name, k in capture_cuts(n, top_k):
        found = _capture_counts(y, s, k, person_id) if total else 0
        res[f"capture_{name}"] = found / total if total else None
        res[f"found_{name}"] = found
    return res


def _fit_logistic(X: np.ndarray, y: np.ndarray):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0)).fit(X, y)


def _ssl_points(train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    """SSL-style: logistic regression on eight predictors, coefficients turned into whole points."""
    Xtr = train[list(SSL_PREDICTORS)].fillna({"ssl_age": 40}).to_numpy(dtype=float)
    Xte = test[list(SSL_PREDICTORS)].fillna({"ssl_age": 40}).to_numpy(dtype=float)
    m = _fit_logistic(Xtr, train["y"].to_numpy())
    sc, lr = m.steps[0][1], m.steps[1][1]
    coef = lr.coef_[0] / sc.scale_
    return np.round(Xte @ np.round(coef * SCALE, 1), 6)


def _demographics(train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    def design(df):
        age = df["age"].to_numpy(dtype=float)
        known = ~np.isnan(age)
        a = np.nan_to_num(age, nan=40.0)
        bands = [(a < 18), (a >= 18) & (a < 25), (a >= 25) & (a < 35), (a >= 35) & (a < 45)]
        return np.column_stack([b & known for b in bands] + [~known, df["male"].to_numpy()]).astype(float)
    m = _fit_logistic(design(train), train["y"].to_numpy())
    return m.decision_function(design(test))


def calibration_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict]:
    """Observed against predicted rates by predicted-risk decile (ties kept together)."""
    order = np.argsort(p, kind="stable")
    edges = np.linspace(0, len(p), bins + 1).astype(int)
    rows = []
    for b in range(bins):
        idx = order[edges[b]:edges[b + 1]]
        if len(idx) == 0:
            continue
        rows.append({"bin": b + 1, "people": int(len(idx)), "predicted": round(float(p[idx].mean()), 6),
                     "observed": round(float(y[idx].mean()), 6), "positives": int(y[idx].sum())})
    return rows


@dataclass
class CalibrationResult:
    policy: Policy
    report: dict
    folds: pd.DataFrame = field(default_factory=pd.DataFrame)


def _fit_policy(train: pd.DataFrame, base: Policy, max_bins: int, seed: int, horizon: int,
                fitted_on: str) -> Policy:
    """Fit the points in two stages (docs/calibration.md): the enforcement components jointly
    (monotone additive boosting), then the others on top of the enforcement score."""
    from sklearn.linear_model import LogisticRegression

    y = train["y"].to_numpy()
    first, later = split_features(base)
    comps = fit_scorecard(train, y, base=base, max_bins=max_bins, seed=seed, features=first)
    if later:
        X2 = train[later].assign(_enforcement_score=score_with(comps, train))
        comps.update(fit_scorecard(X2, y, base=base, max_bins=max_bins, seed=seed, features=later,
                                   offset="_enforcement_score"))
    comps = {c: comps[c] for c in FEATURES}
    s = score_with(comps, train)
    lr = LogisticRegression(max_iter=1000, C=1e6).fit(s[:, None], y)
    raw = base.effective()
    raw["components"] = {k: v.model_dump(mode="json", exclude_none=True) for k, v in comps.items()}
    for k, v in raw["components"].items():      # a justification the base policy gave stays with its component
        if base.components[k].justification:
            v["justification"] = base.components[k].justification
    raw["calibration"] = {"horizon_days": horizon, "intercept": round(float(lr.intercept_[0]), 6),
                          "slope": round(max(0.0, float(lr.coef_[0][0])), 8), "fitted_on": fitted_on}
    return policy_from_dict(raw, source="calibrated policy")


CALIBRATED, AS_GIVEN = "fdnet (calibrated)", "fdnet (policy as given)"
ENF_CALIBRATED, ENF_AS_GIVEN = "fdnet enforcement score (calibrated)", "fdnet enforcement score (policy as given)"
SINGLE_FEATURES = ("violent offending count", "offending count", "shooting involvement")


def _enforcement(components: dict[str, Component]) -> dict[str, Component]:
    return {k: c for k, c in components.items() if "enforcement" in c.counts_for}


def calibrate(data_dirs: Sequence[str | Path], *, base: Policy | None = None, horizon_days: int = 120,
              origins: int = 6, step_days: int | None = None, max_bins: int = 6, top_k: int | None = None,
              seed: int = 0, target: str = "shooting", fit: bool = True, as_of: Sequence[str] | None = None,
              min_history_days: int = 365, snaps: Sequence[Snapshot] | None = None,
              progress: Callable[[str], None] | None = None) -> CalibrationResult:
    """Rolling-origin backtest; with ``fit`` the points are fitted, else ``base`` is evaluated as it is.

    Two fdnet rankings are evaluated: the score over every component (what
    ``risk``, the probability, is computed from; named "fdnet (...)") and the
    **enforcement score** the call-in and custom-notification lists rank by
    (only the components that count for enforcement: never victimization,
    never a demographic attribute unless the policy justifies it). Every
    AUC has a DeLong 95% interval, every capture an exact binomial one, and
    the margin over the best single feature a paired DeLong interval.
    ``snaps`` (from :func:`snapshots`) skips recomputing the snapshots: the
    points do not enter them, so one set serves several policies.
    """
    base = base or Policy()
    top_k = top_k or base.lists.custom_notifications.size
    t0 = time.time()
    if snaps is None:
        snaps = snapshots(data_dirs, policy=base, horizon_days=horizon_days, origins=origins, step_days=step_days,
                          target=target, as_of=as_of, min_history_days=min_history_days, progress=progress)
    # one canonical order (origin, then folder), so the fit cannot depend on the order the folders
    # were named in (boosting's validation split is drawn by row position)
    snaps = sorted(snaps, key=lambda s_: (iso_to_day(s_.origin), str(s_.data)))
    origins_all = sorted({iso_to_day(s.origin) for s in snaps})
    folds, rows = [], []
    fold_cov: dict[str, tuple[list[str], np.ndarray]] = {}
    for od in origins_all[1:] if fit else origins_all:
        test = [s for s in snaps if iso_to_day(s.origin) == od]
        train = [s for s in snaps if iso_to_day(s.origin) + horizon_days <= od]
        if fit and not train:
            continue
        te = pd.concat([s.frame for s in test], ignore_index=True)
        outside = sum(s.positives_outside for s in test)
        y = te["y"].to_numpy()
        pid = te["person_id"].to_numpy(dtype=str)
        rankings: dict[str, np.ndarray] = {}
        if fit:
            tr = pd.concat([s.frame for s in train], ignore_index=True)
            if tr["y"].sum() < 5:
                continue
            pol = _fit_policy(tr, base, max_bins, seed, horizon_days, "fold")
            rankings[CALIBRATED] = score_with(pol.components, te)
            rankings[ENF_CALIBRATED] = score_with(_enforcement(pol.components), te)
        # the policy's scores, recomputed from the features exactly as a run computes them
        rankings[AS_GIVEN] = score_with(base.components, te)
        rankings[ENF_AS_GIVEN] = score_with(_enforcement(base.components), te)
        rankings["violent offending count"] = te["violent_offending"].to_numpy(dtype=float)
        rankings["offending count"] = te["offending"].to_numpy(dtype=float)
        rankings["shooting involvement"] = te["shooting_involvement"].to_numpy(dtype=float)
        if fit:
            rankings["demographics only (age, sex)"] = _demographics(tr, te)
            rankings["SSL-style 8-predictor points"] = _ssl_points(tr, te)
        names = list(rankings)
        dl = delong(y, np.vstack([rankings[k] for k in names]))
        ses = np.sqrt(np.maximum(np.diag(dl[1]), 0.0)) if dl is not None else [None] * len(names)
        if dl is not None:
            fold_cov[day_to_iso(od)] = (names, dl[1])
        for name, se in zip(names, ses):
            r = evaluate(y, rankings[name], pid, outside=outside, top_k=top_k,
                         auc_se=None if se is None else float(se))
            r.update({"origin": day_to_iso(od), "ranking": name,
                      "train_origins": ";".join(sorted({s_.origin for s_ in train})) if fit else ""})
            rows.append(r)
        folds.append(day_to_iso(od))
    table = pd.DataFrame(rows)
    if table.empty:
        raise UsageError("no fold could be evaluated: too little history or too few positive labels")
    test_positives = int(table.drop_duplicates("origin")["positives"].sum())
    if test_positives < REFUSE_BELOW_POSITIVES:
        raise UsageError(
            f"the test origins hold only {test_positives} people with the target event (fewer than "
            f"{REFUSE_BELOW_POSITIVES}): an AUC or a capture rate from so few says nothing; use more origins "
            "(--origins, --as-of), a longer --horizon, more data or a more frequent --target")
    final = base
    if fit:
        tr_all = pd.concat([s.frame for s in snaps], ignore_index=True)
        names_ = ", ".join(sorted({Path(s.data).name for s in snaps}))
        final = _fit_policy(tr_all, base, max_bins, seed, horizon_days,
                            f"fdnet calibrate on {names_}: {len(snaps)} snapshots "
                            f"({snaps[0].origin}..{snaps[-1].origin}), {int(tr_all['y'].sum())} positives, "
                            f"target {target}, horizon {horizon_days} days")
    summary = _summarise(table, fold_cov, top_k)
    best_single = summary[summary["ranking"].isin(SINGLE_FEATURES)].sort_values(
        "auc_mean", ascending=False, kind="stable").iloc[0]
    main = CALIBRATED if fit else AS_GIVEN
    main_enf = ENF_CALIBRATED if fit else ENF_AS_GIVEN
    ours = summary[summary["ranking"] == main].iloc[0]
    margin = _margin(table, fold_cov, main, best_single["ranking"])
    margin_enf = _margin(table, fold_cov, main_enf, best_single["ranking"])
    # calibration table of the final (or given) scorecard on every test fold
    te_all = pd.concat([s.frame for s in snaps if s.origin in folds], ignore_index=True)
    p = 1 / (1 + np.exp(-(final.calibration.intercept + final.calibration.slope * score_with(final.components, te_all))))
    first, later = split_features(final)
    warnings = []
    if test_positives < WARN_BELOW_POSITIVES:
        warnings.append(f"Only {test_positives} people with the target event in the test origins (fewer than "
                        f"{WARN_BELOW_POSITIVES}): the intervals are wide; read the margins with them.")
    for label, mg in (("", margin), ("enforcement score's ", margin_enf)):
        if mg["ci95_low"] is not None and mg["ci95_low"] <= 0 <= mg["ci95_high"]:
            warnings.append(f"fdnet's {label}margin over {best_single['ranking']}, {mg['value']:+.3f} (95% interval "
                            f"{mg['ci95_low']:+.3f} to {mg['ci95_high']:+.3f}), is not distinguishable from zero.")
        elif mg["ci95_high"] is not None and mg["ci95_high"] < 0:
            warnings.append(f"fdnet's {label}ranking is worse than {best_single['ranking']} (margin "
                            f"{mg['value']:+.3f}, 95% interval {mg['ci95_low']:+.3f} to {mg['ci95_high']:+.3f}).")
    if fit and int(tr_all["y"].sum()) < WARN_BELOW_POSITIVES:
        warnings.append(f"The final scorecard was fitted on {int(tr_all['y'].sum())} positives (fewer than "
                        f"{WARN_BELOW_POSITIVES}): its points are rough; review them before use.")
    report = {
        "target": target, "horizon_days": horizon_days, "data": [str(Path(d)) for d in data_dirs],
        "snapshots": [{"data": s.data, "origin": s.origin, "people": int(len(s.frame)),
                       "positives": int(s.frame["y"].sum()), "positives_outside_network": s.positives_outside}
                      for s in snaps],
        "test_origins": folds, "top_k": top_k, "fitted": bool(fit),
        "summary": _records(summary),
        "folds": _records(table),
        "best_single_feature": {"ranking": best_single["ranking"], "auc_mean": float(best_single["auc_mean"])},
        "fdnet_auc_mean": float(ours["auc_mean"]),
        "margin_over_best_single_feature": margin["value"],
        "margin_ci95": [margin["ci95_low"], margin["ci95_high"]],
        "enforcement_margin_over_best_single_feature": margin_enf["value"],
        "enforcement_margin_ci95": [margin_enf["ci95_low"], margin_enf["ci95_high"]],
        "test_positives": test_positives,
        "positive_thresholds": {"refuse_below": REFUSE_BELOW_POSITIVES, "warn_below": WARN_BELOW_POSITIVES},
        "enforcement_components": [k for k, c in final.components.items() if "enforcement" in c.counts_for],
        "fitted_after_the_others": later if fit else [],
        "demographic_enforcement": final.demographic_enforcement(),
        "warnings": warnings,
        "calibration_table_final_policy": calibration_table(te_all["y"].to_numpy(), p),
        "seconds": round(time.time() - t0, 1),
    }
    return CalibrationResult(final, report, table)


def _summarise(table: pd.DataFrame, fold_cov: dict, top_k: int) -> pd.DataFrame:
    """Per ranking over the test origins: mean AUC with a 95% interval (folds taken as independent),
    minimum AUC, and capture pooled over the origins (found / all positives) with an exact interval."""
    cuts = [name for name, _ in capture_cuts(1, top_k)]
    out = []
    for name, g in table.groupby("ranking", sort=False):
        aucs = g["auc"].astype(float)
        var = [fold_cov[o][1][fold_cov[o][0].index(name)][fold_cov[o][0].index(name)]
               for o in g["origin"] if o in fold_cov]
        m = int(aucs.notna().sum())
        se = math.sqrt(max(0.0, float(np.sum(var)))) / m if m and var else math.nan
        mean = float(aucs.mean()) if m else math.nan
        r = {"ranking": name, "auc_mean": mean,
             "auc_ci95_low": max(0.0, mean - Z95 * se) if se == se else math.nan,
             "auc_ci95_high": min(1.0, mean + Z95 * se) if se == se else math.nan,
             "auc_min": float(aucs.min()) if m else math.nan, "folds": m}
        total = int((g["positives"] + g["positives_outside_network"]).sum())
        r["positives"] = total
        for c in cuts:
            found = int(g[f"found_{c}"].sum())
            lo, hi = proportion_ci(found, total)
            r[f"capture_{c}"] = found / total if total else math.nan
            r[f"capture_{c}_ci95_low"] = float(lo)
            r[f"capture_{c}_ci95_high"] = float(hi)
        out.append(r)
    return pd.DataFrame(out)


def _margin(table: pd.DataFrame, fold_cov: dict, ours: str, other: str) -> dict:
    """Mean over test origins of AUC(ours) - AUC(other), with a paired DeLong 95% interval."""
    a = table[table["ranking"] == ours].set_index("origin")["auc"]
    b = table[table["ranking"] == other].set_index("origin")["auc"]
    d = (a - b).dropna()
    if d.empty:
        return {"value": None, "ci95_low": None, "ci95_high": None}
    var = 0.0
    for o in d.index:
        names, cov = fold_cov[o]
        i, j = names.index(ours), names.index(other)
        var += cov[i, i] + cov[j, j] - 2 * cov[i, j]
    se = math.sqrt(max(0.0, var)) / len(d)
    v = float(d.mean())
    return {"value": round(v, 6), "ci95_low": round(v - Z95 * se, 6), "ci95_high": round(v + Z95 * se, 6)}


def _records(df: pd.DataFrame) -> list[dict]:
    out = []
    for r in df.to_dict("records"):
        out.append({k: (None if isinstance(v, float) and v != v else round(v, 6) if isinstance(v, float) else v)
                    for k, v in r.items()})
    return out


def report_markdown(rep: dict, policy: Policy | None = None) -> str:
    """The backtest report as Markdown (backtest.md)."""
    k = rep["top_k"]
    lines = [f"# fdnet backtest — target: {rep['target']} within {rep['horizon_days']} days", "",
             ("Rolling-origin evaluation: each test origin is scored by a model fitted only on snapshots "
              "whose label period ended by that origin (docs/calibration.md)." if rep.get("fitted", True) else
              "The policy as given is evaluated at every origin, with nothing fitted; the demographics and "
              "SSL-style baselines need a fit and are left out (docs/calibration.md)."), "",
             "## Snapshots", "", "| data | origin | people | positives | positives outside the network |",
             "|---|---|---:|---:|---:|"]
    for s in rep["snapshots"]:
        lines.append(f"| {Path(s['data']).name} | {s['origin']} | {s['people']:,} | {s['positives']:,} | "
                     f"{s['positives_outside_network']:,} |")
    lines += ["", "## Rankings (over the test origins)", "",
              "ROC AUC: the mean over test origins with a 95% interval (DeLong, the origins taken as independent). "
              "Capture: the share of all people with the target event found in the top 1%, 2% and top K, pooled "
              "over the test origins, with an exact binomial 95% interval. The **enforcement score** is what the "
              "call-in and custom-notification lists rank by (no victimization, and no demographic attribute "
              "unless the policy justifies it); the other fdnet rows rank by the score over every component, "
              "from which `risk`, the probability, is computed.", "",
              f"| ranking | ROC AUC (95% CI) | min AUC | capture top 1% | capture top 2% | capture top {k} |",
              "|---|---:|---:|---:|---:|---:|"]

    def f(v):
        return "—" if v is None else f"{v:.3f}"

    def ci(r, key, stem=None):
        lo, hi = r.get(f"{stem or key}_ci95_low"), r.get(f"{stem or key}_ci95_high")
        return f(r[key]) if lo is None or hi is None else f"{f(r[key])} ({lo:.3f}–{hi:.3f})"
    for r in rep["summary"]:
        lines.append(f"| {r['ranking']} | {ci(r, 'auc_mean', 'auc')} | {f(r['auc_min'])} | "
                     f"{ci(r, 'capture_top_1pct')} | {ci(r, 'capture_top_2pct')} | {ci(r, f'capture_top_{k}')} |")
    best = rep["best_single_feature"]

    def margin(v, c):
        if v is None:
            return "—"
        return f"**{v:+.3f}**" + ("" if c is None or c[0] is None else f" (95% CI {c[0]:+.3f} to {c[1]:+.3f})")
    lines += ["", f"Best single-feature baseline: **{best['ranking']}** (AUC {best['auc_mean']:.3f}); fdnet "
              f"{rep['fdnet_auc_mean']:.3f}, margin {margin(rep['margin_over_best_single_feature'], rep.get('margin_ci95'))}; "
              "the enforcement score's margin "
              f"{margin(rep.get('enforcement_margin_over_best_single_feature'), rep.get('enforcement_margin_ci95'))} "
              "(paired DeLong intervals).", "",
              f"{rep.get('test_positives', 0):,} people with the target event in the test origins (a backtest is "
              f"refused below {REFUSE_BELOW_POSITIVES} and warns below {WARN_BELOW_POSITIVES}).", ""]
    if rep.get("warnings"):
        lines += ["**Warnings**", ""] + [f"- {w}" for w in rep["warnings"]] + [""]
    if rep.get("fitted_after_the_others"):
        lines += [f"Fitted after, and never inside, the enforcement points: {', '.join(rep['fitted_after_the_others'])} "
                  "(they inform the risk estimate and the service score only).", ""]
    for d in rep.get("demographic_enforcement", []):
        lines += [f"Demographic component counting for enforcement: **{d['component']}** (up to {d['max_points']:g} "
                  f"points), justified as: “{d['justification']}”", ""]
    lines += ["Capture counts every person involved in the target events, including those not in the network at "
              "the origin (who no ranking can find).", "",
              "## Calibration of the final scorecard (test origins)", "",
              "| decile | people | predicted | observed | positives |", "|---:|---:|---:|---:|---:|"]
    for r in rep["calibration_table_final_policy"]:
        lines.append(f"| {r['bin']} | {r['people']:,} | {r['predicted']:.4f} | {r['observed']:.4f} | {r['positives']} |")
    lines += ["", "## Per test origin", "", "| origin | ranking | AUC (95% CI) | positives |", "|---|---|---:|---:|"]
    for r in rep["folds"]:
        lines.append(f"| {r['origin']} | {r['ranking']} | {ci(r, 'auc')} | {r['positives']} |")
    if policy is not None:
        lines += ["", "## The scorecard", "", "| component | rule | counts for |", "|---|---|---|"]
        for name, c in policy.components.items():
            if c.bins is None:
                rule = f"{c.points:g} per unit" + (f", cap {c.cap:g}" if c.cap else "")
            else:
                parts = [f"< {c.bins[0]:g}: {c.points[0]:g}"] + [
                    f"≥ {b:g}: {p:g}" for b, p in zip(c.bins, c.points[1:])]
                rule = "; ".join(parts)
            if c.missing_points:
                rule += f"; unknown: {c.missing_points:g}"
            lines.append(f"| {name} | {rule} | {', '.join(c.counts_for) or '(risk only)'} |")
    lines.append("")
    return "\n".join(lines)


__all__ = ["calibrate", "snapshots", "fit_scorecard", "score_with", "evaluate", "calibration_table",
           "report_markdown", "CalibrationResult", "VICTIMIZATION_COMPONENTS"]
