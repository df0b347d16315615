"""The hash-chained audit log (fdnet.audit.log) and its commands, on SQLite and on a real PostgreSQL.

The PostgreSQL backend runs against a throwaway cluster started once per session from the
PostgreSQL 15 binaries (as the ``postgres`` OS user when the tests run as root); where they are
missing, those tests are skipped with a reason saying so.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from fdnet.audit.log import GENESIS, AuditLog, canonical_json, resolve_url, resolve_user
from fdnet.cli import main
from fdnet.errors import UsageError

from pgcluster import db_url, pg_server, pg_url as _pg_url  # noqa: F401  (fixtures shared by tests/audit)


def raw(url: str, *sql: str) -> None:
    """Run SQL straight against the database, as someone bypassing fdnet would."""
    eng = sa.create_engine(url)
    try:
        with eng.begin() as c:
            for s in sql:
                c.exec_driver_sql(s)
    finally:
        eng.dispose()


def drop_guards(url: str) -> None:
    if url.startswith("sqlite"):
        raw(url, "DROP TRIGGER fdnet_audit_no_update", "DROP TRIGGER fdnet_audit_no_delete")
    else:
        raw(url, "DROP TRIGGER fdnet_audit_no_update_delete ON fdnet_audit_entries",
            "DROP TRIGGER fdnet_audit_no_truncate ON fdnet_audit_entries")


# ---------------------------------------------------------------------------- a run folder

LISTS = {
    "call_in.csv": "rank,person_id,group,score,reasons\n1,P1,Eastside,40,\"3 violent incidents\"\n2,P2,Eastside,31,x\n",
    "custom_notifications.csv": "rank,person_id,group,score,reasons\n1,P1,Eastside,40,x\n2,P4,,22,x\n",
    "service_referrals.csv": "rank,person_id,group,score,reasons\n1,V1,,12,shot twice\n2,P2,Eastside,9,x\n",
}
POLICY = {"version": 1, "window_days": 1095, "lists": {"call_in": {"size": 60}}}


def make_run(path: Path) -> Path:
    """A minimal run folder: three lists and a manifest that hashes them."""
    path.mkdir(parents=True)
    outputs = {}
    for name, text in LISTS.items():
        (path / name).write_text(text, encoding="utf-8")
        outputs[name] = {"sha256": hashlib.sha256(text.encode()).hexdigest()}
    manifest = {"fdnet_version": "0.2.0", "as_of": "2024-06-30", "data_dir": "/data/city", "policy": POLICY,
                "inputs": {"incidents": {"path": "/data/city/incidents.csv", "sha256": "a" * 64,
                                         "rows": {"read": 6, "used": 6, "rejected": 0}},
                           "mapping": {"path": "/data/city/mapping.yaml", "sha256": "b" * 64}},
                "outputs": outputs}
    (path / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def run_dir(tmp_path):
    return make_run(tmp_path / "run")


@pytest.fixture
def filled(db_url, run_dir):
    """A log with a run, two reviews and an export (4 entries)."""
    log = AuditLog(db_url)
    log.record_run(run_dir, user="analyst")
    log.record_review(run_dir, "P1", "approve", "checked every incident", reviewer="ana")
    log.record_review(run_dir, "P2", "defer", "waiting for the probation file", reviewer="bo", list_name="call_in")
    exp = run_dir.parent / "export"
    exp.mkdir()
    (exp / "edges.csv").write_text("a,b\n", encoding="utf-8")
    log.record_export(run_dir, exp, {"edges.csv": hashlib.sha256(b"a,b\n").hexdigest()}, pseudonymised=True)
    yield log
    log.close()


def _sha(s: str) -> str:
    return hashlib.sha256(s.encode("utf-8")).hexdigest()


def _canon(o) -> str:
    return json.dumps(o, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# ---------------------------------------------------------------------------- the chain

def test_chain_is_linked_from_genesis_and_recomputable_by_hand(filled):
    entries = filled.entries()
    assert [e.seq for e in entries] == [1, 2, 3, 4]
    assert [e.kind for e in entries] == ["run", "review", "review", "export"]
    prev = GENESIS
    for e in entries:
        # the documented formula, re-implemented independently of fdnet
        fields = {"seq": e.seq, "kind": e.kind, "created_at": e.created_at, "user": e.user,
                  "subject": e.subject, "payload": e.payload}
        expected = _sha(prev + _canon({k: _sha(_canon(v)) for k, v in fields.items()}))
        assert e.prev_hash == prev and e.entry_hash == expected
        assert e.created_at.endswith("Z") and e.created_at[10] == "T"
        prev = e.entry_hash
    rep = filled.verify(expect_head=prev)
    assert rep.ok and rep.entries == 4 and rep.head_seq == 4 and rep.head_hash == prev and rep.anchor_seq == 4
    assert filled.head() == (4, prev)


def test_payload_is_stored_as_canonical_json(filled, db_url):
    eng = sa.create_engine(db_url)
    with eng.connect() as c:
        rows = c.exec_driver_sql("SELECT seq, payload FROM fdnet_audit_entries ORDER BY seq").all()
    eng.dispose()
    for seq, text in rows:
        assert text == canonical_json(json.loads(text))
    assert "é" in canonical_json({"a": "é"})


def test_database_refuses_update_and_delete(filled, db_url):
    before = [e.entry_hash for e in filled.entries()]
    for sql in ("UPDATE fdnet_audit_entries SET username = 'mallory' WHERE seq = 2",
                "DELETE FROM fdnet_audit_entries WHERE seq = 4",
                "DELETE FROM fdnet_audit_entries"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            raw(db_url, sql)
    if db_url.startswith("postgresql"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            raw(db_url, "TRUNCATE fdnet_audit_entries")
    assert [e.entry_hash for e in filled.entries()] == before
    assert all(filled.guards().values())


def test_edit_through_raw_sql_is_caught_and_named(filled, db_url):
    drop_guards(db_url)
    raw(db_url, "UPDATE fdnet_audit_entries SET payload = REPLACE(payload, 'approve', 'decline') WHERE seq = 2",
        "UPDATE fdnet_audit_entries SET username = 'mallory' WHERE seq = 3")
    rep = filled.verify()
    assert not rep.ok
    bad = {(p.seq, p.problem, p.fields) for p in rep.problems}
    assert bad == {(2, "edited", ("payload",)), (3, "edited", ("user",))}
    assert any("guard missing" in n for n in rep.notes)


def test_entry_rewritten_with_recomputed_hashes_breaks_the_next_link(filled, db_url):
    """A forger who knows the formula fixes entry 2's own hashes; entry 3 still remembers the old one."""
    drop_guards(db_url)
    e2 = filled.entries()[1]
    payload = dict(e2.payload, decision="decline")
    fh = {k: _sha(_canon(v)) for k, v in {"seq": 2, "kind": "review", "created_at": e2.created_at,
                                           "user": e2.user, "subject": e2.subject, "payload": payload}.items()}
    h = _sha(e2.prev_hash + _canon(fh))
    raw(db_url, f"UPDATE fdnet_audit_entries SET payload = '{_canon(payload)}', field_hashes = '{_canon(fh)}', "
                f"entry_hash = '{h}' WHERE seq = 2")
    rep = filled.verify()
    assert [(p.seq, p.problem) for p in rep.problems] == [(3, "broken")]
    assert "entry 2 was rewritten" in rep.problems[0].detail


