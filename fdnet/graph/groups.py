"""Groups: the police group audit merged with communities detected in the network.

Detection runs Leiden (igraph's implementation, modularity with a resolution,
weighted by shared incidents, fixed seed) on the co-offending layer. The
audit's labels are always kept; detection proposes a group for people the
audit missed, and where the two disagree both rows are kept and the
disagreement is counted.

A detected community takes the name of the audit group holding the
majority of its audited members (so "audit says A, network says A" reads
as ``both``); otherwise it is named ``detected-NNNN``, numbered by size
(largest first) then by smallest member ID.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .layers import Layer


def _active_graph(n: int, layer: Layer):
    """igraph graph of the people with at least one tie: (graph, their person indices, tie weights).

    People without ties take no part (4x faster on a 1M-person city where two
    thirds have no co-offending tie).
    """
    import igraph as ig

    active = np.zeros(n, bool)
    active[layer.src] = True
    active[layer.dst] = True
    nodes_a = np.flatnonzero(active)
    remap = np.full(n, -1, dtype=np.int64)
    remap[nodes_a] = np.arange(len(nodes_a))
    g = ig.Graph(n=len(nodes_a), edges=np.column_stack([remap[layer.src], remap[layer.dst]]).tolist(),
                 directed=False)
    return g, nodes_a, layer.n_incidents.astype(float)


def _leiden(g, weights: np.ndarray, resolution: float, seed: int, node_weights=None) -> np.ndarray:
    """One seeded Leiden run (modularity objective, RB resolution, two iterations): membership per node.

    ``node_weights`` (default: each node's strength, igraph's choice for
    modularity) is given for an aggregated graph, whose nodes stand for
    communities: their strength there must be the summed strength of their
    members, self-loops counted twice.
    """
    import random

    import igraph as ig

    ig.set_random_number_generator(random.Random(seed))
    try:
        part = g.community_leiden(objective_function="modularity", weights=weights,
                                  resolution=float(resolution), n_iterations=2,
                                  node_weights=None if node_weights is None else node_weights.tolist())
    finally:
        ig.set_random_number_generator(random)
    return np.asarray(part.membership, dtype=np.int64)


def _relabel(n: int, nodes_a: np.ndarray, membership: np.ndarray) -> np.ndarray:
    """Labels per person: 0.. in order of each community's smallest node, -1 without ties."""
    labels = np.full(n, -1, dtype=np.int64)
    if len(nodes_a) == 0:
        return labels
    uniq, first_idx = np.unique(membership, return_index=True)
    order = np.argsort(nodes_a[first_idx], kind="stable")
    remap = np.full(int(membership.max()) + 1, -1, dtype=np.int64)
    remap[uniq[order]] = np.arange(len(uniq))
    labels[nodes_a] = remap[membership]
    return labels


def leiden_communities(n: int, layer: Layer, *, resolution: float = 1.0, seed: int = 42) -> np.ndarray:
    """Community label per node (-1 for isolated nodes), deterministic for a seed.

    igraph's C implementation of Leiden (Traag, Waltman and van Eck 2019)
    with the modularity objective and a resolution parameter (the RB
    configuration model of leidenalg), edges weighted by shared incidents,
    two iterations. igraph draws from a Python ``random.Random`` seeded
    here, so runs are reproducible; it was 25x faster than leidenalg's
    optimiser on a 200k-person city. For a resolution chosen from the data
    see :func:`choose_resolution`.

    >>> import numpy as np
    >>> from fdnet.graph.layers import Layer
    >>> src = np.array([0, 0, 1, 3, 3, 4], np.int32); dst = np.array([1, 2, 2, 4, 5, 5], np.int32)
    >>> L = Layer("co_offending", src, dst, np.ones(6, np.int32), None, None, None, None, None)
    >>> leiden_communities(7, L).tolist()
    [0, 0, 0, 1, 1, 1, -1]
    """
    if layer.n_edges == 0:
        return np.full(n, -1, dtype=np.int64)
    g, nodes_a, w = _active_graph(n, layer)
    return _relabel(n, nodes_a, _leiden(g, w, resolution, seed))


# --- the resolution chosen from the data (groups.resolution: auto) -------------

