"""Workspace accounts and sessions, kept in the audit log's database beside the log.

Who may sign in to ``fdnet serve``, in which role, and who is signed in now. Three small tables
(``fdnet_users``, ``fdnet_sessions``, ``fdnet_signin_failures`` and ``fdnet_signin_locks``) live in
the same database as the audit log (SQLite or PostgreSQL, :class:`fdnet.audit.log.AuditLog`). They
are working state, not evidence, so they are not part of the hash chain; every change to them is
also an entry of the chain (``user``, ``signin``, ``signin_failed``, ``signout``), which is the
record an auditor relies on.

- Passwords are hashed with argon2id (argon2-cffi's ``PasswordHasher`` defaults) and re-hashed at
  sign-in when those defaults have grown. Rules: at least 12 characters, not the user name.
- User names: 1-64 characters of ``A-Z a-z 0-9 . _ @ -``.
- A session is a random 256-bit ID (the cookie value); only its SHA-256 is stored, so a copy of
  the database does not let anyone take over a session. Each session also carries a random CSRF
  token. It ends when it has been idle for ``idle_minutes``, when it is ``max_hours`` old, when the
  user is disabled or their password changed, or at sign-out.
- Failed sign-ins are logged and slowed: they are counted per typed user name and per client
  address over 15 minutes; from the 5th on, every attempt waits ``min(2 ** (n - 5), 30)`` seconds
  before it is answered, and at 20 the name is locked for 15 minutes (answered as a failure,
  logged with reason ``locked``). A success clears the name's count. A name that does not exist
  is checked against a dummy hash, so it takes as long as a wrong password.

>>> import tempfile, os
>>> from argon2 import PasswordHasher
>>> from fdnet.audit.log import AuditLog
>>> db = os.path.join(tempfile.mkdtemp(), "audit.sqlite")
>>> acc = Accounts(AuditLog(db), hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
>>> acc.add("ana", "prosecutor", "correct horse battery", by="admin").role
'prosecutor'
>>> acc.sign_in("ana", "wrong password!", client="127.0.0.1") is None
True
>>> s = acc.sign_in("ana", "correct horse battery", client="127.0.0.1")
>>> acc.session(s.sid).user, acc.session("forged") is None
('ana', True)
>>> acc.sign_out(s.sid); acc.session(s.sid) is None
True
>>> [e.kind for e in acc.log.entries()]
['user', 'signin_failed', 'signin', 'signout']
"""
from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from ..audit.log import ROLES, AuditLog, _typed, resolve_user
from ..errors import UsageError

__all__ = ["ROLES", "User", "Session", "Accounts", "check_name", "check_password"]

NAME_RE = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
PASSWORD_MIN = 12
PASSWORD_MAX = 1024
FAILURE_WINDOW_S = 15 * 60      # failures are counted over this many seconds
SLOW_AFTER = 5                  # from this many failures on, each attempt waits
MAX_DELAY_S = 30
LOCK_AFTER = 20                 # this many failures lock the name
LOCK_S = 15 * 60

USERS_TABLE, SESSIONS_TABLE = "fdnet_users", "fdnet_sessions"
FAILURES_TABLE, LOCKS_TABLE = "fdnet_signin_failures", "fdnet_signin_locks"


def _tables():
    from sqlalchemy import Boolean, Column, Double, Index, Integer, MetaData, String, Table, Text
    md = MetaData()
    users = Table(USERS_TABLE, md,
                  Column("name", String(64), primary_key=True),
                  Column("role", String(16), nullable=False),
                  Column("password_hash", Text, nullable=False),
                  Column("disabled", Boolean, nullable=False),
                  Column("created_at", String(40), nullable=False),
                  Column("updated_at", String(40), nullable=False))
    sessions = Table(SESSIONS_TABLE, md,
                     Column("sid_sha256", String(64), primary_key=True),
                     Column("username", String(64), nullable=False),
                     Column("role", String(16), nullable=False),
                     Column("csrf_token", String(64), nullable=False),
                     Column("created_at", Double, nullable=False),
                     Column("last_seen", Double, nullable=False),
                     Index("fdnet_sessions_user", "username"))
    failures = Table(FAILURES_TABLE, md,
                     Column("id", Integer, primary_key=True, autoincrement=True),
                     Column("username", String(255), nullable=False),
                     Column("client", String(255), nullable=False),
                     Column("at", Double, nullable=False),
                     Index("fdnet_signin_failures_user", "username", "at"),
                     Index("fdnet_signin_failures_client", "client", "at"))
    locks = Table(LOCKS_TABLE, md,
                  Column("username", String(255), primary_key=True),
                  Column("until", Double, nullable=False))
    return md, users, sessions, failures, locks


