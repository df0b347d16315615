"""The one graph type of the graph stage: an undirected graph as symmetric CSR.

``CSR(indptr, indices, data)`` over dense node indices ``0..n-1``: the
neighbours of node ``i`` are ``indices[indptr[i]:indptr[i+1]]`` (ascending),
each undirected tie stored in both rows, ``data`` its weight (ones when not
given). ``indptr`` is int64, ``indices`` int32 and ``data`` float64, the
types the Cython kernels of :mod:`fdnet._core` take, so nothing is copied on
the way in. What several analytics need is built once and cached on the
object: the SciPy matrix views (weighted and 0/1 pattern, sharing the
arrays), the connected components, an unweighted twin, an igraph graph.
:meth:`CSR.check_format` validates the arrays, as scikit-network's
``check_format`` does, for arrays that come from outside.

>>> import numpy as np
>>> g = CSR.from_edges(4, np.array([0, 0, 1], np.int32), np.array([1, 2, 2], np.int32), np.array([1., 2., 1.]))
>>> g.n, g.n_edges, g.degree().tolist(), g.neighbors(0).tolist()
(4, 3, [2, 2, 2, 0], [1, 2])
>>> n_comp, labels = g.components()
>>> n_comp, labels.tolist()
(2, [0, 0, 0, 1])
>>> g.scipy.toarray()[0].tolist(), g.pattern.toarray()[0].tolist()
([0.0, 1.0, 2.0, 0.0], [0.0, 1.0, 1.0, 0.0])
>>> sub, nodes = g.subgraph(np.array([1, 2])), np.array([1, 2])
>>> sub.indptr.tolist(), sub.indices.tolist(), sub.data.tolist()
([0, 1, 2], [1, 0], [1.0, 1.0])
>>> CSR(np.array([0, 1]), np.array([3]), check=True)
Traceback (most recent call last):
...
ValueError: CSR: indices must lie in [0, 1)
"""
from __future__ import annotations

import numpy as np

from .. import _core