#: resolutions tried by ``auto``: 2^(k/2) from 0.5 to 64 (a factor sqrt(2) apart)
RESOLUTION_GRID = tuple(float(2.0 ** (k / 2)) for k in range(-2, 13))
#: Leiden seeds per resolution (the policy's seed and the next ones)
AUTO_SEEDS = 3
#: resolutions whose mean modularity is within this of the best are candidates
MODULARITY_TOLERANCE = 0.01
#: with an audit, resolutions whose held-out accuracy is within this of the best are candidates
ACCURACY_TOLERANCE = 0.005


def adjusted_rand(a: np.ndarray, b: np.ndarray) -> float:
    """Adjusted Rand index of two labelings of the same items (Hubert and Arabie 1985).

    >>> adjusted_rand(np.array([0, 0, 1, 1]), np.array([5, 5, 7, 7]))
    1.0
    >>> round(adjusted_rand(np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])), 3)
    -0.5
    """
    n = len(a)
    if n < 2:
        return 1.0
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    _, nij = np.unique(ai.astype(np.int64) * (bi.max() + 1) + bi, return_counts=True)
    comb = lambda x: (x * (x - 1) / 2.0).sum()  # noqa: E731
    s_ij, s_a, s_b = comb(nij), comb(np.bincount(ai)), comb(np.bincount(bi))
    expected = s_a * s_b / (n * (n - 1) / 2.0)
    top = (s_a + s_b) / 2.0
    return 1.0 if top == expected else float((s_ij - expected) / (top - expected))


def _holdout_accuracy(memb: np.ndarray, audit: np.ndarray, min_size: int, seed: int) -> float:
    """Share of held-out audited people whose detected community is named after their own audit label.

    Audited people (``audit != ""``) are split in two folds at random (seeded);
    each fold's communities are named by the other fold's labels exactly as
    :func:`merge_groups` names them (a strict majority of the community's
    labelled members), and a held-out person counts as recovered when the name
    of their community (kept only with ``min_size`` members) is their label.
    """
    lab = np.flatnonzero(audit != "")
    if len(lab) < 2:
        return float("nan")
    fold = np.empty(len(lab), np.int64)
    fold[np.random.default_rng(seed).permutation(len(lab))] = np.arange(len(lab)) % 2
    size = np.bincount(memb)
    ok = size[memb[lab]] >= min_size
    hits = 0
    for f in (0, 1):   # two folds, vectorised within each
        train = pd.DataFrame({"c": memb[lab][(fold != f) & ok], "g": audit[lab][(fold != f) & ok]})
        cnt = train.groupby(["c", "g"]).size().rename("k").reset_index()
        tot = cnt.groupby("c")["k"].transform("sum")
        top = cnt.sort_values(["c", "k", "g"], ascending=[True, False, True], kind="stable").drop_duplicates("c")
        named = top[2 * top["k"] > tot.loc[top.index]].set_index("c")["g"]
        test = (fold == f) & ok
        pred = pd.Series(memb[lab][test]).map(named).astype(object).fillna("").to_numpy(dtype=object)
        hits += int((pred == audit[lab][test]).sum())
    return hits / len(lab)


def _aggregate(g, weights: np.ndarray, membership: np.ndarray, ends: np.ndarray | None = None):
    """The graph of ``membership``'s communities: one node per community, tie weights summed.

    Ties inside a community become a self-loop of their summed weight, so
    the total tie weight is the original graph's and, counting a self-loop
    twice, so is every community's strength (the node weights Leiden is
    given on this graph): the modularity, at any resolution, of a partition
    of the communities is the modularity of the partition of people it
    induces. ``ends``: ``g``'s edge list as an (edges, 2) array, when the
    caller has it. Returns ``(graph, weights, edge endpoints u, v)``.
    """
    import igraph as ig

    ends = np.asarray(g.get_edgelist(), dtype=np.int64).reshape(-1, 2) if ends is None else ends
    cu, cv = membership[ends[:, 0]], membership[ends[:, 1]]
    lo, hi = np.minimum(cu, cv), np.maximum(cu, cv)
    k = int(membership.max()) + 1
    key, inv = np.unique(lo * k + hi, return_inverse=True)
    w = np.bincount(inv.ravel(), weights=weights, minlength=len(key))
    u, v = key // k, key % k
    return ig.Graph(n=k, edges=np.column_stack([u, v]).tolist(), directed=False), w, u, v


