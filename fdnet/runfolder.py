"""The one description of the run folder: its files, how each is made from a :class:`~fdnet.run.Run`,
their contract columns, and the one writer and the one reader of run folders.

Imports stay one-way: this module needs only the CSV writer; the report (which reads runs through
:class:`RunFolder`) and :class:`fdnet.run.Run` (which writes through :func:`write_run_folder`) sit above it.

:data:`FILES` lists every file a run folder may hold (CONTRACT.md section 3, docs/run-folder.md): for
each, the :class:`~fdnet.run.Run` table it is written from, the columns the contract requires, the
columns that hold person IDs and incident IDs (pseudonymised exports map the first, never scan the
second), and whether every run writes it. Every other module takes the list names, file names and
columns from here.

:func:`write_run_folder` streams a run into a new or empty folder: each file is serialised, written into
the staging folder and hashed from the bytes written, then dropped, before the next is made; the
report comes after the tables (it lists their hashes), the manifest last, and the folder appears in
one rename (:class:`fdnet.atomic.StagedFolder`). :func:`open_run` reads a finished folder back: the
manifest once, every file once with its hash checked from the very bytes kept, tables parsed lazily
(:func:`fdnet.tables.read_csv_table`, every cell as text).

>>> [f.name for f in FILES if f.always][:4]
['manifest.json', 'rejected.csv', 'edges.csv', 'groups.csv']
>>> spec("scores.csv").person_id_columns, spec("edges.csv").incident_id_columns
(('person_id',), ('incident_ids',))
>>> LIST_FILES
('call_in.csv', 'custom_notifications.csv', 'service_referrals.csv')
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

import pandas as pd

from .errors import UsageError
from .tables import csv_bytes, read_csv_table

if TYPE_CHECKING:   # pragma: no cover
    from .run import Run

LIST_NAMES = ("call_in", "custom_notifications", "service_referrals")
LIST_FILES = tuple(f"{n}.csv" for n in LIST_NAMES)
LIST_TITLES = {"call_in": "Call-in", "custom_notifications": "Custom notifications",
               "service_referrals": "Service referrals"}
# the lists whose candidates must have an offending role (guardrails.min_offending_incidents >= 1)
ENFORCEMENT_LISTS = frozenset({"call_in", "custom_notifications"})
MANIFEST_FILE = "manifest.json"
SIGNATURE_FILE = "manifest.sig"
REPORT_FILE = "report.html"
EXPLANATIONS_FILE = "explanations.jsonl"
LIST_COLUMNS = ("rank", "person_id", "group", "score", "reasons")


@dataclass(frozen=True)
class FileSpec:
    """One file of the run folder.

    ``source`` is the key of the :class:`~fdnet.run.Run` table it is written from (``Run.table(source)``),
    None for the manifest, the signature, the explanations and the report, which have their own writers.
    """

    name: str
    kind: str                                  # csv, jsonl, html, json
    source: str | None
    required_columns: tuple[str, ...] = ()     # the contract's (CONTRACT.md section 3), in file order
    person_id_columns: tuple[str, ...] = ()
    incident_id_columns: tuple[str, ...] = ()
    always: bool = True                        # written by every run
    about: str = ""

    @property
    def key(self) -> str:
        """The file's name without its extension (``call_in``, ``scores``, ...)."""
        return self.name.rsplit(".", 1)[0]


