"""Risk terrain modelling after Caplan and Kennedy: which kinds of place raise the count of shootings in a cell.

**Spatial influence.** For every place-feature kind, two operationalisations are tried:

* *proximity* at each distance ``d`` of ``places.proximity_m``: the share of the cell's area within ``d`` metres
  of the nearest feature of the kind (measured on a 3×3 lattice of points in the cell, so a cell half inside
  the influence counts one half; a :class:`scipy.spatial.cKDTree` query per kind);
* *density*: the number of features of the kind within ``places.density_radius_m`` of the cell's centre.

Each is one *factor*, named ``<kind>:within_<d>m`` or ``<kind>:density_<r>m``.

**Model.** Shootings per cell ~ negative binomial (NB2, log link), with the log of the smoothed density of
the *other* incidents (every incident in the window that is not a shooting, Gaussian kernel of
``places.background_bandwidth_m``, per km², plus 1) as a covariate: the background of policing and activity a
place factor has to beat. The negative binomial's dispersion ``alpha`` (0 is Poisson) absorbs the extra
clustering of shootings (a feud's shootings in a few cells) that a Poisson count would mistake for evidence.
Coefficients and alpha are fitted by maximum likelihood (Fisher scoring on the p×p normal equations, alpha by
a bounded one-dimensional search, alternated to convergence).

**Selection** (forward, one factor at a time): each step tries every factor of every kind not yet in the
model and takes the one with the largest likelihood-ratio statistic (at the current model's alpha); it enters
when that statistic exceeds ``log(number of cells)`` (the BIC penalty of one parameter) and its relative risk
is above 1 (RTM's risk factors; a protective kind is reported, never selected). At most one operationalisation
per kind enters. A factor that only travels with another (311 requests clustering around vacant buildings) is
tried *after* the other has entered and adds nothing beyond it, so it is not credited. After each entry the
model is refitted (alpha included); relative risk = exp(coefficient) with a 95% Wald interval from the final
model, widened where a block-robust (sandwich) variance over blocks of ``places.block_m`` metres is larger
(neighbouring cells share a feud's shootings). A factor not selected reports the relative risk it would have had if added to the final model, and its
statistic, with ``selected`` false.

**Risk surface.** ``risk`` per cell: the model's expected shootings divided by their mean over the study
area (1 = an average cell), background included; ``terrain_risk``: the product of the selected factors'
relative risks at the cell (1 = none of them), the classic RTM score.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> n = 4000
>>> bg = rng.normal(size=n); x = (rng.random(n) < 0.3).astype(float); z = (rng.random(n) < 0.3).astype(float)
>>> y = rng.poisson(np.exp(-1 + 0.5 * bg + np.log(2.5) * x))
>>> fit = select(y, bg, {"a:within_300m": x, "b:within_300m": z}, {"a:within_300m": "a", "b:within_300m": "b"})
>>> fit.selected
['a:within_300m']
>>> bool(2.0 < fit.table.set_index("factor").loc["a:within_300m", "relative_risk"] < 3.1)
True
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd


def proximity_shares(grid, fx: np.ndarray, fy: np.ndarray, distances_m: list[float], m: int = 3) -> np.ndarray:
    """(cells, len(distances)) share of each cell's m×m lattice within each distance of the nearest feature."""
    from scipy.spatial import cKDTree
    px, py = grid.subpoints(m)
    dmax = float(max(distances_m))
    d, _ = cKDTree(np.column_stack([fx, fy])).query(np.column_stack([px, py]), k=1, distance_upper_bound=dmax)
    d = d.reshape(grid.n_cells, -1)         # m×m points per square cell, seven per hexagon
    return np.stack([(d <= float(r)).mean(axis=1) for r in distances_m], axis=1)


def density_counts(grid, fx: np.ndarray, fy: np.ndarray, radius_m: float) -> np.ndarray:
    """Features within ``radius_m`` of each cell centre."""
    from scipy.spatial import cKDTree
    xc, yc = grid.centres()
    return cKDTree(np.column_stack([fx, fy])).query_ball_point(
        np.column_stack([xc, yc]), r=float(radius_m), return_length=True).astype(float)


def factor_columns(grid, features: pd.DataFrame, fx: np.ndarray, fy: np.ndarray, proximity_m: list[float],
                   density_radius_m: float) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Every factor's column per cell (kinds in sorted order, proximities then density) and its kind."""
    cols: dict[str, np.ndarray] = {}
    kind_of: dict[str, str] = {}
    kinds = features["kind"].to_numpy(dtype=object)
    for k in sorted(set(kinds.tolist())):
        sel = kinds == k
        sh = proximity_shares(grid, fx[sel], fy[sel], proximity_m)
        for j, d in enumerate(proximity_m):
            name = f"{k}:within_{d:g}m"
            cols[name], kind_of[name] = sh[:, j], k
        name = f"{k}:density_{density_radius_m:g}m"
        cols[name], kind_of[name] = density_counts(grid, fx[sel], fy[sel], density_radius_m), k
    return cols, kind_of