_MD, _USERS, _SESSIONS, _FAILURES, _LOCKS = _tables()


def check_name(name) -> str:
    """A valid user name, or a UsageError saying what is allowed.

    >>> check_name("ana.ortiz@da")
    'ana.ortiz@da'
    >>> check_name("ana ortiz")
    Traceback (most recent call last):
    ...
    fdnet.errors.UsageError: user name 'ana ortiz' is not allowed: use 1-64 characters of letters, digits and . _ @ -
    """
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise UsageError(f"user name {_typed(name)!r} is not allowed: use 1-64 characters of letters, digits "
                         "and . _ @ -")
    return name


def check_role(role) -> str:
    if role not in ROLES:
        raise UsageError(f"role must be one of {', '.join(ROLES)}, not {_typed(role)!r}")
    return role


def check_password(password, name: str) -> str:
    """A password that meets the rules (never echoed in the message).

    >>> check_password("short", "ana")
    Traceback (most recent call last):
    ...
    fdnet.errors.UsageError: the password is too short: at least 12 characters (a passphrase of three or four words is easy to type and hard to guess)
    >>> check_password("ana.ortiz@da", "ana.ortiz@da")
    Traceback (most recent call last):
    ...
    fdnet.errors.UsageError: the password may not be the user name
    """
    if not isinstance(password, str):
        raise UsageError("the password must be text")
    if len(password) < PASSWORD_MIN:
        raise UsageError(f"the password is too short: at least {PASSWORD_MIN} characters (a passphrase of three "
                         "or four words is easy to type and hard to guess)")
    if len(password) > PASSWORD_MAX:
        raise UsageError(f"the password is longer than {PASSWORD_MAX} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in password):
        raise UsageError("the password contains control characters (a tab, a line break...)")
    if password.strip().casefold() == name.casefold():
        raise UsageError("the password may not be the user name")
    return password


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _sid_hash(sid: str) -> str:
    return hashlib.sha256(sid.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class User:
    """A workspace account (never its password hash)."""

    name: str
    role: str
    disabled: bool
    created_at: str


@dataclass(frozen=True)
class Session:
    """A signed-in session. ``sid`` is the raw ID (the cookie value); the database holds only its SHA-256."""

    sid: str
    user: str
    role: str
    csrf_token: str
    created_at: float
    last_seen: float


class Accounts:
    """Workspace users and sessions in the database of ``log`` (tables created on first use).

    ``clock`` and ``sleep`` are injectable (tests, and a server that wants its own timing);
    ``hasher`` is an ``argon2.PasswordHasher`` (default parameters unless given).
    Safe to use from several processes at once (uvicorn workers): on SQLite every write takes the
    database's write lock (the database is switched to WAL so readers are not blocked); on
    PostgreSQL each change is one short transaction.
    """

    def __init__(self, log: AuditLog, *, idle_minutes: float = 30, max_hours: float = 12,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
                 hasher=None):
        if not idle_minutes > 0 or not max_hours > 0:
            raise UsageError("idle_minutes and max_hours must be positive")
        from argon2 import PasswordHasher
        self.log = log
        self.idle_s = float(idle_minutes) * 60
        self.max_s = float(max_hours) * 3600
        self.clock = clock
        self.sleep = sleep
        self.ph = hasher if hasher is not None else PasswordHasher()
        self._dummy: str | None = None
        self._ready_done = False
        # last_seen is written at most this often per session, so every request is not a write
        self.touch_s = min(5.0, self.idle_s / 10)

    def __repr__(self) -> str:
        return f"Accounts({self.log.display_url!r})"

    # -- plumbing -----------------------------------------------------------------------
    def _ready(self) -> None:
        if self._ready_done:
            return
        from sqlalchemy.exc import SQLAlchemyError
        self.log.ensure()
        if self.log.backend == "sqlite":
            raw = self.log.engine.raw_connection()
            try:
                raw.cursor().execute("PRAGMA journal_mode=WAL")   # readers never wait for a writer
            finally:
                raw.close()
        for attempt in range(3):
            try:
                with self.log.transaction() as conn:
                    _MD.create_all(conn, checkfirst=True)
                break
            except SQLAlchemyError as exc:   # another worker created them at the same moment
                if attempt == 2:
                    raise self.log._db_error(exc, "creating the account tables") from None
                time.sleep(0.05 * (attempt + 1))
        self._ready_done = True

    def _read(self, query):
        from sqlalchemy.exc import SQLAlchemyError
        self._ready()
        try:
            with self.log.engine.connect() as conn:
                return conn.execute(query).all()
        except SQLAlchemyError as exc:
            raise self.log._db_error(exc, "reading accounts") from None

    def _write(self):
        self._ready()
        return self.log.transaction()

    def _hash(self, password: str) -> str:
        return self.ph.hash(password)

    def _dummy_hash(self) -> str:
        if self._dummy is None:
            self._dummy = self.ph.hash(secrets.token_urlsafe(24))
        return self._dummy

    @staticmethod
    def _user(row) -> User:
        return User(row.name, row.role, bool(row.disabled), row.created_at)

    # -- users --------------------------------------------------------------------------
    def users(self) -> list[User]:
        """Every account, sorted by name."""
        from sqlalchemy import select
        return [self._user(r) for r in self._read(select(_USERS).order_by(_USERS.c.name))]

    def get(self, name: str) -> User | None:
        """The account called ``name`` (exact spelling), or None."""
        from sqlalchemy import select
        if not isinstance(name, str) or not NAME_RE.match(name):
            return None
        rows = self._read(select(_USERS).where(_USERS.c.name == name))
        return self._user(rows[0]) if rows else None

    def add(self, name: str, role: str, password: str, *, by: str | None = None) -> User:
        """Create an account; logged as a ``user`` entry (action ``add``) by ``by`` (default: the OS user)."""
        from sqlalchemy import insert, select
        check_name(name)
        check_role(role)
        check_password(password, name)
        who = resolve_user(by)
        digest = self._hash(password)
        now = _iso(self.clock())
        with self._write() as conn:
            if conn.execute(select(_USERS.c.name).where(_USERS.c.name == name)).first() is not None:
                raise UsageError(f"user {name!r} exists already (fdnet users list shows every account)")
            conn.execute(insert(_USERS).values(name=name, role=role, password_hash=digest, disabled=False,
                                               created_at=now, updated_at=now))
        self.log.record_user("add", name, role, by=who)
        return User(name, role, False, now)

    def _change(self, name: str, action: str, values: dict, end_sessions: str | None, by: str | None,
                refuse: Callable[[object], str | None] = lambda row: None) -> User:
        from sqlalchemy import delete, select, update
        check_name(name)
        who = resolve_user(by)
        with self._write() as conn:
            row = conn.execute(select(_USERS).where(_USERS.c.name == name)).first()
            if row is None:
                raise UsageError(f"no user called {name!r} (fdnet users list shows every account)")
            why = refuse(row)
            if why:
                raise UsageError(why)
            conn.execute(update(_USERS).where(_USERS.c.name == name)
                         .values(**values, updated_at=_iso(self.clock())))
            ended = 0
            if end_sessions:
                ended = conn.execute(delete(_SESSIONS).where(_SESSIONS.c.username == name)).rowcount or 0
            row = conn.execute(select(_USERS).where(_USERS.c.name == name)).first()
        self.log.record_user(action, name, row.role, by=who)
        for _ in range(ended):
            self.log.record_signout(name, end_sessions)
        return self._user(row)

    def disable(self, name: str, *, by: str | None = None) -> User:
        """Disable an account: it can no longer sign in, and its open sessions end now."""
        return self._change(name, "disable", {"disabled": True}, "user disabled", by,
                            lambda r: f"user {name!r} is already disabled" if r.disabled else None)

    def enable(self, name: str, *, by: str | None = None) -> User:
        """Enable a disabled account again."""
        return self._change(name, "enable", {"disabled": False}, None, by,
                            lambda r: None if r.disabled else f"user {name!r} is not disabled")

    def set_password(self, name: str, password: str, *, by: str | None = None) -> User:
        """Set a new password; the user's open sessions end (whoever knew the old one is signed out)."""
        check_name(name)
        check_password(password, name)
        return self._change(name, "password", {"password_hash": self._hash(password)}, "password changed", by)

    # -- signing in ---------------------------------------------------------------------
    def _failures(self, typed: str, client: str, now: float) -> tuple[int, int, bool]:
        from sqlalchemy import func, select
        since = now - FAILURE_WINDOW_S
        n_user = self._read(select(func.count()).select_from(_FAILURES)
                            .where(_FAILURES.c.username == typed, _FAILURES.c.at >= since))[0][0]
        n_client = self._read(select(func.count()).select_from(_FAILURES)
                              .where(_FAILURES.c.client == client, _FAILURES.c.at >= since))[0][0]
        lock = self._read(select(_LOCKS.c.until).where(_LOCKS.c.username == typed))
        return int(n_user), int(n_client), bool(lock and lock[0][0] > now)

    def _fail(self, name, typed: str, client: str, raw_client: str, reason: str, now: float) -> None:
        from sqlalchemy import delete, func, insert, select
        with self._write() as conn:
            conn.execute(delete(_FAILURES).where(_FAILURES.c.at < now - 2 * FAILURE_WINDOW_S))
            conn.execute(delete(_LOCKS).where(_LOCKS.c.until < now))
            conn.execute(insert(_FAILURES).values(username=typed, client=client, at=now))
            n = conn.execute(select(func.count()).select_from(_FAILURES)
                             .where(_FAILURES.c.username == typed, _FAILURES.c.at >= now - FAILURE_WINDOW_S)).scalar()
            if n >= LOCK_AFTER:
                conn.execute(delete(_LOCKS).where(_LOCKS.c.username == typed))
                conn.execute(insert(_LOCKS).values(username=typed, until=now + LOCK_S))
        self.log.record_signin_failed("" if name is None else str(name), raw_client, reason)

    def sign_in(self, name: str, password: str, *, client: str) -> Session | None:
        """Check a user name and password; a new :class:`Session`, or None (logged, and slowed after
        repeated failures). The answer never says whether the name exists."""
        from argon2.exceptions import InvalidHashError, VerificationError
        from sqlalchemy import delete, insert, select, update
        self._ready()
        typed = _typed(name)
        raw_client = str(client) if client else "unknown"
        where = _typed(raw_client)     # the key failures are counted under
        n_user, n_client, locked = self._failures(typed, where, self.clock())
        n = max(n_user, n_client)
        if n >= SLOW_AFTER:
            self.sleep(min(2 ** (n - SLOW_AFTER), MAX_DELAY_S))
        now = self.clock()
        if locked:
            self.log.record_signin_failed("" if name is None else str(name), raw_client, "locked")
            return None
        pw = password if isinstance(password, str) else ""
        if len(pw) > PASSWORD_MAX:
            pw = pw[:PASSWORD_MAX] + "\0"   # checked (and refused) in the same time as any other
        row = None
        if isinstance(name, str) and NAME_RE.match(name):
            rows = self._read(select(_USERS).where(_USERS.c.name == name))
            row = rows[0] if rows else None
        ok = False
        try:
            ok = self.ph.verify(row.password_hash if row is not None else self._dummy_hash(), pw)
        except (VerificationError, InvalidHashError):
            ok = False
        if row is None or not ok or row.disabled or not isinstance(password, str) or len(password) > PASSWORD_MAX:
            reason = ("unknown user" if row is None else "wrong password" if not ok else
                      "disabled" if row.disabled else "wrong password")
            self._fail(name, typed, where, raw_client, reason, now)
            return None
        sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self._write() as conn:
            if self.ph.check_needs_rehash(row.password_hash):
                conn.execute(update(_USERS).where(_USERS.c.name == row.name)
                             .values(password_hash=self._hash(password), updated_at=_iso(now)))
            conn.execute(delete(_FAILURES).where(_FAILURES.c.username == typed))
            conn.execute(insert(_SESSIONS).values(sid_sha256=_sid_hash(sid), username=row.name, role=row.role,
                                                  csrf_token=csrf, created_at=now, last_seen=now))
        self.log.record_signin(row.name, row.role, raw_client)
        return Session(sid, row.name, row.role, csrf, now, now)

    # -- sessions -----------------------------------------------------------------------
    def _expiry(self, row, now: float) -> str | None:
        if row.disabled is None or row.disabled:
            return "user disabled"
        if now - row.created_at > self.max_s:
            return "maximum age"
        if now - row.last_seen > self.idle_s:
            return "idle expiry"
        return None

    def _end(self, sid_sha: str, user: str, reason: str) -> bool:
        from sqlalchemy import delete
        with self._write() as conn:
            gone = conn.execute(delete(_SESSIONS).where(_SESSIONS.c.sid_sha256 == sid_sha)).rowcount or 0
        if gone:   # another worker may have ended it at the same moment: log it once
            self.log.record_signout(user, reason)
        return bool(gone)

    def _session_rows(self, where=None):
        from sqlalchemy import select
        q = (select(_SESSIONS, _USERS.c.disabled)
             .select_from(_SESSIONS.outerjoin(_USERS, _USERS.c.name == _SESSIONS.c.username)))
        return self._read(q.where(where) if where is not None else q.order_by(_SESSIONS.c.created_at))

    def session(self, sid: str | None) -> Session | None:
        """The live session with this ID, touching its last_seen; None when unknown, idle-expired,
        too old or its user disabled (an expired one is deleted and logged as a ``signout``)."""
        from sqlalchemy import update
        if not isinstance(sid, str) or not sid or len(sid) > 256:
            return None
        h = _sid_hash(sid)
        rows = self._session_rows(_SESSIONS.c.sid_sha256 == h)
        if not rows:
            return None
        row, now = rows[0], self.clock()
        reason = self._expiry(row, now)
        if reason:
            self._end(h, row.username, reason)
            return None
        seen = row.last_seen
        if now - seen >= self.touch_s:
            with self._write() as conn:
                conn.execute(update(_SESSIONS).where(_SESSIONS.c.sid_sha256 == h, _SESSIONS.c.last_seen < now)
                             .values(last_seen=now))
            seen = now
        return Session(sid, row.username, row.role, row.csrf_token, row.created_at, seen)

    def sign_out(self, sid: str | None, *, reason: str = "signed out") -> None:
        """End a session (nothing happens for an unknown one); logged as a ``signout``."""
        if not isinstance(sid, str) or not sid or len(sid) > 256:
            return
        h = _sid_hash(sid)
        rows = self._session_rows(_SESSIONS.c.sid_sha256 == h)
        if rows:
            self._end(h, rows[0].username, reason)

    def expire_sessions(self) -> int:
        """End every session that has expired (e.g. when the server starts); how many ended."""
        now, n = self.clock(), 0
        for row in self._session_rows():
            reason = self._expiry(row, now)
            if reason and self._end(row.sid_sha256, row.username, reason):
                n += 1
        return n

    def open_sessions(self) -> list[tuple[str, str, float, float]]:
        """``(user, role, created_at, last_seen)`` of every session in the database, oldest first."""
        return [(r.username, r.role, r.created_at, r.last_seen) for r in self._session_rows()]
