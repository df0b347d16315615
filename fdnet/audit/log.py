"""fdnet's audit log: an append-only, hash-chained record of runs, list reviews and exports.

28 CFR Part 23 asks criminal-intelligence systems for an audit trail; prosecutors and auditors ask
*who ran what, with which policy and data, and who approved which list entry*. This module keeps
that trail in one database table, through SQLAlchemy Core, so it works on SQLite (the default, one
file) and on PostgreSQL (a shared server).

Where the log lives
-------------------
:func:`resolve_url` picks, in this order: an explicit URL or path (``AuditLog(url)``, ``--db``),
the ``FDNET_AUDIT_DB`` environment variable, then ``sqlite:///$XDG_DATA_HOME/fdnet/audit.sqlite``
(``XDG_DATA_HOME`` defaults to ``~/.local/share``). A plain file path becomes a SQLite URL; a
PostgreSQL URL looks like ``postgresql+psycopg://user@host/dbname``. Nothing is logged implicitly:
``fdnet run`` writes an entry only when it is given ``--audit-db`` or ``FDNET_AUDIT_DB`` is set.

How the chain works
-------------------
Every entry has a ``seq`` (1, 2, 3, ...), a ``kind`` (``run``, ``review`` or ``export``), a UTC
time, a ``user``, a ``subject`` (the absolute run folder) and a ``payload`` stored as canonical JSON
(keys sorted, no spaces, UTF-8). Each of those six fields is hashed on its own (SHA-256 of its
canonical JSON), and the entry's hash is SHA-256 over the previous entry's hash followed by the
canonical JSON of those six field hashes::

    entry_hash = sha256(prev_hash + canonical_json({"created_at": h1, "kind": h2, ...}))

The first entry's ``prev_hash`` is 64 zeros. Changing any byte of an entry changes its hash, and
because the next entry recorded the old hash, a forger would have to recompute every later entry
too. The stored per-field hashes let :meth:`AuditLog.verify` name *which* field was edited.

>>> canonical_json({"b": 1, "a": "café"})
'{"a":"café","b":1}'
>>> fh = field_hashes(1, "run", "2025-01-01T00:00:00.000000Z", "ana", "/runs/r1", {"as_of": "2024-12-31"})
>>> sorted(fh) == sorted(HASHED_FIELDS)
True
>>> chain_hash(GENESIS, fh)
'...'
>>> len(chain_hash(GENESIS, fh))
64

The database refuses UPDATE and DELETE (SQLite triggers that ``RAISE(ABORT)``; on PostgreSQL a
trigger function, also for TRUNCATE). Someone with enough rights can drop the triggers; the chain
still shows what they did. What it cannot show on its own: entries cut off the *end* of the log, or
a whole chain recomputed from scratch. Keep the head hash that ``fdnet audit log`` prints somewhere
else (a ticket, an e-mail, a printed memo) and pass it to ``verify(expect_head=...)``.
"""
from __future__ import annotations

import contextlib
import csv
import getpass
import hashlib
import json
import os
import re
import time
import unicodedata
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from ..records.read import sha256_file   # the one streamed file hash
from ..errors import UsageError
from ..runfolder import LIST_NAMES, canonical_json, open_files  # noqa: F401  (canonical_json: the one hashed serialisation)

GENESIS = "0" * 64
KINDS = ("run", "review", "export", "signin", "signin_failed", "signout", "release", "outreach", "user",
         "resolution")
#: an analyst's clerical-review decision on a pair of person records (entity resolution)
RESOLUTION_DECISIONS = ("must_link", "cannot_link")
DECISIONS = ("approve", "decline", "defer")
# The workspace's roles (CONTRACT.md §4); fdnet.workspace.accounts re-exports them.
ROLES = ("analyst", "prosecutor", "supervisor", "outreach", "auditor", "admin")
# Outreach outcomes recorded in the workspace. The last three are CONTRACT.md §1 intervention kinds;
# "outreach_attempted" is a documented local kind (tried, not reached).
OUTREACH_KINDS = ("outreach_attempted", "outreach_contacted", "services_accepted", "services_declined")
USER_ACTIONS = ("add", "disable", "enable", "password")
INTERVENTION_SOURCE = "fdnet-workspace"
MAX_TYPED = 200          # a typed user name or client address is cut to this many characters
LISTS = LIST_NAMES
HASHED_FIELDS = ("seq", "kind", "created_at", "user", "subject", "payload")
TABLE = "fdnet_audit_entries"
APPEND_ATTEMPTS = 25
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


# ---------------------------------------------------------------------------- hashing

def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def field_hashes(seq: int, kind: str, created_at: str, user: str, subject: str, payload: Any) -> dict[str, str]:
    """SHA-256 of each hashed field's canonical JSON (``payload`` as the parsed object)."""
    values = {"seq": seq, "kind": kind, "created_at": created_at, "user": user, "subject": subject,
              "payload": payload}
    return {k: _sha(canonical_json(v)) for k, v in values.items()}


def chain_hash(prev_hash: str, hashes: dict[str, str]) -> str:
    """An entry's hash: SHA-256 of the previous hash followed by its field hashes (canonical JSON)."""
    return _sha(prev_hash + canonical_json(hashes))



# ---------------------------------------------------------------------------- location and user

