"""All-or-nothing writes of a set of files into one folder (the run folder, an export folder).

Files go to a hidden staging folder inside the target, are fsynced, and are
moved into place only when all of them are written; on any failure the
target is left as it was found (absent, or empty).
"""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path


def write_staged(files: dict[str, bytes], out_dir: str | Path, prefix: str = ".fdnet-staging-") -> Path:
    """Write ``files`` (plain name -> bytes) into ``out_dir`` all or nothing; the caller checks it is new or empty."""
    out_dir = Path(out_dir)
    for name in files:
        if Path(name).name != name or name in ("", ".", ".."):
            raise ValueError(f"output name {name!r} is not a plain file name")
    created = not out_dir.exists()
    stage = out_dir / f"{prefix}{uuid.uuid4().hex[:12]}"
    moved: list[Path] = []
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        stage.mkdir()
        for name, data in files.items():
            with open(stage / name, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        for name in files:
            target = out_dir / name
            os.replace(stage / name, target)
            moved.append(target)
        stage.rmdir()
    except BaseException:
        for p in moved:
            p.unlink(missing_ok=True)
        shutil.rmtree(stage, ignore_errors=True)
        if created:
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
    return out_dir
