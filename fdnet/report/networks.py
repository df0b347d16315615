"""The data behind report.html's three network views, taken from the run's files.

Each function turns run-folder tables (as read from the CSV files, every
column a string) into one compact, JSON-ready dict that the page's script
hands to vis-network. Nothing here is computed afresh: nodes, ties and the
evidence on each tie (incident IDs, first and last date) are copied from
``edges.csv``, ``scores.csv``, ``conflicts.csv`` and the lists, so the
pictures can never disagree with the audited files.

People and groups are numbered by their position in a sorted list, and ties
are written as ``[a, b, layer, incidents, first, span, incident_ids]``
with ``layer`` 0 for co-offending and 1 for victimization, ``first`` the
first date as days after the dict's ``"base"`` date and ``span`` the days
from first to last date (null when a date is missing): compact, and the same
order for the same input, so the page is byte-identical on a re-run.

The **two-step ego network** of a listed person is everyone within two
co-offending steps of them (the distance that ``exposure_2`` counts), plus
the people tied to them directly by victimization, with every tie among
those people. :func:`ego_data` embeds, once, exactly the ties that some
listed person's ego network needs; the page builds one person's picture on
demand with the same rule (:func:`ego_ball` is the reference).

>>> import pandas as pd
>>> e = pd.DataFrame({"person_a": ["A", "B", "C", "A"], "person_b": ["B", "C", "D", "V"],
...                   "layer": ["co_offending"] * 3 + ["victimization"], "incidents": ["1", "2", "1", "1"],
...                   "first_date": ["2024-01-01"] * 4, "last_date": ["2024-02-01"] * 4,
...                   "incident_ids": ["I1", "I2;I3", "I4", "I5"]})
>>> sorted(ego_ball(Adjacency(e), "A"))
['A', 'B', 'C', 'V']
>>> d = ego_data(e, ["A"], scores=None, explanations={})
>>> d["people"], [list(t[:3]) for t in d["edges"]]
(['A', 'B', 'C', 'V'], [[0, 1, 0], [0, 3, 1], [1, 2, 0]])
"""
from __future__ import annotations

import json
import math
from collections import defaultdict
from datetime import date
from functools import lru_cache

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..runfolder import LIST_NAMES
LIST_BITS = {"call_in": 1, "custom_notifications": 2, "service_referrals": 4}
LAYER_CODE = {"co_offending": 0, "victimization": 1}


def _plain(v):
    """A value from explanations.jsonl that JSON can carry: finite numbers stay, the rest becomes text.

    >>> _plain(3), _plain(float("nan")), _plain([1, 2]), _plain(None)
    (3, 'nan', '[1, 2]', '')
    """
    if isinstance(v, bool) or v is None:
        return "" if v is None else str(v).lower()
    if isinstance(v, (int, float)):
        return v if math.isfinite(v) else str(v)
    return str(v)


def _int(s: str, default: int = 0) -> int:
    try:
        return int(float(s))
    except (TypeError, ValueError, OverflowError):
        return default


def _num(s: str) -> float | int:
    """A CSV number as int when whole (so JSON shows ``12``, not ``12.0``); 0 when not a finite number.

    >>> _num("12.0"), _num("0.123456"), _num("nan"), _num("")
    (12, 0.1235, 0, 0)
    """
    try:
        v = float(s)
    except (TypeError, ValueError):
        return 0
    if not math.isfinite(v):
        return 0
    return int(v) if v == int(v) else round(v, 4)


