"""One finished run as one object: ``fdnet.run(data_dir) -> Run``.

``fdnet.run(...)`` reads, validates and analyses an input folder, scores everyone in the network,
builds the three lists with their explanations and the disparity table, and returns a frozen
:class:`Run` holding all of it; it writes nothing. :meth:`Run.write` writes the run folder (all or
nothing, streamed file by file through :mod:`fdnet.runfolder`), exactly what ``fdnet run`` writes.
(This module is callable: ``fdnet.run(...)`` is :func:`run`.)

>>> import tempfile, pathlib, fdnet
>>> from fdnet.synth import generate_city, write_city
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = write_city(generate_city(n_people=1500, seed=2), d / "city")
>>> r = fdnet.run(d / "city")
>>> repr(r).startswith("Run(as_of=") and set(r.lists) >= {"call_in", "call_in_groups"}
True
>>> pid = r.lists["service_referrals"]["person_id"].iloc[0]
>>> r.explain(pid)["person_id"] == pid
True
>>> folder = r.write(d / "out")
>>> fdnet.open_run(folder).manifest["outputs"] == r.manifest["outputs"]
True
"""
from __future__ import annotations

import json
import platform
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd

from . import __version__
from .errors import UsageError
from .runfolder import (LIST_NAMES, MANIFEST_FILE, listed_of, REPORT_FILE, file_stats, iter_tables, manifest_bytes,
                        sha256_bytes, write_run_folder)

STEPS = ("read and validate", "build networks", "network analytics", "features and scores", "lists",
         "explanations", "places", "report")


