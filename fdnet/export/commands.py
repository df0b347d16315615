"""CLI command ``fdnet export``."""
from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the fdnet CLI (filled in by the export work)."""
