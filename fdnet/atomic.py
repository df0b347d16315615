"""All-or-nothing writes of a set of files into one folder (the run folder, an export folder, calibrate's output).

:func:`write_staged` is the one writer of such folders. It

1. writes every file into a hidden *sibling* staging folder, ``.RUN_DIR.fdnet-staging-<pid>-<random>``,
   next to the target (same file system), flushing each file and the folder to disk;
2. completes with **one** ``rename(2)`` of the staging folder onto the target: when the target does not
   exist it appears complete; when it exists and is empty, the rename replaces it atomically (POSIX
   allows renaming a folder over an empty one; a target that gained files meanwhile makes the rename
   fail, and nothing is overwritten);
3. flushes the parent folder so the rename itself survives a power cut.

A process killed at any moment (SIGKILL included) therefore leaves the target absent, or empty as it
was found, or complete; never half-written. A staging folder left behind by a killed process is
recognised (its name, and no live process holding its lock) and removed by the next write beside it;
it is never taken for a run (its name starts with a dot and names no run folder).

SIGTERM (and SIGHUP) during the write raise :class:`fdnet.errors.Interrupted`, which removes the staging
folder; an ``OSError`` (full disk, read-only or unwritable folder, quota) becomes
:class:`fdnet.errors.OutputError`, which names the path and the operating system's reason.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = write_staged({"a.csv": b"x\\n", "manifest.json": b"{}\\n"}, d / "run")
>>> sorted(p.name for p in d.iterdir())
['run']
>>> sorted(p.name for p in (d / "run").iterdir())
['a.csv', 'manifest.json']
>>> write_staged({"../evil": b""}, d / "run2")
Traceback (most recent call last):
...
ValueError: output name '../evil' is not a plain file name
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import secrets
import shutil
import signal
import stat
import threading
from pathlib import Path

from .errors import Interrupted, OutputError, UsageError

STAGING_MARK = ".fdnet-staging-"
_STAGING_RE = re.compile(r"^\.(?P<target>.+)\.fdnet-(?:[a-z]+-)?staging-\d+-[0-9a-f]+$")


def is_plain_name(name: str) -> bool:
    """True for a plain file name: no folder part, not ``.``/``..``, no NUL, no backslash.

    >>> [is_plain_name(n) for n in ("call_in.csv", "../x", "a/b", "..", "", "a\\\\b")]
    [True, False, False, False, False, False]
    """
    return (isinstance(name, str) and name not in ("", ".", "..") and "/" not in name and "\\" not in name
            and "\x00" not in name and Path(name).name == name)


def is_staging_folder(path: str | os.PathLike) -> bool:
    """True when ``path`` is named like a staging folder of :func:`write_staged` (never a run folder).

    >>> is_staging_folder("/runs/.r1.fdnet-staging-123-ab12"), is_staging_folder("/runs/r1")
    (True, False)
    """
    return bool(_STAGING_RE.match(Path(path).name))


def _umask() -> int:
    # os.umask can only be read by setting it; done once per write, on the main path only.
    m = os.umask(0o022)
    os.umask(m)
    return m


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_file(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), mode)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.fsync(fd)
    finally:
        os.close(fd)


def clean_stale_staging(parent: str | os.PathLike, target_name: str | None = None) -> list[Path]:
    """Remove staging folders in ``parent`` left by killed writers (for ``target_name``, or all).

    A staging folder is live while its writer holds an exclusive ``flock`` on it; the lock dies with
    the process however it ends, so a folder whose lock can be taken is stale. Returns what was removed.
    """
    removed: list[Path] = []
    try:
        entries = sorted(Path(parent).iterdir())
    except OSError:
        return removed
    for p in entries:
        m = _STAGING_RE.match(p.name)
        if not m or (target_name is not None and m.group("target") != target_name):
            continue
        try:
            if not stat.S_ISDIR(p.lstat().st_mode):
                continue
            fd = os.open(p, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)   # a live writer holds it
            continue
        try:
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
        finally:
            os.close(fd)
    return removed


@contextlib.contextmanager
def signals_as_exceptions(signums=(signal.SIGTERM, signal.SIGHUP)):
    """Within the block, SIGTERM/SIGHUP raise :class:`Interrupted` (so ``finally``/``except`` clean up).

    A no-op outside the main thread (Python delivers signals to the main thread only). The previous
    handlers are restored on exit; a second signal while the first is being handled is ignored.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[int] = []

    def handler(signum, _frame):
        if fired:
            return
        fired.append(signum)
        raise Interrupted(signum)

    old = {}
    try:
        for s in signums:
            old[s] = signal.signal(s, handler)
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _os_error(exc: OSError, path: Path, what: str) -> OutputError:
    return OutputError(what, Path(exc.filename) if getattr(exc, "filename", None) else path, exc)


