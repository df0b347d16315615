"""The graph stage's one CSR type, and the analytics rebuilt on it (eigenvector on the components
that can hold the top eigenvalue, the contagion's distinct covariate rows, the sex coding)."""
from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from fdnet.graph import centrality as cen
from fdnet.graph.csr import CSR


def _from_nx(G: nx.Graph) -> CSR:
    e = np.array(sorted((min(u, v), max(u, v)) for u, v in G.edges()), np.int32).reshape(-1, 2)
    return CSR.from_edges(G.number_of_nodes(), e[:, 0], e[:, 1])


def test_csr_views_share_arrays_and_match_scipy():
    G = nx.gnp_random_graph(300, 0.02, seed=3)
    g = _from_nx(G).check_format(symmetric=True)
    assert g.n == 300 and g.n_edges == G.number_of_edges()
    assert np.shares_memory(g.scipy.indices, g.indices) and np.shares_memory(g.scipy.data, g.data)
    assert g.scipy is g.scipy and g.pattern is g.pattern          # built once
    A = nx.to_scipy_sparse_array(G, nodelist=range(300), weight=None, format="csr")
    assert (g.pattern != A).nnz == 0
    k, lab = g.components()
    assert k == nx.number_connected_components(G)
    for comp in nx.connected_components(G):
        assert len(set(lab[list(comp)])) == 1
    u = g.unweighted()
    assert u.indptr is g.indptr and (u.data == 1).all() and g.unweighted() is u
    ig_g = g.to_igraph()
    assert ig_g.vcount() == 300 and ig_g.ecount() == g.n_edges
    sub = g.subgraph(np.array([0, 5, 7, 9]))
    assert sub.n == 4
    sub.check_format(symmetric=True)


@pytest.mark.parametrize("bad, message", [
    ((np.array([0, 2, 1]), np.array([1, 0]), None), "never decrease"),
    ((np.array([0, 1, 2]), np.array([0, 0]), None), "self-loops"),
    ((np.array([0, 2, 2, 2]), np.array([2, 1]), None), "ascending"),
    ((np.array([0, 1, 1]), np.array([1]), None), "symmetric"),
    ((np.array([0, 1, 2]), np.array([1, 0]), np.array([1.0, np.nan])), "finite"),
    ((np.array([0, 1, 2]), np.array([1, 0]), np.array([1.0])), "same length"),
])
def test_check_format_rejects_malformed_arrays(bad, message):
    with pytest.raises(ValueError, match=message):
        CSR(*bad).check_format(symmetric=True)


def test_layer_carries_its_csr():
    from fdnet.graph.layers import build_network
    inc = pd.DataFrame({"incident_id": ["I1", "I2"], "day": [19000, 19001], "gun": [False, True]})
    inv = pd.DataFrame({"incident_id": ["I1", "I1", "I2", "I2"], "person_id": ["A", "B", "B", "C"],
                        "role": ["offender", "offender", "offender", "offender"]})
    net = build_network(inc, inv, as_of_day=19001, window_days=30, half_life_days=365)
    co = net.layers["co_offending"]
    g = co.csr
    assert g is co.csr and g.indptr is co.indptr and g.indices is co.indices and g.data is co.data
    g.check_format(symmetric=True)
    assert co.degree().tolist() == g.degree().tolist() == [1, 2, 1]


def test_eigenvector_where_a_small_component_holds_the_top_eigenvalue():
    """A 12-clique (eigenvalue 11) beside a 3,000-person sparse component whose top eigenvalue is
    lower: the dominant eigenvector lives on the clique, as the dense solve says."""
    G = nx.disjoint_union(nx.complete_graph(12), nx.gnm_random_graph(3000, 6000, seed=1))
    g = _from_nx(G)
    ev = cen.eigenvector(g)
    assert np.linalg.norm(ev) == pytest.approx(1.0)
    np.testing.assert_allclose(ev[:12], 1 / np.sqrt(12), atol=1e-10)
    assert np.abs(ev[12:]).max() < 1e-12
    # and the other way round: the large component dominates, the clique gets 0
    H = nx.disjoint_union(nx.complete_graph(4), nx.barabasi_albert_graph(2000, 5, seed=2))
    h = _from_nx(H)
    ev = cen.eigenvector(h)
    vals, vecs = np.linalg.eigh(nx.to_numpy_array(H, nodelist=range(H.number_of_nodes()), weight=None))
    np.testing.assert_allclose(ev, np.abs(vecs[:, -1]), atol=1e-9)
    assert (ev[:4] == 0).all()


def test_distinct_rows_round_trip():
    from fdnet.graph.contagion import _distinct_rows
    rng = np.random.default_rng(0)
    X = np.column_stack([np.ones(5000), rng.integers(0, 2, 5000), rng.integers(0, 2, 5000),
                         rng.choice([0.0, 0.5, 2.0], 5000)])
    Xu, pat = _distinct_rows(X)
    np.testing.assert_array_equal(Xu[pat], X)
    assert len(Xu) == len(np.unique(X, axis=0))
    Xc = rng.random((300, 3))                 # continuous: every row distinct
    Xu, pat = _distinct_rows(Xc)
    np.testing.assert_array_equal(Xu[pat], Xc)


def test_one_reading_of_sex():
    from fdnet.graph.analytics import is_male
    from fdnet.records.schema import MALE_WORDS, normalise_sex
    assert MALE_WORDS == {"m", "male", "man", "1"}
    got = is_male(pd.Series(["M", "m", "Male", " MALE", "1", "F", "female", "2", "0", "", None, np.nan, "U"]))
    assert got.tolist() == [True] * 5 + [False] * 8
    # calibration's baseline reads the same column the same way
    sex = pd.Series(["M", "man", "2", "x", None])
    assert is_male(sex).tolist() == (normalise_sex(sex) == "M").tolist() == [True, True, False, False, False]