def resolve_url(url: str | os.PathLike | None = None) -> str:
    """The database URL: ``url`` > env ``FDNET_AUDIT_DB`` > the per-user default SQLite file.

    A plain file path (no ``://``) becomes an absolute SQLite URL; only SQLite and PostgreSQL are
    accepted, since the append-only guard is written for those two.

    >>> resolve_url("postgresql+psycopg://fdnet@db.example/audit")
    'postgresql+psycopg://fdnet@db.example/audit'
    >>> resolve_url("/srv/fdnet/audit.sqlite")
    'sqlite:////srv/fdnet/audit.sqlite'
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    raw = os.fspath(url) if url is not None else ""
    source = "--db"
    if not str(raw).strip():
        raw, source = os.environ.get("FDNET_AUDIT_DB", ""), "FDNET_AUDIT_DB"
    raw = str(raw).strip()
    if not raw:
        base = os.environ.get("XDG_DATA_HOME", "").strip()
        if not base or not os.path.isabs(base):  # the XDG spec says to ignore relative paths
            base = os.path.join(os.path.expanduser("~"), ".local", "share")
        return f"sqlite:///{Path(base, 'fdnet', 'audit.sqlite').as_posix()}"
    if "://" not in raw:
        return f"sqlite:///{Path(raw).expanduser().resolve().as_posix()}"
    try:
        parsed = make_url(raw)
    except ArgumentError:
        raise UsageError(f"{source}: {raw!r} is neither a file path nor a database URL "
                         "(e.g. postgresql+psycopg://user@host/dbname)") from None
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise UsageError(f"{source}: the audit log supports SQLite and PostgreSQL, not "
                         f"{parsed.get_backend_name()!r} (use a file path or postgresql+psycopg://...)")
    return raw


def display_url(url: str) -> str:
    """The URL with any password masked, for messages."""
    from sqlalchemy.engine import make_url
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - only ever used for display
        return "<unparseable database URL>"


def _no_control(text: str, what: str, *, allow_newlines: bool = False) -> str:
    bad = [c for c in text if unicodedata.category(c) == "Cc" and not (allow_newlines and c in "\n\t")]
    if bad:
        raise UsageError(f"{what} contains control characters ({', '.join(sorted({repr(c) for c in bad}))}); "
                         "the audit log stores plain text only")
    return text


def resolve_user(user: str | None = None) -> str:
    """Who is acting: the argument > env ``FDNET_USER`` > the operating-system login name."""
    for candidate in (user, os.environ.get("FDNET_USER")):
        if candidate is not None and str(candidate).strip():
            return _no_control(str(candidate).strip(), "user name")
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        return f"uid {os.getuid()}" if hasattr(os, "getuid") else "unknown"


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ---------------------------------------------------------------------------- results

@dataclass(frozen=True, eq=True)
class Entry:
    """One audit-log entry as stored (``payload`` parsed from its canonical JSON)."""

    seq: int
    kind: str
    created_at: str
    user: str
    subject: str
    payload: dict
    prev_hash: str
    entry_hash: str

    @property
    def run_dir(self) -> str:
        return self.subject

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Problem:
    """A defect found by :meth:`AuditLog.verify`; ``seq`` names the entry (None: the log as a whole)."""

    seq: int | None
    problem: str  # edited | deleted | reordered | broken | truncated
    detail: str
    fields: tuple[str, ...] = ()

    def __str__(self) -> str:
        where = f"entry {self.seq}" if self.seq is not None else "log"
        return f"{where}: {self.problem}: {self.detail}"


@dataclass
class VerifyReport:
    """What :meth:`AuditLog.verify` found. ``ok`` is True when the chain is intact."""

    url: str
    entries: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS
    anchor: str | None = None
    anchor_seq: int | None = None
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ok"] = self.ok
        d["problems"] = [{**asdict(p), "fields": list(p.fields)} for p in self.problems]
        return d


# ---------------------------------------------------------------------------- schema

_KIND_CHECK = "kind IN (" + ", ".join(f"'{k}'" for k in KINDS) + ")"


def _table():
    from sqlalchemy import CheckConstraint, Column, Index, Integer, MetaData, String, Table, Text

    md = MetaData()
    t = Table(
        TABLE, md,
        Column("seq", Integer, primary_key=True, autoincrement=False),
        Column("kind", String(16), nullable=False),
        Column("created_at", String(40), nullable=False),
        Column("username", Text, nullable=False),
        Column("subject", Text, nullable=False),
        Column("payload", Text, nullable=False),
        Column("field_hashes", Text, nullable=False),
        Column("prev_hash", String(64), nullable=False),
        Column("entry_hash", String(64), nullable=False, unique=True),
        CheckConstraint(_KIND_CHECK, name="fdnet_audit_kind"),
        Index("fdnet_audit_subject", "subject"),
    )
    return md, t


_METADATA, _T = _table()

_SQLITE_GUARDS = {
    "fdnet_audit_no_update": (f"CREATE TRIGGER fdnet_audit_no_update BEFORE UPDATE ON {TABLE} "
                              "BEGIN SELECT RAISE(ABORT, 'fdnet audit log is append-only: UPDATE refused'); END"),
    "fdnet_audit_no_delete": (f"CREATE TRIGGER fdnet_audit_no_delete BEFORE DELETE ON {TABLE} "
                              "BEGIN SELECT RAISE(ABORT, 'fdnet audit log is append-only: DELETE refused'); END"),
}
_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION fdnet_audit_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'fdnet audit log is append-only: % refused on %', TG_OP, TG_TABLE_NAME;
END
$$"""
_PG_GUARDS = {
    "fdnet_audit_no_update_delete": (f"CREATE TRIGGER fdnet_audit_no_update_delete BEFORE UPDATE OR DELETE ON "
                                     f"{TABLE} FOR EACH ROW EXECUTE FUNCTION fdnet_audit_refuse()"),
    "fdnet_audit_no_truncate": (f"CREATE TRIGGER fdnet_audit_no_truncate BEFORE TRUNCATE ON {TABLE} "
                                "FOR EACH STATEMENT EXECUTE FUNCTION fdnet_audit_refuse()"),
}


# ---------------------------------------------------------------------------- the log

def _decided(run_dir, decision, allowed, reason, no_reason: str):
    """What a person's decision on a run is logged with: the run folder, its manifest's bytes and parse,
    the decision (one of ``allowed``, case-folded) and its reason (required: ``no_reason`` says so)."""
    run = _run_folder(run_dir)
    mbytes = (run / "manifest.json").read_bytes()
    manifest = _parse_manifest(run, mbytes)
    d = str(decision or "").strip().lower()
    if d not in allowed:
        raise UsageError(f"decision must be one of {', '.join(allowed)}, not {decision!r}")
    why = str(reason or "").strip()
    if not why:
        raise UsageError(no_reason)
    _no_control(why, "the reason", allow_newlines=True)
    return run, mbytes, manifest, d, why


