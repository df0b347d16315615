"""explanations.jsonl for every listed person at once, built column-wise.

:class:`fdnet.scoring.explain.Explainer` explains one person (``fdnet explain``
of someone not listed, ``Run.explain``); this module writes the same JSON
objects for all listed people together, with no Python work per person: every
piece of evidence is gathered for everyone in one pass per component (slices
of the incidence and co-offending CSR arrays, expanded with ``np.repeat``,
ordered with one ``np.lexsort``), turned into JSON text fragments with
element-wise string operations, and grouped into each person's lists with
Arrow list arrays (``pyarrow.compute.binary_join``). A loop runs over the ~15
components, the 3 lists, and the distinct values of a rounded number (days in
the window, score values), never over people.

The text is json.dumps's own (``", "`` and ``": "`` separators, keys in the
order :meth:`Explainer.explain` gives them, strings escaped as with
``ensure_ascii=False``, floats in Python's shortest round-trip form), so
``json.loads`` of each line equals the one-person explanation; the tests
check that for every listed person.

>>> _join(np.array(['"a"', '"b"', '"c"'], dtype=object), np.array([0, 0, 2]), 3).tolist()
['"a", "b"', '', '"c"']
>>> _jstr(np.array(['plain', 'say "hi"', 'a\\\\b', 'tab\\there'], dtype=object)).tolist()
['"plain"', '"say \\\\"hi\\\\""', '"a\\\\\\\\b"', '"tab\\\\there"']
"""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from ..graph.layers import FLAG_OFFENDING, FLAG_VICTIM
from .features import FEATURES

EPOCH = np.datetime64("1970-01-01", "D")
_BIG = np.int64(1) << np.int64(32)          # key = owner * _BIG + value (values are days or indices < 2**32)


# --------------------------------------------------------------------------- text helpers

def _o(a) -> np.ndarray:
    """An object array of Python str (element-wise ``+`` concatenates, with no fixed width)."""
    a = np.asarray(a)
    if a.dtype == object:
        return a
    return a.astype(str).astype(object)


def _jstr(values) -> np.ndarray:
    """``json.dumps(s, ensure_ascii=False)`` of every string (None gives ``null``)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    a = np.asarray(values, dtype=object)
    if not len(a):
        return np.zeros(0, dtype=object)
    arr = pa.array(a, type=pa.large_string(), from_pandas=True)
    esc = pc.replace_substring(pc.replace_substring(arr, "\\", "\\\\"), '"', '\\"')
    out = np.asarray(esc.to_numpy(zero_copy_only=False), dtype=object)
    null = np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    out[null] = ""
    out = '"' + out + '"'
    out[null] = "null"
    ctrl = np.asarray(pc.fill_null(pc.match_substring_regex(arr, "[\\x00-\\x1f]"), False)
                      .to_numpy(zero_copy_only=False), dtype=bool)
    if ctrl.any():                               # control characters: rare, json's own escapes
        out[ctrl] = [json.dumps(s, ensure_ascii=False) for s in a[ctrl]]
    return out


def _jval(values) -> np.ndarray:
    """json.dumps of every value of a table column (strings escaped; others, rare, one by one)."""
    a = np.asarray(values, dtype=object)
    if pd.api.types.infer_dtype(a, skipna=False) in ("string", "empty"):
        return _jstr(a)                          # the usual case: every cell a str (one C scan to know)
    is_str = np.array([isinstance(x, str) for x in a], dtype=bool)
    out = np.empty(len(a), dtype=object)
    out[is_str] = _jstr(a[is_str])
    rest = np.flatnonzero(~is_str)
    for i in rest:                               # non-string cells in a text column: not expected
        v = a[i]
        out[i] = json.dumps(None if v is None or v is pd.NA else (v.item() if hasattr(v, "item") else v),
                            ensure_ascii=False)
    return out


def _jfloat(v) -> np.ndarray:
    """JSON text of floats as json.dumps writes a Python float (repr; NaN, Infinity)."""
    v = np.asarray(v, dtype=float)
    out = _o(v.astype(str))
    out[np.isnan(v)] = "NaN"
    out[np.isposinf(v)] = "Infinity"
    out[np.isneginf(v)] = "-Infinity"
    return out


def _jint(v) -> np.ndarray:
    return _o(np.asarray(v, dtype=np.int64))


def _round(v, nd: int) -> np.ndarray:
    """Python's ``round(x, nd)`` of every value (correctly rounded), computed per distinct value."""
    v = np.asarray(v, dtype=float)
    if not v.size:
        return v.copy()
    u, inv = np.unique(v, return_inverse=True)
    return np.array([round(float(x), nd) if x == x else x for x in u], dtype=float)[inv].reshape(v.shape)


def _jnum(v) -> np.ndarray:
    """:func:`fdnet.scoring.explain._num` as JSON: null when missing, an int when whole, else round(v, 6)."""
    v = np.asarray(v, dtype=float)
    out = _jfloat(_round(v, 6))
    whole = np.isfinite(v) & (v == np.floor(v))
    small = whole & (np.abs(v) < 2.0 ** 62)
    out[small] = _jint(v[small])
    big = np.flatnonzero(whole & ~small)
    if len(big):                                  # beyond int64: Python's int, one by one (not expected)
        out[big] = [str(int(x)) for x in v[big]]
    out[np.isnan(v)] = "null"
    return out


def _iso(days) -> np.ndarray:
    """``day_to_iso`` of every day."""
    d = np.asarray(days, dtype=np.int64)
    return _o((EPOCH + d.astype("timedelta64[D]")).astype(str))