class Adjacency:
    """Neighbours of each person in each layer of ``edges.csv``, plus the row of each tie."""

    def __init__(self, edges: pd.DataFrame):
        self.co: dict[str, set[str]] = defaultdict(set)
        self.vi: dict[str, set[str]] = defaultdict(set)
        self.row: dict[tuple[str, str, int], int] = {}
        n = len(edges)
        col = {c: (edges[c].tolist() if c in edges.columns else [""] * n)
               for c in ("person_a", "person_b", "incidents", "first_date", "last_date", "incident_ids")}
        self.a, self.b = col["person_a"], col["person_b"]
        self.layer = [LAYER_CODE.get(x, 0) for x in edges["layer"].tolist()]
        self._inc, self._first, self._last, self._ids = (col["incidents"], col["first_date"], col["last_date"],
                                                         col["incident_ids"])
        for i, (x, y, lay) in enumerate(zip(self.a, self.b, self.layer)):
            (self.co if lay == 0 else self.vi)[x].add(y)
            (self.co if lay == 0 else self.vi)[y].add(x)
            self.row[(min(x, y), max(x, y), lay)] = i

    def ties_among(self, people: set[str]) -> list[int]:
        """Rows of edges.csv with both ends in ``people``."""
        rows = []
        for p in people:
            for layer, nb in ((0, self.co), (1, self.vi)):
                for q in nb.get(p, ()):
                    if q in people and p < q:
                        rows.append(self.row[(p, q, layer)])
        return rows

    def tie(self, i: int, index: dict[str, int]) -> list:
        """Row ``i`` as ``[a, b, layer, incidents, first, span, incident_ids]`` (see the module doc)."""
        f, l = _day(self._first[i]), _day(self._last[i])
        first = f - BASE_DAY if f is not None else None
        span = l - f if f is not None and l is not None else None
        return [index[self.a[i]], index[self.b[i]], self.layer[i], _int(self._inc[i], 1), first, span,
                self._ids[i]]


BASE = "2000-01-01"
BASE_DAY = date.fromisoformat(BASE).toordinal()


@lru_cache(maxsize=65536)
def _day(s: str) -> int | None:
    """An ISO date's day number (``date.toordinal``), None when not a date."""
    try:
        return date.fromisoformat(str(s)[:10]).toordinal()
    except ValueError:
        return None


def ego_ball(adj: Adjacency, person: str) -> set[str]:
    """The person, everyone within two co-offending steps, and their direct victimization ties."""
    ball = {person}
    first = adj.co.get(person, set())
    ball |= first
    for q in first:
        ball |= adj.co.get(q, set())
    ball |= adj.vi.get(person, set())
    return ball


def listed_people(lists: dict[str, pd.DataFrame]) -> dict[str, list[tuple[str, int]]]:
    """person_id -> [(list name, rank), ...] in list order (call-in, custom, services)."""
    out: dict[str, list[tuple[str, int]]] = {}
    for name in LIST_NAMES:
        df = lists.get(name)
        if df is None or "person_id" not in df.columns:
            continue
        ranks = df["rank"].tolist() if "rank" in df.columns else list(range(1, len(df) + 1))
        for pid, rank in zip(df["person_id"].tolist(), ranks):
            out.setdefault(pid, []).append((name, _int(rank)))
    return out


def picker_order(listed: dict[str, list[tuple[str, int]]]) -> list[str]:
    """Listed people in reading order: by the first list they are on, then rank, then ID."""
    def key(pid):
        name, rank = listed[pid][0]
        return (LIST_NAMES.index(name), rank, pid)
    return sorted(listed, key=key)


SCORE_COLUMNS = ("score", "enforcement_score", "service_score", "probability_shooting")


def score_view(scores: pd.DataFrame | None) -> pd.DataFrame | None:
    """The columns of scores.csv the report draws: person_id and group as text, the scores as floats
    (NaN where a cell is empty or not a number). The same frame from the run's scores in memory and from
    scores.csv read back as text, so both render the same bytes.

    >>> score_view(pd.DataFrame({"person_id": ["P1"], "group": [""], "score": ["2.5"]})).dtypes["score"]
    dtype('float64')
    """
    if scores is None or "person_id" not in scores.columns:
        return None
    cols = {"person_id": _text_column(scores["person_id"])}
    if "group" in scores.columns:
        cols["group"] = _text_column(scores["group"])
    for c in SCORE_COLUMNS:
        if c in scores.columns:
            cols[c] = floats(scores[c])
    view = pd.DataFrame(cols, index=pd.RangeIndex(len(scores)))
    view.attrs["score_view"] = True
    return view


def _text_column(col: pd.Series):
    """:func:`_text`, but a column held as Arrow strings (the run's scores in memory) stays so, its missing
    values as "": the same text without a Python string per person (60 MB at a million people)."""
    if isinstance(col.dtype, pd.StringDtype) and col.dtype.storage == "pyarrow":
        return (col.fillna("") if col.hasnans else col).array
    return _text(col)


def _as_view(scores: pd.DataFrame | None) -> pd.DataFrame | None:
    return scores if scores is None or scores.attrs.get("score_view") else score_view(scores)


