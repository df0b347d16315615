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
from libc.stdlib cimport malloc, realloc, free, qsort
from libc.string cimport memset
from libc.math cimport exp
from cython.parallel cimport prange

cnp.import_array()

FLAG_OFFENDING = 1
FLAG_VICTIM = 2

MODE_CO_OFFENDING = 0
MODE_VICTIMIZATION = 1


cdef extern from *:
    """
    #define FDNET_PREFETCH(p) __builtin_prefetch((const void*)(p))
    """
    void FDNET_PREFETCH(const void* p) noexcept nogil


cdef struct IncMeta:
    cnp.int64_t start
    cnp.int64_t stop
    int day
    double weight


cdef inline bint _pair_ok(int mode, unsigned char fa, unsigned char fb) noexcept nogil:
    if mode == 0:
        return (fa & 1) and (fb & 1)
    return ((fa & 1) and (fb & 2)) or ((fa & 2) and (fb & 1))


cdef int _cmp_u64(const void* a, const void* b) noexcept nogil:
    cdef unsigned long long x = (<unsigned long long*>a)[0]
    cdef unsigned long long y = (<unsigned long long*>b)[0]
    return (x > y) - (x < y)


cdef struct RowsOut:
    # output arrays (edge slots and evidence slots share one region per chunk)
    int* src
    int* dst
    int* cnt
    int* first
    int* last
    double* dec
    cnp.int64_t* evend
    int* evi


cdef Py_ssize_t _project_rows(Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t out0,
                              const cnp.int64_t* p_indptr, const int* p_inc, const unsigned char* p_flag,
                              Py_ssize_t n_p_inc, const IncMeta* meta, const unsigned int* ipf,
                              int mode, RowsOut o, Py_ssize_t* n_ev_out, int* oom) noexcept nogil:
    """Edges of rows [lo, hi), written from slot ``out0`` on; returns the edge count."""
    cdef Py_ssize_t a, k, j, t, u, nb = 0, nr, cap = 1024, rcap = 256
    cdef Py_ssize_t n_edges = out0, n_ev = out0
    cdef int b, fd, ld, rank
    cdef unsigned char fa
    cdef unsigned int pf
    cdef unsigned long long x
    cdef double dsum
    cdef const IncMeta* mi
    cdef void* grown
    cdef unsigned long long* buf = <unsigned long long*>malloc(cap * sizeof(unsigned long long))
    cdef int* row_inc = <int*>malloc(rcap * sizeof(int))
    cdef int* row_day = <int*>malloc(rcap * sizeof(int))
    cdef double* row_w = <double*>malloc(rcap * sizeof(double))
    if buf == NULL or row_inc == NULL or row_day == NULL or row_w == NULL:
        oom[0] = 1
        a = hi  # skip the loop
    else:
        a = lo
    while a < hi:
        nb = 0
        nr = p_indptr[a + 1] - p_indptr[a]
        if nr > rcap:
            while rcap < nr:
                rcap *= 2
            grown = realloc(row_inc, rcap * sizeof(int))
            if grown == NULL:
                oom[0] = 1
                break
            row_inc = <int*>grown
            grown = realloc(row_day, rcap * sizeof(int))
            if grown == NULL:
                oom[0] = 1
                break
            row_day = <int*>grown
            grown = realloc(row_w, rcap * sizeof(double))
            if grown == NULL:
                oom[0] = 1
                break
            row_w = <double*>grown
        for k in range(p_indptr[a], p_indptr[a + 1]):
            # The loop is bound by memory latency (one random incident per
            # step): prefetch the incidents a few steps ahead.
            if k + 16 < n_p_inc:
                FDNET_PREFETCH(&meta[p_inc[k + 16]])
            if k + 8 < n_p_inc:
                FDNET_PREFETCH(&ipf[meta[p_inc[k + 8]].start])
            rank = <int>(k - p_indptr[a])
            mi = &meta[p_inc[k]]
            row_inc[rank] = p_inc[k]
            row_day[rank] = mi.day
            row_w[rank] = mi.weight
            fa = p_flag[k]
            for j in range(mi.start, mi.stop):
                pf = ipf[j]
                b = <int>(pf >> 2)
                if b <= a or not _pair_ok(mode, fa, <unsigned char>(pf & 3)):
                    continue
                if nb == cap:
                    grown = realloc(buf, 2 * cap * sizeof(unsigned long long))
                    if grown == NULL:
                        oom[0] = 1
                        break
                    buf = <unsigned long long*>grown
                    cap *= 2
                buf[nb] = ((<unsigned long long>b) << 32) | <unsigned int>rank
                nb += 1
            if oom[0]:
                break
        if oom[0]:
            break
        a += 1
        if nb == 0:
            continue
        if nb <= 24:
            for t in range(1, nb):
                x = buf[t]
                u = t - 1
                while u >= 0 and buf[u] > x:
                    buf[u + 1] = buf[u]
                    u -= 1
                buf[u + 1] = x
        else:
            qsort(buf, nb, sizeof(unsigned long long), _cmp_u64)
        t = 0
        while t < nb:
            b = <int>(buf[t] >> 32)
            o.src[n_edges] = <int>(a - 1)
            o.dst[n_edges] = b
            fd = 2147483647
            ld = -2147483647
            dsum = 0.0
            u = t
            while u < nb and <int>(buf[u] >> 32) == b:
                rank = <int><unsigned int>buf[u]
                o.evi[n_ev] = row_inc[rank]
                n_ev += 1
                if row_day[rank] < fd:
                    fd = row_day[rank]
                if row_day[rank] > ld:
                    ld = row_day[rank]
                dsum += row_w[rank]
                u += 1
            o.cnt[n_edges] = <int>(u - t)
            o.first[n_edges] = fd
            o.last[n_edges] = ld
            o.dec[n_edges] = dsum
            o.evend[n_edges] = n_ev
            n_edges += 1
            t = u
    free(buf); free(row_inc); free(row_day); free(row_w)
    n_ev_out[0] = n_ev - out0
    return n_edges - out0