class CSR:
    """An undirected graph as symmetric CSR (see the module docstring)."""

    def __init__(self, indptr, indices, data=None, *, check: bool = False):
        self.indptr = np.ascontiguousarray(indptr, dtype=np.int64)
        self.indices = np.ascontiguousarray(indices, dtype=np.int32)
        self.data = (np.ones(len(self.indices)) if data is None
                     else np.ascontiguousarray(data, dtype=np.float64))
        self._cache: dict = {}
        if check:
            self.check_format()

    # --- construction ------------------------------------------------------------
    @classmethod
    def from_edges(cls, n: int, src: np.ndarray, dst: np.ndarray, weight: np.ndarray | None = None) -> "CSR":
        """From an undirected edge list sorted by (src, dst) with src < dst (one row per tie)."""
        src = np.ascontiguousarray(src, dtype=np.int32)
        w = np.ones(len(src)) if weight is None else np.ascontiguousarray(weight, dtype=np.float64)
        return cls(*_core.edges_to_csr(int(n), src, np.ascontiguousarray(dst, dtype=np.int32), w))

    def check_format(self, *, sorted_rows: bool = True, symmetric: bool = False) -> "CSR":
        """Raise ``ValueError`` unless the arrays are a valid CSR graph; returns ``self``.

        Checked: one-dimensional arrays of matching lengths, ``indptr`` starting
        at 0, non-decreasing and ending at ``len(indices)``, every index in
        ``[0, n)``, finite weights, no self-loops, and (``sorted_rows``) strictly
        ascending indices within each row (no repeated tie). ``symmetric`` also
        checks that every tie is stored both ways with the same weight
        (O(ties log ties)).
        """
        ip, ix, w = self.indptr, self.indices, self.data
        if ip.ndim != 1 or ix.ndim != 1 or w.ndim != 1 or len(ip) < 1:
            raise ValueError("CSR: indptr, indices and data must be one-dimensional, indptr non-empty")
        if len(w) != len(ix):
            raise ValueError("CSR: data and indices must have the same length")
        if ip[0] != 0 or ip[-1] != len(ix) or (np.diff(ip) < 0).any():
            raise ValueError("CSR: indptr must start at 0, never decrease and end at len(indices)")
        n = self.n
        if len(ix) and (ix.min() < 0 or ix.max() >= n):
            raise ValueError(f"CSR: indices must lie in [0, {n})")
        if not np.isfinite(w).all():
            raise ValueError("CSR: weights must be finite")
        rows = self.row_of_entry()
        if (rows == ix).any():
            raise ValueError("CSR: self-loops are not allowed")
        if sorted_rows and len(ix) > 1:
            same_row = rows[1:] == rows[:-1]
            if (same_row & (ix[1:] <= ix[:-1])).any():
                raise ValueError("CSR: indices must be strictly ascending within each row")
        if symmetric:
            fwd = np.lexsort((ix, rows))
            bwd = np.lexsort((rows, ix))
            if not (np.array_equal(rows[fwd], ix[bwd]) and np.array_equal(ix[fwd], rows[bwd])
                    and np.array_equal(w[fwd], w[bwd])):
                raise ValueError("CSR: the graph must be symmetric (every tie in both rows, same weight)")
        return self

    # --- sizes ---------------------------------------------------------------------
    @property
    def n(self) -> int:
        return len(self.indptr) - 1

    @property
    def nnz(self) -> int:
        return len(self.indices)

    @property
    def n_edges(self) -> int:
        """Undirected ties (each stored twice)."""
        return len(self.indices) // 2

    @property
    def weight(self) -> np.ndarray:
        """The tie weights (``data``), by the name the contagion model uses."""
        return self.data

    def degree(self) -> np.ndarray:
        return np.diff(self.indptr).astype(np.int32)

    def strength(self) -> np.ndarray:
        """Summed tie weight of every node."""
        return np.bincount(self.row_of_entry(), weights=self.data, minlength=self.n).astype(float)

    def neighbors(self, i: int) -> np.ndarray:
        return self.indices[self.indptr[i]:self.indptr[i + 1]]

    def row_of_entry(self) -> np.ndarray:
        """The row (node) of every stored entry, int32 (cached)."""
        if "rows" not in self._cache:
            self._cache["rows"] = np.repeat(np.arange(self.n, dtype=np.int32), np.diff(self.indptr))
        return self._cache["rows"]

    # --- views built once ------------------------------------------------------------
    @property
    def scipy(self):
        """``scipy.sparse.csr_matrix`` of the weights, sharing this object's arrays (cached)."""
        if "scipy" not in self._cache:
            import scipy.sparse as sp
            self._cache["scipy"] = sp.csr_matrix((self.data, self.indices, self.indptr), shape=(self.n, self.n))
        return self._cache["scipy"]

    @property
    def pattern(self):
        """``scipy.sparse.csr_matrix`` with a 1 for every tie (the unweighted adjacency; cached)."""
        if "pattern" not in self._cache:
            import scipy.sparse as sp
            self._cache["pattern"] = sp.csr_matrix((np.ones(self.nnz), self.indices, self.indptr),
                                                   shape=(self.n, self.n))
        return self._cache["pattern"]

    def unweighted(self) -> "CSR":
        """The same graph with every weight 1 (shares indptr and indices; cached)."""
        if "unweighted" not in self._cache:
            u = CSR(self.indptr, self.indices, None)
            u._cache.update({k: v for k, v in self._cache.items() if k in ("rows", "components", "pattern")})
            self._cache["unweighted"] = u
        return self._cache["unweighted"]

    def drop_views(self) -> None:
        """Forget the cached SciPy views, unit-weight copy and entry rows (each is built again when next
        asked for); the components stay. The run calls it when the analytics that use them are done: at a
        million people they are about 35 MB that the later stages never read.

        >>> g = CSR.from_edges(3, np.array([0]), np.array([1]))
        >>> _ = g.pattern; g.drop_views(); sorted(g._cache)
        []
        """
        for key in ("scipy", "pattern", "unweighted", "rows"):
            self._cache.pop(key, None)

    def components(self) -> tuple[int, np.ndarray]:
        """Connected components: ``(count, label per node)`` (SciPy's, cached)."""
        if "components" not in self._cache:
            from scipy.sparse.csgraph import connected_components
            k, lab = connected_components(self.pattern, directed=False)
            self._cache["components"] = (int(k), lab.astype(np.int32))
        return self._cache["components"]

    def subgraph(self, nodes: np.ndarray) -> "CSR":
        """The graph induced by ``nodes`` (distinct), node ``k`` of it being ``nodes[k]``; rows sorted."""
        nodes = np.asarray(nodes, dtype=np.int64)
        sub = self.scipy[nodes][:, nodes].tocsr()
        sub.sort_indices()
        return CSR(sub.indptr, sub.indices, sub.data)

    def to_igraph(self):
        """An undirected ``igraph.Graph`` of the ties (each once), with a ``weight`` edge attribute (cached)."""
        if "igraph" not in self._cache:
            import igraph as ig
            rows = self.row_of_entry()
            up = rows < self.indices
            g = ig.Graph(n=self.n, edges=np.column_stack([rows[up], self.indices[up]]), directed=False)
            g.es["weight"] = self.data[up].tolist()
            self._cache["igraph"] = g
        return self._cache["igraph"]

    def __repr__(self) -> str:
        return f"CSR(n={self.n}, ties={self.n_edges})"
