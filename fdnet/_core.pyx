# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""fdnet's array kernels.

Every kernel takes and returns NumPy arrays only: a graph is CSR
(``indptr``, ``indices``, ``data``) over dense person indices ``0..n-1``;
an incidence table is CSR from incidents to persons (and back) with a
per-entry role flag. The loops run without the GIL and touch no Python
objects. Policy, IDs and tables stay in Python (see :mod:`fdnet.graph`).

Role flags, one bit each, OR-ed when a person holds several roles in one
incident:

- ``FLAG_OFFENDING`` (1): offender, suspect or arrestee;
- ``FLAG_VICTIM`` (2): victim.

Written by hand because it is the core of this project: the projection
below is one pass over the incidence with a scatter array (the sparse
``B^T B`` product restricted to role pairs), which also carries first/last
date, a time-decayed weight and the evidence incidents of every edge;
no library computes those in one pass (see benchmarks/bench_projection.py).
"""
import numpy as np
cimport numpy as cnp
from libc.stdlib cimport malloc, free, qsort
from libc.string cimport memset

cnp.import_array()

FLAG_OFFENDING = 1
FLAG_VICTIM = 2

MODE_CO_OFFENDING = 0
MODE_VICTIMIZATION = 1


cdef inline bint _pair_ok(int mode, unsigned char fa, unsigned char fb) noexcept nogil:
    if mode == 0:
        return (fa & 1) and (fb & 1)
    return ((fa & 1) and (fb & 2)) or ((fa & 2) and (fb & 1))


cdef int _cmp_int32(const void* a, const void* b) noexcept nogil:
    cdef int x = (<int*>a)[0]
    cdef int y = (<int*>b)[0]
    return (x > y) - (x < y)


def incidence_csr(const cnp.int32_t[::1] rows, const cnp.int32_t[::1] cols,
                  const cnp.uint8_t[::1] flags, Py_ssize_t n_rows):
    """Group (row, col, flag) triples into CSR by row, cols ascending in a row.

    The input must already be sorted by (row, col) and free of duplicate
    (row, col) pairs; see :func:`fdnet.graph.layers.Incidence`.

    >>> import numpy as np
    >>> ip, ix, fl = incidence_csr(np.array([0, 0, 2], np.int32),
    ...     np.array([1, 3, 0], np.int32), np.array([1, 2, 1], np.uint8), 3)
    >>> ip.tolist(), ix.tolist(), fl.tolist()
    ([0, 2, 2, 3], [1, 3, 0], [1, 2, 1])
    """
    cdef Py_ssize_t m = rows.shape[0], k
    indptr_a = np.zeros(n_rows + 1, dtype=np.int64)
    cdef cnp.int64_t[::1] indptr = indptr_a
    with nogil:
        for k in range(m):
            indptr[rows[k] + 1] += 1
        for k in range(n_rows):
            indptr[k + 1] += indptr[k]
    return indptr_a, np.asarray(cols).copy(), np.asarray(flags).copy()


def project(Py_ssize_t n_persons,
            const cnp.int64_t[::1] p_indptr, const cnp.int32_t[::1] p_inc, const cnp.uint8_t[::1] p_flag,
            const cnp.int64_t[::1] i_indptr, const cnp.int32_t[::1] i_person, const cnp.uint8_t[::1] i_flag,
            const cnp.int32_t[::1] inc_day, const cnp.float64_t[::1] inc_weight, int mode):
    """Project a person-incident incidence onto person pairs.

    ``p_*`` is the incidence as CSR from persons to incidents and ``i_*`` the
    same incidence from incidents to persons, persons ascending inside each
    incident. ``mode`` 0 joins two people who both hold an offending role in
    an incident (co-offending); mode 1 joins an offending role to a victim of
    the same incident (victimization). Pairs are unordered: each edge is
    reported once with ``src < dst``, edges sorted by (src, dst).

    Returns ``(src, dst, n_incidents, first_day, last_day, decayed,
    ev_indptr, ev_incident)``: for edge ``e`` its distinct incidents are
    ``ev_incident[ev_indptr[e]:ev_indptr[e+1]]`` in ascending incident index,
    ``decayed`` sums ``inc_weight`` over them, and first/last are the
    smallest and largest ``inc_day``.

    >>> import numpy as np
    >>> # incident 0: persons 0,1,2 offenders; incident 1: persons 1,2 offenders
    >>> p_ip = np.array([0, 1, 3, 5], np.int64); p_inc = np.array([0, 0, 1, 0, 1], np.int32)
    >>> i_ip = np.array([0, 3, 5], np.int64); i_p = np.array([0, 1, 2, 1, 2], np.int32)
    >>> f = np.ones(5, np.uint8)
    >>> out = project(3, p_ip, p_inc, f, i_ip, i_p, f, np.array([10, 20], np.int32),
    ...               np.array([0.5, 1.0]), 0)
    >>> [a.tolist() for a in out[:5]]
    [[0, 0, 1], [1, 2, 2], [1, 1, 2], [10, 10, 10], [10, 10, 20]]
    >>> out[6].tolist(), out[7].tolist()
    ([0, 1, 2, 4], [0, 0, 0, 1])
    """
    cdef Py_ssize_t a, b, k, j, e, t, n_touch, total = 0, n_edges = 0, n_ev = 0
    cdef int inc
    cdef unsigned char fa
    # Pass 1: count qualifying pair-instances, an exact upper bound for
    # both the number of edges and the number of evidence entries.
    with nogil:
        for a in range(n_persons):
            for k in range(p_indptr[a], p_indptr[a + 1]):
                inc = p_inc[k]
                fa = p_flag[k]
                for j in range(i_indptr[inc], i_indptr[inc + 1]):
                    b = i_person[j]
                    if b > a and _pair_ok(mode, fa, i_flag[j]):
                        total += 1

    src_a = np.empty(total, dtype=np.int32)
    dst_a = np.empty(total, dtype=np.int32)
    cnt_a = np.empty(total, dtype=np.int32)
    first_a = np.empty(total, dtype=np.int32)
    last_a = np.empty(total, dtype=np.int32)
    dec_a = np.empty(total, dtype=np.float64)
    evp_a = np.zeros(total + 1, dtype=np.int64)
    evi_a = np.empty(total, dtype=np.int32)
    cdef cnp.int32_t[::1] src = src_a, dst = dst_a, cnt = cnt_a, first = first_a, last = last_a
    cdef cnp.float64_t[::1] dec = dec_a
    cdef cnp.int64_t[::1] evp = evp_a
    cdef cnp.int32_t[::1] evi = evi_a

    # scatter state, indexed by the partner person b
    cdef int* mark = <int*>malloc(max(n_persons, 1) * sizeof(int))
    cdef int* s_cnt = <int*>malloc(max(n_persons, 1) * sizeof(int))
    cdef int* s_first = <int*>malloc(max(n_persons, 1) * sizeof(int))
    cdef int* s_last = <int*>malloc(max(n_persons, 1) * sizeof(int))
    cdef double* s_dec = <double*>malloc(max(n_persons, 1) * sizeof(double))
    cdef Py_ssize_t* s_head = <Py_ssize_t*>malloc(max(n_persons, 1) * sizeof(Py_ssize_t))
    cdef int* touched = <int*>malloc(max(n_persons, 1) * sizeof(int))
    cdef Py_ssize_t* ln_next = <Py_ssize_t*>malloc(max(total, 1) * sizeof(Py_ssize_t))
    cdef int* ln_inc = <int*>malloc(max(total, 1) * sizeof(int))
    if (mark == NULL or s_cnt == NULL or s_first == NULL or s_last == NULL or s_dec == NULL
            or s_head == NULL or touched == NULL or ln_next == NULL or ln_inc == NULL):
        free(mark); free(s_cnt); free(s_first); free(s_last); free(s_dec)
        free(s_head); free(touched); free(ln_next); free(ln_inc)
        raise MemoryError()
    cdef Py_ssize_t ln = 0, pos, node
    cdef int day
    try:
        with nogil:
            for a in range(n_persons):
                mark[a] = -1
            for a in range(n_persons):
                n_touch = 0
                ln = 0
                for k in range(p_indptr[a], p_indptr[a + 1]):
                    inc = p_inc[k]
                    fa = p_flag[k]
                    day = inc_day[inc]
                    for j in range(i_indptr[inc], i_indptr[inc + 1]):
                        b = i_person[j]
                        if b <= a or not _pair_ok(mode, fa, i_flag[j]):
                            continue
                        if mark[b] != a:
                            mark[b] = <int>a
                            touched[n_touch] = <int>b
                            n_touch += 1
                            s_cnt[b] = 0
                            s_first[b] = day
                            s_last[b] = day
                            s_dec[b] = 0.0
                            s_head[b] = -1
                        s_cnt[b] += 1
                        if day < s_first[b]:
                            s_first[b] = day
                        if day > s_last[b]:
                            s_last[b] = day
                        s_dec[b] += inc_weight[inc]
                        # evidence list, newest first; incidents arrive ascending
                        ln_inc[ln] = inc
                        ln_next[ln] = s_head[b]
                        s_head[b] = ln
                        ln += 1
                if n_touch > 1:
                    qsort(touched, n_touch, sizeof(int), _cmp_int32)
                for t in range(n_touch):
                    b = touched[t]
                    src[n_edges] = <int>a
                    dst[n_edges] = <int>b
                    cnt[n_edges] = s_cnt[b]
                    first[n_edges] = s_first[b]
                    last[n_edges] = s_last[b]
                    dec[n_edges] = s_dec[b]
                    pos = n_ev + s_cnt[b]
                    evp[n_edges + 1] = pos
                    node = s_head[b]
                    while node != -1:
                        pos -= 1
                        evi[pos] = ln_inc[node]
                        node = ln_next[node]
                    n_ev += s_cnt[b]
                    n_edges += 1
    finally:
        free(mark); free(s_cnt); free(s_first); free(s_last); free(s_dec)
        free(s_head); free(touched); free(ln_next); free(ln_inc)
    return (src_a[:n_edges].copy(), dst_a[:n_edges].copy(), cnt_a[:n_edges].copy(),
            first_a[:n_edges].copy(), last_a[:n_edges].copy(), dec_a[:n_edges].copy(),
            evp_a[:n_edges + 1].copy(), evi_a[:n_ev].copy())


def edges_to_csr(Py_ssize_t n, const cnp.int32_t[::1] src, const cnp.int32_t[::1] dst,
                 const cnp.float64_t[::1] weight):
    """Symmetric CSR of an undirected edge list sorted by (src, dst), src < dst.

    Column indices come out ascending within every row.

    >>> import numpy as np
    >>> ip, ix, w = edges_to_csr(3, np.array([0, 1], np.int32),
    ...     np.array([2, 2], np.int32), np.array([1.0, 2.0]))
    >>> ip.tolist(), ix.tolist(), w.tolist()
    ([0, 1, 2, 4], [2, 2, 0, 1], [1.0, 2.0, 1.0, 2.0])
    """
    cdef Py_ssize_t m = src.shape[0], e, k
    indptr_a = np.zeros(n + 1, dtype=np.int64)
    indices_a = np.empty(2 * m, dtype=np.int32)
    data_a = np.empty(2 * m, dtype=np.float64)
    cdef cnp.int64_t[::1] indptr = indptr_a
    cdef cnp.int32_t[::1] indices = indices_a
    cdef cnp.float64_t[::1] data = data_a
    cdef cnp.int64_t* fill = <cnp.int64_t*>malloc(max(n, 1) * sizeof(cnp.int64_t))
    if fill == NULL:
        raise MemoryError()
    try:
        with nogil:
            for e in range(m):
                indptr[src[e] + 1] += 1
                indptr[dst[e] + 1] += 1
            for k in range(n):
                indptr[k + 1] += indptr[k]
                fill[k] = indptr[k]
            # Edges sorted by (src, dst): a row r first receives its partners
            # below r (while the loop is at those rows), then those above r,
            # both in ascending order, so every row comes out sorted.
            for e in range(m):
                k = fill[src[e]]
                indices[k] = dst[e]
                data[k] = weight[e]
                fill[src[e]] += 1
                k = fill[dst[e]]
                indices[k] = src[e]
                data[k] = weight[e]
                fill[dst[e]] += 1
    finally:
        free(fill)
    return indptr_a, indices_a, data_a


def exposure_counts(const cnp.int64_t[::1] indptr, const cnp.int32_t[::1] indices,
                    const cnp.int32_t[::1] sources):
    """Count, for every node, the distinct sources at distance exactly 1 and 2.

    A breadth-first search of depth two from each source (e.g. each shooting
    victim); a node is never its own exposure. Duplicate sources are counted
    once.

    >>> import numpy as np
    >>> # path 0-1-2-3, source {0}
    >>> ip = np.array([0, 1, 3, 5, 6], np.int64); ix = np.array([1, 0, 2, 1, 3, 2], np.int32)
    >>> e1, e2 = exposure_counts(ip, ix, np.array([0], np.int32))
    >>> e1.tolist(), e2.tolist()
    ([0, 1, 0, 0], [0, 0, 1, 0])
    """
    cdef Py_ssize_t n = indptr.shape[0] - 1, s, k, j, u, v, src
    e1_a = np.zeros(n, dtype=np.int32)
    e2_a = np.zeros(n, dtype=np.int32)
    cdef cnp.int32_t[::1] e1 = e1_a, e2 = e2_a
    srcs_a = np.unique(np.asarray(sources, dtype=np.int32))
    cdef cnp.int32_t[::1] srcs = srcs_a
    cdef Py_ssize_t ns = srcs.shape[0]
    cdef int* stamp = <int*>malloc(max(n, 1) * sizeof(int))
    if stamp == NULL:
        raise MemoryError()
    try:
        with nogil:
            for u in range(n):
                stamp[u] = -1
            for s in range(ns):
                src = srcs[s]
                stamp[src] = <int>s
                for k in range(indptr[src], indptr[src + 1]):
                    u = indices[k]
                    if stamp[u] != s:
                        stamp[u] = <int>s
                        e1[u] += 1
                for k in range(indptr[src], indptr[src + 1]):
                    u = indices[k]
                    for j in range(indptr[u], indptr[u + 1]):
                        v = indices[j]
                        if stamp[v] != s:
                            stamp[v] = <int>s
                            e2[v] += 1
    finally:
        free(stamp)
    return e1_a, e2_a


def bfs_distances(const cnp.int64_t[::1] indptr, const cnp.int32_t[::1] indices,
                  const cnp.int32_t[::1] sources, int max_depth):
    """Multi-source BFS: hop distance from each node to its nearest source.

    Nodes farther than ``max_depth`` (or unreachable) get -1.

    >>> import numpy as np
    >>> ip = np.array([0, 1, 3, 5, 6], np.int64); ix = np.array([1, 0, 2, 1, 3, 2], np.int32)
    >>> bfs_distances(ip, ix, np.array([0], np.int32), 2).tolist()
    [0, 1, 2, -1]
    """
    cdef Py_ssize_t n = indptr.shape[0] - 1, head = 0, tail = 0, k, u, v, s
    dist_a = np.full(n, -1, dtype=np.int32)
    cdef cnp.int32_t[::1] dist = dist_a
    cdef Py_ssize_t ns = sources.shape[0]
    cdef int* queue = <int*>malloc(max(n, 1) * sizeof(int))
    if queue == NULL:
        raise MemoryError()
    try:
        with nogil:
            for s in range(ns):
                u = sources[s]
                if dist[u] == -1:
                    dist[u] = 0
                    queue[tail] = <int>u
                    tail += 1
            while head < tail:
                u = queue[head]
                head += 1
                if dist[u] >= max_depth:
                    continue
                for k in range(indptr[u], indptr[u + 1]):
                    v = indices[k]
                    if dist[v] == -1:
                        dist[v] = dist[u] + 1
                        queue[tail] = <int>v
                        tail += 1
    finally:
        free(queue)
    return dist_a