def project(Py_ssize_t n_persons,
            const cnp.int64_t[::1] p_indptr, const cnp.int32_t[::1] p_inc, const cnp.uint8_t[::1] p_flag,
            const cnp.int64_t[::1] i_indptr, const cnp.int32_t[::1] i_person, const cnp.uint8_t[::1] i_flag,
            const cnp.int32_t[::1] inc_day, const cnp.float64_t[::1] inc_weight, int mode,
            int n_threads=2):
    """Project a person-incident incidence onto person pairs.

    ``p_*`` is the incidence as CSR from persons to incidents (incidents
    ascending) and ``i_*`` the same incidence from incidents to persons
    (persons ascending). ``mode`` 0 joins two people who both hold an
    offending role in an incident (co-offending); mode 1 joins an offending
    role to a victim of the same incident (victimization). Pairs are
    unordered: each edge is reported once with ``src < dst``, edges sorted
    by (src, dst).

    Returns ``(src, dst, n_incidents, first_day, last_day, decayed,
    ev_indptr, ev_incident)``: for edge ``e`` its distinct incidents are
    ``ev_incident[ev_indptr[e]:ev_indptr[e+1]]`` in ascending incident index,
    ``decayed`` sums ``inc_weight`` over them, and first/last are the
    smallest and largest ``inc_day``.

    How: for each person ``a`` the kernel gathers its partners ``b > a`` as
    64-bit keys ``(b, rank of the incident in a's row)`` in a small buffer,
    sorts it (insertion sort for the usual short rows) and reduces runs of
    equal ``b``, with no scatter array over all persons. Persons are split
    into ``n_threads`` contiguous chunks run in parallel (OpenMP); a first
    sequential pass over incidents gives each chunk an exact bound on its
    output, so chunks write disjoint regions and the result does not depend
    on the thread count.

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
    cdef Py_ssize_t n_inc = i_indptr.shape[0] - 1
    cdef Py_ssize_t n_entries = i_person.shape[0], n_p_inc = p_inc.shape[0]
    cdef Py_ssize_t r, j, c, n_off, n_vic, total = 0
    cdef int T = max(1, min(n_threads, 64))
    if n_persons < 10000:
        T = 1
    cdef int c1, c2, c3
    cdef unsigned char f
    cdef int person
    # chunk boundaries over persons, balanced by incident visits
    bounds_a = np.searchsorted(np.asarray(p_indptr),
                               np.linspace(0, n_p_inc, T + 1)[1:-1]).astype(np.int64)
    bounds_a = np.concatenate([[0], np.maximum.accumulate(bounds_a), [n_persons]]).astype(np.int64)
    cdef cnp.int64_t[::1] bounds = bounds_a
    chunk_bound_a = np.zeros(T, dtype=np.int64)
    cdef cnp.int64_t[::1] chunk_bound = chunk_bound_a
    # Pass 1, sequential over incidents: for each member, the qualifying
    # partners after it in the incident (exactly the pairs its row emits at
    # most), summed per chunk.
    with nogil:
        for r in range(n_inc):
            c1 = 0
            c2 = 0
            c3 = 0
            j = i_indptr[r + 1] - 1
            while j >= i_indptr[r]:
                f = i_flag[j] & 3
                person = i_person[j]
                c = 0
                while c < T - 1 and person >= bounds[c + 1]:
                    c += 1
                if mode == 0:
                    if f & 1:
                        chunk_bound[c] += c1 + c3
                else:
                    if f == 1:
                        chunk_bound[c] += c2 + c3
                    elif f == 2:
                        chunk_bound[c] += c1 + c3
                    elif f == 3:
                        chunk_bound[c] += c1 + c2 + c3
                if f == 1:
                    c1 += 1
                elif f == 2:
                    c2 += 1
                elif f == 3:
                    c3 += 1
                j -= 1
    for c in range(T):
        total += chunk_bound[c]
    offsets_a = np.concatenate([[0], np.cumsum(chunk_bound_a)]).astype(np.int64)
    cdef cnp.int64_t[::1] offsets = offsets_a

    src_a = np.empty(total, dtype=np.int32)
    dst_a = np.empty(total, dtype=np.int32)
    cnt_a = np.empty(total, dtype=np.int32)
    first_a = np.empty(total, dtype=np.int32)
    last_a = np.empty(total, dtype=np.int32)
    dec_a = np.empty(total, dtype=np.float64)
    evend_a = np.empty(total, dtype=np.int64)
    evi_a = np.empty(total, dtype=np.int32)
    ne_a = np.zeros(T, dtype=np.int64)
    nv_a = np.zeros(T, dtype=np.intp)
    cdef cnp.int64_t[::1] ne = ne_a
    cdef Py_ssize_t[::1] nv = nv_a
    cdef RowsOut o
    if total > 0:
        o.src = <int*>cnp.PyArray_DATA(src_a)
        o.dst = <int*>cnp.PyArray_DATA(dst_a)
        o.cnt = <int*>cnp.PyArray_DATA(cnt_a)
        o.first = <int*>cnp.PyArray_DATA(first_a)
        o.last = <int*>cnp.PyArray_DATA(last_a)
        o.dec = <double*>cnp.PyArray_DATA(dec_a)
        o.evend = <cnp.int64_t*>cnp.PyArray_DATA(evend_a)
        o.evi = <int*>cnp.PyArray_DATA(evi_a)

    # Packed copies for the random-access phase: one cache line brings an
    # incident's bounds, day and weight; person and flags share a word.
    cdef IncMeta* meta = <IncMeta*>malloc((n_inc + 1) * sizeof(IncMeta))
    cdef unsigned int* ipf = <unsigned int*>malloc((n_entries + 1) * sizeof(unsigned int))
    oom_a = np.zeros(T, dtype=np.int32)
    cdef int[::1] oom = oom_a
    cdef Py_ssize_t tmp_ev
    if meta == NULL or ipf == NULL:
        free(meta); free(ipf)
        raise MemoryError()
    cdef const cnp.int64_t* pp = &p_indptr[0]
    cdef const int* pinc = <const int*>(&p_inc[0]) if n_p_inc > 0 else NULL
    cdef const unsigned char* pfl = &p_flag[0] if n_p_inc > 0 else NULL
    try:
        if total > 0:
            with nogil:
                for r in range(n_inc):
                    meta[r].start = i_indptr[r]
                    meta[r].stop = i_indptr[r + 1]
                    meta[r].day = inc_day[r]
                    meta[r].weight = inc_weight[r]
                for j in range(n_entries):
                    ipf[j] = (<unsigned int>i_person[j] << 2) | (i_flag[j] & 3)
                for c in prange(T, schedule="static", chunksize=1, num_threads=T):
                    ne[c] = _project_rows(bounds[c], bounds[c + 1], offsets[c], pp, pinc, pfl,
                                          n_p_inc, meta, ipf, mode, o, &nv[c], &oom[c])
    finally:
        free(meta); free(ipf)
    if oom_a.any():
        raise MemoryError()
    # compact the chunks' regions into one run (chunk 0 is already in place)
    n_edges = int(ne_a[0])
    n_ev = int(nv_a[0])
    for c in range(1, T):
        a0, k = int(offsets_a[c]), int(ne_a[c])
        for arr in (src_a, dst_a, cnt_a, first_a, last_a, dec_a):
            arr[n_edges:n_edges + k] = arr[a0:a0 + k]
        evend_a[n_edges:n_edges + k] = evend_a[a0:a0 + k] - (a0 - n_ev)
        evi_a[n_ev:n_ev + int(nv_a[c])] = evi_a[a0:a0 + int(nv_a[c])]
        n_edges += k
        n_ev += int(nv_a[c])
    evp_a = np.empty(n_edges + 1, dtype=np.int64)
    evp_a[0] = 0
    evp_a[1:] = evend_a[:n_edges]
    out = (src_a, dst_a, cnt_a, first_a, last_a, dec_a)
    if n_edges < total // 2:
        # trim: many repeated pairs made the bound loose
        return tuple(v[:n_edges].copy() for v in out) + (evp_a, evi_a[:n_ev].copy())
    return tuple(v[:n_edges] for v in out) + (evp_a, evi_a[:n_ev])


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
    once. The unit-weight case of :func:`exposure_weighted` (sums of ones
    are exact in double precision).

    >>> import numpy as np
    >>> # path 0-1-2-3, source {0}
    >>> ip = np.array([0, 1, 3, 5, 6], np.int64); ix = np.array([1, 0, 2, 1, 3, 2], np.int32)
    >>> e1, e2 = exposure_counts(ip, ix, np.array([0], np.int32))
    >>> e1.tolist(), e2.tolist()
    ([0, 1, 0, 0], [0, 0, 1, 0])
    """
    srcs = np.unique(np.asarray(sources, dtype=np.int32))
    w1, w2 = exposure_weighted(indptr, indices, srcs, np.ones(len(srcs), dtype=np.float64))
    return w1.astype(np.int32), w2.astype(np.int32)


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