def _join(frags, owner, n: int, sep: str = ", ") -> np.ndarray:
    """For each owner 0..n-1 its fragments (``owner`` ascending) joined with ``sep`` ("" when none)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    frags = np.asarray(frags, dtype=object)
    owner = np.asarray(owner, dtype=np.int64)
    offsets = np.searchsorted(owner, np.arange(n + 1, dtype=np.int64)).astype(np.int64)
    lst = pa.LargeListArray.from_arrays(pa.array(offsets, type=pa.int64()),
                                        pa.array(frags, type=pa.large_string()))
    out = pc.binary_join(lst, pa.scalar(sep, type=pa.large_string()))
    return np.asarray(out.to_numpy(zero_copy_only=False), dtype=object)


def _ranges(lo, cnt) -> tuple[np.ndarray, np.ndarray]:
    """(owner, position) of every element of the slices ``[lo[k], lo[k] + cnt[k])``, in order."""
    lo = np.asarray(lo, dtype=np.int64)
    cnt = np.asarray(cnt, dtype=np.int64)
    owner = np.repeat(np.arange(len(cnt), dtype=np.int64), cnt)
    start = np.cumsum(cnt) - cnt
    pos = lo[owner] + (np.arange(int(cnt.sum()), dtype=np.int64) - start[owner])
    return owner, pos


def _member(keys_sorted: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Is each query key in the sorted key array?"""
    if not len(keys_sorted):
        return np.zeros(len(q), dtype=bool)
    i = np.searchsorted(keys_sorted, q)
    i = np.minimum(i, len(keys_sorted) - 1)
    return keys_sorted[i] == q


