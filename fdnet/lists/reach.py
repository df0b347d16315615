r"""Call-in attendees: choose the invitees who carry the message furthest into their group.

A Group Violence Intervention call-in can seat only a few members of each
group, and the message (help is available; the next shooting brings
consequences for the whole group) is meant to spread from those who attend
to those who do not. Wheeler, McLean, Becker and Worden (2019), "Choosing
representatives to deliver the message in a group violence intervention",
*Justice Evaluation Journal*, model the spread in one step over the
co-offending network:

* a member is **reached** if invited, or if a direct co-offender attends;
* an invited member *i* attends with a show-up probability ``p[i]``: 1 for
  people under supervision (probation, parole, pretrial release can be
  required to attend), a policy value for others (1/6 by default);
* show-ups are independent, so for member *j* and invited set *S*::

      P(j reached) = 1                                   if j in S
                   = 1 - prod_{i in S, i ~ j} (1 - p[i])  otherwise

* the **expected reach** of *S* is the sum of these probabilities over the
  group's members, and the **expected share** is reach / members.

The partnership wants the *S* of at most ``capacity`` eligible members with
the largest expected reach. Wheeler et al. found that about a third of a
group's members are needed to reach all of it even when everyone attends,
and that the call-ins they observed were inefficient.

The expected reach is a monotone submodular set function (a probabilistic
coverage), so the **greedy** choice (:func:`greedy_invite`: repeatedly invite
whoever adds the most, lowest local index on ties) is within 1 - 1/e of the
best and usually at it. :func:`exact_invite` proves the best with an integer
programme (``scipy.optimize.milp``, the HiGHS solver) whose constraints are
exact at every integer point:

* a binary ``x[i]`` per eligible member (invited or not), ``sum x <= capacity``;
* a continuous ``r[j]`` in [0, 1] per member, maximised in ``sum r``;
* the invitees' probabilities fall into classes: *certain* (p = 1) and
  *fractional* (0 <= p < 1, weight ``w[i] = -log(1 - p[i])``). Member *j*'s
  log non-reach probability is ``L[j] = sum_{i ~ j, fractional} w[i] x[i]``
  and, when no certain neighbour and not *j* itself is invited, the reach is
  ``g(L[j]) = 1 - exp(-L[j])``, concave in ``L[j]``;
* ``L[j]`` takes finitely many values at integer points (every count vector of
  invited fractional neighbours per class with at most ``capacity`` in all).
  The piecewise-linear interpolation of the concave ``g`` through those values,
  sorted, is concave and equals ``g`` at each of them, so it is the minimum of
  its segments extended to lines. Segment *k* (slope ``s_k``, value
  ``0 <= a_k = g(L_k) - s_k L_k < 1`` at ``L = 0``) gives one constraint::

      r[j] <= a_k + s_k L[j] + (1 - a_k) (x[j] + sum_{i ~ j, certain} x[i])

  With one fractional class of probability ``p0`` (the usual case:
  supervised and not) the values are ``L = b w`` for ``b = 0..min(fractional
  degree, capacity)`` invited neighbours, and the lines are
  ``f(k) + f'(k) (b - k)`` with ``f(b) = 1 - (1 - p0)^b`` and
  ``f'(k) = f(k + 1) - f(k) = p0 (1 - p0)^k``. Several fractional classes are
  handled exactly the same way (more values); a member whose number of values
  exceeds :data:`MAX_CUTS_PER_MEMBER` (only with many distinct probabilities
  among its neighbours) is refused with a clear error rather than
  approximated. A member with no fractional neighbour gets
  ``r[j] <= x[j] + sum_{i ~ j, certain} x[i]``.

At an integer ``x``, if *j* or a certain neighbour is invited every right side
is at least ``a_k + s_k L + 1 - a_k >= 1`` (``L >= 0``); otherwise the
minimum over the lines is exactly the true probability ``g(L[j])``. So the
programme's optimum is the true best expected reach. The solver runs with a
zero relative gap (HiGHS's absolute gap, 1e-6, remains). Its choice replaces
the greedy one only when its expected reach, recomputed with
:func:`expected_reach`, is larger by more than :data:`TIE_TOLERANCE`; ties keep
the greedy set. (Among several optimal sets better than greedy's, the
solver's pick is returned: deterministic for a given SciPy/HiGHS version, not
necessarily the one with the lowest indices.) If the solver does not prove
optimality within ``time_limit`` seconds, the better of its incumbent and the
greedy set is returned with status ``"time_limit"``: never worse than greedy.
Note that a time limit makes a run depend on the machine's speed; pass
``node_limit`` for a reproducible cap instead.

Nobody is invited for nothing: whatever the method, an invitee whose
:func:`marginal_reach` (the expected reach lost without them) is at most
:data:`TIE_TOLERANCE` is dropped, so a set can have fewer invitees than
seats. Every reported reach comes from :func:`expected_reach`, the plain
definition, whatever the method. The greedy choice also carries a proven
upper bound on the best reach (Leskovec et al., 2007: the current reach plus
the ``capacity`` largest marginal gains, minimised over the steps), so a
greedy choice whose bound equals its reach is known to be optimal without a
solver.

Inputs are the group's induced co-offending subgraph as a symmetric CSR
adjacency without self loops or repeated entries, with local indices 0..n-1;
callers order members by person_id so that index ties are person_id ties
(:func:`induced_csr` builds it from the network's CSR).

A path a - b - c - d - e where only b and d are supervised (p = 1). With one
seat, b and d each reach three members for sure; the tie goes to b, the lower
index. With two seats, b and d reach everyone.

>>> import numpy as np
>>> indptr = np.array([0, 1, 3, 5, 7, 8])
>>> indices = np.array([1, 0, 2, 1, 3, 2, 4, 3])
>>> p = np.array([1/6, 1.0, 1/6, 1.0, 1/6])
>>> eligible = np.ones(5, dtype=bool)
>>> chosen, greedy = choose_attendees(indptr, indices, p, eligible, capacity=1)
>>> chosen.invited.tolist(), chosen.expected_reach, chosen.status
([1], 3.0, 'optimal')
>>> chosen.per_member.tolist()
[1.0, 1.0, 1.0, 0.0, 0.0]
>>> total, per = expected_reach(indptr, indices, np.array([1, 0, 0, 0, 1], dtype=bool), p)
>>> round(total, 4), round(float(per[1]), 4)   # two unsupervised endpoints: b hears with P 1/6
(2.3333, 0.1667)
>>> two, _ = choose_attendees(indptr, indices, p, eligible, capacity=2)
>>> two.invited.tolist(), two.expected_reach, two.expected_share
([1, 3], 5.0, 1.0)
"""
from __future__ import annotations

