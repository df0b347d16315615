"""The tables an export reads from a finished run folder (opened with :func:`fdnet.runfolder.open_run`).

A run folder is sealed by its manifest.json: every output's SHA-256 is
recorded there. :func:`load_run` opens it through :func:`fdnet.open_run`
(each file read **once**, its hash checked from those very bytes, the
folder refused when a file is missing, differs, or was added) and keeps
the tables an export carries, parsed from the checked bytes, every cell as
text, so that exports show values exactly as the run wrote them. File
names, contract columns and the person-ID columns come from the one
run-folder description, :data:`fdnet.runfolder.FILES`.

>>> column_kind(pd.Series(["1", "2.5", ""]))
'number'
>>> column_kind(pd.Series(["2024-01-05", ""])), column_kind(pd.Series(["true", "false"]))
('date', 'bool')
>>> column_kind(pd.Series(["P1", "12"]))
'text'
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pandas as pd

from ..runfolder import LIST_NAMES, RunFolder, open_run, policy_sha256, spec  # noqa: F401

# the tables an export carries (person-level), and those it carries when the run has them (older runs
# do not): aggregates without person ID columns
TABLE_FILES = {"edges": "edges.csv", "scores": "scores.csv", "groups": "groups.csv",
               **{n: f"{n}.csv" for n in LIST_NAMES}}
OPTIONAL_TABLE_FILES = {"disparity": "disparity.csv", "changes": "changes.csv",   # changes: runs made with --previous
                        # the places analysis (runs whose incidents carry lat/lon) and what its map draws on
                        "places": "places.csv", "risk_factors": "risk_factors.csv", "place_list": "place_list.csv",
                        "near_repeats": "near_repeats.csv", "group_table": "group_table.csv",
                        "conflicts": "conflicts.csv"}
# exported only with places.csv (the territories and conflicts of the map); a run without places exports as before
PLACES_ONLY = ("group_table", "conflicts")
REQUIRED_COLUMNS = {k: spec(f).required_columns for k, f in {**TABLE_FILES, **OPTIONAL_TABLE_FILES}.items()}
# columns that hold person IDs (mapped one to one when pseudonymising)
ID_COLUMNS = {k: spec(f).person_id_columns for k, f in {**TABLE_FILES, **OPTIONAL_TABLE_FILES}.items()}
# columns that hold only incident IDs: never scanned for person IDs
INCIDENT_ID_COLUMNS = frozenset({"incident_ids", "incident_id"})

_NUMBER = re.compile(r"^-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def column_kind(values: pd.Series) -> str:
    """``number``, ``date``, ``bool`` or ``text``: how a column of text cells can be typed.

    Empty cells fit every kind; a column of only empty cells is text.
    """
    v = pd.Series(pd.unique(values[values != ""]), dtype=object)
    if v.empty:
        return "text"
    if v.str.fullmatch(_NUMBER).all():
        return "number"
    if v.str.fullmatch(_DATE).all():
        return "date"
    if v.isin(["true", "false"]).all():
        return "bool"
    return "text"


def number_columns(df: pd.DataFrame) -> tuple[str, ...]:
    """Columns of ``df`` that hold numbers: as the run's file had them when ``df`` was read with
    :func:`~fdnet.tables.read_csv_table` (so a text column of IDs like ``-5`` is not one), else
    by :func:`column_kind`.

    >>> number_columns(pd.DataFrame({"n": ["-1", "2"], "id": ["-5", "P1"]}))
    ('n',)
    """
    if "number_columns" in df.attrs:
        return tuple(c for c in df.attrs["number_columns"] if c in df.columns)
    return tuple(c for c in df.columns if column_kind(df[c]) == "number")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_run(run_dir: str | Path) -> RunFolder:
    """Open ``run_dir`` checked against its manifest, with the tables an export needs.

    The returned folder's ``tables`` holds exactly the export's tables (parsed, contract columns
    checked) and ``raw`` their checked bytes. Raises :class:`~fdnet.errors.UsageError` when it is
    not a run folder or when any file differs from the manifest.
    """
    rf = open_run(run_dir, require=tuple(TABLE_FILES.values()), action="export")
    present = {**TABLE_FILES, **{k: f for k, f in OPTIONAL_TABLE_FILES.items() if rf.has(f)
                                 and (k not in PLACES_ONLY or rf.has("places.csv"))}}
    out = RunFolder(rf.path, rf.manifest, {f: rf.raw[f] for f in present.values()}, rf.manifest_sha256)
    out.tables = {key: rf.table(fname) for key, fname in present.items()}
    return out
