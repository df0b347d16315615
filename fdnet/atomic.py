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
import hashlib
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


#: signals received inside :func:`signals_as_exceptions` since the CLI started (see there)
RECEIVED: list[int] = []


@contextlib.contextmanager
def signals_as_exceptions(signums=(signal.SIGTERM, signal.SIGHUP)):
    """Within the block, SIGTERM/SIGHUP raise :class:`Interrupted` (so ``finally``/``except`` clean up).

    A no-op outside the main thread (Python delivers signals to the main thread only). The previous
    handlers are restored on exit; a second signal while the first is being handled is ignored.
    Every signal received is also appended to :data:`RECEIVED` (shared by nested blocks), so that a
    caller can tell an error that the signal caused (an exception raised inside a C extension's
    import comes out as ``ImportError: initialization failed``) from a real one.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[int] = []

    def handler(signum, _frame):
        if fired:
            return
        fired.append(signum)
        RECEIVED.append(signum)
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


class StagedFolder:
    """A folder written file by file, then made to appear complete in one rename (the streaming writer).

    Use as a context manager around :meth:`write`: each file is written (and flushed to disk) into the
    hidden staging folder as soon as it is produced, and its SHA-256 and size are returned from the very
    bytes written, so a caller never holds every file's bytes at once. Leaving the block normally renames
    the staging folder onto ``out_dir`` (see the module docstring); leaving it by an exception, SIGTERM
    or SIGHUP removes the staging folder and leaves ``out_dir`` as it was found.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with StagedFolder(d / "run") as st:
    ...     meta = st.write("a.csv", b"x\\n")
    >>> meta["bytes"], sorted(p.name for p in (d / "run").iterdir())
    (2, ['a.csv'])
    """

    def __init__(self, out_dir: str | os.PathLike, prefix: str = STAGING_MARK, what: str = "run folder"):
        out_dir = Path(os.path.abspath(os.fspath(out_dir)))
        if out_dir.is_symlink() and out_dir.is_dir():
            out_dir = Path(os.path.realpath(out_dir))
        self.out_dir, self.what = out_dir, what
        kind = re.sub(r"[^a-z-]", "", prefix.strip(".").lower()) or "fdnet-staging-"
        if not kind.endswith("-"):
            kind += "-"
        if not kind.startswith("fdnet-"):
            kind = "fdnet-" + kind
        self._kind = kind
        self._made_parents: list[Path] = []
        self._stage: Path | None = None
        self._lock_fd: int | None = None
        self._signals = None
        self._file_mode = 0o644
        self._mode = 0o755
        self.written: dict[str, dict] = {}

    def __enter__(self) -> "StagedFolder":
        self._signals = signals_as_exceptions()
        self._signals.__enter__()
        try:
            self._open()
        except BaseException as exc:
            self._abort()
            self._signals.__exit__(type(exc), exc, exc.__traceback__)
            if isinstance(exc, OSError):
                raise _os_error(exc, self.out_dir, self.what) from None
            raise
        return self

    def _open(self) -> None:
        out_dir, what = self.out_dir, self.what
        parent = out_dir.parent
        if out_dir.exists() and not out_dir.is_dir():
            raise UsageError(f"{out_dir} exists and is not a folder; the {what} must be new or empty")
        if out_dir.is_dir() and any(out_dir.iterdir()):
            raise UsageError(f"{out_dir} is not empty; the {what} must be new or empty "
                             "(fdnet never overwrites earlier results)")
        p = parent
        while not p.exists():
            self._made_parents.append(p)
            p = p.parent
        parent.mkdir(parents=True, exist_ok=True)
        clean_stale_staging(parent, out_dir.name)
        self._mode = (out_dir.stat().st_mode & 0o7777) if out_dir.is_dir() else (0o777 & ~_umask())
        stage = parent / f".{out_dir.name}.{self._kind}{os.getpid()}-{secrets.token_hex(6)}"
        os.mkdir(stage, 0o700)
        self._stage = stage
        self._lock_fd = os.open(stage, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._file_mode = 0o666 & ~_umask()

    def write(self, name: str, data: bytes) -> dict:
        """Write one file into the staging folder; returns ``{"sha256", "bytes"}`` of what was written."""
        if not is_plain_name(name):
            raise ValueError(f"output name {name!r} is not a plain file name")
        if self._stage is None:
            raise RuntimeError("StagedFolder.write outside its with-block")
        if name in self.written:
            raise ValueError(f"{name} written twice")
        try:
            _write_file(self._stage / name, data, self._file_mode)
        except OSError as exc:
            raise _os_error(exc, self.out_dir, self.what) from None
        meta = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        self.written[name] = meta
        return meta

    def write_iter(self, name: str, chunks) -> dict:
        """Write one file from an iterator of byte strings, hashing as it goes; returns ``{"sha256",
        "bytes", "newlines"}``. If the iterator raises, the partial file is removed and the exception
        propagates (the caller may write the file again)."""
        if not is_plain_name(name):
            raise ValueError(f"output name {name!r} is not a plain file name")
        if self._stage is None:
            raise RuntimeError("StagedFolder.write_iter outside its with-block")
        if name in self.written:
            raise ValueError(f"{name} written twice")
        path = self._stage / name
        h, size, nl = hashlib.sha256(), 0, 0
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), self._file_mode)
        except OSError as exc:
            raise _os_error(exc, self.out_dir, self.what) from None
        ok = False
        try:
            for data in chunks:
                view = memoryview(data)
                while view:
                    n = os.write(fd, view)
                    view = view[n:]
                h.update(data)
                size += len(data)
                nl += data.count(b"\n")
            os.fsync(fd)
            ok = True
        except OSError as exc:
            raise _os_error(exc, self.out_dir, self.what) from None
        finally:
            os.close(fd)
            if not ok:
                with contextlib.suppress(OSError):
                    os.unlink(path)
        meta = {"sha256": h.hexdigest(), "bytes": size, "newlines": nl}
        self.written[name] = meta
        return meta

    def _commit(self) -> None:
        out_dir, what = self.out_dir, self.what
        os.chmod(self._stage, self._mode)
        _fsync_dir(self._stage)
        try:
            os.rename(self._stage, out_dir)   # the one step that makes the folder appear, complete
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                raise UsageError(f"{out_dir} gained files while fdnet was writing; the {what} must be "
                                 "new or empty (nothing was overwritten)") from None
            raise
        self._stage = None
        with contextlib.suppress(OSError):   # only the final flush of the parent: the folder is complete
            _fsync_dir(out_dir.parent)

    def _abort(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        if self._stage is not None:
            shutil.rmtree(self._stage, ignore_errors=True)
            self._stage = None
            for d in self._made_parents:   # innermost first
                with contextlib.suppress(OSError):
                    d.rmdir()

    def __exit__(self, et, ev, tb):
        try:
            if et is None:
                try:
                    self._commit()
                except OSError as exc:
                    raise _os_error(exc, self.out_dir, self.what) from None
        finally:
            self._abort()
            self._signals.__exit__(None, None, None)
        return False


def write_staged(files: dict[str, bytes], out_dir: str | os.PathLike, prefix: str = STAGING_MARK,
                 what: str = "run folder") -> Path:
    """Write ``files`` (plain name -> bytes) into the new or empty folder ``out_dir``, all or nothing.

    ``prefix`` names the kind of staging folder (``".fdnet-staging-"``, ``".fdnet-export-staging-"``);
    ``what`` names the target in error messages. Raises :class:`UsageError` when ``out_dir`` exists and
    is not an empty folder, :class:`OutputError` when the file system refuses (exit 2 on the CLI).
    The manifest (``manifest.json``, then ``manifest.sig``) is written last.
    """
    for name in files:
        if not is_plain_name(name):
            raise ValueError(f"output name {name!r} is not a plain file name")
    with StagedFolder(out_dir, prefix, what) as st:
        last = [n for n in ("manifest.json", "manifest.sig") if n in files]
        for name in sorted(n for n in files if n not in last) + last:   # the manifest last
            st.write(name, files[name])
    return st.out_dir