import heapq
import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import UsageError

TIE_TOLERANCE = 1e-9
"""Reach differences at or below this count as ties (the greedy set is kept)."""

MAX_CUTS_PER_MEMBER = 5000
"""Achievable log non-reach values per member above which the exact method refuses."""

GAIN_DECIMALS = 12
"""Greedy marginal gains are compared rounded to this many decimals, so that gains equal in
exact arithmetic but computed along different float paths tie, and the lowest index wins."""

SUPERVISED = frozenset({"probation", "parole", "pretrial"})


@dataclass(eq=False)
class Choice:
    """The invited set of one group and what it is expected to reach.

    ``invited``: sorted local indices, each adding expected reach (see
    :func:`marginal_reach`). ``per_member``: P(reached) per member.
    ``method``: ``"greedy"`` or ``"exact"``. ``status``: ``"greedy"`` (no solver),
    ``"optimal"`` (proven best, within the solver's 1e-6 absolute gap) or
    ``"time_limit"`` (the solver stopped at its time or node limit, or for another
    reason given in ``note``, without proving optimality: the best known set, never
    worse than greedy).
    ``bound``: a proven upper bound on the best expected reach (``None`` when
    unknown), at least ``expected_reach``. ``seconds``: wall time of this method.
    ``note``: the solver's message when it stopped without proving optimality.
    """

    invited: np.ndarray
    expected_reach: float
    per_member: np.ndarray
    method: str
    status: str
    bound: float | None
    seconds: float
    note: str = ""

    @property
    def n_members(self) -> int:
        return int(len(self.per_member))

    @property
    def expected_share(self) -> float:
        """Expected reach / members (0.0 for an empty group)."""
        return self.expected_reach / self.n_members if self.n_members else 0.0


