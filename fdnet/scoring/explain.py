"""Explanations: each listed person's components, points and evidence.

Every number traces to input rows: the incidents (IDs, dates, the person's
roles) behind a count, the co-offenders behind the degree, and for exposure
and contagion the path through the co-offending network with the incidents
on each edge and the shooting in which the victim was shot, told as a
sentence ("co-arrested with P in incident I on D; P was shot on E in
incident J").

Each explanation also says what would take the person off each list they are
on, and the date they would leave it if nothing new happened: the evidence
ages out of the window (and recent-activity counts out of their shorter
windows) on known dates, so the future score is recomputed at each of those
dates with the same policy.
"""
from __future__ import annotations

import math
import re
from functools import cached_property

import numpy as np
import pandas as pd

from ..graph.layers import FLAG_OFFENDING, FLAG_VICTIM, Network
from ..records.validate import day_to_iso
from .features import FEATURES, group_shooting_pairs, group_shootings_dict, own_victimization_pairs
from ..policy import COMPONENT_DOCS, Policy

ENFORCEMENT_LISTS = ("call_in", "custom_notifications")


_POLICY_KEY = re.compile(r"\b(features|analytics|contagion|lists|guardrails|calibration|network|groups)"
                         r"((?:\.[a-z_]+)+)")


def policy_words(text: str, policy: Policy) -> str:
    """``text`` with every dotted policy key replaced by the value this run used.

    >>> from fdnet.policy import Policy
    >>> policy_words("in the last features.recent_days days", Policy())
    'in the last 180 days'
    >>> policy_words("unknown.key stays", Policy())
    'unknown.key stays'
    """
    eff = policy.effective()

    def sub(m):
        v = eff.get(m.group(1))
        for part in m.group(2).strip(".").split("."):
            if not isinstance(v, dict) or part not in v:
                return m.group(0)
            v = v[part]
        return f"{v:g}" if isinstance(v, float) else str(v)
    return _POLICY_KEY.sub(sub, text)


def component_meaning(name: str, policy: Policy) -> str:
    """What a component measures, in words and this run's numbers (no raw policy keys).

    >>> from fdnet.policy import Policy
    >>> component_meaning("group_violence", Policy())[:40]
    'shootings in the last 365 days with a me'
    """
    text = COMPONENT_DOCS[name]
    if name == "age":
        comp = policy.components["age"]
        miss = getattr(comp, "missing_points", None)
        text = text.replace("(unknown: missing_points)",
                            f"(unknown age: {miss:g} points)" if isinstance(miss, (int, float)) else "")
    return policy_words(text, policy).strip()


def _num(v):
    """A JSON-friendly number: int when whole, None when missing."""
    v = float(v)
    if v != v:
        return None
    return int(v) if v.is_integer() else round(v, 6)


