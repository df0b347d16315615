"""Re-check a run folder against its manifest, re-run it where possible, and check its anchors.

What ``fdnet verify`` confirms, in order (docs/run-folder.md, "Verifying a run"):

1. **Anchors** (what a forger who can edit the folder cannot redo): with ``key``, ``manifest.sig``
   must be the HMAC-SHA256 of ``manifest.json`` under that key; with an audit log (``audit_db`` or
   ``$FDNET_AUDIT_DB``), the log's chain must be intact and hold a ``run`` entry with this
   manifest's SHA-256.
2. **The manifest's shape**: the contract's keys; every ``outputs`` name a plain file name in the
   folder (never ``../``: such a name is reported, not read); every ``inputs`` name a known input
   table (or ``mapping`` / ``previous_groups``) whose path lies where such a file can be; with
   ``previous`` (a run made with ``--previous``), that earlier run folder is an input too: in place,
   its manifest of the recorded SHA-256, every file matching it.
3. **The files**: every listed output present, a regular file (not a link, not a FIFO), of the
   recorded size and SHA-256; every file the run always writes listed; nothing else in the folder
   (``manifest.sig`` is the one file the manifest cannot list).
4. **What the folder itself can recompute**: list lengths and rejected-row counts in ``summary`` and
   ``inputs``, and ``report.html`` re-rendered from the other files and the manifest (it shows the
   summary, notes, disparity and policy, so an edit to those fields shows).
5. **The re-run**: where every input is in place with its recorded SHA-256, the run is computed
   again in memory and every output compared byte for byte, and the **whole manifest** compared
   field by field. Only ``environment`` and ``fdnet_version`` may differ (reported as notes: the
   machine's library versions are facts about the verifier, not about the run).

:attr:`VerifyReport.exit_code` is 0 when every check, the re-run included, was made and matched; 1
when anything differs or cannot be confirmed; 3 when all else matched but the re-run could not be
made (inputs gone or changed), unless the re-run was not asked for.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from .atomic import is_plain_name, is_staging_folder
from .errors import FdnetError, UsageError
from .records.read import sha256_file   # the one streamed file hash
from .runfolder import (ALWAYS_WRITTEN, LIST_FILES, MANIFEST_FILE, REPORT_FILE, SIGNATURE_FILE, RunFolder,
                        check_signature)
from .tables import read_csv_table

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
TABLE_INPUTS = ("incidents", "involvements", "persons", "groups", "group_relations", "place_features",
                "interventions", "long_export")
OTHER_INPUTS = ("mapping", "previous_groups")
REQUIRED_KEYS = ("fdnet_version", "as_of", "data_dir", "policy", "inputs", "outputs", "summary")
MAY_DIFFER = ("environment", "fdnet_version")   # facts about the verifying machine, not about the run
MAX_MANIFEST_BYTES = 256 << 20


@dataclass
class Check:
    name: str
    ok: bool | None          # None: could not be checked
    detail: str = ""


@dataclass
class VerifyReport:
    checks: list[Check] = field(default_factory=list)
    rerun: str = "not attempted"
    rerun_asked: bool = True
    rerun_made: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No check failed (the re-run may still be missing: see :attr:`exit_code`)."""
        return all(c.ok is not False for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.ok is False]

    @property
    def unchecked(self) -> list[Check]:
        return [c for c in self.checks if c.ok is None]

    @property
    def exit_code(self) -> int:
        if not self.ok:
            return 1
        if self.rerun_asked and not self.rerun_made:
            return 3
        return 0

    def add(self, name, ok, detail=""):
        self.checks.append(Check(name, ok, detail))

    def to_dict(self) -> dict:
        return {"exit_code": self.exit_code, "rerun": self.rerun, "rerun_made": self.rerun_made,
                "notes": self.notes, "checks": [c.__dict__ for c in self.checks]}


def _short(value, n: int = 80) -> str:
    r = repr(value)
    return r if len(r) <= n else r[: n - 1] + "…"