FILES: tuple[FileSpec, ...] = (
    FileSpec("manifest.json", "json", None, about="what was run: version, as_of, policy, inputs with their "
             "SHA-256 and row counts, summary, and every other file's SHA-256 (outputs)"),
    FileSpec("rejected.csv", "csv", "rejected", ("file", "line", "column", "reason", "raw"),
             about="every input row not used, and why"),
    FileSpec("edges.csv", "csv", "edges", ("person_a", "person_b", "layer", "weight", "incidents", "first_date",
                                           "last_date", "incident_ids"),
             ("person_a", "person_b"), ("incident_ids",), about="the co-offending and victimization ties"),
    FileSpec("groups.csv", "csv", "groups", ("person_id", "group", "source"), ("person_id",),
             about="group membership (audit, detected or both)"),
    FileSpec("group_table.csv", "csv", "group_table", ("group", "members"), ("most_central",),
             about="one row per group"),
    FileSpec("conflicts.csv", "csv", "conflicts", ("group_a", "group_b", "relation"), (), ("incident_ids",),
             about="conflicts and alliances between groups"),
    FileSpec("contagion_events.csv", "csv", "contagion_events", ("incident_id", "date", "person_id"),
             ("person_id", "likely_infector"), ("incident_id", "infector_incident_id"),
             about="the shootings the contagion model used"),
    FileSpec("scores.csv", "csv", "scores", ("person_id", "score", "group", "degree", "exposure_1", "exposure_2"),
             ("person_id",), about="one row per person in the network, every score component"),
    *(FileSpec(f"{n}.csv", "csv", n, LIST_COLUMNS, ("person_id",), about=f"the {LIST_TITLES[n]} list")
      for n in LIST_NAMES),
    FileSpec("call_in_groups.csv", "csv", "call_in_groups", ("group", "invited", "expected_reach"), (),
             about="the groups chosen for the call-in, with the expected reach"),
    FileSpec(EXPLANATIONS_FILE, "jsonl", None, ("person_id", "lists", "score", "components"), ("person_id",),
             about="one JSON object per listed person: why"),
    FileSpec("disparity.csv", "csv", "disparity", ("list", "attribute", "category", "listed"),
             about="who is on each list, by attribute, beside the network and the offending population"),
    FileSpec("places.csv", "csv", "places", ("cell_id", "lat", "lon", "shootings", "risk"), always=False,
             about="when incidents carry lat and lon: the risk-terrain cells"),
    FileSpec("risk_factors.csv", "csv", "risk_factors", ("factor", "relative_risk", "ci95_low", "ci95_high",
                                                         "selected"), always=False,
             about="when incidents carry lat and lon: the place factors tried"),
    FileSpec("place_list.csv", "csv", "place_list", ("rank", "cell_id", "risk", "drivers"), always=False,
             about="when incidents carry lat and lon: the highest-risk cells and what drives them (no people)"),
    FileSpec("near_repeats.csv", "csv", "near_repeats", ("distance_to_m", "days_to", "observed", "expected", "ratio",
                                                         "p_value"), always=False,
             about="when incidents carry lat and lon: the Knox test of shootings near in space and time"),
    FileSpec("resolution.csv", "csv", "resolution", ("person_id", "source", "entity_id"), ("person_id", "entity_id"),
             always=False, about="when entity resolution is on: every input ID and its entity"),
    FileSpec("resolution_review.csv", "csv", "resolution_review", ("person_a", "person_b", "match_probability",
                                                                   "waterfall"), ("person_a", "person_b"),
             always=False, about="when entity resolution is on: the uncertain pairs for clerical review (never "
             "merged)"),
    FileSpec("changes.csv", "csv", "changes", ("list", "person_id", "change", "previous_rank", "rank",
                                               "previous_score", "score", "group", "reason"), ("person_id",),
             always=False, about="with --previous: who entered, left or stayed on each list since that run, "
             "and why"),
    FileSpec(REPORT_FILE, "html", None, about="the self-contained offline report"),
    FileSpec(SIGNATURE_FILE, "json", None, always=False,
             about="with a signing key: HMAC-SHA256 of manifest.json (the one file the manifest cannot list)"),
)
_BY_NAME = {f.name: f for f in FILES}
#: written by every run, whatever the inputs, and listed in the manifest's outputs
ALWAYS_WRITTEN = tuple(f.name for f in FILES if f.always and f.name != MANIFEST_FILE)
#: the tables a run folder must hold to be opened (exports need them)
REQUIRED_TABLES = ("edges.csv", "scores.csv", "groups.csv", *LIST_FILES)
#: tables a run writes in this order (then explanations, the report, the manifest, the signature)
TABLE_FILES = tuple(f.name for f in FILES if f.kind == "csv")