def test_deleted_entry_is_caught(filled, db_url):
    drop_guards(db_url)
    raw(db_url, "DELETE FROM fdnet_audit_entries WHERE seq = 2")
    rep = filled.verify()
    assert [(p.seq, p.problem) for p in rep.problems] == [(2, "deleted")]
    assert "entry 2 missing before entry 3" in rep.problems[0].detail


def test_deleting_the_first_entry_is_caught(filled, db_url):
    drop_guards(db_url)
    raw(db_url, "DELETE FROM fdnet_audit_entries WHERE seq = 1")
    assert [(p.seq, p.problem) for p in filled.verify().problems] == [(1, "deleted")]


def test_reordered_entries_are_caught(filled, db_url):
    drop_guards(db_url)
    raw(db_url, "UPDATE fdnet_audit_entries SET seq = 99 WHERE seq = 2",
        "UPDATE fdnet_audit_entries SET seq = 2 WHERE seq = 3",
        "UPDATE fdnet_audit_entries SET seq = 3 WHERE seq = 99")
    rep = filled.verify()
    assert {(p.seq, p.problem) for p in rep.problems} >= {(2, "reordered"), (3, "reordered")}
    assert {p.seq for p in rep.problems} == {2, 3, 4}  # 4 now follows the wrong entry
    details = " ".join(p.detail for p in rep.problems)
    assert "recorded as entry 3, now stored as entry 2" in details
    assert "recorded as entry 2, now stored as entry 3" in details