# --------------------------------------------------------------------------- inputs

def _as_csr(indptr, indices) -> tuple[np.ndarray, np.ndarray, int]:
    indptr = np.asarray(indptr)
    indices = np.asarray(indices)
    if indptr.ndim != 1 or len(indptr) < 1 or indices.ndim != 1:
        raise UsageError("the adjacency must be a CSR pair: indptr of length n + 1 and indices")
    if not (np.issubdtype(indptr.dtype, np.integer) and
            (np.issubdtype(indices.dtype, np.integer) or len(indices) == 0)):
        raise UsageError("the CSR indptr and indices must be integer arrays")
    indptr = indptr.astype(np.int64)
    indices = indices.astype(np.int64)
    n = len(indptr) - 1
    if indptr[0] != 0 or indptr[-1] != len(indices) or np.any(np.diff(indptr) < 0):
        raise UsageError("the CSR indptr must start at 0, never decrease and end at len(indices)")
    if len(indices) and (indices.min() < 0 or indices.max() >= n):
        raise UsageError(f"the CSR indices must be local member indices 0..{n - 1}")
    return indptr, indices, n


def _check_graph(indptr: np.ndarray, indices: np.ndarray, n: int) -> None:
    """Symmetric, no self loops, no repeated entries: the model counts each tie once."""
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
    if np.any(rows == indices):
        j = int(rows[rows == indices][0])
        raise UsageError(f"the adjacency has a self loop at member {j}; a member is not their own co-offender")
    fwd = np.sort(rows * n + indices)
    if len(fwd) and np.any(fwd[1:] == fwd[:-1]):
        raise UsageError("the adjacency lists a tie twice; pass each co-offender once per member")
    if not np.array_equal(fwd, np.sort(indices * n + rows)):
        raise UsageError("the adjacency is not symmetric; co-offending ties go both ways")


def _checked(indptr, indices, p, eligible, capacity):
    indptr, indices, n = _as_csr(indptr, indices)
    _check_graph(indptr, indices, n)
    p = np.asarray(p, dtype=np.float64)
    eligible = np.asarray(eligible)
    if p.shape != (n,) or eligible.shape != (n,):
        raise UsageError(f"p and eligible must have one entry per member ({n}); "
                         f"got shapes {p.shape} and {eligible.shape}")
    if eligible.dtype != np.bool_:
        raise UsageError("eligible must be a boolean array (True: may be invited)")
    bad = eligible & ~((p >= 0) & (p <= 1))
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        raise UsageError(f"show-up probability {p[j]!r} of member {j} is not between 0 and 1")
    if isinstance(capacity, bool) or not isinstance(capacity, (int, np.integer)) or capacity < 0:
        raise UsageError(f"capacity must be a whole number of seats, 0 or more; got {capacity!r}")
    return indptr, indices, n, p, eligible, int(capacity)


# --------------------------------------------------------------------------- the definition

def expected_reach(indptr, indices, invited, p) -> tuple[float, np.ndarray]:
    """Expected reach of an invited set, and each member's probability of being reached.

    The plain definition, written for clarity rather than speed (it is the
    check on both methods): member *j* is reached for sure if invited, else
    with probability ``1 - prod (1 - p[i])`` over invited co-offenders *i*.

    >>> import numpy as np
    >>> total, per = expected_reach([0, 2, 3, 4], [1, 2, 0, 0], np.array([True, False, False]),
    ...                             np.array([0.5, 1.0, 1.0]))
    >>> total, per.tolist()
    (2.0, [1.0, 0.5, 0.5])
    """
    indptr, indices, n = _as_csr(indptr, indices)
    invited = np.asarray(invited)
    p = np.asarray(p, dtype=np.float64)
    if invited.shape != (n,) or invited.dtype != np.bool_ or p.shape != (n,):
        raise UsageError(f"invited (boolean) and p must have one entry per member ({n})")
    per_member = np.zeros(n, dtype=np.float64)
    for j in range(n):
        if invited[j]:
            per_member[j] = 1.0
            continue
        not_reached = 1.0
        for i in indices[indptr[j]:indptr[j + 1]]:
            if invited[i]:
                not_reached *= 1.0 - p[i]
        per_member[j] = 1.0 - not_reached
    return float(per_member.sum()), per_member


