"""Centrality on a network layer, defined and normalised as networkx does.

All functions take a :class:`~fdnet.graph.layers.Layer` or a
:class:`~fdnet.graph.csr.CSR` graph over ``n`` persons (a layer's CSR is
shared, so its SciPy view and components are built once for all of them)
and return one value per person:

- ``degree_centrality``: degree / (n - 1), as ``networkx.degree_centrality``;
- ``weighted_degree``: sum of edge weights (shared incidents);
- ``betweenness``: normalised like ``networkx.betweenness_centrality``
  (undirected, unweighted, endpoints excluded), by Brandes' algorithm in
  the Cython core (:func:`fdnet._core.betweenness_sources`): exact in every
  connected component whose cost people x (people + ties) is at most
  ``exact_work``, estimated from ``k`` random pivots in costlier ones
  (Brandes and Pich 2007). The
  estimate's error bound is returned with it (Hoeffding: with probability
  ``1 - alpha`` every node's estimate is within ``eps`` of the exact value);
- ``eigenvector``: the dominant eigenvector of the adjacency matrix, unit
  Euclidean norm, non-negative (``networkx.eigenvector_centrality``);
  computed with ARPACK (scipy ``eigsh``) rather than power iteration, on
  the components that can hold the largest eigenvalue only (the others'
  entries are 0 in the dominant eigenvector);
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
from .csr import CSR
from .layers import Layer

EXACT_WORK = 2e8           # exact betweenness in a component while people x (people + ties) <= this
DEFAULT_PIVOTS = 512


def _graph(g: Layer | CSR) -> CSR:
    return g.csr if isinstance(g, Layer) else g


def degree_centrality(layer: Layer | CSR) -> np.ndarray:
    g = _graph(layer)
    deg = g.degree().astype(float)
    return deg / (g.n - 1) if g.n > 1 else np.zeros(g.n)


def weighted_degree(layer: Layer | CSR) -> np.ndarray:
    return _graph(layer).strength()


def core_number(layer: Layer | CSR) -> np.ndarray:
    g = _graph(layer)
    return _core.core_number(g.indptr, g.indices)


@dataclass
class Betweenness:
    values: np.ndarray
    exact: bool          # every component computed exactly
    pivots: int          # sources used in total
    eps: float           # error bound on every value (0 when exact)
    alpha: float         # bound holds with probability 1 - alpha
    sampled_components: int = 0


def betweenness(layer: Layer | CSR, *, exact_work: float = EXACT_WORK, k: int = DEFAULT_PIVOTS,
                seed: int = 42, alpha: float = 0.05, n_threads: int = 2, n_parts: int = 2) -> Betweenness:
    """Betweenness of every person (see module docstring).

    Shortest paths never leave a connected component, so betweenness is a
    sum over components. A component whose exact cost, people x (people +
    ties), is at most ``exact_work`` is computed exactly (every person a
    source); in each costlier component ``C`` ``k`` pivots are drawn and
    weighted ``n_C / k``
    (Brandes and Pich 2007), an unbiased estimate. The Hoeffding bound
    ``eps`` (union over the nodes of each sampled component) holds for every
    person at once with probability ``1 - alpha``.

    The sources are summed in ``n_parts`` parts (:class:`BetweennessJob`)
    run on ``n_threads`` threads; the values depend on ``n_parts`` only (the
    order of the floating-point sums), never on ``n_threads``.
    """
    job = BetweennessJob(layer, exact_work=exact_work, k=k, seed=seed, alpha=alpha, n_parts=n_parts)
    return job.run(n_threads)


class BetweennessJob:
    """:func:`betweenness` as parts that any number of threads take in turn: the Brandes passes run in the
    Cython core with the GIL released, so a thread that has finished its own work can call :meth:`work`
    and share what is left. Each part is one call of
    :func:`fdnet._core.betweenness_sources` on a contiguous slice of one component's sources; the parts'
    sums are added in part order at the end, so the values depend on ``n_parts`` only, never on which
    thread ran which part or how many threads there were.

    >>> import numpy as np
    >>> from fdnet.graph.csr import CSR
    >>> g = CSR.from_edges(4, np.array([0, 1, 2]), np.array([1, 2, 3]))
    >>> job = BetweennessJob(g, n_parts=2)
    >>> job.work(); job.result().values.round(4).tolist()
    [0.0, 0.6667, 0.6667, 0.0]
    """

    def __init__(self, layer: Layer | CSR, *, exact_work: float = EXACT_WORK, k: int = DEFAULT_PIVOTS,
                 seed: int = 42, alpha: float = 0.05, n_parts: int = 2):
        import threading

        from scipy.sparse.csgraph import reverse_cuthill_mckee

        g = _graph(layer)
        n = g.n
        self.n, self.alpha = n, alpha
        self._parts: list[tuple] = []          # (target rows or None, indptr, indices, sources, scale)
        self._lock = threading.Lock()
        self._next = 0
        self._cancelled = False
        self.eps, self.big = 0.0, 0
        self.n_sources = 0
        self._trivial = n <= 2 or g.n_edges == 0
        if self._trivial:
            self._done: list = []
            return
        A = g.pattern
        _, comp = g.components()
        sizes = np.bincount(comp)
        deg = g.degree()
        ties = np.bincount(comp, weights=deg) / 2
        # a component no larger than k is cheaper exact than sampled
        big = np.flatnonzero((sizes * (sizes + ties) > exact_work) & (sizes > k))
        in_big = np.isin(comp, big)
        small = np.flatnonzero(~in_big & (deg > 0)).astype(np.int32)   # isolated people are no one's intermediary
        self._split(None, g.indptr, g.indices, small, np.ones(len(small)), n_parts)
        rng = np.random.default_rng(seed)
        norm = (n - 1) * (n - 2)
        self.n_sources = len(small)
        for c in big.tolist():
            members = np.flatnonzero(comp == c)
            n_c = len(members)
            piv = np.sort(rng.choice(n_c, size=k, replace=False))
            # Brandes' passes are bound by memory latency: renumber the component in
            # reverse Cuthill-McKee order so neighbours sit close in memory (2x faster
            # on a 300k-person component)
            sub = A[members][:, members].tocsr()
            perm = reverse_cuthill_mckee(sub, symmetric_mode=True)
            sub = sub[perm][:, perm].tocsr()
            inv = np.empty(n_c, dtype=np.int64)
            inv[perm] = np.arange(n_c)
            self._split(members[perm], sub.indptr.astype(np.int64), sub.indices.astype(np.int32),
                        np.sort(inv[piv]).astype(np.int32), np.full(k, n_c / k), n_parts)
            self.n_sources += k
            # each pivot's normalised term lies in [0, n_c (n_c - 2) / ((n-1)(n-2))]
            rng_width = n_c * (n_c - 2) / norm
            # union bound over the nodes of every sampled component: alpha split evenly
            self.eps = max(self.eps, rng_width * math.sqrt(math.log(2 * n_c * len(big) / alpha) / (2 * k)))
        self.big = len(big)
        self._done = [None] * len(self._parts)

    def _split(self, rows, indptr, indices, sources, scale, n_parts):
        # the kernel's own rule: fewer than 64 sources are one part
        P = 1 if len(sources) < 64 else max(1, n_parts)
        bounds = np.linspace(0, len(sources), P + 1).astype(np.intp)
        for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
            if hi > lo or P == 1:
                self._parts.append((rows, indptr, indices, sources[lo:hi], scale[lo:hi]))

    def work(self) -> None:
        """Run parts until none is left (from any thread; returns when every part is taken)."""
        while True:
            with self._lock:
                i = self._next
                if i >= len(self._parts) or self._cancelled:
                    return
                self._next += 1
            rows, indptr, indices, sources, scale = self._parts[i]
            self._done[i] = _core.betweenness_sources(indptr, indices, sources, scale, 1, 1)

    def cancel(self) -> None:
        """Take no more parts (those running finish): for a caller that failed and will not read the result."""
        with self._lock:
            self._cancelled = True

    def run(self, n_threads: int = 1) -> Betweenness:
        """Every part on ``n_threads`` threads (this one and ``n_threads - 1`` more), then :meth:`result`."""
        from ..background import Background
        extra = [Background(self.work) for _ in range(max(0, n_threads - 1))]
        self.work()
        for t in extra:
            t.result()              # re-raises a failure of that thread's parts
        return self.result()

    def result(self) -> Betweenness:
        """The values, once every part has run (call after :meth:`work` has returned in each thread)."""
        n = self.n
        if self._trivial:
            return Betweenness(np.zeros(n), True, 0, 0.0, self.alpha)
        if any(d is None for d in self._done):
            raise RuntimeError("BetweennessJob.result before every part has run")
        raw = np.zeros(n)
        # parts in order: first the exact components' (over all people), then each sampled component's
        # (over its members, renumbered); within a component the parts add up in order
        i = 0
        while i < len(self._parts):
            rows = self._parts[i][0]
            acc = self._done[i].copy()
            j = i + 1
            while j < len(self._parts) and self._parts[j][0] is rows:
                acc += self._done[j]
                j += 1
            if rows is None:
                raw += acc
            else:
                raw[rows] += acc
            i = j
        norm = (n - 1) * (n - 2)
        # networkx, undirected, normalized: sum over all sources of delta_s(v) / ((n-1)(n-2))
        return Betweenness(raw / norm, self.big == 0, int(self.n_sources), float(self.eps), self.alpha,
                           int(self.big))


def eigenvector(layer: Layer | CSR) -> np.ndarray:
    """Eigenvector centrality (unit norm, non-negative), 0 for isolated nodes.

    The adjacency matrix is block-diagonal over connected components, so its
    dominant eigenvector lives on the component(s) holding the largest
    eigenvalue. A component's largest eigenvalue is at most
    ``min(max degree, sqrt(2 ties - people + 1))`` (Hong 1988), and the
    whole graph's is at least the Rayleigh quotient of any vector (here
    ``A^20 1``); ARPACK then runs on the components whose bound reaches that
    quotient only, usually the largest one, instead of the whole graph.
    """
    from scipy.sparse.linalg import eigsh

    g = _graph(layer)
    n = g.n
    out = np.zeros(n)
    if g.n_edges == 0:
        return out
    A = g.pattern
    _, comp = g.components()
    deg = g.degree()
    sizes = np.bincount(comp)
    ties = np.bincount(comp, weights=deg) / 2
    max_deg = np.zeros(len(sizes))
    np.maximum.at(max_deg, comp, deg)
    upper = np.minimum(max_deg, np.sqrt(np.maximum(2 * ties - sizes + 1, 0)))
    x = (deg > 0).astype(float)
    for _ in range(20):
        x = A @ x
        x /= np.linalg.norm(x)
    lower = float(x @ (A @ x))
    keep = np.flatnonzero(upper >= lower * (1 - 1e-9))
    nodes = np.flatnonzero(np.isin(comp, keep) & (deg > 0))
    sub = g.subgraph(nodes).pattern if len(nodes) < n else A
    m = sub.shape[0]
    if m < 3:
        vals, vecs = np.linalg.eigh(sub.toarray())
        v = vecs[:, -1]
    else:
        # deterministic start vector: ARPACK's default is random
        vals, vecs = eigsh(sub, k=1, which="LA", v0=np.ones(m) / math.sqrt(m), tol=1e-12,
                           maxiter=max(1000, 10 * m))
        v = vecs[:, 0]
    v = np.abs(v) if v.sum() >= 0 else np.abs(-v)
    norm = np.linalg.norm(v)
    if norm > 0:
        out[nodes if len(nodes) < n else slice(None)] = v / norm
    return out