@dataclass(frozen=True)
class Run:
    """Everything one run computed (see the module docstring). The tables are the run folder's, in memory.

    ``lists`` maps ``call_in``, ``custom_notifications``, ``service_referrals`` and ``call_in_groups`` to
    their frames; ``explanations`` has ``person_id`` (sorted) and ``json`` (the line of explanations.jsonl);
    ``manifest`` is manifest.json as a dict (its ``outputs`` filled by :meth:`write` or :meth:`files`);
    ``changes`` is changes.csv (:func:`fdnet.lists.changes.changes`) for a run made with a previous run,
    else None.
    """

    policy: object
    records: object
    network: object
    analytics: object
    scores: pd.DataFrame
    lists: dict
    explanations: pd.DataFrame
    disparity: pd.DataFrame
    summary: dict
    manifest: dict
    data_dir: Path | None = None
    changes: pd.DataFrame | None = None
    places: object | None = None      # fdnet.places.Places when incidents carry lat/lon, else None
    resolution: object | None = None     # fdnet.resolution.Resolved when entity resolution is on

    def __repr__(self) -> str:
        sizes = ", ".join(f"{n}={len(self.lists[n])}" for n in LIST_NAMES if n in self.lists)
        return (f"Run(as_of={self.manifest.get('as_of')!r}, people_in_network={self.network.n_persons}, "
                f"groups={int(self.analytics.groups.n_detected)} detected, {sizes})")

    @property
    def edges(self) -> pd.DataFrame:
        """edges.csv as a frame (co-offending rows, then victimization), made from the network's layers each
        time it is asked for and not kept: at a million people it is about 260 MB that no stage needs held."""
        return edges_frame(self.network)

    # ------------------------------------------------------------------ the tables, by run-folder key
    def table(self, key: str) -> pd.DataFrame | None:
        """The frame written to ``<key>.csv`` (:data:`fdnet.runfolder.FILES` names the keys), or None."""
        an, rec = self.analytics, self.records
        if key in self.lists:
            return self.lists[key]
        return {
            "rejected": lambda: rec.rejected,
            "edges": lambda: self.edges,
            "groups": lambda: an.groups.table,
            "group_table": lambda: self.group_table,
            "conflicts": lambda: an.conflicts,
            "contagion_events": lambda: an.contagion_events,
            "scores": lambda: self.scores,
            "disparity": lambda: self.disparity,
            "changes": lambda: self.changes,
            **({"places": lambda: self.places.cells, "risk_factors": lambda: self.places.factors,
                "place_list": lambda: self.places.place_list, "near_repeats": lambda: self.places.knox}
               if self.places is not None else {}),
            "resolution": lambda: self.resolution.table if self.resolution is not None else None,
            "resolution_review": lambda: self.resolution.review if self.resolution is not None else None,
        }.get(key, lambda: None)()

    @property
    def groups(self) -> pd.DataFrame:
        return self.analytics.groups.table

    @property
    def group_table(self) -> pd.DataFrame:
        """group_table.csv: the analytics' group table, with each group's territory when places ran."""
        from .places import with_territory
        return with_territory(self.analytics.group_table, self.places)

    def listed(self) -> dict[str, list[str]]:
        """person_id -> the lists they are on, in list order."""
        return listed_of(self.lists)

    # ------------------------------------------------------------------ people
    def explain(self, person_id: str) -> dict:
        """Why ``person_id`` scored what they did: the explanations.jsonl object for a listed person,
        else the same record made now (lists empty)."""
        ex = self.explanations
        i = np.searchsorted(ex["person_id"].to_numpy(dtype=object), person_id) if len(ex) else 0
        if i < len(ex) and ex["person_id"].iloc[i] == person_id:
            return json.loads(ex["json"].iloc[i])
        ids = self.network.person_ids
        j = int(np.searchsorted(ids, person_id)) if len(ids) else 0
        if j >= len(ids) or ids[j] != person_id:
            raise UsageError(f"{person_id!r} is not in this run's network (no involvement inside the window, or "
                             "not in the input)")
        from .scoring.explain import Explainer
        rec = self.records
        e = Explainer(self.network, rec.involvements, self.scores, self.policy, [person_id], analytics=self.analytics,
                      persons=rec.persons, lists={k: self.lists[k] for k in LIST_NAMES})
        return e.explain(person_id, [])

    def to_networkx(self, layer: str = "co_offending"):
        """The layer as a networkx Graph: person IDs as nodes, edges.csv's columns as edge attributes."""
        import networkx as nx
        if layer not in self.network.layers:
            raise UsageError(f"no layer {layer!r}; layers: {', '.join(self.network.layers)}")
        g = nx.Graph()
        g.add_nodes_from(self.network.person_ids.tolist())
        e = self.network.layers[layer].edges_frame(self.network)
        g.add_edges_from((a, b, {"weight": int(w), "incidents": int(n), "first_date": f, "last_date": last,
                                 "incident_ids": ids})
                         for a, b, w, n, f, last, ids in zip(e["person_a"], e["person_b"], e["weight"], e["incidents"],
                                                             e["first_date"], e["last_date"], e["incident_ids"]))
        return g

    # ------------------------------------------------------------------ files
    def _outputs(self) -> Iterator[tuple[str, bytes]]:
        """Every output file but the manifest, one at a time: the tables, explanations.jsonl, then
        report.html rendered from this Run and the sizes and hashes of the files before it."""
        from .report.html import render_run_report
        stats: dict[str, dict] = {}
        for name, data in iter_tables(self):
            stats[name] = file_stats(name, data)
            yield name, data
            del data
        yield REPORT_FILE, render_run_report(self, stats).encode("utf-8")

    def files(self) -> Iterator[tuple[str, bytes]]:
        """Every file of the run folder as (name, bytes), one at a time, manifest.json last (its
        ``outputs`` filled from the files before it)."""
        outputs = {}
        for name, data in self._outputs():
            outputs[name] = {"sha256": sha256_bytes(data), "bytes": len(data)}
            yield name, data
        self.manifest["outputs"] = dict(sorted(outputs.items()))
        yield MANIFEST_FILE, manifest_bytes(self.manifest)

    def report_html(self) -> str:
        """report.html's text (what :meth:`write` writes)."""
        for name, data in self._outputs():
            if name == REPORT_FILE:
                return data.decode("utf-8")
        raise AssertionError("no report")   # pragma: no cover

    def write(self, out_dir: str | Path, *, sign_key: bytes | None = None,
              progress: Callable[[str], None] | None = None) -> Path:
        """Write the run folder into the new or empty ``out_dir``, all or nothing (and ``manifest.sig``
        with a signing key), streamed: each table written as CSV piece by piece and hashed as written,
        the report rendered from this Run and those hashes, the manifest last. Returns the folder's path
        and fills ``manifest["outputs"]``. ``progress`` is called with "report", the last stage
        (:data:`STEPS`): serialising the tables, rendering the report and writing happen here."""
        from .report.html import run_report_pieces
        from .runfolder import FILES, EXPLANATIONS_FILE, Pieces, TableFrames, explanations_bytes
        release_memory()
        if progress:
            progress("report")
        stats: dict[str, dict] = {}

        def items():
            for f in FILES:
                if f.kind == "csv" and f.source == "edges":
                    # streamed a piece of ties at a time: the whole frame is about 260 MB at a million people
                    yield f.name, TableFrames(lambda: edge_frames(self.network))
                elif f.kind == "csv":
                    df = self.table(f.source)
                    if df is not None:
                        yield f.name, df
                elif f.name == EXPLANATIONS_FILE:
                    yield f.name, explanations_bytes(self.explanations["json"])
            # every file above is written (and in stats) before the report is made
            yield REPORT_FILE, Pieces(run_report_pieces(self, dict(stats)))

        # the freed Arrow and C-library memory of each file (a table's pieces, explanations.jsonl's text) goes
        # back to the system before the next (else the report's context, made last, came on top of it: 2,513
        # against 2,434 MiB at 1M people)
        return write_run_folder(items(), self.manifest, out_dir, sign_key=sign_key, stats=stats,
                                after_file=release_memory)


