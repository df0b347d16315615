"""The command line's consoles, its progress bar and its one table printer (shared by fdnet.cli and the
commands that live beside their stage: audit, export, evaluate, workspace).

A terminal gets rich's layout; a file or pipe gets lines that are never wrapped (docs/cli.md), and
tables as tab-separated rows.
"""
from __future__ import annotations

import sys

from rich.console import Console
from rich.table import Table
from rich.text import Text


def make_console(stderr: bool = False) -> Console:
    """A terminal gets rich's layout; a file or pipe gets lines that are never wrapped (docs/cli.md)."""
    stream = sys.stderr if stderr else sys.stdout
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    if tty:
        return Console(stderr=stderr)
    return Console(stderr=stderr, width=100_000, soft_wrap=True, highlight=False)


out = make_console()
err = make_console(stderr=True)


def plain_cell(cell) -> str:
    """A table cell as one line of plain text.

    >>> plain_cell("[b]a\\tb[/b]")
    'a b'
    """
    s = cell.plain if isinstance(cell, Text) else Text.from_markup(cell).plain if isinstance(cell, str) else str(cell)
    return s.replace("\t", " ").replace("\r", " ").replace("\n", " ")


def print_table(t: Table, console: Console | None = None) -> None:
    """Print a table: boxed on a terminal; when standard output is a file or a pipe, the title on its
    own line, then a header row and one row per line, tab-separated, never wrapped."""
    console = console or out
    if console.is_terminal:
        console.print(t)
        return
    lines = []
    if t.title:
        lines.append(plain_cell(t.title))
    cols = t.columns
    lines.append("\t".join(plain_cell(c.header) for c in cols))
    cells = [list(c.cells) for c in cols]
    for i in range(t.row_count):
        lines.append("\t".join(plain_cell(c[i]) if i < len(c) else "" for c in cells))
    console.file.write("\n".join(lines) + "\n")
    console.file.flush()


def progress(enabled: bool, total: int):
    """A context manager for a command's stages: called with each stage's name as it starts, it shows
    the name and ``done/total`` on standard error (nothing when not ``enabled``, or once it is done)."""
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    class _P:
        def __enter__(self):
            self.p = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                              TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                              console=err, disable=not enabled, transient=True)
            self.p.__enter__()
            self.task = self.p.add_task("starting", total=total)
            self.n = 0
            return self

        def __call__(self, name: str):
            if self.n:
                self.p.advance(self.task)
            self.n += 1
            self.p.update(self.task, description=name)

        def __exit__(self, *exc):
            if exc[0] is None:
                self.p.update(self.task, completed=total, description="done")
            self.p.__exit__(*exc)
    return _P()