def build_incidence(const cnp.int32_t[::1] inc, const cnp.int32_t[::1] person,
                    const cnp.uint8_t[::1] flags, Py_ssize_t n_inc, Py_ssize_t n_persons):
    """Both CSR views of an incidence from unsorted (incident, person, flags) rows.

    Counting sort by incident, then each incident's persons sorted and
    deduplicated (flags OR-ed); then a stable counting sort by person, so
    each person's incidents come out ascending. O(rows) work, no global
    comparison sort.

    Returns ``(i_indptr, i_person, i_flag, p_indptr, p_inc, p_flag)``.

    >>> import numpy as np
    >>> out = build_incidence(np.array([1, 0, 1, 1], np.int32), np.array([2, 0, 0, 2], np.int32),
    ...                       np.array([1, 2, 1, 2], np.uint8), 2, 3)
    >>> [a.tolist() for a in out]
    [[0, 1, 3], [0, 0, 2], [2, 1, 3], [0, 2, 2, 3], [0, 1, 1], [2, 1, 3]]
    """
    cdef Py_ssize_t m = inc.shape[0], k, j, r, lo, hi, w, q
    cdef int x
    cdef unsigned char fx
    i_ptr_a = np.zeros(n_inc + 1, dtype=np.int64)
    cdef cnp.int64_t[::1] i_ptr = i_ptr_a
    tmp_p_a = np.empty(m, dtype=np.int32)
    tmp_f_a = np.empty(m, dtype=np.uint8)
    cdef cnp.int32_t[::1] tmp_p = tmp_p_a
    cdef cnp.uint8_t[::1] tmp_f = tmp_f_a
    cdef cnp.int64_t* fill = <cnp.int64_t*>malloc((max(n_inc, n_persons) + 1) * sizeof(cnp.int64_t))
    if fill == NULL:
        raise MemoryError()
    p_ptr_a = np.zeros(n_persons + 1, dtype=np.int64)
    cdef cnp.int64_t[::1] p_ptr = p_ptr_a
    cdef Py_ssize_t n_out = 0
    try:
        with nogil:
            for k in range(m):
                i_ptr[inc[k] + 1] += 1
            for r in range(n_inc):
                i_ptr[r + 1] += i_ptr[r]
                fill[r] = i_ptr[r]
            for k in range(m):
                q = fill[inc[k]]
                tmp_p[q] = person[k]
                tmp_f[q] = flags[k]
                fill[inc[k]] += 1
            # sort each incident's persons (insertion sort: incidents are small),
            # dedupe in place, compacting into the front of the arrays
            w = 0
            for r in range(n_inc):
                lo = i_ptr[r]
                hi = i_ptr[r + 1]
                for k in range(lo + 1, hi):
                    x = tmp_p[k]
                    fx = tmp_f[k]
                    j = k - 1
                    while j >= lo and tmp_p[j] > x:
                        tmp_p[j + 1] = tmp_p[j]
                        tmp_f[j + 1] = tmp_f[j]
                        j -= 1
                    tmp_p[j + 1] = x
                    tmp_f[j + 1] = fx
                i_ptr[r] = w
                k = lo
                while k < hi:
                    tmp_p[w] = tmp_p[k]
                    tmp_f[w] = tmp_f[k]
                    k += 1
                    while k < hi and tmp_p[k] == tmp_p[w]:
                        tmp_f[w] = tmp_f[w] | tmp_f[k]
                        k += 1
                    w += 1
            i_ptr[n_inc] = w
            n_out = w
            for k in range(n_out):
                p_ptr[tmp_p[k] + 1] += 1
            for r in range(n_persons):
                p_ptr[r + 1] += p_ptr[r]
                fill[r] = p_ptr[r]
    except:
        free(fill)
        raise
    p_inc_a = np.empty(n_out, dtype=np.int32)
    p_flag_a = np.empty(n_out, dtype=np.uint8)
    cdef cnp.int32_t[::1] p_inc = p_inc_a
    cdef cnp.uint8_t[::1] p_flag = p_flag_a
    try:
        with nogil:
            for r in range(n_inc):
                for k in range(i_ptr[r], i_ptr[r + 1]):
                    q = fill[tmp_p[k]]
                    p_inc[q] = <int>r
                    p_flag[q] = tmp_f[k]
                    fill[tmp_p[k]] += 1
    finally:
        free(fill)
    return (i_ptr_a, tmp_p_a[:n_out].copy(), tmp_f_a[:n_out].copy(), p_ptr_a, p_inc_a, p_flag_a)