def _modularity(u: np.ndarray, v: np.ndarray, w: np.ndarray, memb: np.ndarray) -> float:
    """Newman's modularity (resolution 1) of ``memb`` on an aggregated graph (self-loops allowed).

    ``Q = sum over communities c of in_c / m - (tot_c / 2m)^2``, ``in_c`` the
    weight of ties inside ``c`` (self-loops included), ``tot_c`` its summed
    strength and ``m`` the total tie weight.
    """
    m = w.sum()
    if m <= 0:
        return float("nan")
    cu, cv = memb[u], memb[v]
    k = int(memb.max()) + 1
    inside = np.bincount(cu[cu == cv], weights=w[cu == cv], minlength=k)
    tot = np.bincount(cu, weights=w, minlength=k) + np.bincount(cv, weights=w, minlength=k)
    return float(inside.sum() / m - ((tot / (2 * m)) ** 2).sum())


def _adjusted_rand_weighted(a: np.ndarray, b: np.ndarray, size: np.ndarray) -> float:
    """:func:`adjusted_rand` of two labelings of people given on blocks of ``size`` people each.

    Both labelings are constant on every block (they label the blocks), so
    the contingency table of people is the blocks' sizes summed per pair of
    labels: exactly ``adjusted_rand`` of the labelings expanded to people.

    >>> a, b = np.array([0, 0, 1]), np.array([0, 1, 1])
    >>> size = np.array([2, 1, 3])
    >>> adjusted_rand_weighted_ = _adjusted_rand_weighted(a, b, size)
    >>> bool(np.isclose(adjusted_rand_weighted_, adjusted_rand(np.repeat(a, size), np.repeat(b, size))))
    True
    """
    n = float(size.sum())
    if n < 2:
        return 1.0
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    _, pair = np.unique(ai.astype(np.int64) * (bi.max() + 1) + bi, return_inverse=True)
    comb = lambda x: (x * (x - 1) / 2.0).sum()  # noqa: E731
    s_ij = comb(np.bincount(pair.ravel(), weights=size))
    s_a, s_b = comb(np.bincount(ai, weights=size)), comb(np.bincount(bi, weights=size))
    expected = s_a * s_b / (n * (n - 1) / 2.0)
    top = (s_a + s_b) / 2.0
    return 1.0 if top == expected else float((s_ij - expected) / (top - expected))


class _Holdout:
    """:func:`_holdout_accuracy` for partitions of blocks (the fine communities), without touching people.

    The audited people's labels and two-fold split (seeded as
    :func:`_holdout_accuracy` seeds it) are counted once per (block, label,
    fold); a partition of the blocks then only regroups those counts.
    """

    def __init__(self, block: np.ndarray, audit: np.ndarray, seed: int):
        lab = np.flatnonzero(audit != "")
        self.n = len(lab)
        if self.n < 2:
            return
        fold = np.empty(len(lab), np.int64)
        fold[np.random.default_rng(seed).permutation(len(lab))] = np.arange(len(lab)) % 2
        _, code = np.unique(audit[lab].astype(str), return_inverse=True)
        self.n_labels = int(code.max()) + 1
        key = (block[lab].astype(np.int64) * self.n_labels + code) * 2 + fold
        key, cnt = np.unique(key, return_counts=True)
        self.block, self.label, self.fold = key // 2 // self.n_labels, key // 2 % self.n_labels, key % 2
        self.count = cnt.astype(np.int64)

    def accuracy(self, memb: np.ndarray, size: np.ndarray, min_size: int) -> float:
        """Held-out accuracy of the partition ``memb`` (one community per block; ``size``: people per block)."""
        if self.n < 2:
            return float("nan")
        csize = np.bincount(memb, weights=size)
        c = memb[self.block]
        ok = csize[c] >= min_size
        L = self.n_labels
        hits = 0
        for f in (0, 1):   # the two folds; everything within a fold is vectorised
            tr = ok & (self.fold != f)
            key, inv = np.unique(c[tr] * L + self.label[tr], return_inverse=True)
            k = np.bincount(inv.ravel(), weights=self.count[tr]).astype(np.int64)
            kc, kg = key // L, key % L
            tot = np.bincount(kc, weights=k, minlength=len(csize))
            # the most frequent label of each community (ties: the smallest label)
            o = np.lexsort((kg, -k, kc))
            first = o[np.r_[True, kc[o][1:] != kc[o][:-1]]] if len(o) else o
            named = np.full(len(csize), -1, dtype=np.int64)
            strict = 2 * k[first] > tot[kc[first]]
            named[kc[first][strict]] = kg[first][strict]
            te = ok & (self.fold == f)
            hits += int(self.count[te][named[c[te]] == self.label[te]].sum())
        return hits / self.n


