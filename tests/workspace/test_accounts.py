"""Workspace accounts and sessions (fdnet.workspace.accounts) and the `fdnet users` commands, on SQLite.

The same operations on PostgreSQL are in tests/audit/test_workspace_entries.py (which has the
throwaway cluster). A fake clock and a recording ``sleep`` make expiry and throttling exact.
"""
from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher

from fdnet.audit.log import AuditLog
from fdnet.errors import UsageError
from fdnet.workspace.accounts import LOCK_AFTER, ROLES, Accounts, User

FAST = dict(time_cost=1, memory_cost=8, parallelism=1)
PW = "correct horse battery"


class Clock:
    def __init__(self, t=1_750_000_000.0):
        self.t = t

    def __call__(self):
        return self.t


@pytest.fixture
def env(tmp_path):
    clock, slept = Clock(), []
    log = AuditLog(tmp_path / "audit.sqlite")
    acc = Accounts(log, clock=clock, sleep=slept.append, hasher=PasswordHasher(**FAST))
    yield acc, clock, slept
    log.close()


def kinds(acc):
    return [e.kind for e in acc.log.entries()]


# ---------------------------------------------------------------------------- users

def test_add_list_get_and_the_user_entry(env):
    acc, clock, _ = env
    u = acc.add("ana", "prosecutor", PW, by="root")
    assert u == User("ana", "prosecutor", False, u.created_at) and u.created_at.startswith("2025-06-15T")
    acc.add("Bo.S@pd", "supervisor", "another long passphrase", by="root")
    assert [x.name for x in acc.users()] == ["Bo.S@pd", "ana"]            # sorted by name
    assert acc.get("ana") == u and acc.get("nobody") is None and acc.get("bad name") is None
    e = acc.log.entries()[0]
    assert (e.kind, e.user, e.subject, e.payload) == ("user", "root", "", {"action": "add", "name": "ana",
                                                                        "role": "prosecutor"})
    assert ROLES == ("analyst", "prosecutor", "supervisor", "outreach", "auditor", "admin")


@pytest.mark.parametrize("name,role,password,message", [
    ("ana ortiz", "analyst", PW, "not allowed"),
    ("", "analyst", PW, "not allowed"),
    ("a" * 65, "analyst", PW, "not allowed"),
    ("ana\x1b", "analyst", PW, "not allowed"),
    ("ana", "sheriff", PW, "role must be one of analyst, prosecutor"),
    ("ana", "analyst", "short pw", "at least 12 characters"),
    ("ana.ortiz@da", "analyst", "ANA.ORTIZ@DA", "may not be the user name"),
    ("ana", "analyst", "tab\tin the password", "control characters"),
    ("ana", "analyst", "x" * 1025, "longer than 1024"),
])
def test_add_refuses_bad_input_with_a_clear_message(env, name, role, password, message):
    acc, _, _ = env
    with pytest.raises(UsageError, match=message) as ei:
        acc.add(name, role, password)
    assert password not in str(ei.value) or len(password) < 4
    assert acc.log.entries() == []


def test_duplicate_and_unknown_users(env):
    acc, _, _ = env
    acc.add("ana", "analyst", PW)
    with pytest.raises(UsageError, match="exists already"):
        acc.add("ana", "auditor", PW)
    with pytest.raises(UsageError, match="no user called 'zed'"):
        acc.disable("zed")
    acc.disable("ana")
    with pytest.raises(UsageError, match="already disabled"):
        acc.disable("ana")
    assert acc.enable("ana").disabled is False
    with pytest.raises(UsageError, match="is not disabled"):
        acc.enable("ana")
    assert [e.payload["action"] for e in acc.log.entries(kind="user")] == ["add", "disable", "enable"]


def test_passwords_are_argon2id_never_stored_or_logged(env):
    acc, _, _ = env
    acc.add("ana", "analyst", PW)
    acc.sign_in("ana", PW, client="10.0.0.1")
    acc.sign_in("ana", "a wrong password", client="10.0.0.1")
    eng = sa.create_engine(acc.log.url)
    with eng.connect() as c:
        (digest,) = c.exec_driver_sql("SELECT password_hash FROM fdnet_users").one()
        dump = "\n".join(str(r) for t in ("fdnet_users", "fdnet_sessions", "fdnet_signin_failures",
                                          "fdnet_audit_entries")
                         for r in c.exec_driver_sql(f"SELECT * FROM {t}").all())
    eng.dispose()
    assert digest.startswith("$argon2id$") and PasswordHasher(**FAST).verify(digest, PW)
    assert PW not in dump and "a wrong password" not in dump
    # the default hasher is argon2-cffi's defaults
    assert Accounts(acc.log).ph.time_cost == PasswordHasher().time_cost
    assert Accounts(acc.log).ph.memory_cost == PasswordHasher().memory_cost