def core_number(const cnp.int64_t[::1] indptr, const cnp.int32_t[::1] indices):
    """k-core number of every node of a simple undirected CSR graph.

    Batagelj and Zaversnik's O(m) algorithm (2003): nodes bucket-sorted by
    degree, peeled in order of current degree. Matches
    ``networkx.core_number`` and igraph's ``coreness``.

    >>> import numpy as np
    >>> # triangle 0-1-2 with a pendant 3 on node 2
    >>> ip = np.array([0, 2, 4, 7, 8], np.int64); ix = np.array([1, 2, 0, 2, 0, 1, 3, 2], np.int32)
    >>> core_number(ip, ix).tolist()
    [2, 2, 2, 1]
    """
    cdef Py_ssize_t n = indptr.shape[0] - 1, i, k, v, u, w, md = 0, start, num, du, pu, pw
    deg_a = np.empty(n, dtype=np.int32)
    cdef cnp.int32_t[::1] deg = deg_a
    cdef int* bin_ = NULL
    cdef int* pos = <int*>malloc(max(n, 1) * sizeof(int))
    cdef int* vert = <int*>malloc(max(n, 1) * sizeof(int))
    if pos == NULL or vert == NULL:
        free(pos); free(vert)
        raise MemoryError()
    try:
        with nogil:
            for v in range(n):
                deg[v] = <int>(indptr[v + 1] - indptr[v])
                if deg[v] > md:
                    md = deg[v]
            bin_ = <int*>malloc((md + 1) * sizeof(int))
            if bin_ != NULL:
                for k in range(md + 1):
                    bin_[k] = 0
                for v in range(n):
                    bin_[deg[v]] += 1
                start = 0
                for k in range(md + 1):
                    num = bin_[k]
                    bin_[k] = <int>start
                    start += num
                for v in range(n):
                    pos[v] = bin_[deg[v]]
                    vert[pos[v]] = <int>v
                    bin_[deg[v]] += 1
                for k in range(md, 0, -1):
                    bin_[k] = bin_[k - 1]
                bin_[0] = 0
                for i in range(n):
                    v = vert[i]
                    for k in range(indptr[v], indptr[v + 1]):
                        u = indices[k]
                        if deg[u] > deg[v]:
                            du = deg[u]
                            pu = pos[u]
                            pw = bin_[du]
                            w = vert[pw]
                            if u != w:
                                pos[u] = <int>pw
                                vert[pu] = <int>w
                                pos[w] = <int>pu
                                vert[pw] = <int>u
                            bin_[du] += 1
                            deg[u] -= 1
        if bin_ == NULL:
            raise MemoryError()
    finally:
        free(pos); free(vert); free(bin_)
    return deg_a


