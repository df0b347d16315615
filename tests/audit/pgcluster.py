"""Audit-log fixtures shared by the modules of tests/audit (each imports them): a fresh database on each
backend (``db_url``), SQLite and a throwaway PostgreSQL cluster (``pg_server``, started once per session and
module that uses it; it listens only on a unix socket in its own folder, so two never collide)."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import sqlalchemy as sa



def pg_url(server, db: str) -> str:
    """The URL of database ``db`` on the test cluster."""
    return f"postgresql+psycopg://postgres@/{db}?host={server['host']}&port={server['port']}"


_pg_url = pg_url

def _default_pg_bin() -> str:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name)
                   if p.parent.parent.name.isdigit() else 0)
    return str(found[-1].parent) if found else "/usr/lib/postgresql/15/bin"


PG_BIN = Path(os.environ.get("FDNET_TEST_PG_BIN", _default_pg_bin()))


def _skip_or_fail(msg: str):
    """Skip without PostgreSQL, except in CI (FDNET_REQUIRE_POSTGRES=1), where the backend must be tested."""
    if os.environ.get("FDNET_REQUIRE_POSTGRES"):
        pytest.fail("FDNET_REQUIRE_POSTGRES is set but " + msg)
    pytest.skip(msg)


# ---------------------------------------------------------------------------- backends

@pytest.fixture(scope="session")
def pg_server():
    """A throwaway PostgreSQL cluster listening only on a unix socket in a private folder."""
    initdb, pg_ctl = PG_BIN / "initdb", PG_BIN / "pg_ctl"
    if not (initdb.is_file() and pg_ctl.is_file()):
        _skip_or_fail(f"PostgreSQL binaries not found in {PG_BIN} (set FDNET_TEST_PG_BIN); "
                    "the PostgreSQL backend is not tested here")
    as_pg: list[str] = []
    tmp = Path(tempfile.mkdtemp(prefix="fdnet-pg-"))
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # initdb refuses to run as root
        if shutil.which("runuser") is None:
            shutil.rmtree(tmp)
            _skip_or_fail("running as root without runuser: cannot start PostgreSQL as the postgres user")
        try:
            shutil.chown(tmp, "postgres")
        except (LookupError, OSError) as exc:
            shutil.rmtree(tmp)
            _skip_or_fail(f"running as root and cannot hand a folder to a 'postgres' OS user: {exc}")
        as_pg = ["runuser", "-u", "postgres", "--"]
    data, port = tmp / "data", 5433
    t0 = time.perf_counter()
    try:
        subprocess.run(as_pg + [str(initdb), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                                "--locale=C", "--no-sync"], check=True, capture_output=True, timeout=120)
        subprocess.run(as_pg + [str(pg_ctl), "-D", str(data), "-l", str(tmp / "server.log"), "-w", "-t", "60",
                                "-o", f"-c listen_addresses='' -c unix_socket_directories={tmp} -p {port} "
                                "-c fsync=off -c full_page_writes=off", "start"],
                       check=True, capture_output=True, timeout=120)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        detail = (getattr(exc, "stderr", b"") or b"").decode(errors="replace").strip()[-400:]
        shutil.rmtree(tmp, ignore_errors=True)
        _skip_or_fail(f"could not start a throwaway PostgreSQL cluster: {exc} {detail}")
    started = time.perf_counter() - t0
    try:
        yield {"host": str(tmp), "port": port, "startup_seconds": started, "n": 0}
    finally:
        subprocess.run(as_pg + [str(pg_ctl), "-D", str(data), "-m", "immediate", "-w", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A fresh, empty audit database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'audit.sqlite'}"
    server = request.getfixturevalue("pg_server")
    server["n"] += 1
    name = f"fdnet_audit_{os.getpid()}_{server['n']}"
    admin = sa.create_engine(_pg_url(server, "postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()
    return _pg_url(server, name)