class _LinkedBlocks:
    """Leiden on the fine communities that have a tie to another one; the rest stay alone.

    A fine community with no tie outside itself (most are whole small
    components) is a community of its own in every partition that
    maximises modularity at any resolution: merging it gains no tie and
    pays the null model's penalty. Leiden runs on the linked ones only,
    with the resolution scaled by their share of the total strength, so
    that igraph's normalisation (resolution / total node weight) stays
    that of the whole graph and the objective on them is unchanged.
    """

    def __init__(self, u: np.ndarray, v: np.ndarray, w: np.ndarray, strength: np.ndarray):
        import igraph as ig

        k = len(strength)
        linked = np.zeros(k, bool)
        ext = u != v
        linked[u[ext]] = True
        linked[v[ext]] = True
        self.k, self.linked = k, np.flatnonzero(linked)
        remap = np.full(k, -1, dtype=np.int64)
        remap[self.linked] = np.arange(len(self.linked))
        inside = linked[u]            # a tie touches a linked block only if both ends are linked (or a self-loop)
        self.g = ig.Graph(n=len(self.linked), edges=np.column_stack([remap[u[inside]], remap[v[inside]]]).tolist(),
                          directed=False)
        self.w = w[inside]
        self.strength = strength[self.linked]
        total = strength.sum()
        self.scale = float(self.strength.sum() / total) if total > 0 else 1.0
        # the unlinked blocks' labels: after the linked ones', in block order
        self.alone = np.flatnonzero(~linked)

    def leiden(self, resolution: float, seed: int) -> np.ndarray:
        """Community of every block at ``resolution`` (the whole graph's), seeded."""
        out = np.empty(self.k, dtype=np.int64)
        m = (_leiden(self.g, self.w, resolution * self.scale, seed, node_weights=self.strength)
             if len(self.linked) else np.zeros(0, np.int64))
        out[self.linked] = m
        base = int(m.max()) + 1 if len(m) else 0
        out[self.alone] = base + np.arange(len(self.alone))
        return out


@dataclass
class ResolutionChoice:
    """The outcome of ``groups.resolution: auto``: the labels and how the resolution was chosen."""

    labels: np.ndarray           # community per person (-1 without ties), as leiden_communities
    resolution: float
    criterion: str               # "audit_holdout" or "modularity_stability"
    scan: pd.DataFrame           # one row per resolution tried

    def summary(self) -> dict:
        """For the manifest: the chosen resolution, the criterion and the scan (rounded)."""
        return {"resolution": round(self.resolution, 6), "criterion": self.criterion,
                "scan": [{k: (None if isinstance(v, float) and not np.isfinite(v) else
                              (round(float(v), 6) if isinstance(v, float) else int(v)))
                          for k, v in r.items()} for r in self.scan.to_dict("records")]}


