"""``fdnet evaluate`` on planted call-ins: how often it finds a planted effect, how often it invents one, how fast.

For each seed, a synthetic city with a call-in whose attendees' later incidents are kept with
probability E (fdnet.synth.interventions.plant_call_in) is evaluated; the script prints, per kind,
population, outcome and horizon, the median risk ratio and the share of cities whose 95% interval
covers 1 (E = 1: should be about 0.95) or lies below 1 (E < 1: the power). ``--time N`` evaluates one
city of N people and prints the time per stage beside the time ``fdnet run`` takes on it.

    .venv/bin/python benchmarks/bench_evaluate.py --effect 1.0 --seeds 10-39          # coverage (about 3 min)
    .venv/bin/python benchmarks/bench_evaluate.py --effect 0.5 --seeds 10-19 --people 5000   # power at 5k
    .venv/bin/python benchmarks/bench_evaluate.py --time 200000
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd

from fdnet.evaluate import evaluate
from fdnet.synth import generate_city, write_city
from fdnet.synth.interventions import plant_call_in


def _seeds(text: str) -> list[int]:
    a, _, b = text.partition("-")
    return list(range(int(a), int(b or a) + 1))


def coverage(effect: float, seeds: list[int], people: int) -> pd.DataFrame:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for s in seeds:
            d = Path(tmp) / f"city{s}"
            write_city(plant_call_in(generate_city(people, seed=s), effect=effect, seed=s), d)
            ev = evaluate(d)
            for e in ev.effects + ev.spillover:
                lo, hi = e["ci95"]
                if lo is not None:
                    rows.append((s, e["kind"], e["population"], e["outcome"], e["horizon_days"], e["risk_ratio"],
                                 lo <= 1 <= hi, hi < 1))
            for g in ev.groups:
                lo, hi = g["ci95"]
                if lo is not None:
                    rows.append((s, g["kind"], "groups", g["outcome"], g["horizon_days"], g["ratio_of_rate_ratios"],
                                 lo <= 1 <= hi, hi < 1))
    df = pd.DataFrame(rows, columns=["seed", "kind", "population", "outcome", "horizon", "ratio", "covers_1",
                                     "below_1"])
    return df.groupby(["kind", "population", "outcome", "horizon"]).agg(
        median_ratio=("ratio", "median"), covers_1=("covers_1", "mean"), below_1=("below_1", "mean"),
        cities=("seed", "size")).reset_index()


def timing(people: int) -> None:
    import fdnet
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "city"
        t = time.perf_counter()
        write_city(plant_call_in(generate_city(people, seed=1), effect=0.5, seed=1), d)
        print(f"synth {people:,} people: {time.perf_counter() - t:.1f} s")
        marks = []
        t0 = time.perf_counter()
        ev = evaluate(d, progress=lambda s: marks.append((s, time.perf_counter())))
        total = time.perf_counter() - t0
        marks.append(("end", time.perf_counter()))
        for (name, a), (_, b) in zip(marks, marks[1:]):
            print(f"  {name:28s} {b - a:7.2f} s")
        print(f"fdnet evaluate: {total:.1f} s, {len(ev.effects)} effects")
        t = time.perf_counter()
        fdnet.run(d)
        run_s = time.perf_counter() - t
        print(f"fdnet run on the same city: {run_s:.1f} s; evaluate / run = {total / run_s:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--effect", type=float, default=1.0)
    ap.add_argument("--seeds", default="10-39")
    ap.add_argument("--people", type=int, default=20_000)
    ap.add_argument("--time", type=int, default=0, help="time one city of this many people instead")
    a = ap.parse_args()
    if a.time:
        timing(a.time)
        return
    with pd.option_context("display.width", 200, "display.max_rows", 200):
        print(coverage(a.effect, _seeds(a.seeds), a.people).to_string(index=False))


if __name__ == "__main__":
    main()
