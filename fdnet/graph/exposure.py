"""Network exposure to gun violence (Papachristos and colleagues).

``exposure_1`` / ``exposure_2`` of a person are the numbers of distinct
shooting victims in the window at co-offending distance exactly 1 / 2 from
them. A person is never exposed to themself. The counting runs in the
Cython core (:func:`fdnet._core.exposure_counts`): one depth-two BFS per
victim, which is cheap because victims are few.

>>> import numpy as np
>>> from fdnet import _core
>>> ip = np.array([0, 1, 3, 4], np.int64); ix = np.array([1, 0, 2, 1], np.int32)
>>> e1, e2 = exposure_counts(ip, ix, np.array([2], np.int32))
>>> e1.tolist(), e2.tolist()
([0, 1, 0], [1, 0, 0])
"""
from __future__ import annotations

import numpy as np

from .. import _core
from .layers import Layer


def exposure_counts(indptr: np.ndarray, indices: np.ndarray, sources: np.ndarray):
    """(exposure_1, exposure_2) for every node of a CSR graph."""
    return _core.exposure_counts(np.ascontiguousarray(indptr, np.int64),
                                 np.ascontiguousarray(indices, np.int32),
                                 np.ascontiguousarray(sources, np.int32))


def exposure_paths(layer: Layer, person: int, sources: np.ndarray) -> tuple[list, list]:
    """The evidence behind one person's exposure: shortest paths to each source.

    Returns ``(paths_1, paths_2)``: for distance-1 victims ``[person, v]``;
    for distance-2 victims one path ``[person, m, v]`` per victim, ``m`` the
    smallest-index intermediary (a stable choice).
    """
    src = set(np.asarray(sources).tolist())
    n1 = layer.neighbors(person)
    near = set(n1.tolist())
    paths_1 = [[person, int(v)] for v in n1 if int(v) in src]
    seen: dict[int, int] = {}
    for m in n1.tolist():
        for v in layer.neighbors(m).tolist():
            if v != person and v not in near and v in src and v not in seen:
                seen[v] = m
    paths_2 = [[person, seen[v], v] for v in sorted(seen)]
    return paths_1, paths_2