def choose_resolution(n: int, layer: Layer, *, audit_labels: np.ndarray | None = None, seed: int = 42,
                      min_size: int = 3, grid: tuple = RESOLUTION_GRID, n_seeds: int = AUTO_SEEDS,
                      min_audited: int = 20) -> ResolutionChoice:
    """Choose the Leiden resolution from the network itself (``groups.resolution: auto``).

    One Leiden run on the people, at the finest resolution of ``grid`` (its
    largest) with ``seed``, cuts the network into small tight communities;
    every resolution of ``grid`` is then searched with ``n_seeds`` seeds
    (``seed``, ``seed + 1``, ...) on the graph of those communities (one node
    per community, ties summed, ties inside as self-loops), where a coarser
    partition is a union of fine communities. That is Leiden's own
    aggregation step, done once for the whole scan: the aggregated graph has
    one node per fine community (a fifteenth of the people with ties on a
    200,000-person city), so the scan costs about one Leiden run on the
    people instead of ``len(grid) * n_seeds`` of them.

    Each partition is scored by its modularity at resolution 1 (Newman's Q:
    the resolution's own objective is not comparable across resolutions), by
    its stability (mean adjusted Rand index between the seeds' partitions)
    and, when at least ``min_audited`` people with ties carry an audit label
    (``audit_labels``: one label per person, ``""`` for none), by the
    held-out audit accuracy of :func:`_holdout_accuracy`. All three are
    computed on the fine communities (their sizes and audit counts), exactly
    as on the people they stand for.

    - With an audit: among the resolutions whose mean held-out accuracy is
      within ``ACCURACY_TOLERANCE`` of the best, the one with the highest
      modularity (ties: the lower resolution). This asks the
      question detection answers in a run: does the network put an
      unaudited person in the group the audit would have named?
    - Without: among the resolutions whose mean modularity is within
      ``MODULARITY_TOLERANCE`` of the best, the most stable (ties: the higher
      modularity, then the lower resolution). Modularity picks the scale; the
      stability across seeds prefers a partition the data determine over one
      the random seed does.

    The labels returned are the policy seed's partition at the chosen
    resolution. Deterministic for a seed.

    >>> import networkx as nx
    >>> from fdnet.graph.layers import Layer
    >>> G = nx.relaxed_caveman_graph(6, 8, 0.1, seed=1)
    >>> e = np.array(sorted((min(u, v), max(u, v)) for u, v in G.edges()), np.int32)
    >>> L = Layer("co_offending", e[:, 0], e[:, 1], np.ones(len(e), np.int32), None, None, None, None, None)
    >>> ch = choose_resolution(48, L)
    >>> ch.criterion, int(ch.labels.max() + 1)
    ('modularity_stability', 6)
    """
    scan_cols = ["resolution", "groups", "ungrouped_share", "modularity", "stability", "audit_accuracy"]
    if layer.n_edges == 0:
        return ResolutionChoice(np.full(n, -1, dtype=np.int64), float(grid[0]), "no_ties",
                                pd.DataFrame(columns=scan_cols))
    g, nodes_a, w = _active_graph(n, layer)
    aud = None
    if audit_labels is not None:
        a = np.asarray(audit_labels, dtype=object)[nodes_a]
        if int((a != "").sum()) >= min_audited:
            aud = a
    fine = _leiden(g, w, max(grid), seed)
    size = np.bincount(fine).astype(float)
    ends = np.column_stack([np.searchsorted(nodes_a, layer.src), np.searchsorted(nodes_a, layer.dst)])
    ga, wa, u, v = _aggregate(g, w, fine, ends)
    strength = np.bincount(u, weights=wa, minlength=len(size)) + np.bincount(v, weights=wa, minlength=len(size))
    search = _LinkedBlocks(u, v, wa, strength)
    holdout = [_Holdout(fine, aud, seed + k) for k in range(n_seeds)] if aud is not None else None
    rows, parts = [], []
    for res in grid:
        memb = [search.leiden(res, seed + k) for k in range(n_seeds)]
        parts.append(memb[0])
        q = [_modularity(u, v, wa, m) for m in memb]
        stab = np.mean([_adjusted_rand_weighted(memb[i], memb[j], size)
                        for i in range(n_seeds) for j in range(i + 1, n_seeds)]) if n_seeds > 1 else 1.0
        csize = np.bincount(memb[0], weights=size)
        rows.append({"resolution": float(res), "groups": int((csize >= min_size).sum()),
                     "ungrouped_share": float(size[csize[memb[0]] < min_size].sum() / size.sum()),
                     "modularity": float(np.mean(q)), "stability": float(stab),
                     "audit_accuracy": (float(np.mean([h.accuracy(m, size, min_size)
                                                       for h, m in zip(holdout, memb)]))
                                        if holdout is not None else float("nan"))})
    scan = pd.DataFrame(rows, columns=scan_cols)
    # every criterion below is rounded so that last-bit float noise cannot decide
    q = scan["modularity"].round(9)
    if aud is not None:
        criterion = "audit_holdout"
        acc = scan["audit_accuracy"].round(9)
        cand = scan[acc >= acc.max() - ACCURACY_TOLERANCE]
        best = cand.assign(_q=-q[cand.index]).sort_values(["_q", "resolution"], kind="stable").index[0]
    else:
        criterion = "modularity_stability"
        cand = scan[q >= q.max() - MODULARITY_TOLERANCE]
        key = cand.assign(_s=-cand["stability"].round(9), _q=-q[cand.index])
        best = key.sort_values(["_s", "_q", "resolution"], kind="stable").index[0]
    return ResolutionChoice(_relabel(n, nodes_a, parts[best][fine]), float(scan.loc[best, "resolution"]),
                            criterion, scan)


