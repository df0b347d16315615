#!/usr/bin/env python
"""Time entity resolution on a synthetic city with duplicate identities, and score it against the truth.

A benchmark, not a test (pytest ignores ``benchmarks/``). Usage::

    .venv/bin/python benchmarks/bench_resolution.py --people 100000
    .venv/bin/python benchmarks/bench_resolution.py --people 1000000 --duplicates 0.2 --json out.json

``--people`` is the city's people; with ``--duplicates 0.2`` the persons table holds 1.2 times as many
records. Reports the seconds to prepare, link (train and score with Splink on DuckDB) and make the
entities, the pairs scored, and pairwise precision / recall and the cluster F-measure at the policy's
``high`` threshold.
"""
from __future__ import annotations

import argparse
import json
import time

import pandas as pd

from fdnet.policy import Policy
from fdnet.resolution.cluster import entities
from fdnet.resolution.evaluate import cluster_f, pairwise
from fdnet.resolution.model import link
from fdnet.resolution.prepare import comparable
from fdnet.synth import generate_city
from fdnet.synth.resolution import add_identities


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=100_000)
    ap.add_argument("--duplicates", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1, help="DuckDB threads")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    t0 = time.perf_counter()
    city = add_identities(generate_city(a.people, seed=a.seed), duplicates=a.duplicates, seed=a.seed)
    persons, truth = city.persons, city.extra_truth["identities"].set_index("person_id")["true_person"]
    t1 = time.perf_counter()
    cfg = Policy.model_validate({"resolution": {"duckdb_threads": a.threads}}).resolution
    tab = comparable(persons)
    t2 = time.perf_counter()
    lk = link(tab, cfg)
    t3 = time.perf_counter()
    ids = tab["unique_id"].sort_values().to_numpy(dtype=object)
    ent = entities(ids, lk.pairs, high=cfg.high)
    t4 = time.perf_counter()
    found = pd.Series(ent["entity"].to_numpy(), index=ids)
    m = pairwise(found, truth)
    out = {"people": a.people, "records": int(len(persons)), "generate_s": round(t1 - t0, 2),
           "prepare_s": round(t2 - t1, 2), "link_s": round(t3 - t2, 2), "entities_s": round(t4 - t3, 2),
           "resolution_s": round(t4 - t1, 2), "pairs_scored": int(len(lk.pairs)), "high": cfg.high,
           "precision": round(m["precision"], 4), "recall": round(m["recall"], 4),
           "cluster_f": round(cluster_f(found, truth), 4), "notes": lk.notes}
    print(json.dumps(out, indent=2))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
