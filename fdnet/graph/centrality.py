"""Centrality on a network layer, defined and normalised as networkx does.

All functions take a :class:`~fdnet.graph.layers.Layer` (CSR adjacency over
``n`` persons) and return one value per person:

- ``degree_centrality``: degree / (n - 1), as ``networkx.degree_centrality``;
- ``weighted_degree``: sum of edge weights (shared incidents);
- ``betweenness``: normalised like ``networkx.betweenness_centrality``
  (undirected, unweighted, endpoints excluded). Exact (igraph's C
  implementation of Brandes' algorithm) while ``n_active * m`` stays under
  ``exact_limit``; above it, estimated from ``k`` random source pivots
  (Brandes and Pich 2007), scaled by ``n/k`` as networkx does for ``k``.
  The estimate's error bound is returned with it (Hoeffding: with
  probability ``1 - alpha`` every node's estimate is within ``eps`` of the
  exact value);
- ``eigenvector``: the dominant eigenvector of the adjacency matrix, unit
  Euclidean norm, non-negative (``networkx.eigenvector_centrality``);
  computed with ARPACK (scipy ``eigsh``) rather than power iteration;
- ``core_number``: k-core number (Cython kernel; ``networkx.core_number``).

>>> import numpy as np
>>> from fdnet.graph.layers import Layer
>>> from fdnet import _core
>>> src, dst = np.array([0, 0, 1, 2], np.int32), np.array([1, 2, 2, 3], np.int32)
>>> L = Layer("co_offending", src, dst, np.ones(4, np.int32), None, None, None, None, None)
>>> L.indptr, L.indices, L.data = _core.edges_to_csr(4, src, dst, np.ones(4))
>>> bw = betweenness(L)
>>> bw.values.round(4).tolist(), bw.exact
([0.0, 0.0, 0.6667, 0.0], True)
>>> core_number(L).tolist()
[2, 2, 2, 1]
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import _core
from .layers import Layer

EXACT_LIMIT = 2e9          # n_active * m under which betweenness is exact
DEFAULT_PIVOTS = 512


def degree_centrality(layer: Layer) -> np.ndarray:
    n = len(layer.indptr) - 1
    deg = np.diff(layer.indptr).astype(float)
    return deg / (n - 1) if n > 1 else np.zeros(n)


def weighted_degree(layer: Layer) -> np.ndarray:
    ip = layer.indptr
    if len(layer.data) == 0:
        return np.zeros(len(ip) - 1)
    return np.add.reduceat(layer.data, np.minimum(ip[:-1], len(layer.data) - 1)) * (np.diff(ip) > 0)


def core_number(layer: Layer) -> np.ndarray:
    return _core.core_number(layer.indptr, layer.indices)


@dataclass
class Betweenness:
    values: np.ndarray
    exact: bool
    pivots: int          # sources used (n_active when exact)
    eps: float           # error bound on every value (0 when exact)
    alpha: float         # bound holds with probability 1 - alpha


def betweenness(layer: Layer, *, exact_limit: float = EXACT_LIMIT, k: int = DEFAULT_PIVOTS,
                seed: int = 42, alpha: float = 0.05) -> Betweenness:
    """Betweenness of every person (see module docstring)."""
    import igraph as ig

    n = len(layer.indptr) - 1
    out = np.zeros(n)
    if n <= 2 or layer.n_edges == 0:
        return Betweenness(out, True, 0, 0.0, alpha)
    active = np.flatnonzero(np.diff(layer.indptr) > 0)
    # work on the non-isolated nodes only: isolated nodes have zero betweenness
    # and take no part in any shortest path
    remap = np.full(n, -1, dtype=np.int64)
    remap[active] = np.arange(len(active))
    g = ig.Graph(n=len(active), edges=np.column_stack([remap[layer.src], remap[layer.dst]]).tolist(),
                 directed=False)
    m = layer.n_edges
    # normalised like networkx: igraph counts each unordered pair once,
    # networkx counts both orders and divides by (n-1)(n-2)
    scale = 2.0 / ((n - 1) * (n - 2))
    if len(active) * m <= exact_limit or len(active) <= k:
        raw = np.asarray(g.betweenness(directed=False), dtype=float)
        out[active] = raw * scale
        return Betweenness(out, True, len(active), 0.0, alpha)
    rng = np.random.default_rng(seed)
    pivots = np.sort(rng.choice(len(active), size=k, replace=False))
    # igraph's subset betweenness halves the per-source dependencies in the
    # undirected case (over all sources it equals the full, once-per-pair value),
    # so sum_s delta_s(v) over the pivots is twice what it returns
    raw = np.asarray(g.betweenness(directed=False, sources=pivots.tolist(), targets=None), dtype=float)
    # networkx with k pivots: sum_s delta_s(v) * n/k, normalised by 1/((n-1)(n-2))
    out[active] = 2.0 * raw * (n / k) / ((n - 1) * (n - 2))
    # Hoeffding: each pivot's normalised term lies in [0, n/(n-1)]
    eps = (n / (n - 1)) * math.sqrt(math.log(2 * n / alpha) / (2 * k))
    return Betweenness(out, False, k, eps, alpha)


def eigenvector(layer: Layer) -> np.ndarray:
    """Eigenvector centrality (unit norm, non-negative), 0 for isolated nodes."""
    import scipy.sparse as sp
    from scipy.sparse.linalg import eigsh

    n = len(layer.indptr) - 1
    out = np.zeros(n)
    if layer.n_edges == 0:
        return out
    A = sp.csr_matrix((np.ones(len(layer.indices)), layer.indices, layer.indptr), shape=(n, n))
    if n < 3:
        vals, vecs = np.linalg.eigh(A.toarray())
        v = vecs[:, -1]
    else:
        # deterministic start vector: ARPACK's default is random
        vals, vecs = eigsh(A, k=1, which="LA", v0=np.ones(n) / math.sqrt(n), tol=1e-12, maxiter=max(1000, 10 * n))
        v = vecs[:, 0]
    v = np.abs(v) if v.sum() >= 0 else np.abs(-v)
    norm = np.linalg.norm(v)
    return v / norm if norm > 0 else out
