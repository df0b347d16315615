"""`fdnet users add` (password on standard input) and `fdnet serve` as a user starts them: real processes,
the server bound to loopback, signing in over HTTP, stopped with SIGTERM; bad options exit 2 with a message."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import httpx

from wshelpers import PASSWORD

from fdnet.workspace.server import serving


def _env(db) -> dict:
    return dict(os.environ, FDNET_AUDIT_DB=f"sqlite:///{db}")


def _fdnet(*args, env, stdin: str | None = None, timeout: float = 60):
    return subprocess.run([sys.executable, "-m", "fdnet", *map(str, args)], input=stdin, capture_output=True,
                          text=True, env=env, timeout=timeout)


def test_users_add_reads_the_password_from_stdin_and_serve_answers_on_loopback(runs_dir, tmp_path):
    db = tmp_path / "audit.sqlite"
    env = _env(db)
    r = _fdnet("users", "add", "ana", "--role", "prosecutor", env=env, stdin=PASSWORD + "\n")
    assert r.returncode == 0, r.stderr
    assert PASSWORD not in r.stdout + r.stderr
    r = _fdnet("users", "add", "bob", "--role", "sheriff", env=env, stdin=PASSWORD + "\n")
    assert r.returncode == 2 and "role" in r.stderr and "Traceback" not in r.stderr
    r = _fdnet("users", "list", env=env)
    assert r.returncode == 0 and "ana\tprosecutor\tactive" in r.stdout
    log = tmp_path / "serve.log"
    with serving(runs_dir, env=env, log_path=log) as served:
        port, proc = served.port, served.process
        with httpx.Client(base_url=served.base) as c:
            assert c.get("/api/runs").status_code == 401
            r = c.post("/login", data={"username": "ana", "password": PASSWORD})
            assert r.status_code == 303 and "fdnet_session" in r.headers["set-cookie"]
            runs = c.get("/api/runs").json()["runs"]
            assert {x["run_id"] for x in runs} == {"r1", "r2"}
        # bound to loopback only (the listening socket's local address)
        with open("/proc/net/tcp") as f:
            local = [line.split()[1] for line in f.readlines()[1:] if line.split()[3] == "0A"]   # LISTEN
        mine = [a for a in local if int(a.split(":")[1], 16) == port]
        assert mine == ["0100007F:" + f"{port:04X}"], mine      # 127.0.0.1, little-endian hex
    err = log.read_text()
    assert proc.returncode in (0, 143, -15), err
    assert "Traceback" not in err


def test_serve_refuses_a_missing_runs_folder_with_exit_2(tmp_path):
    r = _fdnet("serve", "--runs", tmp_path / "nope", env=_env(tmp_path / "a.sqlite"))
    assert r.returncode == 2 and "--runs" in r.stderr and "Traceback" not in r.stderr


def test_serve_refuses_a_port_in_use_with_exit_2(runs_dir, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = _fdnet("serve", "--runs", runs_dir, "--port", port, env=_env(tmp_path / "a.sqlite"))
    assert r.returncode == 2 and f"port {port}" in r.stderr and "Traceback" not in r.stderr