def test_sign_in_rehashes_when_the_parameters_have_grown(env, tmp_path):
    acc, clock, slept = env
    acc.add("ana", "analyst", PW)
    stronger = Accounts(acc.log, clock=clock, sleep=slept.append,
                        hasher=PasswordHasher(time_cost=2, memory_cost=16, parallelism=1))
    assert stronger.sign_in("ana", PW, client="x") is not None
    eng = sa.create_engine(acc.log.url)
    with eng.connect() as c:
        (digest,) = c.exec_driver_sql("SELECT password_hash FROM fdnet_users").one()
    eng.dispose()
    assert "m=16,t=2,p=1" in digest and not stronger.ph.check_needs_rehash(digest)


def test_set_password_and_disable_end_the_users_sessions(env):
    acc, _, _ = env
    acc.add("ana", "analyst", PW)
    s1, s2 = acc.sign_in("ana", PW, client="a"), acc.sign_in("ana", PW, client="b")
    acc.set_password("ana", "a brand new passphrase", by="admin")
    assert acc.session(s1.sid) is None and acc.session(s2.sid) is None
    assert acc.sign_in("ana", PW, client="a") is None
    s3 = acc.sign_in("ana", "a brand new passphrase", client="a")
    acc.disable("ana", by="admin")
    assert acc.session(s3.sid) is None
    assert acc.sign_in("ana", "a brand new passphrase", client="a") is None
    outs = [(e.user, e.payload["reason"]) for e in acc.log.entries(kind="signout")]
    assert outs == [("ana", "password changed")] * 2 + [("ana", "user disabled")]
    fails = [e.payload["reason"] for e in acc.log.entries(kind="signin_failed")]
    assert fails == ["wrong password", "disabled"]


# ---------------------------------------------------------------------------- failed sign-ins

def test_failures_are_logged_with_the_typed_name_escaped(env):
    acc, _, _ = env
    acc.add("ana", "analyst", PW)
    assert acc.sign_in("nobody", PW, client="10.0.0.9") is None
    assert acc.sign_in("ana", "wrong password..", client="10.0.0.9") is None
    assert acc.sign_in("evil\x1b[2J\u202e\n", PW, client="10.0.0.9\r\n") is None
    assert acc.sign_in(None, None, client="") is None
    got = [(e.user, e.payload) for e in acc.log.entries(kind="signin_failed")]
    assert got[0] == ("nobody", {"username": "nobody", "client": "10.0.0.9", "reason": "unknown user"})
    assert got[1][1]["reason"] == "wrong password"
    assert got[2][1]["username"] == "evil\\x1b[2J\\u202e\\n" and got[2][1]["client"] == "10.0.0.9\\r\\n"
    assert got[3][0] == "(empty)" and got[3][1]["client"] == "unknown"
    assert acc.log.verify().ok


def test_unknown_names_are_checked_against_a_dummy_hash(env):
    """An unknown name costs one argon2 verification, like a known one: no enumeration by timing."""
    calls = []

    class Counting(PasswordHasher):
        def verify(self, h, p):
            calls.append(h)
            return super().verify(h, p)
    acc = Accounts(env[0].log, hasher=Counting(**FAST), sleep=env[2].append)
    acc.add("ana", "analyst", PW)
    acc.sign_in("nobody", PW, client="c")
    acc.sign_in("ana", "wrong password!!", client="c")
    acc.sign_in("bad name!", PW, client="c")
    assert len(calls) == 3 and calls[0] == calls[2] != calls[1] and calls[0].startswith("$argon2id$")


def test_slowing_after_five_failures_and_locking_after_twenty(env):
    acc, clock, slept = env
    acc.add("ana", "analyst", PW)
    for i in range(LOCK_AFTER):
        assert acc.sign_in("ana", f"wrong password {i}", client=f"10.0.0.{i}") is None
        clock.t += 1
    assert slept == [min(2 ** (n - 5), 30) for n in range(5, 20)]           # 1, 2, 4, ... 30
    slept.clear()
    assert acc.sign_in("ana", PW, client="10.9.9.9") is None                 # locked: even the right password
    assert slept == [30]
    assert acc.log.entries(kind="signin_failed")[-1].payload["reason"] == "locked"
    assert acc.log.entries(kind="signin") == []
    clock.t += 15 * 60 + 1                                                   # the lock lapses
    slept.clear()
    s = acc.sign_in("ana", PW, client="10.9.9.9")
    assert s is not None and slept == []
    # the success reset the name's count
    for i in range(5):
        acc.sign_in("ana", "wrong again....", client=f"10.1.0.{i}")
    assert slept == []


