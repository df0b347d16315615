"""The Python API for notebooks: the first stages the CLI runs, as objects (``fdnet.run`` gives the whole run).

>>> import tempfile, fdnet
>>> from fdnet.synth import generate_city, write_city
>>> d = tempfile.mkdtemp()
>>> _ = write_city(generate_city(n_people=2000, seed=1), d)
>>> study = fdnet.study(d)
>>> study.network.n_persons > 0 and "betweenness" in study.scores.columns
True
>>> int(study.scores["degree"].max()) == int(study.network.layers["co_offending"].degree().max())
True
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from .graph.analytics import Analytics, analyze
from .graph.layers import Network, build_network
from .records.retention import apply_retention
from .records.validate import Records, load_records
from .scoring.features import compute_features
from .policy import Policy, load_policy, policy_from_dict
from .scoring.score import age_on, score_table


@dataclass
class Study:
    """One folder of records analysed under one policy (no files written)."""

    records: Records
    network: Network
    analytics: Analytics
    scores: pd.DataFrame       # scores.csv as a DataFrame
    policy: Policy
    resolution: object | None = None    # fdnet.resolution.Resolved when the policy's resolution is on

    @property
    def groups(self) -> pd.DataFrame:
        return self.analytics.groups.table

    @property
    def group_table(self) -> pd.DataFrame:
        return self.analytics.group_table

    def edges(self, layer: str = "co_offending") -> pd.DataFrame:
        return self.network.layers[layer].edges_frame(self.network)

    def to_networkx(self, layer: str = "co_offending"):
        """The layer as a networkx Graph with person IDs as nodes and edge attributes."""
        import networkx as nx
        g = nx.Graph()
        g.add_nodes_from(self.network.person_ids.tolist())
        e = self.edges(layer)
        g.add_edges_from((a, b, {"weight": int(w), "incident_ids": ids})
                         for a, b, w, ids in zip(e["person_a"], e["person_b"], e["weight"], e["incident_ids"]))
        return g


def study(data_dir: str | Path, *, as_of: str | None = None, policy: Policy | dict | str | Path | None = None,
          mapping_path: str | Path | None = None, previous_groups: pd.DataFrame | None = None,
          progress: Callable[[str], None] | None = None, today: str | None = None) -> Study:
    """Read, validate and analyse an input folder, returning every intermediate result.

    The records -> graph -> scoring stages of a run (:func:`fdnet.run` adds the lists,
    explanations and disparity on top, and :meth:`fdnet.run.Run.write` the report and the folder). ``today`` (YYYY-MM-DD, default the machine's
    date) is the day of the run: records dated after it are rejected as dated in the future.
    """
    step = progress or (lambda name: None)
    if isinstance(policy, (str, Path)):
        policy = load_policy(policy)
    elif isinstance(policy, dict):
        policy = policy_from_dict(policy)
    policy = policy or Policy()
    step("read and validate")
    rec = apply_retention(load_records(data_dir, as_of=as_of, mapping_path=mapping_path, today=today), policy.retention_days)
    resolved = None
    if policy.resolution.enabled:      # person records linked into entities: every later stage names entities
        from .resolution import resolve
        rec, resolved = resolve(rec, policy, data_dir)
    step("build networks")
    net = build_network(rec.incidents, rec.involvements, as_of_day=rec.as_of_day,
                        window_days=policy.window_days, half_life_days=policy.half_life_days,
                        max_pairs_per_incident=policy.network.max_pairs_per_incident)
    step("network analytics")
    an = analyze(net, persons=rec.persons, audit=rec.groups, relations=rec.group_relations, policy=policy,
                 previous_groups=previous_groups, as_of=rec.as_of)
    step("features and scores")
    primary = an.groups.primary.reindex(net.person_ids).fillna("").to_numpy(dtype=object)
    feats = compute_features(net, an.person, primary=primary, conflicts=an.conflicts,
                             age=age_on(rec.persons, net.person_ids, rec.as_of),
                             recent_days=policy.features.recent_days,
                             group_recent_days=policy.features.group_recent_days)
    scores = score_table(net.person_ids, feats, policy, rec.persons, an.groups.primary, rec.as_of,
                         analytics=an.person.drop(columns=["person_id"]))
    return Study(rec, net, an, scores, policy, resolved)
