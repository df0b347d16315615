"""Re-check a run folder against its manifest, and re-run it where possible.

1. Every output named in the manifest exists and has the recorded SHA-256;
   files in the folder that the manifest does not name are reported.
2. Where every input file is still in place with the recorded SHA-256, the
   run is computed again in memory (same as_of, the manifest's effective
   policy, the same mapping) and each output compared byte for byte.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..tables import read_csv_table
from ..errors import UsageError


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class VerifyReport:
    checks: list[Check] = field(default_factory=list)
    rerun: str = "not attempted"

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def add(self, name, ok, detail=""):
        self.checks.append(Check(name, ok, detail))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def verify_run(run_dir: str | Path, *, rerun: bool = True, progress=None) -> VerifyReport:
    run_dir = Path(run_dir)
    mpath = run_dir / "manifest.json"
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir} is not a run folder (no such folder)")
    if not mpath.is_file():
        raise UsageError(f"{run_dir} has no manifest.json: not an fdnet run folder")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
        outputs = manifest["outputs"]
    except (json.JSONDecodeError, KeyError, UnicodeDecodeError) as exc:
        raise UsageError(f"{mpath} is not a valid fdnet manifest: {exc}") from None
    rep = VerifyReport()
    for name, meta in sorted(outputs.items()):
        p = run_dir / name
        if not p.is_file():
            rep.add(name, False, "missing from the run folder")
        elif _sha(p) != meta.get("sha256"):
            rep.add(name, False, "content differs from the manifest's SHA-256 (edited after the run)")
        else:
            rep.add(name, True, "hash matches the manifest")
    extra = sorted(p.name for p in run_dir.iterdir() if p.name != "manifest.json" and p.name not in outputs)
    for name in extra:
        rep.add(name, False, "not part of the run (absent from the manifest)")
    if not rerun:
        return rep
    inputs = manifest.get("inputs", {})
    missing = [k for k, v in inputs.items() if not Path(v["path"]).is_file()]
    changed = [k for k, v in inputs.items() if k not in missing and _sha(Path(v["path"])) != v["sha256"]]
    if missing or changed:
        why = "; ".join([f"{k} missing ({inputs[k]['path']})" for k in missing] +
                        [f"{k} changed since the run ({inputs[k]['path']})" for k in changed])
        rep.rerun = f"skipped: inputs not in place: {why}"
        return rep


    from ..pipeline import compute_run
    mapping = inputs.get("mapping", {}).get("path")
    prev = None
    if "previous_groups" in inputs:
        prev = read_csv_table(Path(inputs["previous_groups"]["path"]))
    result = compute_run(manifest["data_dir"], as_of=manifest["as_of"], policy=manifest["policy"],
                         mapping_path=mapping, progress=progress, previous_groups=prev)
    diffs = []
    for name, data in sorted(result.outputs.items()):
        p = run_dir / name
        same = p.is_file() and p.read_bytes() == data
        rep.add(f"re-run {name}", same, "identical" if same else "differs from a fresh re-run of the same inputs and policy")
        if not same:
            diffs.append(name)
    rep.rerun = "re-run: identical" if not diffs else f"re-run: differs in {', '.join(diffs)}"
    if result.manifest["fdnet_version"] != manifest.get("fdnet_version"):
        rep.rerun += (f" (note: run made with fdnet {manifest.get('fdnet_version')}, "
                      f"re-run with {result.manifest['fdnet_version']})")
    return rep
