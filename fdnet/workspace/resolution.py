"""Clerical review of entity resolution in the workspace: the uncertain pairs of a run, and the analysts'
must-link / cannot-link decisions written where the next run applies them.

A run with entity resolution on has ``resolution_review.csv`` (the pairs in the review band, never merged).
The page shows both records of each pair side by side with the pair's match-weight waterfall. An analyst's
decision is first an entry of the audit log (kind ``resolution``), then a row appended to the data folder's
decisions table (``<data_dir>/<resolution.decisions_file>.csv``, the folder named by the run's manifest), the
file every run reads and applies (docs/resolution.md). The file is rewritten whole through a temporary file
and a rename, so a reader never sees half a row; a pair already decided is refused (409), so two analysts
cannot record contradicting decisions by accident.

>>> split_waterfall("prior -15.36; first_name exact +2.84 (term frequency -2.20); sex missing +0.00")
[['prior', '', '-15.36'], ['first_name', 'exact', '+2.84 (term frequency -2.20)'], ['sex', 'missing', '+0.00']]
"""
from __future__ import annotations

import os
import re
import tempfile
import threading
from pathlib import Path

import pandas as pd

from ..errors import UsageError
from ..tables import escape_cell

#: the identifying fields shown side by side (resolution_review.csv's ``<field>_a`` / ``<field>_b``)
FIELDS = ("source", "first_name", "middle_name", "last_name", "birth_date", "sex", "address")
#: what an auditor is shown of each record (no names, birth dates or addresses)
AUDITOR_FIELDS = ("source",)
PAGE = 200
_LOCK = threading.Lock()
_STEP = re.compile(r"^(\S+)\s+(.*?)\s*([+-]\d+\.\d+(?: \(term frequency [+-]\d+\.\d+\))?)$")


def split_waterfall(text: str) -> list[list[str]]:
    """resolution_review.csv's waterfall text as [comparison, level, weight] steps."""
    out = []
    for part in str(text or "").split("; "):
        m = _STEP.match(part.strip())
        if m:
            out.append([m.group(1), m.group(2), m.group(3)])
        elif part.strip():
            out.append([part.strip(), "", ""])
    return out


def data_folder(run) -> Path | None:
    """The data folder the run was made from (its manifest's ``data_dir``), None when not recorded."""
    d = (run.rf.manifest or {}).get("data_dir") if run.rf is not None else None
    return Path(d) if d else None


def decisions_path(run) -> Path | None:
    """Where the workspace writes the run's decisions: ``<data_dir>/<decisions_file>.csv``."""
    d = data_folder(run)
    return None if d is None else d / f"{run.policy.resolution.decisions_file}.csv"


def current_decisions(run) -> tuple[pd.DataFrame, str]:
    """The decisions the next run will apply (person_id_a < person_id_b, decision, reviewer, date, reason), and
    a sentence when they cannot be read (no data folder recorded, or a bad file)."""
    from ..errors import InputError
    from ..resolution.decisions import COLUMNS, read_decisions
    empty = pd.DataFrame({c: pd.Series([], dtype=object) for c in COLUMNS})
    d = data_folder(run)
    if d is None or not d.is_dir():
        return empty, "the run's data folder is not on this machine: decisions cannot be recorded here"
    try:
        dec, _ = read_decisions(d, run.policy.resolution.decisions_file)
    except InputError as exc:
        return empty, f"the decisions table cannot be read ({exc}); correct it before recording more"
    return dec, ""


def review_pairs(run) -> pd.DataFrame:
    """resolution_review.csv as text (empty when the run has none)."""
    if run.rf is None or not run.rf.has("resolution_review.csv"):
        return pd.DataFrame(columns=["person_a", "person_b", "match_probability", "match_weight", "waterfall"])
    return run.rf.table("resolution_review")


def append_decision(run, person_a: str, person_b: str, decision: str, reviewer: str, date: str, reason: str) -> Path:
    """Add one decision row to the run's decisions table (created with its header when absent); the file is
    replaced whole (temporary file, fsync, rename). Refused when the pair is decided already."""
    path = decisions_path(run)
    if path is None or not path.parent.is_dir():
        raise UsageError("the run's data folder is not on this machine: the decision cannot be written")
    parquet = path.with_suffix(".parquet")
    if parquet.exists() and not path.exists():
        raise UsageError(f"the decisions are kept in {parquet.name}: add this one there")
    a, b = min(person_a, person_b), max(person_a, person_b)
    with _LOCK:
        dec, problem = current_decisions(run)
        if problem:
            raise UsageError(problem)
        hit = dec[(dec["person_id_a"] == a) & (dec["person_id_b"] == b)]
        if len(hit):
            raise FileExistsError(f"{a} and {b} are decided already ({hit['decision'].iloc[0]}); "
                                  "change the decisions table itself to undo it")
        old = path.read_bytes() if path.exists() else b""
        if old and not old.endswith(b"\n"):
            old += b"\n"
        header = b"" if old else b"person_id_a,person_id_b,decision,reviewer,date,reason\n"
        row = pd.DataFrame([[escape_cell(x) for x in (a, b, decision, reviewer, date,
                                                       " ".join(reason.split()))]])
        line = row.to_csv(index=False, header=False, lineterminator="\n").encode("utf-8")
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=str(path.parent))
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(old + header + line)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return path