@dataclass
class Fit:
    """The selected model: ``table`` is risk_factors.csv; ``mu`` the expected shootings per cell;
    ``coef`` the selected factors' coefficients (log relative risks)."""

    table: pd.DataFrame
    selected: list[str]
    mu: np.ndarray
    coef: dict[str, float]
    intercept: float
    background_coef: float
    dispersion: float
    threshold: float
    steps: list[dict]


def _glm(y, X):
    """statsmodels' Poisson GLM (IRLS), the check of :func:`_quick` at ``alpha=0``."""
    import statsmodels.api as sm
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sm.GLM(y, X, family=sm.families.Poisson()).fit(method="IRLS", maxiter=100, tol=1e-10)


@dataclass
class _Quick:
    params: np.ndarray
    mu: np.ndarray
    loglik: float        # the NB2 log-likelihood's terms in mu at the fit's alpha (differences are LR statistics)
    X: np.ndarray
    alpha: float

    @property
    def deviance(self) -> float:
        return -2.0 * self.loglik

    def cov(self) -> np.ndarray:
        """Inverse Fisher information of the coefficients at the fit's alpha."""
        w = self.mu / (1.0 + self.alpha * self.mu)
        return np.linalg.pinv(self.X.T @ (self.X * w[:, None]))


def _ll_mu(y, mu, alpha) -> float:
    """The terms of the NB2 log-likelihood that depend on mu (Poisson when alpha = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ylog = np.where(y > 0, y * np.log(mu), 0.0)
    if alpha <= 0:
        return float(np.sum(ylog - mu))
    return float(np.sum(ylog - (y + 1.0 / alpha) * np.log1p(alpha * mu)))


def _quick(y, X, start=None, alpha: float = 0.0, iters: int = 60, tol: float = 1e-10) -> _Quick:
    """Maximum likelihood of a log-link negative binomial (NB2, ``alpha`` fixed; Poisson at 0) by Fisher scoring
    on the p×p normal equations: the candidates of a selection step are thousands of cells and a handful of
    columns, so each step is O(n·p²). Matches statsmodels' Poisson GLM at alpha 0 (tests/places)."""
    p = X.shape[1]
    b = np.zeros(p) if start is None else np.asarray(start, float).copy()
    if start is None:
        b[0] = np.log(max(float(np.mean(y)), 1e-12))
    ll = -np.inf
    for _ in range(iters):
        mu = np.exp(np.clip(X @ b, -50, 50))
        d = 1.0 + alpha * mu
        H = X.T @ (X * (mu / d)[:, None])
        g = X.T @ ((y - mu) / d)
        try:
            step = np.linalg.solve(H + 1e-12 * np.eye(p), g)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(H, g, rcond=None)[0]
        b = b + step
        new = _ll_mu(y, np.exp(np.clip(X @ b, -50, 50)), alpha)
        done = abs(new - ll) <= tol * (1 + abs(new))
        ll = new
        if done:
            break
    mu = np.exp(np.clip(X @ b, -50, 50))
    return _Quick(b, mu, _ll_mu(y, mu, alpha), X, float(alpha))


def _alpha_ml(y, mu) -> float:
    """The NB2 dispersion alpha maximising the likelihood given mu (0 when the counts are not overdispersed)."""
    from scipy.optimize import minimize_scalar
    from scipy.special import gammaln

    def nll(la):
        a = np.exp(la)
        r = 1.0 / a
        return -float(np.sum(gammaln(y + r) - gammaln(r) + y * np.log(a * mu / (1 + a * mu)) - r * np.log1p(a * mu)))

    res = minimize_scalar(nll, bounds=(np.log(1e-6), np.log(1e3)), method="bounded", options={"xatol": 1e-6})
    pois = -float(np.sum(np.where(y > 0, y * np.log(mu), 0.0) - mu))      # + constants shared with nll's limit
    from scipy.special import gammaln as gl
    pois += float(np.sum(gl(y + 1)))
    nb = res.fun + float(np.sum(gl(y + 1)))
    return float(np.exp(res.x)) if nb < pois - 1e-9 else 0.0


def _fit(y, X, start=None, rounds: int = 4) -> _Quick:
    """Coefficients and alpha by alternating: coefficients at alpha, alpha at the coefficients."""
    r = _quick(y, X, start=start, alpha=0.0)
    for _ in range(rounds):
        a = _alpha_ml(y, r.mu)
        r2 = _quick(y, X, start=r.params, alpha=a)
        if abs(a - r.alpha) < 1e-6 * (1 + a):
            return r2
        r = r2
    return r