def exposure_weighted(const cnp.int64_t[::1] indptr, const cnp.int32_t[::1] indices,
                      const cnp.int32_t[::1] sources, const cnp.float64_t[::1] source_weight):
    """Like :func:`exposure_counts`, but each source adds its weight.

    ``sources`` must be unique. Returns float arrays (w1, w2): the summed
    weights of the sources at distance exactly 1 and exactly 2.

    >>> import numpy as np
    >>> ip = np.array([0, 1, 3, 5, 6], np.int64); ix = np.array([1, 0, 2, 1, 3, 2], np.int32)
    >>> w1, w2 = exposure_weighted(ip, ix, np.array([0, 3], np.int32), np.array([0.5, 2.0]))
    >>> w1.tolist(), w2.tolist()
    ([0.0, 0.5, 2.0, 0.0], [0.0, 2.0, 0.5, 0.0])
    """
    cdef Py_ssize_t n = indptr.shape[0] - 1, s, k, j, u, v, src
    cdef Py_ssize_t ns = sources.shape[0]
    cdef double wt
    w1_a = np.zeros(n, dtype=np.float64)
    w2_a = np.zeros(n, dtype=np.float64)
    cdef cnp.float64_t[::1] w1 = w1_a, w2 = w2_a
    cdef int* stamp = <int*>malloc(max(n, 1) * sizeof(int))
    if stamp == NULL:
        raise MemoryError()
    try:
        with nogil:
            for u in range(n):
                stamp[u] = -1
            for s in range(ns):
                src = sources[s]
                wt = source_weight[s]
                stamp[src] = <int>s
                for k in range(indptr[src], indptr[src + 1]):
                    u = indices[k]
                    if stamp[u] != s:
                        stamp[u] = <int>s
                        w1[u] += wt
                for k in range(indptr[src], indptr[src + 1]):
                    u = indices[k]
                    for j in range(indptr[u], indptr[u + 1]):
                        v = indices[j]
                        if stamp[v] != s:
                            stamp[v] = <int>s
                            w2[v] += wt
    finally:
        free(stamp)
    return w1_a, w2_a


