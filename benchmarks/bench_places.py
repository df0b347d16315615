#!/usr/bin/env python
"""The places analysis on synthetic cities: the planted relative risk against its unplanted twin, the square
grid against H3, and the time of the geo export and the report's map.

This is a benchmark, not a test (pytest ignores ``benchmarks/``). Usage::

    .venv/bin/python benchmarks/bench_places.py                        # 200,000 people, seed 0, RR 2
    .venv/bin/python benchmarks/bench_places.py --people 1000000 --seeds 0,1 --json out.json
    .venv/bin/python benchmarks/bench_places.py --people 50000 --no-h3 --no-export

For each seed: ``generate_city(people, seed)`` with ``plant_place_features(relative_risk=RR, seed=seed)``
and its twin with ``relative_risk=1`` (the same vacant buildings, 311 requests and bus stops: the features
depend on the seed only), each analysed by ``fdnet.api.study`` and ``fdnet.places.analyze_places`` under the
default policy. Reported: the relative risk of ``vacant_building:within_300m`` and its 95% interval in both,
their ratio (the planted effect net of the city's chance association of buildings and shootings; see
docs/places.md, *The synthetic check*), the selected factors, and PAI at 5% and 10% of the area for the risk
surface and the past-shootings map. With H3 (the default when the h3 package is installed): the same
analysis with ``places.grid: h3`` and its time. With the export (default): ``fdnet.run(...).write`` of the
planted city, then the wall time of ``export_run(..., formats="geo")`` and of the report's ``map_svg``.
Times are wall-clock seconds of one run on this machine.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def _vacant(places) -> dict:
    f = places.factors.set_index("factor").loc["vacant_building:within_300m"]
    maps = places.accuracy.get("maps") or {}
    pai = {k: {m["area_share"]: m["pai"] for m in v} for k, v in maps.items()}
    return {"rr": float(f["relative_risk"]), "low": float(f["ci95_low"]), "high": float(f["ci95_high"]),
            "selected": list(places.summary["selected_factors"]),
            "pai_risk": [pai.get("risk_terrain", {}).get(a) for a in (0.05, 0.1)],
            "pai_past": [pai.get("past_shootings", {}).get(a) for a in (0.05, 0.1)]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=200_000)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--rr", type=float, default=2.0)
    ap.add_argument("--no-h3", action="store_true")
    ap.add_argument("--no-export", action="store_true")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()

    import fdnet
    from fdnet.api import study
    from fdnet.places import analyze_places
    from fdnet.policy import policy_from_dict
    from fdnet.synth import generate_city, write_city
    from fdnet.synth.places import plant_place_features
    try:
        import h3  # noqa: F401
        have_h3 = not a.no_h3
    except ImportError:
        have_h3 = False
    out = []
    tmp = Path(tempfile.mkdtemp(prefix="bench_places_"))
    for seed in [int(s) for s in a.seeds.split(",")]:
        city = generate_city(a.people, seed=seed)
        row = {"people": a.people, "seed": seed, "planted_rr": a.rr}
        for label, rr in (("planted", a.rr), ("twin", 1.0)):
            d = tmp / f"city_{seed}_{label}"
            write_city(plant_place_features(city, relative_risk=rr, seed=seed), d)
            st = study(d)
            t = time.perf_counter()
            p = analyze_places(st.records, st.network, st.analytics, st.policy)
            row[label] = {**_vacant(p), "seconds": round(time.perf_counter() - t, 2), "cells": p.grid.n_cells}
            if label == "planted" and have_h3:
                t = time.perf_counter()
                ph = analyze_places(st.records, st.network, st.analytics, policy_from_dict({"places": {"grid": "h3"}}))
                row["h3"] = {**_vacant(ph), "seconds": round(time.perf_counter() - t, 2), "cells": ph.grid.n_cells}
            if label == "planted" and not a.no_export:
                from fdnet.export.core import export_run
                from fdnet.report.places import map_svg
                from fdnet.tables import read_csv_table
                run_dir = fdnet.run(d).write(tmp / f"run_{seed}")
                t = time.perf_counter()
                export_run(run_dir, tmp / f"geo_{seed}", formats="geo")
                row["geo_export_seconds"] = round(time.perf_counter() - t, 2)
                cells = read_csv_table((run_dir / "places.csv").read_bytes())
                t = time.perf_counter()
                map_svg(cells, None, None, cell_m=150)
                row["map_svg_seconds"] = round(time.perf_counter() - t, 3)
        row["ratio"] = round(row["planted"]["rr"] / row["twin"]["rr"], 3)
        print(json.dumps(row), flush=True)
        out.append(row)
    if a.json:
        a.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