def spec(name: str) -> FileSpec:
    """The description of the file ``name`` (``"scores.csv"`` or ``"scores"``); KeyError when unknown."""
    if name in _BY_NAME:
        return _BY_NAME[name]
    for f in FILES:
        if f.key == name:
            return f
    raise KeyError(name)


# ---------------------------------------------------------------------------- fingerprints

def canonical_json(obj) -> str:
    """The one serialisation that is hashed: sorted keys, compact, UTF-8 kept, no NaN.

    >>> canonical_json({"b": 1, "a": "é"})
    '{"a":"é","b":1}'
    """
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def sha256_bytes(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def sha256_path(path: str | Path) -> str:
    """SHA-256 of a file, streamed in 1 MiB pieces (the file is never held whole)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def policy_sha256(policy: dict | None) -> str:
    """SHA-256 of the effective policy as canonical JSON: the hash the report shows, ``fdnet policy
    check`` prints, exports and the audit log record. "" for no policy or one holding a non-finite number.

    >>> policy_sha256({"b": 1, "a": [1, 2]}) == hashlib.sha256(b'{"a":[1,2],"b":1}').hexdigest()
    True
    >>> policy_sha256({}), policy_sha256({"x": float("nan")})
    ('', '')
    """
    if not policy:
        return ""
    try:
        canon = canonical_json(policy)
    except ValueError:        # a non-finite number: no hash rather than a wrong one
        return ""
    return sha256_bytes(canon.encode("utf-8"))


def manifest_bytes(manifest: dict) -> bytes:
    return (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


# ---------------------------------------------------------------------------- signing

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


# ---------------------------------------------------------------------------- the output folder

def check_run_dir(out_dir: str | Path, option: str = "--out", what: str = "RUN_DIR", earlier: str = "an earlier run") \
        -> None:
    """Refuse early (exit 2) an output folder that exists and is not an empty folder, or cannot be created.

    The one "new or empty folder" check (run, demo, export, calibrate, synth); ``what`` names the
    folder in the message (``RUN_DIR``, ``EXPORT_DIR``...), ``earlier`` what fdnet never overwrites.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()); (d / "x").write_text("1")
    1
    >>> check_run_dir(d / "new"); check_run_dir(d)
    Traceback (most recent call last):
    ...
    fdnet.errors.UsageError: --out ... is not empty; RUN_DIR must be new or empty (fdnet never overwrites an earlier run)
    """
    out_dir = Path(out_dir)
    try:
        if out_dir.exists():
            if not out_dir.is_dir():
                raise UsageError(f"{option} {out_dir} exists and is not a folder; {what} must be new or empty")
            if any(out_dir.iterdir()):
                raise UsageError(f"{option} {out_dir} is not empty; {what} must be new or empty "
                                 f"(fdnet never overwrites {earlier})")
            if not os.access(out_dir.parent, os.W_OK | os.X_OK):
                raise UsageError(f"{option} {out_dir}: its parent folder {out_dir.parent} is not writable "
                                 f"(fdnet completes a write by renaming a folder beside {what})")
            return
        anc = out_dir.absolute().parent
        while not anc.exists():
            anc = anc.parent
        if not anc.is_dir():
            raise UsageError(f"{option} {out_dir} cannot be created: {anc} is not a folder")
        if not os.access(anc, os.W_OK | os.X_OK):
            raise UsageError(f"{option} {out_dir} cannot be created: {anc} is not writable (permission denied)")
    except OSError as exc:
        raise UsageError(f"{option} {out_dir} cannot be used: {exc.strerror or exc}") from None


def write_files(files: dict[str, bytes], out_dir: str | Path, what: str = "run folder") -> Path:
    """Write ``files`` (name -> bytes) into the new or empty folder ``out_dir``, all or nothing.

    Names are plain file names: nothing is written outside ``out_dir`` (but for the short-lived
    staging folder beside it). The same writer serves export and calibrate folders.
    """
    from .atomic import write_staged
    out_dir = Path(out_dir)
    check_run_dir(out_dir)
    return write_staged(files, out_dir, what=what)


def explanations_bytes(lines) -> bytes:
    lines = list(lines)
    return ("\n".join(lines) + ("\n" if lines else "")).encode("utf-8")


def iter_tables(run: "Run") -> Iterator[tuple[str, bytes]]:
    """The run's tables and explanations.jsonl as (name, bytes), one at a time, in :data:`FILES` order
    (each made only when the previous one is written and dropped). report.html, which lists these
    files' sizes and hashes, comes after them (:meth:`fdnet.run.Run.files`); the manifest last."""
    for f in FILES:
        if f.kind == "csv":
            df = run.table(f.source)
            if df is None:
                continue
            yield f.name, csv_bytes(df)
        elif f.name == EXPLANATIONS_FILE:
            yield f.name, explanations_bytes(run.explanations["json"])


