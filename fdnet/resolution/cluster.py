"""Entities from links: which records are merged, and why, with the analysts' decisions applied.

Safety by construction (docs/resolution.md):

- only a link at or above the policy's ``high`` probability, or a must-link decision, joins two records;
  links in the review band (``review`` ≤ p < ``high``) never do, so no enforcement evidence crosses a
  doubtful link;
- an entity is a connected component of those joins;
- a cannot-link decision between two records of one component cuts it: the weakest model link on the path
  between them is removed, again until they are apart (a must-link is never removed; a cannot-link that only
  must-links join is a contradiction in the decisions, refused as bad input).

>>> import pandas as pd
>>> ids = np.array(["A", "B", "C", "D"], dtype=object)
>>> links = pd.DataFrame({"person_a": ["A", "B", "C"], "person_b": ["B", "C", "D"],
...                       "match_probability": [0.999, 0.95, 0.7], "match_weight": [10.0, 4.2, 1.2]})
>>> e = entities(ids, links, high=0.9)
>>> e["entity"].tolist(), e["joined_by"].tolist()
(['A', 'A', 'A', 'D'], ['model', 'model', 'model', ''])
>>> cut = entities(ids, links, high=0.9, cannot=pd.DataFrame({"person_id_a": ["A"], "person_id_b": ["C"]}))
>>> cut["entity"].tolist()
['A', 'A', 'C', 'D']
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ..errors import InputError

_EMPTY = pd.DataFrame({"person_id_a": pd.Series([], dtype=object), "person_id_b": pd.Series([], dtype=object)})


def _pos(ids: np.ndarray, values) -> np.ndarray:
    v = np.asarray(values, dtype=object)
    return np.searchsorted(ids, v).astype(np.int64) if len(v) else np.zeros(0, np.int64)


def entities(ids: np.ndarray, links: pd.DataFrame, *, high: float, must: pd.DataFrame | None = None,
             cannot: pd.DataFrame | None = None, sources: np.ndarray | None = None,
             preferred: list[str] | None = None) -> pd.DataFrame:
    """One row per record of ``ids`` (sorted, unique): person_id, entity, linked_to, match_probability,
    match_weight, joined_by (``model``, ``must_link`` or empty for a record alone), cut (links removed by
    cannot-link decisions, on the record's row). ``links``: person_a, person_b, match_probability,
    match_weight (any band; only ``>= high`` joins). ``must``/``cannot``: person_id_a, person_id_b.
    ``sources`` (per id) and ``preferred``: the entity_id rule preferred_source (else the smallest id)."""
    ids = np.asarray(ids, dtype=object)
    n = len(ids)
    must = _EMPTY if must is None else must
    cannot = _EMPTY if cannot is None else cannot
    strong = links[links["match_probability"].to_numpy() >= high]
    a = np.concatenate([_pos(ids, strong["person_a"]), _pos(ids, must["person_id_a"])])
    b = np.concatenate([_pos(ids, strong["person_b"]), _pos(ids, must["person_id_b"])])
    prob = np.concatenate([strong["match_probability"].to_numpy(dtype=float), np.full(len(must), 1.0)])
    weight = np.concatenate([strong["match_weight"].to_numpy(dtype=float), np.full(len(must), np.inf)])
    is_must = np.concatenate([np.zeros(len(strong), bool), np.ones(len(must), bool)])
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    # a cannot-link decision removes the direct link between the two records first
    ca, cb = _pos(ids, cannot["person_id_a"]), _pos(ids, cannot["person_id_b"])
    c_lo, c_hi = np.minimum(ca, cb), np.maximum(ca, cb)
    key = lo * max(n, 1) + hi
    direct = np.isin(key, c_lo * max(n, 1) + c_hi) & ~is_must
    alive = ~direct
    cut_pairs = [(ids[lo[i]], ids[hi[i]]) for i in np.flatnonzero(direct)]
    if len(c_lo):
        alive, more = _cut(n, lo, hi, weight, is_must, alive, c_lo, c_hi, ids)
        cut_pairs += more
    g = coo_matrix((np.ones(int(alive.sum())), (lo[alive], hi[alive])), shape=(n, n))
    _, comp = connected_components(g, directed=False) if n else (0, np.zeros(0, np.int64))
    comp = np.asarray(comp, dtype=np.int64)
    # the entity's id: its smallest person_id (ids are sorted: the first index of each component), or the
    # smallest among its records from the first preferred source it has
    first = np.full(comp.max() + 1 if n else 0, n, dtype=np.int64)
    np.minimum.at(first, comp, np.arange(n))
    rep = first[comp]
    if preferred and sources is not None:
        rank = np.full(n, len(preferred), dtype=np.int64)
        for k, s in enumerate(preferred):      # (a loop over the few preferred sources, not over records)
            rank = np.where((sources == s) & (rank == len(preferred)), k, rank)
        best = np.full(len(first), len(preferred), dtype=np.int64)
        np.minimum.at(best, comp, rank)
        cand = np.where(rank == best[comp], np.arange(n), n)
        pick = np.full(len(first), n, dtype=np.int64)
        np.minimum.at(pick, comp, cand)
        rep = pick[comp]
    entity = ids[rep] if n else np.zeros(0, dtype=object)
    # the link that joined each record: its strongest live link (must-links first), ties by the other id
    la, lb = lo[alive], hi[alive]
    node = np.concatenate([la, lb])
    other = np.concatenate([lb, la])
    p2 = np.concatenate([prob[alive], prob[alive]])
    w2 = np.concatenate([weight[alive], weight[alive]])
    m2 = np.concatenate([is_must[alive], is_must[alive]])
    o = np.lexsort((other, -p2, ~m2, node))
    node, other, p2, w2, m2 = node[o], other[o], p2[o], w2[o], m2[o]
    firsts = np.ones(len(node), bool)
    firsts[1:] = node[1:] != node[:-1]
    linked = np.full(n, "", dtype=object)
    lp = np.full(n, np.nan)
    lw = np.full(n, np.nan)
    how = np.full(n, "", dtype=object)
    nd = node[firsts]
    linked[nd] = ids[other[firsts]]
    lp[nd] = p2[firsts]
    lw[nd] = np.where(m2[firsts], np.nan, w2[firsts])
    how[nd] = np.where(m2[firsts], "must_link", "model")
    cut_of = np.full(n, "", dtype=object)
    if cut_pairs:
        cp = pd.DataFrame(cut_pairs, columns=["a", "b"])
        both = pd.concat([cp.rename(columns={"a": "x", "b": "y"}), cp.rename(columns={"a": "y", "b": "x"})])
        txt = both.sort_values(["x", "y"]).groupby("x", sort=True)["y"].agg(";".join)
        cut_of[_pos(ids, txt.index)] = txt.to_numpy(dtype=object)
    out = pd.DataFrame({"person_id": ids, "entity": entity, "linked_to": linked, "match_probability": lp,
                        "match_weight": lw, "joined_by": how, "cut": cut_of})
    # the joins that made the entities (for explanations): person_a < person_b, probability, weight, how
    out.attrs["joins"] = pd.DataFrame({"person_a": ids[la] if n else la, "person_b": ids[lb] if n else lb,
                                       "match_probability": prob[alive], "match_weight": weight[alive],
                                       "joined_by": np.where(is_must[alive], "must_link", "model")})
    return out


def _cut(n, lo, hi, weight, is_must, alive, c_lo, c_hi, ids):
    """Remove the weakest model link on the path between each cannot-link pair until it is apart.

    Only components holding a cannot-link pair are looked at (decisions are few); inside one, a path
    is found by breadth-first search on its links."""
    import networkx as nx
    g = coo_matrix((np.ones(int(alive.sum())), (lo[alive], hi[alive])), shape=(n, n))
    _, comp = connected_components(g, directed=False)
    bad = np.flatnonzero(comp[c_lo] == comp[c_hi])
    cut: list[tuple[str, str]] = []
    if not len(bad):
        return alive, cut
    alive = alive.copy()
    touched = np.unique(comp[c_lo[bad]])
    in_comp = np.isin(comp[lo], touched) & alive
    G = nx.Graph()
    for i in np.flatnonzero(in_comp).tolist():
        G.add_edge(int(lo[i]), int(hi[i]), w=float(weight[i]), must=bool(is_must[i]), i=i)
    for k in bad.tolist():
        s, t = int(c_lo[k]), int(c_hi[k])
        while nx.has_path(G, s, t):
            path = nx.shortest_path(G, s, t)
            edges = [(path[j], path[j + 1]) for j in range(len(path) - 1)]
            cands = [e for e in edges if not G.edges[e]["must"]]
            if not cands:
                raise InputError(f"the decisions say {ids[s]!r} and {ids[t]!r} cannot be one person, yet must-link "
                                 "decisions join them (" + " - ".join(str(ids[v]) for v in path) + "); correct one "
                                 "of them", file="resolution_decisions")
            e = min(cands, key=lambda e: (G.edges[e]["w"], str(ids[min(e)]), str(ids[max(e)])))
            alive[G.edges[e]["i"]] = False
            cut.append((ids[min(e)], ids[max(e)]))
            G.remove_edge(*e)
    return alive, cut
