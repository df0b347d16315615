"""Who was treated when, who could have been, and what each of them looked like on that day.

An evaluation compares each treated person with people who were *eligible at the same date* and
not treated. This module builds, from the validated records, everything that comparison needs,
as arrays over one person numbering (:class:`fdnet.evaluate.events.EventIndex`):

* :func:`treatments`: each person's first intervention of a kind (the *index date*);
* :class:`Context`: the records indexed once (events, co-offending ties with the day each began,
  the day each person was first shot, group membership), so that :meth:`Context.covariates` gives
  the covariates of any (person, day) pairs in one vectorised pass, with no loop per person;
* :func:`candidates`: per monthly cohort of treated people, the eligible untreated people on the
  cohort's day (at most ``max_comparisons_per_treated`` per treated person, drawn with a fixed seed).

Covariates (all measured strictly before the index day; docs/evaluation.md): offending, violent
offending, shooting involvement and victimisation counts in the prior year, offending in the prior
90 days, days since the last offending involvement, all offending before, distinct co-offenders,
co-offenders who had been shot (exposure), shootings in the person's group in the prior year, age
and sex. Demographics are used here only to make the comparison fair; they never score anybody.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..graph.analytics import is_male
from ..graph.groups import leiden_communities
from ..graph.layers import build_network
from .events import NO_DAY, EventIndex

#: covariate name -> what it measures (on the index day, from records dated before it)
COVARIATES = {
    "offending_365": "offending involvements in the 365 days before",
    "offending_90": "offending involvements in the 90 days before",
    "violent_365": "violent incidents as offender in the 365 days before",
    "shooting_365": "shootings (shot or was shot) in the 365 days before",
    "shot_365": "times shot in the 365 days before",
    "victim_365": "victimisations of any kind in the 365 days before",
    "offending_all": "offending involvements ever before (in the records kept)",
    "days_since_offending": "days since the last offending involvement (capped at 1,095)",
    "co_offenders": "distinct co-offenders before",
    "exposure": "co-offenders who had been shot before",
    "co_offenders_offending_365": "offending involvements of the person's co-offenders in the 365 days before",
    "co_offenders_shooting_365": "shootings of the person's co-offenders (shot or was shot) in the 365 days before",
    "group_shootings_365": "shootings in the person's group in the 365 days before",
    "age": "age in years (median when unknown)",
    "age_missing": "1 when the age is unknown",
    "male": "1 when recorded male",
}
_CAP_DAYS = 1095


def _days_of(dates: pd.Series) -> np.ndarray:
    d = pd.to_datetime(dates.astype(str).str[:10], errors="coerce", format="%Y-%m-%d")
    return ((d - pd.Timestamp("1970-01-01")).dt.days).to_numpy(dtype=float)


def treatments(interventions: pd.DataFrame | None, kind: str) -> pd.DataFrame:
    """Each person's first intervention of ``kind``: person_id, day (sorted by person_id).

    >>> iv = pd.DataFrame({"person_id": ["B", "A", "A"], "kind": ["k", "k", "k"],
    ...                    "date": ["2024-01-05", "2024-03-01", "2024-02-01"]})
    >>> treatments(iv, "k").to_dict("list")
    {'person_id': ['A', 'B'], 'day': [19754, 19727]}
    """
    if interventions is None or not len(interventions):
        return pd.DataFrame({"person_id": pd.Series([], dtype=object), "day": pd.Series([], dtype=np.int64)})
    iv = interventions[interventions["kind"].astype(str) == kind]
    day = _days_of(iv["date"])
    t = pd.DataFrame({"person_id": iv["person_id"].astype(str).to_numpy(), "day": day})
    t = t[np.isfinite(t["day"])]
    t = t.groupby("person_id", sort=True)["day"].min().reset_index()
    t["day"] = t["day"].astype(np.int64)
    return t


def first_any_day(interventions: pd.DataFrame | None, ev: EventIndex) -> np.ndarray:
    """Per person code, the day of their first intervention of any kind (``NO_DAY`` when none)."""
    out = np.full(len(ev.person_ids), NO_DAY, np.int64)
    if interventions is None or not len(interventions):
        return out
    day = _days_of(interventions["date"])
    code = ev.code_of(interventions["person_id"].astype(str).to_numpy())
    ok = (code >= 0) & np.isfinite(day)
    np.minimum.at(out, code[ok], day[ok].astype(np.int64))
    return out


@dataclass
class Context:
    """The records indexed for evaluation (one numbering of persons: ``ev.person_ids``)."""

    ev: EventIndex
    tie_keys: np.ndarray          # sorted person_code * span + (tie start - day0), both directions
    exposure_keys: np.ndarray     # sorted person_code * span + (day the co-offender was shot, if after the tie)
    nb_src: np.ndarray            # directed co-offending ties: person code, neighbour code, tie's first day
    nb_dst: np.ndarray
    nb_day: np.ndarray
    group: np.ndarray             # per person code: group number (-1 none)
    group_shooting_keys: np.ndarray   # sorted group * span + shooting day (one per group and incident)
    group_names: np.ndarray
    birth_day: np.ndarray         # per person code, float days (NaN unknown)
    male: np.ndarray

    @classmethod
    def build(cls, rec, *, extra_ids=None, seed: int = 42) -> "Context":
        inc, inv = rec.incidents, rec.involvements
        ev = EventIndex.build(inc, inv, extra_ids=extra_ids)
        n = len(ev.person_ids)
        # every co-offending tie in the records kept, with the day it began (no window: the
        # evaluation measures each person on their own index day)
        first = int(inc["day"].min()) if len(inc) else rec.as_of_day
        net = build_network(inc, inv, as_of_day=rec.as_of_day, window_days=rec.as_of_day - first + 1,
                            half_life_days=365.0)
        lay = net.layers["co_offending"]
        net_code = ev.code_of(np.asarray(net.person_ids).astype(str))
        a = net_code[lay.src.astype(np.int64)]
        b = net_code[lay.dst.astype(np.int64)]
        fd = lay.first_day.astype(np.int64)
        src, dst, day = np.concatenate([a, b]), np.concatenate([b, a]), np.concatenate([fd, fd])
        order = np.lexsort((day, dst, src))
        src, dst, day = src[order], dst[order], day[order]
        tie_keys = np.sort(src * ev.span + np.clip(day - ev.day0, 0, ev.span - 1))
        # exposure: the co-offender's first shooting victimisation, counted from the later of the
        # tie's start and that day
        first_shot = ev.first_after("shot", np.arange(n), np.full(n, ev.day0 - 1))
        t = np.maximum(day, first_shot[dst]) if len(dst) else day
        ok = t < NO_DAY
        exposure_keys = np.sort(src[ok] * ev.span + np.clip(t[ok] - ev.day0, 0, ev.span - 1))

        # groups: the group audit where it names the person, else the detected community
        group = np.full(n, -1, np.int64)
        names: list[str] = []
        comm = leiden_communities(net.n_persons, lay, resolution=1.0, seed=seed)
        sizes = np.bincount(comm[comm >= 0]) if (comm >= 0).any() else np.zeros(0, np.int64)
        keep = (comm >= 0) & (sizes[np.maximum(comm, 0)] >= 3 if len(sizes) else False)
        uniq = np.unique(comm[keep])
        group[net_code[keep]] = np.searchsorted(uniq, comm[keep])
        names = [f"detected {i + 1}" for i in range(len(uniq))]
        if rec.groups is not None and len(rec.groups):
            g = rec.groups.drop_duplicates("person_id", keep="first")
            gn = np.unique(g["group"].astype(str).to_numpy())
            code = ev.code_of(g["person_id"].astype(str).to_numpy())
            ok = code >= 0
            group[code[ok]] = len(names) + np.searchsorted(gn, g["group"].astype(str).to_numpy()[ok])
            names += [str(x) for x in gn]
        gkeys = group_event_keys(ev, group, "shooting")
        birth = np.full(n, np.nan)
        male = np.zeros(n)
        p = rec.persons
        if p is not None and len(p):
            code = ev.code_of(p["person_id"].astype(str).to_numpy())
            ok = code >= 0
            if "birth_date" in p:
                bd = _days_of(p["birth_date"].fillna(""))
                birth[code[ok]] = bd[ok]
            if "birth_year" in p:
                by = pd.to_numeric(p["birth_year"], errors="coerce").to_numpy(dtype=float)
                mid = (by - 1970) * 365.25 + 181
                cur = birth[code[ok]]
                birth[code[ok]] = np.where(np.isnan(cur), mid[ok], cur)
            if "sex" in p:
                male[code[ok]] = is_male(p["sex"].to_numpy(dtype=object))[ok].astype(float)
        return cls(ev, tie_keys, exposure_keys, src, dst, day, group, gkeys, np.asarray(names, dtype=object),
                   birth, male)

    def _window(self, keys: np.ndarray, code, start, end) -> np.ndarray:
        ev = self.ev
        lo = np.searchsorted(keys, ev._key(code, start))
        hi = np.searchsorted(keys, ev._key(code, end))
        return (hi - lo).astype(float)

    def covariates(self, code: np.ndarray, day: np.ndarray) -> pd.DataFrame:
        """The :data:`COVARIATES` of persons ``code`` on days ``day`` (records strictly before the day)."""
        ev = self.ev
        code = np.asarray(code, dtype=np.int64)
        day = np.asarray(day, dtype=np.int64)
        y1 = day - 365
        cnt = ev.count
        last = ev.last_before("offending", code, day)
        age = (day - self.birth_day[code]) / 365.25
        age = np.where((age >= 0) & (age < 120), age, np.nan)
        known = np.isfinite(age)
        med = float(np.median(age[known])) if known.any() else 0.0
        g = self.group[code]
        gs = np.where(g >= 0, self._window(self.group_shooting_keys, np.maximum(g, 0), y1, day), 0.0)
        # the co-offenders' own recent activity (what drives exposure in a network): one row per
        # (person, co-offender) tie begun before the day, counted and summed per person
        owner, nb = self.neighbours_before(code, day)
        nb_off = np.bincount(owner, weights=cnt("offending", nb, y1[owner], day[owner]), minlength=len(code))
        nb_sh = np.bincount(owner, weights=cnt("shooting", nb, y1[owner], day[owner]), minlength=len(code))
        return pd.DataFrame({
            "offending_365": cnt("offending", code, y1, day).astype(float),
            "offending_90": cnt("offending", code, day - 90, day).astype(float),
            "violent_365": cnt("violent_offending", code, y1, day).astype(float),
            "shooting_365": cnt("shooting", code, y1, day).astype(float),
            "shot_365": cnt("shot", code, y1, day).astype(float),
            "victim_365": cnt("victim", code, y1, day).astype(float),
            "offending_all": cnt("offending", code, np.full(len(code), ev.day0), day).astype(float),
            "days_since_offending": np.minimum(day - last, _CAP_DAYS).astype(float),
            "co_offenders": self._window(self.tie_keys, code, np.full(len(code), ev.day0), day),
            "exposure": self._window(self.exposure_keys, code, np.full(len(code), ev.day0), day),
            "co_offenders_offending_365": nb_off.astype(float),
            "co_offenders_shooting_365": nb_sh.astype(float),
            "group_shootings_365": gs,
            "age": np.where(known, age, med),
            "age_missing": (~known).astype(float),
            "male": self.male[code],
        })

    def eligible(self, day: int, eligibility_days: int) -> np.ndarray:
        """Codes of the people with an offending or victim involvement in ``[day - eligibility_days, day)``."""
        k = self.ev.keys["acting"]
        d = k % self.ev.span + self.ev.day0
        return np.unique(k[(d >= day - eligibility_days) & (d < day)] // self.ev.span)

    def neighbours_before(self, code: np.ndarray, day: np.ndarray):
        """Directed ties (treated index i, neighbour code) of ``code[i]`` begun before ``day[i]``."""
        code = np.asarray(code, dtype=np.int64)
        lo = np.searchsorted(self.nb_src, code, side="left")
        hi = np.searchsorted(self.nb_src, code, side="right")
        cnt = hi - lo
        owner = np.repeat(np.arange(len(code)), cnt)
        # the ties of each person are contiguous in nb_src order: one ramp per person, without a loop
        idx = np.arange(int(cnt.sum()), dtype=np.int64) + np.repeat(lo - (np.cumsum(cnt) - cnt), cnt)
        ok = self.nb_day[idx] < np.asarray(day, dtype=np.int64)[owner]
        return owner[ok], self.nb_dst[idx][ok]


def group_event_keys(ev: EventIndex, group: np.ndarray, kind: str) -> np.ndarray:
    """Sorted keys ``group * span + day``, one per (group, incident) of members' events of ``kind``.

    An incident with three members of one group counts once for the group.
    """
    k, inc = ev.keys[kind], ev.incidents[kind]
    g = group[k // ev.span]
    m = g >= 0
    pair = np.unique(g[m] * (len(ev.incident_ids) + 1) + inc[m])
    gg, ii = pair // (len(ev.incident_ids) + 1), pair % (len(ev.incident_ids) + 1)
    day = (k % ev.span)[m]
    # the day of each (group, incident): any member's event of that incident has it
    inc_day = np.zeros(len(ev.incident_ids) + 1, np.int64)
    inc_day[inc[m]] = day
    return np.sort(gg * ev.span + inc_day[ii])


def cohort_of(day: np.ndarray) -> np.ndarray:
    """The calendar month (``YYYY-MM`` as an integer months since 1970) of each day."""
    return np.asarray(day, dtype="datetime64[D]").astype("datetime64[M]").astype(np.int64)


def candidates(ctx: Context, treated_code: np.ndarray, treated_day: np.ndarray, excluded: np.ndarray, *,
               eligibility_days: int, max_per_treated: int, seed: int):
    """The untreated comparison candidates of each monthly cohort of treated people.

    Returns ``(code, day, cohort)`` arrays. A cohort's candidates are measured on the cohort's
    median treated index day. ``excluded``: per person code, True for anyone who must not be a
    comparison (treated with any intervention before the horizon ends).
    """
    rng = np.random.default_rng(seed)
    cohort = cohort_of(treated_day)
    out_c, out_d, out_k = [], [], []
    # one pass per cohort month (a few dozen at most), each vectorised over all persons
    for k in np.unique(cohort):
        days = np.sort(treated_day[cohort == k])
        d = int(days[(len(days) - 1) // 2])
        el = ctx.eligible(d, eligibility_days)
        el = el[~excluded[el]]
        cap = max_per_treated * len(days)
        if len(el) > cap:
            el = np.sort(rng.choice(el, size=cap, replace=False))
        out_c.append(el)
        out_d.append(np.full(len(el), d, np.int64))
        out_k.append(np.full(len(el), k, np.int64))
    if not out_c:
        z = np.zeros(0, np.int64)
        return z, z, z
    return np.concatenate(out_c), np.concatenate(out_d), np.concatenate(out_k)
