"""``fdnet users add|list|disable|enable|password``: the workspace's accounts, from the command line.

Passwords are read from standard input, never from an argument (arguments show up in ``ps`` and
shell history): on a terminal the password is asked twice without echo; from a pipe, one line is
read. Every change is an entry of the audit log, made by the operating-system user (``FDNET_USER``
overrides it, as for the other audit commands). See docs/workspace-admin.md.
"""
from __future__ import annotations

import json
import sys
from typing import Optional

import typer

from ..audit.commands import DB_HELP, _consoles, _safe

ROLE_HELP = "analyst, prosecutor, supervisor, outreach, auditor or admin (docs/workspace-admin.md)."


def _db_option():
    return typer.Option(None, "--audit-db", "--db", help=DB_HELP)


def _accounts(db):
    from ..audit.log import AuditLog
    from .accounts import Accounts
    return Accounts(AuditLog(db))


def read_password(name: str, *, stream=None, prompt=None) -> str:
    """The new password for ``name``: twice without echo on a terminal, else one line of ``stream``."""
    from ..errors import UsageError
    stream = sys.stdin if stream is None else stream
    if stream.isatty():
        import getpass
        ask = prompt or getpass.getpass
        first = ask(f"new password for {name}: ")
        if first != ask("again: "):
            raise UsageError("the two passwords differ; nothing was changed")
        return first
    line = stream.readline()
    if not line:
        raise UsageError("no password on standard input: type it at the prompt, or pipe one line "
                         "(e.g. from a password manager); it is never taken as an argument")
    return line[:-1] if line.endswith("\n") else line


def _strip_cr(text: str) -> str:
    return text[:-1] if text.endswith("\r") else text


def users_add(
    name: str = typer.Argument(..., help="The user name: 1-64 letters, digits and . _ @ -"),
    role: str = typer.Option(..., "--role", help=ROLE_HELP),
    db: Optional[str] = _db_option(),
):
    """Create a workspace account; the password is read from standard input."""
    from ..audit.log import resolve_user
    from .accounts import check_name, check_role
    out, _ = _consoles()
    check_name(name)
    check_role(role)
    password = _strip_cr(read_password(name))
    acc = _accounts(db)
    with acc.log:
        u = acc.add(name, role, password, by=resolve_user(None))
    out.print(f"added {_safe(u.name)} ({_safe(u.role)}) in {_safe(acc.log.display_url)}", soft_wrap=True,
              highlight=False)


def users_list(
    db: Optional[str] = _db_option(),
    as_json: bool = typer.Option(False, "--json", help="Print the accounts as JSON."),
):
    """List the workspace accounts (name, role, disabled, created)."""
    from rich.table import Table

    from ..audit.log import AuditLog
    out, _ = _consoles()
    log = AuditLog(db)
    with log:
        users = _accounts_if_any(log)
    if as_json:
        print(json.dumps([{"name": u.name, "role": u.role, "disabled": u.disabled, "created_at": u.created_at}
                          for u in users], indent=2, ensure_ascii=False))
        return
    if not users:
        out.print(f"no workspace accounts in {_safe(log.display_url)} yet (fdnet users add NAME --role ROLE)",
                  soft_wrap=True, highlight=False)
        return
    t = Table(title=f"workspace accounts in {_safe(log.display_url)}", show_header=True)
    for c in ("name", "role", "status", "created (UTC)"):
        t.add_column(c, overflow="fold")
    for u in users:
        t.add_row(_safe(u.name), _safe(u.role), "disabled" if u.disabled else "active",
                  _safe(u.created_at[:19].replace("T", " ")))
    from ..console import print_table
    print_table(t)


def _accounts_if_any(log):
    """The accounts, without creating a database or tables that are not there (listing writes nothing)."""
    from sqlalchemy import inspect
    from .accounts import USERS_TABLE, Accounts
    if not log.exists():
        return []
    with log.engine.connect() as conn:
        if not inspect(conn).has_table(USERS_TABLE):
            return []
    acc = Accounts(log)
    acc._ready_done = True   # the tables exist; listing changes nothing
    return acc.users()


def _change(verb: str):
    def command(name: str = typer.Argument(..., help="The user name."), db: Optional[str] = _db_option()):
        from ..audit.log import resolve_user
        out, _ = _consoles()
        acc = _accounts(db)
        with acc.log:
            u = getattr(acc, verb)(name, by=resolve_user(None))
        out.print(f"{_safe(u.name)} ({_safe(u.role)}) is now {'disabled' if u.disabled else 'active'}; "
                  f"recorded in {_safe(acc.log.display_url)}", soft_wrap=True, highlight=False)
    command.__doc__ = {"disable": "Disable an account: it can no longer sign in, and its sessions end now.",
                       "enable": "Enable a disabled account again."}[verb]
    return command


def users_password(
    name: str = typer.Argument(..., help="The user name."),
    db: Optional[str] = _db_option(),
):
    """Set a new password (read from standard input); the user's open sessions end."""
    from ..audit.log import resolve_user
    from .accounts import check_name
    out, _ = _consoles()
    check_name(name)
    password = _strip_cr(read_password(name))
    acc = _accounts(db)
    with acc.log:
        u = acc.set_password(name, password, by=resolve_user(None))
    out.print(f"new password set for {_safe(u.name)}; their open sessions were ended", soft_wrap=True,
              highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``fdnet users add|list|disable|enable|password`` to the fdnet CLI."""
    users_app = typer.Typer(help="Workspace accounts for `fdnet serve` (docs/workspace-admin.md).",
                            no_args_is_help=True, rich_markup_mode=None)
    users_app.command("add")(users_add)
    users_app.command("list")(users_list)
    users_app.command("disable")(_change("disable"))
    users_app.command("enable")(_change("enable"))
    users_app.command("password")(users_password)
    app.add_typer(users_app, name="users")