class AuditLog:
    """The audit log at ``url`` (see :func:`resolve_url`); opened lazily, created on first write.

    Reading never creates anything: listing or verifying a log that does not exist yet finds no
    entries (``exists()`` tells the two apart).
    """

    def __init__(self, url: str | os.PathLike | None = None):
        self.url = resolve_url(url)
        self.display_url = display_url(self.url)
        from sqlalchemy.engine import make_url
        u = make_url(self.url)
        self.backend = u.get_backend_name()
        db = u.database or ""
        self._sqlite_file = (Path(db) if self.backend == "sqlite" and db and db != ":memory:"
                             and not db.startswith("file:") else None)
        self._engine = None
        self._schema_ready = False

    def __repr__(self) -> str:
        return f"AuditLog({self.display_url!r})"

    # -- plumbing ---------------------------------------------------------------------------
    @property
    def engine(self):
        if self._engine is None:
            from sqlalchemy import create_engine, event
            from sqlalchemy.exc import ArgumentError, NoSuchModuleError
            kwargs: dict = {}
            if self.backend == "sqlite":
                kwargs["connect_args"] = {"timeout": 30}
            try:
                eng = create_engine(self.url, **kwargs)
            except (NoSuchModuleError, ImportError, ArgumentError) as exc:
                raise UsageError(f"cannot open the audit log at {self.display_url}: {exc} (PostgreSQL needs "
                                 "the psycopg driver: pip install 'fdnet[postgres]')") from None
            if self.backend == "sqlite":
                @event.listens_for(eng, "connect")
                def _no_implicit_tx(dbapi_conn, _rec):  # we issue BEGIN ourselves
                    dbapi_conn.isolation_level = None

                @event.listens_for(eng, "begin")
                def _begin(conn):
                    # Writers take the write lock up front so reading the head and appending
                    # after it is one atomic step.
                    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("fdnet_write")
                                         else "BEGIN")
            self._engine = eng
        return self._engine

    def close(self) -> None:
        """Release pooled connections (the log stays usable)."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _db_error(self, exc: Exception, doing: str) -> UsageError:
        msg = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        return UsageError(f"audit log at {self.display_url}: {doing} failed: {msg[0] if msg else type(exc).__name__}")

    def exists(self) -> bool:
        """True when the log's table exists (never creates anything)."""
        if self._sqlite_file is not None and not self._sqlite_file.is_file():
            return False
        from sqlalchemy import inspect
        from sqlalchemy.exc import SQLAlchemyError
        try:
            with self.engine.connect() as conn:
                return inspect(conn).has_table(TABLE)
        except SQLAlchemyError as exc:
            raise self._db_error(exc, "opening") from None

    def ensure(self) -> AuditLog:
        """Create the table and its append-only guards if absent, and check the log can be appended to.

        Call it before long work whose result must be logged, so a bad ``--audit-db`` fails early.
        """
        if self._schema_ready:
            return self
        from sqlalchemy import inspect, text
        from sqlalchemy.exc import SQLAlchemyError
        if self._sqlite_file is not None:
            try:
                self._sqlite_file.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise UsageError(f"cannot create the folder for the audit log {self._sqlite_file}: {exc}") from None
            for p in (self._sqlite_file, self._sqlite_file.parent):  # the journal is written beside the file
                if p.exists() and not os.access(p, os.W_OK):
                    raise UsageError(f"audit log at {self.display_url}: {p} is not writable")
        for attempt in range(3):
            try:
                with self._write() as conn:  # on SQLite this also proves the write lock can be taken
                    if not inspect(conn).has_table(TABLE):
                        _METADATA.create_all(conn)
                        if self.backend == "postgresql":
                            conn.execute(text(_PG_FUNCTION))
                        for ddl in (_PG_GUARDS if self.backend == "postgresql" else _SQLITE_GUARDS).values():
                            conn.execute(text(ddl))
                    elif not self._kinds_current(conn):
                        self._migrate_kinds(conn)
                    if self.backend == "postgresql" and not conn.execute(
                            text("SELECT has_table_privilege(:t, 'INSERT')"), {"t": TABLE}).scalar():
                        raise UsageError(f"audit log at {self.display_url}: this database user may not append "
                                         f"to {TABLE} (needs INSERT)")
                break
            except SQLAlchemyError as exc:  # another process may have created it at the same moment
                if attempt == 2:
                    raise self._db_error(exc, "opening the log for writing") from None
                time.sleep(0.05 * (attempt + 1))
        self._schema_ready = True
        return self

    def _kinds_current(self, conn) -> bool:
        """Whether the table's CHECK constraint on ``kind`` admits every kind in KINDS."""
        if self.backend == "postgresql":
            from sqlalchemy import text
            defn = conn.execute(text("SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c WHERE c.conrelid = "
                                     "CAST(:t AS regclass) AND c.conname = 'fdnet_audit_kind'"), {"t": TABLE}).scalar()
        else:
            defn = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
                                        (TABLE,)).scalar()
        return defn is not None and all(f"'{k}'" in defn for k in KINDS)

    def _migrate_kinds(self, conn) -> None:
        """Widen the ``kind`` constraint of a log made by an older fdnet (0.5.0: run, review, export).

        Runs inside :meth:`ensure`'s write transaction, so it happens once and entirely or not at
        all. PostgreSQL: the constraint is dropped and added again (the table's owner must do it).
        SQLite cannot alter a constraint: the table is rebuilt with the rows copied unchanged, in
        seq order, and its triggers and indexes re-created from their stored SQL (a guard that had
        been dropped stays dropped, so ``verify`` still notes it).
        """
        from sqlalchemy import text
        from sqlalchemy.exc import SQLAlchemyError
        if self.backend == "postgresql":
            try:
                conn.execute(text(f"ALTER TABLE {TABLE} DROP CONSTRAINT IF EXISTS fdnet_audit_kind, "
                                  f"ADD CONSTRAINT fdnet_audit_kind CHECK ({_KIND_CHECK})"))
            except SQLAlchemyError as exc:
                msg = str(getattr(exc, "orig", None) or exc).lower()
                if "owner" in msg or "permission" in msg or "privilege" in msg:
                    raise UsageError(
                        f"audit log at {self.display_url} was made by an older fdnet and its entry kinds must be "
                        "widened once (for sign-ins, releases and outreach), which only the table's owner may do: "
                        f"connect as the owner and run `fdnet audit migrate`, or in SQL: ALTER TABLE "
                        f"{TABLE} DROP CONSTRAINT fdnet_audit_kind, ADD CONSTRAINT fdnet_audit_kind CHECK "
                        f"({_KIND_CHECK})") from None
                raise
            return
        q = "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = ? AND type IN ('trigger', 'index') AND sql IS NOT NULL"
        extra = conn.exec_driver_sql(q, (TABLE,)).all()
        before = conn.exec_driver_sql(f"SELECT count(*), coalesce(max(seq), 0) FROM {TABLE}").one()
        for kind, name, _sql in extra:
            conn.exec_driver_sql(f'DROP {kind.upper()} "{name}"')
        old = f"{TABLE}_before_migration"
        conn.exec_driver_sql(f"ALTER TABLE {TABLE} RENAME TO {old}")
        _METADATA.create_all(conn)
        cols = ", ".join(c.name for c in _T.columns)
        conn.exec_driver_sql(f"INSERT INTO {TABLE} ({cols}) SELECT {cols} FROM {old} ORDER BY seq")
        conn.exec_driver_sql(f"DROP TABLE {old}")
        made = set(conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE tbl_name = ?", (TABLE,)).scalars())
        for _kind, name, sql in extra:
            if name not in made:
                conn.exec_driver_sql(sql)
        after = conn.exec_driver_sql(f"SELECT count(*), coalesce(max(seq), 0) FROM {TABLE}").one()
        if tuple(after) != tuple(before):  # cannot happen short of a bug; the transaction is rolled back
            raise UsageError(f"audit log at {self.display_url}: migrating the entry kinds would change the "
                             f"log ({tuple(before)} -> {tuple(after)} entries, head); nothing was changed")

    def migrate(self) -> bool:
        """Bring an existing log's schema up to this fdnet (see :meth:`_migrate_kinds`).

        True when something was changed. Needs the table's owner on PostgreSQL.
        """
        if not self.exists():
            raise UsageError(f"no audit log at {self.display_url}: nothing to migrate")
        with self._write() as conn:
            current = self._kinds_current(conn)
        self._schema_ready = False
        self.ensure()
        return not current

    def transaction(self):
        """A write transaction on the log's database (SQLite: ``BEGIN IMMEDIATE``); commits unless it raises.

        For tables kept beside the log (the workspace's accounts and sessions): one writer at a time
        on SQLite, so a read-then-write inside it is atomic across processes.
        """
        return self._write()

    @contextlib.contextmanager
    def _write(self):
        """A transaction that holds the write lock (SQLite: BEGIN IMMEDIATE); commits unless it raises."""
        with self.engine.connect() as conn:
            conn.execution_options(fdnet_write=True)
            with conn.begin():
                yield conn

    def guards(self) -> dict[str, bool]:
        """The append-only triggers and whether each is present and enabled."""
        names = _PG_GUARDS if self.backend == "postgresql" else _SQLITE_GUARDS
        if not self.exists():
            return {n: False for n in names}
        with self.engine.connect() as conn:
            if self.backend == "postgresql":
                rows = conn.exec_driver_sql(
                    "SELECT tgname FROM pg_trigger WHERE tgrelid = %(t)s::regclass AND NOT tgisinternal "
                    "AND tgenabled <> 'D'", {"t": TABLE}).scalars().all()
            else:
                rows = conn.exec_driver_sql(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?", (TABLE,)).scalars().all()
        return {n: n in set(rows) for n in names}

    # -- appending --------------------------------------------------------------------------
    def _append(self, kind: str, subject: str, payload: dict, user: str | None) -> Entry:
        from sqlalchemy import insert, select
        from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

        if kind not in KINDS:
            raise UsageError(f"unknown audit entry kind {kind!r}; one of {', '.join(KINDS)}")
        who = resolve_user(user)
        payload_text = canonical_json(payload)
        payload = json.loads(payload_text)  # exactly what a reader will parse back
        self.ensure()
        last_exc: Exception | None = None
        locked = 0
        for attempt in range(APPEND_ATTEMPTS):
            try:
                with self._write() as conn:
                    head = conn.execute(select(_T.c.seq, _T.c.entry_hash).order_by(_T.c.seq.desc()).limit(1)).first()
                    seq = head.seq + 1 if head else 1
                    prev = head.entry_hash if head else GENESIS
                    created = _now()
                    fh = field_hashes(seq, kind, created, who, subject, payload)
                    h = chain_hash(prev, fh)
                    conn.execute(insert(_T).values(seq=seq, kind=kind, created_at=created, username=who,
                                                   subject=subject, payload=payload_text,
                                                   field_hashes=canonical_json(fh), prev_hash=prev, entry_hash=h))
                return Entry(seq, kind, created, who, subject, payload, prev, h)
            except (IntegrityError, OperationalError) as exc:
                # another writer took this seq (unique key) or held the lock too long: read the new
                # head and retry (a lock wait already lasted the 30 s timeout, so retry that less)
                last_exc = exc
                if isinstance(exc, OperationalError):
                    locked += 1
                    if "lock" not in str(exc).lower() or locked >= 3:
                        raise self._db_error(exc, "appending") from None
                time.sleep(min(0.01 * (2 ** min(attempt, 6)), 0.5))
            except SQLAlchemyError as exc:
                raise self._db_error(exc, "appending") from None
        raise self._db_error(last_exc, f"appending (busy after {APPEND_ATTEMPTS} attempts)")

    def record_run(self, run_dir: str | os.PathLike, manifest: dict | None = None, user: str | None = None) -> Entry:
        """Log a run: its folder, manifest hash, policy hash, as_of, version, inputs and list sizes.

        ``manifest`` is the dict the run wrote (read from RUN_DIR/manifest.json when omitted); it
        must match that file, whose SHA-256 is what the entry records.
        """
        run = _run_folder(run_dir)
        present = [f"{n}.csv" for n in LISTS if (run / f"{n}.csv").is_file()]
        rf = open_files(run, present, action="record")   # the lists, hash-checked against the manifest
        mbytes = (run / "manifest.json").read_bytes()
        on_disk = _parse_manifest(run, mbytes)
        if manifest is None:
            manifest = on_disk
        elif json.loads(json.dumps(manifest, ensure_ascii=False)) != on_disk:
            raise UsageError(f"the manifest given for {run} differs from {run / 'manifest.json'}; "
                             "record the run after its folder is written")
        policy = manifest.get("policy")
        inputs = {}
        for name, meta in sorted((manifest.get("inputs") or {}).items()):
            if isinstance(meta, dict):
                inputs[name] = {k: meta[k] for k in ("path", "sha256", "rows") if k in meta}
        lists = {}
        for fname in present:
            lists[fname[:-4]] = {"rows": _count_rows(run / fname), "sha256": hashlib.sha256(rf.raw[fname]).hexdigest()}
        payload = {
            "run_dir": str(run),
            "manifest_sha256": hashlib.sha256(mbytes).hexdigest(),
            "policy_sha256": _sha(canonical_json(policy)) if policy is not None else None,
            "as_of": manifest.get("as_of"),
            "fdnet_version": manifest.get("fdnet_version"),
            "data_dir": manifest.get("data_dir"),
            "inputs": inputs,
            "lists": lists,
        }
        return self._append("run", str(run), payload, user)

    def record_review(self, run_dir: str | os.PathLike, person_id: str, decision: str, reason: str,
                      reviewer: str | None = None, list_name: str | None = None, *, role: str | None = None,
                      reason_code: str | None = None) -> Entry:
        """Log a reviewer's decision (approve, decline or defer, with a reason) on a listed person.

        The decision covers every list the person is on in that run, or only ``list_name``.
        The run folder's manifest hash and the person's rank on each list are recorded.
        ``role`` (one of ROLES: the workspace role the reviewer acted in) and ``reason_code`` (one of
        the run policy's ``review.reason_codes[decision]``) are recorded when given.
        """
        run, mbytes, manifest, d, why = _decided(
            run_dir, decision, DECISIONS, reason,
            "a review needs a reason (--reason): say why, in words another reviewer or an auditor can follow")
        pid = str(person_id or "")
        if not pid.strip():
            raise UsageError("a review needs a person ID")
        _no_control(pid, "the person ID")
        if role is not None and role not in ROLES:
            raise UsageError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        if reason_code is not None:
            codes = run_review_policy(manifest, run).reason_codes[d]
            if reason_code not in codes:
                raise UsageError(f"reason code {reason_code!r} is not one of the run policy's codes for "
                                 f"{d}: {', '.join(codes)}")
        wanted = LISTS
        if list_name is not None:
            name = str(list_name).strip()
            name = name[:-4] if name.endswith(".csv") else name
            if name not in LISTS:
                raise UsageError(f"the list (--list) must be one of {', '.join(LISTS)}, not {list_name!r}")
            wanted = (name,)
        rf = open_files(run, [f"{n}.csv" for n in LISTS], action="review")   # reviews are refused on altered lists
        found: dict[str, dict] = {}
        hashes: dict[str, str] = {}
        for name in LISTS:
            hashes[name] = hashlib.sha256(rf.raw[f"{name}.csv"]).hexdigest()
            df = rf.table(name, strict=False)   # spreadsheet escapes undone: an ID beginning with '=' matches itself
            hit = df[df["person_id"] == pid] if df is not None and "person_id" in df.columns else None
            if hit is not None and len(hit):
                row = hit.iloc[0]
                found[name] = {"rank": int(row["rank"]), "score": row.get("score", "")}
        if not found:
            raise UsageError(f"{pid!r} is on none of call_in.csv, custom_notifications.csv, "
                             f"service_referrals.csv in {run}; only listed people are reviewed "
                             f"(`fdnet explain {run} {pid}` says why they are not listed)")
        chosen = {k: v for k, v in found.items() if k in wanted}
        if not chosen:
            raise UsageError(f"{pid!r} is not on {wanted[0]}.csv in {run} (on: {', '.join(sorted(found))})")
        payload = {
            "run_dir": str(run),
            "manifest_sha256": hashlib.sha256(mbytes).hexdigest(),
            "as_of": manifest.get("as_of"),
            "person_id": pid,
            "decision": d,
            "reason": why,
            "lists": chosen,
            "list_sha256": {k: hashes[k] for k in chosen},
        }
        if role is not None:
            payload["role"] = role
        if reason_code is not None:
            payload["reason_code"] = reason_code
        return self._append("review", str(run), payload, reviewer)

    def record_export(self, run_dir: str | os.PathLike, export_dir: str | os.PathLike, files: dict[str, str],
                      pseudonymised: bool, user: str | None = None, details: dict | None = None) -> Entry:
        """Log an export of a run: the export folder, each file's SHA-256 and whether IDs were pseudonymised.

        ``files`` maps names relative to ``export_dir`` to their SHA-256; each is checked against the
        file on disk. ``details`` (optional, JSON-serialisable) adds e.g. formats or a key fingerprint.
        """
        run = _run_folder(run_dir)
        mbytes = (run / "manifest.json").read_bytes()
        _parse_manifest(run, mbytes)
        exp = Path(export_dir).expanduser().resolve()
        if not exp.is_dir():
            raise UsageError(f"export folder {exp} does not exist; record an export after writing it")
        if not isinstance(files, dict) or not files:
            raise UsageError("record_export needs the exported files as {name: sha256}")
        clean: dict[str, str] = {}
        for name, digest in sorted(files.items()):
            name, digest = str(name), str(digest).lower()
            if not _HEX64.match(digest):
                raise UsageError(f"export file {name!r}: {digest!r} is not a SHA-256 hex digest")
            p = (exp / name).resolve()
            if not p.is_relative_to(exp) or not p.is_file():
                raise UsageError(f"export file {name!r} is not a file inside {exp}")
            if sha256_file(p) != digest:
                raise UsageError(f"export file {p} does not have the SHA-256 given for it")
            clean[name] = digest
        payload = {
            "run_dir": str(run),
            "manifest_sha256": hashlib.sha256(mbytes).hexdigest(),
            "export_dir": str(exp),
            "files": clean,
            "pseudonymised": bool(pseudonymised),
        }
        if details:
            try:
                payload["details"] = json.loads(canonical_json(details))
            except (TypeError, ValueError) as exc:
                raise UsageError(f"record_export details are not plain JSON data: {exc}") from None
        return self._append("export", str(run), payload, user)

    def record_resolution(self, run_dir: str | os.PathLike, person_a: str, person_b: str, decision: str,
                          reason: str, reviewer: str | None = None, *, role: str | None = None,
                          decisions_file: str = "", match_probability: float | None = None) -> Entry:
        """Log an analyst's clerical-review decision on an uncertain pair of a run's entity resolution:
        ``must_link`` or ``cannot_link``, with a reason, the run's manifest hash and the decisions file the
        workspace wrote it to (applied on the next run)."""
        run, mbytes, manifest, d, why = _decided(
            run_dir, decision, RESOLUTION_DECISIONS, reason,
            "a decision needs a reason: say why, in words another reviewer or an auditor can follow")
        a, b = str(person_a or ""), str(person_b or "")
        for x in (a, b):
            if not x.strip():
                raise UsageError("a decision names two person IDs")
            _no_control(x, "the person ID")
        if a == b:
            raise UsageError("a decision names two different person IDs")
        if role is not None and role not in ROLES:
            raise UsageError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        a, b = min(a, b), max(a, b)
        payload = {"run_dir": str(run), "manifest_sha256": hashlib.sha256(mbytes).hexdigest(),
                   "as_of": manifest.get("as_of"), "person_id_a": a, "person_id_b": b, "decision": d,
                   "reason": why, "decisions_file": str(decisions_file)}
        if match_probability is not None:
            payload["match_probability"] = float(match_probability)
        if role is not None:
            payload["role"] = role
        return self._append("resolution", str(run), payload, reviewer)

    # -- the workspace: sign-ins, releases, outreach, accounts -------------------------------
    def record_signin(self, user: str, role: str, client: str) -> Entry:
        """Log a successful sign-in to the workspace: who, in which role, from which client address."""
        who = _name(user, "user name")
        if role not in ROLES:
            raise UsageError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        return self._append("signin", "", {"role": role, "client": _typed(client)}, who)

    def record_signin_failed(self, username: str, client: str, reason: str) -> Entry:
        """Log a refused sign-in. ``username`` is kept as typed, control characters escaped and cut
        to 200 characters (the password is never recorded); the entry's user is that text too.

        >>> _typed("ana\\x1b[2J")
        'ana\\\\x1b[2J'
        """
        typed = _typed(username)
        why = _name(reason, "the reason")
        return self._append("signin_failed", "", {"username": typed, "client": _typed(client), "reason": why},
                            typed or "(empty)")

    def record_signout(self, user: str, reason: str = "signed out") -> Entry:
        """Log the end of a session: ``signed out``, ``idle expiry``, ``maximum age``, ``user disabled``..."""
        return self._append("signout", "", {"reason": _name(reason, "the reason")}, _name(user, "user name"))

    def record_release(self, user: str, role: str, run_dir: str | os.PathLike | None, person_ids: Sequence[str],
                       purpose: str, what: str, pseudonymised: bool) -> Entry:
        """Log a release of person-level data (the dissemination log of 28 CFR 23.20): who was shown
        which people's data, from which run, in what (``what``, e.g. ``GET /runs/r1/people/123``)
        and for what purpose. ``person_ids`` are the real IDs whose data was shown (sorted,
        deduplicated), also when they were shown pseudonymised.
        """
        who = _name(user, "user name")
        if role not in ROLES:
            raise UsageError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        if isinstance(person_ids, str):
            raise UsageError("record_release needs a sequence of person IDs, not one string")
        ids = sorted({_no_control(str(p), "a person ID") for p in person_ids})
        if not ids:
            raise UsageError("record_release needs the person IDs whose data was shown")
        payload = {"role": role, "person_ids": ids, "people": len(ids), "purpose": _name(purpose, "the purpose"),
                   "what": _name(what, "what was released"), "pseudonymised": bool(pseudonymised)}
        subject = ""
        if run_dir is not None:
            run = Path(run_dir).expanduser().resolve()
            if not run.is_dir():
                raise UsageError(f"run folder {run} does not exist")
            subject = str(run)
            payload["run_dir"], payload["run_id"] = subject, run.name
        return self._append("release", subject, payload, who)

    def record_outreach(self, run_dir: str | os.PathLike, person_id: str, kind: str, date: str, user: str, *,
                        service: str = "", notes: str = "", role: str = "outreach") -> Entry:
        """Log an outreach attempt or outcome for a person on the run's service_referrals.csv.

        ``kind`` is one of OUTREACH_KINDS; ``date`` (YYYY-MM-DD) is when it happened: not in the
        future and not before the run's as_of minus its window. ``services_accepted`` names the
        ``service``. These entries are what :meth:`interventions` returns for ``fdnet evaluate``.
        """
        run = _run_folder(run_dir)
        mbytes = (run / "manifest.json").read_bytes()
        manifest = _parse_manifest(run, mbytes)
        if kind not in OUTREACH_KINDS:
            raise UsageError(f"outreach kind must be one of {', '.join(OUTREACH_KINDS)}, not {kind!r}")
        if role not in ROLES:
            raise UsageError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        who = _name(user, "user name")
        pid = str(person_id or "")
        if not pid.strip():
            raise UsageError("an outreach record needs a person ID")
        _no_control(pid, "the person ID")
        when = _outreach_date(date, manifest)
        service = str(service or "").strip()
        _no_control(service, "the service")
        if len(service) > 200:
            raise UsageError("the service is longer than 200 characters: name it, details go in the notes")
        if kind == "services_accepted" and not service:
            raise UsageError("services_accepted needs the service that was accepted (e.g. 'job training')")
        notes = str(notes or "").strip()
        _no_control(notes, "the notes", allow_newlines=True)
        if len(notes) > 4000:
            raise UsageError("the notes are longer than 4000 characters")
        rf = open_files(run, ["service_referrals.csv"], action="record outreach")
        df = rf.table("service_referrals", strict=False)
        hit = df[df["person_id"] == pid] if df is not None and "person_id" in df.columns else None
        if hit is None or not len(hit):
            raise UsageError(f"{pid!r} is not on service_referrals.csv in {run}; outreach is recorded only for "
                             "people referred to services")
        payload = {"run_dir": str(run), "run_id": run.name, "manifest_sha256": hashlib.sha256(mbytes).hexdigest(),
                   "as_of": manifest.get("as_of"), "person_id": pid, "kind": kind, "date": when,
                   "service": service, "notes": notes, "role": role, "list": "service_referrals",
                   "rank": int(hit.iloc[0]["rank"])}
        return self._append("outreach", str(run), payload, who)

    def record_user(self, action: str, name: str, role: str, by: str) -> Entry:
        """Log a change to a workspace account (``add``, ``disable``, ``enable``, ``password``) made by ``by``."""
        if action not in USER_ACTIONS:
            raise UsageError(f"account action must be one of {', '.join(USER_ACTIONS)}, not {action!r}")
        if role not in ROLES:
            raise UsageError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        return self._append("user", "", {"action": action, "name": _name(name, "user name"), "role": role},
                            _name(by, "user name"))

    def interventions(self) -> Any:
        """The outreach entries as CONTRACT.md §1 interventions, one row per entry in seq order.

        Columns person_id, kind, date, source (``fdnet-workspace``), list (``service_referrals``),
        run_id (the run folder's name), notes, and service (an extra column, kept and ignored by
        readers of the interventions format). What ``fdnet evaluate`` reads from the workspace.
        """
        import pandas as pd
        cols = ["person_id", "kind", "date", "source", "list", "run_id", "notes", "service"]
        rows = [[str(p.get("person_id", "")), str(p.get("kind", "")), str(p.get("date", "")), INTERVENTION_SOURCE,
                 str(p.get("list", "service_referrals")), str(p.get("run_id") or Path(e.subject).name),
                 str(p.get("notes", "")), str(p.get("service", ""))]
                for e in self.entries(kind="outreach") for p in [e.payload] if "unreadable_payload" not in p]
        return pd.DataFrame(rows, columns=cols, dtype=object)

    def disseminations(self) -> list[Entry]:
        """Every release of person-level data (kind ``release``), oldest first."""
        return self.entries(kind="release")

    # -- reading ----------------------------------------------------------------------------
    def _rows(self, kind: str | None = None, subject: str | None = None, *, before: int | None = None,
              last: int | None = None) -> list:
        if not self.exists():
            return []
        from sqlalchemy import select
        from sqlalchemy.exc import SQLAlchemyError
        q = select(_T)
        if kind is not None:
            q = q.where(_T.c.kind == kind)
        if subject is not None:
            q = q.where(_T.c.subject == subject)
        if before is not None:
            q = q.where(_T.c.seq < int(before))
        # the last N in the database (a page of the trail), not the whole table read and sliced
        q = q.order_by(_T.c.seq.desc()).limit(int(last)) if last is not None else q.order_by(_T.c.seq)
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(q).all()
        except SQLAlchemyError as exc:
            raise self._db_error(exc, "reading") from None
        return rows[::-1] if last is not None else rows

    def kinds(self) -> list[str]:
        """The kinds of entry the log holds, sorted."""
        if not self.exists():
            return []
        from sqlalchemy import select
        from sqlalchemy.exc import SQLAlchemyError
        try:
            with self.engine.connect() as conn:
                return sorted(r[0] for r in conn.execute(select(_T.c.kind).distinct()))
        except SQLAlchemyError as exc:
            raise self._db_error(exc, "reading") from None

    def entries(self, kind: str | None = None, run_dir: str | os.PathLike | None = None, *,
                before: int | None = None, last: int | None = None) -> list[Entry]:
        """Entries in ``seq`` order, optionally only one kind and/or one run folder; with ``before``
        only those of a smaller ``seq``, with ``last`` only the last ``last`` of them."""
        if kind is not None and kind not in KINDS:
            raise UsageError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
        subject = str(Path(run_dir).expanduser().resolve()) if run_dir is not None else None
        out = []
        for r in self._rows(kind, subject, before=before, last=last):
            try:
                payload = json.loads(r.payload)
                if not isinstance(payload, dict):
                    payload = {"unreadable_payload": r.payload}
            except ValueError:
                payload = {"unreadable_payload": r.payload}
            out.append(Entry(r.seq, r.kind, r.created_at, r.username, r.subject, payload, r.prev_hash,
                             r.entry_hash))
        return out

    def head(self) -> tuple[int, str]:
        """``(seq, entry_hash)`` of the last entry; ``(0, GENESIS)`` for an empty log."""
        rows = self._rows(last=1)
        return (rows[-1].seq, rows[-1].entry_hash) if rows else (0, GENESIS)

    def verify(self, expect_head: str | None = None) -> VerifyReport:
        """Recompute the whole chain and name every entry that was edited, deleted or reordered.

        ``expect_head`` is a head hash printed earlier (kept outside the log): it must still be in
        the chain, otherwise entries were cut off the end or the chain was rebuilt.
        """
        anchor = None
        if expect_head is not None:
            anchor = str(expect_head).strip().lower()
            if not _HEX64.match(anchor):
                raise UsageError(f"--expect-head must be a 64-character SHA-256 hex digest, not {expect_head!r}")
        rows = self._rows()
        rep = VerifyReport(url=self.display_url, entries=len(rows), anchor=anchor)
        if rows:
            rep.head_seq, rep.head_hash = rows[-1].seq, rows[-1].entry_hash
        rep.problems = _check_chain(rows)
        if anchor is not None:
            if anchor == GENESIS:
                rep.anchor_seq = 0
            else:
                hit = [r.seq for r in rows if r.entry_hash == anchor]
                if hit:
                    rep.anchor_seq = hit[0]
                else:
                    rep.problems.append(Problem(None, "truncated", (
                        f"the expected head {anchor} is not in the log (now {len(rows)} entries, head seq "
                        f"{rep.head_seq}): entries were removed from the end (tail truncation) or the chain "
                        "was rebuilt")))
        if rows or self.exists():
            missing = [n for n, ok in self.guards().items() if not ok]
            if missing:
                rep.notes.append(f"append-only guard missing or disabled: {', '.join(missing)} — the database "
                                 "no longer refuses UPDATE/DELETE (tampering is still detected by the chain)")
        else:
            rep.notes.append(f"no audit log at {self.display_url} yet")
        if rows and anchor is None:
            rep.notes.append("no expected head given: entries removed from the end of the log cannot be detected")
        return rep

    def reviews(self, run_dir: str | os.PathLike) -> Any:
        """The latest decision per (run manifest, person, list) for a run folder, with history counts.

        Columns: list, rank, person_id, decision, reason, reviewer, decided_at, seq, decisions
        (how many decisions were recorded for that person and list), manifest_sha256, current
        (False when the folder now holds a different run than the one reviewed).
        """
        import pandas as pd
        cols = ["list", "rank", "person_id", "decision", "reason", "reviewer", "decided_at", "seq",
                "decisions", "manifest_sha256", "current"]
        run = Path(run_dir).expanduser().resolve()
        mpath = run / "manifest.json"
        current_sha = sha256_file(mpath) if mpath.is_file() else None
        latest: dict[tuple, dict] = {}
        for e in self.entries(kind="review", run_dir=run):
            p = e.payload
            for name, info in sorted((p.get("lists") or {}).items()):
                key = (p.get("manifest_sha256"), p.get("person_id"), name)
                prev = latest.get(key)
                latest[key] = {"list": name, "rank": (info or {}).get("rank"), "person_id": p.get("person_id"),
                               "decision": p.get("decision"), "reason": p.get("reason"), "reviewer": e.user,
                               "decided_at": e.created_at, "seq": e.seq,
                               "decisions": (prev["decisions"] + 1) if prev else 1,
                               "manifest_sha256": p.get("manifest_sha256"),
                               "current": (p.get("manifest_sha256") == current_sha) if current_sha else None}
        order = {n: i for i, n in enumerate(LISTS)}
        rows = sorted(latest.values(), key=lambda r: (not r["current"], order.get(r["list"], 9),
                                                     r["rank"] if isinstance(r["rank"], int) else 1 << 30,
                                                     str(r["person_id"]), str(r["manifest_sha256"])))
        return pd.DataFrame(rows, columns=cols)


# ---------------------------------------------------------------------------- helpers

def _name(text, what: str) -> str:
    """A short plain-text field (user name, role, reason, purpose): non-empty, no control characters."""
    t = str(text if text is not None else "").strip()
    if not t:
        raise UsageError(f"{what} is empty")
    if len(t) > 1000:
        raise UsageError(f"{what} is longer than 1000 characters")
    return _no_control(t, what)


_ESCAPED = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})   # controls, bidi overrides, line separators