def _regular(path: Path, *, follow: bool) -> tuple[bool, str]:
    """Whether ``path`` is a regular file (never opens it: a FIFO would block)."""
    try:
        st = os.stat(path) if follow else os.lstat(path)
    except FileNotFoundError:
        return False, "missing"
    except OSError as exc:
        return False, f"cannot be read ({exc.strerror or exc})"
    if stat.S_ISLNK(st.st_mode):
        return False, "is a symbolic link, not a file written by the run"
    if not stat.S_ISREG(st.st_mode):
        return False, "is not a regular file (a folder, FIFO or device)"
    return True, ""


def _diff(a, b, path: str = "", out: list | None = None, limit: int = 25) -> list[str]:
    """Key paths where the JSON values ``a`` (recorded) and ``b`` (recomputed) differ."""
    out = [] if out is None else out
    if len(out) >= limit:
        return out
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            p = f"{path}.{k}" if path else str(k)
            if k not in a:
                out.append(f"{p} (missing from the manifest)")
            elif k not in b:
                out.append(f"{p} (not produced by the re-run)")
            else:
                _diff(a[k], b[k], p, out, limit)
            if len(out) >= limit:
                break
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            _diff(x, y, f"{path}[{i}]", out, limit)
    elif type(a) is not type(b) or a != b:
        out.append(path or "(the whole manifest)")
    return out


def verify_run(run_dir: str | Path, *, rerun: bool = True, progress=None, key: bytes | None = None,
               audit_db: str | None = None) -> VerifyReport:
    """Check ``run_dir`` as described in the module docstring; see :attr:`VerifyReport.exit_code`.

    ``key``: the signing key's bytes (:func:`fdnet.runfolder.load_sign_key`). ``audit_db``: the audit
    log to check the manifest's SHA-256 against (default ``$FDNET_AUDIT_DB``; none when neither).
    """
    run_dir = Path(run_dir)
    mpath = run_dir / "manifest.json"
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir} is not a run folder (no such folder)")
    if is_staging_folder(run_dir):
        raise UsageError(f"{run_dir} is the staging folder of an interrupted write, not a run folder "
                         "(the next run or export written beside it removes it)")
    ok, why = _regular(mpath, follow=False)
    if not ok:
        raise UsageError(f"{run_dir}: manifest.json {why}: not an fdnet run folder")
    rep = VerifyReport(rerun_asked=rerun)
    if mpath.stat().st_size > MAX_MANIFEST_BYTES:
        rep.add("manifest.json", False, f"{mpath.stat().st_size:,} bytes: too large to be an fdnet manifest")
        return rep
    mbytes = mpath.read_bytes()
    _check_anchors(rep, run_dir, mbytes, key, audit_db)
    try:
        manifest = json.loads(mbytes.decode("utf-8"))
        if not isinstance(manifest, dict):
            raise ValueError("not a JSON object")
    except (UnicodeDecodeError, ValueError) as exc:
        rep.add("manifest.json", False, f"not a valid fdnet manifest ({str(exc)[:200]}); nothing can be confirmed")
        rep.rerun = "not made: the manifest cannot be read"
        return rep
    missing = [k for k in REQUIRED_KEYS if k not in manifest]
    if missing:
        rep.add("manifest.json", False, f"lacks {', '.join(missing)}: not a complete fdnet manifest")
    outputs = manifest.get("outputs")
    if not isinstance(outputs, dict):
        rep.add("manifest outputs", False, "not a table of file names and hashes; no output can be confirmed")
        outputs = {}
    good_files = _check_outputs(rep, run_dir, outputs)
    _check_recomputable(rep, run_dir, manifest, good_files)
    inputs_ok, why_not = _check_inputs(rep, manifest)
    if not rerun:
        rep.rerun = "not asked for (--no-rerun)"
        return rep
    if not inputs_ok:
        rep.rerun = f"not made: {why_not}"
        return rep
    _rerun(rep, run_dir, manifest, progress)
    return rep


# ---------------------------------------------------------------------------- anchors

