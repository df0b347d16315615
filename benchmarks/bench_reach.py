#!/usr/bin/env python
"""Call-in attendee choice: greedy against the exact integer programme on real synthetic groups.

This is a benchmark, not a test (pytest ignores ``benchmarks/``). Usage::

    .venv/bin/python benchmarks/bench_reach.py                          # 100,000-people city
    .venv/bin/python benchmarks/bench_reach.py --people 20000 --sizes 20,50,100
    .venv/bin/python benchmarks/bench_reach.py --capacities 6,20,50 --json out.json

Input (prepared once, untimed, cached under ``--cache``): the synthetic city of
``fdnet.synth.generate_city`` analysed by ``fdnet.api.study`` under the
default policy. A group is a primary group of ``study.analytics.groups.primary``
(audit or detected); its members are ordered by person_id and its graph is the
induced co-offending subgraph (``fdnet.lists.reach.induced_csr``). Eligible
members are the enforcement-eligible ones (``scores.enforcement_eligible``);
show-up probabilities follow the policy defaults: 1 under supervision
(probation, parole, pretrial, not ended by as_of), 1/6 otherwise.

Part 1, greedy vs exact: for each target size (``--sizes``), the ``--per-size``
groups whose size is closest to it; for each, every capacity in
``--capacities`` and two probability scenarios: ``policy`` (as above) and
``p=1/6`` (nobody supervised: only the fractional cuts, the harder programme).
Each method runs ``--repeat`` times; the median wall time is reported, with
the reach gap (exact - greedy, absolute and in % of greedy), the exact
method's status and the time ratio exact / greedy. The exact method's time
includes the greedy run it starts from.

Part 2, the share of a group needed to reach all of it (Wheeler et al. 2019
found about a third): with p = 1 and every member eligible, reaching everyone
means inviting a dominating set of the group's graph; its minimum size is found
here by its own integer programme (min sum x, x_j + sum_{i ~ j} x_i >= 1) and
cross-checked with the attendee programme (``exact_invite`` with that many seats
reaches everyone, one fewer does not), next to the greedy set's size. Reported
over every group with at least ``--min-group`` members, also leaving out members
with no co-offender inside the group (each needs a seat of their own).
"""
from __future__ import annotations

import argparse
import json
import pickle
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent.parent))

from fdnet.lists.reach import (exact_invite, expected_reach, greedy_invite, induced_csr,  # noqa: E402
                               show_up_probabilities)

CACHE_VERSION = 1