def file_stats(name: str, data: bytes) -> dict:
    """Size, rows and SHA-256 of one output file, as the report's inventory shows them."""
    return {"bytes": len(data), "rows": _rows(name, data.count(b"\n"), len(data)), "sha256": sha256_bytes(data)}


def _streamed_stats(name: str, meta: dict) -> dict:
    """:func:`file_stats` of a file written piece by piece, from :meth:`fdnet.atomic.StagedFolder.write_iter`'s
    counts."""
    return {"bytes": meta["bytes"], "rows": _rows(name, meta["newlines"], meta["bytes"]), "sha256": meta["sha256"]}


def _rows(name: str, newlines: int, size: int) -> int | None:
    """Data rows of an output file: a CSV's lines but its header, a JSON Lines file's lines, else None."""
    if name.endswith(".csv"):
        return max(newlines - 1, 0) if size else 0
    if name.endswith(".jsonl"):
        return newlines
    return None


class Pieces:
    """A file given to :func:`write_run_folder` as an iterator of its bytes in pieces, made as they are
    written (report.html: never the whole page in memory as text and as bytes)."""

    def __init__(self, pieces: Iterable[bytes]):
        self.pieces = pieces


class TableFrames:
    """A table given to :func:`write_run_folder` as the frames of its rows in order, made again on each call
    of ``frames()`` (a file that turns out to need quoting is written a second time), so that no more than
    one frame is in memory: edges.csv at a million people is about 260 MB as one frame."""

    def __init__(self, frames):
        self.frames = frames


