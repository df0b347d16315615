"""The main job: records -> graph -> scoring -> lists -> audit/report.

:func:`compute_run` is pure: it reads the input folder and returns every
output file's bytes and the manifest, writing nothing. :func:`write_run` is
the one place that touches the run folder, and does so all-or-nothing
through :func:`fdnet.atomic.write_staged`: every file is written into a
hidden sibling staging folder, which then becomes RUN_DIR in one rename; on
any failure (an error, SIGTERM, SIGKILL, a full disk) RUN_DIR is left as it
was found (absent or empty).

With a signing key (:func:`load_sign_key`), the run also carries
``manifest.sig``: an HMAC-SHA256 of the manifest's bytes, the one file the
manifest cannot list (see docs/run-folder.md).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import platform
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from . import __version__
from .atomic import write_staged
from .errors import UsageError
from .api import study
from .graph.layers import FLAG_VICTIM
from .lists.build import build_lists
from .records.validate import day_to_iso
from .scoring.explain import explain_listed
from .scoring.policy import Policy
from .tables import csv_bytes, read_csv_table  # csv_bytes re-exported: the one CSV writer

LIST_FILES = ("call_in.csv", "custom_notifications.csv", "service_referrals.csv")
# Written by every run, whatever the inputs (places.csv, risk_factors.csv and resolution.csv only sometimes).
ALWAYS_WRITTEN = ("rejected.csv", "edges.csv", "groups.csv", "group_table.csv", "conflicts.csv",
                  "contagion_events.csv", "scores.csv", *LIST_FILES, "call_in_groups.csv", "explanations.jsonl",
                  "disparity.csv", "report.html")
SIGNATURE_FILE = "manifest.sig"
STEPS = ("read and validate", "build networks", "network analytics", "features and scores", "lists",
         "explanations", "report")


@dataclass
class RunResult:
    outputs: dict[str, bytes]
    manifest: dict
    summary: dict


def sha256_bytes(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def _versions() -> dict:
    import igraph
    import pyarrow
    import scipy
    return {"python": platform.python_version(), "numpy": np.__version__, "pandas": pd.__version__,
            "pyarrow": pyarrow.__version__, "scipy": scipy.__version__, "igraph": igraph.__version__}


def compute_run(data_dir: str | Path, *, as_of: str | None = None, policy: Policy | dict | None = None,
                mapping_path: str | Path | None = None,
                progress: Callable[[str], None] | None = None,
                previous_groups: pd.DataFrame | None = None, today: str | None = None) -> RunResult:
    """Run the whole pipeline in memory; see the module docstring.

    ``previous_groups`` (an earlier run's groups.csv) lets detected groups
    keep their names when their membership overlaps. ``today`` is the day of
    the run (default the machine's date; written to the manifest as
    ``run_date``, and given back by ``fdnet verify`` so a re-run on a later
    day rejects exactly the rows the run rejected as dated in the future).
    """
    step = progress or (lambda name: None)
    st = study(data_dir, as_of=as_of, policy=policy, mapping_path=mapping_path,
               previous_groups=previous_groups, progress=step, today=today)
    rec, net, an, scores, policy = st.records, st.network, st.analytics, st.scores, st.policy
    co = net.layers["co_offending"]
    groups = an.groups

    step("lists")
    lists = build_lists(scores, policy, rec.as_of_day, co_offending=co, persons=rec.persons,
                        as_of=rec.as_of)
    call_in_groups = lists.pop("call_in_groups")

    step("explanations")
    listed: dict[str, list[str]] = {}
    for name in ("call_in", "custom_notifications", "service_referrals"):
        for pid in lists[name]["person_id"]:
            listed.setdefault(pid, []).append(name)
    expl = explain_listed(net, rec.involvements, scores, policy, listed, analytics=an, persons=rec.persons,
                          lists=lists)
    expl_lines = expl["json"].tolist()

    edges = pd.concat([net.layers[n].edges_frame(net) for n in ("co_offending", "victimization")],
                      ignore_index=True)
    outputs: dict[str, bytes] = {
        "rejected.csv": csv_bytes(rec.rejected),
        "edges.csv": csv_bytes(edges),
        "groups.csv": csv_bytes(groups.table),
        "group_table.csv": csv_bytes(an.group_table),
        "conflicts.csv": csv_bytes(an.conflicts),
        "contagion_events.csv": csv_bytes(an.contagion_events),
        "scores.csv": csv_bytes(scores),
        "call_in.csv": csv_bytes(lists["call_in"]),
        "custom_notifications.csv": csv_bytes(lists["custom_notifications"]),
        "service_referrals.csv": csv_bytes(lists["service_referrals"]),
        "call_in_groups.csv": csv_bytes(call_in_groups),
        "explanations.jsonl": ("\n".join(expl_lines) + ("\n" if expl_lines else "")).encode("utf-8"),
    }
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
        "lists": {k: int(len(v)) for k, v in lists.items()},
    }
    from .audit.disparity import disparity_summary, disparity_table
    disparity = disparity_table(scores, lists, rec.persons, policy)
    outputs["disparity.csv"] = csv_bytes(disparity)
    summary["shootings_by_month"] = _shootings_by_month(net)
    summary["call_in_groups"] = int(len(call_in_groups))
    summary["call_in_expected_reach"] = round(float(call_in_groups["expected_reach"].sum()), 6) \
        if len(call_in_groups) else 0.0
    summary["disparity_flags"] = int((disparity["flag"].astype(str) != "").sum())
    inputs = dict(rec.inputs)
    if mapping_path or (Path(data_dir) / "mapping.yaml").exists():
        mp = Path(mapping_path) if mapping_path else Path(data_dir) / "mapping.yaml"
        inputs["mapping"] = {"path": str(mp.resolve()), "sha256": sha256_bytes(mp.read_bytes())}
    manifest = {
        "fdnet_version": __version__,
        "as_of": rec.as_of,
        "run_date": rec.today,
        "window": {"start": summary["window_start"], "end": rec.as_of, "days": policy.window_days},
        "data_dir": str(Path(data_dir).resolve()),
        "policy": policy.effective(),
        "inputs": inputs,
        "summary": summary,
        "analytics": {
            "betweenness": an.betweenness_info,
            "contagion": an.contagion.summary() if an.contagion is not None else None,
        },
        "disparity": disparity_summary(disparity),
        "notes": list(rec.notes),
        "data_quality": list(getattr(rec, "findings", None) or []),
        "network": {"capped_incidents": list(getattr(net, "capped_incidents", None) or [])},
        "environment": _versions(),
    }
    capped = manifest["network"]["capped_incidents"]
    if capped:
        cap = getattr(getattr(policy, "network", None), "max_pairs_per_incident", None)
        manifest["notes"].append(
            f"{len(capped)} incident layer(s) had more pairs than network.max_pairs_per_incident"
            + (f" ({cap})" if cap is not None else "") + " and were not projected into ties: "
            + ", ".join(sorted({str(c.get('incident_id')) for c in capped})[:10])
            + (" …" if len({str(c.get('incident_id')) for c in capped}) > 10 else "")
            + " (manifest network.capped_incidents)")
    step("report")
    from .report.html import render_report
    outputs["report.html"] = render_report(dict(outputs), manifest).encode("utf-8")
    manifest["outputs"] = {name: {"sha256": sha256_bytes(b), "bytes": len(b)} for name, b in sorted(outputs.items())}
    return RunResult(outputs, manifest, summary)


def _shootings_by_month(net) -> list[dict]:
    """Shootings and distinct people shot per calendar month of the window (for the report's chart)."""
    I = net.incidence
    sh = net.shooting_incidents()
    months = (np.datetime64("1970-01-01", "D") + net.inc_day.astype("timedelta64[D]")).astype("datetime64[M]")
    vic = ((I.flags & FLAG_VICTIM) != 0) & sh[I.inc]
    out = []
    if len(months) == 0:
        return out
    lo, hi = months.min(), months.max()
    m_sh = pd.Series(months[sh]).value_counts()
    # distinct people shot per month (one person in two rows of one shooting counts once), the report's
    # one definition of "shooting victims"
    m_v = pd.DataFrame({"m": months[I.inc[vic]], "p": I.person[vic]}).drop_duplicates()["m"].value_counts()
    m = lo
    while m <= hi:
        out.append({"month": str(m), "shootings": int(m_sh.get(m, 0)), "victims": int(m_v.get(m, 0))})
        m = m + np.timedelta64(1, "M")
    return out


def manifest_bytes(manifest: dict) -> bytes:
    return (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def check_run_dir(out_dir: Path) -> None:
    """Refuse early (exit 2) an --out that exists and is not an empty folder, or cannot be created."""
    out_dir = Path(out_dir)
    try:
        if out_dir.exists():
            if not out_dir.is_dir():
                raise UsageError(f"--out {out_dir} exists and is not a folder; RUN_DIR must be new or empty")
            if any(out_dir.iterdir()):
                raise UsageError(f"--out {out_dir} is not empty; RUN_DIR must be new or empty "
                                 "(fdnet never overwrites an earlier run)")
            if not os.access(out_dir.parent, os.W_OK | os.X_OK):
                raise UsageError(f"--out {out_dir}: its parent folder {out_dir.parent} is not writable "
                                 "(fdnet completes a run by renaming a folder beside RUN_DIR)")
            return
        anc = out_dir.absolute().parent
        while not anc.exists():
            anc = anc.parent
        if not anc.is_dir():
            raise UsageError(f"--out {out_dir} cannot be created: {anc} is not a folder")
        if not os.access(anc, os.W_OK | os.X_OK):
            raise UsageError(f"--out {out_dir} cannot be created: {anc} is not writable (permission denied)")
    except OSError as exc:
        raise UsageError(f"--out {out_dir} cannot be used: {exc.strerror or exc}") from None


SIGN_KEY_BYTES = 32


def generate_sign_key() -> str:
    """A new signing key: 32 random bytes as 64 hex digits (what ``fdnet audit keygen`` writes).

    >>> len(generate_sign_key()), load_sign_key_text(generate_sign_key()) != load_sign_key_text(generate_sign_key())
    (64, True)
    """
    import secrets
    return secrets.token_hex(SIGN_KEY_BYTES)


def load_sign_key_text(text: str, where: str = "the key") -> bytes:
    """The key bytes from a key file's text: at least 64 hex digits (256 random bits), nothing else.

    >>> load_sign_key_text("pa55word")
    Traceback (most recent call last):
    ...
    fdnet.errors.UsageError: the key is not a strong key: expected 64 or more hex digits (256 random bits), as written by `fdnet audit keygen KEYFILE`; a chosen password is refused
    """
    t = text.strip()
    ok = len(t) >= 2 * SIGN_KEY_BYTES and len(t) % 2 == 0 and all(c in "0123456789abcdefABCDEF" for c in t)
    if not ok:
        raise UsageError(f"{where} is not a strong key: expected 64 or more hex digits (256 random bits), as "
                         "written by `fdnet audit keygen KEYFILE`; a chosen password is refused")
    key = bytes.fromhex(t)
    if len(set(key)) < 8:
        raise UsageError(f"{where} is not a random key (too few distinct bytes); generate one with "
                         "`fdnet audit keygen KEYFILE`")
    return key


def load_sign_key(path: str | Path, run_dir: str | Path | None = None) -> bytes:
    """Read a signing key file (kept outside any run folder; see :func:`generate_sign_key`)."""
    p = Path(path)
    try:
        st = os.stat(p)
    except OSError as exc:
        raise UsageError(f"key file {p}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise UsageError(f"key file {p} is not a regular file")
    if st.st_size > 4096:
        raise UsageError(f"key file {p} is {st.st_size:,} bytes; a key file holds one line of hex digits")
    if run_dir is not None:
        rd = Path(run_dir).absolute().resolve()
        if p.absolute().resolve().is_relative_to(rd):
            raise UsageError(f"key file {p} is inside the run folder {run_dir}; keep the key outside it, "
                             "where whoever can edit the folder cannot read it")
    try:
        text = p.read_bytes().decode("ascii")
    except OSError as exc:
        raise UsageError(f"key file {p}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"key file {p} is not a text file of hex digits") from None
    return load_sign_key_text(text, f"key file {p}")


def key_id(key: bytes) -> str:
    """A public fingerprint of a key (tells keys apart without revealing them)."""
    return hmac.new(key, b"fdnet key id", hashlib.sha256).hexdigest()[:16]


def sign_manifest(manifest_data: bytes, key: bytes) -> bytes:
    """``manifest.sig``: JSON with the manifest's SHA-256 and its HMAC-SHA256 under ``key``.

    >>> key = bytes(range(32))
    >>> sig = json.loads(sign_manifest(b"{}", key))
    >>> sig["algorithm"], sig["manifest_sha256"] == sha256_bytes(b"{}")
    ('HMAC-SHA256', True)
    >>> check_signature(b"{}", sign_manifest(b"{}", key), key)
    (True, 'signature valid (key id aee9ccfcd8639fbe)')
    >>> check_signature(b"{ }", sign_manifest(b"{}", key), key)[0]
    False
    """
    sig = {"algorithm": "HMAC-SHA256", "signed_file": "manifest.json", "key_id": key_id(key),
           "manifest_sha256": sha256_bytes(manifest_data),
           "hmac": hmac.new(key, manifest_data, hashlib.sha256).hexdigest()}
    return (json.dumps(sig, indent=2) + "\n").encode("utf-8")


def check_signature(manifest_data: bytes, sig_data: bytes, key: bytes) -> tuple[bool, str]:
    """Whether ``sig_data`` (manifest.sig) is the HMAC of ``manifest_data`` under ``key``, and why not."""
    try:
        sig = json.loads(sig_data.decode("utf-8"))
        mac = sig["hmac"]
        if not isinstance(sig, dict) or not isinstance(mac, str):
            raise TypeError
    except (UnicodeDecodeError, ValueError, KeyError, TypeError):
        return False, f"{SIGNATURE_FILE} is not an fdnet signature file"
    if sig.get("algorithm") != "HMAC-SHA256":
        return False, f"{SIGNATURE_FILE} names algorithm {str(sig.get('algorithm'))[:40]!r}, not HMAC-SHA256"
    if sig.get("key_id") != key_id(key):
        return False, (f"signed with another key (key id {str(sig.get('key_id'))[:16]}, this key "
                       f"{key_id(key)}), or the signature was forged")
    good = hmac.new(key, manifest_data, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(good, mac):
        return False, "manifest.json is not the manifest that was signed (edited after the run)"
    return True, f"signature valid (key id {key_id(key)})"


def write_run(result: RunResult, out_dir: str | Path, *, sign_key: bytes | None = None) -> Path:
    """Write all outputs and the manifest (and ``manifest.sig`` with a key) into ``out_dir``, all or nothing."""
    files = dict(result.outputs)
    files["manifest.json"] = manifest_bytes(result.manifest)
    if sign_key is not None:
        files[SIGNATURE_FILE] = sign_manifest(files["manifest.json"], sign_key)
    return write_files(files, out_dir)


def write_files(files: dict[str, bytes], out_dir: str | Path, what: str = "run folder") -> Path:
    """Write ``files`` (name -> bytes) into the new or empty folder ``out_dir``, all or nothing.

    Names are plain file names: nothing is written outside ``out_dir`` (but for the short-lived
    staging folder beside it). The same writer serves run, export and calibrate folders.
    """
    out_dir = Path(out_dir)
    check_run_dir(out_dir)
    return write_staged(files, out_dir, what=what)


def load_previous_groups(previous_run: str | Path | None) -> tuple[pd.DataFrame | None, dict | None]:
    """An earlier run's groups.csv (for stable group names) and its manifest entry."""
    if previous_run is None:
        return None, None
    p = Path(previous_run) / "groups.csv"
    if not p.is_file() or not (Path(previous_run) / "manifest.json").is_file():
        raise UsageError(f"--previous {previous_run} is not an fdnet run folder (needs manifest.json and groups.csv)")
    data = p.read_bytes()
    df = read_csv_table(data)
    if not {"person_id", "group"} <= set(df.columns):
        raise UsageError(f"{p} lacks person_id/group columns")
    return df, {"path": str(p.resolve()), "sha256": sha256_bytes(data)}


def run(data_dir: str | Path, out_dir: str | Path, *, as_of: str | None = None,
        policy: Policy | dict | None = None, mapping_path: str | Path | None = None,
        progress: Callable[[str], None] | None = None, previous_run: str | Path | None = None,
        sign_key: bytes | None = None, today: str | None = None) -> RunResult:
    """Validate the run folder first, compute, then write (all or nothing; signed with ``sign_key``)."""
    check_run_dir(Path(out_dir))
    prev, prev_entry = load_previous_groups(previous_run)
    result = compute_run(data_dir, as_of=as_of, policy=policy, mapping_path=mapping_path, progress=progress,
                         previous_groups=prev, today=today)
    if prev_entry:
        result.manifest["inputs"]["previous_groups"] = prev_entry
    write_run(result, out_dir, sign_key=sign_key)
    return result


def read_csv_text(b: bytes) -> pd.DataFrame:
    return read_csv_table(b)