def _typed(text) -> str:
    """Text an unauthenticated client typed (a user name, an address), kept readable and inert:
    control characters and backslashes escaped, cut to MAX_TYPED characters.

    >>> _typed("bob\\n"), _typed("x" * 300)[-3:], len(_typed("x" * 300))
    ('bob\\\\n', '...', 200)
    """
    t = "" if text is None else str(text)
    out = "".join(c.encode("unicode_escape").decode("ascii") if unicodedata.category(c) in _ESCAPED or c == "\\"
                  else c for c in t)
    return out if len(out) <= MAX_TYPED else out[:MAX_TYPED - 3] + "..."


def _outreach_date(value, manifest: dict) -> str:
    from datetime import date, timedelta
    text = str(value or "").strip()
    try:
        d = date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"the outreach date must be a date written YYYY-MM-DD, not {value!r}") from None
    if len(text) != 10:
        raise UsageError(f"the outreach date must be a date written YYYY-MM-DD, not {value!r}")
    if d > date.today():
        raise UsageError(f"the outreach date {text} is in the future")
    policy = manifest.get("policy") if isinstance(manifest.get("policy"), dict) else {}
    window = policy.get("window_days", 1095)
    try:
        start = date.fromisoformat(str(manifest.get("as_of"))[:10]) - timedelta(days=int(window))
    except (TypeError, ValueError):
        start = None
    if start is not None and d < start:
        raise UsageError(f"the outreach date {text} is before the run's window (as of {manifest.get('as_of')} "
                         f"minus {window} days: {start.isoformat()})")
    return d.isoformat()