def test_failures_are_counted_per_client_too(env):
    acc, clock, slept = env
    for i in range(7):
        acc.sign_in(f"guess{i}", "some password..", client="203.0.113.7")
    assert slept == [1, 2]
    slept.clear()
    acc.sign_in("guess0", "some password..", client="198.51.100.1")        # another client, fresh name count
    assert slept == []
    clock.t += 15 * 60 + 1                                                  # outside the window
    acc.sign_in("guess9", "some password..", client="203.0.113.7")
    assert slept == []


def test_a_success_resets_the_count(env):
    acc, _, slept = env
    acc.add("ana", "analyst", PW)
    for i in range(4):
        acc.sign_in("ana", "wrong password!", client=f"c{i}")
    assert acc.sign_in("ana", PW, client="c9") is not None
    for i in range(4):
        acc.sign_in("ana", "wrong password!", client=f"d{i}")
    assert slept == []


# ---------------------------------------------------------------------------- sessions

def test_session_ids_are_random_and_stored_only_as_a_hash(env):
    acc, _, _ = env
    acc.add("ana", "supervisor", PW)
    s = acc.sign_in("ana", PW, client="127.0.0.1")
    t = acc.sign_in("ana", PW, client="127.0.0.1")
    assert s.sid != t.sid and s.csrf_token != t.csrf_token and len(s.sid) >= 43 and len(s.csrf_token) >= 43
    assert (s.user, s.role) == ("ana", "supervisor")
    eng = sa.create_engine(acc.log.url)
    with eng.connect() as c:
        rows = c.exec_driver_sql("SELECT * FROM fdnet_sessions").all()
    eng.dispose()
    assert len(rows) == 2 and all(s.sid not in str(r) for r in rows)
    assert acc.session(s.sid) == s and acc.session(None) is None and acc.session("") is None
    assert acc.session("x" * 5000) is None
    e = acc.log.entries(kind="signin")[0]
    assert (e.user, e.payload) == ("ana", {"role": "supervisor", "client": "127.0.0.1"})


def test_idle_expiry_touching_and_maximum_age(env):
    acc, clock, _ = env
    acc.add("ana", "analyst", PW)
    s = acc.sign_in("ana", PW, client="c")
    for _ in range(30):                      # active every 25 minutes: stays signed in ...
        clock.t += 25 * 60
        if acc.session(s.sid) is None:
            break
    # ... until the 12-hour maximum age (the first request after it: 29 x 25 minutes)
    assert clock.t - s.created_at == 29 * 25 * 60
    assert acc.log.entries(kind="signout")[-1].payload == {"reason": "maximum age"}
    t = acc.sign_in("ana", PW, client="c")
    clock.t += 30 * 60 + 1
    assert acc.session(t.sid) is None and acc.session(t.sid) is None      # deleted, logged once
    outs = acc.log.entries(kind="signout")
    assert [e.payload["reason"] for e in outs] == ["maximum age", "idle expiry"]


def test_sign_out_and_expire_sessions(env):
    acc, clock, _ = env
    acc.add("ana", "analyst", PW)
    acc.add("bo", "outreach", "outreach passphrase")
    s = acc.sign_in("ana", PW, client="c")
    acc.sign_out(s.sid)
    acc.sign_out(s.sid)                      # a second sign-out is nothing
    acc.sign_out("unknown")
    acc.sign_out(None)
    assert acc.session(s.sid) is None
    acc.sign_in("ana", PW, client="c")
    acc.sign_in("bo", "outreach passphrase", client="c")
    clock.t += 31 * 60
    assert len(acc.open_sessions()) == 2 and acc.expire_sessions() == 2 and acc.open_sessions() == []
    assert [e.payload["reason"] for e in acc.log.entries(kind="signout")] == ["signed out", "idle expiry",
                                                                              "idle expiry"]
    assert acc.log.verify().ok


