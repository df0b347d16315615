"""Faults in the write phase never leave a partial run folder (issue 9, item 6).

A real subprocess is killed (SIGKILL, SIGTERM) at random moments while it writes a run folder;
RUN_DIR must then be absent (or empty, as it was found) or complete and verifiable. A full disk,
a file-size limit and an unwritable --out are environment errors: exit 2, a clear message, nothing
partial.
"""
from __future__ import annotations

import errno
import importlib
import os
import pickle
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from helpers import write_folder

from fdnet.atomic import is_staging_folder
from fdnet.cli import main

# The child loads a computed run and writes it with every os.write slowed down, so that the write
# phase (normally milliseconds) lasts long enough to be interrupted at a random point.
CHILD = textwrap.dedent("""
    import os, pickle, sys, time
    from fdnet import atomic              # the one writer of run folders (fdnet.pipeline.write_run uses it)
    files = pickle.load(open(sys.argv[1], "rb"))
    real = os.write
    def slow(fd, data):
        time.sleep(0.01)
        return real(fd, data[:4096])      # short writes: many calls per file
    atomic.os.write = slow
    print("ready", flush=True)
    sys.stdin.readline()                  # "go": imports done, the write starts now
    try:
        atomic.write_staged(files, sys.argv[2])
    except BaseException as exc:
        print(type(exc).__name__, exc, file=sys.stderr, flush=True)
        sys.exit(getattr(exc, "exit_code", 1))
    print("done", flush=True)
""")


@pytest.fixture(scope="module")
def computed(tmp_path_factory):
    from fdnet.pipeline import compute_run
    root = tmp_path_factory.mktemp("faults")
    data = write_folder(root / "data")
    result = compute_run(data)
    pk = root / "result.pickle"
    from fdnet.pipeline import manifest_bytes
    files = {**result.outputs, "manifest.json": manifest_bytes(result.manifest)}
    pk.write_bytes(pickle.dumps(files))
    child = root / "child.py"
    child.write_text(CHILD)
    return {"root": root, "data": data, "pickle": pk, "child": child, "result": result}


def siblings(run: Path) -> list[str]:
    return sorted(p.name for p in run.parent.iterdir() if is_staging_folder(p))


