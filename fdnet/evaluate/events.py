"""Who had which event on which day: sorted integer keys, so any person's count in any window is two binary searches.

An evaluation asks the same question thousands of times at different dates: how many violent
incidents did this person have in the 365 days before *their* intervention, and in the year after?
:class:`EventIndex` answers all of them at once. Each kind of event (an offending involvement, a
shooting in which the person shot or was shot, ...) is one sorted ``int64`` array of keys
``person_code * span + (day - first_day)``: the events of one person are contiguous and in date
order, so the number of events of person ``p`` in the days ``[a, b)`` is
``searchsorted(key(p, b)) - searchsorted(key(p, a))``, vectorised over any number of (person,
window) pairs. Each (incident, person) counts once per kind, whatever roles the person held in it.

>>> import pandas as pd
>>> inc = pd.DataFrame({"incident_id": ["I1", "I2", "I3"], "day": [10, 20, 30],
...                     "gun": [True, False, False], "violent": [True, True, False]})
>>> inv = pd.DataFrame({"incident_id": ["I1", "I1", "I2", "I3"], "person_id": ["A", "B", "A", "A"],
...                     "role": ["offender", "victim", "suspect", "arrestee"]})
>>> ev = EventIndex.build(inc, inv)
>>> ev.person_ids.tolist()
['A', 'B']
>>> ev.count("offending", np.array([0, 0]), np.array([0, 25]), np.array([40, 40])).tolist()
[3, 1]
>>> ev.count("shooting", np.array([0, 1]), np.array([0, 0]), np.array([40, 40])).tolist()
[1, 1]
>>> ev.first_after("offending", np.array([0]), np.array([10])).tolist()   # the first event after day 10
[20]
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..records.schema import OFFENDING_ROLES

#: the kinds of event indexed, with what each counts (docs/evaluation.md)
EVENT_KINDS = {
    "offending": "an incident in which the person held an offending role (offender, suspect, arrestee)",
    "violent": "a violent incident in which the person held an offending role or was a victim",
    "violent_offending": "a violent incident in which the person held an offending role",
    "shooting": "a shooting (gun, at least one victim) in which the person shot or was shot "
                "(an offending role or a victim)",
    "shot": "a shooting in which the person was a victim",
    "victim": "any incident in which the person was a victim",
    "acting": "an incident in which the person held an offending role or was a victim",
    "any": "any involvement in any role",
}
NO_DAY = np.iinfo(np.int64).max // 4


@dataclass(frozen=True)
class EventIndex:
    """Sorted event keys per kind over one person numbering (``person_ids``, ascending)."""

    person_ids: np.ndarray        # person IDs (NumPy strings), sorted
    keys: dict                    # kind -> sorted int64 keys code * span + (day - day0)
    incidents: dict               # kind -> the incident number (position in incident_ids) of each key
    incident_ids: np.ndarray      # sorted incident IDs
    day0: int
    span: int
    first_day: int                # the earliest incident day in the records
    last_day: int

    @classmethod
    def build(cls, incidents: pd.DataFrame, involvements: pd.DataFrame,
              extra_ids: np.ndarray | None = None) -> "EventIndex":
        """Index validated records (``incidents`` with ``day``, ``gun``, ``violent``; involvements).

        ``extra_ids``: more person IDs to number (interventions naming people without records), so
        every ID has a code.
        """
        inc_ids = incidents["incident_id"].to_numpy(dtype=object)
        inc_day = incidents["day"].to_numpy(dtype=np.int64)
        order = np.argsort(inc_ids, kind="stable")
        inc_ids, inc_day = inc_ids[order], inc_day[order]
        gun = incidents["gun"].to_numpy(dtype=bool)[order] if "gun" in incidents else np.zeros(len(order), bool)
        violent = (incidents["violent"].to_numpy(dtype=bool)[order] if "violent" in incidents
                   else np.zeros(len(order), bool))
        pos = np.searchsorted(inc_ids, involvements["incident_id"].to_numpy(dtype=object))
        pos = np.minimum(pos, max(len(inc_ids) - 1, 0))
        found = (inc_ids[pos] == involvements["incident_id"].to_numpy(dtype=object)) if len(inc_ids) else \
            np.zeros(len(involvements), bool)
        pids = involvements["person_id"].to_numpy(dtype=object)[found]
        role = involvements["role"].to_numpy(dtype=object)[found]
        inc_code = pos[found]
        off = np.isin(role, list(OFFENDING_ROLES))
        vic = role == "victim"
        # a shooting: a gun incident with at least one victim (CONTRACT.md section 1)
        has_victim = np.zeros(len(inc_ids), bool)
        has_victim[inc_code[vic]] = True
        shooting = gun & has_victim
        ids = pids if extra_ids is None else np.concatenate([pids, np.asarray(extra_ids, dtype=object)])
        person_ids = np.unique(ids.astype(str)) if len(ids) else np.array([], dtype=str)
        code = np.searchsorted(person_ids, pids.astype(str)) if len(pids) else np.array([], np.int64)
        day = inc_day[inc_code]
        day0 = int(day.min()) if len(day) else 0
        last = int(day.max()) if len(day) else 0
        span = last - day0 + 3                       # room for a window end one past the last day
        masks = {
            "offending": off,
            "violent": violent[inc_code] & (off | vic),
            "violent_offending": violent[inc_code] & off,
            "shooting": shooting[inc_code] & (off | vic),
            "shot": shooting[inc_code] & vic,
            "victim": vic,
            "acting": off | vic,
            "any": np.ones(len(code), bool),
        }
        # one event per (incident, person): the same person as suspect and arrestee counts once. The
        # (person, incident) pairs are sorted once; each kind is a mask over the distinct pairs, whose
        # role flags are OR-ed together
        width = len(inc_ids) + 1
        pair = code.astype(np.int64) * width + inc_code
        order = np.argsort(pair, kind="stable")
        ps = pair[order]
        first = np.flatnonzero(np.r_[True, ps[1:] != ps[:-1]]) if len(ps) else np.zeros(0, np.int64)
        flags = np.zeros(len(pair), np.int64)
        for bit, m in enumerate(masks.values()):
            flags |= m.astype(np.int64) << bit
        uflags = np.bitwise_or.reduceat(flags[order], first) if len(ps) else np.zeros(0, np.int64)
        upair = ps[first]
        c_all, i_all = upair // width, upair % width
        k_all = c_all * span + (inc_day[i_all] - day0)     # already sorted by person, then incident
        kord = np.lexsort((i_all, k_all))
        k_all, i_all, uflags = k_all[kord], i_all[kord], uflags[kord]
        keys, incs = {}, {}
        for bit, kind in enumerate(masks):
            m = (uflags >> bit) & 1 == 1
            keys[kind], incs[kind] = k_all[m], i_all[m]
        return cls(person_ids, keys, incs, inc_ids, day0, span, day0, last)

    def code_of(self, ids) -> np.ndarray:
        """The code of each ID, -1 for an ID the index does not know."""
        ids = np.asarray(ids).astype(str)
        if not len(self.person_ids):
            return np.full(len(ids), -1, np.int64)
        pos = np.minimum(np.searchsorted(self.person_ids, ids), len(self.person_ids) - 1)
        return np.where(self.person_ids[pos] == ids, pos, -1).astype(np.int64)

    def _key(self, code: np.ndarray, day: np.ndarray) -> np.ndarray:
        d = np.clip(np.asarray(day, dtype=np.int64) - self.day0, 0, self.span - 1)
        return np.asarray(code, dtype=np.int64) * self.span + d

    def count(self, kind: str, code: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        """Events of ``kind`` of each person ``code[i]`` on days ``start[i] <= day < end[i]``."""
        k = self.keys[kind]
        code = np.asarray(code, dtype=np.int64)
        lo = np.searchsorted(k, self._key(code, start), side="left")
        hi = np.searchsorted(k, self._key(code, end), side="left")
        return np.maximum(hi - lo, 0).astype(np.int64)

    def first_after(self, kind: str, code: np.ndarray, day: np.ndarray) -> np.ndarray:
        """The day of each person's first event of ``kind`` strictly after ``day`` (``NO_DAY`` when none)."""
        k = self.keys[kind]
        code = np.asarray(code, dtype=np.int64)
        pos = np.searchsorted(k, self._key(code, np.asarray(day, dtype=np.int64) + 1), side="left")
        ok = pos < len(k)
        got = np.where(ok, k[np.minimum(pos, max(len(k) - 1, 0))] if len(k) else 0, -1)
        same = ok & (got // self.span == code)
        return np.where(same, got % self.span + self.day0, NO_DAY).astype(np.int64)

    def last_before(self, kind: str, code: np.ndarray, day: np.ndarray) -> np.ndarray:
        """The day of each person's last event of ``kind`` strictly before ``day`` (-``NO_DAY`` when none)."""
        k = self.keys[kind]
        code = np.asarray(code, dtype=np.int64)
        pos = np.searchsorted(k, self._key(code, day), side="left") - 1
        ok = pos >= 0
        got = np.where(ok, k[np.maximum(pos, 0)] if len(k) else 0, -1)
        same = ok & (got // self.span == code)
        return np.where(same, got % self.span + self.day0, -NO_DAY).astype(np.int64)

    def persons_with(self, kind: str) -> np.ndarray:
        """Codes of the persons with at least one event of ``kind`` (sorted)."""
        return np.unique(self.keys[kind] // self.span)