def write_staged(files: dict[str, bytes], out_dir: str | os.PathLike, prefix: str = STAGING_MARK,
                 what: str = "run folder") -> Path:
    """Write ``files`` (plain name -> bytes) into the new or empty folder ``out_dir``, all or nothing.

    ``prefix`` names the kind of staging folder (``".fdnet-staging-"``, ``".fdnet-export-staging-"``);
    ``what`` names the target in error messages. Raises :class:`UsageError` when ``out_dir`` exists and
    is not an empty folder, :class:`OutputError` when the file system refuses (exit 2 on the CLI).
    """
    for name in files:
        if not is_plain_name(name):
            raise ValueError(f"output name {name!r} is not a plain file name")
    out_dir = Path(os.path.abspath(os.fspath(out_dir)))
    if out_dir.is_symlink() and out_dir.is_dir():
        out_dir = Path(os.path.realpath(out_dir))
    parent = out_dir.parent
    kind = re.sub(r"[^a-z-]", "", prefix.strip(".").lower()) or "fdnet-staging-"
    if not kind.endswith("-"):
        kind += "-"
    if not kind.startswith("fdnet-"):
        kind = "fdnet-" + kind
    made_parents: list[Path] = []
    stage: Path | None = None
    lock_fd: int | None = None
    done = False
    with signals_as_exceptions():
        try:
            if out_dir.exists() and not out_dir.is_dir():
                raise UsageError(f"{out_dir} exists and is not a folder; the {what} must be new or empty")
            if out_dir.is_dir() and any(out_dir.iterdir()):
                raise UsageError(f"{out_dir} is not empty; the {what} must be new or empty "
                                 "(fdnet never overwrites earlier results)")
            p = parent
            while not p.exists():
                made_parents.append(p)
                p = p.parent
            parent.mkdir(parents=True, exist_ok=True)
            clean_stale_staging(parent, out_dir.name)
            mode = (out_dir.stat().st_mode & 0o7777) if out_dir.is_dir() else (0o777 & ~_umask())
            stage = parent / f".{out_dir.name}.{kind}{os.getpid()}-{secrets.token_hex(6)}"
            os.mkdir(stage, 0o700)
            lock_fd = os.open(stage, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            file_mode = 0o666 & ~_umask()
            last = [n for n in ("manifest.json", "manifest.sig") if n in files]
            for name in sorted(n for n in files if n not in last) + last:   # the manifest last
                _write_file(stage / name, files[name], file_mode)
            os.chmod(stage, mode)
            _fsync_dir(stage)
            try:
                os.rename(stage, out_dir)   # the one step that makes the folder appear, complete
            except OSError as exc:
                if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                    raise UsageError(f"{out_dir} gained files while fdnet was writing; the {what} must be "
                                     "new or empty (nothing was overwritten)") from None
                raise
            done = True
            stage = None
            _fsync_dir(parent)
        except OSError as exc:
            if done:   # only the final flush of the parent failed: the folder is complete
                return out_dir
            raise _os_error(exc, out_dir, what) from None
        finally:
            if lock_fd is not None:
                os.close(lock_fd)
            if not done:
                if stage is not None:
                    shutil.rmtree(stage, ignore_errors=True)
                for d in made_parents:   # innermost first
                    with contextlib.suppress(OSError):
                        d.rmdir()
    return out_dir