def floats(col: pd.Series) -> np.ndarray:
    """A column as float64: numbers as they are, text as Python's ``float`` reads it (correctly rounded,
    so a number written in shortest form reads back as the very float), NaN where it is no number.

    >>> floats(pd.Series(["0.1", "", "x", "1e3", "inf"])).tolist()
    [0.1, nan, nan, 1000.0, inf]
    """
    if col.dtype != object and not pd.api.types.is_string_dtype(col.dtype):
        try:
            return col.to_numpy(dtype=float, na_value=np.nan)
        except (TypeError, ValueError):
            pass
    v = _text(col)
    if not len(v):
        return np.array([], dtype=float)
    uniq, inv = np.unique(v.astype(str), return_inverse=True)

    def one(x):
        try:
            return float(x)
        except (TypeError, ValueError, OverflowError):
            return np.nan
    return np.array([one(u) for u in uniq.tolist()], dtype=float)[inv]


def _text(col: pd.Series) -> np.ndarray:
    """A column as Python strings, missing values as "" (what the CSV holds)."""
    v = col.to_numpy(dtype=object, na_value="") if hasattr(col, "to_numpy") else np.asarray(col, dtype=object)
    if len(v) and not all(isinstance(x, str) for x in v[:1]):
        v = np.array(["" if x is None else str(x) for x in v], dtype=object)
    return v


def _num_array(x: np.ndarray) -> list:
    """:func:`_num` of each float: 0 when not finite, an int when whole, else rounded to 4 places."""
    x = np.asarray(x, dtype=float)
    x = np.where(np.isfinite(x), x, 0.0)
    whole = x == np.trunc(x)
    return [int(v) if w else round(float(v), 4) for v, w in zip(x.tolist(), whole.tolist())]