def run_review_policy(manifest: dict, run: Path | str = "run"):
    """The ``review`` section of a run's effective policy (its defaults for a run made before it existed)."""
    from ..errors import PolicyError
    from ..policy import Review, _format_errors
    from pydantic import ValidationError
    policy = manifest.get("policy") if isinstance(manifest.get("policy"), dict) else {}
    raw = policy.get("review")
    if raw is None:
        return Review()
    try:
        return Review.model_validate(raw)
    except ValidationError as exc:
        raise PolicyError(f"{run}: the manifest's policy.review is invalid: {_format_errors(exc)}") from None


def _run_folder(run_dir: str | os.PathLike) -> Path:
    run = Path(run_dir).expanduser().resolve()
    if not run.is_dir():
        raise UsageError(f"run folder {run} does not exist")
    if not (run / "manifest.json").is_file():
        raise UsageError(f"{run} has no manifest.json: not an fdnet run folder")
    return run


def _parse_manifest(run: Path, data: bytes) -> dict:
    from ..runfolder import parse_manifest   # the one reading of manifest.json
    return parse_manifest(run / "manifest.json", data)


def _count_rows(path: Path) -> int:
    with open(path, encoding="utf-8-sig", newline="") as f:
        return max(sum(1 for _ in csv.reader(f)) - 1, 0)


