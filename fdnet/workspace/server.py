"""``fdnet serve --runs DIR``: the workspace on uvicorn, bound to loopback unless ``--host`` says otherwise."""
from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import typer

AUDIT_DB_HELP = ("Audit database: a SQLite file path or a SQLAlchemy URL (postgresql+psycopg://user@host/db) "
                 "holding users, sessions and the audit trail. Default: $FDNET_AUDIT_DB, else "
                 "$XDG_DATA_HOME/fdnet/audit.sqlite.")


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine.

    >>> [is_loopback(h) for h in ("127.0.0.1", "::1", "localhost", "0.0.0.0", "10.1.2.3")]
    [True, True, True, False, False]
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    runs: Path = typer.Option(..., "--runs", help="Folder holding run folders (a run's run_id is its folder's name)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; loopback by default. Anything else "
                             "should sit behind a TLS proxy (and use --https)."),
    port: int = typer.Option(8765, "--port", min=1, max=65535, help="TCP port."),
    audit_db: Optional[str] = typer.Option(None, "--audit-db", help=AUDIT_DB_HELP),
    idle_minutes: float = typer.Option(30, "--idle-minutes", min=1, help="A session ends after this long unused."),
    max_hours: float = typer.Option(12, "--max-hours", min=0.1, help="A session ends this long after sign-in."),
    https: bool = typer.Option(False, "--https", help="Served over TLS by a proxy: cookies marked Secure, HSTS sent."),
    pseudonym_key: Optional[Path] = typer.Option(None, "--pseudonym-key", help="Key file for auditors' pseudonyms "
                                                 "(`fdnet export --new-key` makes one); without it they last as "
                                                 "long as the server process."),
):
    """Serve the workspace: prosecutors, supervisors, outreach workers and auditors act on the lists."""
    from ..errors import UsageError
    from .app import create_app
    if not runs.is_dir():
        raise UsageError(f"--runs {runs}: no such folder (it must hold run folders made by `fdnet run`)")
    key = None
    if pseudonym_key is not None:
        from ..export.pseudonym import read_key
        key = read_key(pseudonym_key, {"--runs": runs})
    import socket
    try:   # a port in use is bad input, said before anything else happens (uvicorn would only log it)
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.bind((host, port))
    except OSError as exc:
        raise UsageError(f"cannot listen on {host} port {port}: {exc.strerror or exc} (another server there? "
                         "choose another with --port)") from None
    app = create_app(runs, audit_db, idle_minutes=idle_minutes, max_hours=max_hours, https=https, pseudonym_key=key)
    from .. import console
    if not is_loopback(host):
        console.err.print(f"[yellow]warning:[/] binding {host}, reachable from other machines: put it behind a TLS "
                          "proxy and pass --https")
    n_users = len(app.state.ws.accounts.users())
    console.err.print(f"fdnet workspace: {len(app.state.ws.catalog.runs())} run(s) from {runs.resolve()}, "
                      f"{n_users} user(s), audit log {app.state.ws.log.display_url}")
    if n_users == 0:
        console.err.print("no users yet: add one with `fdnet users add NAME --role ROLE` (password on stdin)")
    console.err.print(f"open http://{host if ':' not in host else '[' + host + ']'}:{port}/ (Ctrl-C stops it)")
    import uvicorn
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, server_header=False,
                proxy_headers=False)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on at ``host`` just now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Served:
    """A workspace started by :func:`serving`: its base URL, port and process."""
    base: str
    port: int
    process: subprocess.Popen


@contextlib.contextmanager
def serving(runs: str | Path, audit_db: str | None = None, *, env: dict | None = None,
            log_path: str | Path | None = None, timeout: float = 90) -> Iterator[Served]:
    """``fdnet serve --runs RUNS`` as a child process on a free loopback port, for as long as the ``with``
    block lasts: it is started, waited for until ``/login`` answers, and stopped with SIGTERM afterwards
    (tests, benchmarks and notebooks use it the same way). The server's output goes to ``log_path``
    (a temporary file when None); a server that dies or does not answer within ``timeout`` seconds is a
    RuntimeError with the end of that output."""
    import tempfile

    import httpx
    port = free_port()
    args = [sys.executable, "-m", "fdnet", "serve", "--runs", str(runs), "--port", str(port)]
    if audit_db is not None:
        args += ["--audit-db", str(audit_db)]
    log = open(log_path, "w+") if log_path is not None else tempfile.TemporaryFile("w+")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env if env is not None else dict(os.environ))
    base = f"http://127.0.0.1:{port}"
    try:
        end = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(base + "/login", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > end:
                log.seek(0)
                raise RuntimeError("fdnet serve did not start:\n" + log.read()[-3000:])
            time.sleep(0.2)
        yield Served(base, port, proc)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