def _sorted_lookup(sorted_values: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Position of each query in a sorted array of distinct values (-1 when absent): a binary search
    per query, so the cost follows the queries, not the (large) array."""
    q = np.asarray(q, dtype=object)
    if not len(sorted_values) or not len(q):
        return np.full(len(q), -1, dtype=np.int64)
    j = np.minimum(np.searchsorted(sorted_values, q), len(sorted_values) - 1).astype(np.int64)
    return np.where(sorted_values[j] == q, j, -1)


def _first_per(keys: np.ndarray) -> np.ndarray:
    """Positions where a run of equal (sorted) keys starts."""
    if not len(keys):
        return np.zeros(0, dtype=bool)
    return np.concatenate([[True], keys[1:] != keys[:-1]])


# --------------------------------------------------------------------------- the builder

class _Columns:
    """Evidence of all listed people, one component at a time (see the module docstring)."""

    def __init__(self, ex, pids: list[str], lists_of: list[list[str]]):
        self.ex = ex
        net = ex.net
        self.net = net
        self.pol = ex.policy
        self.pids = np.asarray(pids, dtype=object)
        self.L = len(pids)
        self.lists_of = lists_of
        P = _sorted_lookup(net.person_ids, self.pids)
        if (P < 0).any():
            raise ValueError(f"listed person {self.pids[P < 0][0]!r} is not in the network")
        self.P = P.astype(np.int64)
        self.n = int(net.n_persons)
        self.co = ex.co
        self.days = np.asarray(net.inc_day, dtype=np.int64)
        self.shooting = np.asarray(ex.shooting, dtype=bool)
        self.is_victim = np.zeros(self.n, dtype=bool)
        self.is_victim[np.asarray(ex.victims, dtype=np.int64)] = True
        self.is_shooter = ex.shooter_mask
        self.W = int(self.pol.window_days)
        self.as_of = int(net.as_of_day)
        self._edge_keys = None
        self.expiry: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}   # name -> (owner, end, last)

    # ---- small caches of JSON text per incident / person -------------------------------
    def inc_js(self, inc):
        inc = np.asarray(inc, dtype=np.int64)
        u, inv = np.unique(inc, return_inverse=True)
        return _jstr(self.net.incident_ids[u])[inv]

    def inc_raw(self, inc):
        return _o(self.net.incident_ids[np.asarray(inc, dtype=np.int64)])

    def pid_js(self, p):
        p = np.asarray(p, dtype=np.int64)
        u, inv = np.unique(p, return_inverse=True)
        return _jstr(self.net.person_ids[u])[inv]

    def pid_raw(self, p):
        return _o(self.net.person_ids[np.asarray(p, dtype=np.int64)])

    # ---- the listed people's incidents ---------------------------------------------------
    def incidents(self):
        """Flat (owner, incident, flags) of the listed people's window incidents, by (owner, day, id)."""
        I = self.net.incidence
        lo = I.p_indptr[self.P]
        owner, pos = _ranges(lo, I.p_indptr[self.P + 1] - lo)
        inc = I.p_inc[pos].astype(np.int64)
        flags = I.p_flag[pos]
        order = np.lexsort((inc, self.days[inc], owner))      # incident index order is incident_id order
        return owner[order], inc[order], flags[order]

    def roles_json(self, involvements: pd.DataFrame, owner, inc) -> np.ndarray:
        """The sorted roles of each (owner, incident) from the involvements, as a JSON list."""
        from .explain import _isin
        inv = involvements[_isin(involvements["person_id"], self.pids.tolist())]
        k = pd.Index(self.pids).get_indexer(inv["person_id"].to_numpy(dtype=object))
        i = _sorted_lookup(self.net.incident_ids, inv["incident_id"].to_numpy(dtype=object))
        t = pd.DataFrame({"k": k, "i": i, "role": inv["role"].to_numpy(dtype=object)})
        t = t[(t["k"] >= 0) & (t["i"] >= 0)].drop_duplicates()
        t = t.assign(role=t["role"].astype(object))
        t = t.sort_values(["k", "i", "role"], kind="stable")
        key = t["k"].to_numpy(np.int64) * _BIG + t["i"].to_numpy(np.int64)
        first = _first_per(key)
        ukey = key[first]
        grp = np.cumsum(first) - 1
        lists = "[" + _join(_jstr(t["role"].to_numpy(dtype=object)), grp, len(ukey)) + "]"
        q = np.asarray(owner, np.int64) * _BIG + np.asarray(inc, np.int64)
        out = np.full(len(q), "[]", dtype=object)
        if len(ukey):
            j = np.minimum(np.searchsorted(ukey, q), len(ukey) - 1)
            hit = ukey[j] == q
            out[hit] = lists[j[hit]]
        return out

    # ---- co-offending ties ----------------------------------------------------------------
    def neighbours(self, people=None):
        """Flat (owner, neighbour) of the co-offending neighbours of ``people`` (default the listed), CSR order."""
        P = self.P if people is None else np.asarray(people, dtype=np.int64)
        lo = self.co.indptr[P]
        owner, pos = _ranges(lo, self.co.indptr[P + 1] - lo)
        return owner, self.co.indices[pos].astype(np.int64)

    def edge_of(self, a, b) -> np.ndarray:
        """Edge index of each tie {a, b} (-1 if none), by one search in the sorted edge keys."""
        if self._edge_keys is None:
            self._edge_keys = self.co.src.astype(np.int64) * self.n + self.co.dst.astype(np.int64)
        a = np.asarray(a, dtype=np.int64)
        b = np.asarray(b, dtype=np.int64)
        q = np.minimum(a, b) * self.n + np.maximum(a, b)
        keys = self._edge_keys
        if not len(keys):
            return np.full(len(q), -1, dtype=np.int64)
        j = np.minimum(np.searchsorted(keys, q), len(keys) - 1)
        return np.where(keys[j] == q, j, -1).astype(np.int64)

    def edge_text(self, e):
        """Per requested edge: JSON incident_ids list, JSON dates list, the sentence's
        "incident I on D, ..." and the tie's last day."""
        e = np.asarray(e, dtype=np.int64)
        u, inv = np.unique(e, return_inverse=True)
        ok = u >= 0
        ue = np.where(ok, u, 0)
        lo = self.co.ev_indptr[ue].astype(np.int64)
        cnt = np.where(ok, self.co.ev_indptr[ue + 1].astype(np.int64) - lo, 0)
        owner, pos = _ranges(lo, cnt)
        inc = self.co.ev_incident[pos].astype(np.int64)
        order = np.lexsort((inc, self.days[inc], owner))
        owner, inc = owner[order], inc[order]
        iso = _iso(self.days[inc])
        ids = "[" + _join(self.inc_js(inc), owner, len(u)) + "]"
        dates = "[" + _join('"' + iso + '"', owner, len(u)) + "]"
        said = _join("incident " + self.inc_raw(inc) + " on " + iso, owner, len(u))
        last = np.where(ok, self.co.last_day[ue].astype(np.int64), -1)
        return ids[inv], dates[inv], said[inv], last[inv]

    # ---- shootings of a person -----------------------------------------------------------
    def shots(self, people, flag: int):
        """Per person: JSON [{"incident_id", "date"}...], the sentence's "on D in incident I, ...",
        the last day (-1 if none) and whether there is any, for shootings with ``flag`` (victim or
        offending role)."""
        people = np.asarray(people, dtype=np.int64)
        u, inv = np.unique(people, return_inverse=True)
        I = self.net.incidence
        lo = I.p_indptr[u]
        owner, pos = _ranges(lo, I.p_indptr[u + 1] - lo)
        inc = I.p_inc[pos].astype(np.int64)
        keep = ((I.p_flag[pos] & flag) != 0) & self.shooting[inc]
        owner, inc = owner[keep], inc[keep]
        order = np.lexsort((inc, self.days[inc], owner))
        owner, inc = owner[order], inc[order]
        iso = _iso(self.days[inc])
        js = "[" + _join('{"incident_id": ' + self.inc_js(inc) + ', "date": "' + iso + '"}', owner, len(u)) + "]"
        said = _join("on " + iso + " in incident " + self.inc_raw(inc), owner, len(u))
        last = np.full(len(u), -1, dtype=np.int64)
        if len(owner):
            np.maximum.at(last, owner, self.days[inc])
        count = np.bincount(owner, minlength=len(u))
        return js[inv], said[inv], last[inv], count[inv] > 0, (u, owner, inc)

    # ---- paths -----------------------------------------------------------------------------
    def paths(self, owner, nodes: list[np.ndarray], flag: int, kind: str, weight: bool = False):
        """Path records (owner ascending) as JSON objects, and their expiry (end, last shot day)."""
        m = len(owner)
        hops = len(nodes) - 1
        tail = nodes[-1]
        shots_js, shots_said, shots_last, _, _ = self.shots(tail, flag)
        path_js = "[" + self.pid_js(nodes[0])
        for x in nodes[1:]:
            path_js = path_js + ", " + self.pid_js(x)
        path_js = path_js + "]"
        edges, said, lasts = None, None, None
        for h in range(hops):
            a, b = nodes[h], nodes[h + 1]
            ids, dates, txt, last = self.edge_text(self.edge_of(a, b))
            e = '{"between": [' + self.pid_js(a) + ", " + self.pid_js(b) + '], "incident_ids": ' + ids + \
                ', "dates": ' + dates + "}"
            who = "co-offended" if h == 0 else self.pid_raw(a) + " co-offended"
            s = who + " with " + self.pid_raw(b) + " in " + txt
            edges = e if edges is None else edges + ", " + e
            said = s if said is None else said + "; " + s
            lasts = last if lasts is None else np.minimum(lasts, last)
        sentence = said + "; " + self.pid_raw(tail) + f" {kind} " + shots_said + "."
        key = "victim_shot_in" if kind == "was shot" else "shooting_incidents"
        rec = ('{"path": ' + path_js + ', "edges": [' + edges + '], "' + key + '": ' + shots_js +
               ', "sentence": ' + _jstr(sentence))
        has = shots_last >= 0
        end = np.minimum(lasts, shots_last) + self.W + 1
        if weight:
            hl = self.pol.analytics.exposure_half_life_days
            diff = self.as_of - shots_last
            u, inv = np.unique(diff, return_inverse=True)
            w = np.array([round(0.5 ** (int(d) / hl), 6) for d in u], dtype=float)[inv] if m else np.zeros(0)
            rec = rec + ', "weight": ' + _jfloat(w)
        rec = rec + "}"
        return (rec if m else np.zeros(0, dtype=object)), end, shots_last, has

    # ---- components -------------------------------------------------------------------------
    def _first_day_below(self, k, qi, qday, ok, rows, kind, threshold):
        """Among the candidate days ``qday`` of person ``k[qi]`` kept by ``ok``: the days kept and, per
        person, the position among them of the first day whose ``kind`` score is below ``threshold``
        (-1 when none)."""
        qi2, qday2 = qi[ok], qday[ok]
        below = self.scores_on(k[qi2], qday2, rows, kind) < threshold
        first = np.full(len(k), -1, dtype=np.int64)
        hits = np.flatnonzero(below)
        if len(hits):
            owners = qi2[hits]
            f = _first_per(owners)
            first[owners[f]] = hits[f]
        return qday2, first

    def build(self, involvements: pd.DataFrame, rows: pd.DataFrame) -> np.ndarray:
        ex, pol, net, L = self.ex, self.pol, self.net, self.L
        feats = pol.features
        ev: dict[str, np.ndarray] = {}

        # own incidents
        owner, inc, flags = self.incidents()
        roles = self.roles_json(involvements, owner, inc)
        iso = _iso(self.days[inc])
        frag = '{"incident_id": ' + self.inc_js(inc) + ', "date": "' + iso + '", "roles": ' + roles + "}"
        off = (flags & FLAG_OFFENDING) != 0
        vic = (flags & FLAG_VICTIM) != 0
        sh = self.shooting[inc]
        recent = self.days[inc] > self.as_of - feats.recent_days
        masks = {"offending": off, "violent_offending": off & np.asarray(net.inc_violent, bool)[inc],
                 "gun_offending": off & sh, "recent_offending": off & recent, "shooting_victimization": vic & sh}
        for name, m in masks.items():
            ev[name] = '{"incidents": [' + _join(frag[m], owner[m], L) + "]}"
            span = feats.recent_days if name == "recent_offending" else self.W + 1
            self.expiry[name] = (owner[m], self.days[inc[m]] + span, None)

        # degree
        d_own, d_nb = self.neighbours()
        ids, dates, _, last = self.edge_text(self.edge_of(self.P[d_own], d_nb))
        frag = '{"person_id": ' + self.pid_js(d_nb) + ', "incident_ids": ' + ids + ', "dates": ' + dates + "}"
        ev["degree"] = '{"co_offenders": [' + _join(frag, d_own, L) + "]}"
        self.expiry["degree"] = (d_own, last + self.W + 1, None)

        # core number
        kcore = rows["core_number"].to_numpy(dtype=float).astype(np.int64)
        core = ex.core
        keep = (kcore[d_own] != 0) & (core[d_nb] >= kcore[d_own]) if core is not None else \
            np.zeros(len(d_own), bool)
        n_keep = np.bincount(d_own[keep], minlength=L)
        note = np.where(kcore != 0, "in a " + _jint(kcore) + "-core: " + _jint(n_keep) +
                        " of the person's co-offenders also have core number >= " + _jint(kcore),
                        "no co-offenders").astype(object)
        ev["core_number"] = ('{"note": ' + _jstr(note) + ', "core_co_offenders": [' +
                             _join(self.pid_js(d_nb[keep]), d_own[keep], L) + "]}")

        # exposure: distance 1 and 2
        vic1 = self.is_victim[d_nb]
        p1_own, p1_v = d_own[vic1], d_nb[vic1]
        t_own, t_mid, t_v = self.two_step(d_own, d_nb)
        rec1, end1, last1, has1 = self.paths(p1_own, [self.P[p1_own], p1_v], FLAG_VICTIM, "was shot")
        rec2, end2, _, has2 = self.paths(t_own, [self.P[t_own], t_mid, t_v], FLAG_VICTIM, "was shot")
        recd, endd, lastd, hasd = self.paths(p1_own, [self.P[p1_own], p1_v], FLAG_VICTIM, "was shot", weight=True)
        ev["exposure_1"] = '{"paths": [' + _join(rec1, p1_own, L) + "]}"
        ev["exposure_2"] = '{"paths": [' + _join(rec2, t_own, L) + "]}"
        ev["exposure_decayed"] = '{"paths": [' + _join(recd, p1_own, L) + "]}"
        self.expiry["exposure_1"] = (p1_own[has1], end1[has1], None)
        self.expiry["exposure_2"] = (t_own[has2], end2[has2], None)
        self.expiry["exposure_decayed"] = (p1_own[hasd], endd[hasd], lastd[hasd])

        # shooter exposure
        s = self.is_shooter[d_nb]
        s_own, s_b = d_own[s], d_nb[s]
        recs, ends, _, hass = self.paths(s_own, [self.P[s_own], s_b], FLAG_OFFENDING,
                                         "had an offending role in shootings")
        ev["shooter_exposure"] = '{"paths": [' + _join(recs, s_own, L) + "]}"
        self.expiry["shooter_exposure"] = (s_own[hass], ends[hass], None)

        ev["contagion_risk"] = self.contagion(rows, d_own, d_nb)
        ev["group_violence"], ev["group_conflicts"] = self.groups()
        ev["age"] = self.age()

        comps = None
        for name in FEATURES:
            comp = pol.components[name]
            counts_for = ((["call_in", "custom_notifications"] if "enforcement" in comp.counts_for else []) +
                          (["service_referrals"] if "service" in comp.counts_for else []))
            v = rows[name].to_numpy(dtype=float)
            u, inv = np.unique(v, return_inverse=True)
            rule = _jstr(np.array([comp.describe(float(x)) for x in u], dtype=object)[inv]) if L else \
                np.zeros(0, dtype=object)
            c = ('{"name": "' + name + '", "meaning": ' + json.dumps(ex.meanings[name], ensure_ascii=False) +
                 ', "value": ' + _jnum(v) + ', "rule": ' + rule + ', "points": ' +
                 _jfloat(rows[f"points_{name}"].to_numpy(dtype=float)) + ', "counts_for": ' +
                 json.dumps(counts_for) + ', "evidence": ' + ev[name] + "}")
            # the growing text is copied once per component, not twice (comps + ", " made a copy of its own)
            comps = c if comps is None else comps + (", " + c)
        return comps

    def two_step(self, d_own, d_nb):
        """Distance-2 shooting victims: (owner, intermediary, victim), one path per victim through
        the first intermediary in the person's neighbour order, by victim index."""
        r_own, v = self.neighbours(d_nb)               # r_own: row of (owner, m) in d_own/d_nb
        own = d_own[r_own]
        keys_near = np.sort(d_own * _BIG + d_nb)
        ok = self.is_victim[v] & (v != self.P[own]) & ~_member(keys_near, own * _BIG + v)
        r_own, own, v = r_own[ok], own[ok], v[ok]
        order = np.lexsort((r_own, v, own))
        r_own, own, v = r_own[order], own[order], v[order]
        first = _first_per(own * _BIG + v)
        return own[first], d_nb[r_own[first]], v[first]

    def contagion(self, rows: pd.DataFrame, d_own, d_nb) -> np.ndarray:
        ex, L = self.ex, self.L
        bg = rows["contagion_background"].to_numpy(dtype=float) if "contagion_background" in rows else np.zeros(L)
        nw = rows["contagion_network"].to_numpy(dtype=float) if "contagion_network" in rows else np.zeros(L)
        head = ('{"background_per_1000_per_year": ' + _jfloat(_round(bg * 1000, 6)) +
                ', "network_per_1000_per_year": ' + _jfloat(_round(nw * 1000, 6)))
        fit = getattr(ex.an, "contagion", None) if ex.an is not None else None
        if fit is None or not fit.n_events:
            return head + ', "note": "contagion model off or no shootings in the window"}'
        model = json.dumps({"alpha": round(fit.alpha, 6), "mean_delay_days": round(fit.mean_delay, 2)})
        max_lag = self.pol.contagion.max_lag_days
        # every (neighbour row, shooting in which the neighbour was a victim)
        *_, (u, sowner, sinc) = self.shots(d_nb, FLAG_VICTIM)
        # u: distinct neighbours; map each neighbour row to its shots
        pos_u = np.searchsorted(u, d_nb)
        lo = np.searchsorted(sowner, pos_u, side="left")
        hi = np.searchsorted(sowner, pos_u, side="right")
        r, spos = _ranges(lo, hi - lo)
        inc = sinc[spos]
        lag = self.as_of + 1 - self.days[inc]
        ok = (lag > 0) & (lag <= max_lag)
        r, inc, lag = r[ok], inc[ok], lag[ok]
        ul, linv = np.unique(lag, return_inverse=True)
        py = np.array([fit.alpha * fit.beta * math.exp(-fit.beta * int(x)) * 365.25 * 1000 for x in ul])
        g3 = np.array([f"{x:.3g}" for x in py], dtype=object)
        py6 = np.array([round(float(x), 6) for x in py], dtype=float)
        own, b = d_own[r], d_nb[r]
        order = np.lexsort((inc, b, -py6[linv] if len(r) else np.zeros(0), own))
        r, inc, linv, own, b = r[order], inc[order], linv[order], own[order], b[order]
        ids, dates, txt, _ = self.edge_text(self.edge_of(self.P[own], b))
        iso = _iso(self.days[inc])
        bid = self.pid_raw(b)
        sentence = ("co-offended with " + bid + " in " + txt + "; " + bid + " was shot on " + iso +
                    " in incident " + self.inc_raw(inc) + ", adding " + (g3[linv] if len(r) else "") +
                    " per 1,000 per year today.")
        frag = ('{"co_offender": ' + self.pid_js(b) + ', "shot_in": ' + self.inc_js(inc) + ', "date": "' + iso +
                '", "per_1000_per_year": ' + _jfloat(py6[linv] if len(r) else np.zeros(0)) +
                ', "tie_incident_ids": ' + ids + ', "sentence": ' + _jstr(sentence) + "}")
        if not len(r):
            frag = np.zeros(0, dtype=object)
        return head + ', "model": ' + model + ', "contributions": [' + _join(frag, own, L) + "]}"

    def groups(self):
        ex, L = self.ex, self.L
        g = np.asarray(ex.primary, dtype=object)[self.P]
        g_js = _jstr(g)
        # group_violence: the group's shootings, less those counting only through the person's own victimization
        gp = ex.group_pairs                                   # (group, inc) sorted by group, then inc
        gname = gp["group"].to_numpy(dtype=object)
        ginc = gp["inc"].to_numpy(dtype=np.int64)
        first = _first_per(gname)
        names = gname[first]
        start = np.flatnonzero(first)
        sizes = np.diff(np.append(start, len(gname)))
        has = g != ""
        gpos = np.zeros(L, dtype=np.int64)
        if len(names):
            gpos = np.minimum(np.searchsorted(names, g), len(names) - 1)
            has &= names[gpos] == g
        else:
            has[:] = False
        cnt = np.where(has, sizes[gpos] if len(names) else 0, 0)
        owner, pos = _ranges(np.where(has, start[gpos] if len(names) else 0, 0), cnt)
        inc = ginc[pos]
        op = ex.own_pairs
        own_keys = np.sort(op["person"].to_numpy(dtype=np.int64) * _BIG + op["inc"].to_numpy(dtype=np.int64))
        keep = ~_member(own_keys, self.P[owner] * _BIG + inc)
        owner, inc = owner[keep], inc[keep]
        order = np.lexsort((inc, self.days[inc], owner))
        owner, inc = owner[order], inc[order]
        frag = '{"incident_id": ' + self.inc_js(inc) + ', "date": "' + _iso(self.days[inc]) + '"}'
        gv = '{"group": ' + g_js + ', "incidents": [' + _join(frag, owner, L) + "]}"
        self.expiry["group_violence"] = (owner, self.days[inc] + self.pol.features.group_recent_days, None)
        # group_conflicts: each group's conflicts in table order
        conf = np.full(L, "[]", dtype=object)
        c = ex.an.conflicts if ex.an is not None else None
        if c is not None and len(c):
            c = c[c["relation"] == "conflict"].reset_index(drop=True)
            if len(c):
                ga = c["group_a"].to_numpy(dtype=object)
                gb = c["group_b"].to_numpy(dtype=object)
                row = np.arange(len(c))
                self_loop = ga == gb
                grp = np.concatenate([ga, gb[~self_loop]])
                rival = np.concatenate([gb, ga[~self_loop]])
                crow = np.concatenate([row, row[~self_loop]])
                order = np.lexsort((crow, pd.factorize(grp, sort=True)[0]))
                grp, rival, crow = grp[order], rival[order], crow[order]
                import pyarrow as pa
                import pyarrow.compute as pc
                parts = pc.split_pattern(pa.array(c["incident_ids"].astype(str).to_numpy(dtype=object),
                                                  type=pa.large_string()), ";")
                parent = np.asarray(pc.list_parent_indices(parts).to_numpy(zero_copy_only=False), dtype=np.int64)
                items = np.asarray(pc.list_flatten(parts).to_numpy(zero_copy_only=False), dtype=object)
                nz = items != ""
                id_lists = "[" + _join(_jstr(items[nz]), parent[nz], len(c)) + "]"
                frag = ('{"rival": ' + _jval(rival) + ', "source": ' + _jval(c["source"].to_numpy(dtype=object)[crow]) +
                        ', "incident_ids": ' + id_lists[crow] + ', "last_date": ' +
                        _jval(c["last_date"].to_numpy(dtype=object)[crow]) + "}")
                first = np.concatenate([[True], grp[1:] != grp[:-1]])
                ugrp = grp[first]
                gidx = np.cumsum(first) - 1
                joined = "[" + _join(frag, gidx, len(ugrp)) + "]"
                j = np.minimum(np.searchsorted(ugrp, g), len(ugrp) - 1)
                hit = (g != "") & (ugrp[j] == g)
                conf[hit] = joined[j[hit]]
        gc = '{"group": ' + g_js + ', "conflicts": ' + conf + "}"
        return gv, gc

    def age(self) -> np.ndarray:
        ex, L = self.ex, self.L
        out = np.full(L, '{"note": "no persons row: age unknown"}', dtype=object)
        persons = ex.persons_table
        if persons is None:
            return out
        from .explain import _isin
        sub = persons[_isin(persons["person_id"], self.pids.tolist())]
        pr = sub.drop_duplicates("person_id", keep="first").set_index("person_id")
        pos = pr.index.get_indexer(pd.Index(self.pids, dtype=object))
        have = pos >= 0
        s = np.full(int(have.sum()), '{"source": "persons table"', dtype=object)
        for k in ("birth_date", "birth_year"):
            if k in pr.columns:
                vals = pr[k].iloc[pos[have]].astype(object).map(str).to_numpy(dtype=object)
                ok = ~np.isin(vals, ["", "nan", "None", "<NA>"])
                s[ok] = s[ok] + f', "{k}": ' + _jstr(vals[ok])
        out[have] = s + "}"
        return out

    # ---- what would take the person off -------------------------------------------------
    def scores_on(self, q_own, q_day, rows: pd.DataFrame, kind: str) -> np.ndarray:
        """The ``kind`` score of owner ``q_own`` on day ``q_day`` if nothing new happens (as
        :meth:`Explainer._score_on`, every query at once)."""
        pol, ex = self.pol, self.ex
        q_own = np.asarray(q_own, dtype=np.int64)
        q_day = np.asarray(q_day, dtype=np.int64)
        total = np.zeros(len(q_own), dtype=float)
        if not len(q_own):
            return total

        def alive(name):
            own, end, _ = self.expiry[name]
            keys = np.sort(own * _BIG + end)
            hi = np.searchsorted(keys, q_own * _BIG + _BIG, side="left")
            lo = np.searchsorted(keys, q_own * _BIG + q_day, side="right")
            return (hi - lo).astype(float)

        for name in FEATURES:
            comp = pol.components[name]
            if kind not in comp.counts_for:
                continue
            v0 = rows[name].to_numpy(dtype=float)[q_own]
            if name in self.expiry:
                if name == "exposure_decayed":
                    own, end, last = self.expiry[name]
                    hl = pol.analytics.exposure_half_life_days
                    # every (query, item of the query's owner), in the items' (path) order
                    lo = np.searchsorted(own, q_own, side="left")
                    hi = np.searchsorted(own, q_own, side="right")
                    qi, it = _ranges(lo, hi - lo)
                    live = end[it] > q_day[qi]
                    qi, it = qi[live], it[live]
                    diff = q_day[qi] - last[it]
                    u, inv = np.unique(diff, return_inverse=True)
                    terms = np.array([0.5 ** (int(d) / hl) for d in u], dtype=float)[inv] if len(u) else \
                        np.zeros(0)
                    v = np.zeros(len(q_own), dtype=float)
                    np.add.at(v, qi, terms)           # in item order, as Python's sum
                else:
                    v = alive(name)
            elif name == "age":
                yrs = np.floor((q_day - self.as_of) / 365.25)
                v = np.where(v0 == v0, v0 + yrs, v0)
            elif name == "core_number":
                v = np.minimum(v0, alive("degree"))
            elif name == "contagion_risk" and ex.an is not None and getattr(ex.an, "contagion", None):
                fit = ex.an.contagion
                bg = (rows["contagion_background"].to_numpy(dtype=float)[q_own] * 1000
                      if "contagion_background" in rows else np.zeros(len(q_own)))
                u, inv = np.unique(q_day - self.as_of, return_inverse=True)
                decay = np.array([math.exp(-fit.beta * int(d)) for d in u], dtype=float)[inv]
                v = bg + (v0 - bg) * decay
            else:
                v = v0
            total = total + comp.score(v)
        return _round(total, 6)

    def off_list(self, rows: pd.DataFrame, lists: dict) -> np.ndarray:
        pol, L = self.pol, self.L
        # candidate days: every expiry end after the as-of day, per owner, sorted and distinct
        own = np.concatenate([v[0] for v in self.expiry.values()]) if self.expiry else np.zeros(0, np.int64)
        end = np.concatenate([v[1] for v in self.expiry.values()]) if self.expiry else np.zeros(0, np.int64)
        m = end > self.as_of
        key = np.unique(own[m] * _BIG + end[m])
        c_own, c_day = key // _BIG, key % _BIG
        # pairs (person, list) in each person's list order
        pair_own = np.repeat(np.arange(L, dtype=np.int64), [len(x) for x in self.lists_of])
        pair_list = np.array([x for names in self.lists_of for x in names], dtype=object)
        out_frag = np.empty(len(pair_own), dtype=object)
        ranks = {name: df.set_index("person_id")["rank"] for name, df in lists.items()} if lists else {}
        note = json.dumps("the date assumes no new incident, a list of the same size and the same policy; "
                          "the list cut-off also depends on other people's scores")
        for name in ("call_in", "custom_notifications", "service_referrals"):
            sel = np.flatnonzero(pair_list == name)
            if not len(sel):
                continue
            k = pair_own[sel]
            rule = getattr(pol.lists, name)
            kind = "service" if name == "service_referrals" else "enforcement"
            score = rows[f"{kind}_score"].to_numpy(dtype=float)[k]
            threshold = float(rule.min_score)
            single = np.full(len(k), "", dtype=object)
            for c in sorted(n for n in FEATURES if kind in pol.components[n].counts_for):
                pts = rows[f"points_{c}"].to_numpy(dtype=float)[k]
                hit = (pts > 0) & (score - pts < threshold)
                single[hit] = np.where(single[hit] == "", c, single[hit] + ", " + c)
            rk = ranks[name].reindex(self.pids[k]).to_numpy(dtype=float) if name in ranks else np.full(len(k), np.nan)
            # the candidate days of each selected person
            lo = np.searchsorted(c_own, k, side="left")
            hi = np.searchsorted(c_own, k, side="right")
            qi, qpos = _ranges(lo, hi - lo)
            qday = c_day[qpos]
            leave = np.full(len(k), -1, dtype=np.int64)
            why = np.full(len(k), "", dtype=object)
            if kind == "enforcement":
                need = pol.guardrails.min_offending_incidents
                o_own, o_end, _ = self.expiry["offending"]
                o_order = np.lexsort((o_end, o_own))
                o_own, o_end = o_own[o_order], o_end[o_order]
                o_lo = np.searchsorted(o_own, k, side="left")
                o_n = np.searchsorted(o_own, k, side="right") - o_lo
                elig_end = np.full(len(k), self.as_of + 1, dtype=np.int64)
                enough = o_n >= need
                elig_end[enough] = o_end[o_lo[enough] + o_n[enough] - need]
                qday2, first = self._first_day_below(k, qi, qday, qday < elig_end[qi], rows, kind, threshold)
                has = first >= 0
                leave[has] = qday2[first[has]]
                why[has] = f"the enforcement score falls below the policy minimum {threshold:g}"
                leave[~has] = elig_end[~has]
                why[~has] = (f"fewer than {need} incident(s) in an offending role remain "
                             "in the window (guardrail)")
                guards = ["a record of death or incarceration (guardrails)"]
                if pol.guardrails.juveniles == "exclude":
                    guards.append("being under 18")
                lose = np.full(len(k), "", dtype=object)
                lose[single != ""] = _jstr("losing the points of " + single[single != ""] +
                                           f" alone would take the score below {threshold:g}") + ", "
                what = "[" + lose + json.dumps(f"{' or '.join(guards)} would remove the person")
            else:
                sr = pol.lists.service_referrals
                last_v = rows["last_victimization_date"].to_numpy(dtype=object)[k]
                has_v = (last_v != "") & ~pd.isna(last_v)
                recent_end = np.full(len(k), -1, dtype=np.int64)
                if has_v.any():
                    recent_end[has_v] = (np.array([str(x)[:10] for x in last_v[has_v]], dtype="datetime64[D]")
                                         .astype(np.int64) + sr.victim_recent_days + 1)
                qday2, first = self._first_day_below(k, qi, qday, ~(has_v[qi] & (qday < recent_end[qi])), rows,
                                                     kind, threshold)
                has = first >= 0
                d = qday2[first[has]]
                re = recent_end[has]
                leave[has] = np.where(has_v[has] & (re != 0), np.maximum(d, re), d)
                why[has] = "the service score falls below the policy minimum and no recent shooting victimization"
                late = ~has & has_v & (score < threshold)
                leave[late] = recent_end[late]
                why[late] = "the last shooting victimization is no longer recent"
                lose = np.full(len(k), "", dtype=object)
                lose[single != ""] = _jstr("losing the points of " + single[single != ""] +
                                           f" alone would take the service score below {threshold:g}") + ", "
                what = "[" + lose + json.dumps("services are offered, never imposed: the person can decline")
            if name == "call_in":
                what = what + ", " + json.dumps("the group no longer being chosen (recent violence and conflicts "
                                                "decide it), or other members reaching more of the group") + "]"
            else:
                what = what + ", " + json.dumps(f"others scoring higher while the list is full ({rule.size} places)") + "]"
            left = leave >= 0
            leave_js = np.full(len(k), "null", dtype=object)
            leave_js[left] = '"' + _iso(leave[left]) + '"'
            why_js = np.full(len(k), "null", dtype=object)
            why_js[why != ""] = _jstr(why[why != ""])
            why_js[~left] = json.dumps("the evidence stays in the window beyond the dates checked")
            info = ('"' + name + '": {"list_score": ' + _jfloat(score) + ', "policy_minimum": ' +
                    json.dumps(threshold) + ', "margin": ' + _jfloat(_round(score - threshold, 6)) +
                    ', "rank": ' + _jnum(rk) + ', "leaves_on_if_nothing_new": ' + leave_js +
                    ', "leaves_because": ' + why_js + ', "what_would_take_off": ' + what +
                    ', "note": ' + note + "}")
            out_frag[sel] = info
        return "{" + _join(out_frag, pair_own, L) + "}"


def explanation_lines(ex, pids: list[str], lists_of: list[list[str]], involvements: pd.DataFrame,
                      scores: pd.DataFrame, lists: dict | None) -> np.ndarray:
    """The JSON line of every person of ``pids`` (sorted, all in the network), column-wise."""
    L = len(pids)
    if not L:
        return np.zeros(0, dtype=object)
    cols = _Columns(ex, pids, lists_of)
    # the scores rows of the listed people (scores are in network index order, as scores.csv)
    if len(scores) == cols.n and np.array_equal(scores["person_id"].iloc[cols.P].to_numpy(dtype=object), cols.pids):
        rows = scores.iloc[cols.P].reset_index(drop=True)
    else:
        rows = scores.iloc[pd.Index(scores["person_id"].to_numpy(dtype=object)).get_indexer(cols.pids)] \
            .reset_index(drop=True)
    comps = cols.build(involvements, rows)
    off = cols.off_list(rows, lists or {})
    r = rows
    prob = (_jfloat(r["probability_shooting"].to_numpy(dtype=float)) if "probability_shooting" in r
            else np.full(L, "null", dtype=object))
    age = r["age"].to_numpy(dtype=float)
    age_js = np.full(L, "null", dtype=object)
    age_js[age == age] = _jint(age[age == age])
    combos, which = np.unique(np.array(["\x1f".join(x) for x in lists_of], dtype=object), return_inverse=True)
    lists_js = np.array([json.dumps(c.split("\x1f") if c else []) for c in combos], dtype=object)[which]
    tf = np.array(["false", "true"], dtype=object)
    # the components (most of the text: 61 MB at a million people) are copied into the lines once, with the
    # small head and tail made first (one long chain copied them at every "+" after them)
    tail = '], "off_list": ' + off + "}"
    head = ('{"person_id": ' + _jstr(cols.pids) + ', "lists": ' + lists_js + ', "score": ' +
            _jfloat(r["score"].to_numpy(dtype=float)) + ', "probability_shooting": ' + prob +
            ', "enforcement_score": ' + _jfloat(r["enforcement_score"].to_numpy(dtype=float)) +
            ', "service_score": ' + _jfloat(r["service_score"].to_numpy(dtype=float)) +
            ', "group": ' + _jval(r["group"].to_numpy(dtype=object)) +
            ', "guardrails": {"enforcement_eligible": ' + tf[r["enforcement_eligible"].to_numpy(dtype=bool).astype(int)] +
            ', "exclusion": ' + _jval(r["enforcement_exclusion"].to_numpy(dtype=object)) +
            ', "juvenile": ' + tf[r["juvenile"].to_numpy(dtype=bool).astype(int)] + ', "age": ' + age_js +
            '}, "components": [')
    lines = head + comps
    del comps, head
    return lines + tail