def _choice(indptr, indices, p, n, invited_idx, method, status, bound, t0, note: str = "") -> Choice:
    invited_idx = _without_passengers(indptr, indices, p, invited_idx)
    mask = np.zeros(n, dtype=bool)
    mask[invited_idx] = True
    total, per = expected_reach(indptr, indices, mask, p)
    if bound is not None:
        bound = max(float(bound), total)
    return Choice(invited=invited_idx, expected_reach=total, per_member=per, method=method,
                  status=status, bound=bound, seconds=time.perf_counter() - t0, note=note)


# --------------------------------------------------------------------------- greedy

def _greedy(indptr, indices, n, p, eligible, capacity) -> tuple[list[int], float]:
    """Lazy greedy; returns (invited in order of choice, proven upper bound on the best reach)."""
    not_reached = np.ones(n, dtype=np.float64)
    reach = 0.0
    deg = np.diff(indptr)

    def gain(i: int) -> float:
        # invited i is reached for sure; each co-offender j stays unreached with prob (1 - p[i])
        return float(not_reached[i] + p[i] * not_reached[indices[indptr[i]:indptr[i + 1]]].sum())

    # entries: (-rounded gain, index, exact gain: an upper bound once stale, step it was computed at)
    heap = [(-round(float(1.0 + p[i] * deg[i]), GAIN_DECIMALS), int(i), float(1.0 + p[i] * deg[i]), 0)
            for i in np.flatnonzero(eligible)]
    heapq.heapify(heap)
    invited: list[int] = []
    bound = float(n)
    while heap:
        # OPT <= f(S) + sum of the capacity largest gains w.r.t. S (monotone submodular);
        # stale gains are upper bounds of the current ones, so the bound stays valid
        bound = min(bound, reach + sum(heapq.nlargest(capacity, (e[2] for e in heap))))
        if len(invited) >= capacity:
            break
        step = len(invited)
        while True:
            negkey, i, g, at = heapq.heappop(heap)
            if at != step:
                g = gain(i)
                negkey = -round(g, GAIN_DECIMALS)
                at = step
                if heap and (negkey, i) > heap[0][:2]:
                    heapq.heappush(heap, (negkey, i, g, at))
                    continue
            break
        if negkey >= 0:          # the best gain is nothing: no one left adds reach
            bound = min(bound, reach)
            break
        invited.append(i)
        reach += g
        not_reached[i] = 0.0
        nb = indices[indptr[i]:indptr[i + 1]]
        not_reached[nb] *= 1.0 - p[i]
    if not heap:                 # every eligible member invited (or none eligible): nothing left to add
        bound = min(bound, reach)
    return invited, bound


def greedy_invite(indptr, indices, p, eligible, capacity) -> Choice:
    """Lazy greedy choice of at most ``capacity`` invitees among ``eligible`` members.

    Each step invites the member adding the most expected reach (gains
    compared at :data:`GAIN_DECIMALS` decimals; the lowest local index wins a
    tie), re-evaluating stale gains lazily (they only shrink: submodularity).
    Stops early when no one adds reach. ``bound`` is a proven upper bound on
    the best reach; ``status`` is ``"greedy"``.

    >>> import numpy as np
    >>> star = ([0, 3, 4, 5, 6], [1, 2, 3, 0, 0, 0])       # centre 0, leaves 1..3
    >>> c = greedy_invite(*star, p=np.ones(4), eligible=np.ones(4, bool), capacity=3)
    >>> c.invited.tolist(), c.expected_reach, c.bound    # the centre reaches all: stop
    ([0], 4.0, 4.0)
    """
    t0 = time.perf_counter()
    indptr, indices, n, p, eligible, capacity = _checked(indptr, indices, p, eligible, capacity)
    invited, bound = _greedy(indptr, indices, n, p, eligible, capacity)
    return _choice(indptr, indices, p, n, invited, "greedy", "greedy", bound, t0)


# --------------------------------------------------------------------------- exact

