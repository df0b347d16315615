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
from .features import FEATURES, person_incidents
from .policy import COMPONENT_DOCS, VICTIMIZATION_COMPONENTS, Policy
from .score import SERVICE_COMPONENTS


class Explainer:
    """Builds explanation records for persons of one run."""

    def __init__(self, net: Network, involvements: pd.DataFrame, scores: pd.DataFrame, policy: Policy,
                 persons_needed: list[str]):
        self.net = net
        self.policy = policy
        self.scores = scores.set_index("person_id")
        inv = involvements[involvements["person_id"].isin(persons_needed)]
        self.roles = inv.groupby(["incident_id", "person_id"])["role"].apply(
            lambda s: sorted(set(s))).to_dict()
        self.co = net.layers["co_offending"]
        self.victims = net.shooting_victims()
        self.shooting = net.shooting_incidents()
        self._vic_cache: dict[int, list] = {}

    def _inc(self, row, pid) -> dict:
        return {"incident_id": row.incident_id, "date": day_to_iso(row.day),
                "roles": self.roles.get((row.incident_id, pid), [])}

    def _shot_in(self, v: int) -> list[dict]:
        """The shootings in which person index v was a victim."""
        if v not in self._vic_cache:
            pi = person_incidents(self.net, v)
            m = pi[((pi["flags"] & FLAG_VICTIM) != 0) & pi["shooting"]]
            self._vic_cache[v] = [{"incident_id": r.incident_id, "date": day_to_iso(r.day)}
                                  for r in m.itertuples()]
        return self._vic_cache[v]

    def _edge(self, a: int, b: int) -> list[str]:
        e = self.co.edge_index(a, b)
        return self.net.incident_ids[self.co.evidence(e)].tolist() if e >= 0 else []

    def explain(self, pid: str, lists: list[str]) -> dict:
        net = self.net
        p = net.person_index(pid)
        row = self.scores.loc[pid]
        pi = person_incidents(net, p)
        off = (pi["flags"] & FLAG_OFFENDING) != 0
        vic = (pi["flags"] & FLAG_VICTIM) != 0
        ids = net.person_ids
        masks = {
            "offending": off,
            "violent_offending": off & pi["violent"],
            "gun_offending": off & pi["shooting"],
            "shooting_victimization": vic & pi["shooting"],
        }
        comps = []
        for name in FEATURES:
            ev: dict = {}
            if name in masks:
                ev["incidents"] = [self._inc(r, pid) for r in pi[masks[name]].itertuples()]
            elif name == "degree":
                nb = self.co.neighbors(p)
                ev["co_offenders"] = [{"person_id": ids[b], "incident_ids": self._edge(p, int(b))}
                                      for b in nb.tolist()]
            else:
                p1, p2 = exposure_paths(self.co, p, self.victims)
                paths = p1 if name == "exposure_1" else p2
                ev["paths"] = [{
                    "path": [ids[x] for x in path],
                    "edges": [{"between": [ids[path[k]], ids[path[k + 1]]],
                               "incident_ids": self._edge(path[k], path[k + 1])}
                              for k in range(len(path) - 1)],
                    "victim_shot_in": self._shot_in(path[-1]),
                } for path in paths]
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
                "age": None if np.isnan(row["age"]) else int(row["age"]),
            },
            "components": comps,
        }
