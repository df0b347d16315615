"""Forecast accuracy of a map: the predictive accuracy index (PAI) and the predictive efficiency index (PEI).

For an area share ``a`` (the top ``a`` of the study area's cells by the map's value), ``hits`` is the share of
the holdout's shootings that fall in those cells. PAI = hits / a (Chainey et al.; the NIJ Real-Time Crime
Forecasting Challenge): 1 is no better than chance, higher is better. PEI = the shootings caught / the most any
choice of that many cells could have caught (Hunt 2016), between 0 and 1. Cells that tie at the boundary are
taken in proportion (the expectation of breaking the tie at random), so a map that is zero almost everywhere
(past shootings) is not flattered or penalised by an arbitrary cell order.

>>> import numpy as np
>>> score = np.array([3., 2., 0., 0.]); future = np.array([1, 1, 0, 2])
>>> float(hits_in_top(score, future, 2) / future.sum())
0.5
>>> round(pai_pei(score, future, [0.5])[0]["pai"], 6), round(pai_pei(score, future, [0.5])[0]["pei"], 6)
(1.0, 0.666667)
>>> hits_in_top(np.zeros(4), future, 2)     # all tied: half of everything
2.0
"""
from __future__ import annotations

import numpy as np


def hits_in_top(score: np.ndarray, future: np.ndarray, k: float) -> float:
    """Expected events in the ``k`` highest-scoring cells (ties at the boundary shared in proportion)."""
    score = np.asarray(score, float)
    future = np.asarray(future, float)
    if k <= 0 or len(score) == 0:
        return 0.0
    vals, inv = np.unique(-score, return_inverse=True)          # groups of equal score, highest first
    size = np.bincount(inv, minlength=len(vals)).astype(float)
    ev = np.bincount(inv, weights=future, minlength=len(vals))
    csize = np.cumsum(size)
    g = int(np.searchsorted(csize, k, side="left"))
    if g >= len(vals):
        return float(ev.sum())
    before = csize[g - 1] if g else 0.0
    return float(ev[:g].sum() + ev[g] * (k - before) / size[g])


def pai_pei(score: np.ndarray, future: np.ndarray, shares: list[float]) -> list[dict]:
    """PAI, PEI and hit rate of ``score`` against the event counts ``future`` at each area share."""
    n = len(score)
    total = float(np.sum(future))
    best = np.sort(np.asarray(future, float))[::-1]
    out = []
    for a in shares:
        k = a * n
        h = hits_in_top(score, future, k)
        kk = int(np.floor(k))
        mx = float(best[:kk].sum() + (best[kk] * (k - kk) if kk < n else 0.0))
        out.append({"area_share": float(a), "cells": round(k, 3), "shootings": total,
                    "hit_rate": round(h / total, 6) if total else None,
                    "pai": round((h / total) / a, 6) if total else None,
                    "pei": round(h / mx, 6) if mx > 0 else None})
    return out
