"""knox() with the gap lookup table against the searchsorted-per-pair formulation it replaced."""
import numpy as np
import pandas as pd
import pytest

from fdnet.places.knox import knox


def _old_knox(x, y, day, distance_m, days, *, permutations=99, seed=0):
    """The formulation before the lookup table, kept here as the reference."""
    from scipy.spatial import cKDTree
    dmax = float(max(distance_m))
    pairs = (cKDTree(np.column_stack([x, y])).query_pairs(dmax, output_type="ndarray")
             if len(x) > 1 else np.zeros((0, 2), dtype=np.int64))
    pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))] if len(pairs) else pairs
    i, j = pairs[:, 0], pairs[:, 1]
    dist = np.hypot(x[i] - x[j], y[i] - y[j])
    dband = np.searchsorted(np.asarray(distance_m, float), dist, side="left")
    tedges = np.asarray(days, float)
    nd, nt = len(distance_m), len(days)

    def table(dd):
        tb = np.searchsorted(tedges, np.abs(dd[i] - dd[j]).astype(float), side="left")
        ok = tb < nt
        return np.bincount(dband[ok] * nt + tb[ok], minlength=nd * nt)

    day = np.asarray(day, np.int64)
    obs = table(day)
    rng = np.random.default_rng(seed)
    sims = np.stack([table(day[rng.permutation(len(day))]) for _ in range(permutations)]) if permutations \
        else np.zeros((0, nd * nt))
    return obs, sims


@pytest.mark.parametrize("seed", range(8))
def test_knox_tables_match(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 1500))
    x, y = rng.uniform(0, 3000, n), rng.uniform(0, 3000, n)
    day = rng.integers(19000, 19000 + int(rng.integers(1, 400)), n)
    dist = sorted(rng.choice([100.0, 200.0, 400.0, 800.0], int(rng.integers(1, 4)), replace=False).tolist())
    days = sorted(rng.choice([0, 3, 7, 14, 30, 60], int(rng.integers(1, 4)), replace=False).tolist())
    if seed == 3:
        days = [7.5, 20.25]
    perms = int(rng.choice([0, 9, 19]))
    t = knox(x, y, day, dist, days, permutations=perms, seed=seed)
    obs, sims = _old_knox(x, y, day, dist, days, permutations=perms, seed=seed)
    assert t["observed"].tolist() == obs.tolist()
    if perms:
        exp_ = sims.mean(axis=0)
        ge = (sims >= obs[None, :]).sum(axis=0)
        assert t["expected"].tolist() == [round(float(v), 4) for v in exp_]
        assert t["p_value"].tolist() == [round(float((1 + g) / (1 + perms)), 4) for g in ge]