def _achievable_log_values(counts: list[int], weights: list[float], capacity: int, limit: int) -> np.ndarray:
    """Sorted distinct values of sum_c b_c w_c over 0 <= b_c <= counts[c], sum b_c <= capacity.

    >>> _achievable_log_values([3], [math.log(2)], 2, 100) / math.log(2)
    array([0., 1., 2.])
    >>> _achievable_log_values([1, 2], [1.0, 0.5], 3, 100).tolist()   # 1.0 twice: kept once
    [0.0, 0.5, 1.0, 1.5, 2.0]
    """
    vectors = [()]                    # count vectors of invited neighbours, expanded class by class
    for c in range(len(counts)):
        vectors = [v + (b,) for v in vectors for b in range(min(counts[c], capacity - sum(v)) + 1)]
        if len(vectors) > limit * 8:
            raise UsageError(
                "too many distinct show-up probabilities among one member's co-offenders for the exact "
                f"method ({len(counts)} classes); use the greedy method or fewer probability values")
    values = np.array(sorted({math.fsum(b * w for b, w in zip(v, weights)) for v in vectors}),
                      dtype=np.float64)
    if len(values) > 1:             # merge float near-duplicates (equal sums reached in different orders)
        keep = np.concatenate([[True], np.diff(values) > 1e-12 * np.maximum(1.0, values[1:])])
        values = values[keep]
    if len(values) > limit:
        raise UsageError(
            f"a member has {len(values)} achievable reach values (more than {limit}) because their "
            "co-offenders have many distinct show-up probabilities; use the greedy method or fewer "
            "probability values")
    return values


def _programme(indptr, indices, n, p, eligible, capacity):
    """The integer programme's constraint rows: ``(A, rhs, cand, r_members)``, all rows ``A v <= rhs``.

    Variables ``v``: ``x`` for ``cand`` (the eligible members, in index order),
    then ``r`` for ``r_members`` (members with an eligible member in their
    closed neighbourhood; the others can never be reached). The last row is
    the seat limit.
    """
    from scipy import sparse
    cand = np.flatnonzero(eligible)
    m = len(cand)
    col_of = np.full(n, -1, dtype=np.int64)
    col_of[cand] = np.arange(m)
    certain = eligible & (p >= 1.0)
    fractional = eligible & ~certain
    w = np.zeros(n)
    w[fractional] = -np.log1p(-p[fractional])
    # classes of fractional invitees by their weight (distinct probabilities)
    classes, cls = np.unique(w[fractional], return_inverse=True)
    cls_of = np.full(n, -1, dtype=np.int64)
    cls_of[np.flatnonzero(fractional)] = cls
    weights = classes.tolist()

    # each cut row: r_j - (1 - a_k)(x_j + sum_{certain nbrs} x_i) - s_k sum_{fractional nbrs} w_i x_i <= a_k
    row_cols: list[np.ndarray] = []
    row_vals: list[np.ndarray] = []
    rhs: list[float] = []
    r_members: list[int] = []
    for j in range(n):
        nb = indices[indptr[j]:indptr[j + 1]]
        if not (eligible[j] or eligible[nb].any()):
            continue
        rcol = m + len(r_members)
        r_members.append(j)
        ind = col_of[nb[certain[nb]]]
        if eligible[j]:
            ind = np.concatenate([[col_of[j]], ind])
        base_cols = np.concatenate([[rcol], ind])
        fnb = nb[fractional[nb]]
        counts = np.bincount(cls_of[fnb], minlength=len(weights))
        used = np.flatnonzero(counts)
        values = (_achievable_log_values(counts[used].tolist(), [weights[c] for c in used],
                                         capacity, MAX_CUTS_PER_MEMBER) if len(used) else np.zeros(1))
        g = -np.expm1(-values)                       # reach at each achievable log non-reach
        if len(values) == 1:                         # no fractional neighbour (or all p = 0): r <= x_j + certain
            row_cols.append(base_cols)
            row_vals.append(np.concatenate([[1.0], -np.ones(len(ind))]))
            rhs.append(0.0)
            continue
        slope = np.diff(g) / np.diff(values)
        intercept = g[:-1] - slope * values[:-1]     # >= 0: a chord of a concave g, extended, lies above it
        for b, s in zip(intercept.tolist(), slope.tolist()):
            row_cols.append(np.concatenate([base_cols, col_of[fnb]]))
            row_vals.append(np.concatenate([[1.0], np.full(len(ind), -(1.0 - b)), -s * w[fnb]]))
            rhs.append(b)
    nvar = m + len(r_members)
    # seats: sum x <= capacity
    row_cols.append(np.arange(m))
    row_vals.append(np.ones(m))
    rhs.append(float(capacity))
    row_ptr = np.concatenate([[0], np.cumsum([len(r) for r in row_cols])])
    A = sparse.csr_array((np.concatenate(row_vals), np.concatenate(row_cols).astype(np.int64), row_ptr),
                         shape=(len(rhs), nvar))
    return A, np.array(rhs), cand, np.array(r_members, dtype=np.int64)