@dataclass
class GroupResult:
    table: pd.DataFrame          # groups.csv: person_id, group, source, confidence, network_support
    primary: pd.Series           # person_id -> primary group ("" if none)
    disagreements: pd.DataFrame  # person_id, audit_group, detected_group
    n_detected: int
    renamed_from_previous: int = 0


def _name_communities(det: pd.DataFrame, previous: pd.DataFrame | None, match: float) -> dict:
    """Name each detected community: majority audit label, else a kept or new ``detected-NNNN``.

    Vectorised with group-bys over (community, label) pairs; only the greedy
    one-to-one matching with the previous run's groups walks its (few) candidates.

    >>> det = pd.DataFrame({"person_id": list("ABCDEF"), "label": [0, 0, 0, 1, 1, 1],
    ...                     "audit": ["x", "x", None, "y", "z", None]})
    >>> _name_communities(det, None, 0.5)
    {0: 'x', 1: 'detected-0001'}
    """
    comm = det.groupby("label")
    stats = pd.DataFrame({"size": comm.size(), "min_id": comm["person_id"].min()})
    stats = stats.sort_values(["size", "min_id"], ascending=[False, True], kind="stable")
    aud = det.dropna(subset=["audit"])
    cnt = aud.groupby(["label", "audit"]).size().rename("k").reset_index()
    tot = cnt.groupby("label")["k"].sum()
    top = (cnt.sort_values(["label", "k", "audit"], ascending=[True, False, True], kind="stable")
           .drop_duplicates("label").set_index("label"))
    majority = top.loc[2 * top["k"] > tot.reindex(top.index), "audit"]
    names: dict = {k: v for k, v in zip(majority.index.tolist(), majority.tolist())}
    unnamed = stats.index[~stats.index.isin(majority.index)]
    next_no = 1
    if previous is not None and len(previous) and len(unnamed):
        prev = previous.loc[previous["group"].str.match(r"^detected-\d+$"), ["person_id", "group"]]
        prev = prev.drop_duplicates()
        if len(prev):
            next_no = int(prev["group"].str.slice(9).astype(int).max()) + 1
            m = det.loc[det["label"].isin(unnamed), ["person_id", "label"]].merge(prev, on="person_id")
            inter = m.groupby(["label", "group"]).size().rename("inter").reset_index()
            union = (stats["size"].reindex(inter["label"]).to_numpy()
                     + prev.groupby("group").size().reindex(inter["group"]).to_numpy() - inter["inter"].to_numpy())
            inter["jac"] = inter["inter"] / union
            cand = inter[inter["jac"] >= match].assign(_lab=lambda c: c["label"].astype(str))
            cand = cand.sort_values(["jac", "group", "_lab"], ascending=[False, True, True], kind="stable")
            names.update(_greedy_matching(cand["label"].to_numpy(), cand["group"].to_numpy(dtype=object)))
    rest = unnamed[~unnamed.isin(list(names))].to_numpy()
    if len(rest):
        numbers = np.char.zfill((next_no + np.arange(len(rest))).astype(str), 4)
        names.update(dict(zip(rest.tolist(), np.char.add("detected-", numbers).tolist())))
    return names


def _greedy_matching(left: np.ndarray, right: np.ndarray) -> dict:
    """The greedy one-to-one matching of candidate pairs taken in the order given: ``{left: right}``.

    Walking the pairs in order and keeping each whose two ends are both still
    free is the same as keeping, round after round, every remaining pair that
    comes first among the remaining pairs of its left end and of its right end
    (nothing before it can take either end), then dropping the pairs that
    touch a kept end. Each round is vectorised; every round keeps at least
    the first remaining pair.

    >>> _greedy_matching(np.array([1, 1, 2, 3]), np.array(["a", "b", "a", "b"], dtype=object))
    {1: 'a', 3: 'b'}
    """
    out: dict = {}
    li = pd.factorize(left)[0]
    ri = pd.factorize(right)[0]
    alive = np.arange(len(li))
    while len(alive):
        l, r = li[alive], ri[alive]
        first_l = ~pd.Series(l).duplicated().to_numpy()
        first_r = ~pd.Series(r).duplicated().to_numpy()
        win = first_l & first_r
        out.update(zip(left[alive[win]].tolist(), right[alive[win]].tolist()))
        alive = alive[~np.isin(l, l[win]) & ~np.isin(r, r[win])]
    return out


