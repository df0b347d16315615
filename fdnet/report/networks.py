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
>>> d["people"], [t[:3] for t in d["edges"]]
(['A', 'B', 'C', 'V'], [[0, 1, 0], [0, 3, 1], [1, 2, 0]])
"""
from __future__ import annotations

import math
from collections import defaultdict
from datetime import date
from functools import lru_cache

import pandas as pd

LIST_NAMES = ("call_in", "custom_notifications", "service_referrals")
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


def ego_data(edges: pd.DataFrame, people: list[str], *, scores: pd.DataFrame | None,
             explanations: dict[str, dict], listed: dict[str, list[tuple[str, int]]] | None = None) -> dict:
    """One JSON-ready dict with every tie the ego networks of ``people`` need.

    ``explanations`` maps person_id to its explanations.jsonl object (may be
    empty); each listed person carries their score components from it.
    """
    adj = Adjacency(edges)
    rows: set[int] = set()
    everyone: set[str] = set(people)
    for p in people:
        ball = ego_ball(adj, p)
        everyone |= ball
        rows.update(adj.ties_among(ball))
    ids = sorted(everyone)
    index = {p: i for i, p in enumerate(ids)}
    group_of, score_of = _person_attributes(scores, ids)
    named = _named_scores(scores, people)
    groups = sorted({g for g in group_of.values() if g})
    gindex = {g: i for i, g in enumerate(groups)}
    ties = sorted(adj.tie(i, index) for i in rows)
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
    return {"people": ids, "groups": groups, "group": [gindex.get(group_of.get(p, ""), -1) for p in ids],
            "score": [score_of.get(p, 0) for p in ids], "edges": ties, "egos": egos,
            "meanings": dict(sorted(meanings.items())), "base": BASE}


def _named_scores(scores: pd.DataFrame | None, people: list[str]) -> dict[str, list]:
    """Per listed person: [enforcement score, service score, total, probability] (None when absent),
    so the ego panel names the score each list ranks by and the risk estimate as a probability."""
    if scores is None or "person_id" not in scores.columns:
        return {}
    s = scores[scores["person_id"].isin(set(people))]
    cols = ("enforcement_score", "service_score", "score", "probability_shooting")
    vals = {c: (s[c].tolist() if c in s.columns else [None] * len(s)) for c in cols}
    return {pid: [None if vals[c][i] in (None, "") else _num(vals[c][i]) for c in cols]
            for i, pid in enumerate(s["person_id"].tolist())}


def _person_attributes(scores: pd.DataFrame | None, ids) -> tuple[dict[str, str], dict[str, float]]:
    if scores is None or "person_id" not in scores.columns:
        return {}, {}
    want = set(ids)
    s = scores[scores["person_id"].isin(want)]
    groups = dict(zip(s["person_id"], s["group"])) if "group" in s.columns else {}
    sc = dict(zip(s["person_id"], (_num(v) for v in s["score"]))) if "score" in s.columns else {}
    return groups, sc


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


def group_network(edges: pd.DataFrame, scores: pd.DataFrame, groups: list[str],
                  listed: dict[str, list[tuple[str, int]]]) -> dict:
    """Members of ``groups`` (their primary group in scores.csv) and every tie among them."""
    gindex = {g: i for i, g in enumerate(groups)}
    s = scores[scores["group"].isin(set(groups))]
    s = s.sort_values(["group", "person_id"], key=lambda c: c.map(gindex) if c.name == "group" else c,
                      kind="stable")
    ids = s["person_id"].tolist()
    index = {p: i for i, p in enumerate(ids)}
    nodes = []
    for pid, g, sc in zip(ids, s["group"].tolist(), s["score"].tolist() if "score" in s.columns else [0] * len(ids)):
        mask = sum(LIST_BITS[n] for n, _ in listed.get(pid, []))
        nodes.append([pid, gindex[g], _num(sc), mask])
    adj = Adjacency(edges)
    ties = sorted(adj.tie(i, index) for i in range(len(adj.a)) if adj.a[i] in index and adj.b[i] in index)
    return {"groups": groups, "nodes": nodes, "edges": ties, "base": BASE}


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