def prepare(n_people: int, seed: int, cache_dir: Path, log=print) -> dict:
    """Groups of the synthetic city as induced CSR subgraphs with p and eligibility (cached)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"reach-v{CACHE_VERSION}-n{n_people}-seed{seed}.pkl"
    if path.exists():
        log(f"input: cached {path}")
        with open(path, "rb") as fh:
            return pickle.load(fh)
    import tempfile

    from fdnet.api import study
    from fdnet.synth import generate_city, write_city
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        write_city(generate_city(n_people=n_people, seed=seed), d)
        s = study(d)
    ids = s.network.person_ids
    order = {pid: k for k, pid in enumerate(ids)}
    layer = s.network.layers["co_offending"]
    persons = s.records.persons.set_index("person_id").reindex(ids)
    p_all = show_up_probabilities(persons["supervision"].fillna("").to_numpy(),
                                  supervision_end=persons["supervision_end"].fillna("").to_numpy(),
                                  as_of=s.records.as_of)
    elig_all = (s.scores.set_index("person_id")["enforcement_eligible"].reindex(ids)
                .fillna(False).to_numpy(dtype=bool))
    primary = s.analytics.groups.primary
    primary = primary[primary != ""]
    groups = {}
    for name, members in primary.groupby(primary, sort=True).groups.items():
        glob = np.array([order[pid] for pid in sorted(members)], dtype=np.int64)
        ip, ix = induced_csr(layer.indptr, layer.indices, glob)
        groups[str(name)] = {"indptr": ip, "indices": ix, "p": p_all[glob], "eligible": elig_all[glob]}
    data = {"people": n_people, "seed": seed, "as_of": s.records.as_of, "network_people": len(ids),
            "supervised_share": float((p_all == 1).mean()), "eligible_share": float(elig_all.mean()),
            "groups": groups}
    with open(path, "wb") as fh:
        pickle.dump(data, fh)
    log(f"input: city of {n_people:,} people generated and analysed in {time.perf_counter() - t0:.1f} s; "
        f"{len(groups)} groups; cached {path}")
    return data


def pick_groups(groups: dict, sizes: list[int], per_size: int) -> list[tuple[int, str]]:
    """For each target size, the ``per_size`` groups closest to it (ties by name), each used once."""
    by_size = sorted((len(g["p"]), name) for name, g in groups.items())
    used, out = set(), []
    for target in sizes:
        ranked = sorted((abs(n - target), name) for n, name in by_size if name not in used)
        for _, name in ranked[:per_size]:
            used.add(name)
            out.append((target, name))
    return out


def timed(fn, repeat: int):
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return result, statistics.median(times)


def compare(data: dict, sizes, per_size, capacities, repeat, time_limit, log=print) -> list[dict]:
    rows = []
    header = (f"{'target':>6} {'group':<22} {'n':>4} {'edges':>5} {'elig':>4} {'scenario':<8} {'cap':>3} "
              f"{'greedy':>9} {'exact':>9} {'gap':>7} {'gap%':>6} {'status':<10} {'greedy ms':>9} "
              f"{'exact ms':>9} {'ratio':>6}")
    log(header)
    log("-" * len(header))
    for target, name in pick_groups(data["groups"], sizes, per_size):
        g = data["groups"][name]
        n = len(g["p"])
        for scen in ("policy", "p=1/6"):
            p = g["p"] if scen == "policy" else np.full(n, 1 / 6)
            for cap in capacities:
                gr, t_g = timed(lambda: greedy_invite(g["indptr"], g["indices"], p, g["eligible"], cap), repeat)
                ex, t_e = timed(lambda: exact_invite(g["indptr"], g["indices"], p, g["eligible"], cap,
                                                     time_limit=time_limit), repeat)
                gap = ex.expected_reach - gr.expected_reach
                row = {"target": target, "group": name, "members": n, "edges": len(g["indices"]) // 2,
                       "eligible": int(g["eligible"].sum()), "scenario": scen, "capacity": cap,
                       "greedy_reach": gr.expected_reach, "exact_reach": ex.expected_reach,
                       "gap": gap, "gap_pct": 100 * gap / gr.expected_reach if gr.expected_reach else 0.0,
                       "status": ex.status, "bound": ex.bound, "greedy_bound": gr.bound,
                       "greedy_s": t_g, "exact_s": t_e, "ratio": t_e / t_g}
                rows.append(row)
                log(f"{target:>6} {name[:22]:<22} {n:>4} {row['edges']:>5} {row['eligible']:>4} {scen:<8} "
                    f"{cap:>3} {gr.expected_reach:>9.3f} {ex.expected_reach:>9.3f} {gap:>7.3f} "
                    f"{row['gap_pct']:>6.2f} {ex.status:<10} {1e3 * t_g:>9.2f} {1e3 * t_e:>9.1f} "
                    f"{row['ratio']:>6.0f}")
    return rows


def min_dominating_set(indptr, indices, time_limit: float) -> tuple[int, bool]:
    """Minimum number of invitees reaching everyone when all attend (min dominating set), proven?"""
    from scipy import sparse
    from scipy.optimize import Bounds, LinearConstraint, milp
    n = len(indptr) - 1
    adj = sparse.csr_array((np.ones(len(indices)), indices, indptr), shape=(n, n))
    closed = adj + sparse.eye_array(n, format="csr")
    res = milp(np.ones(n), integrality=np.ones(n), bounds=Bounds(0, 1),
               constraints=LinearConstraint(closed, 1, np.inf),
               options={"time_limit": time_limit, "mip_rel_gap": 0.0})
    if res.x is None:
        raise RuntimeError(f"dominating set programme: {res.message}")
    return int(round(res.fun)), res.status == 0


def full_reach(data: dict, min_group: int, time_limit: float, log=print) -> dict:
    """Share of each group needed to reach all of it when everyone invited attends (p = 1)."""
    rows = []
    for name, g in sorted(data["groups"].items()):
        ip, ix = g["indptr"], g["indices"]
        n = len(ip) - 1
        if n < min_group:
            continue
        ones, everyone = np.ones(n), np.ones(n, dtype=bool)
        dom, proven = min_dominating_set(ip, ix, time_limit)
        # cross-checks with the attendee programme: dom seats reach everyone, dom - 1 do not
        full = exact_invite(ip, ix, ones, everyone, dom, time_limit=time_limit)
        short = exact_invite(ip, ix, ones, everyone, dom - 1, time_limit=time_limit) if dom > 0 else None
        assert full.expected_reach == n, (name, dom, full.expected_reach)
        assert short is None or short.status != "optimal" or short.expected_reach < n, (name, dom)
        gr = greedy_invite(ip, ix, ones, everyone, n)
        assert expected_reach(ip, ix, np.isin(np.arange(n), gr.invited), ones)[0] == n
        isolated = int((np.diff(ip) == 0).sum())
        rows.append({"group": name, "members": n, "isolated": isolated, "min_seats": dom, "proven": proven,
                     "greedy_seats": len(gr.invited), "share": dom / n,
                     "share_tied": (dom - isolated) / (n - isolated) if n > isolated else float("nan"),
                     "greedy_share": len(gr.invited) / n})
    if not rows:
        log(f"no group has {min_group} members or more")
        return {"groups": rows}

    def describe(key):
        v = np.array([r[key] for r in rows if not np.isnan(r[key])])
        return {"mean": float(v.mean()), "median": float(np.median(v)), "q25": float(np.quantile(v, 0.25)),
                "q75": float(np.quantile(v, 0.75)), "min": float(v.min()), "max": float(v.max())}
    summary = {k: describe(k) for k in ("share", "share_tied", "greedy_share")}
    summary["groups"] = len(rows)
    summary["proven"] = sum(r["proven"] for r in rows)
    summary["members_weighted_share"] = sum(r["min_seats"] for r in rows) / sum(r["members"] for r in rows)
    summary["greedy_extra_seats"] = sum(r["greedy_seats"] - r["min_seats"] for r in rows)
    log(f"\nShare of a group to invite so that everyone is reached when all attend (p = 1), "
        f"{len(rows)} groups of >= {min_group} members ({summary['proven']} minimums proven):")
    for k, label in (("share", "minimum (all members)"), ("share_tied", "minimum (members with a tie)"),
                     ("greedy_share", "greedy")):
        d = summary[k]
        log(f"  {label:<30} mean {d['mean']:.3f}  median {d['median']:.3f}  IQR {d['q25']:.3f}-{d['q75']:.3f}"
            f"  range {d['min']:.3f}-{d['max']:.3f}")
    log(f"  pooled over members: {summary['members_weighted_share']:.3f}; greedy needs "
        f"{summary['greedy_extra_seats']} seats more than the minimum in all")
    by_size = {}
    for lo, hi in ((min_group, 50), (50, 100), (100, 200), (200, 10**9)):
        sel = [r for r in rows if lo <= r["members"] < hi]
        if sel:
            by_size[f"{lo}-{hi if hi < 10**9 else ''}"] = {
                "groups": len(sel), "median_share": float(np.median([r["share"] for r in sel])),
                "median_share_tied": float(np.nanmedian([r["share_tied"] for r in sel]))}
    for k, v in by_size.items():
        log(f"  size {k:<8} {v['groups']:>4} groups: median share {v['median_share']:.3f} "
            f"(tied members only {v['median_share_tied']:.3f})")
    summary["by_size"] = by_size
    return {"summary": summary, "groups": rows}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--people", type=int, default=100_000, help="size of the synthetic city (default 100,000)")
    ap.add_argument("--seed", type=int, default=1, help="city seed (default 1)")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/fdnet-bench-cache"),
                    help="where the prepared groups are cached (default /tmp/fdnet-bench-cache)")
    ap.add_argument("--sizes", default="20,50,100,200,400", help="target group sizes")
    ap.add_argument("--per-size", type=int, default=3, help="groups per target size (the closest ones)")
    ap.add_argument("--capacities", default="6,20", help="seats per group (the policy default is 6)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per method; the median time is reported")
    ap.add_argument("--time-limit", type=float, default=20.0, help="exact method's time limit per group (s)")
    ap.add_argument("--min-group", type=int, default=10, help="smallest group in the full-reach part")
    ap.add_argument("--json", type=Path, help="save every row and summary as JSON")
    args = ap.parse_args(argv)
    import scipy
    data = prepare(args.people, args.seed, args.cache)
    sizes = sorted(len(g["p"]) for g in data["groups"].values())
    print(f"city: {args.people:,} people (seed {args.seed}), {data['network_people']:,} in the network, "
          f"{len(sizes)} groups (largest {sizes[-1] if sizes else 0}); supervised {data['supervised_share']:.1%}, "
          f"enforcement-eligible {data['eligible_share']:.1%}; SciPy {scipy.__version__}, "
          f"Python {platform.python_version()} on {platform.machine()}\n")
    rows = compare(data, [int(s) for s in args.sizes.split(",")], args.per_size,
                   [int(c) for c in args.capacities.split(",")], args.repeat, args.time_limit)
    gaps = [r for r in rows if r["gap"] > 1e-9]
    statuses = ", ".join(f"{s} {sum(r['status'] == s for r in rows)}" for s in ("optimal", "time_limit"))
    print(f"\nexact better than greedy in {len(gaps)} of {len(rows)} cases"
          + (f" (largest gap {max(r['gap'] for r in gaps):.3f} members, "
             f"{max(r['gap_pct'] for r in gaps):.2f}% of greedy's reach)" if gaps else "")
          + f"; statuses: {statuses}"
          + f"; median time ratio exact/greedy {statistics.median(r['ratio'] for r in rows):.0f}, "
          f"slowest exact {max(r['exact_s'] for r in rows):.2f} s")
    reach_all = full_reach(data, args.min_group, args.time_limit)
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                         "compare": rows, "full_reach": reach_all}, indent=1))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
