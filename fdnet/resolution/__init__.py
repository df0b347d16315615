"""Entity resolution across agencies with Splink (CONTRACT.md section 5; docs/resolution.md).

Off by default (policy ``resolution.enabled``). When on, :func:`resolve` links the persons table's
records into entities before the networks are built; every output then names entities.
"""
from .resolve import Resolved, apply, resolve

__all__ = ["Resolved", "apply", "resolve"]
