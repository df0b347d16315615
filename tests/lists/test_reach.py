"""Call-in attendee choice (fdnet.lists.reach) against oracles written without the code under test.

1. ``expected_reach`` against a Monte Carlo simulation of who shows up;
2. the integer programme's constraints at every integer point (the LP with the
   invited set fixed gives the true expected reach), the single-class cut
   slopes p0 (1 - p0)^k, and the exact method against brute-force enumeration of every invited set
   (hypothesis: up to 12 members, mixed probability classes, ineligible
   members, 1 to 4 seats), with its own vectorised reach formula;
3. greedy between (1 - 1/e) of the optimum and the optimum, bounds above it;
4. with p = 1 the problem is maximum coverage of closed neighbourhoods
   (a set-union oracle);
5. determinism and tie-breaking by the lowest index;
6. degenerate groups, the solver's node limit, and input errors.
"""
from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import sparse

from fdnet.errors import UsageError
from fdnet.lists.reach import (Choice, _programme, choose_attendees, exact_invite, expected_reach,
                               greedy_invite, induced_csr, marginal_reach, show_up_probabilities)

SIXTH = 1 / 6


def csr_from_dense(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    m = sparse.csr_array(a.astype(np.int8))
    m.sort_indices()
    return m.indptr.astype(np.int64), m.indices.astype(np.int64)


def random_sparse(n: int, m: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = np.zeros((n, n), dtype=bool)
    u, v = rng.integers(0, n, m), rng.integers(0, n, m)
    keep = u != v
    a[u[keep], v[keep]] = True
    return csr_from_dense(a | a.T)


def all_reaches(a: np.ndarray, p: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Expected reach of each row of ``masks`` (invited sets), vectorised and independent of fdnet."""
    # miss[s, j] = prod_i (1 - a[j, i] p[i] x[s, i]); reached for sure when invited
    f = 1.0 - a[None, :, :] * (p * masks)[:, None, :]
    miss = np.prod(f, axis=2)
    reached = np.where(masks, 1.0, 1.0 - miss)
    return reached.sum(axis=1)


def brute_force_best(a: np.ndarray, p: np.ndarray, eligible: np.ndarray, capacity: int) -> float:
    n = len(a)
    cand = np.flatnonzero(eligible)
    masks = []
    for k in range(min(capacity, len(cand)) + 1):
        for s in combinations(cand.tolist(), k):
            x = np.zeros(n, dtype=bool)
            x[list(s)] = True
            masks.append(x)
    if n == 0:
        return 0.0
    return float(all_reaches(a, p, np.array(masks)).max())


# --------------------------------------------------------------------------- 1. the definition

def test_expected_reach_matches_monte_carlo_show_ups():
    rng = np.random.default_rng(7)
    n = 14
    a = np.triu(rng.random((n, n)) < 0.3, 1)
    a = a | a.T
    indptr, indices = csr_from_dense(a)
    p = rng.choice([1.0, SIXTH, 0.5], size=n)
    invited = np.zeros(n, dtype=bool)
    invited[[0, 3, 5, 9]] = True
    total, per = expected_reach(indptr, indices, invited, p)
    trials = 100_000
    attend = invited[None, :] & (rng.random((trials, n)) < p[None, :])
    reached = invited[None, :] | ((attend.astype(np.int32) @ a.astype(np.int32)) > 0)
    sim = reached.mean(axis=0)
    # standard error of each mean is at most 0.5 / sqrt(1e5) = 0.0016
    assert np.max(np.abs(sim - per)) < 0.01
    assert abs(reached.sum(axis=1).mean() - total) < 0.05
    assert np.all(per[invited] == 1.0)
    assert per[~invited & (a[:, invited].sum(axis=1) == 0)].tolist() == [0.0] * int(
        (~invited & (a[:, invited].sum(axis=1) == 0)).sum())


def test_expected_reach_closed_form_on_a_star():
    # centre 0 not invited, three invited leaves with p = 1/6: P = 1 - (5/6)^3
    indptr, indices = csr_from_dense(np.array([[0, 1, 1, 1], [1, 0, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0]]))
    total, per = expected_reach(indptr, indices, np.array([False, True, True, True]), np.full(4, SIXTH))
    assert per[0] == pytest.approx(1 - (5 / 6) ** 3, abs=1e-15)
    assert total == pytest.approx(3 + 1 - (5 / 6) ** 3, abs=1e-12)


# --------------------------------------------------------------------------- 2. and 3. exact vs brute force

@st.composite
def groups(draw):
    n = draw(st.integers(0, 12))
    tri = draw(st.lists(st.booleans(), min_size=n * (n - 1) // 2, max_size=n * (n - 1) // 2))
    a = np.zeros((n, n), dtype=bool)
    if n > 1:
        iu = np.triu_indices(n, 1)
        a[iu] = tri
    a = a | a.T
    classes = draw(st.sampled_from([(1.0, SIXTH), (1.0, SIXTH, 0.5), (SIXTH, 0.3, 0.75), (1.0,), (SIXTH,),
                                    (1.0, 0.0, 0.4)]))
    p = np.array(draw(st.lists(st.sampled_from(classes), min_size=n, max_size=n)), dtype=float)
    eligible = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    capacity = draw(st.integers(1, 4))
    return a, p, eligible, capacity


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(groups())
def test_exact_equals_brute_force_and_greedy_is_within_its_guarantee(g):
    a, p, eligible, capacity = g
    indptr, indices = csr_from_dense(a)
    chosen, greedy = choose_attendees(indptr, indices, p, eligible, capacity)
    best = brute_force_best(a, p, eligible, capacity)
    assert chosen.expected_reach == pytest.approx(best, abs=1e-6)
    assert chosen.status == "optimal" and chosen.method == "exact"
    assert greedy.method == "greedy" and greedy.status == "greedy"
    assert greedy.expected_reach <= chosen.expected_reach + 1e-9
    assert greedy.expected_reach >= (1 - 1 / math.e) * best - 1e-9
    for c in (chosen, greedy):
        assert c.bound >= best - 1e-6 and c.bound >= c.expected_reach
        assert len(c.invited) <= capacity and eligible[c.invited].all()
        assert np.all(marginal_reach(indptr, indices, c.invited, p) > 1e-9)     # nobody invited for nothing
        assert np.all(np.diff(c.invited) > 0)
        # the reported reach is the reach of the reported set (oracle formula)
        x = np.zeros(len(a), dtype=bool)
        x[c.invited] = True
        if len(a):
            assert c.expected_reach == pytest.approx(float(all_reaches(a, p, x[None, :])[0]), abs=1e-9)
        assert c.per_member.shape == (len(a),)
    assert chosen.bound == pytest.approx(best, abs=1e-5)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(groups(), st.integers(0, 2**32 - 1))
def test_programme_is_exact_at_integer_points(g, seed):
    """With x fixed to any feasible invited set, the best r is each member's true probability."""
    from scipy.optimize import linprog
    a, p, eligible, capacity = g
    n = len(a)
    indptr, indices = csr_from_dense(a)
    A, rhs, cand, r_members = _programme(indptr, indices, n, p, eligible, capacity)
    if len(cand) == 0:                       # nobody can be invited: no variables, nobody reached
        assert len(r_members) == 0
        return
    rng = np.random.default_rng(seed)
    m, nr = len(cand), len(r_members)
    for _ in range(5):
        k = int(rng.integers(0, min(capacity, m) + 1))
        chosen = rng.choice(cand, size=k, replace=False) if k else np.zeros(0, dtype=np.int64)
        x = np.isin(cand, chosen).astype(float)
        bounds = [(v, v) for v in x] + [(0, 1)] * nr
        res = linprog(np.concatenate([np.zeros(m), -np.ones(nr)]), A_ub=A, b_ub=rhs, bounds=bounds,
                      method="highs")
        assert res.status == 0
        invited = np.zeros(n, dtype=bool)
        invited[chosen] = True
        # member by member: r_j equals P(j reached); members without an r can never be reached
        per = np.zeros(n)
        per[r_members] = res.x[m:]
        miss = np.prod(1.0 - a * (p * invited)[None, :], axis=1)
        assert np.allclose(per, np.where(invited, 1.0, 1.0 - miss), atol=1e-9)
        assert -res.fun == pytest.approx(all_reaches(a, p, invited[None, :])[0], abs=1e-9)


def test_single_class_cuts_are_the_interpolation_slopes():
    # a centre with five unsupervised leaves (p0 = 1/6), seven seats: cuts b = 0..4 with
    # per-invited-neighbour coefficient f'(k) = p0 (1 - p0)^k and right side a_k = f(k) - k f'(k)
    n = 6
    a = np.zeros((n, n), dtype=bool)
    a[0, 1:] = a[1:, 0] = True
    indptr, indices = csr_from_dense(a)
    p0, q = SIXTH, 5 / 6
    A, rhs, cand, r_members = _programme(indptr, indices, n, np.full(n, p0), np.ones(n, bool), 7)
    A = A.toarray()
    centre_rows = np.flatnonzero(A[:, len(cand) + 0] == 1.0)      # r of member 0 is the first r column
    assert len(centre_rows) == 5
    for k, row in enumerate(centre_rows):
        f_k = 1 - q ** k
        slope = p0 * q ** k
        assert A[row, 1:6] == pytest.approx(np.full(5, -slope), abs=1e-12)
        assert rhs[row] == pytest.approx(f_k - k * slope, abs=1e-12)
        assert A[row, 0] == pytest.approx(-(1 - rhs[row]), abs=1e-12)    # x of the centre itself
    assert rhs[-1] == 7 and A[-1, :6].tolist() == [1.0] * 6


def test_exact_beats_greedy_where_greedy_is_myopic():
    # a hub adjacent to two members of each of two cliques of four: the hub and a clique member
    # both cover five, the hub wins the tie, and after it no choice covers more than two new members;
    # the optimum is one hub-adjacent member per clique (all nine)
    n = 9
    a = np.zeros((n, n), dtype=bool)
    for block in ([1, 2, 3, 4], [5, 6, 7, 8]):
        for u in block:
            for v in block:
                a[u, v] = u != v
    for v in (1, 2, 5, 6):
        a[0, v] = a[v, 0] = True
    indptr, indices = csr_from_dense(a)
    p = np.ones(n)
    chosen, greedy = choose_attendees(indptr, indices, p, np.ones(n, bool), 2)
    assert greedy.invited.tolist() == [0, 1] and greedy.expected_reach == 7.0
    assert chosen.expected_reach == 9.0 and chosen.status == "optimal"
    # four optimal sets ({1 or 2} x {5 or 6}); which one the solver returns is its (deterministic) choice
    assert chosen.invited[0] in (1, 2) and chosen.invited[1] in (5, 6)
    assert brute_force_best(a, p, np.ones(n, bool), 2) == 9.0


# --------------------------------------------------------------------------- 4. p = 1: maximum coverage

@settings(max_examples=60, deadline=None)
@given(st.integers(2, 11), st.integers(0, 10**6), st.integers(1, 4))
def test_certain_show_up_is_maximum_coverage(n, seed, capacity):
    rng = np.random.default_rng(seed)
    a = np.triu(rng.random((n, n)) < rng.uniform(0.1, 0.5), 1)
    a = a | a.T
    indptr, indices = csr_from_dense(a)
    closed = [({j} | set(np.flatnonzero(a[j]).tolist())) for j in range(n)]
    best = max(len(set().union(*(closed[i] for i in s))) for k in range(capacity + 1)
               for s in combinations(range(n), k))
    chosen, greedy = choose_attendees(indptr, indices, np.ones(n), np.ones(n, bool), capacity)
    assert chosen.expected_reach == best
    assert set(np.flatnonzero(chosen.per_member == 1.0)) == set().union(*(closed[i] for i in chosen.invited))
    assert np.isin(chosen.per_member, [0.0, 1.0]).all()
    assert greedy.expected_reach <= best


# --------------------------------------------------------------------------- 5. determinism, ties

def test_repeated_runs_are_identical():
    indptr, indices = random_sparse(150, 260, seed=3)
    rng = np.random.default_rng(3)
    p = rng.choice([1.0, SIXTH], size=150, p=[0.15, 0.85])
    eligible = rng.random(150) < 0.8
    runs = [choose_attendees(indptr, indices, p, eligible, 10) for _ in range(3)]
    for chosen, greedy in runs[1:]:
        assert chosen.invited.tolist() == runs[0][0].invited.tolist()
        assert greedy.invited.tolist() == runs[0][1].invited.tolist()
        assert chosen.per_member.tobytes() == runs[0][0].per_member.tobytes()
        assert chosen.expected_reach == runs[0][0].expected_reach
    solo = exact_invite(indptr, indices, p, eligible, 10)
    assert solo.invited.tolist() == runs[0][0].invited.tolist()
    assert greedy_invite(indptr, indices, p, eligible, 10).invited.tolist() == runs[0][1].invited.tolist()


def test_ties_go_to_the_lowest_index():
    # four isolated members: every pair reaches 2
    indptr, indices = np.zeros(5, dtype=np.int64), np.zeros(0, dtype=np.int64)
    chosen, greedy = choose_attendees(indptr, indices, np.full(4, SIXTH), np.ones(4, bool), 2)
    assert greedy.invited.tolist() == [0, 1] and chosen.invited.tolist() == [0, 1]
    # two identical triangles: the one with lower indices wins; ineligible members are skipped
    a = np.zeros((6, 6), dtype=bool)
    for block in ([0, 1, 2], [3, 4, 5]):
        for u in block:
            for v in block:
                a[u, v] = u != v
    indptr, indices = csr_from_dense(a)
    el = np.array([False, True, True, True, True, True])
    chosen, greedy = choose_attendees(indptr, indices, np.ones(6), el, 1)
    assert greedy.invited.tolist() == [1] and chosen.invited.tolist() == [1]


def test_invitees_who_add_nothing_are_dropped():
    # hub 0 (p = 0.9) with leaves 1..10; supervised 11 and 12 each see the hub and five leaves.
    # Greedy takes the hub first (gain 11.8 > 7), then 11 and 12, which reach everyone the hub does:
    # the hub adds nothing left and is dropped.
    n = 13
    a = np.zeros((n, n), dtype=bool)
    a[0, 1:] = a[1:, 0] = True
    for s, leaves in ((11, range(1, 6)), (12, range(6, 11))):
        for v in leaves:
            a[s, v] = a[v, s] = True
    indptr, indices = csr_from_dense(a)
    p = np.full(n, SIXTH)
    p[0], p[11], p[12] = 0.9, 1.0, 1.0
    eligible = np.zeros(n, dtype=bool)
    eligible[[0, 11, 12]] = True
    g = greedy_invite(indptr, indices, p, eligible, 3)
    assert g.invited.tolist() == [11, 12] and g.expected_reach == 13.0
    assert marginal_reach(indptr, indices, [0, 11, 12], p).tolist()[0] == 0.0
    e = exact_invite(indptr, indices, p, eligible, 3)
    assert e.invited.tolist() == [11, 12] and e.expected_reach == 13.0 and e.status == "optimal"


def test_greedy_stops_when_nothing_adds_reach():
    # star: the supervised centre reaches everyone; the spare seats stay empty
    indptr, indices = csr_from_dense(np.array([[0, 1, 1, 1], [1, 0, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0]]))
    g = greedy_invite(indptr, indices, np.ones(4), np.ones(4, bool), 3)
    assert g.invited.tolist() == [0] and g.expected_reach == 4.0 and g.bound == 4.0
    e = exact_invite(indptr, indices, np.ones(4), np.ones(4, bool), 3)
    assert e.invited.tolist() == [0] and e.status == "optimal" and e.expected_share == 1.0


# --------------------------------------------------------------------------- 6. degenerate, limits, errors

@pytest.mark.parametrize("method", ["exact", "greedy"])
def test_degenerate_groups(method):
    # empty group
    chosen, _ = choose_attendees(np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0),
                                 np.zeros(0, bool), 3, method=method)
    assert chosen.invited.tolist() == [] and chosen.expected_reach == 0.0 and chosen.n_members == 0
    assert chosen.expected_share == 0.0
    indptr, indices = csr_from_dense(np.array([[0, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0]]))
    p = np.array([SIXTH, SIXTH, 1.0, SIXTH])
    # no eligible members
    chosen, _ = choose_attendees(indptr, indices, p, np.zeros(4, bool), 2, method=method)
    assert chosen.invited.tolist() == [] and chosen.expected_reach == 0.0 and chosen.bound == 0.0
    # zero seats
    chosen, _ = choose_attendees(indptr, indices, p, np.ones(4, bool), 0, method=method)
    assert chosen.invited.tolist() == [] and chosen.expected_reach == 0.0
    # capacity >= n: everyone useful is invited; isolated member 3 is reached only by invitation
    chosen, greedy = choose_attendees(indptr, indices, p, np.ones(4, bool), 10, method=method)
    assert chosen.expected_reach == 4.0 and 3 in chosen.invited.tolist()
    assert chosen.status == ("optimal" if method == "exact" else "greedy")
    # an ineligible isolated member can never be reached
    el = np.array([True, True, True, False])
    chosen, _ = choose_attendees(indptr, indices, p, el, 10, method=method)
    assert chosen.per_member[3] == 0.0 and chosen.expected_reach == 3.0
    # ineligible members' probabilities are not read
    p_nan = p.copy()
    p_nan[3] = np.nan
    chosen, _ = choose_attendees(indptr, indices, p_nan, el, 10, method=method)
    assert chosen.expected_reach == 3.0


def test_node_limit_keeps_the_better_of_incumbent_and_greedy():
    indptr, indices = random_sparse(60, 200, seed=3)
    p, el = np.full(60, SIXTH), np.ones(60, bool)
    limited, greedy = choose_attendees(indptr, indices, p, el, 8, node_limit=1)
    assert limited.status == "time_limit" and limited.note
    assert limited.expected_reach >= greedy.expected_reach
    full = exact_invite(indptr, indices, p, el, 8)
    assert full.status == "optimal"
    assert limited.expected_reach <= full.expected_reach + 1e-9 <= limited.bound + 1e-6


def test_many_distinct_probabilities_are_refused_for_the_exact_method():
    # a centre with 40 leaves of 40 distinct probabilities and 10 seats: too many achievable values
    n = 41
    a = np.zeros((n, n), dtype=bool)
    a[0, 1:] = a[1:, 0] = True
    indptr, indices = csr_from_dense(a)
    p = np.concatenate([[SIXTH], np.linspace(0.05, 0.6, 40)])
    with pytest.raises(UsageError, match="greedy"):
        choose_attendees(indptr, indices, p, np.ones(n, bool), 10)
    greedy, _ = choose_attendees(indptr, indices, p, np.ones(n, bool), 10, method="greedy")
    assert len(greedy.invited) == 10


@pytest.mark.parametrize("kwargs, message", [
    (dict(indptr=[0, 1, 1], indices=[1]), "not symmetric"),
    (dict(indptr=[0, 1, 2], indices=[0, 0]), "self loop"),
    (dict(indptr=[0, 2, 4], indices=[1, 1, 0, 0]), "twice"),
    (dict(indptr=[0, 1, 2], indices=[1, 5]), "local member indices"),
    (dict(indptr=[1, 2, 2], indices=[1, 0]), "start at 0"),
    (dict(p=[0.5, 1.5]), "between 0 and 1"),
    (dict(p=[0.5]), "one entry per member"),
    (dict(eligible=[1, 1]), "boolean"),
    (dict(capacity=-1), "capacity"),
    (dict(capacity=2.5), "capacity"),
    (dict(method="random"), "exact' or 'greedy"),
    (dict(time_limit=0), "time limit"),
    (dict(time_limit=float("nan")), "time limit"),
    (dict(node_limit=0), "node limit"),
])
def test_bad_arguments_raise_usage_errors(kwargs, message):
    args = dict(indptr=[0, 1, 2], indices=[1, 0], p=[0.5, 0.5], eligible=np.ones(2, bool), capacity=1)
    args.update(kwargs)
    if isinstance(args["eligible"], list):
        args["eligible"] = np.array(args["eligible"])
    with pytest.raises(UsageError, match=message):
        choose_attendees(**args)


# --------------------------------------------------------------------------- helpers for callers

def test_induced_csr_matches_dense_slicing():
    indptr, indices = random_sparse(50, 120, seed=1)
    dense = sparse.csr_array((np.ones(len(indices)), indices, indptr), shape=(50, 50)).toarray() > 0
    members = np.array([40, 3, 17, 8, 22, 5, 31])
    ip, ix = induced_csr(indptr, indices, members)
    sub = np.zeros((7, 7), dtype=bool)
    for j in range(7):
        sub[j, ix[ip[j]:ip[j + 1]]] = True
        assert np.all(np.diff(ix[ip[j]:ip[j + 1]]) > 0)
    assert np.array_equal(sub, dense[np.ix_(members, members)])
    with pytest.raises(UsageError, match="distinct"):
        induced_csr(indptr, indices, [1, 1])


def test_marginal_reach_is_the_loss_without_each_invitee():
    indptr, indices = random_sparse(30, 50, seed=5)
    a = sparse.csr_array((np.ones(len(indices)), indices, indptr), shape=(30, 30)).toarray()
    p = np.random.default_rng(5).choice([1.0, SIXTH], size=30)
    chosen, _ = choose_attendees(indptr, indices, p, np.ones(30, bool), 5)
    marg = marginal_reach(indptr, indices, chosen.invited, p)
    x = np.zeros(30, dtype=bool)
    x[chosen.invited] = True
    full = all_reaches(a, p, x[None, :])[0]
    for k, i in enumerate(chosen.invited):
        y = x.copy()
        y[i] = False
        assert marg[k] == pytest.approx(full - all_reaches(a, p, y[None, :])[0], abs=1e-12)
    assert np.all(marg > 0)          # an optimal set has no passenger


def test_show_up_probabilities():
    p = show_up_probabilities(["probation", "PAROLE ", "pretrial", "none", None, float("nan")],
                              default=0.2, supervised=0.9)
    assert p.tolist() == [0.9, 0.9, 0.9, 0.2, 0.2, 0.2]
    p = show_up_probabilities(["parole", "parole", "parole"], supervision_end=["2025-01-01", "", "2025-01-02"],
                              as_of="2025-01-02")
    assert p.tolist() == [SIXTH, 1.0, 1.0]


def test_choice_is_a_plain_record():
    c = greedy_invite([0, 1, 2], [1, 0], np.array([SIXTH, SIXTH]), np.ones(2, bool), 1)
    assert isinstance(c, Choice)
    assert c.invited.tolist() == [0]
    assert c.expected_reach == pytest.approx(1 + SIXTH)
    assert c.expected_share == pytest.approx((1 + SIXTH) / 2)
    assert c.seconds >= 0
