"""Moved to :mod:`fdnet.verify` (verifying a run folder goes with the run folder); kept for old imports."""
from ..verify import *  # noqa: F401,F403
from ..verify import Check, VerifyReport, verify_run  # noqa: F401