def _check_anchors(rep: VerifyReport, run_dir: Path, mbytes: bytes, key: bytes | None, audit_db: str | None) -> None:
    sig = run_dir / SIGNATURE_FILE
    present = os.path.lexists(sig)
    if key is not None:
        if not present:
            rep.add("signature", False, f"--key given but the folder has no {SIGNATURE_FILE}: the run was not "
                    "signed, or the signature was removed")
        else:
            ok, why = _regular(sig, follow=False)
            if not ok or sig.stat().st_size > 1 << 16:
                rep.add("signature", False, f"{SIGNATURE_FILE} {why or 'is too large'}")
            else:
                good, detail = check_signature(mbytes, sig.read_bytes(), key)
                rep.add("signature", good, detail)
    elif present:
        rep.add("signature", None, f"{SIGNATURE_FILE} present but not checked: give --key KEYFILE")
    url = audit_db or os.environ.get("FDNET_AUDIT_DB") or None
    if url:
        _check_audit(rep, run_dir, mbytes, url)


def _check_audit(rep: VerifyReport, run_dir: Path, mbytes: bytes, url: str) -> None:
    from .audit.log import AuditLog
    sha = hashlib.sha256(mbytes).hexdigest()
    log = AuditLog(url)
    with log:
        if not log.exists():
            rep.add("audit log", False, f"no audit log at {log.display_url}: the run's manifest cannot be "
                    "confirmed against it")
            return
        chain = log.verify()
        entries = log.entries(kind="run")
    here = str(run_dir.expanduser().resolve())
    hits = [e for e in entries if e.payload.get("manifest_sha256") == sha]
    if not chain.ok:
        rep.add("audit log", False, f"the audit log {log.display_url} fails its own check ({len(chain.problems)} "
                "problem(s); run `fdnet audit verify`): it cannot anchor this run")
    elif hits:
        e = hits[-1]
        rep.add("audit log", True, f"manifest SHA-256 recorded in {log.display_url} as entry {e.seq} "
                f"({e.created_at[:19].replace('T', ' ')} UTC, by {e.user})")
        if e.subject != here:
            rep.notes.append(f"the audit log recorded this manifest for the folder {e.subject}; this copy is at "
                             f"{here}")
    else:
        same = [e for e in entries if e.subject == here]
        if same:
            rep.add("audit log", False, f"the audit log records this folder's run as entry {same[-1].seq} with "
                    f"manifest SHA-256 {str(same[-1].payload.get('manifest_sha256'))[:16]}…, not {sha[:16]}…: "
                    "manifest.json was changed after the run was recorded")
        else:
            rep.add("audit log", False, f"no run with this manifest's SHA-256 ({sha[:16]}…) is recorded in "
                    f"{log.display_url}: the run cannot be confirmed against the log "
                    f"(`fdnet audit record-run {run_dir}` records it, if it is genuine)")


# ---------------------------------------------------------------------------- files

def _check_outputs(rep: VerifyReport, run_dir: Path, outputs: dict) -> dict[str, bytes]:
    """Hash-check the listed outputs; returns the good ones' bytes."""
    good: dict[str, bytes] = {}
    names = sorted(outputs, key=str)
    for name in names:
        meta = outputs[name]
        if not is_plain_name(name) or name in (MANIFEST_FILE, SIGNATURE_FILE) or name.startswith("."):
            rep.add(_short(name, 60), False, "not a plain file name inside the run folder: not read "
                    "(a manifest written by fdnet names only files in its own folder)")
            continue
        sha = meta.get("sha256") if isinstance(meta, dict) else None
        size = meta.get("bytes") if isinstance(meta, dict) else None
        if not isinstance(sha, str) or not _HEX64.match(sha):
            rep.add(name, False, "the manifest gives no valid SHA-256 for it")
            continue
        p = run_dir / name
        ok, why = _regular(p, follow=False)
        if not ok:
            rep.add(name, False, f"{why} in the run folder")
            continue
        data = p.read_bytes()
        if hashlib.sha256(data).hexdigest() != sha:
            rep.add(name, False, "content differs from the manifest's SHA-256 (edited after the run)")
        elif size is not None and (not isinstance(size, int) or isinstance(size, bool) or size != len(data)):
            rep.add(name, False, f"{len(data):,} bytes, the manifest says {_short(size, 20)}")
        else:
            rep.add(name, True, "hash matches the manifest")
            good[name] = data
    plain = {n for n in names if isinstance(n, str)}
    for name in ALWAYS_WRITTEN:
        if name not in plain:
            rep.add(name, False, "every run writes this file, but the manifest does not list it (removed?)")
    try:
        present = sorted(p.name for p in run_dir.iterdir())
    except OSError as exc:
        rep.add("run folder", False, f"cannot be listed ({exc.strerror or exc})")
        present = []
    for name in present:
        if name not in ("manifest.json", SIGNATURE_FILE) and name not in plain:
            rep.add(name, False, "not part of the run (absent from the manifest)")
    return good


