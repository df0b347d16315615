"""``export_run``: a finished run folder to GraphML, GEXF, XLSX, i2 and CSV copies.

1. The export folder is checked first: new or empty, and not inside the run
   folder (the run folder is sealed by its manifest; nothing is ever
   written into it).
2. The key, when pseudonymising, must lie outside both folders.
3. The run folder is checked against its manifest (:func:`load_run`).
4. Every file is built in memory, then written all or nothing: into a
   hidden staging folder inside the export folder, fsynced, and moved into
   place only when all are written. On any failure the export folder is
   left as it was found (absent or empty).
5. ``export_manifest.json`` records the run manifest's SHA-256, every
   file's SHA-256 and size, whether IDs are pseudonymised and the key's
   fingerprint. It holds no paths or timestamps, so the same run exported
   twice (with the same key) gives byte-identical folders.

Formats (``formats``): ``graphml`` and ``gexf`` (one file per layer,
:mod:`fdnet.export.graphs`), ``xlsx`` (lists.xlsx, :mod:`fdnet.export.xlsx`),
``i2`` (entities.csv, links.csv, :mod:`fdnet.export.i2`) and ``csv`` (the
run's edges, scores, groups and list files, and disparity.csv when the run
has one; pseudonymised when a key is given, else byte copies) and ``geo`` (places.geojson,
territories.geojson and places.gpkg when the run has places.csv, :mod:`fdnet.export.geo`).
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterable

import pandas as pd

from .. import __version__
from ..atomic import write_staged
from ..errors import UsageError
from ..tables import csv_bytes
from .pseudonym import SCHEME, Pseudonymiser, key_fingerprint, read_key
from .runfolder import (ID_COLUMNS, INCIDENT_ID_COLUMNS, LIST_NAMES, OPTIONAL_TABLE_FILES, TABLE_FILES, RunFolder,
                        column_kind, load_run, number_columns, sha256_hex)

FORMATS = ("graphml", "gexf", "xlsx", "i2", "csv", "geo")
_SAFE_NAME = re.compile(r"[a-z0-9][a-z0-9_]*\.(?:csv|json|graphml|gexf|xlsx|geojson|gpkg)")
MANIFEST_NAME = "export_manifest.json"
EXPORT_FORMAT_VERSION = 1


def parse_formats(spec: str | Iterable[str] | None) -> tuple[str, ...]:
    """Formats from ``"graphml,xlsx"`` / ``"all"`` / an iterable, in canonical order.

    >>> parse_formats("xlsx, graphml"), parse_formats("all") == FORMATS
    (('graphml', 'xlsx'), True)
    >>> parse_formats("pdf")
    Traceback (most recent call last):
    ...
    fdnet.errors.UsageError: --format: unknown format(s) pdf; choose from graphml, gexf, xlsx, i2, csv, geo or all
    """
    if spec is None:
        return FORMATS
    items = [s.strip().lower() for s in (spec.split(",") if isinstance(spec, str) else spec)]
    items = [s for s in items if s]
    if not items or "all" in items:
        return FORMATS
    bad = sorted(set(items) - set(FORMATS))
    if bad:
        raise UsageError(f"--format: unknown format(s) {', '.join(bad)}; choose from {', '.join(FORMATS)} or all")
    return tuple(f for f in FORMATS if f in items)


def check_export_dir(run_dir: str | Path, out_dir: str | Path) -> None:
    """EXPORT_DIR must be new or empty and lie outside RUN_DIR (symlinks resolved)."""
    run_r = Path(run_dir).expanduser().resolve()
    out = Path(out_dir).expanduser()
    out_r = out.resolve()
    if out_r == run_r or out_r.is_relative_to(run_r):
        raise UsageError(f"--out {out_dir} lies inside the run folder {run_dir}; the run folder is sealed by its "
                         "manifest, so exports go to a folder of their own")
    from ..runfolder import check_run_dir   # the one new-or-empty check
    check_run_dir(out, what="EXPORT_DIR", earlier="an earlier export")


def _all_person_ids(tables: dict[str, pd.DataFrame]) -> set[str]:
    ids: set[str] = set()
    for key, cols in ID_COLUMNS.items():
        if key not in tables:      # an optional table the run does not have
            continue
        for c in cols:
            ids.update(tables[key][c].tolist())
    ids.discard("")
    return ids


def _mapped(values: pd.Series, f) -> pd.Series:
    """``f`` applied to each distinct value once, then mapped onto the column (object dtype)."""
    uniq = pd.unique(values)
    m = dict(zip(uniq, map(f, uniq)))
    return values.map(m).astype(object)


def pseudonymise_tables(tables: dict[str, pd.DataFrame], p: Pseudonymiser) -> dict[str, pd.DataFrame]:
    """The run's tables with every person ID replaced, in ID columns and in free text.

    Rows are re-sorted by pseudonym (edges: pairs re-ordered so person_a <
    person_b), so that row order does not betray the order of the real IDs;
    list files keep their rank order.
    """
    out = {}
    for key, df in tables.items():
        df = df.copy()
        numbers = set(number_columns(df))
        for col in df.columns:
            if col in ID_COLUMNS[key]:
                df[col] = _mapped(df[col], p)
            elif col not in INCIDENT_ID_COLUMNS and col not in numbers \
                    and column_kind(df[col]) not in ("date", "bool"):
                df[col] = _mapped(df[col], p.text)
        out[key] = df
    e = out["edges"]
    swap = e["person_a"] > e["person_b"]
    e.loc[swap, ["person_a", "person_b"]] = e.loc[swap, ["person_b", "person_a"]].to_numpy()
    order = {layer: i for i, layer in enumerate(pd.unique(e["layer"]))}
    e = e.assign(_l=e["layer"].map(order)).sort_values(["_l", "person_a", "person_b"], kind="stable")
    out["edges"] = e.drop(columns="_l").reset_index(drop=True)
    out["scores"] = out["scores"].sort_values("person_id", kind="stable").reset_index(drop=True)
    out["groups"] = out["groups"].sort_values(["person_id", "group"], kind="stable").reset_index(drop=True)
    return out


def table_csv_bytes(df: pd.DataFrame) -> bytes:
    """A run table (text cells, as :func:`load_run` reads it) as CSV, written like the run's own files.

    The one CSV writer, :func:`fdnet.tables.csv_bytes`: formula-like text
    gets its apostrophe back, while the columns that held numbers in the
    run's file stay numbers (a negative score is not escaped).

    >>> from fdnet.tables import read_csv_table
    >>> t = read_csv_table(b"person_id,score\\n'-5,-1\\n")
    >>> table_csv_bytes(t)
    b"person_id,score\\n'-5,-1\\n"
    """
    return csv_bytes(df, numbers=number_columns(df))


def build_export(rf: RunFolder, formats: Iterable[str], key: bytes | None = None) -> tuple[dict[str, bytes], dict]:
    """Every export file's bytes and the export manifest, writing nothing."""
    from .graphs import graph_files
    from .i2 import i2_files
    from .xlsx import lists_workbook

    formats = parse_formats(formats)
    tables = rf.tables
    fingerprint = None
    if key is not None:
        tables = pseudonymise_tables(tables, Pseudonymiser(key, _all_person_ids(tables)))
        fingerprint = key_fingerprint(key)
    files: dict[str, bytes] = {}
    if "graphml" in formats or "gexf" in formats:
        files.update(graph_files(tables, formats, rf.as_of))
    if "xlsx" in formats:
        meta = {"as_of": rf.as_of, "window_start": rf.manifest.get("window", {}).get("start", ""),
                "policy_sha256": rf.policy_sha256, "run_fdnet_version": str(rf.manifest.get("fdnet_version", "")),
                "fdnet_version": __version__, "run_manifest_sha256": rf.manifest_sha256,
                "pseudonymised": key is not None, "key_fingerprint": fingerprint}
        files["lists.xlsx"] = lists_workbook(tables, meta)
    if "i2" in formats:
        files.update(i2_files(tables))
    if "geo" in formats:
        from .geo import geo_files
        files.update(geo_files(tables, rf.manifest))
    if "csv" in formats:
        if key is None:
            for fname in rf.raw:
                files[fname] = rf.raw[fname]  # the bytes whose hash was checked
        else:
            for k, fname in {**TABLE_FILES, **OPTIONAL_TABLE_FILES}.items():
                if k in tables:
                    files[fname] = table_csv_bytes(tables[k])
    manifest = {
        "export_format_version": EXPORT_FORMAT_VERSION,
        "fdnet_version": __version__,
        "run": {"manifest_sha256": rf.manifest_sha256, "as_of": rf.as_of,
                "fdnet_version": rf.manifest.get("fdnet_version"), "policy_sha256": rf.policy_sha256,
                "lists": {n: int(len(rf.tables[n])) for n in LIST_NAMES}},
        "formats": list(formats),
        "pseudonymised": key is not None,
        "key_fingerprint": fingerprint,
        "pseudonym_scheme": SCHEME if key is not None else None,
        "files": {name: {"sha256": sha256_hex(b), "bytes": len(b)} for name, b in sorted(files.items())},
    }
    return files, manifest


