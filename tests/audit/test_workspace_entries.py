"""The workspace's audit entries (sign-ins, releases, outreach, accounts), the migration of a 0.5.0 log,
the dissemination log, and accounts on both backends (SQLite and a real PostgreSQL; tests/audit/conftest.py)."""
from __future__ import annotations

import hashlib
import json
from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher

from fdnet.audit import log as L
from fdnet.audit.log import AuditLog
from fdnet.cli import main
from fdnet.errors import UsageError

from pgcluster import db_url, pg_server  # noqa: F401  (fixtures shared by tests/audit)
from test_audit_log import drop_guards, make_run, raw

FAST = dict(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture
def run_dir(tmp_path):
    return make_run(tmp_path / "run")


def _rows(url):
    eng = sa.create_engine(url)
    try:
        with eng.connect() as c:
            return [tuple(r) for r in c.exec_driver_sql("SELECT * FROM fdnet_audit_entries ORDER BY seq").all()]
    finally:
        eng.dispose()


def make_old_log(url, run_dir) -> AuditLog:
    """A log exactly as fdnet 0.5.0 made it: CHECK kind IN ('run', 'review', 'export'), with its guards."""
    md = sa.MetaData()
    cols = [c._copy() for c in L._T.columns]
    sa.Table(L.TABLE, md, *cols, sa.CheckConstraint("kind IN ('run', 'review', 'export')", name="fdnet_audit_kind"),
             sa.Index("fdnet_audit_subject", "subject"))
    eng = sa.create_engine(url)
    with eng.begin() as c:
        md.create_all(c)
        if url.startswith("postgresql"):
            c.execute(sa.text(L._PG_FUNCTION))
        for ddl in (L._PG_GUARDS if url.startswith("postgresql") else L._SQLITE_GUARDS).values():
            c.execute(sa.text(ddl))
    eng.dispose()
    old = AuditLog(url)
    old._schema_ready = True      # as 0.5.0 would: no migration
    old.record_run(run_dir, user="analyst")
    old.record_review(run_dir, "P1", "approve", "checked", reviewer="ana")
    with pytest.raises(UsageError):
        old._append("signin", "", {"role": "analyst", "client": "x"}, "ana")   # the old constraint refuses it
    old.close()
    return old


def test_an_old_log_migrates_keeps_every_row_and_still_verifies(db_url, run_dir):
    make_old_log(db_url, run_dir)
    before = _rows(db_url)
    log = AuditLog(db_url)
    e = log.record_signin("ana", "prosecutor", "127.0.0.1")
    assert e.seq == 3 and _rows(db_url)[:2] == before
    assert log.verify().ok and all(log.guards().values())
    for sql in ("UPDATE fdnet_audit_entries SET username = 'x'", "DELETE FROM fdnet_audit_entries"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            raw(db_url, sql)
    assert AuditLog(db_url).migrate() is False                      # already done; idempotent
    assert main(["audit", "verify", "--audit-db", db_url]) == 0


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_sqlite_migration_keeps_a_dropped_guard_dropped(db_url, run_dir):
    make_old_log(db_url, run_dir)
    raw(db_url, "DROP TRIGGER fdnet_audit_no_delete")
    log = AuditLog(db_url)
    log.record_user("add", "ana", "analyst", by="root")
    assert log.guards() == {"fdnet_audit_no_update": True, "fdnet_audit_no_delete": False}
    rep = log.verify()
    assert rep.ok and any("guard missing" in n for n in rep.notes)


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_postgresql_non_owner_is_told_how_to_migrate(db_url, run_dir, capsys):
    make_old_log(db_url, run_dir)
    db = db_url.split("/")[3].split("?")[0]
    raw(db_url, "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fdnet_owner') THEN "
                "CREATE ROLE fdnet_owner NOLOGIN; CREATE ROLE fdnet_users NOLOGIN; "
                "CREATE ROLE analyst LOGIN IN ROLE fdnet_users; CREATE ROLE reader LOGIN; END IF; END $$",
        "ALTER TABLE fdnet_audit_entries OWNER TO fdnet_owner",
        "GRANT SELECT, INSERT ON fdnet_audit_entries TO fdnet_users",
        f"GRANT CONNECT ON DATABASE {db} TO fdnet_users")
    with pytest.raises(UsageError, match="only the table's owner may do: connect as the owner and run `fdnet audit migrate`"):
        AuditLog(db_url.replace("postgres@", "analyst@")).record_signin("ana", "analyst", "x")
    assert main(["audit", "migrate", "--audit-db", db_url]) == 0
    assert "migrated" in capsys.readouterr().out
    assert AuditLog(db_url.replace("postgres@", "analyst@")).record_signin("ana", "analyst", "x").seq == 3


# ---------------------------------------------------------------------------- the new kinds

def test_sign_in_entries(db_url):
    log = AuditLog(db_url)
    log.record_signin("ana", "supervisor", "10.0.0.1")
    log.record_signin_failed("adm\x1bin", "10.0.0.2", "wrong password")
    log.record_signout("ana", "idle expiry")
    log.record_user("disable", "bo", "outreach", by="root")
    got = [(e.kind, e.user, e.subject, e.payload) for e in log.entries()]
    assert got == [
        ("signin", "ana", "", {"role": "supervisor", "client": "10.0.0.1"}),
        ("signin_failed", "adm\\x1bin", "", {"username": "adm\\x1bin", "client": "10.0.0.2",
                                            "reason": "wrong password"}),
        ("signout", "ana", "", {"reason": "idle expiry"}),
        ("user", "root", "", {"action": "disable", "name": "bo", "role": "outreach"})]
    assert log.record_signout("ana").payload == {"reason": "signed out"}
    for bad in (lambda: log.record_signin("an\x07a", "analyst", "x"), lambda: log.record_signin("ana", "chief", "x"),
                lambda: log.record_user("delete", "bo", "analyst", by="root"),
                lambda: log.record_signout("", "signed out")):
        with pytest.raises(UsageError):
            bad()
    assert [e.kind for e in log.entries(kind="signin")] == ["signin"]
    assert log.verify().ok


def test_release_is_the_dissemination_log(db_url, run_dir):
    log = AuditLog(db_url)
    e = log.record_release("ana", "prosecutor", run_dir, ["P2", "P1", "P2"], "review of a candidate",
                           "GET /runs/run/people/P1", pseudonymised=False)
    assert e.subject == str(run_dir.resolve())
    assert e.payload == {"role": "prosecutor", "person_ids": ["P1", "P2"], "people": 2,
                         "purpose": "review of a candidate", "what": "GET /runs/run/people/P1",
                         "pseudonymised": False, "run_dir": str(run_dir.resolve()), "run_id": "run"}
    f = log.record_release("aud", "auditor", None, ["P9"], "audit", "GET /api/audit", pseudonymised=True)
    assert f.subject == "" and "run_id" not in f.payload
    assert [x.seq for x in log.disseminations()] == [e.seq, f.seq]
    for args in ((run_dir, [], "p", "w"), (run_dir, "P1", "p", "w"), (run_dir, ["P\x1b"], "p", "w"),
                 (run_dir.parent / "missing", ["P1"], "p", "w"), (run_dir, ["P1"], "", "w")):
        with pytest.raises(UsageError):
            log.record_release("ana", "prosecutor", args[0], args[1], args[2], args[3], pseudonymised=False)


def test_outreach_entries_and_interventions(db_url, run_dir):
    log = AuditLog(db_url)
    today = date.today().isoformat()
    e = log.record_outreach(run_dir, "V1", "outreach_attempted", "2024-07-01", "oli")
    log.record_outreach(run_dir, "P2", "services_accepted", today, "oli", service="job training", notes="met at home")
    assert e.payload == {"run_dir": str(run_dir.resolve()), "run_id": "run", "manifest_sha256": hashlib.sha256(
        (run_dir / "manifest.json").read_bytes()).hexdigest(), "as_of": "2024-06-30", "person_id": "V1",
        "kind": "outreach_attempted", "date": "2024-07-01", "service": "", "notes": "", "role": "outreach",
        "list": "service_referrals", "rank": 1}
    df = log.interventions()
    assert list(df.columns) == ["person_id", "kind", "date", "source", "list", "run_id", "notes", "service"]
    assert df.values.tolist() == [
        ["V1", "outreach_attempted", "2024-07-01", "fdnet-workspace", "service_referrals", "run", "", ""],
        ["P2", "services_accepted", today, "fdnet-workspace", "service_referrals", "run", "met at home",
         "job training"]]
    bad = [(("P1", "outreach_contacted", today), "not on service_referrals.csv"),   # P1: enforcement lists only
           (("V1", "arrested", today), "outreach kind must be one of"),
           (("V1", "outreach_contacted", (date.today() + timedelta(days=1)).isoformat()), "in the future"),
           (("V1", "outreach_contacted", "2021-06-30"), "before the run's window"),
           (("V1", "outreach_contacted", "01/07/2024"), "YYYY-MM-DD"),
           (("V1", "services_accepted", today), "needs the service")]
    for (pid, kind, when), message in bad:
        with pytest.raises(UsageError, match=message):
            log.record_outreach(run_dir, pid, kind, when, "oli")
    assert log.record_outreach(run_dir, "V1", "outreach_contacted", "2021-07-01", "oli").payload["date"] == "2021-07-01"
    assert AuditLog(db_url).interventions().shape == (3, 8)


def test_review_role_and_reason_code(db_url, run_dir):
    log = AuditLog(db_url)
    e = log.record_review(run_dir, "P1", "decline", "moved away", reviewer="sam", list_name="call_in",
                          role="supervisor", reason_code="other")
    assert (e.payload["role"], e.payload["reason_code"]) == ("supervisor", "other")
    assert "role" not in log.record_review(run_dir, "P1", "approve", "ok", reviewer="ana").payload
    with pytest.raises(UsageError, match="not one of the run policy's codes for approve: evidence_confirmed, risk_confirmed"):
        log.record_review(run_dir, "P1", "approve", "ok", reviewer="ana", reason_code="other")
    with pytest.raises(UsageError, match="role must be one of"):
        log.record_review(run_dir, "P1", "approve", "ok", reviewer="ana", role="mayor")
    # the run's own policy decides the codes
    m = json.loads((run_dir / "manifest.json").read_text())
    m["policy"]["review"] = {"reason_codes": {"approve": ["board_minute"], "decline": ["other"], "defer": ["other"]},
                             "approvals": {"call_in": ["supervisor"], "custom_notifications": ["supervisor"]}}
    (run_dir / "manifest.json").write_text(json.dumps(m), encoding="utf-8")
    assert log.record_review(run_dir, "P1", "approve", "ok", reviewer="ana", reason_code="board_minute").seq == 3


# ---------------------------------------------------------------------------- the commands

@pytest.fixture
def busy(db_url, run_dir):
    log = AuditLog(db_url)
    log.record_run(run_dir, user="analyst")
    log.record_signin("ana", "prosecutor", "127.0.0.1")
    log.record_signin_failed("[red]x\x1b[2J", "127.0.0.1", "unknown user")
    log.record_release("ana", "prosecutor", run_dir, ["=HYPERLINK(\"http://x\")", "P1"], "review",
                       "GET /runs/run/lists/custom_notifications", pseudonymised=False)
    log.record_release("aud", "auditor", run_dir, ["P2"], "audit", "GET /api/runs/run/lists/call_in", True)
    log.record_outreach(run_dir, "V1", "services_declined", date.today().isoformat(), "oli")
    log.record_review(run_dir, "P1", "approve", "ok", reviewer="ana", list_name="custom_notifications",
                      role="prosecutor", reason_code="evidence_confirmed")
    log.record_user("add", "oli", "outreach", by="root")
    log.record_signout("ana", "signed out")
    yield log
    log.close()


def test_audit_log_shows_the_new_kinds_readably(busy, db_url, capsys):
    assert main(["audit", "log", "--audit-db", db_url]) == 0
    out = capsys.readouterr().out
    for text in ("signed in as prosecutor from 127.0.0.1", "sign-in refused for", "unknown user",
                 "shown to prosecutor: 2 person(s)", "services_declined with V1", "APPROVE as prosecutor P1",
                 "[evidence_confirmed]", "account add: oli (outreach)", "session ended: signed out"):
        assert text in out, text
    assert "\x1b" not in out
    assert main(["audit", "log", "--db", db_url, "--kind", "release"]) == 0
    assert capsys.readouterr().out.count("shown to") == 2


def test_disseminations_command_table_filters_and_csv(busy, db_url, tmp_path, capsys):
    assert main(["audit", "disseminations", "--audit-db", db_url]) == 0
    out = capsys.readouterr().out
    assert "review" in out and "(shown pseudonymised)" in out and "GET /api/runs/run/lists/call_in" in out
    assert main(["audit", "disseminations", "--audit-db", db_url, "--person", "P2"]) == 0
    out = capsys.readouterr().out
    assert "call_in" in out and "custom_notifications" not in out
    dest = tmp_path / "dissemination.csv"
    assert main(["audit", "disseminations", "--audit-db", db_url, "--out", str(dest)]) == 0
    text = dest.read_text(encoding="utf-8")
    assert text.splitlines()[0] == ",".join(("seq", "when_utc", "user", "role", "run_id", "run_dir", "purpose",
                                             "what", "pseudonymised", "people", "person_ids", "entry_hash"))
    assert "'=HYPERLINK" in text and ",=" not in text and len(text.splitlines()) == 3
    assert main(["audit", "disseminations", "--audit-db", db_url, "--out", str(dest)]) == 2   # never overwrites
    assert "exists" in capsys.readouterr().err


def test_verify_covers_the_new_kinds(busy, db_url):
    assert busy.verify().ok
    drop_guards(db_url)
    raw(db_url, "UPDATE fdnet_audit_entries SET payload = replace(payload, '\"P2\"', '\"P3\"') WHERE kind = 'release'")
    rep = AuditLog(db_url).verify()
    assert [(p.seq, p.problem, p.fields) for p in rep.problems] == [(5, "edited", ("payload",))]


def test_accounts_on_both_backends(db_url):
    from fdnet.workspace.accounts import Accounts
    acc = Accounts(AuditLog(db_url), hasher=PasswordHasher(**FAST), sleep=lambda s: None)
    acc.add("ana", "supervisor", "correct horse battery", by="root")
    assert acc.sign_in("ana", "wrong password!!", client="c") is None
    s = acc.sign_in("ana", "correct horse battery", client="c")
    assert acc.session(s.sid).csrf_token == s.csrf_token
    acc.disable("ana", by="root")
    assert acc.session(s.sid) is None and [u.disabled for u in acc.users()] == [True]
    assert [e.kind for e in acc.log.entries()] == ["user", "signin_failed", "signin", "user", "signout"]
    assert acc.log.verify().ok


def test_a_page_of_the_trail_is_read_from_the_database_not_sliced(tmp_path):
    from fdnet.audit.log import AuditLog
    log = AuditLog(f"sqlite:///{tmp_path / 'a.sqlite'}")
    for i in range(7):
        log.record_signin(f"u{i}", "analyst", "127.0.0.1")
    assert [e.seq for e in log.entries(last=3)] == [5, 6, 7]
    assert [e.seq for e in log.entries(before=5, last=2)] == [3, 4]
    assert [e.seq for e in log.entries(kind="signin", before=3)] == [1, 2]
    assert log.kinds() == ["signin"] and log.head()[0] == 7
