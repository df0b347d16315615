"""CLI commands of the audit stage: ``fdnet audit log|verify|reviews|disseminations|record-run|migrate|keygen``
and ``fdnet review``.

They are thin wrappers over :class:`fdnet.audit.log.AuditLog`; every string that came from input
data or from the database is escaped before rich prints it (and control characters are stripped,
so a stored value cannot move the cursor or recolour the terminal of whoever reads the log).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

DB_HELP = ("Audit database: a SQLite file path or a SQLAlchemy URL (postgresql+psycopg://user@host/db). "
           "Default: $FDNET_AUDIT_DB, else $XDG_DATA_HOME/fdnet/audit.sqlite (~/.local/share/fdnet/audit.sqlite).")


def _consoles():
    from .. import console
    return console.out, console.err


def _safe(value) -> str:
    """Plain text for rich: control characters removed, markup escaped."""
    from rich.control import strip_control_codes
    from rich.markup import escape
    text = "" if value is None else str(value)
    text = "".join(c if c.isprintable() or c == " " else " " for c in strip_control_codes(text))
    return escape(text)


def _summary(e) -> str:
    p = e.payload
    if "unreadable_payload" in p:
        return "(payload unreadable: see `fdnet audit verify`)"
    if e.kind == "run":
        lists = ", ".join(f"{k} {v.get('rows')}" for k, v in (p.get("lists") or {}).items()
                          if isinstance(v, dict))
        return f"as of {p.get('as_of')} · fdnet {p.get('fdnet_version')} · lists: {lists or 'none'}"
    if e.kind == "review":
        on = ", ".join(f"{k} #{(v or {}).get('rank')}" for k, v in (p.get("lists") or {}).items())
        role = f" as {p['role']}" if p.get("role") else ""
        code = f" [{p['reason_code']}]" if p.get("reason_code") else ""
        return f"{str(p.get('decision', '')).upper()}{role} {p.get('person_id')} on {on}{code} — {p.get('reason')}"
    if e.kind == "signin":
        return f"signed in as {p.get('role')} from {p.get('client')}"
    if e.kind == "signin_failed":
        return f"sign-in refused for {p.get('username')!r} from {p.get('client')}: {p.get('reason')}"
    if e.kind == "signout":
        return f"session ended: {p.get('reason')}"
    if e.kind == "release":
        ids = p.get("person_ids") or []
        shown = ", ".join(str(i) for i in ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
        return (f"shown to {p.get('role')}: {len(ids)} person(s) ({shown}) by {p.get('what')} for "
                f"{p.get('purpose')}{' (pseudonymised)' if p.get('pseudonymised') else ''}")
    if e.kind == "outreach":
        svc = f" ({p.get('service')})" if p.get("service") else ""
        return f"{p.get('kind')}{svc} with {p.get('person_id')} on {p.get('date')}"
    if e.kind == "user":
        return f"account {p.get('action')}: {p.get('name')} ({p.get('role')})"
    files = p.get("files") or {}
    return (f"{len(files)} file(s) → {p.get('export_dir')}"
            f"{' (pseudonymised)' if p.get('pseudonymised') else ' (person IDs in clear)'}")


def _head_line(seq: int, head: str) -> str:
    return (f"head: entry {seq} sha256 {head}\n"
            "Keep this hash outside the log (ticket, e-mail, signed memo); "
            "`fdnet audit verify --expect-head HASH` then also detects entries removed from the end.")


def audit_log(
    db: Optional[str] = typer.Option(None, "--db", "--audit-db", help=DB_HELP),
    run: Optional[Path] = typer.Option(None, "--run", help="Only entries about this run folder."),
    kind: Optional[str] = typer.Option(None, "--kind", help="Only entries of this kind: run, review, export, signin, signin_failed, signout, "
                                        "release, outreach or user."),
    as_json: bool = typer.Option(False, "--json", help="Print the entries and head as JSON."),
):
    """List the audit log's entries (oldest first) and print the head hash to keep as an anchor."""
    from rich.table import Table

    from ..errors import UsageError
    from .log import KINDS, AuditLog

    out, _ = _consoles()
    if kind is not None and kind not in KINDS:
        raise UsageError(f"--kind must be one of {', '.join(KINDS)}, not {kind!r}")
    log = AuditLog(db)
    with log:
        entries = log.entries(kind=kind, run_dir=run)
        seq, head = log.head()
        exists = log.exists()
    if as_json:
        print(json.dumps({"db": log.display_url, "head": {"seq": seq, "entry_hash": head},
                          "entries": [e.to_dict() for e in entries]}, indent=2, ensure_ascii=False))
        return
    if not exists:
        out.print(f"no audit log at {_safe(log.display_url)} yet (nothing has been recorded there)",
                  soft_wrap=True, highlight=False)
        return
    t = Table(title=f"audit log {_safe(log.display_url)}", show_header=True, show_lines=False)
    for c in ("seq", "kind", "when (UTC)", "user", "run folder", "what", "hash"):
        t.add_column(c, overflow="fold")
    for e in entries:
        when = _safe(e.created_at[:19].replace("T", " "))
        t.add_row(str(e.seq), e.kind, when, _safe(e.user), _safe(e.subject), _safe(_summary(e)), e.entry_hash[:12])
    from ..console import print_table
    print_table(t)   # plain tab-separated rows when piped
    if not entries:
        out.print("no entries match", highlight=False)
    out.print(_head_line(seq, head), soft_wrap=True, highlight=False, markup=False)


