"""The aggregated resolution scan (groups.resolution: auto) computes on fine communities exactly
what the people-level definitions give: modularity, adjusted Rand index, held-out audit accuracy."""
from __future__ import annotations

import numpy as np
import pytest

from fdnet.graph import groups as G
from fdnet.graph.layers import Layer


def _random_layer(n=400, m=1200, seed=0):
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, n, m), rng.integers(0, n, m)
    keep = a != b
    key = np.unique(np.minimum(a, b)[keep].astype(np.int64) * n + np.maximum(a, b)[keep])
    src, dst = (key // n).astype(np.int32), (key % n).astype(np.int32)
    w = rng.integers(1, 4, len(src)).astype(np.int32)
    return Layer("co_offending", src, dst, w, None, None, None, None, None)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_aggregated_scores_equal_people_level_scores(seed):
    rng = np.random.default_rng(seed)
    L = _random_layer(seed=seed)
    g, nodes_a, w = G._active_graph(400, L)
    fine = G._leiden(g, w, 64.0, seed)
    size = np.bincount(fine).astype(float)
    ga, wa, u, v = G._aggregate(g, w, fine)
    assert wa.sum() == pytest.approx(w.sum())
    strength = np.bincount(u, weights=wa, minlength=len(size)) + np.bincount(v, weights=wa, minlength=len(size))
    np.testing.assert_allclose(strength, np.bincount(fine, weights=np.asarray(g.strength(weights=w))))
    audit = np.where(rng.random(len(nodes_a)) < 0.6, rng.choice(["a", "b", "c", "d"], len(nodes_a)), "").astype(object)
    hold = G._Holdout(fine, audit, 7)
    for res in (0.5, 2.0, 8.0):
        coarse = G._leiden(ga, wa, res, seed, node_weights=strength)
        other = rng.integers(0, 5, len(size))
        people = coarse[fine]
        assert G._modularity(u, v, wa, coarse) == pytest.approx(g.modularity(people.tolist(), weights=w), abs=1e-12)
        assert G._adjusted_rand_weighted(coarse, other, size) == pytest.approx(
            G.adjusted_rand(people, other[fine]), abs=1e-12)
        for min_size in (1, 3, 10):
            assert hold.accuracy(coarse, size, min_size) == pytest.approx(
                G._holdout_accuracy(people, audit, min_size, 7), abs=1e-15)


def test_scan_on_the_aggregate_keeps_the_fine_partition_at_the_finest_resolution():
    """At the grid's largest resolution the aggregated search starts from the fine communities
    themselves and keeps them apart (the node weights carry the members' strengths)."""
    L = _random_layer(n=600, m=1500, seed=4)
    g, nodes_a, w = G._active_graph(600, L)
    fine = G._leiden(g, w, 64.0, 42)
    ga, wa, u, v = G._aggregate(g, w, fine)
    strength = np.bincount(u, weights=wa, minlength=fine.max() + 1) + np.bincount(v, weights=wa, minlength=fine.max() + 1)
    coarse = G._leiden(ga, wa, 64.0, 42, node_weights=strength)
    assert len(np.unique(coarse)) >= 0.95 * (fine.max() + 1)