def assert_absent_empty_or_complete(run: Path, expect: dict, pre_existing: bool) -> str:
    if not run.exists():
        assert not pre_existing, "a pre-existing empty RUN_DIR was removed"
        return "absent"
    names = {p.name for p in run.iterdir()}
    if not names:
        return "empty"
    assert names == set(expect) | {"manifest.json"}, f"partial run folder: {sorted(names)}"
    for name, data in expect.items():
        assert (run / name).read_bytes() == data, name
    assert main(["verify", str(run), "--no-rerun"]) == 0
    return "complete"


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_in_the_write_phase_leaves_no_partial_run(computed, tmp_path, sig):
    from fdnet.pipeline import write_run
    rng = random.Random(9 + sig)
    outcomes = []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    runs, procs = [], []
    for trial in range(6):               # start every child first
        run = tmp_path / f"run{trial}"
        if trial % 2 == 1:
            run.mkdir()
        runs.append(run)
        procs.append(subprocess.Popen([sys.executable, str(computed["child"]), str(computed["pickle"]), str(run)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True, env=env))
    for trial, (run, p) in enumerate(zip(runs, procs)):
        pre = trial % 2 == 1
        assert p.stdout.readline().strip() == "ready"
        p.stdin.write("go\n")
        p.stdin.flush()
        time.sleep(rng.uniform(0.0, 0.5))
        p.send_signal(sig)
        out, err = p.communicate(timeout=60)
        state = assert_absent_empty_or_complete(run, computed["result"].outputs, pre)
        outcomes.append(state)
        if sig == signal.SIGTERM and "done" not in out and state != "complete":
            assert p.returncode == 128 + signal.SIGTERM, err
            assert "stopped by SIGTERM" in err
            assert siblings(run) == []            # the handler removed its staging folder
        if sig == signal.SIGKILL:
            # a SIGKILLed writer's staging folder is never a run, and the next write beside it removes it
            if state != "complete":
                write_run(computed["result"], run)
            assert siblings(run) == []
    assert set(outcomes) - {"complete"}, f"no trial interrupted the write phase: {outcomes}"


def test_sigterm_during_a_real_cli_run(computed, tmp_path):
    """`fdnet run` itself: SIGTERM at any moment -> exit 143 with a message, or a complete run."""
    rng = random.Random(3)
    for trial in range(2):
        run = tmp_path / f"cli{trial}"
        p = subprocess.Popen([sys.executable, "-m", "fdnet", "run", str(computed["data"]), "--out", str(run), "-q"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(rng.uniform(0.5, 2.0))
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=60)
        if p.returncode == 0:
            assert main(["verify", str(run), "--no-rerun"]) == 0
        else:
            assert p.returncode == 143, err
            assert "stopped by SIGTERM" in err and "Traceback" not in err
            assert not run.exists() and siblings(run) == []


def test_disk_full_is_exit_2_and_leaves_nothing(computed, tmp_path, monkeypatch, capsys):
    import fdnet.atomic as atomic
    real = os.write
    calls = []

    def full(fd, data):
        calls.append(1)
        if len(calls) > 5:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, data)

    monkeypatch.setattr(atomic.os, "write", full)
    run = tmp_path / "run"
    assert main(["run", str(computed["data"]), "--out", str(run), "-q"]) == 2
    err = capsys.readouterr().err
    assert "No space left on device (ENOSPC)" in err and str(run) in err
    assert "bug in fdnet" not in err and "Traceback" not in err
    assert not run.exists() and siblings(run) == []
    calls.clear()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["run", str(computed["data"]), "--out", str(empty), "-q"]) == 2
    assert list(empty.iterdir()) == [] and siblings(empty) == []


def test_file_size_limit_in_a_real_process(computed, tmp_path):
    """RLIMIT_FSIZE makes the kernel refuse a write (EFBIG), as a quota would."""
    import resource
    run = tmp_path / "run"

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    r = subprocess.run([sys.executable, "-m", "fdnet", "run", str(computed["data"]), "--out", str(run), "-q"],
                       capture_output=True, text=True, preexec_fn=limit, timeout=120)
    assert r.returncode == 2, r.stderr
    assert "File too large (EFBIG)" in r.stderr and "Traceback" not in r.stderr
    assert not run.exists() and siblings(run) == []