def _audit_sorted(audit: pd.DataFrame | None) -> pd.DataFrame:
    """The audit rows sorted so that each person's first row is their primary label (latest date, then name)."""
    a = (audit if audit is not None else pd.DataFrame(columns=["person_id", "group", "date"])).copy()
    a["date"] = a["date"].fillna("") if "date" in a else ""
    return a.sort_values(["person_id", "date", "group"], ascending=[True, False, True], kind="stable")


def audit_labels(person_ids: np.ndarray, audit: pd.DataFrame | None) -> np.ndarray:
    """Each network person's primary audit label ("" for none), as :func:`merge_groups` takes it.

    >>> audit_labels(np.array(["A", "B"], dtype=object), pd.DataFrame({"person_id": ["A", "A"],
    ...     "group": ["x", "y"], "date": ["2020-01-01", "2021-01-01"]})).tolist()
    ['y', '']
    """
    prim = _audit_sorted(audit).drop_duplicates("person_id").set_index("person_id")["group"]
    return prim.reindex(person_ids).fillna("").astype(str).to_numpy(dtype=object)


def merge_groups(person_ids: np.ndarray, labels: np.ndarray | None, audit: pd.DataFrame | None,
                 min_size: int = 3, *, layer: Layer | None = None, audit_prior: float = 0.5,
                 previous: pd.DataFrame | None = None, match_previous: float = 0.5) -> GroupResult:
    """Merge detected communities (labels per network person) with the audit table.

    ``confidence`` of a membership row: 1 where audit and network agree
    (``both``); for an audit-only label ``audit_prior + (1 - audit_prior) *
    support``; for a detected-only label ``support``, where ``support`` is
    the share of the person's co-offending tie weight that goes to other
    members of that group (blank when the person has no ties).
    """
    audit = audit if audit is not None else pd.DataFrame(columns=["person_id", "group", "date"])
    det = pd.DataFrame({"person_id": person_ids, "label": labels if labels is not None else -1})
    det = det[det["label"] >= 0]
    sizes = det["label"].value_counts()
    det = det[det["label"].map(sizes) >= min_size]
    a = _audit_sorted(audit)
    audit_primary = a.drop_duplicates("person_id").set_index("person_id")["group"]
    det["audit"] = det["person_id"].map(audit_primary)
    names = _name_communities(det, previous, match_previous)
    kept = pd.Series(list(names.values()), dtype=object)
    renamed = int((kept.str.startswith("detected-") & kept.isin(previous["group"])).sum()) \
        if previous is not None and len(kept) else 0
    det["group"] = det["label"].map(names)
    detected = det.set_index("person_id")["group"]
    # one row per audit label (both when the network agrees), then the detected labels the audit lacks
    same = a["person_id"].map(detected).to_numpy(dtype=object) == a["group"].to_numpy(dtype=object)
    rows_a = pd.DataFrame({"person_id": a["person_id"].to_numpy(dtype=object),
                           "group": a["group"].to_numpy(dtype=object),
                           "source": np.where(same, "both", "audit")})
    dd = pd.DataFrame({"person_id": detected.index.to_numpy(dtype=object),
                       "group": detected.to_numpy(dtype=object)})
    # the detected (person, group) pairs the audit rows lack: one integer key per pair
    from .layers import sorted_codes
    pc_ = sorted_codes(np.concatenate([rows_a["person_id"].to_numpy(dtype=object).astype(str),
                                       dd["person_id"].to_numpy(dtype=object).astype(str)]))[0]
    gc_ = sorted_codes(np.concatenate([rows_a["group"].to_numpy(dtype=object).astype(str),
                                       dd["group"].to_numpy(dtype=object).astype(str)]))[0]
    pair = pc_.astype(np.int64) * (int(gc_.max(initial=0)) + 1) + gc_
    rows_d = dd[~np.isin(pair[len(rows_a):], pair[:len(rows_a)])].assign(source="detected")
    table = pd.concat([rows_a, rows_d], ignore_index=True).drop_duplicates(["person_id", "group"])
    table = table.sort_values(["person_id", "group"], kind="stable").reset_index(drop=True)
    table["network_support"] = _support(table, person_ids, layer)
    sup = table["network_support"].to_numpy(dtype=float)
    conf = np.where(table["source"] == "both", 1.0,
                    np.where(table["source"] == "audit", audit_prior + (1 - audit_prior) * np.nan_to_num(sup),
                             np.nan_to_num(sup)))
    table["confidence"] = np.round(conf, 4)
    table["network_support"] = np.round(sup, 4)
    # primary group: the membership row with the highest confidence (so the
    # network can overrule an audit label it does not support at all); ties
    # prefer both > audit > detected, then the most recent audit label
    rank = table.assign(
        _src=table["source"].map({"both": 0, "audit": 1, "detected": 2}),
        _aud=(table["group"] != table["person_id"].map(audit_primary)).astype(int))
    rank = rank.sort_values(["person_id", "confidence", "_src", "_aud", "group"],
                            ascending=[True, False, True, True, True], kind="stable")
    primary = rank.drop_duplicates("person_id").set_index("person_id")["group"].astype(object)
    import pyarrow as pa
    import pyarrow.compute as pc
    audited = pc.is_in(pa.array(rows_d["person_id"].to_numpy(dtype=object).astype(str), type=pa.string()),
                       value_set=pa.array(audit_primary.index.to_numpy(dtype=object).astype(str), type=pa.string()))
    dis = rows_d[audited.to_numpy(zero_copy_only=False)]
    disagreements = pd.DataFrame({"person_id": dis["person_id"].to_numpy(dtype=object),
                                  "audit_group": dis["person_id"].map(audit_primary).to_numpy(dtype=object),
                                  "detected_group": dis["group"].to_numpy(dtype=object)})
    return GroupResult(table, primary, disagreements, int(len(names)), renamed)