def _check_limits(time_limit, node_limit) -> None:
    if isinstance(time_limit, bool) or not isinstance(time_limit, (int, float, np.integer, np.floating)) \
            or not math.isfinite(time_limit) or time_limit <= 0:
        raise UsageError(f"the exact method's time limit must be a positive number of seconds; got {time_limit!r}")
    if node_limit is not None and (isinstance(node_limit, bool) or not isinstance(node_limit, (int, np.integer))
                                   or node_limit < 1):
        raise UsageError(f"the exact method's node limit must be a whole number, 1 or more; got {node_limit!r}")


def _exact(indptr, indices, n, p, eligible, capacity, greedy: Choice, time_limit: float,
           node_limit: int | None, t0: float) -> Choice:
    from scipy.optimize import Bounds, LinearConstraint, milp

    def done(invited, status, bound, note=""):
        return _choice(indptr, indices, p, n, invited, "exact", status, bound, t0, note)

    # the greedy set is proven optimal by its own bound (e.g. capacity covers everyone useful)
    if greedy.bound is not None and greedy.bound <= greedy.expected_reach + TIE_TOLERANCE:
        return done(greedy.invited, "optimal", greedy.bound)

    A, rhs, cand, r_members = _programme(indptr, indices, n, p, eligible, capacity)
    m, nr = len(cand), len(r_members)
    nvar = m + nr
    c = np.concatenate([np.zeros(m), -np.ones(nr)])
    integrality = np.concatenate([np.ones(m), np.zeros(nr)])
    opts = {"time_limit": max(float(time_limit) - (time.perf_counter() - t0), 1e-3),
            "mip_rel_gap": 0.0, "presolve": True}
    if node_limit is not None:
        opts["node_limit"] = int(node_limit)
    res = milp(c, integrality=integrality, bounds=Bounds(np.zeros(nvar), np.ones(nvar)),
               constraints=LinearConstraint(A, -np.inf, rhs), options=opts)
    if res.status in (2, 3):       # x = 0 is always feasible and the objective is bounded
        raise RuntimeError(f"the attendee integer programme failed ({res.status}: {res.message})")
    bound = greedy.bound
    if getattr(res, "mip_dual_bound", None) is not None and np.isfinite(res.mip_dual_bound):
        bound = min(bound, -float(res.mip_dual_bound)) if bound is not None else -float(res.mip_dual_bound)
    # 1: time or node limit; 4: HiGHS stopped for another reason (e.g. its solution limit):
    # either way optimality is not proven, and the incumbent, if any, is only compared with greedy
    status = "optimal" if res.status == 0 else "time_limit"
    best = greedy.invited
    if res.x is not None:
        sol = cand[np.asarray(res.x[:m]) > 0.5]
        mask = np.zeros(n, dtype=bool)
        mask[sol] = True
        total, _ = expected_reach(indptr, indices, mask, p)
        if total > greedy.expected_reach + TIE_TOLERANCE:
            best = sol
    return done(best, status, bound, "" if res.status == 0 else str(res.message))