def _check_recomputable(rep: VerifyReport, run_dir: Path, manifest: dict, good: dict[str, bytes]) -> None:
    """Manifest fields the folder itself can recompute: list lengths, rejected counts, report.html."""
    summary = manifest.get("summary") if isinstance(manifest.get("summary"), dict) else {}
    wrong: list[str] = []
    lists = summary.get("lists") if isinstance(summary.get("lists"), dict) else {}
    for f in LIST_FILES:
        if f in good:
            n = len(read_csv_table(good[f]))
            if lists.get(f[:-4]) != n:
                wrong.append(f"summary.lists.{f[:-4]} says {_short(lists.get(f[:-4]), 20)}, {f} has {n} rows")
    if "rejected.csv" in good:
        rej = read_csv_table(good["rejected.csv"])
        if summary.get("rows_rejected") != len(rej):
            wrong.append(f"summary.rows_rejected says {_short(summary.get('rows_rejected'), 20)}, rejected.csv "
                         f"has {len(rej)} rows")
        by_file = rej["file"].value_counts() if "file" in rej.columns and len(rej) else {}
        inputs = manifest.get("inputs") if isinstance(manifest.get("inputs"), dict) else {}
        for tname, meta in sorted(inputs.items(), key=lambda kv: str(kv[0])):
            if not isinstance(meta, dict) or not isinstance(meta.get("rows"), dict) or not isinstance(
                    meta.get("path"), str):
                continue
            rows = meta["rows"]
            n = int(by_file.get(Path(meta["path"]).name, 0)) if len(by_file) else 0
            if rows.get("rejected") != n:
                wrong.append(f"inputs.{tname}.rows.rejected says {_short(rows.get('rejected'), 20)}, rejected.csv "
                             f"has {n} rows from {Path(meta['path']).name}")
            if isinstance(rows.get("read"), int) and isinstance(rows.get("rejected"), int) and \
                    rows.get("used") != rows["read"] - rows["rejected"]:
                wrong.append(f"inputs.{tname}.rows: used {_short(rows.get('used'), 20)} is not read − rejected")
    if "disparity.csv" in good:
        d = read_csv_table(good["disparity.csv"])
        flags = int((d["flag"].astype(str) != "").sum()) if "flag" in d.columns else 0
        dm = manifest.get("disparity") if isinstance(manifest.get("disparity"), dict) else {}
        flagged = dm.get("flagged")
        if dm.get("rows") != len(d) or dm.get("flags") != flags or not isinstance(flagged, list) \
                or len(flagged) != flags:
            wrong.append(f"disparity says {_short(dm.get('rows'), 12)} rows and {_short(dm.get('flags'), 12)} "
                         f"flags, disparity.csv has {len(d)} rows and {flags} flags")
        if summary.get("disparity_flags") != flags:
            wrong.append(f"summary.disparity_flags says {_short(summary.get('disparity_flags'), 12)}, "
                         f"disparity.csv has {flags}")
    if wrong:
        rep.add("manifest counts", False, "; ".join(wrong[:6]) + (f"; … {len(wrong) - 6} more" if len(wrong) > 6 else ""))
    elif any(f in good for f in (*LIST_FILES, "rejected.csv", "disparity.csv")):
        rep.add("manifest counts", True, "list lengths, rejected rows and disparity flags match the files")
    if REPORT_FILE in good:
        from .report.html import render_folder_report
        files = {k: v for k, v in good.items() if k != REPORT_FILE}
        claimed = manifest.get("outputs") or {}
        if set(files) | {REPORT_FILE} != {n for n in claimed if n != REPORT_FILE} | {REPORT_FILE}:
            rep.add("report.html re-rendered", None, "not re-rendered: some of the files it is made from failed "
                    "their checks")
            return
        m = {k: v for k, v in manifest.items() if k != "outputs"}
        try:
            again = render_folder_report(RunFolder(run_dir, m, files)).encode("utf-8")
        except Exception as exc:  # noqa: BLE001 - a forged manifest may hold anything
            rep.add("report.html re-rendered", False, f"the manifest and files cannot be rendered ({type(exc).__name__})")
            return
        same = again == good[REPORT_FILE]
        rep.add("report.html re-rendered", same, "identical to the report rendered from the manifest and files"
                if same else "differs from the report rendered from this manifest and these files: the manifest "
                "(summary, notes, disparity, policy…) or report.html was edited")


