#!/usr/bin/env python
"""Time fdnet's network analytics against igraph, NetworKit and SciPy on the same network.

This is a benchmark, not a test (pytest ignores ``benchmarks/``). Usage::

    .venv/bin/python benchmarks/bench_analytics.py                     # 1M people, everything
    .venv/bin/python benchmarks/bench_analytics.py --people 100000     # quicker, for development
    .venv/bin/python benchmarks/bench_analytics.py --quantities exposure,distance --json out.json

The shared input is the co-offending layer of the synthetic city's network
(``fdnet.graph.layers.build_network`` with the default policy's 1095-day
window and 365-day half-life, as of the last incident day) as a symmetric CSR
``(indptr, indices)``, plus the shooting victims (``net.shooting_victims()``).
It is prepared once, untimed, and cached as ``.npz``; the whole
``Network`` is cached next to it (pickle) for the end-to-end ``analyze`` step.

Quantities, each computed by fdnet and its peers (see benchmarks/README.md):

* ``exposure``: distinct victims at distance exactly 1 and 2 of every person;
* ``distance``: hops to the nearest victim, capped at 6 (-1 beyond);
* ``kcore``: k-core number;
* ``betweenness``: sampled betweenness (512 source pivots at this size);
* ``eigenvector``: eigenvector centrality, unit norm;
* ``analyze``: ``fdnet.graph.analytics.analyze`` end to end, with its stages.

The runner is the one of ``bench_projection.py`` (imported from it): every
method runs in its own subprocess, a warm-up run and ``--repeat`` timed runs;
peak memory is the subprocess's ``ru_maxrss``. Exposure, distance and k-core
must equal fdnet's: each method first runs once in its own process and any
difference aborts the run before anything is timed. Betweenness (sampled)
and eigenvector (iterative) cannot be identical: they are compared with
fdnet's from the warm-up run, and reported, not enforced. fdnet is edited
while this runs, so by default every process imports a copy of the package
taken at the start (``--no-snapshot`` to use the working tree).
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import os
import pickle
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))
import bench_projection as bp  # noqa: E402  (the shared runner and report helpers)
from bench_projection import _emit, _maxrss_mib, _vmhwm_mib, fmt_table  # noqa: E402

CACHE_VERSION = 2
THREADS = bp.THREADS                   # the machine's 2 cores; NetworKit is given both
WINDOW_DAYS = 1095                     # the default policy's window and half-life
HALF_LIFE_DAYS = 365
MAX_DISTANCE = 6                       # Policy().analytics.exposure_max_distance
PIVOTS = 512                           # Policy().analytics.betweenness_pivots
BW_SEED = 42                           # Policy().analytics.seed
BW_ALPHA = 0.05                        # fdnet's confidence level for the betweenness bound
TOP_K = 100                            # betweenness: overlap of the top-100 people

QUANTITIES = {
    "exposure": ("fdnet", "igraph", "networkit", "scipy"),
    "distance": ("fdnet", "igraph", "networkit", "scipy"),
    "kcore": ("fdnet", "igraph", "networkit"),
    "betweenness": ("fdnet", "igraph", "networkit-estimate", "networkit-approx"),
    "eigenvector": ("fdnet", "igraph", "networkit"),
    "analyze": ("fdnet",),
}
EXACT = {"exposure", "distance", "kcore"}           # results must be identical to fdnet's
TITLES = {
    "exposure": "exposure_1 / exposure_2 (distinct victims at distance exactly 1 / 2)",
    "distance": f"distance to the nearest shooting victim (multi-source BFS, capped at {MAX_DISTANCE})",
    "kcore": "k-core number",
    "betweenness": f"betweenness, sampled ({PIVOTS} source pivots or a comparable number of samples)",
    "eigenvector": "eigenvector centrality (unit norm)",
    "analyze": "fdnet.graph.analytics.analyze end to end (default Policy, persons/audit/relations None)",
}
# what each method's timed call is, printed under its table
DOES = {
    ("exposure", "fdnet"): "_core.exposure_counts(indptr, indices, victims): a depth-2 BFS per victim with a stamp array (Cython)",
    ("exposure", "igraph"): "g.neighborhood(victims, order=1, mindist=1) and (order=2, mindist=2), then np.bincount of the flattened lists",
    ("exposure", "networkit"): "per victim, its neighbours and theirs through G.iterNeighbors in a Python loop (NetworKit has no depth-limited BFS in Python; a full BFS per victim is O(n) each), then np.bincount",
    ("exposure", "scipy"): "M = A[:, victims]; P = A @ M (paths of length 2); e1 = row nnz of M; e2 = row nnz of P - row nnz of P*M - (victim with a tie: itself)",
    ("distance", "fdnet"): f"_core.bfs_distances(indptr, indices, victims, {MAX_DISTANCE}): multi-source BFS that stops at depth {MAX_DISTANCE}",
    ("distance", "igraph"): f"add edges super-source -> victims, g.bfs(super) (whole components: no depth cap), layers -> distances, capped at {MAX_DISTANCE} after; the edges are deleted again untimed",
    ("distance", "networkit"): f"addEdges super-source -> victims, nk.distance.BFS(G, super, storePaths=False).getDistances() (no depth cap), capped at {MAX_DISTANCE} after; super-source's edges removed untimed",
    ("distance", "scipy"): f"csgraph.dijkstra(A, indices=victims, unweighted=True, limit={MAX_DISTANCE}, min_only=True): SciPy's own multi-source search with a cap (no super-source needed)",
    ("kcore", "fdnet"): "_core.core_number(indptr, indices): Batagelj-Zaversnik bucket peeling (Cython)",
    ("kcore", "igraph"): "g.coreness()",
    ("kcore", "networkit"): "nk.centrality.CoreDecomposition(G).run().scores() (parallel ParK)",
    ("betweenness", "fdnet"): "fdnet.graph.centrality.betweenness(layer, **analyze's arguments from the default Policy) (what it runs on: see below)",
    ("betweenness", "igraph"): f"g.betweenness(sources={PIVOTS} pivots drawn uniformly from the non-isolated people) (C, Brandes), scaled n_active/k (Brandes-Pich)",
    ("betweenness", "networkit-estimate"): f"nk.centrality.EstimateBetweenness(G, {PIVOTS}, normalized=True, parallel=True): {PIVOTS} sampled sources, Geisberger-Sanders-Schultes linear scaling (no proven bound)",
    ("betweenness", "networkit-approx"): "nk.centrality.ApproxBetweenness(G, epsilon, delta=0.05): Riondato-Kornaropoulos shortest-path sampling, every value within epsilon with probability 1-delta",
    ("eigenvector", "fdnet"): "fdnet.graph.centrality.eigenvector(layer): scipy eigsh (ARPACK, tol 1e-12) on the components that can hold the top eigenvalue",
    ("eigenvector", "igraph"): "g.eigenvector_centrality() (ARPACK), rescaled to unit norm untimed",
    ("eigenvector", "networkit"): "nk.centrality.EigenvectorCentrality(G, tol=1e-9) (power iteration, parallel), unit norm",
    ("analyze", "fdnet"): "analyze(net, persons=None, audit=None, relations=None, policy=Policy()) on the cached Network",
}


def threads_used(q: str, m: str) -> str:
    if m.startswith("networkit"):
        return str(THREADS)
    if q == "betweenness" and m == "fdnet":
        return str(fdnet_betweenness_impl()[1])
    if q == "eigenvector" and m == "fdnet":
        return "1+BLAS"       # eigsh's dense steps use OpenBLAS's threads (left as found)
    if q == "analyze":
        return "mixed"
    return "1"


def snapshot_fdnet(dest: Path) -> Path:
    """Copy the fdnet package (sources and the built extension) to ``dest``; return the copy.

    fdnet is edited and rebuilt while this benchmark runs (a 1M run takes ~20 minutes), so by
    default every process of the run imports this copy, taken once at the start, through
    PYTHONPATH (which comes before the editable install's finder): all methods and all
    quantities measure the same code.
    """
    import shutil

    import importlib.util
    spec = importlib.util.find_spec("fdnet")
    src = Path(spec.origin).resolve().parent
    shutil.copytree(src, dest / "fdnet", ignore=shutil.ignore_patterns("__pycache__", "*.c"))
    return dest / "fdnet"


def _tree_fingerprint(root: Path) -> str:
    """sha256 (12 hex digits) of an fdnet tree's .py and .pyx files and its built extension."""
    import hashlib
    h = hashlib.sha256()
    for f in sorted(list(root.rglob("*.py")) + list(root.glob("*.pyx")) + list(root.glob("_core*.so"))):
        h.update(str(f.relative_to(root)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


def fdnet_fingerprint() -> dict:
    """Which fdnet code was measured: a hash of its sources and the extension's build time.

    fdnet is edited while this benchmark is used; results are only comparable for the same hash.
    """
    import fdnet
    root = Path(fdnet.__file__).resolve().parent
    files = sorted(list(root.rglob("*.py")) + list(root.glob("*.pyx")))
    so = sorted(root.glob("_core*.so"))
    built = (time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(so[0].stat().st_mtime)) + " UTC"
             if so else "?")
    return {"sources_sha256": _tree_fingerprint(root), "n_files": len(files), "core_built": built,
            "path": str(root)}


# ======================================================================================
# Input preparation (not timed)
# ======================================================================================

def cache_paths(n_people: int, seed: int, cache_dir: Path) -> tuple[Path, Path]:
    stem = f"analytics-v{CACHE_VERSION}-n{n_people}-seed{seed}"
    return cache_dir / f"{stem}.npz", cache_dir / f"{stem}.network.pkl"


def prepare(n_people: int, seed: int, cache_dir: Path, log=print) -> tuple[Path, Path, dict]:
    """Generate the city and build its network (or reuse the cache); return paths and metadata."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    npz, pkl = cache_paths(n_people, seed, cache_dir)
    if npz.exists() and pkl.exists():
        with np.load(npz) as z:
            meta = json.loads(str(z["meta"]))
        if meta.get("network_fields") == network_fields():
            log(f"input: cached {npz} (+ {pkl.name})")
            return npz, pkl, meta
        log("input: fdnet's Network class has changed since the cache was written: rebuilding it")

    import pandas as pd
    from fdnet.graph.layers import build_network
    from fdnet.synth import generate_city

    log(f"input: generating the synthetic city, n_people={n_people:,} seed={seed} ...")
    t0 = time.perf_counter()
    city = generate_city(n_people=n_people, seed=seed)
    t_gen = time.perf_counter() - t0
    t0 = time.perf_counter()
    inc = city.incidents
    day = (pd.to_datetime(inc["date"], format="%Y-%m-%d").to_numpy()
           .astype("datetime64[D]").astype(np.int64)).astype(np.int32)
    incidents = pd.DataFrame({"incident_id": inc["incident_id"].to_numpy(), "day": day,
                              "gun": inc["gun"].to_numpy() == "true",
                              "violent": inc["violent"].to_numpy() == "true"})
    as_of_day = int(day.max())          # as fdnet's validation does without --as-of
    n_inv = len(city.involvements)
    net = build_network(incidents, city.involvements, as_of_day=as_of_day,
                        window_days=WINDOW_DAYS, half_life_days=HALF_LIFE_DAYS)
    del city, incidents, inc
    t_build = time.perf_counter() - t0
    co = net.layers["co_offending"]
    victims = net.shooting_victims()
    net._shooting = None                # analyze recomputes it (and so pays for it) itself
    deg = np.diff(co.indptr)
    meta = {
        "n_people": n_people, "seed": seed, "as_of_day": as_of_day, "window_days": WINDOW_DAYS,
        "half_life_days": HALF_LIFE_DAYS, "n_persons": int(net.n_persons),
        "n_incidents_window": int(len(net.incident_ids)), "n_involvement_rows": int(n_inv),
        "n_edges": int(co.n_edges), "n_active": int((deg > 0).sum()), "max_degree": int(deg.max()),
        "n_victims": int(len(victims)), "n_victims_with_ties": int((deg[victims] > 0).sum()),
        "n_victimization_edges": int(net.layers["victimization"].n_edges),
        "generate_s": round(t_gen, 2), "build_network_s": round(t_build, 2),
        "cache_version": CACHE_VERSION, "network_fields": network_fields(),
    }
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components
    A = sp.csr_array((np.ones(len(co.indices), np.int8), co.indices, co.indptr),
                     shape=(net.n_persons, net.n_persons))
    _, lab = connected_components(A, directed=False)
    sizes = np.bincount(lab)
    meta["n_components_with_ties"] = int((sizes > 1).sum())
    meta["giant_component"] = int(sizes.max())
    del A, lab
    tmp = npz.with_suffix(".tmp.npz")
    np.savez(tmp, indptr=np.ascontiguousarray(co.indptr, np.int64),
             indices=np.ascontiguousarray(co.indices, np.int32),
             victims=np.ascontiguousarray(victims, np.int32), meta=np.array(json.dumps(meta)))
    tmp_pkl = pkl.with_suffix(".tmp")
    with open(tmp_pkl, "wb") as f:
        pickle.dump(net, f, protocol=5)
    os.replace(tmp_pkl, pkl)
    os.replace(tmp, npz)
    log(f"input: generated in {t_gen:.1f} s, network built in {t_build:.1f} s, cached {npz} "
        f"(+ {pkl.name})")
    return npz, pkl, meta


def network_fields() -> list[str]:
    """The fields of fdnet's Network: the pickled Network is rebuilt when they change."""
    import dataclasses

    from fdnet.graph.layers import Network
    return sorted(f.name for f in dataclasses.fields(Network))


def load_input(path: Path) -> dict:
    with np.load(path) as z:
        d = {k: np.ascontiguousarray(z[k]) for k in ("indptr", "indices", "victims")}
        d["meta"] = json.loads(str(z["meta"]))
    d["n"] = len(d["indptr"]) - 1
    return d


def edge_list(d: dict) -> tuple[np.ndarray, np.ndarray]:
    """The CSR's undirected edges, src < dst, sorted by (src, dst) (fdnet's Layer order)."""
    n, indptr, indices = d["n"], d["indptr"], d["indices"]
    rows = np.repeat(np.arange(n, dtype=np.int32), np.diff(indptr))
    keep = rows < indices
    return np.ascontiguousarray(rows[keep]), np.ascontiguousarray(indices[keep])


def make_layer(d: dict):
    from fdnet.graph.layers import Layer
    src, dst = edge_list(d)
    layer = Layer("co_offending", src, dst, np.ones(len(src), np.int32), None, None, None, None, None)
    layer.indptr, layer.indices = d["indptr"], d["indices"]
    layer.data = np.ones(len(d["indices"]), np.float64)
    return layer


def igraph_graph(d: dict, extra: int = 0):
    import igraph as ig
    src, dst = edge_list(d)
    return ig.Graph(n=d["n"] + extra, edges=np.column_stack([src, dst]).astype(np.int64),
                    directed=False)


def networkit_graph(d: dict, extra: int = 0):
    import networkit as nk
    nk.setNumberOfThreads(THREADS)
    src, dst = edge_list(d)
    g = nk.graph.Graph(d["n"] + extra, weighted=False, directed=False)
    g.addEdges((src.astype(np.uint64), dst.astype(np.uint64)))
    return g


def scipy_matrix(d: dict, dtype=np.int32):
    import scipy.sparse as sp
    return sp.csr_array((np.ones(len(d["indices"]), dtype), d["indices"], d["indptr"]),
                        shape=(d["n"], d["n"]))


# ======================================================================================
# The methods. setup(d) does the untimed part and returns a dict:
#   run()        what is timed;
#   result(out)  its output as numpy arrays (untimed);
#   reset()      optional, untimed, after each run (undo a mutation of the graph);
#   info         optional dict reported with the method.
# ======================================================================================

# ---- 1. exposure ------------------------------------------------------------------------

def exposure_fdnet(d):
    from fdnet import _core
    ip, ix, v = d["indptr"], d["indices"], d["victims"]
    return {"run": lambda: _core.exposure_counts(ip, ix, v),
            "result": lambda o: {"e1": o[0], "e2": o[1]}}


def _bincount_lists(lists, n):
    from itertools import chain
    flat = np.fromiter(chain.from_iterable(lists), dtype=np.int64)
    return np.bincount(flat, minlength=n).astype(np.int32)


def exposure_igraph(d):
    g, n, v = igraph_graph(d), d["n"], d["victims"]

    def run():
        vl = v.tolist()
        n1 = g.neighborhood(vl, order=1, mindist=1)
        n2 = g.neighborhood(vl, order=2, mindist=2)
        return _bincount_lists(n1, n), _bincount_lists(n2, n)
    return {"run": run, "result": lambda o: {"e1": o[0], "e2": o[1]}}


def exposure_networkit(d):
    g, n, v = networkit_graph(d), d["n"], d["victims"]

    def run():
        c1, c2 = [], []
        nb = g.iterNeighbors
        for s in v.tolist():
            first = list(nb(s))
            near = set(first)
            near.add(s)
            second = set()
            for u in first:
                second.update(nb(u))
            c1.extend(first)
            c2.extend(second - near)
        return (np.bincount(np.array(c1, np.int64), minlength=n).astype(np.int32),
                np.bincount(np.array(c2, np.int64), minlength=n).astype(np.int32))
    return {"run": run, "result": lambda o: {"e1": o[0], "e2": o[1]}}


def exposure_scipy(d):
    A, v = scipy_matrix(d), d["victims"]
    deg = np.diff(d["indptr"])

    def run():
        M = A[:, v]                                   # n x |V|: ties to each victim
        P = A @ M                                     # n x |V|: paths of length 2
        e1 = np.diff(M.indptr)                        # simple graph: one entry per victim
        both = P.multiply(M)                          # victims at distance 1 reached by a 2-path
        both.eliminate_zeros()
        self_hit = np.zeros(A.shape[0], np.int64)     # u -> w -> u for a victim u with a tie
        self_hit[v] = deg[v] > 0
        e2 = np.diff(P.indptr) - np.diff(both.indptr) - self_hit
        return e1.astype(np.int32), e2.astype(np.int32)
    return {"run": run, "result": lambda o: {"e1": o[0], "e2": o[1]}}


# ---- 2. distance to the nearest victim ----------------------------------------------------

def _cap(dist_plus_one: np.ndarray) -> np.ndarray:
    """Distances from a super-source (victims at 1) -> distance to the nearest victim, capped."""
    d = dist_plus_one.astype(np.int64) - 1
    d[(dist_plus_one < 1) | (d > MAX_DISTANCE)] = -1
    return d.astype(np.int32)


def distance_fdnet(d):
    from fdnet import _core
    ip, ix, v = d["indptr"], d["indices"], d["victims"]
    return {"run": lambda: _core.bfs_distances(ip, ix, v, MAX_DISTANCE),
            "result": lambda o: {"dist": o}}


def distance_igraph(d):
    n, v = d["n"], d["victims"]
    g = igraph_graph(d, extra=1)                      # vertex n: the super-source, no edges yet
    m0 = g.ecount()

    def run():
        g.add_edges(np.column_stack([np.full(len(v), n, np.int64), v.astype(np.int64)]))
        vids, layers, _ = g.bfs(n)
        vids, layers = np.asarray(vids, np.int64), np.asarray(layers, np.int64)
        dist = np.full(n + 1, -1, np.int64)
        dist[vids] = np.repeat(np.arange(len(layers) - 1), np.diff(layers))
        return _cap(dist[:n])

    def reset():
        g.delete_edges(range(m0, g.ecount()))
    return {"run": run, "result": lambda o: {"dist": o}, "reset": reset}


def distance_networkit(d):
    import networkit as nk
    n, v = d["n"], d["victims"]
    g = networkit_graph(d, extra=1)                   # node n: the super-source
    vu = v.astype(np.uint64)

    def run():
        g.addEdges((np.full(len(v), n, np.uint64), vu))
        dist = np.asarray(nk.distance.BFS(g, n, storePaths=False).run().getDistances())[:n]
        reached = dist < n + 1                        # unreachable: the largest double
        out = np.where(reached, dist, 0).astype(np.int64)
        return _cap(out)

    def reset():
        g.removeNode(n)
        g.restoreNode(n)
    return {"run": run, "result": lambda o: {"dist": o}, "reset": reset}


def distance_scipy(d):
    from scipy.sparse.csgraph import dijkstra
    A, v = scipy_matrix(d, np.float64), d["victims"]

    def run():
        # A is symmetric, so directed=True walks the same undirected graph without a copy
        dist = dijkstra(A, directed=True, indices=v, unweighted=True, limit=MAX_DISTANCE,
                        min_only=True)
        out = np.full(len(dist), -1, np.int32)
        fin = np.isfinite(dist)
        out[fin] = dist[fin].astype(np.int32)
        return out
    return {"run": run, "result": lambda o: {"dist": o}}


# ---- 3. k-core ------------------------------------------------------------------------------

def kcore_fdnet(d):
    from fdnet import _core
    ip, ix = d["indptr"], d["indices"]
    return {"run": lambda: _core.core_number(ip, ix), "result": lambda o: {"core": o}}


def kcore_igraph(d):
    g = igraph_graph(d)
    return {"run": lambda: np.asarray(g.coreness(), np.int32), "result": lambda o: {"core": o}}


def kcore_networkit(d):
    import networkit as nk
    g = networkit_graph(d)
    return {"run": lambda: np.asarray(nk.centrality.CoreDecomposition(g).run().scores()),
            "result": lambda o: {"core": np.rint(o).astype(np.int32)}}


# ---- 4. betweenness ---------------------------------------------------------------------------

def fdnet_betweenness_kwargs() -> dict:
    """The arguments analyze passes to fdnet's betweenness (from the default Policy)."""
    import inspect

    from fdnet.graph import centrality as cen
    from fdnet.policy import Policy
    ap = Policy().analytics
    kw = {"k": getattr(ap, "betweenness_pivots", PIVOTS), "seed": getattr(ap, "seed", BW_SEED)}
    params = inspect.signature(cen.betweenness).parameters
    for name in ("exact_work", "exact_limit"):
        if name in params and hasattr(ap, f"betweenness_{name}"):
            kw[name] = getattr(ap, f"betweenness_{name}")
    return kw


def fdnet_betweenness_impl() -> tuple[str, int]:
    """What fdnet's betweenness runs on (read from its source: it has changed before), threads."""
    import inspect

    from fdnet.graph import centrality as cen
    src = inspect.getsource(cen.betweenness)
    p = inspect.signature(cen.betweenness).parameters.get("n_threads")
    threads = p.default if p is not None and isinstance(p.default, int) else 1
    if "_core.betweenness_sources" in src:
        return (f"fdnet's own Cython/OpenMP Brandes kernel _core.betweenness_sources "
                f"({threads} threads)"), threads
    if "igraph" in src:
        return "igraph's C code (g.betweenness(sources=pivots)): fdnet uses igraph for this one", 1
    return "(not recognised: read fdnet/graph/centrality.py)", threads


def _active_subgraph(d):
    """Non-isolated people only (isolated people have zero betweenness and are on no path)."""
    n = d["n"]
    src, dst = edge_list(d)
    active = np.flatnonzero(np.diff(d["indptr"]) > 0)
    remap = np.full(n, -1, np.int64)
    remap[active] = np.arange(len(active))
    return active, remap[src], remap[dst]


def _to_n_scale(values_on_active, active, n):
    """Betweenness normalised over the n_a-node subgraph -> networkx normalisation over n people."""
    na = len(active)
    out = np.zeros(n)
    out[active] = np.asarray(values_on_active, float) * ((na - 1) * (na - 2)) / ((n - 1) * (n - 2))
    return out


def betweenness_fdnet(d):
    from fdnet.graph import centrality as cen
    layer = make_layer(d)
    kw = fdnet_betweenness_kwargs()

    def run():
        return cen.betweenness(layer, alpha=BW_ALPHA, **kw)

    def result(o):
        return {"bw": o.values, "exact": np.array(o.exact), "pivots": np.array(o.pivots),
                "eps": np.array(o.eps)}
    return {"run": run, "result": result,
            "info": {"kwargs": kw, "implementation": fdnet_betweenness_impl()[0]}}


def betweenness_igraph(d):
    """Brandes-Pich with igraph: k pivots drawn uniformly from the non-isolated people."""
    import igraph as ig
    n = d["n"]
    active, a, b = _active_subgraph(d)
    g = ig.Graph(n=len(active), edges=np.column_stack([a, b]), directed=False)
    rng = np.random.default_rng(BW_SEED)
    pivots = np.sort(rng.choice(len(active), size=PIVOTS, replace=False)).tolist()

    def run():
        return np.asarray(g.betweenness(directed=False, sources=pivots, targets=None), float)

    def result(raw):
        # igraph's subset betweenness halves each source's dependencies in the undirected case,
        # so sum_s delta_s(v) = 2 raw; unbiased over all sources: * n_a / k; networkx: / (n-1)(n-2)
        out = np.zeros(n)
        out[active] = 2.0 * raw * (len(active) / PIVOTS) / ((n - 1) * (n - 2))
        return {"bw": out}
    return {"run": run, "result": result, "info": {"pivots": PIVOTS, "n_active": int(len(active))}}


def _networkit_active(d):
    import networkit as nk
    nk.setNumberOfThreads(THREADS)
    active, a, b = _active_subgraph(d)
    g = nk.graph.Graph(len(active), weighted=False, directed=False)
    g.addEdges((a.astype(np.uint64), b.astype(np.uint64)))
    return g, active


def betweenness_networkit_estimate(d):
    import networkit as nk
    g, active = _networkit_active(d)

    def run():
        return np.asarray(nk.centrality.EstimateBetweenness(g, PIVOTS, normalized=True,
                                                            parallel=True).run().scores())
    return {"run": run, "result": lambda o: {"bw": _to_n_scale(o, active, d["n"])},
            "info": {"samples": PIVOTS, "n_active": int(len(active))}}


def approx_epsilon(n_active: int) -> float:
    """ApproxBetweenness's epsilon: the Hoeffding width for PIVOTS pivots over the n_a people.

    Chosen so that it draws about as many samples as fdnet has pivots (the sample count also
    depends on the vertex diameter it estimates); it is printed with the results.
    """
    return math.sqrt(math.log(2 * n_active / BW_ALPHA) / (2 * PIVOTS))


def betweenness_networkit_approx(d):
    import networkit as nk
    g, active = _networkit_active(d)
    eps = approx_epsilon(len(active))
    state = {}

    def run():
        a = nk.centrality.ApproxBetweenness(g, epsilon=eps, delta=BW_ALPHA)
        a.run()
        state["samples"] = a.numberOfSamples()
        return np.asarray(a.scores())

    return {"run": run,
            "result": lambda o: {"bw": _to_n_scale(o, active, d["n"]),
                                 "samples": np.array(state["samples"])},
            "info": {"epsilon_on_active_subgraph": eps, "delta": BW_ALPHA, "n_active": int(len(active))}}


# ---- 5. eigenvector ---------------------------------------------------------------------------

def _unit(x):
    x = np.abs(np.asarray(x, float))
    nrm = np.linalg.norm(x)
    return x / nrm if nrm > 0 else x


def eigenvector_fdnet(d):
    from fdnet.graph import centrality as cen
    layer = make_layer(d)
    return {"run": lambda: cen.eigenvector(layer), "result": lambda o: {"ev": _unit(o)}}


def eigenvector_igraph(d):
    g = igraph_graph(d)
    return {"run": lambda: g.eigenvector_centrality(),   # undirected graph (directed=False errors in igraph 1.0)
            "result": lambda o: {"ev": _unit(o)}}


def eigenvector_networkit(d):
    import networkit as nk
    g = networkit_graph(d)
    return {"run": lambda: nk.centrality.EigenvectorCentrality(g, tol=1e-9).run().scores(),
            "result": lambda o: {"ev": _unit(o)}}


# ---- 6. analyze, end to end ---------------------------------------------------------------------

class StageTimer:
    """Wall/CPU time and ru_maxrss growth of named calls inside analyze (per run)."""

    def __init__(self):
        self.runs: list[dict] = []
        self.cur: dict | None = None

    def start(self):
        self.cur = {}

    def stop(self) -> dict:
        out, self.cur = self.cur, None
        self.runs.append(out)
        return out

    def wrap(self, name, fn):
        timer = self

        def wrapped(*a, **kw):
            if timer.cur is None:
                return fn(*a, **kw)
            rss0 = _maxrss_mib()
            c0, t0 = time.process_time(), time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                t, c = time.perf_counter() - t0, time.process_time() - c0
                s = timer.cur.setdefault(name, {"calls": 0, "wall": 0.0, "cpu": 0.0, "rss_growth_mib": 0.0})
                s["calls"] += 1
                s["wall"] += t
                s["cpu"] += c
                s["rss_growth_mib"] += _maxrss_mib() - rss0
        wrapped.__wrapped__ = fn
        return wrapped


class _TimedModule:
    """Stands in for a module inside fdnet.graph.analytics; its functions are timed."""

    def __init__(self, mod, prefix, timer):
        self._mod, self._prefix, self._timer = mod, prefix, timer

    def __getattr__(self, name):
        attr = getattr(self._mod, name)
        if callable(attr) and not isinstance(attr, type):
            return self._timer.wrap(self._prefix + name, attr)
        return attr


# names analyze calls from its own module namespace (missing ones are simply not timed apart)
ANALYZE_STAGE_FUNCS = ("exposure_counts", "fit_hawkes", "current_hazard", "leiden_communities",
                       "choose_resolution", "merge_groups", "_conflicts", "_group_table", "_covariates")


def analyze_fdnet(d):
    import fdnet.graph.analytics as A
    from fdnet.policy import Policy
    net = d["net"]
    timer = StageTimer()
    A.cen = _TimedModule(A.cen, "centrality.", timer)
    A._core = _TimedModule(A._core, "_core.", timer)
    for name in ANALYZE_STAGE_FUNCS:
        if hasattr(A, name):
            setattr(A, name, timer.wrap(name, getattr(A, name)))
    for name in ("shooting_victims", "shooting_incidents"):
        setattr(net, name, timer.wrap(f"net.{name}", getattr(net, name)))
    policy = Policy()

    def run():
        timer.start()
        rss0 = _maxrss_mib()
        t0 = time.perf_counter()
        try:
            return A.analyze(net, persons=None, audit=None, relations=None, policy=policy)
        finally:
            st = timer.stop()
            st["_total"] = {"wall": time.perf_counter() - t0, "rss_growth_mib": _maxrss_mib() - rss0}

    def reset():
        net._shooting = None                          # analyze computes the shootings itself

    def result(an):
        p = an.person
        out = {c: p[c].to_numpy() for c in ("exposure_1", "exposure_2", "victim_distance",
                                            "core_number", "betweenness", "eigenvector")}
        out["n_groups"] = np.array(an.group_table.shape[0])
        out["n_conflicts"] = np.array(an.conflicts.shape[0])
        out["n_contagion_events"] = np.array(an.contagion_events.shape[0])
        return out
    return {"run": run, "result": result, "reset": reset, "stages": timer}


SETUPS = {
    ("exposure", "fdnet"): exposure_fdnet, ("exposure", "igraph"): exposure_igraph,
    ("exposure", "networkit"): exposure_networkit, ("exposure", "scipy"): exposure_scipy,
    ("distance", "fdnet"): distance_fdnet, ("distance", "igraph"): distance_igraph,
    ("distance", "networkit"): distance_networkit, ("distance", "scipy"): distance_scipy,
    ("kcore", "fdnet"): kcore_fdnet, ("kcore", "igraph"): kcore_igraph,
    ("kcore", "networkit"): kcore_networkit,
    ("betweenness", "fdnet"): betweenness_fdnet, ("betweenness", "igraph"): betweenness_igraph,
    ("betweenness", "networkit-estimate"): betweenness_networkit_estimate,
    ("betweenness", "networkit-approx"): betweenness_networkit_approx,
    ("eigenvector", "fdnet"): eigenvector_fdnet, ("eigenvector", "igraph"): eigenvector_igraph,
    ("eigenvector", "networkit"): eigenvector_networkit,
    ("analyze", "fdnet"): analyze_fdnet,
}
IMPORTS = {"fdnet": ["fdnet._core", "fdnet.graph.centrality"], "igraph": ["igraph"],
           "networkit": ["networkit"], "scipy": ["scipy.sparse", "scipy.sparse.csgraph"]}


# ======================================================================================
# Worker: one (quantity, method) in its own process; JSON lines on stdout (bench_projection's
# protocol, so its run_worker can drive it).
# ======================================================================================

def worker(spec: str, input_path: Path, mode: str, repeat: int, result_path: Path | None):
    import importlib
    q, m = spec.split(":", 1)
    lib = m.split("-")[0]
    for mod in IMPORTS[lib] + (["fdnet.graph.analytics", "fdnet.policy"] if q == "analyze" else []):
        importlib.import_module(mod)
    d = load_input(input_path)
    if q == "analyze":
        with open(network_path(input_path), "rb") as f:
            d["net"] = pickle.load(f)
    gc.collect()
    baseline = _maxrss_mib()
    t0 = time.perf_counter()
    meth = SETUPS[(q, m)](d)
    run, to_result, reset = meth["run"], meth["result"], meth.get("reset")
    _emit(event="ready", baseline_mib=baseline, setup_s=time.perf_counter() - t0)

    def save(out):
        res = {k: np.asarray(v) for k, v in to_result(out).items()}
        np.savez(result_path, **res)

    if mode == "check":
        t0 = time.perf_counter()
        out = run()
        t = time.perf_counter() - t0
        save(out)
        _emit(event="run", kind="check", seconds=t)
        _emit(event="done", peak_mib=_maxrss_mib(), baseline_mib=baseline, vmhwm_mib=_vmhwm_mib(),
              info=_jsonable(meth.get("info")), code=fdnet_fingerprint())
        return

    times, cpu, stages = [], [], []
    for i in range(repeat + 1):
        gc.collect()
        c0 = time.process_time()
        t0 = time.perf_counter()
        out = run()
        t = time.perf_counter() - t0
        c = time.process_time() - c0
        if i == 0 and result_path is not None:
            save(out)                                 # analyze: checked from its warm-up run
        del out
        if reset is not None:
            reset()
        st = meth["stages"].runs[-1] if "stages" in meth else None
        if i:
            times.append(t)
            cpu.append(c)
        stages.append(st)
        _emit(event="run", kind="timed" if i else "warmup", seconds=t, cpu_seconds=c,
              **({"stages": st} if st is not None else {}))
    _emit(event="done", peak_mib=_maxrss_mib(), baseline_mib=baseline, vmhwm_mib=_vmhwm_mib(),
          times=times, cpu_times=cpu, stages=stages if "stages" in meth else None,
          info=_jsonable(meth.get("info")), code=fdnet_fingerprint())


def network_path(npz_path: Path) -> Path:
    return npz_path.parent / (npz_path.name[:-len(".npz")] + ".network.pkl")


def _jsonable(x):
    if x is None:
        return None
    return json.loads(json.dumps(x, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


def run_worker(spec, input_path, mode, repeat, timeout, result_path, log):
    """bench_projection's run_worker, pointed at this script."""
    saved = bp.HERE
    bp.HERE = HERE            # run_worker launches `python <bp.HERE> --worker ...`
    try:
        return bp.run_worker(spec, input_path, mode, repeat, timeout, result_path, log)
    finally:
        bp.HERE = saved


# ======================================================================================
# Parent: checks, timing, report.
# ======================================================================================

def compare(q: str, m: str, ref: dict, got: dict) -> tuple[str, list[str], dict]:
    """(check column text, problems that abort the run, numbers for the JSON)."""
    if q in EXACT:
        problems = []
        for k in ref:
            a, b = np.asarray(ref[k]).astype(np.int64), np.asarray(got[k]).astype(np.int64)
            if a.shape != b.shape:
                problems.append(f"{q}/{m}: {k!r} has {b.shape} values, fdnet {a.shape}")
                continue
            bad = np.flatnonzero(a != b)
            if len(bad):
                e = bad[0]
                problems.append(f"{q}/{m}: {k!r} differs for {len(bad):,} people, first at person "
                                f"{e}: fdnet {a[e]}, {m} {b[e]}")
        return ("identical" if not problems else "DIFFERS"), problems, {"identical": not problems}
    if q == "eigenvector":
        diff = float(np.abs(ref["ev"] - got["ev"]).max())
        return f"max diff {diff:.1e}", [], {"max_abs_diff": diff}
    if q == "betweenness":
        a, b = ref["bw"], got["bw"]
        diff = float(np.abs(a - b).max())
        r = float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else float("nan")
        ta = set(np.argsort(-a, kind="stable")[:TOP_K].tolist())
        tb = set(np.argsort(-b, kind="stable")[:TOP_K].tolist())
        ov = len(ta & tb) / TOP_K
        text = f"max diff {diff:.1e}, r={r:.3f}, top{TOP_K} {ov:.0%}"
        return text, [], {"max_abs_diff": diff, "pearson_r": r, f"top{TOP_K}_overlap": ov,
                          "max_fdnet": float(a.max()), "max_method": float(b.max()),
                          "sum_ratio": float(b.sum() / a.sum()) if a.sum() else float("nan")}
    return "-", [], {}


def load_result(path: Path) -> dict:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--people", type=int, default=1_000_000, help="city size (default 1,000,000)")
    ap.add_argument("--seed", type=int, default=0, help="city seed (default 0)")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/fdnet-bench-cache"),
                    help="where the prepared input is cached (default /tmp/fdnet-bench-cache)")
    ap.add_argument("--quantities", default=",".join(QUANTITIES),
                    help=f"comma-separated subset of {','.join(QUANTITIES)}")
    ap.add_argument("--methods", default="fdnet,igraph,networkit,scipy",
                    help="peers to run: subset of fdnet,igraph,networkit,scipy (fdnet always runs; "
                         "'networkit' covers both NetworKit betweenness methods)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per method (default 3)")
    ap.add_argument("--analyze-repeat", type=int, default=2,
                    help="timed runs of the analyze step, after its warm-up (default 2)")
    ap.add_argument("--timeout", type=float, default=300.0,
                    help="seconds allowed for each step of a method (setup, each run); "
                         "past it the method is recorded as 'timeout' (default 300)")
    ap.add_argument("--analyze-timeout", type=float, default=1800.0,
                    help="the same for the analyze step, whose runs take minutes at 1M (default 1800)")
    ap.add_argument("--json", type=Path, help="save the results here")
    ap.add_argument("--no-snapshot", action="store_true",
                    help="import fdnet from the working tree in every process instead of a copy "
                         "taken at the start (the tree may change during the run)")
    # internal: worker mode (the arguments bench_projection.run_worker passes)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--input", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="time", help=argparse.SUPPRESS)
    ap.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        worker(args.worker, args.input, args.mode, args.repeat, args.result)
        return 0

    quantities = [q.strip() for q in args.quantities.split(",") if q.strip()]
    bad = [q for q in quantities if q not in QUANTITIES]
    if bad:
        ap.error(f"unknown quantit(y/ies) {bad}; choose from {list(QUANTITIES)}")
    libs = {x.strip() for x in args.methods.split(",") if x.strip()} | {"fdnet"}
    bad = libs - {"fdnet", "igraph", "networkit", "scipy"}
    if bad:
        ap.error(f"unknown method(s) {sorted(bad)}")
    if args.repeat < 1 or (args.analyze_repeat is not None and args.analyze_repeat < 1):
        ap.error("--repeat and --analyze-repeat must be at least 1")
    a_repeat, a_timeout = args.analyze_repeat, args.analyze_timeout
    try:
        import networkit  # noqa: F401
    except ImportError:
        if "networkit" in libs:
            print("networkit is not installed (pip install networkit): its methods are skipped")
        libs.discard("networkit")
    plan = {q: [m for m in QUANTITIES[q] if m.split("-")[0] in libs] for q in quantities}
    log = lambda *a: print(*a, flush=True)  # noqa: E731

    snap_dir = None
    live = None
    if not args.no_snapshot:
        import importlib.util
        live_root = Path(importlib.util.find_spec("fdnet").origin).resolve().parent
        snap_dir = tempfile.TemporaryDirectory(prefix="fdnet-bench-snapshot-")
        snapshot_fdnet(Path(snap_dir.name))
        os.environ["PYTHONPATH"] = snap_dir.name + (os.pathsep + os.environ["PYTHONPATH"]
                                                    if os.environ.get("PYTHONPATH") else "")
        sys.path.insert(0, snap_dir.name)
        importlib.invalidate_caches()
        live = live_root
    info = bp.machine_info()
    import importlib
    for name in ("networkit", "leidenalg"):
        try:
            mod = importlib.import_module(name)
            info[name] = getattr(mod, "__version__", None) or getattr(mod, "version", "?")
        except Exception as exc:  # noqa: BLE001
            info[name] = f"not importable ({type(exc).__name__})"
    log("== fdnet network analytics benchmark ==")
    log(f"date      {info['date']}")
    log(f"machine   nproc={info['nproc']} (affinity {info['affinity']}), {info.get('cpu', '?')}, "
        f"{info.get('mem_gib', '?')} GiB RAM, load average at start "
        + " ".join(f"{x:.2f}" for x in info["loadavg_start"]))
    log(f"versions  python {info['python']}, numpy {info['numpy']}, pandas {info['pandas']}, "
        f"scipy {info['scipy']}, igraph {info['igraph']}, networkit {info['networkit']}, "
        f"leidenalg {info['leidenalg']}, fdnet {info['fdnet']}")
    info["fdnet_code"] = fdnet_fingerprint()
    log(f"fdnet     sources sha256 {info['fdnet_code']['sources_sha256']} ({info['fdnet_code']['n_files']} "
        f".py/.pyx files), _core built {info['fdnet_code']['core_built']}; "
        + (f"every process imports a copy of {live} taken now" if live else
           f"imported from the working tree {info['fdnet_code']['path']} (--no-snapshot)"))
    if live and "fdnet-bench-snapshot-" not in info["fdnet_code"]["path"]:
        raise SystemExit(f"ABORT: fdnet was not imported from the snapshot ({info['fdnet_code']['path']})")
    log(f"env       OPENBLAS_CORETYPE={info['OPENBLAS_CORETYPE']} OPENBLAS_L2_SIZE="
        f"{info['OPENBLAS_L2_SIZE']} OMP_NUM_THREADS={info['OMP_NUM_THREADS']} (left as found)")

    npz, pkl, meta = prepare(args.people, args.seed, args.cache, log)
    n = meta["n_persons"]
    log(f"workload  N={args.people:,} people (seed {args.seed}), as of day {meta['as_of_day']}, "
        f"{WINDOW_DAYS}-day window: {meta['n_persons']:,} persons in the network "
        f"({meta['n_active']:,} with a co-offending tie), {meta['n_edges']:,} co-offending edges "
        f"(max degree {meta['max_degree']}, giant component {meta['giant_component']:,}), "
        f"{meta['n_victims']:,} shooting victims ({meta['n_victims_with_ties']:,} with a tie)")
    log(f"threads   NetworKit {THREADS}; fdnet's kernels, igraph and SciPy 1")
    log(f"timeout   {args.timeout:g} s per step (analyze {a_timeout:g} s); repeat {args.repeat} "
        f"timed runs after 1 warm-up (analyze: {a_repeat})\n")

    results = {q: {m: {"method": m} for m in plan[q]} for q in quantities}
    refs = {}

    code_changes = []

    def note_code(q, m, o):
        """fdnet is edited while this runs: flag any worker that ran other code than at the start."""
        c = (o.get("code") or {}).get("sources_sha256")
        if c and c != info["fdnet_code"]["sources_sha256"]:
            code_changes.append(f"{q}/{m}: {c}")
            log(f"    WARNING: {q}/{m} ran fdnet sources {c}, not {info['fdnet_code']['sources_sha256']} "
                f"as at the start: fdnet changed during this run")

    def take_result(q, m, got, r):
        """fdnet's result becomes the reference; a peer's is compared with it."""
        if m == "fdnet":
            refs[q] = got
            r["check"] = "reference"
            extra = ""
            if q == "betweenness":
                extra = (f" (exact={bool(got['exact'])}, pivots {int(got['pivots'])}, "
                         f"error bound {float(got['eps']):.3f} at {1 - BW_ALPHA:.0%})")
            log(f"    {q}/fdnet: reference{extra}")
            return
        if q not in refs:
            r["check"] = "no fdnet reference"
            return
        text, problems, nums = compare(q, m, refs[q], got)
        if problems:
            log("\nABORT: results differ from fdnet's:\n  " + "\n  ".join(problems))
            raise SystemExit(2)
        if "samples" in got:
            nums["samples"] = int(got["samples"])
            text += f", {int(got['samples'])} samples"
        r["check"], r["check_numbers"] = text, nums
        log(f"    {q}/{m}: {text}")

    with tempfile.TemporaryDirectory(prefix="fdnet-bench-an-") as tmp:
        # ---- 1. correctness of the exact quantities, before any timing ----------------------
        # exposure, distance and k-core must be identical to fdnet's: each method runs once in
        # its own process and any difference aborts the run. The sampled/iterative quantities
        # (betweenness, eigenvector) and analyze cannot be identical and abort nothing: they are
        # compared from the warm-up run of their timing process, which saves its result.
        if any(q in EXACT for q in quantities):
            log("-- correctness: each method once, in its own process, compared with fdnet --")
        for q in quantities:
            if q not in EXACT:
                continue
            for m in plan[q]:
                rp = Path(tmp) / f"{q}-{m}.npz"
                o = run_worker(f"{q}:{m}", npz, "check", 1, args.timeout, rp, log)
                r = results[q][m]
                r["check_run"] = {k: v for k, v in o.items() if k != "events"}
                note_code(q, m, o)
                if o["status"] != "ok":
                    r["check"] = o["status"]
                    log(f"    {q}/{m}: {o['status']}" + (f" - {o.get('error')}" if o.get("error") else ""))
                    if m == "fdnet":
                        raise SystemExit(f"ABORT: fdnet's {q} did not finish ({o['status']}): "
                                         f"{o.get('error', '')}")
                    continue
                r["check_s"] = o["partial_times"][0]
                take_result(q, m, load_result(rp), r)
                if m != "fdnet":
                    rp.unlink()

        # ---- 2. timing --------------------------------------------------------------------------
        log("\n-- timing: each method in its own process, 1 warm-up + timed runs --")
        for q in quantities:
            for m in plan[q]:
                r = results[q][m]
                if q in EXACT and r.get("check") in ("timeout", "error"):
                    r["status"] = r["check"]
                    continue
                rp = None if q in EXACT else Path(tmp) / f"{q}-{m}-warmup.npz"
                r["loadavg"] = os.getloadavg()
                o = run_worker(f"{q}:{m}", npz, "time", a_repeat if q == "analyze" else args.repeat,
                               a_timeout if q == "analyze" else args.timeout, rp, log)
                r["status"] = o["status"]
                r["baseline_mib"] = o.get("baseline_mib")
                r["setup_s"] = o.get("setup_s")
                note_code(q, m, o)
                if o.get("info"):
                    r["info"] = o["info"]
                if rp is not None and rp.exists() and q != "analyze":
                    take_result(q, m, load_result(rp), r)
                if o["status"] != "ok":
                    r["times"] = o["partial_times"]
                    r["error"] = o.get("error")
                    r.setdefault("check", o["status"])
                    log(f"    {q}/{m}: {o['status']}" + (f" - {o.get('error')}" if o.get("error") else ""))
                    if q == "analyze" and o["partial_times"]:
                        r["stages"] = [e.get("stages") for e in o["events"] if e.get("event") == "run"]
                    continue
                r.update(times=o["times"], cpu_times=o["cpu_times"], best_s=min(o["times"]),
                         median_s=statistics.median(o["times"]),
                         cpu_median_s=statistics.median(o["cpu_times"]), peak_mib=o["peak_mib"],
                         delta_mib=o["peak_mib"] - o["baseline_mib"], vmhwm_mib=o.get("vmhwm_mib"))
                if q == "analyze":
                    r["stages"] = o.get("stages")
                    got = load_result(rp)
                    checks, problems = [], []
                    for col, (rq, key) in {"exposure_1": ("exposure", "e1"), "exposure_2": ("exposure", "e2"),
                                           "victim_distance": ("distance", "dist"),
                                           "core_number": ("kcore", "core"),
                                           "betweenness": ("betweenness", "bw"),
                                           "eigenvector": ("eigenvector", "ev")}.items():
                        if rq not in refs:
                            continue
                        a, b = np.asarray(refs[rq][key], float), np.asarray(got[col], float)
                        diff = float(np.abs(a - b).max()) if a.shape == b.shape else float("inf")
                        checks.append(f"{col} {'identical' if diff == 0 else f'max diff {diff:.1e}'}")
                        if rq in EXACT and diff != 0:
                            problems.append(col)
                    r["check"] = ("its columns vs the fdnet results above: " + ", ".join(checks)) if checks else "-"
                    r["outputs"] = {k: int(got[k]) for k in ("n_groups", "n_conflicts", "n_contagion_events")}
                    if problems:
                        log(f"    WARNING: analyze's {problems} differ from the fdnet kernels' results")
    info["loadavg_end"] = os.getloadavg()

    # ---- 3. report ------------------------------------------------------------------------------
    header = ["method", "best s", "median s", "ratio best", "ratio median", "cpu s",
              "peak RSS MiB", "peak-base MiB", "thr", "load1", "check"]
    log(f"\n== results: N={args.people:,} people, {n:,} persons, {meta['n_edges']:,} co-offending "
        f"edges, {meta['n_victims']:,} shooting victims; {info['date']} ==")
    log("ratio = method time / fdnet time (>1: fdnet is faster). peak RSS = ru_maxrss of the method's "
        "process; peak-base = minus its baseline after imports and loading the input (for analyze the "
        "baseline includes the loaded Network). cpu s = median CPU time of the process per timed run "
        "(all threads). load1 = 1-minute load average when the method's timing process started.")
    for q in quantities:
        f = results[q].get("fdnet", {})
        rows = []
        for m in plan[q]:
            r = results[q][m]
            if r.get("status") == "ok":
                rb = r["best_s"] / f["best_s"] if f.get("best_s") else float("nan")
                rm = r["median_s"] / f["median_s"] if f.get("median_s") else float("nan")
                r["ratio_best"], r["ratio_median"] = rb, rm
                rows.append([m, f"{r['best_s']:.3f}", f"{r['median_s']:.3f}", f"{rb:.2f}x",
                             f"{rm:.2f}x", f"{r['cpu_median_s']:.3f}", f"{r['peak_mib']:.0f}",
                             f"{r['delta_mib']:.0f}", threads_used(q, m),
                             f"{r['loadavg'][0]:.2f}", r.get("check", "-")])
            else:
                st = r.get("status", r.get("check", "?"))
                rows.append([m, st, st, "-", "-", "-", "-", "-", threads_used(q, m),
                             f"{r['loadavg'][0]:.2f}" if "loadavg" in r else "-", r.get("check", "-")])
        log(f"\n-- {q}: {TITLES[q]} --")
        log(fmt_table(rows, header, right={1, 2, 3, 4, 5, 6, 7, 8, 9}))
        for m in plan[q]:
            log(f"  {m}: {DOES[(q, m)]}")
        if q == "betweenness":
            fb = results[q].get("fdnet", {})
            ref = refs.get("betweenness")
            bound = (f"fdnet's own bound for this run: every value within {float(ref['eps']):.2g} of the "
                     f"exact one with probability {1 - BW_ALPHA:.0%} (exact={bool(ref['exact'])}, "
                     f"{int(ref['pivots']):,} sources in all). " if ref is not None else "")
            log(f"  fdnet's betweenness runs on {fdnet_betweenness_impl()[0]}; called as analyze calls it: "
                f"{(fb.get('info') or {}).get('kwargs')}.")
            log(f"  All estimate networkx-normalised betweenness (undirected, endpoints excluded, divided by "
                f"(n-1)(n-2)/2 pairs, n = {n:,} persons). {bound}The peers run on the "
                f"{meta['n_active']:,} non-isolated people (graph built untimed; isolated people are on no "
                f"path, and sampling them would waste samples), rescaled to n. ApproxBetweenness gets "
                f"epsilon {approx_epsilon(meta['n_active']):.3f} on that subgraph's normalisation, delta "
                f"{BW_ALPHA}. Sampled estimates differ between methods by construction: the check column "
                f"is each one's agreement with fdnet's (max abs diff, Pearson r, overlap of the top {TOP_K}).")
        if q == "analyze" and results[q].get("fdnet", {}).get("stages"):
            report_stages(results[q]["fdnet"], log)

    # ---- targets ---------------------------------------------------------------------------------
    targets = {}
    if "exposure" in results and results["exposure"].get("fdnet", {}).get("status") == "ok":
        ex = results["exposure"]
        peers = [(m, r) for m, r in ex.items() if m != "fdnet" and r.get("status") == "ok"]
        if peers:
            mb = min(peers, key=lambda x: x[1]["best_s"])
            mm = min(peers, key=lambda x: x[1]["median_s"])
            sb, sm = mb[1]["best_s"] / ex["fdnet"]["best_s"], mm[1]["median_s"] / ex["fdnet"]["median_s"]
            targets["exposure_2x"] = {"fastest_peer_best": mb[0], "speedup_best": sb,
                                      "fastest_peer_median": mm[0], "speedup_median": sm,
                                      "met": sb >= 2 and sm >= 2}
    if "analyze" in results and results["analyze"].get("fdnet", {}).get("status") == "ok":
        r = results["analyze"]["fdnet"]
        targets["analyze_60s"] = {"best_s": r["best_s"], "median_s": r["median_s"],
                                  "met": r["median_s"] <= 60, "peak_mib": r["peak_mib"],
                                  "baseline_mib": r["baseline_mib"]}
    elif "analyze" in results and "status" in results["analyze"].get("fdnet", {}):
        targets["analyze_60s"] = {"met": False, "status": results["analyze"]["fdnet"]["status"]}
    if targets:
        log("\n== targets ==")
        t = targets.get("exposure_2x")
        if t:
            log(f"exposure >= 2x faster than the fastest peer: {'MET' if t['met'] else 'NOT MET'} "
                f"({t['speedup_best']:.1f}x on best times vs {t['fastest_peer_best']}, "
                f"{t['speedup_median']:.1f}x on medians vs {t['fastest_peer_median']})")
        t = targets.get("analyze_60s")
        if t and "status" in t:
            log(f"whole analytics step <= 60 s: NOT MET (analyze: {t['status']})")
        elif t:
            log(f"whole analytics step <= 60 s on {info['affinity']} cores: "
                f"{'MET' if t['met'] else 'NOT MET'} (best {t['best_s']:.1f} s, median "
                f"{t['median_s']:.1f} s); peak memory {t['peak_mib']:.0f} MiB RSS "
                f"({t['baseline_mib']:.0f} MiB of it the process with the loaded Network)")
    if live is not None:
        now = _tree_fingerprint(live)
        if now != info["fdnet_code"]["sources_sha256"]:
            log(f"note: fdnet's working tree changed during the run (now {now}); this run measured the "
                f"copy taken at the start ({info['fdnet_code']['sources_sha256']})")
        info["fdnet_tree_at_end"] = now
    if code_changes:
        log("WARNING: fdnet's code changed during this run; these workers ran other sources than "
            "at the start, so the results mix versions: " + "; ".join(code_changes))
    else:
        log(f"fdnet's sources were the same ({info['fdnet_code']['sources_sha256']}) in every worker")
    info["fdnet_code_changes"] = code_changes
    log("load average at end " + " ".join(f"{x:.2f}" for x in info["loadavg_end"]))

    if args.json:
        payload = {"machine": info, "params": {"people": args.people, "seed": args.seed,
                                               "repeat": args.repeat, "analyze_repeat": a_repeat,
                                               "timeout": args.timeout, "analyze_timeout": a_timeout,
                                               "plan": plan},
                   "input": meta, "results": results, "targets": targets}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2, default=str))
        log(f"saved {args.json}")
    return 0


def report_stages(r: dict, log):
    """analyze's stages: median over the timed runs of each stage's wall and CPU time."""
    runs = [s for s in (r.get("stages") or [])[1:] if s]      # timed runs (not the warm-up)
    warm = (r.get("stages") or [None])[0] or {}
    label = f"median of {len(runs)} timed runs"
    if not runs and warm:
        runs, label = [warm], "the warm-up run only"
    if not runs:
        return
    names = sorted({k for s in runs for k in s if k != "_total"},
                   key=lambda k: -statistics.median([s.get(k, {}).get("wall", 0.0) for s in runs]))
    total = statistics.median([s["_total"]["wall"] for s in runs])
    rows, covered = [], 0.0
    for k in names:
        w = statistics.median([s.get(k, {}).get("wall", 0.0) for s in runs])
        c = statistics.median([s.get(k, {}).get("cpu", 0.0) for s in runs])
        covered += w
        rows.append([k, str(runs[0].get(k, {}).get("calls", 0)), f"{w:.3f}", f"{c:.3f}",
                     f"{w / total * 100:.0f}%", f"{warm.get(k, {}).get('rss_growth_mib', 0.0):.0f}"])
    rows.append(["(rest: pandas columns, masks, glue)", "-", f"{total - covered:.3f}", "-",
                 f"{(total - covered) / total * 100:.0f}%", "-"])
    rows.append(["total", "-", f"{total:.3f}", "-", "100%",
                 f"{warm.get('_total', {}).get('rss_growth_mib', 0.0):.0f}"])
    log(f"\n  analyze stages ({label}; peak-RSS growth during each stage in the warm-up run, "
        f"the process's first):")
    log("\n".join("  " + line for line in fmt_table(
        rows, ["stage", "calls", "wall s", "cpu s", "of total", "peak growth MiB"],
        right={1, 2, 3, 4, 5}).splitlines()))


if __name__ == "__main__":
    sys.exit(main())