def hawkes_estep(const cnp.int64_t[::1] indptr, const cnp.int32_t[::1] indices,
                 const cnp.float64_t[::1] tie_weight,
                 const cnp.int64_t[::1] ev_ptr, const cnp.float64_t[::1] ev_time,
                 const cnp.float64_t[::1] ev_mu, double alpha, double beta, double max_lag):
    """E-step of a network Hawkes process with an exponential delay kernel.

    Events are grouped by person: person ``i``'s events are
    ``ev_time[ev_ptr[i]:ev_ptr[i+1]]`` (ascending). The intensity of person
    ``i`` at ``t`` is ``mu_i + sum over neighbours j, events s of j before t
    of alpha * w_ij * beta * exp(-beta (t - s))`` (lags beyond ``max_lag``
    ignored). For each event ``e`` it returns the intensity ``lam[e]``, the
    probability ``p0[e]`` that it is a background event, the most likely
    parent event ``parent[e]`` (-1 if none) with its probability, and the
    sums over all (event, parent) pairs of the parent probabilities and of
    probability times lag (the sufficient statistics of the M-step).

    >>> import numpy as np
    >>> ip = np.array([0, 1, 2], np.int64); ix = np.array([1, 0], np.int32); w = np.ones(2)
    >>> ev_ptr = np.array([0, 1, 2], np.int64); t = np.array([0.0, 10.0])
    >>> lam, p0, par, ppar, s1, s2 = hawkes_estep(ip, ix, w, ev_ptr, t, np.array([0.01, 0.01]), 0.5, 0.1, 1e9)
    >>> par.tolist(), round(float(p0[1]), 4), round(s1, 4), round(s2, 4)
    ([-1, 0], 0.3522, 0.6478, 6.4781)
    """
    cdef Py_ssize_t n = indptr.shape[0] - 1, i, e, k, j, f, best
    cdef Py_ssize_t n_ev = ev_time.shape[0]
    cdef double t, lag, a, lam_e, bestv, s1 = 0.0, s2 = 0.0
    lam_a = np.empty(n_ev, dtype=np.float64)
    p0_a = np.empty(n_ev, dtype=np.float64)
    par_a = np.full(n_ev, -1, dtype=np.int64)
    ppar_a = np.zeros(n_ev, dtype=np.float64)
    cdef cnp.float64_t[::1] lam = lam_a, p0 = p0_a, ppar = ppar_a
    cdef cnp.int64_t[::1] par = par_a
    with nogil:
        for i in range(n):
            for e in range(ev_ptr[i], ev_ptr[i + 1]):
                t = ev_time[e]
                lam_e = ev_mu[e]
                best = -1
                bestv = 0.0
                # pass 1: total intensity
                for k in range(indptr[i], indptr[i + 1]):
                    j = indices[k]
                    for f in range(ev_ptr[j], ev_ptr[j + 1]):
                        lag = t - ev_time[f]
                        if lag <= 0.0:
                            break
                        if lag > max_lag:
                            continue
                        a = alpha * tie_weight[k] * beta * exp(-beta * lag)
                        lam_e += a
                        if a > bestv:
                            bestv = a
                            best = f
                lam[e] = lam_e
                p0[e] = ev_mu[e] / lam_e if lam_e > 0 else 1.0
                par[e] = best
                ppar[e] = bestv / lam_e if lam_e > 0 else 0.0
                # pass 2: sufficient statistics
                if lam_e > 0 and lam_e > ev_mu[e]:
                    for k in range(indptr[i], indptr[i + 1]):
                        j = indices[k]
                        for f in range(ev_ptr[j], ev_ptr[j + 1]):
                            lag = t - ev_time[f]
                            if lag <= 0.0:
                                break
                            if lag > max_lag:
                                continue
                            a = alpha * tie_weight[k] * beta * exp(-beta * lag) / lam_e
                            s1 += a
                            s2 += a * lag
    return lam_a, p0_a, par_a, ppar_a, s1, s2