EDGE_LAYERS = ("co_offending", "victimization")


def edges_frame(net) -> pd.DataFrame:
    """edges.csv's rows for ``net``: each layer's :meth:`~fdnet.graph.layers.Layer.edges_frame`, in
    :data:`EDGE_LAYERS` order."""
    return pd.concat([net.layers[n].edges_frame(net) for n in EDGE_LAYERS], ignore_index=True)


EDGE_PIECE = 1 << 18


def edge_frames(net) -> Iterator[pd.DataFrame]:
    """:func:`edges_frame` in pieces of :data:`EDGE_PIECE` ties (each layer at least one, so that the file
    has its header when there are no ties): what :meth:`Run.write` streams into edges.csv."""
    for n in EDGE_LAYERS:
        L = net.layers[n]
        for lo in range(0, max(L.n_edges, 1), EDGE_PIECE):
            yield L.edges_frame(net, lo, lo + EDGE_PIECE)


def release_memory() -> None:
    """Hand memory that has been freed back to the operating system (between stages).

    Arrow's allocator and the C library's keep freed blocks for reuse, and neither reuses the other's:
    after reading a million-person city about 450 MB of the process's resident memory was such freed
    blocks. ``pyarrow``'s pool releases its unused memory and glibc's ``malloc_trim`` its free pages;
    nothing live moves, no output changes. Elsewhere than glibc only the Arrow part applies.

    >>> release_memory()
    """
    import pyarrow as pa
    pa.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


_TRIM: list = []


def _malloc_trim():
    if not _TRIM:
        try:
            import ctypes
            _TRIM.append(ctypes.CDLL("libc.so.6").malloc_trim)
        except (OSError, AttributeError):
            _TRIM.append(None)
    return _TRIM[0]


def _versions() -> dict:
    import igraph
    import pyarrow
    import scipy
    return {"python": platform.python_version(), "numpy": np.__version__, "pandas": pd.__version__,
            "pyarrow": pyarrow.__version__, "scipy": scipy.__version__, "igraph": igraph.__version__}


def load_previous_groups(previous_run) -> tuple[pd.DataFrame | None, dict | None]:
    """An earlier run's groups.csv (for stable group names) and its manifest entry (``inputs.previous_groups``).

    ``previous_run``: the earlier run folder's path, or that folder already opened
    (:func:`fdnet.lists.changes.open_previous`, which refuses a folder that does not match its manifest).
    """
    if previous_run is None:
        return None, None
    from .lists.changes import open_previous
    from .runfolder import RunFolder
    rf = previous_run if isinstance(previous_run, RunFolder) else open_previous(previous_run)
    df = rf.table("groups")
    return df, {"path": str((rf.path / "groups.csv").resolve()), "sha256": sha256_bytes(rf.raw["groups.csv"])}