def write_run_folder(files, manifest: dict, out_dir: str | Path, *, sign_key: bytes | None = None,
                     what: str = "run folder", stats: dict | None = None,
                     after_file: Callable[[], None] | None = None) -> Path:
    """Stream ``files`` into the new or empty folder ``out_dir``, then ``manifest`` with its ``outputs``
    filled from the bytes written (and ``manifest.sig`` with a key); all or nothing
    (:class:`fdnet.atomic.StagedFolder`).

    ``files`` yields (name, payload) pairs, made one at a time: ``payload`` is the file's bytes, its bytes
    in :class:`Pieces`, or a DataFrame (or :class:`TableFrames`), which is written as CSV piece by piece (:func:`fdnet.tables.csv_chunks`: the same bytes as
    :func:`~fdnet.tables.csv_bytes`, never the whole text in memory). ``stats``, when given, is filled
    with each file's :func:`file_stats` as it is written (the report's inventory reads it). ``after_file``,
    when given, is called after each file is written (:meth:`fdnet.run.Run.write` hands freed memory back).
    """
    from .atomic import StagedFolder
    from .tables import NeedsQuoting, csv_frames
    out_dir = Path(out_dir)
    check_run_dir(out_dir)
    outputs: dict[str, dict] = {}
    stats = {} if stats is None else stats
    with StagedFolder(out_dir, what=what) as st:
        for name, payload in files:
            if isinstance(payload, (pd.DataFrame, TableFrames)):
                frames = payload.frames if isinstance(payload, TableFrames) else (lambda p=payload: [p])
                try:
                    meta = st.write_iter(name, csv_frames(frames()))
                except NeedsQuoting:
                    meta = st.write_iter(name, csv_frames(frames(), quoting="needed"))
                except ValueError:   # a column of mixed types: one piece of text, as csv_bytes writes it
                    meta = st.write_iter(name, [csv_bytes(pd.concat(list(frames()), ignore_index=True))])
                del frames
                stats[name] = _streamed_stats(name, meta)
                outputs[name] = {"sha256": meta["sha256"], "bytes": meta["bytes"]}
            elif isinstance(payload, Pieces):
                meta = st.write_iter(name, payload.pieces)
                stats[name] = _streamed_stats(name, meta)
                outputs[name] = {"sha256": meta["sha256"], "bytes": meta["bytes"]}
            else:
                outputs[name] = st.write(name, payload)
                stats[name] = file_stats(name, payload)
            del payload
            if after_file is not None:
                after_file()
        manifest["outputs"] = dict(sorted(outputs.items()))
        mb = manifest_bytes(manifest)
        st.write(MANIFEST_FILE, mb)
        if sign_key is not None:
            st.write(SIGNATURE_FILE, sign_manifest(mb, sign_key))
    return st.out_dir


# ---------------------------------------------------------------------------- reading a run folder

class _LazyTables(Mapping):
    """``RunFolder.tables``: table key (``"scores"``, ``"call_in"``, ...) -> DataFrame, parsed on first use."""

    def __init__(self, rf: "RunFolder"):
        self._rf = rf

    def __getitem__(self, key):
        df = self._rf.table(key)
        if df is None:
            raise KeyError(key)
        return df

    def __iter__(self):
        return iter([spec(n).key for n in self._rf.raw if n.endswith(".csv") and n in _BY_NAME])

    def __len__(self):
        return sum(1 for _ in self)