cdef void _brandes_sources(const cnp.int64_t* indptr, const int* indices, Py_ssize_t n,
                           const int* sources, const double* scale, Py_ssize_t s_lo, Py_ssize_t s_hi,
                           double* acc, int* dist, double* sigma, double* delta, int* stack) noexcept nogil:
    """Brandes' dependency accumulation from sources[s_lo:s_hi] into acc (unweighted graph).

    dist must be all -1 on entry and is restored to -1 on exit; only the
    nodes reached from each source are touched.
    """
    cdef Py_ssize_t si, head, tail, k, j, top
    cdef int s, v, w
    cdef double coeff
    for si in range(s_lo, s_hi):
        s = sources[si]
        dist[s] = 0
        sigma[s] = 1.0
        delta[s] = 0.0
        stack[0] = s
        head = 0
        tail = 1
        # BFS; the queue doubles as the stack of nodes in order of distance
        while head < tail:
            v = stack[head]
            head += 1
            for k in range(indptr[v], indptr[v + 1]):
                w = indices[k]
                if dist[w] < 0:
                    dist[w] = dist[v] + 1
                    sigma[w] = 0.0
                    delta[w] = 0.0
                    stack[tail] = w
                    tail += 1
                if dist[w] == dist[v] + 1:
                    sigma[w] += sigma[v]
        # accumulate dependencies in reverse BFS order
        top = tail - 1
        while top > 0:
            w = stack[top]
            coeff = (1.0 + delta[w]) / sigma[w]
            for k in range(indptr[w], indptr[w + 1]):
                v = indices[k]
                if dist[v] == dist[w] - 1:
                    delta[v] += sigma[v] * coeff
            acc[w] += delta[w] * scale[si]
            top -= 1
        for j in range(tail):
            dist[stack[j]] = -1