def run(data_dir: str | Path, *, as_of: str | None = None, policy=None, mapping_path: str | Path | None = None,
        previous_run: str | Path | None = None, today: str | None = None,
        progress: Callable[[str], None] | None = None, previous_groups: pd.DataFrame | None = None) -> Run:
    """Compute a whole run in memory (writes nothing); see the module docstring.

    ``policy``: a :class:`~fdnet.policy.Policy`, a dict, or a path to a policy YAML file.
    ``previous_run``: an earlier run folder, checked against its manifest: its groups.csv lets detected
    groups keep their names, and the run gets ``changes`` (changes.csv: who entered and left each list
    since then, and why) and the manifest ``previous`` (that folder, its manifest's SHA-256, its as-of
    date). ``previous_groups``: only a groups table to keep names from (no changes). ``today``: the day of the run (default the machine's
    date; records dated after it are rejected as dated in the future). ``progress`` is called with each
    stage's name (:data:`STEPS`) as it starts.
    """
    from .api import study
    from .lists.build import build_lists
    from .lists.changes import previous_entry
    from .lists.disparity import disparity_summary, disparity_table
    from .records.validate import day_to_iso
    from .scoring.explain import explain_listed

    def step(name: str) -> None:
        release_memory()
        if progress:
            progress(name)

    prev_entry = prev_rf = None
    if previous_run is not None:
        from .lists.changes import open_previous
        prev_rf = open_previous(previous_run)
        previous_groups, prev_entry = load_previous_groups(prev_rf)
    st = study(data_dir, as_of=as_of, policy=policy, mapping_path=mapping_path, previous_groups=previous_groups,
               progress=step, today=today)
    rec, net, an, scores, policy = st.records, st.network, st.analytics, st.scores, st.policy
    co = net.layers["co_offending"]
    groups = an.groups

    step("lists")
    lists = build_lists(scores, policy, rec.as_of_day, co_offending=co, persons=rec.persons,
                        as_of=rec.as_of)

    step("explanations")
    listed = listed_of(lists)
    expl = explain_listed(net, rec.involvements, scores, policy, listed, analytics=an, persons=rec.persons,
                          lists={k: v for k, v in lists.items() if k != "call_in_groups"})
    if st.resolution is not None:
        from .resolution.explain import with_entities
        expl = with_entities(expl, st.resolution)

    step("places")
    from .places import analyze_places
    places = analyze_places(rec, net, an, policy)     # None without coordinates; never touches the lists

    changes = None
    if prev_rf is not None:
        from .lists.changes import changes as list_changes
        changes = list_changes(prev_rf, lists, scores, policy, as_of=rec.as_of)
    call_in_groups = lists["call_in_groups"]
    shootings = net.shooting_incidents()
    summary = {
        "as_of": rec.as_of,
        "window_start": day_to_iso(net.window_start_day),
        "incidents_in_window": int(len(net.incident_ids)),
        "shootings_in_window": int(shootings.sum()),
        "shooting_victims_in_window": int(len(net.shooting_victims())),
        "persons_in_network": int(net.n_persons),
        "co_offending_edges": int(co.n_edges),
        "victimization_edges": int(net.layers["victimization"].n_edges),
        "groups_detected": groups.n_detected,
        "groups_named_from_previous_run": groups.renamed_from_previous,
        "conflicts": int((an.conflicts["relation"] == "conflict").sum()),
        "group_disagreements": int(len(groups.disagreements)),
        "enforcement_eligible": int(scores["enforcement_eligible"].sum()),
        "rows_rejected": int(len(rec.rejected)),
        "lists": {k: int(len(lists[k])) for k in LIST_NAMES},
    }
    release_memory()
    disparity = disparity_table(scores, {k: lists[k] for k in LIST_NAMES}, rec.persons, policy)
    summary["shootings_by_month"] = _shootings_by_month(net)
    summary["call_in_groups"] = int(len(call_in_groups))
    summary["call_in_expected_reach"] = round(float(call_in_groups["expected_reach"].sum()), 6) \
        if len(call_in_groups) else 0.0
    summary["disparity_flags"] = int((disparity["flag"].astype(str) != "").sum())
    inputs = dict(rec.inputs)
    if mapping_path or (Path(data_dir) / "mapping.yaml").exists():
        mp = Path(mapping_path) if mapping_path else Path(data_dir) / "mapping.yaml"
        inputs["mapping"] = {"path": str(mp.resolve()), "sha256": sha256_bytes(mp.read_bytes())}
    if prev_entry:
        inputs["previous_groups"] = prev_entry
    manifest = {
        "fdnet_version": __version__,
        "as_of": rec.as_of,
        "run_date": rec.today,
        "window": {"start": summary["window_start"], "end": rec.as_of, "days": policy.window_days},
        "data_dir": str(Path(data_dir).resolve()),
        "policy": policy.effective(),
        "inputs": inputs,
        **({"previous": previous_entry(prev_rf)} if prev_rf is not None else {}),
        "summary": summary,
        "analytics": {
            # how groups were detected: the Leiden resolution, the criterion and (auto) the whole scan
            "groups": an.group_detection,
            "betweenness": an.betweenness_info,
            "contagion": an.contagion.summary() if an.contagion is not None else None,
        },
        "disparity": disparity_summary(disparity),
        "notes": list(rec.notes),
        "data_quality": list(getattr(rec, "findings", None) or []),
        **({"places": places.summary} if places is not None else {}),
        "network": {"capped_incidents": list(getattr(net, "capped_incidents", None) or [])},
        "environment": _versions(),
    }
    if places is not None:
        manifest["notes"].extend(places.notes)
    if st.resolution is not None:
        manifest["resolution"] = st.resolution.summary
    capped = manifest["network"]["capped_incidents"]
    if capped:
        cap = getattr(getattr(policy, "network", None), "max_pairs_per_incident", None)
        names = sorted({str(c.get('incident_id')) for c in capped})
        manifest["notes"].append(
            f"{len(capped)} incident layer(s) had more pairs than network.max_pairs_per_incident"
            + (f" ({cap})" if cap is not None else "") + " and were not projected into ties: "
            + ", ".join(names[:10]) + (" …" if len(names) > 10 else "")
            + " (manifest network.capped_incidents)")
    return Run(policy=policy, records=rec, network=net, analytics=an, scores=scores, lists=lists,
               explanations=expl, disparity=disparity, summary=summary, manifest=manifest,
               data_dir=Path(data_dir), changes=changes, places=places, resolution=st.resolution)