def _support(table: pd.DataFrame, person_ids: np.ndarray, layer: Layer | None) -> np.ndarray:
    """Share of each (person, group) row's tie weight that goes to members of that group.

    On integer codes: every tie (both directions) is paired with the source
    person's membership rows, and a sorted search of (neighbour, group) keys
    among all membership rows says whether the neighbour is in that group.

    >>> from fdnet.graph.layers import Layer
    >>> L = Layer("co_offending", np.array([0, 0], np.int32), np.array([1, 2], np.int32),
    ...           np.array([1, 3], np.int32), None, None, None, None, None)
    >>> t = pd.DataFrame({"person_id": ["A", "B", "C", "C"], "group": ["x", "x", "x", "y"]})
    >>> _support(t, np.array(["A", "B", "C", "D"], dtype=object), L).tolist()
    [1.0, 1.0, 1.0, 0.0]
    """
    out = np.full(len(table), np.nan)
    if layer is None or layer.n_edges == 0 or len(table) == 0:
        return out
    import pyarrow as pa
    import pyarrow.compute as pc

    from .layers import sorted_codes

    n = len(person_ids)
    # hash lookups in Arrow: each row's person index in the network (or none) and its group's code
    p = pc.index_in(pa.array(table["person_id"].to_numpy(dtype=object).astype(str), type=pa.string()),
                    value_set=pa.array(np.asarray(person_ids, dtype=object).astype(str), type=pa.string()))
    p = p.fill_null(-1).to_numpy().astype(np.int64)
    known = p >= 0
    g = sorted_codes(table["group"].to_numpy(dtype=object).astype(str))[0].astype(np.int64)
    G = int(g.max()) + 1
    row = np.flatnonzero(known)
    key = p[row].astype(np.int64) * G + g[row]
    order = np.argsort(key, kind="stable")
    key_sorted = key[order]
    # membership rows grouped by person: for every tie a -> b, each row (a, group) of a
    by_person = np.argsort(p[row], kind="stable")
    rp = p[row][by_person]
    first = np.searchsorted(rp, np.arange(n))
    last = np.searchsorted(rp, np.arange(n), side="right")
    src = np.concatenate([layer.src, layer.dst]).astype(np.int64)
    dst = np.concatenate([layer.dst, layer.src]).astype(np.int64)
    w = np.concatenate([layer.n_incidents, layer.n_incidents]).astype(float)
    tot = np.bincount(src, weights=w, minlength=n)
    k = (last - first)[src]
    tie = np.repeat(np.arange(len(src)), k)
    mem = by_person[np.repeat(first[src], k) + (np.arange(k.sum()) - np.repeat(np.cumsum(k) - k, k))]
    probe = dst[tie] * G + g[row][mem]
    pos = np.minimum(np.searchsorted(key_sorted, probe), len(key_sorted) - 1)
    inside = key_sorted[pos] == probe
    ins = np.bincount(mem[inside], weights=w[tie[inside]], minlength=len(row))
    t = tot[p[row]]
    has = t > 0
    out[row[has]] = ins[has] / t[has]
    return out