def write_all_or_nothing(files: dict[str, bytes], out_dir: str | Path) -> None:
    """Write ``files`` into ``out_dir`` via a staging folder; on failure leave it absent or empty.

    Every name must be one of the export's own plain file names (never a
    path, never derived from data), so nothing can land outside ``out_dir``.
    """
    bad = sorted(n for n in files if not _SAFE_NAME.fullmatch(n))
    if bad:
        raise ValueError(f"export file names {bad!r} are not plain names")
    write_staged(files, out_dir, prefix=".fdnet-export-staging-", what="export folder")


def export_run(run_dir: str | Path, out_dir: str | Path, formats: Iterable[str] | str | None = FORMATS,
               key_path: str | Path | None = None) -> dict:
    """Export a run folder into ``out_dir`` (see the module docstring); return the export manifest.

    With ``key_path`` every person ID is replaced by its keyed pseudonym
    (:mod:`fdnet.export.pseudonym`); the key file must lie outside both folders.
    """
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    fmts = parse_formats(formats)
    check_export_dir(run_dir, out_dir)
    key = None
    if key_path is not None:
        key = read_key(key_path, {"the run folder": run_dir, "the export folder": out_dir})
    rf = load_run(run_dir)
    files, manifest = build_export(rf, fmts, key)
    files[MANIFEST_NAME] = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    check_export_dir(run_dir, out_dir)  # still new or empty after the build
    write_all_or_nothing(files, out_dir)
    return manifest
