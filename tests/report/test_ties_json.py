"""The report embeds its network ties as JSON built in Arrow (TiesJSON): it must be the very text that
``json.dumps`` writes for the tuples (and script_json the same page bytes), whatever the IDs hold."""
from __future__ import annotations

import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fdnet.report.html import script_json
from fdnet.report.networks import TiesJSON, _ints_or_none

numbers = st.integers(min_value=0, max_value=2 ** 40)
maybe = st.one_of(st.none(), st.integers(min_value=-40_000, max_value=40_000))
row = st.tuples(numbers, numbers, st.integers(0, 1), numbers, maybe, maybe,
                st.text(st.characters(codec="utf-8"), max_size=30))


def _float(xs):
    return np.array([np.nan if x is None else float(x) for x in xs], dtype=float)


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(row, max_size=25), st.sampled_from([1, 3, 1 << 16]))
def test_ties_json_is_json_dumps_of_the_tuples(rows, piece):
    cols = list(zip(*rows)) if rows else [()] * 7
    nums = [np.array(cols[k], dtype=np.int64) for k in range(4)] + [_float(cols[4]), _float(cols[5])]
    kept, TiesJSON.PIECE = TiesJSON.PIECE, piece     # any piece size gives the same text
    try:
        t = TiesJSON.build(nums, list(cols[6]))
    finally:
        TiesJSON.PIECE = kept
    tuples = list(zip(*(c.tolist() for c in nums[:4]), _ints_or_none(nums[4]), _ints_or_none(nums[5]), cols[6]))
    assert t.text == json.dumps(tuples, ensure_ascii=False, separators=(",", ":"))
    assert t.n == len(rows)
    # inside a page: the same bytes as the tuples, with every <, > and & escaped, next to other values
    page = {"x": ["</script>", 1], "edges": t, "also": {"edges": t}}
    assert script_json(page) == script_json({"x": ["</script>", 1], "edges": tuples, "also": {"edges": tuples}})
    assert "</" not in str(script_json(page))


def test_a_string_that_looks_like_a_placeholder_stays_a_string():
    t = TiesJSON.build([np.array([0])] * 4 + [np.array([1.0]), np.array([2.0])], ["fdnet-raw-json-0"])
    out = str(script_json({"a": "fdnet-raw-json-0", "edges": t}))
    assert json.loads(out) == {"a": "fdnet-raw-json-0", "edges": [[0, 0, 0, 0, 1, 2, "fdnet-raw-json-0"]]}


def test_edge_view_from_a_network_has_the_adjacency_of_its_ties():
    # the views' matrices share the network's CSR: the same 0/1 adjacency as rebuilt from the tie ends
    import fdnet
    from fdnet.report.networks import EdgeView
    from fdnet.synth import generate_city, write_city
    import pathlib
    import tempfile

    d = pathlib.Path(tempfile.mkdtemp())
    write_city(generate_city(3000, seed=4), d / "c")
    r = fdnet.run(d / "c")
    ev = EdgeView.from_network(r.network)
    for layer in (0, 1):
        shared, rebuilt = ev.matrix(layer), ev._matrix(layer)
        assert shared.nnz > 0 and (shared != rebuilt).nnz == 0
        assert np.array_equal(shared.indices, r.network.layers[("co_offending", "victimization")[layer]].indices)