def _check_inputs(rep: VerifyReport, manifest: dict) -> tuple[bool, str]:
    """Validate and hash the inputs; (all in place, why not)."""
    inputs = manifest.get("inputs")
    if not isinstance(inputs, dict) or not inputs:
        rep.add("manifest inputs", False, "no inputs recorded: the run cannot be traced to its data")
        return False, "no inputs recorded"
    data_dir = manifest.get("data_dir")
    if not isinstance(data_dir, str) or not os.path.isabs(data_dir):
        rep.add("manifest data_dir", False, f"{_short(data_dir)} is not an absolute folder path")
        return False, "data_dir is not valid"
    ddir = Path(data_dir)
    bad, gone, changed = [], [], []
    for name in sorted(inputs, key=str):
        meta = inputs[name]
        label = f"input {name}" if isinstance(name, str) and re.fullmatch(r"[a-z_]{1,40}", name) \
            else f"input {_short(name, 40)}"
        if name not in TABLE_INPUTS and name not in OTHER_INPUTS:
            rep.add(label, False, "not a known input table: not read")
            bad.append(name)
            continue
        path, sha = (meta.get("path"), meta.get("sha256")) if isinstance(meta, dict) else (None, None)
        if not isinstance(path, str) or not os.path.isabs(path) or "\x00" in path or \
                not isinstance(sha, str) or not _HEX64.match(sha):
            rep.add(label, False, "the manifest gives no absolute path and SHA-256 for it: not read")
            bad.append(name)
            continue
        p = Path(os.path.normpath(path))
        where_ok = {
            "mapping": p.suffix.lower() in (".yaml", ".yml"),
            "previous_groups": p.name == "groups.csv",
        }.get(name, p.is_relative_to(ddir) and ".." not in Path(path).parts
              and p.suffix.lower() in (".csv", ".parquet", ".txt", ".tsv"))
        if not where_ok:
            rep.add(label, False, f"{_short(path)} is not where fdnet reads a {name} file from (inside data_dir "
                    f"{_short(data_dir)}): not read")
            bad.append(name)
            continue
        ok, why = _regular(p, follow=True)
        if not ok:
            rep.add(label, None, f"{path} {why}: cannot be checked")
            gone.append(f"{name} {why} ({path})")
            continue
        if sha256_file(p) != sha:
            rep.add(label, None, f"{path} changed since the run (or the manifest's SHA-256 for it was altered)")
            changed.append(f"{name} changed since the run ({path})")
        else:
            rep.add(label, True, "in place, SHA-256 matches")
    prev = manifest.get("previous")
    if prev is not None:
        _check_previous(rep, prev, bad, gone, changed)
    if bad:
        return False, "the manifest's inputs are not valid"
    if gone or changed:
        return False, "inputs not in place: " + "; ".join(gone + changed)
    return True, ""


