"""Build the co-offending and victimization layers from validated records.

IDs are mapped to dense integers once: persons and incidents are numbered
in ascending string order of their IDs, so ``src < dst`` between indices
means ``person_a < person_b`` between IDs, as edges.csv requires. The
incidence (incident, person, role flags) inside the window is handed to the
Cython kernels in :mod:`fdnet._core` as CSR arrays; every layer is one
sorted edge list plus its symmetric CSR adjacency.

>>> import pandas as pd
>>> inc = pd.DataFrame({"incident_id": ["I1", "I2"], "day": [19000, 19010],
...                     "gun": [False, True]})
>>> inv = pd.DataFrame({"incident_id": ["I1", "I1", "I2", "I2"],
...                     "person_id": ["A", "B", "B", "C"],
...                     "role": ["suspect", "arrestee", "offender", "victim"]})
>>> net = build_network(inc, inv, as_of_day=19010, window_days=365, half_life_days=365)
>>> print(net.layers["co_offending"].edges_frame(net)[["person_a", "person_b", "incidents", "incident_ids"]].to_string(index=False))
person_a person_b  incidents incident_ids
       A        B          1           I1
>>> net.layers["victimization"].edges_frame(net)[["person_a", "person_b"]].values.tolist()
[['B', 'C']]
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .. import _core
from ..records.schema import OFFENDING_ROLES
from .csr import CSR

FLAG_OFFENDING = _core.FLAG_OFFENDING
FLAG_VICTIM = _core.FLAG_VICTIM
LAYERS = {"co_offending": _core.MODE_CO_OFFENDING, "victimization": _core.MODE_VICTIMIZATION}
EPOCH = np.datetime64("1970-01-01", "D")


def _arrow_strings(values):
    """``values`` (a pandas Series, NumPy array or Arrow array of strings) as one Arrow string array, or None.

    Arrow-backed pandas columns (pandas' default ``str``) are taken without a copy.
    """
    import pyarrow as pa

    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array):
        if pa.types.is_large_string(values.type):
            values = values.cast(pa.string())
        return values if pa.types.is_string(values.type) and not values.null_count else None
    try:
        arr = pa.array(values, from_pandas=True) if isinstance(values, pd.Series) else \
            pa.array(np.asarray(values, dtype=object), type=pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        return None
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.string())
    if not pa.types.is_string(arr.type) or arr.null_count:
        return None
    return arr


def sorted_codes_arrow(values):
    """:func:`sorted_codes` in Arrow: ``(codes int32, sorted uniques as an Arrow string array)``, or None.

    Arrow's hash kernels find the distinct values and each value's code, and
    its C++ sort orders the (fewer) distinct values by their UTF-8 bytes,
    which is Python's order of ``str``. None when ``values`` are not all
    strings (then :func:`sorted_codes` falls back to pandas).
    """
    import pyarrow.compute as pc

    arr = _arrow_strings(values)
    if arr is None:
        return None
    uniq = pc.unique(arr)
    uniq = uniq.take(pc.sort_indices(uniq))
    codes = pc.index_in(arr, value_set=uniq).to_numpy(zero_copy_only=False).astype(np.int32)
    return codes, uniq


def sorted_codes(values) -> tuple[np.ndarray, np.ndarray]:
    """Dense codes in ascending order of the values: (codes int32, sorted uniques).

    Hash-based factorisation, then a sort of the (fewer) uniques only, in
    Arrow for strings (:func:`sorted_codes_arrow`), in pandas otherwise.

    >>> c, u = sorted_codes(np.array(["b", "a", "b", "c"], dtype=object))
    >>> c.tolist(), u.tolist()
    ([1, 0, 1, 2], ['a', 'b', 'c'])
    >>> c, u = sorted_codes(np.array([3, 1, 3]))
    >>> c.tolist(), u.tolist()
    ([1, 0, 1], [1, 3])
    """
    got = sorted_codes_arrow(values)
    if got is not None:
        return got[0], got[1].to_numpy(zero_copy_only=False).astype(object)
    codes, uniques = pd.factorize(np.asarray(values, dtype=object), sort=False)
    uniques = np.asarray(uniques, dtype=object)
    order = np.argsort(uniques, kind="stable")
    rank = np.empty(len(order), dtype=np.int32)
    rank[order] = np.arange(len(order), dtype=np.int32)
    return rank[codes].astype(np.int32), uniques[order]


def join_segments(values, offsets: np.ndarray, sep: str = ";", *, arrow: bool = False):
    """``sep``-join each segment ``values[offsets[k]:offsets[k+1]]``: one string per segment.

    ``values`` is a sequence of strings or a ``pyarrow`` string array; the
    joins run in Arrow's C++ kernel (``binary_join``), not a Python loop per
    segment. An empty segment gives ``""``. Returns an object array of
    ``str``, or with ``arrow`` the ``pyarrow`` string array.

    >>> join_segments(np.array(["a", "b", "c"], dtype=object), np.array([0, 2, 2, 3])).tolist()
    ['a;b', '', 'c']
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    vals = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(values, type=pa.string())
    if isinstance(vals, pa.ChunkedArray):
        vals = vals.combine_chunks()
    if not pa.types.is_string(vals.type):
        vals = vals.cast(pa.string())
    lists = pa.LargeListArray.from_arrays(pa.array(np.asarray(offsets, dtype=np.int64)), vals)
    out = pc.binary_join(lists, sep)
    return out if arrow else out.to_numpy(zero_copy_only=False).astype(object)


def iso_days(days: np.ndarray):
    """ISO dates (``pyarrow`` strings) of integer days since 1970-01-01, formatted once per distinct day.

    >>> iso_days(np.array([0, 19000, 0])).to_pylist()
    ['1970-01-01', '2022-01-08', '1970-01-01']
    """
    import pyarrow as pa

    days = np.asarray(days, dtype=np.int64)
    if len(days) == 0:
        return pa.array([], type=pa.string())
    lo, hi = int(days.min()), int(days.max())
    lut = pa.array((EPOCH + np.arange(lo, hi + 1).astype("timedelta64[D]")).astype(str).astype(object),
                   type=pa.string())
    return lut.take(pa.array(days - lo))


@dataclass
class Incidence:
    """The person-incident incidence, unique per (incident, person), flags OR-ed.

    Held as CSR both ways (see :func:`fdnet._core.build_incidence`); ``inc``,
    ``person`` and ``flags`` are the same entries as triples sorted by
    (incident, person).
    """

    i_indptr: np.ndarray
    i_person: np.ndarray
    i_flag: np.ndarray
    p_indptr: np.ndarray
    p_inc: np.ndarray
    p_flag: np.ndarray
    _inc: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def from_codes(cls, inc: np.ndarray, person: np.ndarray, flags: np.ndarray,
                   n_incidents: int, n_persons: int) -> "Incidence":
        return cls(*_core.build_incidence(
            np.ascontiguousarray(inc, np.int32), np.ascontiguousarray(person, np.int32),
            np.ascontiguousarray(flags, np.uint8), n_incidents, n_persons))

    @property
    def inc(self) -> np.ndarray:
        """Incident index of every entry (computed once: it is read on hot paths)."""
        if self._inc is None:
            self._inc = np.repeat(np.arange(len(self.i_indptr) - 1, dtype=np.int32), np.diff(self.i_indptr))
        return self._inc

    @property
    def person(self) -> np.ndarray:
        return self.i_person

    @property
    def flags(self) -> np.ndarray:
        return self.i_flag

    def pairs_per_incident(self, mode: int) -> np.ndarray:
        """Person pairs each incident would project in a layer (int64 per incident).

        Co-offending: ``k (k - 1) / 2`` for ``k`` people in an offending role.
        Victimization: unordered pairs with one side offending and the other a
        victim, a person holding both roles pairing with anyone who holds
        either (exactly the pairs the kernel emits before deduplication):
        ``o v + o b + v b + b (b - 1) / 2`` for ``o`` offending-only, ``v``
        victim-only and ``b`` both. Counted with one ``np.bincount`` per kind.

        >>> I = Incidence.from_codes(np.array([0, 0, 0, 1, 1]), np.array([0, 1, 2, 0, 3]),
        ...                          np.array([1, 1, 1, 1, 2], np.uint8), 2, 4)
        >>> I.pairs_per_incident(LAYERS["co_offending"]).tolist(), I.pairs_per_incident(LAYERS["victimization"]).tolist()
        ([3, 0], [0, 1])
        """
        n_inc = len(self.i_indptr) - 1
        f = self.i_flag & (FLAG_OFFENDING | FLAG_VICTIM)
        inc = self.inc

        def count(kind):
            return np.bincount(inc[f == kind], minlength=n_inc).astype(np.int64)

        o, v, b = count(FLAG_OFFENDING), count(FLAG_VICTIM), count(FLAG_OFFENDING | FLAG_VICTIM)
        if mode == _core.MODE_CO_OFFENDING:
            k = o + b
            return k * (k - 1) // 2
        return o * v + o * b + v * b + b * (b - 1) // 2

    def without_incidents(self, drop: np.ndarray) -> "Incidence":
        """The same incidence with every role flag cleared in the incidents where ``drop`` is true.

        The entries stay (so the people stay in the network); they simply
        qualify for no pair. Used to keep capped incidents out of a layer.
        """
        return Incidence(self.i_indptr, self.i_person, np.where(drop[self.inc], 0, self.i_flag).astype(np.uint8),
                         self.p_indptr, self.p_inc, np.where(drop[self.p_inc], 0, self.p_flag).astype(np.uint8),
                         self._inc)

    def project(self, inc_day: np.ndarray, weight: np.ndarray, mode: int):
        return _core.project(len(self.p_indptr) - 1, self.p_indptr, self.p_inc, self.p_flag,
                             self.i_indptr, self.i_person, self.i_flag,
                             np.ascontiguousarray(inc_day, dtype=np.int32),
                             np.ascontiguousarray(weight, dtype=np.float64), mode)


def project_incidence(inc: np.ndarray, person: np.ndarray, flags: np.ndarray,
                      n_incidents: int, n_persons: int, day: np.ndarray, weight: np.ndarray,
                      mode: int = _core.MODE_CO_OFFENDING):
    """Project integer-coded incidence rows onto person pairs (see :func:`fdnet._core.project`).

    This is the whole projection as the benchmark times it: dedupe and sort
    the incidence, build both CSR views, run the kernel.
    """
    return Incidence.from_codes(inc, person, flags, n_incidents, n_persons).project(day, weight, mode)


@dataclass
class Layer:
    """One network layer: a sorted undirected edge list and its CSR adjacency.

    ``indptr``, ``indices`` and ``data`` (tie weight: shared incidents) are
    the arrays of :attr:`csr`, the layer's :class:`~fdnet.graph.csr.CSR`
    graph, which the analytics share (its SciPy view, components and
    unweighted twin are built once).
    """

    name: str
    src: np.ndarray
    dst: np.ndarray
    n_incidents: np.ndarray
    first_day: np.ndarray
    last_day: np.ndarray
    decayed: np.ndarray
    ev_indptr: np.ndarray
    ev_incident: np.ndarray
    indptr: np.ndarray = field(repr=False, default=None)
    indices: np.ndarray = field(repr=False, default=None)
    data: np.ndarray = field(repr=False, default=None)
    _row_start: np.ndarray | None = field(repr=False, default=None)
    _csr: CSR | None = field(repr=False, default=None)

    @property
    def n_edges(self) -> int:
        return len(self.src)

    @property
    def csr(self) -> CSR:
        """The layer as a :class:`~fdnet.graph.csr.CSR` graph (made once, sharing the arrays)."""
        if self._csr is None or self._csr.indptr is not self.indptr:
            if self.indptr is None:
                raise ValueError("Layer: no CSR adjacency (indptr) was attached to this layer")
            self._csr = CSR(self.indptr, self.indices, self.data)
            self.indptr, self.indices, self.data = self._csr.indptr, self._csr.indices, self._csr.data
        return self._csr

    def degree(self) -> np.ndarray:
        return np.diff(self.indptr).astype(np.int32)

    def neighbors(self, i: int) -> np.ndarray:
        return self.indices[self.indptr[i]:self.indptr[i + 1]]

    def edge_index(self, a: int, b: int) -> int:
        """Position of edge {a, b} in the edge list, or -1."""
        a, b = min(a, b), max(a, b)
        if self._row_start is None:
            # edges are sorted by src: the first edge of every row, computed once
            n = len(self.indptr) - 1 if self.indptr is not None else int(self.src.max(initial=-1)) + 1
            self._row_start = np.searchsorted(self.src, np.arange(n + 1, dtype=self.src.dtype))
        lo, hi = int(self._row_start[a]), int(self._row_start[a + 1])
        k = lo + int(np.searchsorted(self.dst[lo:hi], np.int32(b)))
        return k if k < hi and self.dst[k] == b else -1

    def evidence(self, e: int) -> np.ndarray:
        return self.ev_incident[self.ev_indptr[e]:self.ev_indptr[e + 1]]

    def edges_frame(self, net: "Network", lo: int = 0, hi: int | None = None) -> pd.DataFrame:
        """The layer as edges.csv rows (CONTRACT.md section 3); its edges ``lo`` to ``hi`` only, when given."""
        # every string column is built in Arrow (gathers, the ';'-joins of each edge's
        # evidence IDs, dates formatted once per distinct day), no Python loop per edge
        def text(arr):
            return pd.array(arr, dtype="str")

        hi = self.n_edges if hi is None else min(hi, self.n_edges)
        lo = min(lo, hi)
        part = slice(lo, hi)
        whole = lo == 0 and hi == self.n_edges
        pid = net.person_ids_arrow()
        return pd.DataFrame({
            "person_a": text(pid.take(np.ascontiguousarray(self.src[part]))),
            "person_b": text(pid.take(np.ascontiguousarray(self.dst[part]))),
            "layer": self.name,
            "weight": self.n_incidents[part],
            "incidents": self.n_incidents[part],
            "decayed_weight": np.round(self.decayed[part], 6),
            "first_date": text(iso_days(self.first_day[part])),
            "last_date": text(iso_days(self.last_day[part])),
            "incident_ids": self.evidence_text(net, None if whole else np.arange(lo, hi)),
        })

    def evidence_text(self, net: "Network", edges: np.ndarray | None = None) -> pd.Series:
        """edges.csv's ``incident_ids`` column for this layer: each edge's evidence incident IDs joined by ';'
        (for the edges numbered ``edges`` only, in that order, when given)."""
        ev, ptr = self.ev_incident, self.ev_indptr
        if edges is not None:
            edges = np.asarray(edges, dtype=np.int64)
            lens = ptr[edges + 1] - ptr[edges]
            ptr = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
            # the positions of each chosen edge's evidence run, gathered without a loop per edge
            ev = ev[np.repeat(self.ev_indptr[edges] - ptr[:-1], lens) + np.arange(ptr[-1])]
        ids = net.incident_ids_arrow().take(np.ascontiguousarray(ev))
        return pd.Series(pd.array(join_segments(ids, ptr, arrow=True), dtype="str"))


@dataclass
class Network:
    """Everything the analytics need, as arrays over dense indices."""

    person_ids: np.ndarray        # sorted person IDs (object)
    incident_ids: np.ndarray      # sorted incident IDs in the window (object)
    inc_day: np.ndarray           # int32 day of each incident
    inc_gun: np.ndarray           # bool
    inc_violent: np.ndarray       # bool
    incidence: Incidence
    layers: dict[str, Layer]
    as_of_day: int
    window_start_day: int
    # incidents kept out of a layer by network.max_pairs_per_incident: dicts
    # (incident_id, layer, pairs) sorted by incident_id then layer
    capped_incidents: list = field(default_factory=list)
    _shooting: np.ndarray | None = field(default=None, repr=False)
    _role_counts: dict | None = field(default=None, repr=False)
    _incident_ids_arrow: object = field(default=None, repr=False)
    _person_ids_arrow: object = field(default=None, repr=False)

    @property
    def n_persons(self) -> int:
        return len(self.person_ids)

    def person_ids_arrow(self):
        """``person_ids`` as a ``pyarrow`` string array (made once)."""
        if self._person_ids_arrow is None:
            import pyarrow as pa
            self._person_ids_arrow = pa.array(self.person_ids, type=pa.string())
        return self._person_ids_arrow

    def incident_ids_arrow(self):
        """``incident_ids`` as a ``pyarrow`` string array (made once), for gathers and joins in C++."""
        if self._incident_ids_arrow is None:
            import pyarrow as pa
            self._incident_ids_arrow = pa.array(self.incident_ids, type=pa.string())
        return self._incident_ids_arrow

    def person_index(self, pid: str) -> int:
        k = int(np.searchsorted(self.person_ids, pid))
        return k if k < len(self.person_ids) and self.person_ids[k] == pid else -1

    def shooting_incidents(self) -> np.ndarray:
        """Boolean per incident: gun=true and at least one victim (a shooting)."""
        if self._shooting is None:
            has_victim = np.zeros(len(self.incident_ids), bool)
            has_victim[self.incidence.inc[(self.incidence.flags & FLAG_VICTIM) != 0]] = True
            self._shooting = self.inc_gun & has_victim
        return self._shooting

    def role_counts(self) -> dict[str, np.ndarray]:
        """Per person: incidents in the window by role kind, and the last day of each kind.

        ``offending``, ``violent_offending``, ``gun_offending`` (offending role in a
        shooting), ``shooting_victimization`` (int32 counts; an incident counts once
        per person), ``last_offending_day`` and ``last_victimization_day`` (-1 if
        none). Computed once per network; the graph and scoring stages share it.
        """
        if self._role_counts is None:
            I = self.incidence
            n = self.n_persons
            inc, person = I.inc, I.person
            off = (I.flags & FLAG_OFFENDING) != 0
            shooting = self.shooting_incidents()
            shot = ((I.flags & FLAG_VICTIM) != 0) & shooting[inc]

            def count(mask):
                return np.bincount(person[mask], minlength=n).astype(np.int32)

            def last_day(mask):
                out = np.full(n, -1, dtype=np.int64)
                np.maximum.at(out, person[mask], self.inc_day[inc[mask]].astype(np.int64))
                return out

            self._role_counts = {
                "offending": count(off),
                "violent_offending": count(off & self.inc_violent[inc]),
                "gun_offending": count(off & shooting[inc]),
                "shooting_victimization": count(shot),
                "last_offending_day": last_day(off),
                "last_victimization_day": last_day(shot),
            }
        return self._role_counts

    def shooting_victims(self) -> np.ndarray:
        """Sorted person indices who were victims of a shooting in the window."""
        sh = self.shooting_incidents()
        I = self.incidence
        m = ((I.flags & FLAG_VICTIM) != 0) & sh[I.inc]
        return np.unique(I.person[m]).astype(np.int32)


DEFAULT_MAX_PAIRS = 1225   # policy network.max_pairs_per_incident: 50 offenders in one incident


def build_network(incidents: pd.DataFrame, involvements: pd.DataFrame, *, as_of_day: int,
                  window_days: int, half_life_days: float,
                  max_pairs_per_incident: int | None = DEFAULT_MAX_PAIRS) -> Network:
    """Build the layers from incidents inside ``[as_of - window_days, as_of]``.

    An incident whose pairs in a layer (see :meth:`Incidence.pairs_per_incident`)
    exceed ``max_pairs_per_incident`` projects no ties in that layer (a mass
    arrest of 3,000 people is not a co-offending group, and would otherwise
    project 4.5 million ties); its people stay in the network with their own
    counts (offending, victimization, shootings) and the incident is listed in
    ``Network.capped_incidents``. ``None`` projects every incident.

    >>> inc = pd.DataFrame({"incident_id": ["I1", "I2"], "day": [19000, 19000], "gun": [False, False]})
    >>> inv = pd.DataFrame({"incident_id": ["I1"] * 4 + ["I2"] * 2, "person_id": list("ABCDAE"),
    ...                     "role": ["offender"] * 6})
    >>> net = build_network(inc, inv, as_of_day=19000, window_days=10, half_life_days=365,
    ...                     max_pairs_per_incident=5)
    >>> net.capped_incidents
    [{'incident_id': 'I1', 'layer': 'co_offending', 'pairs': 6}]
    >>> net.layers["co_offending"].edges_frame(net)[["person_a", "person_b"]].values.tolist()
    [['A', 'E']]
    >>> net.role_counts()["offending"].tolist()
    [2, 1, 1, 1, 1]
    """
    start = as_of_day - window_days
    inw = incidents[(incidents["day"] >= start) & (incidents["day"] <= as_of_day)]
    inc_arrow = pid_arrow = None
    got = sorted_codes_arrow(inw["incident_id"])
    inv_inc = _arrow_strings(involvements["incident_id"]) if got is not None else None
    if got is not None and inv_inc is not None:
        import pyarrow as pa
        import pyarrow.compute as pc

        # Arrow's hash kernels: each involvement's incident in the window (or none), its
        # person's code, its role flags; no Python object per row
        inc_codes_all, inc_arrow = got
        inc_ids = inc_arrow.to_numpy(zero_copy_only=False).astype(object)
        code_all = pc.index_in(inv_inc, value_set=inc_arrow).fill_null(-1).to_numpy().astype(np.int64)
        keep = code_all >= 0
        mask = pa.array(keep)
        p_code, pid_arrow = sorted_codes_arrow(
            pc.filter(_arrow_strings(involvements["person_id"]), mask))
        person_ids = pid_arrow.to_numpy(zero_copy_only=False).astype(object)
        role = pc.filter(_arrow_strings(involvements["role"]), mask)
        off = pc.is_in(role, value_set=pa.array(list(OFFENDING_ROLES))).to_numpy(zero_copy_only=False)
        vic = pc.equal(role, "victim").to_numpy(zero_copy_only=False)
    else:
        inc_codes_all, inc_ids = sorted_codes(inw["incident_id"].to_numpy())
        # one hash lookup per involvement finds its incident in the window (or -1)
        code_all = pd.Index(inc_ids).get_indexer(involvements["incident_id"].to_numpy(dtype=object))
        keep = code_all >= 0
        p_code, person_ids = sorted_codes(involvements["person_id"].to_numpy(dtype=object)[keep])
        role = involvements["role"].to_numpy(dtype=object)[keep]
        off, vic = np.isin(role, OFFENDING_ROLES), role == "victim"
    order = np.argsort(inc_codes_all, kind="stable")
    inw = inw.iloc[order]
    inc_day = inw["day"].to_numpy(dtype=np.int32)
    inc_code = code_all[keep].astype(np.int32)
    flags = (off * FLAG_OFFENDING + vic * FLAG_VICTIM).astype(np.uint8)
    I = Incidence.from_codes(inc_code, p_code, flags, len(inc_ids), len(person_ids))
    weight = np.power(0.5, (as_of_day - inc_day.astype(np.float64)) / float(half_life_days))
    layers = {}
    capped = []
    for name, mode in LAYERS.items():
        J = I
        if max_pairs_per_incident is not None:
            pairs = I.pairs_per_incident(mode)
            over = pairs > max_pairs_per_incident
            if over.any():
                J = I.without_incidents(over)
                capped += [{"incident_id": str(inc_ids[k]), "layer": name, "pairs": int(pairs[k])}
                           for k in np.flatnonzero(over)]
        layer = Layer(name, *J.project(inc_day, weight, mode))
        g = CSR.from_edges(len(person_ids), layer.src, layer.dst, layer.n_incidents)
        layer.indptr, layer.indices, layer.data, layer._csr = g.indptr, g.indices, g.data, g
        layers[name] = layer
    return Network(
        person_ids=person_ids, incident_ids=inc_ids, inc_day=inc_day,
        inc_gun=(inw["gun"].to_numpy(dtype=bool) if "gun" in inw else np.zeros(len(inw), bool)), inc_violent=(inw["violent"].to_numpy(dtype=bool) if "violent" in inw else np.zeros(len(inw), bool)),
        incidence=I, layers=layers, as_of_day=as_of_day, window_start_day=start,
        capped_incidents=sorted(capped, key=lambda c: (c["incident_id"], c["layer"])),
        _incident_ids_arrow=inc_arrow, _person_ids_arrow=pid_arrow,
    )