def test_unwritable_or_impossible_out(computed, tmp_path, capsys):
    f = tmp_path / "a-file"
    f.write_text("x")
    assert main(["run", str(computed["data"]), "--out", str(f / "run"), "-q"]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert main(["run", str(computed["data"]), "--out", "/proc/fdnet-h3-test/run", "-q"]) == 2
    err = capsys.readouterr().err
    assert "/proc/fdnet-h3-test" in err and "Traceback" not in err and "bug in fdnet" not in err
    if os.geteuid() != 0:                      # root ignores permission bits
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            assert main(["run", str(computed["data"]), "--out", str(ro / "run"), "-q"]) == 2
            assert "not writable" in capsys.readouterr().err
        finally:
            ro.chmod(0o700)


def test_stale_staging_folder_is_ignored_and_cleaned(computed, tmp_path):
    from fdnet.pipeline import write_run
    run = tmp_path / "run"
    stale = tmp_path / ".run.fdnet-staging-999999-abcdef123456"
    stale.mkdir()
    (stale / "call_in.csv").write_text("half")
    assert main(["verify", str(stale)]) == 2           # never taken for a run
    write_run(computed["result"], run)
    assert not stale.exists() and (run / "manifest.json").is_file()


def test_error_messages_never_echo_huge_input(computed, tmp_path, monkeypatch, capsys):
    """An expected error whose text carries a huge value is cut to one readable paragraph."""
    from fdnet.errors import InputError
    run_module = sys.modules[importlib.import_module("fdnet.run").__name__]   # fdnet.run: the callable module

    def boom(*a, **k):
        raise InputError("bad value " + "x" * 500_000, file="incidents.csv", line=2, column="date")

    monkeypatch.setattr(run_module, "run", boom)
    assert main(["run", str(computed["data"]), "--out", str(tmp_path / "r"), "-q"]) == 2
    err = capsys.readouterr().err
    assert len(err) < 3000 and "incidents.csv, line 2, column 'date'" in err and "more characters" in err
    assert "Traceback" not in err and not (tmp_path / "r").exists()


def test_sigterm_that_surfaces_as_another_error_is_still_sigterm(computed, tmp_path, monkeypatch, capsys):
    """SIGTERM inside a C extension's import comes out of the import as ``ImportError: initialization
    failed``, not as the handler's exception: the CLI still exits 143 with the SIGTERM message, not
    "a bug in fdnet" (seen once in test_sigterm_during_a_real_cli_run on a loaded machine)."""
    from fdnet.errors import Interrupted
    run_module = sys.modules[importlib.import_module("fdnet.run").__name__]

    def import_interrupted(*a, **k):
        try:
            os.kill(os.getpid(), signal.SIGTERM)   # the CLI's handler raises Interrupted here
            time.sleep(5)
        except Interrupted:
            raise ImportError("initialization failed") from None   # what an extension module's init reports
        raise AssertionError("SIGTERM was not delivered")

    monkeypatch.setattr(run_module, "run", import_interrupted)
    out = tmp_path / "r"
    assert main(["run", str(computed["data"]), "--out", str(out), "-q"]) == 143
    err = capsys.readouterr().err
    assert "stopped by SIGTERM" in err and "bug in fdnet" not in err and "Traceback" not in err
    assert not out.exists() and siblings(out) == []
    # the next command in the same process starts clean: a real error is a real error again
    def boom(*a, **k):
        raise ImportError("a genuine import problem")
    monkeypatch.setattr(run_module, "run", boom)
    assert main(["run", str(computed["data"]), "--out", str(tmp_path / "r2"), "-q"]) == 1
    assert "bug in fdnet" in capsys.readouterr().err


@pytest.mark.parametrize("delay", [0.25, 0.5])
def test_sigterm_while_the_command_is_still_starting(computed, tmp_path, delay):
    """Before the CLI has installed its own handling (Python still importing fdnet and its libraries),
    SIGTERM exits 143 with the message, not a silent death by signal (returncode -15; seen in a fresh
    clone's CI at 0.86 s). Only the interpreter's own start (tens of milliseconds, before fdnet's first
    line runs) is left to the default disposition: nothing can have been written then."""
    run = tmp_path / "r"
    p = subprocess.Popen([sys.executable, "-m", "fdnet", "run", str(computed["data"]), "--out", str(run), "-q"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 143, (p.returncode, err)
    assert "stopped by SIGTERM" in err and "Traceback" not in err
    assert not run.exists() and siblings(run) == []


def test_a_signal_while_the_cli_imports_exits_143_without_a_traceback():
    """CI once saw SIGTERM land inside SciPy's HiGHS initialisation: the handler's SystemExit became
    ``ImportError: initialization failed`` and exit 1. The import-time handler leaves with os._exit."""
    code = ("import os, signal\n"
            "from fdnet.__main__ import _while_importing\n"
            "signal.signal(signal.SIGTERM, _while_importing)\n"
            "os.kill(os.getpid(), signal.SIGTERM)\n"
            "import time; time.sleep(5)\n"
            "print('not reached')\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 143
    assert p.stderr == "fdnet: error: stopped by SIGTERM; nothing partial was left behind\n"
    assert "not reached" not in p.stdout