def _shootings_by_month(net) -> list[dict]:
    """Shootings and distinct people shot per calendar month of the window (for the report's chart)."""
    from .graph.layers import FLAG_VICTIM
    I = net.incidence
    sh = net.shooting_incidents()
    months = (np.datetime64("1970-01-01", "D") + net.inc_day.astype("timedelta64[D]")).astype("datetime64[M]")
    vic = ((I.flags & FLAG_VICTIM) != 0) & sh[I.inc]
    if len(months) == 0:
        return []
    code = months.astype(np.int64)
    lo, hi = int(code.min()), int(code.max())
    sh_n = np.bincount(code[sh] - lo, minlength=hi - lo + 1)
    # distinct people shot per month (one person in two rows of one shooting counts once), the report's
    # one definition of "shooting victims"
    pairs = np.unique(np.stack([code[I.inc[vic]] - lo, I.person[vic].astype(np.int64)]), axis=1) \
        if vic.any() else np.zeros((2, 0), dtype=np.int64)
    v_n = np.bincount(pairs[0], minlength=hi - lo + 1)
    span = np.arange(lo, hi + 1).astype("datetime64[M]")
    return [{"month": str(m), "shootings": int(a), "victims": int(b)} for m, a, b in zip(span, sh_n, v_n)]


class _CallableModule(types.ModuleType):
    """``fdnet.run`` is this module and :func:`run` at once (``fdnet.run(data_dir)``, ``fdnet.run.Run``)."""

    def __call__(self, *args, **kwargs) -> Run:
        return run(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
