"""The runs a workspace serves: every run folder directly inside ``--runs DIR``, read through the run-folder
description (:func:`fdnet.runfolder.open_run`), so a folder edited after its run is never shown as if sound.

A run's ``run_id`` is its folder's name (CONTRACT §4). Each folder is opened (every file hash-checked against its
manifest) the first time it is asked for and again whenever its manifest changes; a folder that fails the check
is listed with its problem and serves nothing else.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> (d / "not-a-run").mkdir()
>>> Catalog(d).runs()
[]
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..atomic import is_plain_name, is_staging_folder
from ..errors import UsageError
from ..policy import Policy
from ..runfolder import LIST_NAMES, MANIFEST_FILE, RunFolder, open_run, parse_manifest


@dataclass
class RunEntry:
    """One run folder of the workspace: its id, as-of date and checked contents (``rf``) or its problem."""

    run_id: str
    path: Path
    as_of: str
    rf: RunFolder | None
    problem: str = ""
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return self.rf is not None

    @property
    def policy(self) -> Policy:
        """The run's effective policy (its manifest's); older runs without a section get its defaults."""
        if "policy" not in self._cache:
            raw = self.rf.policy if self.rf is not None else {}
            try:
                self._cache["policy"] = Policy.model_validate(raw)
            except Exception:   # a run of an older or newer fdnet: its review settings default
                self._cache["policy"] = Policy()
        return self._cache["policy"]

    def list_table(self, name: str) -> pd.DataFrame:
        """A list of the run as text columns (spreadsheet escapes undone); empty when the run has none."""
        if name not in LIST_NAMES:
            raise KeyError(name)
        df = self.rf.table(name) if self.rf is not None else None
        return df if df is not None else pd.DataFrame(columns=["rank", "person_id"])

    def listed(self) -> dict[str, list[str]]:
        """person_id -> the lists of this run they are on (list order)."""
        if "listed" not in self._cache:
            out: dict[str, list[str]] = {}
            for name in LIST_NAMES:
                for pid in self.list_table(name)["person_id"].tolist():
                    out.setdefault(pid, []).append(name)
            self._cache["listed"] = out
        return self._cache["listed"]

    def row(self, name: str, person_id: str) -> dict | None:
        """The row of ``person_id`` on list ``name`` as a dict of text, None when not on it."""
        df = self.list_table(name)
        hit = df.index[df["person_id"] == person_id]
        return None if len(hit) == 0 else {k: ("" if pd.isna(v) else str(v)) for k, v in df.loc[hit[0]].items()}

    def edge_view(self):
        """edges.csv as the report's :class:`~fdnet.report.networks.EdgeView`, built once per run."""
        if "edges" not in self._cache:
            from ..report.networks import EdgeView
            edges = self.rf.table("edges")
            self._cache["edges"] = EdgeView(edges if edges is not None else pd.DataFrame())
        return self._cache["edges"]

    def score_view(self):
        """scores.csv as the report's score view (person, group, scores as floats), built once per run."""
        if "scores" not in self._cache:
            from ..report.networks import score_view
            self._cache["scores"] = score_view(self.rf.table("scores"))
        return self._cache["scores"]

    def changes(self) -> pd.DataFrame | None:
        """changes.csv (a run made with ``--previous``), None otherwise."""
        return self.rf.table("changes") if self.rf is not None and self.rf.has("changes.csv") else None


class Catalog:
    """The run folders inside ``root``; thread-safe, re-opening a run when its manifest changes."""

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().resolve()
        if not self.root.is_dir():
            raise UsageError(f"--runs {root}: no such folder (it must hold run folders made by `fdnet run`)")
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[tuple, RunEntry]] = {}

    def _candidates(self) -> list[Path]:
        out = []
        for p in sorted(self.root.iterdir(), key=lambda p: p.name):
            if p.is_dir() and not p.is_symlink() and is_plain_name(p.name) and not is_staging_folder(p) \
                    and (p / MANIFEST_FILE).is_file():
                out.append(p)
        return out

    def _open(self, path: Path) -> RunEntry:
        m = path / MANIFEST_FILE
        st = m.stat()
        stamp = (st.st_mtime_ns, st.st_size)
        with self._lock:
            hit = self._entries.get(path.name)
            if hit is not None and hit[0] == stamp:
                return hit[1]
        try:
            rf = open_run(path, action="serve")
            entry = RunEntry(path.name, path, rf.as_of, rf)
        except UsageError as exc:
            as_of = ""
            try:
                as_of = str(parse_manifest(m, m.read_bytes()).get("as_of", ""))
            except UsageError:
                pass
            entry = RunEntry(path.name, path, as_of, None, str(exc))
        with self._lock:
            self._entries[path.name] = (stamp, entry)
        return entry

    def runs(self) -> list[RunEntry]:
        """Every run folder, newest as-of first (then by run_id), sound or not."""
        entries = [self._open(p) for p in self._candidates()]
        return sorted(entries, key=lambda e: (e.as_of, e.run_id), reverse=True)

    def get(self, run_id: str) -> RunEntry | None:
        """The run ``run_id`` (its folder's name), None when there is no such run folder."""
        if not is_plain_name(run_id):
            return None
        p = self.root / run_id
        if not (p.is_dir() and not p.is_symlink() and (p / MANIFEST_FILE).is_file()) or is_staging_folder(p):
            return None
        return self._open(p)

    def as_of_by_dir(self) -> dict[str, str]:
        """Absolute run folder -> as_of, for every run (carry-forward of decisions reads it)."""
        return {str(e.path): e.as_of for e in self.runs()}