def _check_previous(rep: VerifyReport, prev, bad: list, gone: list, changed: list) -> None:
    """The earlier run of ``--previous`` (``manifest.previous``) is an input of the run: its folder must be
    in place with the manifest recorded (SHA-256), and still match its own manifest, for the re-run."""
    run_dir = prev.get("run_dir") if isinstance(prev, dict) else None
    sha = prev.get("manifest_sha256") if isinstance(prev, dict) else None
    if not isinstance(run_dir, str) or not os.path.isabs(run_dir) or "\x00" in run_dir or \
            not isinstance(sha, str) or not _HEX64.match(sha):
        rep.add("previous run", False, "the manifest's previous gives no absolute run_dir and manifest SHA-256: "
                "not read")
        bad.append("previous")
        return
    mpath = Path(os.path.normpath(run_dir)) / MANIFEST_FILE
    ok, why = _regular(mpath, follow=True)
    if not ok:
        rep.add("previous run", None, f"{run_dir}: manifest.json {why}: cannot be checked")
        gone.append(f"the previous run {run_dir} is gone (manifest.json {why})")
        return
    if sha256_file(mpath) != sha:
        rep.add("previous run", None, f"{run_dir}: manifest.json differs from the SHA-256 recorded for it (another "
                "run in that folder, or the manifest's previous was altered)")
        changed.append(f"the previous run {run_dir} changed since the run")
        return
    from .lists.changes import open_previous
    try:
        open_previous(run_dir)
    except UsageError as exc:
        rep.add("previous run", None, f"{str(exc)[:400]}")
        changed.append(f"the previous run {run_dir} no longer matches its manifest")
        return
    rep.add("previous run", True, "in place, manifest SHA-256 matches and every file matches that manifest")


def _rerun(rep: VerifyReport, run_dir: Path, manifest: dict, progress) -> None:
    import sys
    import fdnet.run  # noqa: F401  (the module is callable; sys.modules holds it)
    compute = sys.modules["fdnet.run"].run
    inputs = manifest["inputs"]
    mapping = inputs.get("mapping", {}).get("path")
    prev = None
    previous_run = manifest["previous"]["run_dir"] if isinstance(manifest.get("previous"), dict) else None
    try:
        if "previous_groups" in inputs and previous_run is None:   # a run before changes.csv: groups only
            prev = read_csv_table(Path(inputs["previous_groups"]["path"]))
        again_run = compute(manifest["data_dir"], as_of=manifest["as_of"], policy=manifest["policy"],
                            mapping_path=mapping, progress=progress, previous_groups=prev,
                            previous_run=previous_run,
                            today=manifest.get("run_date") or None)   # the run's own day (future-dated rows)
    except FdnetError as exc:
        rep.add("re-run", False, f"the inputs are in place but the run cannot be made again: {str(exc)[:400]}")
        rep.rerun = "not made: the re-run failed"
        return
    if "previous_groups" in inputs:
        again_run.manifest["inputs"]["previous_groups"] = inputs["previous_groups"]
    rep.rerun_made = True
    diffs = []
    claimed = manifest.get("outputs") if isinstance(manifest.get("outputs"), dict) else {}
    produced = set()
    checks = {}
    for name, data in again_run.files():   # one file at a time, compared and dropped
        if name == MANIFEST_FILE:
            continue
        produced.add(name)
        p = run_dir / name
        same = _regular(p, follow=False)[0] and p.read_bytes() == data
        checks[name] = (same, "identical" if same else "differs from a fresh re-run of the same inputs and policy")
        del data
    for name in {n for n in claimed if isinstance(n, str) and is_plain_name(n)} - produced:
        checks[name] = (False, "the re-run does not produce this file")
    for name in sorted(checks):
        same, detail = checks[name]
        rep.add(f"re-run {name}", same, detail)
        if not same:
            diffs.append(name)
    recorded = {k: v for k, v in manifest.items() if k not in MAY_DIFFER}
    again = json.loads(json.dumps({k: v for k, v in again_run.manifest.items() if k not in MAY_DIFFER},
                                  ensure_ascii=False))
    fields = _diff(recorded, again)
    rep.add("re-run manifest.json", not fields, "every field identical (but environment and fdnet_version)"
            if not fields else "differs from the re-run in " + ", ".join(fields[:12])
            + (f", … ({len(fields) - 12} more)" if len(fields) > 12 else ""))
    if fields:
        diffs.append("manifest.json")
    for k in MAY_DIFFER:
        if manifest.get(k) != again_run.manifest.get(k):
            rep.notes.append(f"{k}: the run recorded {_short(manifest.get(k), 200)}, this machine has "
                             f"{_short(again_run.manifest.get(k), 200)}")
    rep.rerun = "re-run: identical" if not diffs else f"re-run: differs in {', '.join(diffs)}"