def exact_invite(indptr, indices, p, eligible, capacity, time_limit: float = 20.0, *,
                 node_limit: int | None = None) -> Choice:
    """The best invited set by integer programming (see the module docstring for the model).

    Compared with the greedy choice: the solver's set is kept only when its
    expected reach is larger (ties keep greedy's). ``status`` is ``"optimal"``
    when proven, ``"time_limit"`` when the solver stopped at ``time_limit``
    seconds or ``node_limit`` branch-and-bound nodes (then the better of its
    incumbent and greedy). ``bound`` is the best proven upper bound.

    >>> import numpy as np
    >>> star = ([0, 3, 4, 5, 6], [1, 2, 3, 0, 0, 0])        # centre 0 unsupervised, leaves supervised
    >>> c = exact_invite(*star, p=np.array([1/6, 1, 1, 1]), eligible=np.ones(4, bool), capacity=1)
    >>> c.invited.tolist(), c.expected_reach, c.status     # a supervised leaf reaches itself and the centre
    ([1], 2.0, 'optimal')
    """
    t0 = time.perf_counter()
    indptr, indices, n, p, eligible, capacity = _checked(indptr, indices, p, eligible, capacity)
    _check_limits(time_limit, node_limit)
    g_inv, g_bound = _greedy(indptr, indices, n, p, eligible, capacity)
    greedy = _choice(indptr, indices, p, n, g_inv, "greedy", "greedy", g_bound, t0)
    return _exact(indptr, indices, n, p, eligible, capacity, greedy, time_limit, node_limit, t0)


def choose_attendees(indptr, indices, p, eligible, capacity, method: str = "exact",
                     time_limit: float = 20.0, *, node_limit: int | None = None) -> tuple[Choice, Choice]:
    """``(chosen, greedy)``: the choice by ``method`` (``"exact"`` or ``"greedy"``) and the greedy one.

    Returning both lets callers report the gap (``chosen.expected_reach -
    greedy.expected_reach``, never negative) and the bound. With
    ``method="greedy"`` both are the same object. ``chosen.seconds`` of the
    exact method includes the greedy run it starts from.
    """
    if method not in ("exact", "greedy"):
        raise UsageError(f"call-in attendee method must be 'exact' or 'greedy', not {method!r}")
    t0 = time.perf_counter()
    indptr, indices, n, p, eligible, capacity = _checked(indptr, indices, p, eligible, capacity)
    if method == "exact":
        _check_limits(time_limit, node_limit)
    g_inv, g_bound = _greedy(indptr, indices, n, p, eligible, capacity)
    greedy = _choice(indptr, indices, p, n, g_inv, "greedy", "greedy", g_bound, t0)
    if method == "greedy":
        return greedy, greedy
    return _exact(indptr, indices, n, p, eligible, capacity, greedy, time_limit, node_limit, t0), greedy


# --------------------------------------------------------------------------- helpers for callers

def marginal_reach(indptr, indices, invited, p) -> np.ndarray:
    """For each invitee (``invited``: local indices), the expected reach lost without them.

    ``expected_reach(S) - expected_reach(S minus i)``: the explanation of why
    each invitee is on the list. Computed term by term, so a zero is exactly
    zero: invitee *i* loses their own certain reach, keeping only the chance
    the other invitees reach them, ``prod_{k in S ~ i} (1 - p[k])``, and each
    uninvited co-offender *j* loses ``p[i] prod_{k in S ~ j, k != i} (1 - p[k])``.

    >>> import numpy as np
    >>> path = ([0, 1, 3, 4], [1, 0, 2, 1])                # a - b - c
    >>> marginal_reach(*path, [0, 1], np.array([1.0, 1.0, 1.0])).tolist()   # a adds nothing beyond b
    [0.0, 1.0]
    """
    indptr, indices, n = _as_csr(indptr, indices)
    invited = np.asarray(invited, dtype=np.int64)
    p = np.asarray(p, dtype=np.float64)
    mask = np.zeros(n, dtype=bool)
    mask[invited] = True

    def miss_without(j: int, i: int) -> float:
        """P(j not reached by the invitees other than i), j not invited."""
        out = 1.0
        for k in indices[indptr[j]:indptr[j + 1]].tolist():
            if mask[k] and k != i:
                out *= 1.0 - p[k]
        return out

    loss = np.empty(len(invited), dtype=np.float64)
    for t, i in enumerate(invited.tolist()):
        lost = miss_without(i, i)
        for j in indices[indptr[i]:indptr[i + 1]].tolist():
            if not mask[j]:
                lost += p[i] * miss_without(j, i)
        loss[t] = lost
    return loss


def _without_passengers(indptr, indices, p, invited) -> np.ndarray:
    """Drop invitees who add no expected reach (at most :data:`TIE_TOLERANCE`), one at a time,
    the highest index first (dropping one can only raise the others' contributions)."""
    invited = np.sort(np.asarray(invited, dtype=np.int64))
    while len(invited):
        idle = invited[marginal_reach(indptr, indices, invited, p) <= TIE_TOLERANCE]
        if not len(idle):
            break
        invited = invited[invited != idle.max()]
    return invited


