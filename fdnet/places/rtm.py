"""Risk terrain modelling after Caplan and Kennedy: which kinds of place raise the count of shootings in a cell.

**Spatial influence.** For every place-feature kind, two operationalisations are tried:

* *proximity* at each distance ``d`` of ``places.proximity_m``: the share of the cell's area within ``d`` metres
  of the nearest feature of the kind (measured on a 3×3 lattice of points in the cell, so a cell half inside
  the influence counts one half; a :class:`scipy.spatial.cKDTree` query per kind);
* *density*: the number of features of the kind within ``places.density_radius_m`` of the cell's centre.

Each is one *factor*, named ``<kind>:within_<d>m`` or ``<kind>:density_<r>m``.

**Model.** Shootings per cell ~ Poisson (log link), with the log of the smoothed density of the *other*
incidents (every incident in the window that is not a shooting, Gaussian kernel of
``places.background_bandwidth_m``) as a covariate: the background of policing and activity a place factor has
to beat. Standard errors and tests are quasi-Poisson (the Pearson dispersion, never below 1), because
shootings cluster more than a Poisson count allows.

**Selection** (forward, one factor at a time): each step tries every factor of every kind not yet in the
model and takes the one with the largest drop in deviance over the dispersion; it enters when that statistic
exceeds ``log(number of cells)`` (the BIC penalty of one parameter) and its relative risk is above 1. At
most one operationalisation per kind enters. A factor that only travels with another (311 requests
clustering around vacant buildings) is tried *after* the other has entered and adds nothing beyond it, so it is
not credited. The selected factors are refitted together; relative risk = exp(coefficient) with a 95%
interval from that refit. A factor not selected reports the relative risk it would have had if added to the
final model, with ``selected`` false.

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
    d = d.reshape(grid.n_cells, m * m)
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
    """The reported fit: statsmodels' Poisson GLM (IRLS)."""
    import statsmodels.api as sm
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sm.GLM(y, X, family=sm.families.Poisson()).fit(method="IRLS", maxiter=100, tol=1e-10)


@dataclass
class _Quick:
    params: np.ndarray
    mu: np.ndarray
    deviance: float
    X: np.ndarray

    def cov_last(self) -> float:
        """The model-based variance of the last coefficient (inverse Fisher information)."""
        H = self.X.T @ (self.X * self.mu[:, None])
        return float(np.linalg.pinv(H)[-1, -1])


def _deviance(y, mu) -> float:
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(y > 0, y * np.log(y / mu), 0.0)
    return float(2.0 * np.sum(t - (y - mu)))


def _quick(y, X, start=None, iters: int = 50, tol: float = 1e-9) -> _Quick:
    """Poisson log-link maximum likelihood by Newton steps on the p×p normal equations (the candidates of a
    selection step: thousands of cells, a handful of columns, so O(n·p²) a step rather than a pseudo-inverse
    of the n×p matrix). Matches :func:`_glm`'s deviance to 1e-6 (tests/places)."""
    p = X.shape[1]
    b = np.zeros(p) if start is None else np.asarray(start, float).copy()
    if start is None:
        b[0] = np.log(max(y.mean(), 1e-12))
    dev = np.inf
    for _ in range(iters):
        eta = np.clip(X @ b, -50, 50)
        mu = np.exp(eta)
        H = X.T @ (X * mu[:, None])
        g = X.T @ (y - mu)
        try:
            step = np.linalg.solve(H + 1e-10 * np.eye(p), g)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(H, g, rcond=None)[0]
        b = b + step
        new = _deviance(y, np.exp(np.clip(X @ b, -50, 50)))
        if abs(dev - new) <= tol * (1 + abs(new)):
            dev = new
            break
        dev = new
    mu = np.exp(np.clip(X @ b, -50, 50))
    return _Quick(b, mu, _deviance(y, mu), X)


def _dispersion(res, y) -> float:
    mu = res.mu
    df = max(len(y) - len(res.params), 1)
    return max(float(np.sum((y - mu) ** 2 / np.maximum(mu, 1e-300)) / df), 1.0)


def select(y: np.ndarray, background: np.ndarray, factors: dict[str, np.ndarray], kind_of: dict[str, str],
           *, max_factors: int = 10) -> Fit:
    """Forward selection and refit (see the module docstring). ``background``: the covariate per cell."""
    y = np.asarray(y, float)
    n = len(y)
    base = np.column_stack([np.ones(n), np.asarray(background, float)])
    names = [f for f in factors if np.ptp(factors[f]) > 0]          # a constant column says nothing
    threshold = float(np.log(max(n, 2)))
    chosen: list[str] = []
    steps: list[dict] = []
    cur = _quick(y, base)
    while len(chosen) < max_factors:
        phi = _dispersion(cur, y)
        used = {kind_of[c] for c in chosen}
        best = None
        for f in names:
            if f in chosen or kind_of[f] in used:
                continue
            X = np.column_stack([base] + [factors[c] for c in chosen] + [factors[f]])
            r = _quick(y, X, start=np.r_[cur.params, 0.0])
            stat = (cur.deviance - r.deviance) / phi
            if r.params[-1] > 0 and (best is None or stat > best[1]):
                best = (f, stat, r)
        if best is None or best[1] <= threshold:
            if best is not None:
                steps.append({"step": len(chosen) + 1, "best_candidate": best[0], "statistic": round(float(best[1]), 4),
                              "entered": False})
            break
        chosen.append(best[0])
        steps.append({"step": len(chosen), "best_candidate": best[0], "statistic": round(float(best[1]), 4),
                      "entered": True})
        cur = best[2]
    final = _glm(y, np.column_stack([base] + [factors[c] for c in chosen]))
    phi = _dispersion(final, y)
    se = np.sqrt(np.diag(final.cov_params()) * phi)
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
        r = _quick(y, np.column_stack([final.model.exog, factors[f]]), start=np.r_[final.params, 0.0])
        b = float(r.params[-1])
        s = float(np.sqrt(r.cov_last() * _dispersion(r, y)))
        rows.append((f, kind_of[f], b, s, False, 0, (final.deviance - r.deviance) / phi))
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
    return Fit(t, chosen, np.asarray(final.mu, float), coef, float(final.params[0]), float(final.params[1]), phi,
               threshold, steps)


def terrain_risk(fit: Fit, factors: dict[str, np.ndarray], n: int) -> np.ndarray:
    """Product of the selected factors' relative risks at each cell (1 where none applies)."""
    eta = np.zeros(n)
    for f, b in fit.coef.items():
        eta += b * factors[f]
    return np.exp(eta)