def _isin(col: pd.Series, values) -> np.ndarray:
    """``col.isin(values)`` as one Arrow kernel (pandas' Arrow-string isin walks the values in Python)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    arr = pa.array(col.to_numpy(dtype=object) if col.dtype == object else col, from_pandas=True)
    if not pa.types.is_string(arr.type) and not pa.types.is_large_string(arr.type):
        return col.isin(list(values)).to_numpy(dtype=bool)
    mask = pc.is_in(arr, value_set=pa.array([str(v) for v in values], type=arr.type))
    return mask.to_numpy(zero_copy_only=False).astype(bool)


class Explainer:
    """Builds explanation records for persons of one run.

    Everything per person is read from the incidence and layer arrays with
    NumPy slices (no per-person DataFrames): a run lists thousands of people.
    """

    def __init__(self, net: Network, involvements: pd.DataFrame, scores: pd.DataFrame, policy: Policy,
                 persons_needed: list[str], *, analytics=None, persons: pd.DataFrame | None = None,
                 lists: dict[str, pd.DataFrame] | None = None):
        self.net = net
        self.policy = policy
        need = scores[_isin(scores["person_id"], persons_needed)]
        self.rows = {r["person_id"]: r for r in need.to_dict("records")}
        inv = involvements[_isin(involvements["person_id"], persons_needed)]
        self.roles: dict = {}
        for inc_id, pid, role in zip(inv["incident_id"].to_numpy(), inv["person_id"].to_numpy(),
                                     inv["role"].to_numpy()):
            self.roles.setdefault((inc_id, pid), set()).add(role)
        self.co = net.layers["co_offending"]
        self.victims = net.shooting_victims()
        self.shooting = net.shooting_incidents()
        self.days = np.asarray(net.inc_day)
        self._vic_cache: dict[int, list] = {}
        self.primary = scores["group"].to_numpy(dtype=object)       # scores are in person-index order
        self.core = scores["core_number"].to_numpy() if "core_number" in scores else None
        self.an = analytics
        self.persons_table = persons
        self._persons = None
        self.lists = lists or {}
        I = net.incidence
        off = (I.flags & FLAG_OFFENDING) != 0
        self.shooter_mask = np.zeros(net.n_persons, dtype=bool)
        self.shooter_mask[I.person[off & self.shooting[I.inc]]] = True
        since = net.as_of_day - policy.features.group_recent_days + 1
        self.group_pairs = group_shooting_pairs(net, self.primary, since)        # (group, inc), sorted
        self.own_pairs = own_victimization_pairs(net, self.primary, since)      # (person, inc)
        self.meanings = {name: component_meaning(name, policy) for name in FEATURES}
        self._edge_cache: dict[tuple[int, int], tuple[list[str], list[str], int]] = {}
        self._ages = self._age_evidence_of(self.persons, persons_needed) if len(persons_needed) else {}

    # --- per-person lookups of the one-person path (built on first use) ---------------------
    @cached_property
    def victim_set(self) -> set:
        return set(self.victims.tolist())

    @cached_property
    def shooters(self) -> set:
        return set(np.flatnonzero(self.shooter_mask).tolist())

    @cached_property
    def group_shoot(self) -> dict[str, np.ndarray]:
        return group_shootings_dict(self.group_pairs)

    @cached_property
    def own_victimization(self) -> set:
        return set(zip(self.own_pairs["person"].tolist(), self.own_pairs["inc"].tolist()))

    @cached_property
    def _list_rank(self) -> dict:
        return {name: dict(zip(df["person_id"], df["rank"])) for name, df in self.lists.items()}

    @cached_property
    def _conflicts(self) -> dict:
        return self._conflicts_by_group()

    @property
    def persons(self) -> pd.DataFrame | None:
        """The persons table indexed by person_id (built on first use)."""
        if self._persons is None and self.persons_table is not None:
            self._persons = self.persons_table.set_index("person_id")
        return self._persons

    # --- evidence helpers --------------------------------------------------------------
    def _incidents(self, p: int):
        I = self.net.incidence
        lo, hi = I.p_indptr[p], I.p_indptr[p + 1]
        incs = I.p_inc[lo:hi]
        flags = I.p_flag[lo:hi]
        order = np.lexsort((self.net.incident_ids[incs], self.days[incs]))
        return incs[order], flags[order]

    def _inc_list(self, incs: np.ndarray, pid: str) -> list[dict]:
        ids = self.net.incident_ids[incs]
        return [{"incident_id": i, "date": day_to_iso(int(d)), "roles": sorted(self.roles.get((i, pid), ()))}
                for i, d in zip(ids.tolist(), self.days[incs].tolist())]

    def _shot_in(self, v: int) -> list[dict]:
        """The shootings in which person index v was a victim."""
        if v not in self._vic_cache:
            incs, flags = self._incidents(v)
            m = ((flags & FLAG_VICTIM) != 0) & self.shooting[incs]
            self._vic_cache[v] = [{"incident_id": i, "date": day_to_iso(int(d)), "day": int(d)}
                                  for i, d in zip(self.net.incident_ids[incs[m]].tolist(),
                                                  self.days[incs[m]].tolist())]
        return self._vic_cache[v]

    def _shot_by(self, v: int) -> list[dict]:
        """The shootings in which person index v had an offending role."""
        incs, flags = self._incidents(v)
        m = ((flags & FLAG_OFFENDING) != 0) & self.shooting[incs]
        return [{"incident_id": i, "date": day_to_iso(int(d)), "day": int(d)}
                for i, d in zip(self.net.incident_ids[incs[m]].tolist(), self.days[incs[m]].tolist())]

    def _edge(self, a: int, b: int) -> tuple[list[str], list[str], int]:
        """Incident IDs, their dates, and the last day of the co-offending tie a-b (each tie read once)."""
        key = (a, b) if a < b else (b, a)
        hit = self._edge_cache.get(key)
        if hit is not None:
            return list(hit[0]), list(hit[1]), hit[2]
        e = self.co.edge_index(a, b)
        if e < 0:
            out = ([], [], -1)
        else:
            ev = self.co.evidence(e)
            order = np.lexsort((self.net.incident_ids[ev], self.days[ev]))
            ev = ev[order]
            out = (self.net.incident_ids[ev].tolist(), [day_to_iso(int(d)) for d in self.days[ev]],
                   int(self.co.last_day[e]))
        self._edge_cache[key] = out
        return list(out[0]), list(out[1]), out[2]

    def _exposure_paths(self, p: int) -> tuple[list, list]:
        """:func:`fdnet.graph.exposure.exposure_paths` of person p against the run's shooting victims
        (the victim set built once, not per person)."""
        src = self.victim_set
        n1 = self.co.neighbors(p).tolist()
        near = set(n1)
        paths_1 = [[p, v] for v in n1 if v in src]
        seen: dict[int, int] = {}
        for m in n1:
            for v in self.co.neighbors(m).tolist():
                if v != p and v not in near and v in src and v not in seen:
                    seen[v] = m
        return paths_1, [[p, seen[v], v] for v in sorted(seen)]

    def _path_record(self, path: list[int], shots: list[dict], kind: str = "was shot") -> dict:
        ids = self.net.person_ids
        edges, said, last_days = [], [], []
        for k in range(len(path) - 1):
            inc_ids, dates, last = self._edge(path[k], path[k + 1])
            last_days.append(last)
            edges.append({"between": [ids[path[k]], ids[path[k + 1]]], "incident_ids": inc_ids, "dates": dates})
            who = "co-offended" if k == 0 else f"{ids[path[k]]} co-offended"
            said.append(f"{who} with {ids[path[k + 1]]} in " +
                        ", ".join(f"incident {i} on {d}" for i, d in zip(inc_ids, dates)))
        tail = ids[path[-1]]
        said.append(f"{tail} {kind} " + ", ".join(f"on {s['date']} in incident {s['incident_id']}" for s in shots))
        return {"path": [ids[x] for x in path], "edges": edges,
                ("victim_shot_in" if kind == "was shot" else "shooting_incidents"):
                    [{"incident_id": s["incident_id"], "date": s["date"]} for s in shots],
                "sentence": "; ".join(said) + ".",
                "_expires": min(min(last_days), max(s["day"] for s in shots)) + self.policy.window_days + 1
                if shots else None}

    # --- one person ---------------------------------------------------------------------
    def explain(self, pid: str, lists: list[str]) -> dict:
        net, pol = self.net, self.policy
        p = net.person_index(pid)
        row = self.rows[pid]
        incs, flags = self._incidents(p)
        off = (flags & FLAG_OFFENDING) != 0
        vic = (flags & FLAG_VICTIM) != 0
        sh = self.shooting[incs]
        ids = net.person_ids
        recent = self.days[incs] > net.as_of_day - pol.features.recent_days
        masks = {
            "offending": off,
            "violent_offending": off & net.inc_violent[incs],
            "gun_offending": off & sh,
            "recent_offending": off & recent,
            "shooting_victimization": vic & sh,
        }
        paths = None
        expiry: dict[str, list] = {}       # component -> [(day the item stops counting, weight)]
        comps = []
        W = pol.window_days
        for name in FEATURES:
            ev: dict = {}
            if name in masks:
                sel = incs[masks[name]]
                ev["incidents"] = self._inc_list(sel, pid)
                span = pol.features.recent_days if name == "recent_offending" else W + 1
                expiry[name] = [(int(d) + span, 1.0) for d in self.days[sel]]
            elif name == "degree":
                nb = self.co.neighbors(p).tolist()
                ev["co_offenders"] = []
                expiry[name] = []
                for b in nb:
                    inc_ids, dates, last = self._edge(p, int(b))
                    ev["co_offenders"].append({"person_id": ids[b], "incident_ids": inc_ids, "dates": dates})
                    expiry[name].append((last + W + 1, 1.0))
            elif name == "core_number":
                k = int(row[name])
                nb = self.co.neighbors(p)
                keep = [ids[b] for b in nb.tolist() if self.core is not None and self.core[b] >= k] if k else []
                ev["note"] = (f"in a {k}-core: {len(keep)} of the person's co-offenders also have core number "
                              f">= {k}" if k else "no co-offenders")
                ev["core_co_offenders"] = keep
            elif name in ("exposure_1", "exposure_2", "exposure_decayed"):
                if paths is None:
                    paths = self._exposure_paths(p)
                chosen = paths[1] if name == "exposure_2" else paths[0]
                recs = [self._path_record(path, self._shot_in(path[-1])) for path in chosen]
                if name == "exposure_decayed":
                    hl = pol.analytics.exposure_half_life_days
                    for r, path in zip(recs, chosen):
                        last_shot = max(s["day"] for s in self._shot_in(path[-1]))
                        r["weight"] = round(0.5 ** ((net.as_of_day - last_shot) / hl), 6)
                        r["_last_shot"] = last_shot
                    expiry[name] = [(r["_expires"], r["_last_shot"]) for r in recs if r["_expires"] is not None]
                else:
                    expiry[name] = [(r["_expires"], 1.0) for r in recs if r["_expires"] is not None]
                ev["paths"] = [{k: v for k, v in r.items() if not k.startswith("_")} for r in recs]
            elif name == "shooter_exposure":
                nb = [b for b in self.co.neighbors(p).tolist() if b in self.shooters]
                recs = [self._path_record([p, b], self._shot_by(b), kind="had an offending role in shootings")
                        for b in nb]
                expiry[name] = [(r["_expires"], 1.0) for r in recs if r["_expires"] is not None]
                ev["paths"] = [{k: v for k, v in r.items() if not k.startswith("_")} for r in recs]
            elif name == "contagion_risk":
                ev.update(self._contagion(p, row))
            elif name == "group_violence":
                g = self.primary[p]
                items = list(self.group_shoot.get(g, np.array([], dtype=np.int64))) if g else []
                items = [i for i in items if (p, int(i)) not in self.own_victimization]
                ev["group"] = g
                ev["incidents"] = [{"incident_id": net.incident_ids[i], "date": day_to_iso(int(self.days[i]))}
                                   for i in sorted(items, key=lambda i: (self.days[i], net.incident_ids[i]))]
                expiry[name] = [(int(self.days[i]) + pol.features.group_recent_days, 1.0) for i in items]
            elif name == "group_conflicts":
                g = self.primary[p]
                ev["group"] = g
                ev["conflicts"] = self._conflicts_of(g)
            elif name == "age":
                ev.update(self._age_evidence(pid))
            comp = pol.components[name]
            counts_for = ((list(ENFORCEMENT_LISTS) if "enforcement" in comp.counts_for else []) +
                          (["service_referrals"] if "service" in comp.counts_for else []))
            comps.append({
                "name": name,
                "meaning": self.meanings[name],
                "value": _num(row[name]),
                "rule": comp.describe(row[name]),
                "points": float(row[f"points_{name}"]),
                "counts_for": counts_for,
                "evidence": ev,
            })
        age = row["age"]
        off_list = self._off_list(pid, row, lists, expiry)
        return {
            "person_id": pid,
            "lists": lists,
            "score": float(row["score"]),
            "probability_shooting": float(row["probability_shooting"]) if "probability_shooting" in row else None,
            "enforcement_score": float(row["enforcement_score"]),
            "service_score": float(row["service_score"]),
            "group": row["group"],
            "guardrails": {
                "enforcement_eligible": bool(row["enforcement_eligible"]),
                "exclusion": row["enforcement_exclusion"],
                "juvenile": bool(row["juvenile"]),
                "age": None if age != age else int(age),
            },
            "components": comps,
            "off_list": off_list,
        }

    def _contagion(self, p: int, row) -> dict:
        fit = getattr(self.an, "contagion", None) if self.an is not None else None
        out = {"background_per_1000_per_year": round(float(row.get("contagion_background", 0.0)) * 1000, 6),
               "network_per_1000_per_year": round(float(row.get("contagion_network", 0.0)) * 1000, 6)}
        if fit is None or not fit.n_events:
            out["note"] = "contagion model off or no shootings in the window"
            return out
        out["model"] = {"alpha": round(fit.alpha, 6), "mean_delay_days": round(fit.mean_delay, 2)}
        max_lag = self.policy.contagion.max_lag_days
        contribs = []
        for b in self.co.neighbors(p).tolist():
            for s in self._shot_in(b):
                lag = self.net.as_of_day + 1 - s["day"]   # the hazard is read at the end of the as-of day
                if 0 < lag <= max_lag:
                    per_year = fit.alpha * fit.beta * math.exp(-fit.beta * lag) * 365.25 * 1000
                    inc_ids, dates, _ = self._edge(p, b)
                    contribs.append({
                        "co_offender": self.net.person_ids[b], "shot_in": s["incident_id"], "date": s["date"],
                        "per_1000_per_year": round(per_year, 6), "tie_incident_ids": inc_ids,
                        "sentence": (f"co-offended with {self.net.person_ids[b]} in "
                                     + ", ".join(f"incident {i} on {d}" for i, d in zip(inc_ids, dates))
                                     + f"; {self.net.person_ids[b]} was shot on {s['date']} in incident "
                                     f"{s['incident_id']}, adding {per_year:.3g} per 1,000 per year today.")})
        contribs.sort(key=lambda c: (-c["per_1000_per_year"], c["co_offender"], c["shot_in"]))
        out["contributions"] = contribs
        return out

    def _conflicts_by_group(self) -> dict[str, list[dict]]:
        """Every group's active conflicts, from one pass over the conflicts table."""
        an = self.an
        if an is None or an.conflicts is None or not len(an.conflicts):
            return {}
        c = an.conflicts[an.conflicts["relation"] == "conflict"]
        out: dict[str, list[dict]] = {}
        for r in c.itertuples():                     # one pass over the conflicts (not per person)
            ids = [x for x in str(r.incident_ids).split(";") if x]
            for g, rival in ((r.group_a, r.group_b), (r.group_b, r.group_a)):
                lst = out.setdefault(g, [])
                if g == rival and lst and lst[-1]["_row"] == r.Index:
                    continue                         # a group in conflict with itself is listed once
                lst.append({"rival": rival, "source": r.source, "incident_ids": list(ids),
                            "last_date": r.last_date, "_row": r.Index})
        return out

    def _conflicts_of(self, g: str) -> list[dict]:
        if not g:
            return []
        return [{k: v for k, v in d.items() if k != "_row"} for d in self._conflicts.get(g, [])]

    @staticmethod
    def _age_evidence_of(persons: pd.DataFrame | None, pids) -> dict[str, dict]:
        """Age evidence of every needed person, from one lookup of them all in the persons table."""
        if persons is None:
            return {}
        pr = persons.set_index("person_id") if "person_id" in persons.columns else persons
        if not pr.index.is_unique:
            pr = pr[~pr.index.duplicated(keep="first")]
        pids = list(dict.fromkeys(pids))
        pos = pr.index.get_indexer(pd.Index(pids, dtype=object))
        have = [p for p, k in zip(pids, pos.tolist()) if k >= 0]
        pos = pos[pos >= 0]
        out = {p: {"source": "persons table"} for p in have}
        for k in ("birth_date", "birth_year"):
            if k in pr.columns:
                vals = pr[k].iloc[pos].astype(object).map(str).tolist()
                for p, s in zip(have, vals):
                    if s not in ("", "nan", "None", "<NA>"):
                        out[p][k] = s
        return out

    def _age_evidence(self, pid: str) -> dict:
        if pid not in self._ages:
            if self.persons is not None and pid in self.persons.index:   # a person not prepared up front
                return self._age_evidence_of(self.persons, [pid])[pid]
            return {"note": "no persons row: age unknown"}
        return {k: v for k, v in self._ages[pid].items()}

    # --- what would take the person off -----------------------------------------------
    def _score_on(self, day: int, row, expiry: dict, kind: str) -> float:
        """The ``kind`` score on ``day`` if nothing new happens (evidence ageing out, age rising)."""
        return float(self._scores_on([day], row, expiry, kind)[0])

    def _scores_on(self, days, row, expiry: dict, kind: str) -> np.ndarray:
        """:meth:`_score_on` for every day of ``days`` at once: one ``Component.score`` call per
        component (the values per day are summed in the same order, so the totals are the same floats)."""
        pol = self.policy
        days = [int(d) for d in days]
        total = np.zeros(len(days), dtype=float)
        if not days:
            return total
        for name in FEATURES:
            comp = pol.components[name]
            if kind not in comp.counts_for:
                continue
            v0 = float(row[name]) if row[name] == row[name] else float("nan")
            if name in expiry:
                items = expiry[name]
                if name == "exposure_decayed":
                    hl = pol.analytics.exposure_half_life_days
                    vals = [sum(0.5 ** ((day - last) / hl) for end, last in items if end > day) for day in days]
                else:
                    ends = np.sort(np.fromiter((end for end, _ in items), dtype=np.int64, count=len(items)))
                    vals = (len(ends) - np.searchsorted(ends, np.asarray(days, dtype=np.int64), side="right"))
            elif name == "age" and v0 == v0:
                vals = [v0 + math.floor((day - self.net.as_of_day) / 365.25) for day in days]
            elif name == "core_number":
                deg = expiry.get("degree", [])
                ends = np.sort(np.fromiter((end for end, _ in deg), dtype=np.int64, count=len(deg)))
                alive = len(ends) - np.searchsorted(ends, np.asarray(days, dtype=np.int64), side="right")
                vals = np.minimum(v0, alive.astype(float))
            elif name == "contagion_risk" and self.an is not None and getattr(self.an, "contagion", None):
                fit = self.an.contagion
                bg = float(row.get("contagion_background", 0.0)) * 1000
                vals = [bg + (v0 - bg) * math.exp(-fit.beta * (day - self.net.as_of_day)) for day in days]
            else:
                vals = np.full(len(days), v0)
            total = total + comp.score(np.asarray(vals, dtype=float))
        return np.array([round(float(t), 6) for t in total])

    def _off_list(self, pid: str, row, lists: list[str], expiry: dict) -> dict:
        pol = self.policy
        res = {}
        ends = sorted({e for items in expiry.values() for e, _ in items if e > self.net.as_of_day})
        offend_ends = sorted(e for e, _ in expiry.get("offending", []))
        for name in lists:
            rule = getattr(pol.lists, name)
            kind = "service" if name == "service_referrals" else "enforcement"
            score = float(row[f"{kind}_score"])
            threshold = float(rule.min_score)
            comps = [(c, float(row[f"points_{c}"])) for c in FEATURES if kind in pol.components[c].counts_for]
            single = sorted([c for c, pts in comps if pts > 0 and score - pts < threshold])
            info = {"list_score": score, "policy_minimum": threshold, "margin": round(score - threshold, 6),
                    "rank": _num(self._list_rank.get(name, {}).get(pid, float("nan")))}
            leave, why = None, None
            if kind == "enforcement":
                need = pol.guardrails.min_offending_incidents
                if len(offend_ends) >= need:
                    elig_end = offend_ends[len(offend_ends) - need]  # the need-th latest incident leaves
                else:
                    elig_end = self.net.as_of_day + 1
                before = [d for d in ends if d < elig_end]
                below = np.flatnonzero(self._scores_on(before, row, expiry, kind) < threshold)
                if len(below):
                    leave, why = before[int(below[0])], \
                        f"the enforcement score falls below the policy minimum {threshold:g}"
                else:
                    leave, why = elig_end, (f"fewer than {need} incident(s) in an offending role remain "
                                            "in the window (guardrail)")
                guards = ["a record of death or incarceration (guardrails)"]
                if pol.guardrails.juveniles == "exclude":
                    guards.append("being under 18")
                what = ([f"losing the points of {', '.join(single)} alone would take the score below "
                         f"{threshold:g}"] if single else []) + [f"{' or '.join(guards)} would remove the person"]
            else:
                sr = pol.lists.service_referrals
                last_v = row.get("last_victimization_date") or ""
                recent_end = None
                if last_v:
                    from ..records.validate import iso_to_day
                    recent_end = iso_to_day(last_v) + sr.victim_recent_days + 1
                later = [d for d in ends if not (recent_end is not None and d < recent_end)]
                below = np.flatnonzero(self._scores_on(later, row, expiry, kind) < threshold)
                if len(below):
                    d = later[int(below[0])]
                    leave = max(d, recent_end or d)
                    why = "the service score falls below the policy minimum and no recent shooting victimization"
                if leave is None and recent_end is not None and score < threshold:
                    leave, why = recent_end, "the last shooting victimization is no longer recent"
                what = [f"losing the points of {', '.join(single)} alone would take the service score below "
                        f"{threshold:g}"] if single else []
                what.append("services are offered, never imposed: the person can decline")
            if name == "call_in":
                what.append("the group no longer being chosen (recent violence and conflicts decide it), or other "
                            "members reaching more of the group")
            else:
                what.append(f"others scoring higher while the list is full ({rule.size} places)")
            info["leaves_on_if_nothing_new"] = day_to_iso(leave) if leave is not None else None
            info["leaves_because"] = why or ("the evidence stays in the window beyond the dates checked"
                                             if leave is None else None)
            info["what_would_take_off"] = what
            info["note"] = ("the date assumes no new incident, a list of the same size and the same policy; "
                            "the list cut-off also depends on other people's scores")
            res[name] = info
        return res