def induced_csr(indptr, indices, members) -> tuple[np.ndarray, np.ndarray]:
    """CSR of the subgraph induced by ``members`` (global indices), with local index k = members[k].

    Neighbours are listed in increasing local index. Pass members sorted by
    person_id so that the methods' lowest-index tie rule is a person_id rule.
    The work is one gather of the members' rows and one relabel: proportional
    to the members' degrees, not to the network.

    >>> ip, ix = induced_csr([0, 2, 4, 6], [1, 2, 0, 2, 0, 1], [2, 0])   # triangle, keep 2 and 0
    >>> ip.tolist(), ix.tolist()
    ([0, 1, 2], [1, 0])
    """
    indptr = np.asarray(indptr)
    indices = np.asarray(indices)
    if indptr.ndim != 1 or len(indptr) < 1 or indices.ndim != 1:
        raise UsageError("the adjacency must be a CSR pair: indptr of length n + 1 and indices")
    n = len(indptr) - 1
    members = np.asarray(members, dtype=np.int64)
    k = len(members)
    if k and (members.min() < 0 or members.max() >= n or len(np.unique(members)) != k):
        raise UsageError("members must be distinct indices of the network")
    lo = indptr[members].astype(np.int64)
    deg = indptr[members + 1].astype(np.int64) - lo
    total = int(deg.sum())
    row = np.repeat(np.arange(k, dtype=np.int64), deg)
    # positions of every member's neighbours in ``indices``: lo[row] + offset within the row
    pos = lo[row] + (np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(deg) - deg, deg))
    nb = indices[pos].astype(np.int64)
    if len(nb) and (nb.min() < 0 or nb.max() >= n):
        raise UsageError(f"the CSR indices must be network indices 0..{n - 1}")
    local = np.full(n, -1, dtype=np.int64) if k else np.zeros(0, dtype=np.int64)
    local[members] = np.arange(k, dtype=np.int64)
    col = local[nb] if len(nb) else np.zeros(0, dtype=np.int64)
    keep = col >= 0
    row, col = row[keep], col[keep]
    order = np.lexsort((col, row))
    row, col = row[order], col[order]
    if len(row):                                   # a tie listed twice in the input counts once (as scipy summed it)
        first = np.concatenate([[True], (row[1:] != row[:-1]) | (col[1:] != col[:-1])])
        row, col = row[first], col[first]
    ip = np.zeros(k + 1, dtype=np.int64)
    np.cumsum(np.bincount(row, minlength=k), out=ip[1:])
    return ip, col


def show_up_probabilities(supervision, *, default: float = 1 / 6, supervised: float = 1.0,
                          supervision_end=None, as_of: str | None = None) -> np.ndarray:
    """Per-member show-up probability: ``supervised`` for probation/parole/pretrial, else ``default``.

    ``supervision`` values are matched case-insensitively (missing counts as
    none). With ``supervision_end`` (ISO dates, empty when open-ended) and
    ``as_of``, a supervision that ended before ``as_of`` no longer counts.

    >>> p = show_up_probabilities(["parole", "none", "", "Probation", "pretrial"], as_of="2025-06-30",
    ...                           supervision_end=["", "", "", "2024-01-01", "2026-01-01"])
    >>> p.round(3).tolist()
    [1.0, 0.167, 0.167, 0.167, 1.0]
    """
    sup = pd.Series(np.asarray(supervision, dtype=object), dtype=object).fillna("").astype(str).str.strip().str.lower()
    on = sup.isin(SUPERVISED).to_numpy(dtype=bool, copy=True)
    if supervision_end is not None and as_of is not None:
        ends = pd.Series(np.asarray(supervision_end, dtype=object), dtype=object).fillna("").astype(str).str[:10]
        if len(ends) != len(sup):
            raise UsageError("supervision and supervision_end must have the same length")
        e = ends.to_numpy(dtype=object)
        on = on & ((e == "") | (e >= str(as_of)[:10]))
    return np.where(on, float(supervised), float(default))
