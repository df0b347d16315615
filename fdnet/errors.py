"""Errors that reach the user as a clear message, never as a traceback."""
from __future__ import annotations


class FdnetError(Exception):
    """Base class of fdnet's expected errors (exit code 2 on the CLI)."""

    exit_code = 2


class InputError(FdnetError):
    """A problem with an input file or a command-line argument.

    Carries the file, line and column where it applies, so the CLI can name
    them in its one-paragraph message.

    >>> str(InputError("date 'x' is not a date", file="incidents.csv", line=3, column="date"))
    "incidents.csv, line 3, column 'date': date 'x' is not a date"
    """

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 column: str | None = None):
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        super().__init__(str(self))

    def __str__(self) -> str:
        where = []
        if self.file:
            where.append(str(self.file))
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.column:
            where.append(f"column '{self.column}'")
        return (", ".join(where) + ": " if where else "") + self.message


class PolicyError(FdnetError):
    """The policy file is invalid: names the key and the allowed values."""


class UsageError(FdnetError):
    """The command line asks for something that cannot be done (e.g. RUN_DIR not empty)."""


class OutputError(FdnetError, OSError):
    """The file system refused to write an output (full disk, read-only, no permission, quota).

    An environment problem, not a bug: exit 2, naming the path and the operating system's reason.
    Nothing partial is left behind (see :mod:`fdnet.atomic`). It is also an ``OSError`` (same
    ``errno`` and ``filename``), so code that caught the file system's error still catches it.

    >>> import errno, os
    >>> e = OutputError("run folder", "/runs/r1", OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
    >>> str(e)
    'cannot write the run folder /runs/r1: No space left on device (ENOSPC); nothing was written'
    >>> isinstance(e, OSError), e.errno == errno.ENOSPC, e.exit_code
    (True, True, 2)
    """

    exit_code = 2

    def __init__(self, what: str, path, exc: OSError):
        import errno as _errno
        code_no = getattr(exc, "errno", None)
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        OSError.__init__(self, code_no, reason, str(path))
        self.what, self.path = what, str(path)
        code = _errno.errorcode.get(code_no, "") if code_no is not None else ""
        self.message = (f"cannot write the {what} {self.path}: {reason}" + (f" ({code})" if code else "")
                        + "; nothing was written")

    def __str__(self) -> str:
        return self.message


class Interrupted(FdnetError):
    """The process was asked to stop (SIGTERM, SIGHUP) and cleaned up; exit 128 + the signal number.

    >>> import signal
    >>> e = Interrupted(signal.SIGTERM)
    >>> e.exit_code, str(e)
    (143, 'stopped by SIGTERM; nothing partial was left behind')
    """

    def __init__(self, signum: int):
        import signal as _signal
        self.signum = int(signum)
        self.exit_code = 128 + self.signum
        try:
            name = _signal.Signals(self.signum).name
        except ValueError:
            name = f"signal {self.signum}"
        super().__init__(f"stopped by {name}; nothing partial was left behind")
