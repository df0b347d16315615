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
