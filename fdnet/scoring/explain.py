"""Explanations: each listed person's components, points and evidence.

Every number traces to input rows: the incidents (IDs, dates, the person's
roles) behind a count, the co-offenders behind the degree, and for exposure
the path through the co-offending network with the incidents on each edge
and the shooting in which the victim was shot.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..graph.exposure import exposure_paths
from ..graph.layers import FLAG_OFFENDING, FLAG_VICTIM, Network
from ..records.validate import day_to_iso
from .features import FEATURES
from .policy import COMPONENT_DOCS, VICTIMIZATION_COMPONENTS, Policy
from .score import SERVICE_COMPONENTS


class Explainer:
    """Builds explanation records for persons of one run.

    Everything per person is read from the incidence and layer arrays with
    NumPy slices (no per-person DataFrames): a run lists thousands of people.
    """

    def __init__(self, net: Network, involvements: pd.DataFrame, scores: pd.DataFrame, policy: Policy,
                 persons_needed: list[str]):
        self.net = net
        self.policy = policy
        need = scores[scores["person_id"].isin(persons_needed)]
        self.rows = {r["person_id"]: r for r in need.to_dict("records")}
        inv = involvements[involvements["person_id"].isin(persons_needed)]
        self.roles: dict = {}
        for inc_id, pid, role in zip(inv["incident_id"].to_numpy(), inv["person_id"].to_numpy(),
                                     inv["role"].to_numpy()):
            self.roles.setdefault((inc_id, pid), set()).add(role)
        self.co = net.layers["co_offending"]
        self.victims = net.shooting_victims()
        self.shooting = net.shooting_incidents()
        self.days = np.asarray(net.inc_day)
        self._vic_cache: dict[int, list] = {}

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
            self._vic_cache[v] = [{"incident_id": i, "date": day_to_iso(int(d))}
                                  for i, d in zip(self.net.incident_ids[incs[m]].tolist(),
                                                  self.days[incs[m]].tolist())]
        return self._vic_cache[v]

    def _edge(self, a: int, b: int) -> list[str]:
        e = self.co.edge_index(a, b)
        return self.net.incident_ids[self.co.evidence(e)].tolist() if e >= 0 else []

    def explain(self, pid: str, lists: list[str]) -> dict:
        net = self.net
        p = net.person_index(pid)
        row = self.rows[pid]
        incs, flags = self._incidents(p)
        off = (flags & FLAG_OFFENDING) != 0
        vic = (flags & FLAG_VICTIM) != 0
        sh = self.shooting[incs]
        ids = net.person_ids
        masks = {
            "offending": off,
            "violent_offending": off & net.inc_violent[incs],
            "gun_offending": off & sh,
            "shooting_victimization": vic & sh,
        }
        paths = None
        comps = []
        for name in FEATURES:
            ev: dict = {}
            if name in masks:
                ev["incidents"] = self._inc_list(incs[masks[name]], pid)
            elif name == "degree":
                nb = self.co.neighbors(p)
                ev["co_offenders"] = [{"person_id": ids[b], "incident_ids": self._edge(p, int(b))}
                                      for b in nb.tolist()]
            else:
                if paths is None:
                    paths = exposure_paths(self.co, p, self.victims)
                chosen = paths[0] if name == "exposure_1" else paths[1]
                ev["paths"] = [{
                    "path": [ids[x] for x in path],
                    "edges": [{"between": [ids[path[k]], ids[path[k + 1]]],
                               "incident_ids": self._edge(path[k], path[k + 1])}
                              for k in range(len(path) - 1)],
                    "victim_shot_in": self._shot_in(path[-1]),
                } for path in chosen]
            counts_for = (["service_referrals"] if name in VICTIMIZATION_COMPONENTS else
                          ["call_in", "custom_notifications"] +
                          (["service_referrals"] if name in SERVICE_COMPONENTS else []))
            comp = self.policy.components[name]
            comps.append({
                "name": name,
                "meaning": COMPONENT_DOCS[name],
                "value": int(row[name]),
                "points_per_unit": comp.points,
                "cap": comp.cap,
                "points": float(row[f"points_{name}"]),
                "counts_for": counts_for,
                "evidence": ev,
            })
        age = row["age"]
        return {
            "person_id": pid,
            "lists": lists,
            "score": float(row["score"]),
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
        }
