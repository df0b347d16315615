"""The main job, CLI side: compute a :class:`~fdnet.run.Run` and write its folder.

The computation is :func:`fdnet.run` (``fdnet/run.py``); the run folder, its files and their
writer and reader are described once in :mod:`fdnet.runfolder`. What is left here:

- :func:`run` (``fdnet run``'s path): check RUN_DIR first, compute, then write the folder
  streamed and all or nothing (:meth:`fdnet.run.Run.write`), signed with a key when given;
- :func:`compute_run`: the run with every file's bytes in memory (:class:`RunResult`), for tests
  and scripts that compare files.

With a signing key (:func:`load_sign_key`), the run also carries ``manifest.sig``: an HMAC-SHA256
of the manifest's bytes, the one file the manifest cannot list (see docs/run-folder.md).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from .runfolder import (SIGNATURE_FILE, check_run_dir, check_signature, load_sign_key,  # noqa: F401
                        manifest_bytes, sha256_bytes, sign_manifest, write_files)
from .tables import csv_bytes, read_csv_table  # noqa: F401  (csv_bytes re-exported: the one CSV writer)
from .run import STEPS, Run, load_previous_groups  # noqa: F401


def _run_module():
    return sys.modules["fdnet.run"]


@dataclass
class RunResult:
    """A run with every output file's bytes (``outputs``, report.html included, manifest.json not)."""

    outputs: dict[str, bytes]
    manifest: dict
    summary: dict
    run: Run | None = None


def compute_run(data_dir: str | Path, *, as_of: str | None = None, policy=None,
                mapping_path: str | Path | None = None, progress: Callable[[str], None] | None = None,
                previous_groups: pd.DataFrame | None = None, today: str | None = None,
                previous_run: str | Path | None = None) -> RunResult:
    """Run the whole pipeline in memory and serialise every file (see :func:`fdnet.run` for the arguments;
    ``previous_run`` adds changes.csv)."""
    r = _run_module().run(data_dir, as_of=as_of, policy=policy, mapping_path=mapping_path, progress=progress,
                          previous_groups=previous_groups, previous_run=previous_run, today=today)
    if progress:
        progress("report")
    outputs = {name: data for name, data in r.files() if name != "manifest.json"}
    return RunResult(outputs, r.manifest, r.summary, r)


def write_run(result: RunResult | Run, out_dir: str | Path, *, sign_key: bytes | None = None) -> Path:
    """Write a computed run into ``out_dir`` (all or nothing; ``manifest.sig`` with a key)."""
    if isinstance(result, Run):
        return result.write(out_dir, sign_key=sign_key)
    files = dict(result.outputs)
    files["manifest.json"] = manifest_bytes(result.manifest)
    if sign_key is not None:
        files[SIGNATURE_FILE] = sign_manifest(files["manifest.json"], sign_key)
    return write_files(files, out_dir)


def run(data_dir: str | Path, out_dir: str | Path, *, as_of: str | None = None, policy=None,
        mapping_path: str | Path | None = None, progress: Callable[[str], None] | None = None,
        previous_run: str | Path | None = None, sign_key: bytes | None = None,
        today: str | None = None) -> Run:
    """``fdnet run``: check RUN_DIR first, compute, then write (all or nothing; signed with ``sign_key``).

    The report is rendered, and every file serialised, while the folder is written ("report" stage).
    """
    check_run_dir(Path(out_dir))
    r = _run_module().run(data_dir, as_of=as_of, policy=policy, mapping_path=mapping_path, progress=progress,
                          previous_run=previous_run, today=today)
    r.write(out_dir, sign_key=sign_key, progress=progress)
    return r


def read_csv_text(b: bytes) -> pd.DataFrame:
    return read_csv_table(b)
