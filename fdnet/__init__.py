"""fdnet: focused-deterrence network engine.

Turns police incident records into co-offending and victimization networks,
groups, exposure, a contagion model and three auditable lists. The command
line is ``fdnet`` (see docs/cli.md); notebooks use :func:`study` and
:func:`compute_run`.
"""
__version__ = "0.4.0"

__all__ = ["__version__", "study", "Study", "compute_run", "run", "load_records", "Policy"]


def __getattr__(name):  # lazy imports keep `import fdnet` and the CLI start fast
    if name in ("study", "Study"):
        from . import api
        return getattr(api, name)
    if name in ("compute_run", "run"):
        from . import pipeline
        return getattr(pipeline, name)
    if name == "load_records":
        from .records import load_records
        return load_records
    if name == "Policy":
        from .scoring.policy import Policy
        return Policy
    raise AttributeError(name)