def test_several_processes_sign_in_at_once_and_the_chain_stays_intact(tmp_path):
    url = f"sqlite:///{tmp_path / 'audit.sqlite'}"
    Accounts(AuditLog(url), hasher=PasswordHasher(**FAST)).add("ana", "analyst", PW)
    script = textwrap.dedent(f"""
        import sys
        from argon2 import PasswordHasher
        from fdnet.audit.log import AuditLog
        from fdnet.workspace.accounts import Accounts
        acc = Accounts(AuditLog({url!r}), hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
        for i in range(5):
            s = acc.sign_in("ana", {PW!r}, client="w" + sys.argv[1])
            assert acc.session(s.sid).user == "ana"
            acc.sign_out(s.sid)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, str(i)], stderr=subprocess.PIPE) for i in range(3)]
    for p in procs:
        _, err = p.communicate(timeout=180)
        assert p.returncode == 0, err.decode()
    log = AuditLog(url)
    assert [e.seq for e in log.entries()] == list(range(1, 32))
    assert sorted(kinds_of(log)) == ["signin"] * 15 + ["signout"] * 15 + ["user"]
    assert log.verify().ok
    eng = sa.create_engine(url)
    with eng.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    eng.dispose()


def kinds_of(log):
    return [e.kind for e in log.entries()]


# ---------------------------------------------------------------------------- fdnet users

@pytest.fixture
def cli(monkeypatch, tmp_path):
    """fdnet's CLI with the users commands registered (the lead's fdnet/cli.py line does it for real)."""
    from fdnet import cli as fcli
    from fdnet.workspace.commands import register
    if not any(g.name == "users" for g in fcli.app.registered_groups):
        register(fcli.app)
    monkeypatch.setenv("FDNET_USER", "root-admin")
    db = str(tmp_path / "audit.sqlite")

    def run(*args, stdin=""):
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        return fcli.main(list(args))
    return run, db


def test_cli_users_add_list_disable_enable_password(cli, capsys):
    run, db = cli
    assert run("users", "list", "--audit-db", db) == 0
    assert "no workspace accounts" in capsys.readouterr().out
    assert not (AuditLog(db).exists())                       # listing created nothing
    assert run("users", "add", "ana", "--role", "prosecutor", "--audit-db", db, stdin=PW + "\n") == 0
    assert run("users", "add", "bo", "--role", "outreach", "--db", db, stdin="outreach passphrase\r\n") == 0
    assert "added ana (prosecutor)" in capsys.readouterr().out
    assert run("users", "list", "--audit-db", db, "--json") == 0
    assert json.loads(capsys.readouterr().out) == [
        {"name": "ana", "role": "prosecutor", "disabled": False, "created_at": AuditLog and
         Accounts(AuditLog(db)).get("ana").created_at},
        {"name": "bo", "role": "outreach", "disabled": False, "created_at": Accounts(AuditLog(db)).get("bo").created_at}]
    assert run("users", "disable", "bo", "--audit-db", db) == 0
    assert run("users", "list", "--audit-db", db) == 0
    out = capsys.readouterr().out
    assert "bo" in out and "disabled" in out and "ana" in out
    assert run("users", "enable", "bo", "--audit-db", db) == 0
    assert run("users", "password", "bo", "--audit-db", db, stdin="a new outreach phrase\n") == 0
    acc = Accounts(AuditLog(db))
    assert acc.sign_in("bo", "a new outreach phrase", client="t") is not None
    assert acc.sign_in("bo", "outreach passphrase", client="t") is None
    users = [(e.user, e.payload["action"], e.payload["name"]) for e in acc.log.entries(kind="user")]
    assert users == [("root-admin", "add", "ana"), ("root-admin", "add", "bo"), ("root-admin", "disable", "bo"),
                     ("root-admin", "enable", "bo"), ("root-admin", "password", "bo")]


@pytest.mark.parametrize("args,stdin,message", [
    (("users", "add", "ana", "--role", "mayor"), PW + "\n", "role must be one of"),
    (("users", "add", "ana smith", "--role", "analyst"), PW + "\n", "is not allowed"),
    (("users", "add", "ana", "--role", "analyst"), "", "no password on standard input"),
    (("users", "add", "ana", "--role", "analyst"), "short\n", "at least 12 characters"),
    (("users", "disable", "zed"), "", "no user called 'zed'"),
    (("users", "password", "zed"), PW + "\n", "no user called 'zed'"),
])
def test_cli_users_bad_input_exits_2_with_one_message(cli, capsys, args, stdin, message):
    run, db = cli
    assert run(*args, "--audit-db", db, stdin=stdin) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and PW not in err


def test_cli_password_is_never_an_argument_and_a_terminal_is_asked_twice(cli, monkeypatch, capsys):
    run, db = cli
    assert run("users", "add", "ana", "--role", "analyst", PW, "--audit-db", db) == 2   # extra argument refused
    from fdnet.workspace.commands import read_password

    class Tty(io.StringIO):
        def isatty(self):
            return True
    answers = iter([PW, PW, PW, "something else"])
    assert read_password("ana", stream=Tty(), prompt=lambda _: next(answers)) == PW
    with pytest.raises(UsageError, match="differ"):
        read_password("ana", stream=Tty(), prompt=lambda _: next(answers))