class EdgeView:
    """edges.csv as arrays for the network views: ends as codes into ``ids`` (sorted person IDs), the
    layer code, incidents, first date (days after :data:`BASE`) and span, evidence IDs.

    Built with NumPy from the run's edges frame in memory or from edges.csv read back as text alike.
    """

    def __init__(self, edges: pd.DataFrame):
        n = len(edges)
        empty = np.full(n, "", dtype=object)
        a = _text(edges["person_a"]) if "person_a" in edges.columns else empty
        b = _text(edges["person_b"]) if "person_b" in edges.columns else empty
        self.ids, codes = np.unique(np.concatenate([a, b]).astype(object), return_inverse=True) if n else \
            (np.array([], dtype=object), np.array([], dtype=np.int64))
        self.a, self.b = codes[:n].astype(np.int64), codes[n:].astype(np.int64)
        lay = _text(edges["layer"]) if "layer" in edges.columns else empty
        self.layer = np.where(lay == "victimization", 1, 0).astype(np.int64)
        inc = floats(edges["incidents"]) if "incidents" in edges.columns else np.full(n, np.nan)
        ok = np.isfinite(inc)
        ok &= np.abs(np.where(ok, inc, 0)) < 2.0 ** 62
        self.inc = np.where(ok, np.trunc(np.where(ok, inc, 0)), 1).astype(np.int64)
        f = _days(edges["first_date"]) if "first_date" in edges.columns else np.full(n, np.nan)
        last = _days(edges["last_date"]) if "last_date" in edges.columns else np.full(n, np.nan)
        self.first = f - BASE_DAY
        self.span = last - f
        self.evidence = _text(edges["incident_ids"]) if "incident_ids" in edges.columns else empty
        self.n = n

    @classmethod
    def from_network(cls, net) -> "EdgeView":
        """The view straight from the network's arrays (person indices are already codes into the sorted
        person IDs): no string sorting. Rows are edges.csv's (co-offending, then victimization); the
        evidence column is joined from the layers for the rows a view draws (:meth:`evidence_of`)."""
        self = cls.__new__(cls)
        layers = [net.layers[n] for n in ("co_offending", "victimization")]
        self.ids = np.asarray(net.person_ids, dtype=object)
        # 32-bit codes, counts and days (8-bit layer): the network's own widths, half the memory of int64
        # at a million people; every value the views write is the same
        self.a = np.concatenate([L.src for L in layers]).astype(np.int32)
        self.b = np.concatenate([L.dst for L in layers]).astype(np.int32)
        self.layer = np.concatenate([np.full(L.n_edges, i, dtype=np.int8) for i, L in enumerate(layers)])
        # incidents, first day and span are gathered from the layers for the rows a view draws
        # (:meth:`_counts_days`), like the evidence: 24 MB less at a million people
        self.n = len(self.a)
        # the evidence IDs are joined only for the ties a view draws, not for all of them: at a million
        # people the whole column is about 200 MB of strings, and the views draw a fifth of the ties
        self._net, self._layers = net, layers
        # each layer's 0/1 adjacency shares the network's CSR index arrays (the same ties in both
        # directions) instead of being rebuilt from the ends through COO: about 40 MB less at the
        # report's peak at a million people
        n = len(self.ids)
        self._matrices = {i: sp.csr_matrix((np.ones(len(L.indices), dtype=np.int8), L.indices, L.indptr),
                                           shape=(n, n))
                          for i, L in enumerate(layers) if L.indptr is not None and len(L.indptr) == n + 1}
        return self

    def evidence_of(self, rows: np.ndarray) -> list[str]:
        """edges.csv's ``incident_ids`` of these rows (ties joined by ';', as the file holds them)."""
        return self.evidence_arrow(rows).to_pylist()

    def evidence_arrow(self, rows: np.ndarray):
        """:meth:`evidence_of` as a ``pyarrow`` large-string array (no Python string per tie)."""
        import pyarrow as pa

        rows = np.asarray(rows, dtype=np.int64)
        if "_net" not in self.__dict__:
            return pa.array(self.evidence[rows], type=pa.large_string())
        parts, where, got = [], np.empty(len(rows), dtype=np.int64), 0
        for L, sel, r in self._per_layer(rows):
            parts.append(pa.array(L.evidence_text(self._net, r), type=pa.large_string()))
            where[sel] = got + np.arange(len(sel))
            got += len(sel)
        return pa.concat_arrays(parts).take(pa.array(where))

    def _per_layer(self, rows: np.ndarray):
        """For each layer of a view made :meth:`from_network`: (layer, the positions in ``rows`` of its ties,
        those ties' rows in the layer)."""
        lo = 0
        for L in self._layers:
            sel = np.flatnonzero((rows >= lo) & (rows < lo + L.n_edges))
            yield L, sel, rows[sel] - lo
            lo += L.n_edges

    def code(self, people) -> np.ndarray:
        """Codes of ``people`` in :attr:`ids` (-1 for people with no tie)."""
        people = np.asarray(list(people), dtype=object)
        if not len(self.ids) or not len(people):
            return np.full(len(people), -1, dtype=np.int64)
        pos = np.searchsorted(self.ids, people).clip(0, len(self.ids) - 1)
        return np.where(self.ids[pos] == people, pos, -1).astype(np.int64)

    def matrix(self, layer: int) -> sp.csr_matrix:
        """The symmetric 0/1 adjacency of one layer over :attr:`ids` (built once: the workspace draws
        many people's networks from one view)."""
        cache = self.__dict__.setdefault("_matrices", {})
        if layer not in cache:
            cache[layer] = self._matrix(layer)
        return cache[layer]

    def _matrix(self, layer: int) -> sp.csr_matrix:
        m = len(self.ids)
        sel = self.layer == layer
        r = np.concatenate([self.a[sel], self.b[sel]])
        c = np.concatenate([self.b[sel], self.a[sel]])
        A = sp.csr_matrix((np.ones(len(r), dtype=np.int32), (r, c)), shape=(m, m))
        A.data[:] = 1
        return A

    def ties(self, rows: np.ndarray, index_of: np.ndarray, *, as_json: bool = False) -> "list[tuple] | TiesJSON":
        """Rows as ``[a, b, layer, incidents, first, span, incident_ids]``, ends renumbered by ``index_of``
        (code -> position in the view's people), sorted. With ``as_json`` the same rows already written as
        the JSON array :func:`fdnet.report.html.script_json` would write for them (:class:`TiesJSON`)."""
        rows = np.asarray(rows, dtype=np.int64)
        a, b = index_of[self.a[rows]], index_of[self.b[rows]]
        order = np.lexsort((self.layer[rows], b, a))
        rows, a, b = rows[order], a[order], b[order]
        inc, first, span = self._counts_days(rows)
        if as_json:
            return TiesJSON.build([a, b, self.layer[rows], inc, first, span], self.evidence_arrow(rows))
        # tuples: the page's JSON writes them as arrays, like lists
        return list(zip(a.tolist(), b.tolist(), self.layer[rows].tolist(), inc.tolist(),
                        _ints_or_none(first), _ints_or_none(span), self.evidence_of(rows)))

    def _counts_days(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Incidents, first date (days after :data:`BASE`) and span of these rows: from the view's arrays,
        or (a view made :meth:`from_network`) from the layers' (32-bit, as the network holds them)."""
        if "_net" not in self.__dict__:
            return self.inc[rows], self.first[rows], self.span[rows]
        inc = np.empty(len(rows), dtype=np.int32)
        first = np.empty(len(rows), dtype=np.int32)
        span = np.empty(len(rows), dtype=np.int32)
        shift = np.int32(date(1970, 1, 1).toordinal() - BASE_DAY)
        for L, sel, r in self._per_layer(rows):
            f = L.first_day[r].astype(np.int32)
            inc[sel] = L.n_incidents[r]
            first[sel] = f + shift
            span[sel] = L.last_day[r].astype(np.int32) - f
        return inc, first, span


class TiesJSON:
    r"""Ties written as JSON text in Arrow, column by column: the bytes ``json.dumps`` gives for
    :meth:`EdgeView.ties`' tuples (compact, non-ASCII kept), without a Python tuple, int and string per tie.
    At a million people the report's ego networks hold about half a million ties: 120 MB as tuples.

    >>> t = TiesJSON.build([np.array([0, 1]), np.array([1, 2]), np.array([0, 1]), np.array([1, 3]),
    ...                     np.array([5.0, np.nan]), np.array([0.0, 2.0])], ["I1", 'a"b\\c é'])
    >>> print(t.text)
    [[0,1,0,1,5,0,"I1"],[1,2,1,3,null,2,"a\"b\\c é"]]
    >>> import json; json.loads(t.text)[1]
    [1, 2, 1, 3, None, 2, 'a"b\\c é']
    """

    __slots__ = ("pieces", "n")
    PIECE = 1 << 16          # rows written at a time

    def __init__(self, pieces: list[str], n: int):
        # the text is kept as the pieces that join to it: the report writes them one after the other, so the
        # whole text (34 MB of ego ties at a million people) is never made, nor copied again by a join
        self.pieces, self.n = pieces, n

    @property
    def text(self) -> str:
        """The whole JSON array (joined on each call)."""
        return "".join(self.pieces)

    @classmethod
    def build(cls, numbers: list[np.ndarray], evidence) -> "TiesJSON":
        import pyarrow as pa

        n = len(evidence)
        if n == 0:
            return cls(["[]"], 0)
        ev = evidence if isinstance(evidence, (pa.Array, pa.ChunkedArray)) else pa.array(list(evidence), pa.large_string())
        numbers = [np.asarray(x) for x in numbers]
        # a piece of rows at a time, so that the Arrow intermediates stay small next to the text
        pieces = ["["]
        for lo in range(0, n, cls.PIECE):
            pieces += [cls._rows(numbers, ev, lo, min(lo + cls.PIECE, n)), ","]
        pieces[-1] = "]"
        return cls(pieces, n)

    @staticmethod
    def _rows(numbers: list[np.ndarray], ev, lo: int, hi: int) -> str:
        import pyarrow as pa
        import pyarrow.compute as pc

        def lit(t: str):
            return pa.scalar(t, pa.large_string())

        pieces = [lit("[")]
        for x in numbers:
            x = x[lo:hi]
            nan = np.isnan(x) if x.dtype.kind == "f" else np.zeros(len(x), bool)
            ints = pa.array(np.where(nan, 0, x).astype(np.int64), mask=nan)
            pieces += [pc.fill_null(pc.cast(ints, pa.large_string()), "null"), lit(",")]
        ev = ev.slice(lo, hi - lo)
        quoted = pc.replace_substring(pc.replace_substring(ev, "\\", "\\\\"), '"', '\\"')
        # control characters take json's own escapes (\n, \u001f, ...): rare in IDs, written one by one
        ctrl = pc.match_substring_regex(ev, r"[\x00-\x1f]").to_numpy(zero_copy_only=False)
        if ctrl.any():
            q = quoted.to_numpy(zero_copy_only=False).astype(object)
            for i in np.flatnonzero(ctrl):
                q[i] = json.dumps(ev[int(i)].as_py(), ensure_ascii=False)[1:-1]
            quoted = pa.array(q, type=pa.large_string())
        # one pass: [a,b,layer,incidents,first,span,"ids"]
        row = pc.binary_join_element_wise(*pieces, lit('"'), quoted, lit('"]'), lit(""))
        return pc.binary_join(pa.LargeListArray.from_arrays(pa.array([0, len(row)], pa.int64()), row),
                              lit(","))[0].as_py()


def _ints_or_none(x: np.ndarray) -> list:
    """Whole floats as ints, NaN as None (vectorised when there is no NaN)."""
    nan = np.isnan(x)
    if not nan.any():
        return x.astype(np.int64).tolist()
    return [None if m else int(v) for v, m in zip(x.tolist(), nan.tolist())]


def _days(col: pd.Series) -> np.ndarray:
    """Day numbers (``date.toordinal``) of ISO dates (first 10 characters), NaN where not a date."""
    s = pd.Series(_text(col), dtype=object).str.slice(0, 10)
    d = pd.to_datetime(s, format="%Y-%m-%d", errors="coerce")
    ns = d.to_numpy(dtype="datetime64[D]")
    out = (ns - np.datetime64("1970-01-01", "D")).astype("int64").astype(float) + date(1970, 1, 1).toordinal()
    out[d.isna().to_numpy()] = np.nan
    return out


def ego_data(edges: pd.DataFrame | EdgeView, people: list[str], *, scores: pd.DataFrame | None,
             explanations: dict[str, dict], listed: dict[str, list[tuple[str, int]]] | None = None,
             ties_json: bool = False) -> dict:
    """One JSON-ready dict with every tie the ego networks of ``people`` need (``edges`` as a
    :class:`TiesJSON` with ``ties_json``: what the report embeds).

    ``explanations`` maps person_id to its explanations.jsonl object (may be
    empty); each listed person carries their score components from it.
    Vectorised over the ties (sparse matrix products give every listed
    person's two-step ball at once); :func:`ego_ball` is the reference.
    """
    ev = edges if isinstance(edges, EdgeView) else EdgeView(edges)
    sv = _as_view(scores)
    people = list(people)
    codes = ev.code(people)
    have = codes >= 0
    m = len(ev.ids)
    rows = np.array([], dtype=np.int64)
    in_ball = np.zeros(m, dtype=bool)
    if have.any() and m:
        S = sp.csr_matrix((np.ones(int(have.sum()), dtype=np.int32), (np.arange(int(have.sum())), codes[have])),
                          shape=(int(have.sum()), m))
        A, V = ev.matrix(0), ev.matrix(1)
        SA = S @ A
        B = (S + SA + SA @ A + S @ V).tocsr()
        B.data[:] = 1
        in_ball[B.indices] = True
        cand = np.flatnonzero(in_ball[ev.a] & in_ball[ev.b] & (ev.a != ev.b))
        Bt = B.T.tocsr()
        both = Bt[ev.a[cand]].multiply(Bt[ev.b[cand]])
        rows = cand[np.asarray(both.getnnz(axis=1)).ravel() > 0]
        # one tie per (pair, layer) as the reference keeps it: the last row of each
        if len(rows):
            key = pd.DataFrame({"a": np.minimum(ev.a[rows], ev.b[rows]), "b": np.maximum(ev.a[rows], ev.b[rows]),
                                "l": ev.layer[rows]})
            rows = rows[~key.duplicated(keep="last").to_numpy()]
    ids = np.unique(np.concatenate([ev.ids[in_ball], np.asarray(people, dtype=object)]).astype(object)) \
        if (len(people) or in_ball.any()) else np.array([], dtype=object)
    index_of = np.full(m, -1, dtype=np.int64)
    nodes = np.flatnonzero(in_ball)          # every end of a selected tie is in some ball, so in ids
    if len(nodes):
        index_of[nodes] = np.searchsorted(ids, ev.ids[nodes])
    id_list = ids.tolist()
    index = {p: i for i, p in enumerate(id_list)}
    group_of, score_of = _person_attributes(sv, ids)
    named = _named_scores(sv, people)
    groups = sorted({g for g in group_of if g})
    gindex = {g: i for i, g in enumerate(groups)}
    ties = ev.ties(rows, index_of, as_json=ties_json)
    egos = []
    for p in people:
        ex = explanations.get(p) or {}
        comps = [[str(c.get("name", "")), _plain(c.get("value", 0)), _plain(c.get("points", 0))]
                 for c in ex.get("components", []) if isinstance(c, dict)]
        egos.append({"p": index[p], "on": [[n, r] for n, r in (listed or {}).get(p, [])], "c": comps,
                     "s": named.get(p, [])})
    meanings: dict[str, str] = {}
    for ex in explanations.values():
        for c in ex.get("components", []):
            if isinstance(c, dict) and c.get("name") and c.get("meaning"):
                meanings.setdefault(str(c["name"]), str(c["meaning"]))
    return {"people": id_list, "groups": groups, "group": [gindex.get(g, -1) for g in group_of],
            "score": score_of, "edges": ties, "egos": egos,
            "meanings": dict(sorted(meanings.items())), "base": BASE}


def _lookup(sv: pd.DataFrame, ids) -> np.ndarray:
    """Row of each of ``ids`` in ``sv`` (the last row of a repeated person_id), -1 when absent."""
    want = np.asarray(list(ids), dtype=object)
    col = sv["person_id"]
    if isinstance(col.dtype, pd.StringDtype) and col.dtype.storage == "pyarrow":
        # Arrow strings: one hash join, the last occurrence through the reversed column
        import pyarrow as pa
        import pyarrow.compute as pc
        arr = pa.array(col.array)
        arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
        rev = pc.index_in(pa.array(want.astype(str), type=arr.type), value_set=arr[::-1]).fill_null(-1) \
            .to_numpy(zero_copy_only=False).astype(np.int64)
        return np.where(rev >= 0, len(arr) - 1 - rev, -1)
    pid = col.to_numpy(dtype=object)
    if len(pid) and (len(pid) == 1 or bool(np.all(pid[1:] > pid[:-1]))):   # sorted, no repeats: the run's order
        pos = np.searchsorted(pid, want).clip(0, len(pid) - 1)
        return np.where(pid[pos] == want, pos, -1).astype(np.int64)
    ser = pd.Series(np.arange(len(pid)), index=pid)
    ser = ser[~ser.index.duplicated(keep="last")]
    return ser.reindex(want).fillna(-1).to_numpy(dtype=np.int64)


def _named_scores(scores: pd.DataFrame | None, people: list[str]) -> dict[str, list]:
    """Per listed person: [enforcement score, service score, total, probability] (None when absent),
    so the ego panel names the score each list ranks by and the risk estimate as a probability."""
    if scores is None or "person_id" not in scores.columns:
        return {}
    s = scores[scores["person_id"].isin(set(people))]
    cols = ("enforcement_score", "service_score", "score", "probability_shooting")
    out_cols = []
    for c in cols:
        if c in s.columns:
            v = s[c].to_numpy(dtype=float)
            nums = _num_array(v)
            out_cols.append([None if x != x else y for x, y in zip(v.tolist(), nums)])
        else:
            out_cols.append([None] * len(s))
    return {pid: [col[i] for col in out_cols] for i, pid in enumerate(s["person_id"].tolist())}


def _person_attributes(scores: pd.DataFrame | None, ids) -> tuple[list[str], list]:
    """Each of ``ids``: its group ("" when none) and its score as the page shows it (0 when none)."""
    n = len(ids)
    if scores is None or "person_id" not in scores.columns:
        return [""] * n, [0] * n
    r = _lookup(scores, ids)
    hit = r >= 0
    groups = np.full(n, "", dtype=object)
    if "group" in scores.columns:
        groups[hit] = scores["group"].iloc[r[hit]].to_numpy(dtype=object)
    sc = np.zeros(n)
    if "score" in scores.columns:
        sc[hit] = scores["score"].to_numpy(dtype=float)[r[hit]]
    return groups.tolist(), _num_array(sc)


def top_groups(lists: dict[str, pd.DataFrame], call_in_groups: pd.DataFrame | None,
               group_table: pd.DataFrame | None, scores: pd.DataFrame | None, *, max_groups: int = 8,
               max_people: int = 1200) -> list[str]:
    """The groups the network view shows, most relevant first.

    The call-in's chosen groups (``call_in_groups.csv``, else the groups of
    the call-in list in rank order), then the groups with the most members
    shot (``group_table.csv``), until ``max_groups`` groups or about
    ``max_people`` members.
    """
    cand: list[str] = []
    if call_in_groups is not None and "group" in call_in_groups.columns:
        cand += call_in_groups["group"].tolist()
    ci = lists.get("call_in")
    if ci is not None and "group" in ci.columns:
        cand += ci["group"].tolist()
    if group_table is not None and "group" in group_table.columns:
        gt = group_table.copy()
        key = "members_shot" if "members_shot" in gt.columns else None
        if key:
            gt["_k"] = [-_int(v) for v in gt[key]]
            gt = gt.sort_values(["_k", "group"], kind="stable")
        cand += gt["group"].tolist()
    sizes = {}
    if scores is not None and "group" in scores.columns:
        sizes = scores.loc[scores["group"] != "", "group"].value_counts().to_dict()
    out: list[str] = []
    total = 0
    for g in cand:
        if not g or g in out or (sizes and g not in sizes):
            continue
        n = int(sizes.get(g, 0))
        if out and total + n > max_people:
            continue
        out.append(g)
        total += n
        if len(out) >= max_groups:
            break
    return out


def group_network(edges: pd.DataFrame | EdgeView, scores: pd.DataFrame, groups: list[str],
                  listed: dict[str, list[tuple[str, int]]], ties_json: bool = False) -> dict:
    """Members of ``groups`` (their primary group in scores.csv) and every tie among them (``edges`` as a
    :class:`TiesJSON` with ``ties_json``)."""
    ev = edges if isinstance(edges, EdgeView) else EdgeView(edges)
    sv = _as_view(scores)
    gindex = {g: i for i, g in enumerate(groups)}
    s = sv[sv["group"].isin(set(groups))]
    s = s.assign(_g=s["group"].map(gindex)).sort_values(["_g", "person_id"], kind="stable")
    ids = s["person_id"].tolist()
    index = {p: i for i, p in enumerate(ids)}
    scores_shown = _num_array(s["score"].to_numpy(dtype=float)) if "score" in s.columns else [0] * len(ids)
    nodes = []
    for pid, g, sc in zip(ids, s["group"].tolist(), scores_shown):
        mask = sum(LIST_BITS[n] for n, _ in listed.get(pid, []))
        nodes.append([pid, gindex[g], sc, mask])
    index_of = np.full(len(ev.ids), -1, dtype=np.int64)
    c = ev.code(ids)
    # a person repeated in scores.csv keeps their last position, as a dict built in order would
    index_of[c[c >= 0]] = np.array([index[p] for p in np.asarray(ids, dtype=object)[c >= 0]], dtype=np.int64)
    rows = np.flatnonzero((index_of[ev.a] >= 0) & (index_of[ev.b] >= 0)) if ev.n else np.array([], dtype=np.int64)
    return {"groups": groups, "nodes": nodes, "edges": ev.ties(rows, index_of, as_json=ties_json), "base": BASE}


def conflict_map(conflicts: pd.DataFrame, group_table: pd.DataFrame | None, scores: pd.DataFrame | None,
                 highlight: list[str]) -> dict:
    """Groups in a conflict or alliance as nodes (sized by members), the relations as ties."""
    cols = set(conflicts.columns)
    names = sorted(set(conflicts["group_a"]) | set(conflicts["group_b"]))
    index = {g: i for i, g in enumerate(names)}
    members: dict[str, int] = {}
    shot: dict[str, int] = {}
    if group_table is not None and "group" in group_table.columns:
        mcol = "members_in_network" if "members_in_network" in group_table.columns else (
            "members" if "members" in group_table.columns else None)
        if mcol:
            members = {g: _int(v) for g, v in zip(group_table["group"], group_table[mcol])}
        if "members_shot" in group_table.columns:
            shot = {g: _int(v) for g, v in zip(group_table["group"], group_table["members_shot"])}
    if not members and scores is not None and "group" in scores.columns:
        members = {g: int(n) for g, n in scores.loc[scores["group"] != "", "group"].value_counts().items()}
    hi = set(highlight)
    nodes = [[g, members.get(g, 0), shot.get(g, 0), 1 if g in hi else 0] for g in names]

    def col(name, default=""):
        return conflicts[name].tolist() if name in cols else [default] * len(conflicts)

    ties = sorted([index[a], index[b], rel, src, _int(sh), _int(inc), ids, f, lst]
                  for a, b, rel, src, sh, inc, ids, f, lst in zip(
                      col("group_a"), col("group_b"), col("relation"), col("source"), col("shootings", "0"),
                      col("incidents", "0"), col("incident_ids"), col("first_date"), col("last_date")))
    return {"nodes": nodes, "edges": ties}