def audit_verify(
    db: Optional[str] = typer.Option(None, "--db", "--audit-db", help=DB_HELP),
    expect_head: Optional[str] = typer.Option(None, "--expect-head",
                                              help="A head hash printed earlier by `fdnet audit log`; it must "
                                              "still be in the chain (detects entries cut off the end)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
):
    """Recompute the hash chain. Exit 0 when intact, 1 naming each edited, deleted or reordered entry."""
    from ..errors import UsageError
    from .log import AuditLog

    out, err = _consoles()
    log = AuditLog(db)
    with log:
        if expect_head is None and not log.exists():
            raise UsageError(f"no audit log at {log.display_url}: nothing to verify (give --db or set FDNET_AUDIT_DB)")
        rep = log.verify(expect_head=expect_head)
    if as_json:
        print(json.dumps(rep.to_dict(), indent=2, ensure_ascii=False))
    else:
        out.print(f"audit log {_safe(rep.url)}: {rep.entries} entries", soft_wrap=True, highlight=False)
        if rep.anchor is not None and rep.anchor_seq is not None:
            out.print(f"expected head found at entry {rep.anchor_seq}; {rep.head_seq - rep.anchor_seq} "
                      "entries recorded since", highlight=False)
        for n in rep.notes:
            out.print(f"note: {_safe(n)}", soft_wrap=True, highlight=False)
        for p in rep.problems:
            err.print(f"[red]{_safe(p.problem.upper())}[/] {_safe(str(p))}", soft_wrap=True, highlight=False)
        out.print(_head_line(rep.head_seq, rep.head_hash), soft_wrap=True, highlight=False, markup=False)
    if not rep.ok:
        if not as_json:
            err.print(f"fdnet audit verify: {len(rep.problems)} problem(s); the log has been tampered with "
                      "or damaged", highlight=False)
        raise typer.Exit(1)
    if not as_json:
        out.print("[green]chain intact[/]")


def audit_reviews(
    run_dir: Path = typer.Argument(..., help="A run folder written by `fdnet run`."),
    db: Optional[str] = typer.Option(None, "--db", "--audit-db", help=DB_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the decisions as JSON records."),
):
    """Show the latest review decision per person and list for a run folder."""
    from rich.table import Table

    from .log import AuditLog

    out, _ = _consoles()
    with AuditLog(db) as log:
        df = log.reviews(run_dir)
    if as_json:
        print(json.dumps(json.loads(df.to_json(orient="records")), indent=2, ensure_ascii=False))
        return
    if not len(df):
        out.print(f"no reviews recorded for {_safe(run_dir)} in {_safe(log.display_url)}", soft_wrap=True,
                  highlight=False)
        return
    t = Table(title=f"reviews of {_safe(run_dir)}", show_header=True)
    for c in ("list", "rank", "person", "decision", "reason", "reviewer", "when (UTC)", "decisions", "entry"):
        t.add_column(c, overflow="fold")
    for r in df.itertuples(index=False):
        stale = "" if r.current is not False else " (earlier run in this folder)"
        t.add_row(_safe(r.list), _safe(r.rank), _safe(r.person_id), _safe(r.decision) + stale, _safe(r.reason),
                  _safe(r.reviewer), _safe(str(r.decided_at)[:19].replace("T", " ")), str(r.decisions), str(r.seq))
    from ..console import print_table
    print_table(t)   # plain tab-separated rows when piped


def review(
    run_dir: Path = typer.Argument(..., help="A run folder written by `fdnet run`."),
    person_id: str = typer.Argument(..., help="A person on at least one of the run's lists."),
    decision: str = typer.Option(..., "--decision", help="approve, decline or defer."),
    reason: str = typer.Option(..., "--reason", help="Why, in words another reviewer or an auditor can follow."),
    list_name: Optional[str] = typer.Option(None, "--list", help="Decide on one list only (call_in, "
                                            "custom_notifications, service_referrals); default: every list "
                                            "the person is on."),
    reviewer: Optional[str] = typer.Option(None, "--reviewer", help="Who decides; default $FDNET_USER, else "
                                           "the login name."),
    db: Optional[str] = typer.Option(None, "--db", "--audit-db", help=DB_HELP),
):
    """Record a reviewer's decision on a listed person in the audit log (append-only, hash-chained)."""
    from .log import AuditLog

    out, _ = _consoles()
    with AuditLog(db) as log:
        e = log.record_review(run_dir, person_id, decision, reason, reviewer=reviewer, list_name=list_name)
    on = ", ".join(f"{k} (rank {v['rank']})" for k, v in e.payload["lists"].items())
    out.print(f"recorded entry {e.seq}: {_safe(e.user)} {e.payload['decision']}s {_safe(person_id)} on {_safe(on)}",
              soft_wrap=True, highlight=False)
    out.print(f"in {_safe(log.display_url)}", soft_wrap=True, highlight=False)
    out.print(_head_line(e.seq, e.entry_hash), soft_wrap=True, highlight=False, markup=False)


def audit_record_run(
    run_dir: Path = typer.Argument(..., help="A run folder written by `fdnet run`."),
    db: Optional[str] = typer.Option(None, "--db", "--audit-db", help=DB_HELP),
    user: Optional[str] = typer.Option(None, "--user", help="Who made the run; default $FDNET_USER, else the "
                                       "login name."),
):
    """Record an existing run folder in the audit log (for runs made without --audit-db).

    The entry records the folder's manifest hash, policy hash, inputs and list sizes, exactly as
    `fdnet run --audit-db` would; the lists must still match their manifest.
    """
    from .log import AuditLog

    out, _ = _consoles()
    with AuditLog(db) as log:
        e = log.record_run(run_dir, user=user)
    out.print(f"recorded entry {e.seq}: run {_safe(e.subject)} as of {_safe(e.payload.get('as_of'))} "
              f"in {_safe(log.display_url)}", soft_wrap=True, highlight=False)
    out.print(_head_line(e.seq, e.entry_hash), soft_wrap=True, highlight=False, markup=False)


def audit_keygen(
    key_file: Path = typer.Argument(..., help="Where to write the new key (a new file, outside any run folder)."),
):
    """Write a new random signing key (256 bits, hex) for `fdnet run --sign-key` and `fdnet verify --key`.

    The file is created readable by its owner only. Keep it where whoever can edit run folders cannot
    read it: with it, anyone can sign a forged manifest.
    """
    import os

    from ..errors import OutputError, UsageError
    from ..runfolder import generate_sign_key, key_id, load_sign_key_text

    out, _ = _consoles()
    text = generate_sign_key()
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UsageError(f"{key_file} exists; fdnet will not overwrite a key") from None
    except OSError as exc:
        raise OutputError("key file", key_file, exc) from None
    try:
        os.write(fd, (text + "\n").encode("ascii"))
        os.fsync(fd)
    except OSError as exc:
        os.close(fd)
        os.unlink(key_file)
        raise OutputError("key file", key_file, exc) from None
    os.close(fd)
    out.print(f"wrote a new signing key to {_safe(key_file)} (key id {key_id(load_sign_key_text(text))}); "
              "keep it outside the run folders", soft_wrap=True, highlight=False)


DISSEMINATION_COLUMNS = ("seq", "when_utc", "user", "role", "run_id", "run_dir", "purpose", "what", "pseudonymised",
                         "people", "person_ids", "entry_hash")


def dissemination_table(entries):
    """The release entries as a table (one row per release, person IDs ``;``-joined), for the CSV export."""
    import pandas as pd
    rows = []
    for e in entries:
        p = e.payload
        rows.append([e.seq, e.created_at, e.user, p.get("role", ""), p.get("run_id", ""), p.get("run_dir", ""),
                     p.get("purpose", ""), p.get("what", ""), "true" if p.get("pseudonymised") else "false",
                     len(p.get("person_ids") or []), ";".join(str(i) for i in p.get("person_ids") or []),
                     e.entry_hash])
    df = pd.DataFrame(rows, columns=list(DISSEMINATION_COLUMNS), dtype=object)
    return df.astype({"seq": "int64", "people": "int64"})


def audit_disseminations(
    db: Optional[str] = typer.Option(None, "--db", "--audit-db", help=DB_HELP),
    person: Optional[str] = typer.Option(None, "--person", help="Only releases that named this person ID."),
    run: Optional[Path] = typer.Option(None, "--run", help="Only releases from this run folder."),
    out_file: Optional[Path] = typer.Option(None, "--out", help="Write the log as CSV to this new file "
                                            "(spreadsheet-safe cells) instead of printing it."),
):
    """The dissemination log (28 CFR 23.20): who was shown which people's data, when, and for what purpose."""
    from rich.table import Table

    from ..errors import OutputError, UsageError
    from ..tables import csv_bytes
    from .log import AuditLog

    out, _ = _consoles()
    if out_file is not None and out_file.exists():
        raise UsageError(f"{out_file} exists; fdnet writes the dissemination log to a new file only")
    log = AuditLog(db)
    with log:
        entries = log.disseminations()
    if person is not None:
        entries = [e for e in entries if person in (e.payload.get("person_ids") or [])]
    if run is not None:
        target = str(run.expanduser().resolve())
        entries = [e for e in entries if e.subject == target]
    df = dissemination_table(entries)
    if out_file is not None:
        data = csv_bytes(df)
        tmp = out_file.with_name(f".{out_file.name}.partial")
        try:
            with open(tmp, "xb") as f:
                f.write(data)
            tmp.replace(out_file)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise OutputError("dissemination log", out_file, exc) from None
        out.print(f"wrote {len(df)} release(s) to {_safe(out_file)}", soft_wrap=True, highlight=False)
        return
    if not len(df):
        out.print(f"no releases of person-level data recorded in {_safe(log.display_url)}"
                  + (" that match" if person is not None or run is not None else ""), soft_wrap=True,
                  highlight=False)
        return
    t = Table(title=f"dissemination log {_safe(log.display_url)}", show_header=True)
    for c in ("seq", "when (UTC)", "user", "role", "run", "purpose", "what", "people", "person IDs"):
        t.add_column(c, overflow="fold")
    for r in df.itertuples(index=False):
        ids = r.person_ids + (" (shown pseudonymised)" if r.pseudonymised == "true" else "")
        t.add_row(str(r.seq), _safe(str(r.when_utc)[:19].replace("T", " ")), _safe(r.user), _safe(r.role),
                  _safe(r.run_id), _safe(r.purpose), _safe(r.what), str(r.people), _safe(ids))
    from ..console import print_table
    print_table(t)


def audit_migrate(
    db: Optional[str] = typer.Option(None, "--db", "--audit-db", help=DB_HELP),
):
    """Bring a log made by an older fdnet up to date (its entry kinds); on PostgreSQL, as the table's owner.

    fdnet does this by itself on the first write; this command is for a hardened PostgreSQL log,
    where the users who write may not alter the table.
    """
    from .log import AuditLog

    out, _ = _consoles()
    with AuditLog(db) as log:
        changed = log.migrate()
        rep = log.verify()
    out.print(("migrated" if changed else "already up to date") + f": {_safe(log.display_url)}, "
              f"{rep.entries} entries, chain {'intact' if rep.ok else 'NOT intact (run fdnet audit verify)'}",
              soft_wrap=True, highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``fdnet audit log|verify|reviews|disseminations|record-run|migrate|keygen`` and ``fdnet review``."""
    audit_app = typer.Typer(help="The append-only, hash-chained audit log of runs, reviews, exports and the "
                            "workspace's sign-ins, releases and outreach "
                            "(docs/audit.md).", no_args_is_help=True,
                            rich_markup_mode=None)
    audit_app.command("log")(audit_log)
    audit_app.command("verify")(audit_verify)
    audit_app.command("reviews")(audit_reviews)
    audit_app.command("disseminations")(audit_disseminations)
    audit_app.command("migrate")(audit_migrate)
    audit_app.command("record-run")(audit_record_run)
    audit_app.command("keygen")(audit_keygen)
    app.add_typer(audit_app, name="audit")
    app.command("review")(review)