def explain_listed(net: Network, involvements: pd.DataFrame, scores: pd.DataFrame, policy: Policy,
                   listed: dict[str, list[str]], *, analytics=None, persons: pd.DataFrame | None = None,
                   lists: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """The lines of explanations.jsonl: one row per listed person, sorted by person_id.

    ``listed`` maps each listed person_id to the names of the lists they are on.
    Columns: ``person_id`` and ``json`` (that person's explanation as one JSON line:
    what ``json.dumps(Explainer(...).explain(pid, listed[pid]), ensure_ascii=False)``
    gives, built for everyone at once by :mod:`fdnet.scoring.explain_columns`).

    >>> from fdnet.graph.layers import build_network
    >>> inc = pd.DataFrame({"incident_id": ["I1"], "day": [19000], "gun": [False], "violent": [True]})
    >>> inv = pd.DataFrame({"incident_id": ["I1", "I1"], "person_id": ["A", "B"], "role": ["offender", "suspect"]})
    >>> net = build_network(inc, inv, as_of_day=19010, window_days=365, half_life_days=365)
    >>> from fdnet.scoring.features import compute_features
    >>> from fdnet.scoring.score import score_table
    >>> pol = Policy()
    >>> scores = score_table(net.person_ids, compute_features(net), pol, None, pd.Series(dtype=object), "2022-01-11")
    >>> df = explain_listed(net, inv, scores, pol, {"B": ["custom_notifications"]})
    >>> import json
    >>> line = json.loads(df["json"][0])
    >>> line["person_id"], line["components"][0]["evidence"]["incidents"][0]["roles"]
    ('B', ['suspect'])
    >>> ex = Explainer(net, inv, scores, pol, ["B"])
    >>> line == json.loads(json.dumps(ex.explain("B", ["custom_notifications"])))
    True
    """
    from .explain_columns import explanation_lines
    pids = sorted(listed)
    ex = Explainer(net, involvements, scores, policy, [], analytics=analytics, persons=persons, lists=lists)
    lines = explanation_lines(ex, pids, [list(listed[p]) for p in pids], involvements, scores, lists)
    return pd.DataFrame({"person_id": pd.Series(pids, dtype=object), "json": pd.Series(lines, dtype=object)})
