"""Moved to :mod:`fdnet.explain_cli` (it reads a run folder through :func:`fdnet.open_run`); kept for old imports."""
from ..explain_cli import *  # noqa: F401,F403
from ..explain_cli import (LIST_SCORE, component_rows, evidence_items, explain_person, headline,  # noqa: F401
                           list_lines)