def _check_chain(rows: list) -> list[Problem]:
    """Every defect in ``rows`` (ordered by seq): see :meth:`AuditLog.verify`."""
    problems: list[Problem] = []
    by_hash = {r.entry_hash: r.seq for r in rows}
    seq_of_hash: dict[str, int] | None = None
    for i, r in enumerate(rows):
        expected_prev = rows[i - 1].entry_hash if i else GENESIS
        expected_seq = rows[i - 1].seq + 1 if i else 1
        edited_fields: list[str] = []
        # 1. does the entry still hash to its recorded hash?
        try:
            payload = json.loads(r.payload)
            payload_ok = True
        except (TypeError, ValueError):
            payload, payload_ok = None, False
        try:
            stored = json.loads(r.field_hashes)
            if not (isinstance(stored, dict) and set(stored) == set(HASHED_FIELDS)):
                stored = None
        except (TypeError, ValueError):
            stored = None
        if not payload_ok:
            edited_fields = ["payload"]
            problems.append(Problem(r.seq, "edited", "the payload is no longer valid JSON", ("payload",)))
        else:
            fh = field_hashes(r.seq, r.kind, r.created_at, r.username, r.subject, payload)
            if chain_hash(r.prev_hash, fh) != r.entry_hash:
                if stored is not None and chain_hash(r.prev_hash, stored) == r.entry_hash:
                    edited_fields = [f for f in HASHED_FIELDS if stored[f] != fh[f]]
                elif stored is not None and chain_hash(expected_prev, stored) == r.entry_hash:
                    edited_fields = ["prev_hash"] + [f for f in HASHED_FIELDS if stored[f] != fh[f]]
                else:
                    edited_fields = ["entry_hash or field_hashes"]
                if edited_fields == ["seq"]:
                    if seq_of_hash is None:
                        top = max(max(x.seq for x in rows), len(rows)) + 2
                        seq_of_hash = {_sha(canonical_json(k)): k for k in range(0, top + 1)}
                    orig = seq_of_hash.get(stored["seq"])
                    if orig is not None:
                        problems.append(Problem(r.seq, "reordered",
                                                f"recorded as entry {orig}, now stored as entry {r.seq}", ("seq",)))
                    else:
                        problems.append(Problem(r.seq, "edited", "changed after recording: seq", ("seq",)))
                else:
                    what = ", ".join(edited_fields)
                    problems.append(Problem(r.seq, "edited", f"changed after recording: {what}"
                                            + (" (the entry no longer matches its own hash)"
                                               if edited_fields == ["entry_hash or field_hashes"] else ""),
                                            tuple(edited_fields)))
            elif r.payload != canonical_json(payload):
                problems.append(Problem(r.seq, "edited", "payload text re-formatted after recording", ("payload",)))
        # 2. is it linked to the entry before it?
        if r.seq > expected_seq:
            gap = (f"entry {expected_seq}" if r.seq - expected_seq == 1
                   else f"entries {expected_seq}–{r.seq - 1}")
            problems.append(Problem(expected_seq, "deleted", f"{gap} missing before entry {r.seq}"
                                    + ("" if r.prev_hash != expected_prev else
                                       " (entry numbers changed; the chain itself is linked)")))
        elif r.prev_hash != expected_prev and "prev_hash" not in edited_fields:
            if r.prev_hash in by_hash and by_hash[r.prev_hash] != r.seq:
                if edited_fields != ["seq"]:  # a renumbered entry is already reported as reordered
                    before = f"entry {rows[i - 1].seq}" if i else "the start of the log"
                    problems.append(Problem(r.seq, "reordered", (
                        f"in the chain it follows the entry now stored as {by_hash[r.prev_hash]}, not {before}")))
            elif i == 0:
                problems.append(Problem(r.seq, "broken", "the first entry does not start from the genesis hash "
                                        "(earlier entries were removed and the rest renumbered, or the log "
                                        "was rebuilt)"))
            else:
                problems.append(Problem(r.seq, "broken", (
                    f"its prev_hash is not the hash of entry {rows[i - 1].seq}: entry {rows[i - 1].seq} was "
                    "rewritten with recomputed hashes, or entries were deleted and the rest renumbered")))
    return problems
