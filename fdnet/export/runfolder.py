"""Read a finished run folder for export, after checking it against its manifest.

A run folder is sealed by its manifest.json: every output's SHA-256 is
recorded there. :func:`load_run` reads each file **once**, checks its hash
from those very bytes (no gap between checking and reading) and refuses
the folder when a file is missing, differs, or was added. The tables are
parsed from the checked bytes, every cell as text, so that exports show
values exactly as the run wrote them.

>>> column_kind(pd.Series(["1", "2.5", ""]))
'number'
>>> column_kind(pd.Series(["2024-01-05", ""])), column_kind(pd.Series(["true", "false"]))
('date', 'bool')
>>> column_kind(pd.Series(["P1", "12"]))
'text'
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..tables import read_csv_table
from ..errors import UsageError

LIST_NAMES = ("call_in", "custom_notifications", "service_referrals")
TABLE_FILES = {"edges": "edges.csv", "scores": "scores.csv", "groups": "groups.csv",
               **{n: f"{n}.csv" for n in LIST_NAMES}}
# tables exported when the run has them (older runs do not): aggregates without person ID columns
OPTIONAL_TABLE_FILES = {"disparity": "disparity.csv"}
REQUIRED_COLUMNS = {
    "edges": ("person_a", "person_b", "layer", "weight", "incidents", "first_date", "last_date", "incident_ids"),
    "scores": ("person_id", "score", "group", "degree", "exposure_1", "exposure_2"),
    "groups": ("person_id", "group"),
    **{n: ("rank", "person_id", "group", "score", "reasons") for n in LIST_NAMES},
    "disparity": ("list", "attribute", "category", "listed"),
}
# columns that hold person IDs (mapped one to one when pseudonymising)
ID_COLUMNS = {"edges": ("person_a", "person_b"), "scores": ("person_id",), "groups": ("person_id",),
              **{n: ("person_id",) for n in LIST_NAMES}, "disparity": ()}
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


@dataclass
class RunFolder:
    """A run folder whose files match its manifest."""

    path: Path
    manifest: dict
    manifest_sha256: str
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    raw: dict[str, bytes] = field(default_factory=dict)   # file name -> the checked bytes

    @property
    def as_of(self) -> str:
        return str(self.manifest.get("as_of", ""))

    @property
    def policy_sha256(self) -> str:
        """SHA-256 of the effective policy as canonical JSON (sorted keys, no spaces)."""
        return policy_sha256(self.manifest.get("policy", {}))


def policy_sha256(policy: dict) -> str:
    """A stable fingerprint of a policy: SHA-256 of its canonical JSON.

    >>> policy_sha256({"b": 1, "a": [1, 2]}) == policy_sha256({"a": [1, 2], "b": 1})
    True
    """
    from ..audit.log import canonical_json   # the one hashed serialisation (report, policy check, audit log)
    return sha256_hex(canonical_json(policy).encode("utf-8"))


def load_run(run_dir: str | Path) -> RunFolder:
    """Check ``run_dir`` against its manifest and parse the tables an export needs.

    Raises :class:`~fdnet.errors.UsageError` when it is not a run folder or
    when any file differs from the manifest.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir} is not a run folder (no such folder)")
    mpath = run_dir / "manifest.json"
    if not mpath.is_file():
        raise UsageError(f"{run_dir} has no manifest.json: not an fdnet run folder")
    mbytes = mpath.read_bytes()
    try:
        manifest = json.loads(mbytes.decode("utf-8"))
        outputs = manifest["outputs"]
        if not isinstance(outputs, dict):
            raise TypeError("outputs is not a mapping")
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{mpath} is not a valid fdnet manifest ({exc}); fdnet exports only sealed run folders") \
            from None
    problems = []
    data: dict[str, bytes] = {}
    for name, meta in sorted(outputs.items()):
        p = run_dir / name
        if Path(name).name != name or name in (".", "..") or "\\" in name or "\x00" in name:
            problems.append(f"{name!r} is not a plain file name (a manifest names files inside the run folder)")
            continue
        if p.is_symlink():
            problems.append(f"{name} is a symbolic link (a run folder holds its own files)")
            continue
        if not p.is_file():
            problems.append(f"{name} is missing")
            continue
        b = p.read_bytes()
        if not isinstance(meta, dict) or sha256_hex(b) != meta.get("sha256"):
            problems.append(f"{name} differs from the manifest's SHA-256")
            continue
        data[name] = b
    extra = sorted(p.name for p in run_dir.iterdir() if p.name != "manifest.json" and p.name not in outputs)
    problems += [f"{name} is not part of the run" for name in extra]
    missing = [f for f in TABLE_FILES.values() if f not in outputs]
    problems += [f"{name} is not in the manifest" for name in missing]
    if problems:
        raise UsageError(f"{run_dir} does not match its manifest ({'; '.join(problems)}): the run folder was "
                         "altered after the run, so fdnet will not export it. Check it with `fdnet verify "
                         f"{run_dir}` and export an unaltered run.")
    rf = RunFolder(run_dir, manifest, sha256_hex(mbytes))
    present = {**TABLE_FILES, **{k: f for k, f in OPTIONAL_TABLE_FILES.items() if f in outputs}}
    for key, fname in present.items():
        try:
            # object dtype: plain Python strings iterate ~20x faster than pandas' Arrow strings
            df = read_csv_table(data[fname])
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise UsageError(f"{run_dir / fname} cannot be read as CSV: {exc}") from None
        lacking = [c for c in REQUIRED_COLUMNS[key] if c not in df.columns]
        if lacking:
            raise UsageError(f"{run_dir / fname} lacks the column(s) {', '.join(lacking)}; was it written by "
                             "an older fdnet?")
        rf.tables[key] = df
        rf.raw[fname] = data[fname]
    return rf
