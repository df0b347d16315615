"""CLI commands of the audit stage: ``fdnet audit verify|log``, ``fdnet review``, ``fdnet retention report``."""
from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the fdnet CLI (filled in by the audit-log work)."""