class RunFolder:
    """A finished run folder (or the bytes of one), every file checked against its manifest.

    ``raw`` maps each file name to its checked bytes; :meth:`table` parses a CSV on first use (every cell
    as text, spreadsheet escapes undone) and checks the contract's columns. The report, exports,
    ``fdnet explain``, ``fdnet notify`` and reviews read runs through this one class.
    """

    def __init__(self, path: Path | None, manifest: dict, raw: dict[str, bytes], manifest_sha256: str = ""):
        self.path = Path(path) if path is not None else None
        self.manifest = manifest
        self.raw = raw
        self.manifest_sha256 = manifest_sha256
        self._tables: dict[str, pd.DataFrame | None] = {}
        self.tables = _LazyTables(self)

    @classmethod
    def from_bytes(cls, files: dict[str, bytes], manifest: dict | None) -> "RunFolder":
        """A run held as bytes (verify's re-render of report.html, tests); nothing is checked."""
        return cls(None, manifest or {}, dict(files))

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path) if self.path else '<bytes>'!r}, as_of={self.as_of!r}, files={len(self.raw)})"

    @property
    def as_of(self) -> str:
        return str(self.manifest.get("as_of", ""))

    @property
    def policy(self) -> dict:
        p = self.manifest.get("policy")
        return p if isinstance(p, dict) else {}

    @property
    def policy_sha256(self) -> str:
        """SHA-256 of the effective policy as canonical JSON (:func:`policy_sha256`)."""
        return policy_sha256(self.manifest.get("policy", {}))

    def has(self, name: str) -> bool:
        return name in self.raw

    def table(self, key: str, *, strict: bool = True) -> pd.DataFrame | None:
        """The table ``key`` (``"scores"`` or ``"scores.csv"``) as text columns, None when the run has none.

        With ``strict`` a file that cannot be parsed, or lacks its contract columns, is a UsageError;
        without, such a file is None (the report skips what it cannot read).
        """
        name = key if key.endswith(".csv") else f"{key}.csv"
        ck = (name, strict)
        if ck in self._tables:
            return self._tables[ck]
        b = self.raw.get(name)
        df = None
        if b is not None:
            where = self.path / name if self.path is not None else name
            try:
                df = read_csv_table(b) if b.strip() else pd.DataFrame()
            except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
                if strict:
                    raise UsageError(f"{where} cannot be read as CSV: {exc}") from None
                df = None
            if df is not None and strict and name in _BY_NAME:
                lacking = [c for c in _BY_NAME[name].required_columns if c not in df.columns]
                if lacking:
                    raise UsageError(f"{where} lacks the column(s) {', '.join(lacking)}; was it written by "
                                     "an older fdnet?")
        self._tables[ck] = df
        return df

    def explanations(self, people=None) -> dict[str, dict]:
        """explanations.jsonl as person_id -> object (only ``people`` when given); bad lines are skipped."""
        want = set(people) if people is not None else None
        out: dict[str, dict] = {}
        for line in (self.raw.get(EXPLANATIONS_FILE) or b"").decode("utf-8", "replace").splitlines():
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict) and isinstance(obj.get("person_id"), str) and \
                    (want is None or obj["person_id"] in want):
                out[obj["person_id"]] = obj   # the last line of a person, as a dict built in order keeps it
        return out

    def explanation(self, person_id: str) -> dict | None:
        """The explanations.jsonl object of one listed person, None when not listed."""
        needle = json.dumps(person_id, ensure_ascii=False).encode("utf-8")
        data = self.raw.get(EXPLANATIONS_FILE) or b""
        if needle not in data:
            return None
        return self.explanations([person_id]).get(person_id)

    def file_stats(self) -> dict[str, dict]:
        """name -> size, rows and SHA-256 of every file but the manifest and the report."""
        return {n: file_stats(n, b) for n, b in sorted(self.raw.items())
                if n not in (REPORT_FILE, MANIFEST_FILE)}


def parse_manifest(path: str | Path, data: bytes) -> dict:
    """manifest.json's bytes as a dict, or a :class:`~fdnet.errors.UsageError` naming ``path``."""
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict):
        raise UsageError(f"{path} is not an fdnet manifest (not a JSON object)")
    return manifest


def listed_of(lists) -> dict[str, list[str]]:
    """person_id -> the names of the lists (of :data:`LIST_NAMES`) they are on, in list order."""
    out: dict[str, list[str]] = {}
    for name in LIST_NAMES:
        for pid in lists[name]["person_id"].tolist():
            out.setdefault(pid, []).append(name)
    return out


def open_files(run_dir: str | Path, names, *, action: str = "read") -> RunFolder:
    """Open only the files ``names`` of a run folder (a review reads the three lists, not the whole run).

    Each must be in the folder; where the manifest records its SHA-256 the bytes read must match it.
    The manifest must be a JSON object; ``manifest_sha256`` is its SHA-256 as read.
    """
    run_dir = Path(run_dir)
    mpath = run_dir / MANIFEST_FILE
    if not run_dir.is_dir():
        raise UsageError(f"run folder {run_dir} does not exist")
    if not mpath.is_file():
        raise UsageError(f"{run_dir} has no manifest.json: not an fdnet run folder")
    mbytes = mpath.read_bytes()
    manifest = parse_manifest(mpath, mbytes)
    outputs = manifest.get("outputs") if isinstance(manifest.get("outputs"), dict) else {}
    data: dict[str, bytes] = {}
    for name in names:
        p = run_dir / name
        if not p.is_file():
            raise UsageError(f"{run_dir} has no {name}; is it a complete fdnet run folder?")
        b = p.read_bytes()
        recorded = (outputs.get(name) or {}).get("sha256") if isinstance(outputs.get(name), dict) else None
        if recorded and recorded != sha256_bytes(b):
            raise UsageError(f"{p} differs from the SHA-256 in its manifest (edited after the run); fdnet will not "
                             f"{action} it; run `fdnet verify {run_dir}`")
        data[name] = b
    return RunFolder(run_dir, manifest, data, sha256_bytes(mbytes))