def betweenness_sources(const cnp.int64_t[::1] indptr, const cnp.int32_t[::1] indices,
                        const cnp.int32_t[::1] sources, const cnp.float64_t[::1] scale, int n_threads=2,
                        int n_parts=0):
    """Sum over the given sources ``s`` of ``scale[s] * delta_s(v)`` (Brandes 2001).

    ``delta_s(v)`` is the dependency of source ``s`` on ``v`` over all targets
    in an unweighted undirected graph; summed over *all* sources it is
    networkx's raw betweenness (each pair counted in both orders). Work per
    source is proportional to the size of its component, so exact
    betweenness of many small components is cheap; sampled sources with
    ``scale = n_c / k`` give Brandes and Pich's (2007) unbiased estimate.
    Sources are split into ``n_parts`` contiguous parts (default
    ``n_threads``), each with its own accumulator, summed in part order at
    the end; the parts run on ``n_threads`` threads. The result depends on
    ``n_parts`` (the order of the floating-point sums) and never on
    ``n_threads``, so a run can give the kernel fewer threads (one, while
    other work uses the second core) and get the same bytes.

    >>> import numpy as np
    >>> # path 0-1-2: node 1 lies on the path between 0 and 2 (both orders)
    >>> ip = np.array([0, 1, 3, 4], np.int64); ix = np.array([1, 0, 2, 1], np.int32)
    >>> betweenness_sources(ip, ix, np.arange(3, dtype=np.int32), np.ones(3)).tolist()
    [0.0, 2.0, 0.0]
    """
    cdef Py_ssize_t n = indptr.shape[0] - 1, ns = sources.shape[0], t, i
    cdef int T = max(1, min(n_parts if n_parts > 0 else n_threads, 64))
    cdef int nt = max(1, min(n_threads, T))
    if ns < 64:
        T = 1
        nt = 1
    acc_a = np.zeros((T, max(n, 1)), dtype=np.float64)
    dist_a = np.full((T, max(n, 1)), -1, dtype=np.int32)
    sigma_a = np.zeros((T, max(n, 1)), dtype=np.float64)
    delta_a = np.zeros((T, max(n, 1)), dtype=np.float64)
    stack_a = np.zeros((T, max(n, 1)), dtype=np.int32)
    cdef double[:, ::1] acc = acc_a, sigma = sigma_a, delta = delta_a
    cdef int[:, ::1] dist = dist_a, stack = stack_a
    bounds_a = np.linspace(0, ns, T + 1).astype(np.intp)
    cdef Py_ssize_t[::1] bounds = bounds_a
    if n == 0 or ns == 0:
        return np.zeros(n, dtype=np.float64)
    cdef const cnp.int64_t* ip = &indptr[0]
    cdef const int* ix = <const int*>&indices[0] if indices.shape[0] > 0 else NULL
    cdef const int* src = <const int*>&sources[0]
    cdef const double* sc = &scale[0]
    with nogil:
        for t in prange(T, schedule="static", chunksize=1, num_threads=nt):
            _brandes_sources(ip, ix, n, src, sc, bounds[t], bounds[t + 1],
                             &acc[t, 0], &dist[t, 0], &sigma[t, 0], &delta[t, 0], &stack[t, 0])
    return acc_a.sum(axis=0)[:n]