def test_tail_truncation_is_caught_only_with_an_anchor(filled, db_url):
    anchor = filled.head()[1]
    drop_guards(db_url)
    raw(db_url, "DELETE FROM fdnet_audit_entries WHERE seq = 4")
    assert filled.verify().ok  # by itself the shortened chain is consistent: documented limit
    rep = filled.verify(expect_head=anchor)
    assert [(p.seq, p.problem) for p in rep.problems] == [(None, "truncated")]
    assert anchor in rep.problems[0].detail


def test_anchor_stays_valid_as_the_log_grows(filled, run_dir):
    seq, anchor = filled.head()
    filled.record_review(run_dir, "V1", "approve", "services only", reviewer="cy")
    rep = filled.verify(expect_head=anchor.upper())
    assert rep.ok and rep.anchor_seq == seq == 4 and rep.head_seq == 5
    with pytest.raises(UsageError, match="64-character"):
        filled.verify(expect_head="abc")


def test_concurrent_appends_get_unique_seqs_and_one_chain(db_url, run_dir):
    AuditLog(db_url).ensure()
    script = textwrap.dedent(f"""
        import sys
        from fdnet.audit.log import AuditLog
        log = AuditLog({db_url!r})
        for i in range(6):
            log.record_run({str(run_dir)!r}, user="w" + sys.argv[1])
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, str(i)], stderr=subprocess.PIPE) for i in range(4)]
    for p in procs:
        _, errout = p.communicate(timeout=120)
        assert p.returncode == 0, errout.decode()
    log = AuditLog(db_url)
    assert [e.seq for e in log.entries()] == list(range(1, 25))
    assert sorted({e.user for e in log.entries()}) == ["w0", "w1", "w2", "w3"]
    assert log.verify().ok


# ---------------------------------------------------------------------------- what is recorded

def test_record_run_payload(db_url, run_dir):
    e = AuditLog(db_url).record_run(run_dir)
    p = e.payload
    m = json.loads((run_dir / "manifest.json").read_text())
    assert e.subject == p["run_dir"] == str(run_dir.resolve())
    assert p["manifest_sha256"] == hashlib.sha256((run_dir / "manifest.json").read_bytes()).hexdigest()
    assert p["policy_sha256"] == _sha(_canon(POLICY))
    assert (p["as_of"], p["fdnet_version"]) == ("2024-06-30", "0.2.0")
    assert p["inputs"]["incidents"] == m["inputs"]["incidents"]
    assert p["inputs"]["mapping"] == {"path": "/data/city/mapping.yaml", "sha256": "b" * 64}
    assert {k: v["rows"] for k, v in p["lists"].items()} == {"call_in": 2, "custom_notifications": 2,
                                                             "service_referrals": 2}


def test_record_run_refuses_a_manifest_that_is_not_the_folders(db_url, run_dir):
    m = json.loads((run_dir / "manifest.json").read_text())
    log = AuditLog(db_url)
    assert log.record_run(run_dir, m).seq == 1
    with pytest.raises(UsageError, match="differs from"):
        log.record_run(run_dir, dict(m, as_of="2030-01-01"))
    (run_dir / "call_in.csv").write_text("rank,person_id\n1,P9\n")
    with pytest.raises(UsageError, match="edited after the run"):
        log.record_run(run_dir)
    with pytest.raises(UsageError, match="no manifest.json"):
        log.record_run(run_dir.parent)
    assert len(log.entries()) == 1


def test_review_records_lists_and_ranks(db_url, run_dir):
    log = AuditLog(db_url)
    e = log.record_review(run_dir, "P1", "  Approve ", "checked", reviewer="ana")
    assert e.user == "ana" and e.payload["decision"] == "approve"
    assert e.payload["lists"] == {"call_in": {"rank": 1, "score": "40"},
                                  "custom_notifications": {"rank": 1, "score": "40"}}
    e = log.record_review(run_dir, "P2", "decline", "no", list_name="service_referrals.csv")
    assert list(e.payload["lists"]) == ["service_referrals"]
    assert e.payload["manifest_sha256"] == hashlib.sha256((run_dir / "manifest.json").read_bytes()).hexdigest()


@pytest.mark.parametrize("kwargs, message", [
    ({"decision": "maybe"}, "decision must be one of approve, decline, defer"),
    ({"reason": "   "}, "needs a reason"),
    ({"person_id": "P99"}, "on none of call_in.csv"),
    ({"person_id": "V1", "list_name": "call_in"}, r"not on call_in.csv .*\(on: service_referrals\)"),
    ({"list_name": "hit_list"}, r"list \(--list\) must be one of"),
    ({"reason": "ok\x1b[2J"}, "control characters"),
])
def test_review_validation(db_url, run_dir, kwargs, message):
    args = {"person_id": "P1", "decision": "approve", "reason": "checked"} | kwargs
    log = AuditLog(db_url)
    with pytest.raises(UsageError, match=message):
        log.record_review(run_dir, args.pop("person_id"), args.pop("decision"), args.pop("reason"), **args)
    assert log.entries() == []


def test_review_refuses_missing_or_altered_runs(db_url, run_dir, tmp_path):
    log = AuditLog(db_url)
    with pytest.raises(UsageError, match="does not exist"):
        log.record_review(tmp_path / "nope", "P1", "approve", "x")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no manifest.json"):
        log.record_review(tmp_path / "empty", "P1", "approve", "x")
    (run_dir / "call_in.csv").write_text(LISTS["call_in.csv"] + "3,P7,,1,x\n", encoding="utf-8")
    with pytest.raises(UsageError, match="edited after the run"):
        log.record_review(run_dir, "P7", "approve", "x")
    assert not log.exists() or log.entries() == []


def test_reviews_table_keeps_latest_decision_and_history(filled, run_dir):
    filled.record_review(run_dir, "P1", "decline", "new information", reviewer="cy", list_name="call_in")
    df = filled.reviews(run_dir)
    got = {(r.list, r.person_id): (r.decision, r.reviewer, r.decisions, r.rank, r.current)
           for r in df.itertuples()}
    assert got == {("call_in", "P1"): ("decline", "cy", 2, 1, True),
                   ("custom_notifications", "P1"): ("approve", "ana", 1, 1, True),
                   ("call_in", "P2"): ("defer", "bo", 1, 2, True)}
    assert list(df["list"]) == ["call_in", "call_in", "custom_notifications"]


def test_record_export_checks_the_files(db_url, run_dir, tmp_path):
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "a.csv").write_bytes(b"x\n")
    log = AuditLog(db_url)
    good = hashlib.sha256(b"x\n").hexdigest()
    e = log.record_export(run_dir, exp, {"a.csv": good}, pseudonymised=False, user="ex",
                          details={"formats": ["csv"], "key_fingerprint": None})
    assert e.payload["files"] == {"a.csv": good} and e.payload["pseudonymised"] is False
    assert e.payload["export_dir"] == str(exp.resolve()) and e.payload["details"]["formats"] == ["csv"]
    for files, msg in [({"a.csv": "0" * 64}, "does not have the SHA-256"), ({"a.csv": "zz"}, "not a SHA-256"),
                       ({"../run/call_in.csv": good}, "not a file inside"), ({}, "needs the exported files")]:
        with pytest.raises(UsageError, match=msg):
            log.record_export(run_dir, exp, files, pseudonymised=False)
    assert len(log.entries()) == 1


def test_entries_filters(filled, run_dir, tmp_path):
    assert [e.seq for e in filled.entries(kind="review")] == [2, 3]
    assert [e.seq for e in filled.entries(run_dir=run_dir)] == [1, 2, 3, 4]
    assert filled.entries(run_dir=tmp_path / "other") == []
    with pytest.raises(UsageError, match="kind must be"):
        filled.entries(kind="delete")


# ---------------------------------------------------------------------------- location and user

def test_location_resolution(tmp_path, monkeypatch):
    monkeypatch.delenv("FDNET_AUDIT_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert resolve_url() == f"sqlite:///{tmp_path}/xdg/fdnet/audit.sqlite"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_url() == f"sqlite:///{tmp_path}/home/.local/share/fdnet/audit.sqlite"
    monkeypatch.setenv("FDNET_AUDIT_DB", str(tmp_path / "env.sqlite"))
    assert resolve_url() == f"sqlite:///{tmp_path}/env.sqlite"
    assert resolve_url("postgresql+psycopg://u:secret@h/db") == "postgresql+psycopg://u:secret@h/db"
    monkeypatch.chdir(tmp_path)
    assert resolve_url("rel.sqlite") == f"sqlite:///{tmp_path}/rel.sqlite"
    assert AuditLog("postgresql+psycopg://u:secret@h/db").display_url == "postgresql+psycopg://u:***@h/db"
    with pytest.raises(UsageError, match="supports SQLite and PostgreSQL"):
        resolve_url("mysql://u@h/db")
    with pytest.raises(UsageError, match="neither a file path nor a database URL"):
        resolve_url("not a url://x")


def test_reading_never_creates_the_database(tmp_path):
    log = AuditLog(tmp_path / "sub" / "audit.sqlite")
    assert log.entries() == [] and log.head() == (0, GENESIS) and not log.exists()
    rep = log.verify()
    assert rep.ok and rep.entries == 0 and "no audit log" in rep.notes[0]
    assert not (tmp_path / "sub").exists()


def test_user_resolution(monkeypatch):
    monkeypatch.setenv("FDNET_USER", "env-user")
    assert resolve_user("  arg  ") == "arg"
    assert resolve_user(None) == resolve_user("") == "env-user"
    monkeypatch.delenv("FDNET_USER")
    monkeypatch.setattr("getpass.getuser", lambda: "login")
    assert resolve_user() == "login"
    with pytest.raises(UsageError, match="control characters"):
        resolve_user("a\x1b]0;x")


# ---------------------------------------------------------------------------- command line

def test_cli_log_verify_and_exit_codes(filled, db_url, capsys):
    head = filled.head()[1]
    assert main(["audit", "log", "--db", db_url]) == 0
    out = capsys.readouterr().out
    assert f"head: entry 4 sha256 {head}" in out
    assert main(["audit", "log", "--db", db_url, "--kind", "review", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [e["seq"] for e in data["entries"]] == [2, 3] and data["head"]["entry_hash"] == head
    assert main(["audit", "verify", "--db", db_url, "--expect-head", head]) == 0
    assert "chain intact" in capsys.readouterr().out
    assert main(["audit", "verify", "--db", db_url, "--expect-head", "f" * 64]) == 1
    assert "TRUNCATED" in capsys.readouterr().err
    drop_guards(db_url)
    raw(db_url, "UPDATE fdnet_audit_entries SET username = 'mallory' WHERE seq = 3")
    assert main(["audit", "verify", "--db", db_url]) == 1
    err = capsys.readouterr().err
    assert "entry 3: edited: changed after recording: user" in err
    assert main(["audit", "verify", "--db", db_url, "--json"]) == 1
    rep = json.loads(capsys.readouterr().out)
    assert rep["ok"] is False and rep["problems"][0]["seq"] == 3 and rep["problems"][0]["fields"] == ["user"]
    assert main(["audit", "log", "--db", db_url, "--kind", "nope"]) == 2


def test_cli_review(db_url, run_dir, capsys, monkeypatch):
    monkeypatch.setenv("FDNET_USER", "[red]x[/red]")
    assert main(["review", str(run_dir), "P1", "--decision", "approve", "--reason", "see [bold]file[/]",
                 "--db", db_url]) == 0
    out = capsys.readouterr().out
    assert "recorded entry 1: [red]x[/red] approves P1 on call_in (rank 1), custom_notifications (rank 1)" in out
    assert main(["review", str(run_dir), "P1", "--decision", "nope", "--reason", "x", "--db", db_url]) == 2
    assert "decision must be one of" in capsys.readouterr().err
    assert main(["review", str(run_dir), "P1", "--decision", "defer", "--db", db_url]) == 2  # --reason missing
    capsys.readouterr()
    assert main(["audit", "reviews", str(run_dir), "--db", db_url]) == 0
    out = capsys.readouterr().out
    assert "[bold]" in out and "P1" in out
    assert main(["audit", "reviews", str(run_dir), "--db", db_url, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {(r["list"], r["person_id"], r["reason"]) for r in rows} == {
        ("call_in", "P1", "see [bold]file[/]"), ("custom_notifications", "P1", "see [bold]file[/]")}


def test_cli_uses_env_and_refuses_to_verify_a_missing_log(tmp_path, capsys, monkeypatch, run_dir):
    monkeypatch.setenv("FDNET_AUDIT_DB", str(tmp_path / "env.sqlite"))
    assert main(["audit", "verify"]) == 2
    assert "no audit log" in capsys.readouterr().err
    assert main(["audit", "log"]) == 0
    assert "no audit log" in capsys.readouterr().out
    assert not (tmp_path / "env.sqlite").exists()
    assert main(["review", str(run_dir), "V1", "--decision", "approve", "--reason", "r"]) == 0
    assert (tmp_path / "env.sqlite").is_file()
    assert main(["audit", "verify"]) == 0


def test_cli_record_run_and_hostile_stored_text(db_url, run_dir, capsys):
    assert main(["audit", "record-run", str(run_dir), "--db", db_url, "--user", "ops"]) == 0
    assert "recorded entry 1: run" in capsys.readouterr().out
    drop_guards(db_url)
    # someone writes terminal escapes and markup straight into the database
    raw(db_url, "UPDATE fdnet_audit_entries SET username = '[blink]x' || CHAR(27) || '[2J' WHERE seq = 1"
        if db_url.startswith("sqlite") else
        "UPDATE fdnet_audit_entries SET username = '[blink]x' || CHR(27) || '[2J' WHERE seq = 1",
        "UPDATE fdnet_audit_entries SET payload = '{not json' WHERE seq = 1")
    assert main(["audit", "log", "--db", db_url]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "[blink]x" in out and "unreadable" in out
    assert main(["audit", "verify", "--db", db_url]) == 1
    err = capsys.readouterr().err
    assert "\x1b" not in err and "entry 1: edited" in err


def test_unreachable_database_is_a_usage_error(tmp_path, capsys):
    url = f"postgresql+psycopg://nobody@/nodb?host={tmp_path}&port=1"
    with pytest.raises(UsageError, match="audit log at postgresql"):
        AuditLog(url).entries()
    assert main(["audit", "log", "--db", url]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "opening failed" in err
    (tmp_path / "junk.sqlite").write_bytes(b"this is not a database" * 100)
    assert main(["audit", "verify", "--db", str(tmp_path / "junk.sqlite")]) == 2


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_postgresql_hardening_from_the_docs(db_url, run_dir):
    """docs/audit.md's roles: analysts may read and append, but neither edit nor drop the guards."""
    AuditLog(db_url).record_run(run_dir)
    db = db_url.split("/")[3].split("?")[0]
    raw(db_url, "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fdnet_owner') THEN "
                "CREATE ROLE fdnet_owner NOLOGIN; CREATE ROLE fdnet_users NOLOGIN; "
                "CREATE ROLE analyst LOGIN IN ROLE fdnet_users; CREATE ROLE reader LOGIN; END IF; END $$",
        "ALTER TABLE fdnet_audit_entries OWNER TO fdnet_owner",
        "REVOKE ALL ON fdnet_audit_entries FROM PUBLIC",
        "GRANT SELECT, INSERT ON fdnet_audit_entries TO fdnet_users",
        "GRANT SELECT ON fdnet_audit_entries TO reader",
        f"GRANT CONNECT ON DATABASE {db} TO fdnet_users, reader")
    analyst = db_url.replace("postgres@", "analyst@")
    log = AuditLog(analyst)
    assert log.record_review(run_dir, "P1", "approve", "ok", reviewer="ana").seq == 2
    for sql in ("UPDATE fdnet_audit_entries SET username = 'x'",
                "DROP TRIGGER fdnet_audit_no_update_delete ON fdnet_audit_entries"):
        with pytest.raises(sa.exc.DBAPIError, match="permission denied|must be owner"):
            raw(analyst, sql)
    assert log.verify().ok and all(log.guards().values())
    with pytest.raises(UsageError, match="may not append"):
        AuditLog(db_url.replace("postgres@", "reader@")).ensure()
    assert AuditLog(db_url.replace("postgres@", "reader@")).verify().ok
