"""Exports of a finished run folder: GraphML, GEXF, XLSX, i2 entity/link CSV, pseudonymised copies.

``fdnet export RUN_DIR --out EXPORT_DIR`` (:mod:`fdnet.export.commands`) and
:func:`export_run` (:mod:`fdnet.export.core`); formats and key handling in
docs/exports.md.
"""
from __future__ import annotations

__all__ = ["export_run", "FORMATS", "new_key"]


def __getattr__(name):  # lazy: the CLI imports this package at start-up
    if name in ("export_run", "FORMATS"):
        from . import core
        return getattr(core, name)
    if name == "new_key":
        from .pseudonym import new_key
        return new_key
    raise AttributeError(name)