def _block_se(r: _Quick, y: np.ndarray, blocks: np.ndarray | None) -> np.ndarray:
    """Standard errors: the larger of the model's and the block-robust (sandwich, scores summed over blocks of
    cells) per coefficient. Shootings of one feud or one territory are not independent across neighbouring
    cells; the blocks let the interval see that."""
    bread = r.cov()
    model = np.sqrt(np.clip(np.diag(bread), 0, None))
    if blocks is None:
        return model
    u = (y - r.mu) / (1.0 + r.alpha * r.mu)
    nb = int(blocks.max()) + 1
    S = np.stack([np.bincount(blocks, weights=r.X[:, j] * u, minlength=nb) for j in range(r.X.shape[1])], axis=1)
    k = int((np.bincount(blocks, minlength=nb) > 0).sum())
    meat = S.T @ S * (k / max(k - 1, 1))
    robust = np.sqrt(np.clip(np.diag(bread @ meat @ bread), 0, None))
    return np.maximum(model, robust)


def select(y: np.ndarray, background: np.ndarray, factors: dict[str, np.ndarray], kind_of: dict[str, str],
           *, max_factors: int = 10, blocks: np.ndarray | None = None) -> Fit:
    """Forward selection and refit (see the module docstring). ``background``: the covariate per cell."""
    y = np.asarray(y, float)
    n = len(y)
    base = np.column_stack([np.ones(n), np.asarray(background, float)])
    names = [f for f in factors if np.ptp(factors[f]) > 0]          # a constant column says nothing
    threshold = float(np.log(max(n, 2)))
    chosen: list[str] = []
    steps: list[dict] = []
    cur = _fit(y, base)
    while len(chosen) < max_factors:
        used = {kind_of[c] for c in chosen}
        best = None
        for f in names:
            if f in chosen or kind_of[f] in used:
                continue
            X = np.column_stack([cur.X, factors[f]])
            r = _quick(y, X, start=np.r_[cur.params, 0.0], alpha=cur.alpha)
            stat = 2.0 * (r.loglik - cur.loglik)
            if r.params[-1] > 0 and (best is None or stat > best[1]):
                best = (f, stat)
        if best is None or best[1] <= threshold:
            if best is not None:
                steps.append({"step": len(chosen) + 1, "best_candidate": best[0], "statistic": round(float(best[1]), 4),
                              "entered": False})
            break
        chosen.append(best[0])
        steps.append({"step": len(chosen), "best_candidate": best[0], "statistic": round(float(best[1]), 4),
                      "entered": True})
        cur = _fit(y, np.column_stack([cur.X, factors[best[0]]]), start=np.r_[cur.params, 0.0])
    final = cur
    se = _block_se(final, y, blocks)
    rows = []
    coef = {}
    for j, f in enumerate(chosen):
        b, s = float(final.params[2 + j]), float(se[2 + j])
        coef[f] = b
        rows.append((f, kind_of[f], b, s, True, j + 1, np.nan))
    for f in factors:
        if f in chosen:
            continue
        if f not in names:
            rows.append((f, kind_of[f], np.nan, np.nan, False, 0, np.nan))
            continue
        r = _quick(y, np.column_stack([final.X, factors[f]]), start=np.r_[final.params, 0.0], alpha=final.alpha)
        b = float(r.params[-1])
        s = float(_block_se(r, y, blocks)[-1])
        rows.append((f, kind_of[f], b, s, False, 0, 2.0 * (r.loglik - final.loglik)))
    t = pd.DataFrame(rows, columns=["factor", "kind", "b", "se", "selected", "entered_step", "statistic"])
    with np.errstate(over="ignore", invalid="ignore"):
        t["relative_risk"] = np.exp(t["b"])
        t["ci95_low"] = np.exp(t["b"] - 1.959964 * t["se"])
        t["ci95_high"] = np.exp(t["b"] + 1.959964 * t["se"])
    step_stat = {s["best_candidate"]: s["statistic"] for s in steps if s["entered"]}
    entered = pd.to_numeric(t["factor"].map(step_stat), errors="coerce").to_numpy(dtype=float)
    t["statistic"] = np.where(t["selected"].to_numpy(dtype=bool), entered, t["statistic"].to_numpy(dtype=float))
    t["entry_threshold"] = threshold
    t["cells_exposed"] = [int((factors[f] > 0).sum()) for f in t["factor"]]
    t = t.sort_values(["factor"], kind="stable").reset_index(drop=True)
    for c in ("relative_risk", "ci95_low", "ci95_high", "statistic", "entry_threshold"):
        t[c] = t[c].astype(float).round(6)
    t = t[["factor", "relative_risk", "ci95_low", "ci95_high", "selected", "kind", "entered_step", "statistic",
           "entry_threshold", "cells_exposed"]]
    return Fit(t, chosen, np.asarray(final.mu, float), coef, float(final.params[0]), float(final.params[1]),
               final.alpha,
               threshold, steps)


def terrain_risk(fit: Fit, factors: dict[str, np.ndarray], n: int) -> np.ndarray:
    """Product of the selected factors' relative risks at each cell (1 where none applies)."""
    eta = np.zeros(n)
    for f, b in fit.coef.items():
        eta += b * factors[f]
    return np.exp(eta)