def open_run(run_dir: str | Path, *, require: tuple[str, ...] = REQUIRED_TABLES,
             action: str = "read", keep: tuple[str, ...] | None = None) -> RunFolder:
    """Open a finished run folder, checked against its manifest once.

    Every file the manifest lists is read once and its SHA-256 checked from the very bytes kept; a
    missing, altered or added file (``manifest.sig`` is the one the manifest cannot list), or a table
    of ``require`` absent from the manifest, is a :class:`~fdnet.errors.UsageError` naming each
    problem. ``action`` says in that message what fdnet refuses to do (``export``, ``explain``...).
    With ``keep``, every file is still checked (the others hashed as they are streamed from disk) but
    only the files of ``keep`` and ``require`` are held in ``raw`` (``--previous`` reads a few tables
    of an earlier run, not its edges).

    >>> open_run("/nonexistent")
    Traceback (most recent call last):
    ...
    fdnet.errors.UsageError: /nonexistent is not a run folder (no such folder)
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir} is not a run folder (no such folder)")
    from .atomic import is_plain_name, is_staging_folder
    if is_staging_folder(run_dir):
        raise UsageError(f"{run_dir} is the staging folder of an interrupted write, not a run folder")
    mpath = run_dir / MANIFEST_FILE
    if not mpath.is_file():
        raise UsageError(f"{run_dir} has no manifest.json: not an fdnet run folder")
    mbytes = mpath.read_bytes()
    try:
        manifest = json.loads(mbytes.decode("utf-8"))
        outputs = manifest["outputs"]
        if not isinstance(outputs, dict):
            raise TypeError("outputs is not a mapping")
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{mpath} is not a valid fdnet manifest ({exc}); fdnet reads only sealed run folders") \
            from None
    problems = []
    data: dict[str, bytes] = {}
    for name, meta in sorted(outputs.items()):
        p = run_dir / name
        if not is_plain_name(name):
            problems.append(f"{name!r} is not a plain file name (a manifest names files inside the run folder)")
            continue
        if p.is_symlink():
            problems.append(f"{name} is a symbolic link (a run folder holds its own files)")
            continue
        if not p.is_file():
            problems.append(f"{name} is missing")
            continue
        if keep is not None and name not in keep and name not in require:
            if not isinstance(meta, dict) or sha256_path(p) != meta.get("sha256"):
                problems.append(f"{name} differs from the manifest's SHA-256")
            continue
        b = p.read_bytes()
        if not isinstance(meta, dict) or sha256_bytes(b) != meta.get("sha256"):
            problems.append(f"{name} differs from the manifest's SHA-256")
            continue
        data[name] = b
    extra = sorted(p.name for p in run_dir.iterdir()
                   if p.name not in (MANIFEST_FILE, SIGNATURE_FILE) and p.name not in outputs)
    problems += [f"{name} is not part of the run" for name in extra]
    problems += [f"{name} is not in the manifest" for name in require if name not in outputs]
    if problems:
        raise UsageError(f"{run_dir} does not match its manifest ({'; '.join(problems)}): the run folder was "
                         f"altered (edited after the run), so fdnet will not {action} it. Check it with `fdnet verify "
                         f"{run_dir}` and use an unaltered run.")
    rf = RunFolder(run_dir, manifest, data, sha256_bytes(mbytes))
    for name in require:
        rf.table(name)   # the contract's columns, checked up front
    return rf


def rows_of(rf_or_run, name: str) -> int:
    """Rows of a table of a :class:`RunFolder` or :class:`~fdnet.run.Run` (0 when absent)."""
    df = rf_or_run.table(name)
    return 0 if df is None else int(len(df))


ProgressFn = Callable[[str], None]
