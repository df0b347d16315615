"""fdnet: focused-deterrence network engine.

Turns police incident records into co-offending and victimization networks,
groups, exposure, a contagion model and three auditable lists. The command
line is ``fdnet`` (see docs/cli.md); notebooks use :func:`fdnet.run` (one call:
a :class:`~fdnet.run.Run` with every table, nothing written), :meth:`Run.write`
and :func:`open_run` (a finished run folder, checked against its manifest);
:func:`study` stops at the scores.
"""
__version__ = "0.7.1"

__all__ = ["__version__", "run", "Run", "open_run", "RunFolder", "study", "Study", "compute_run",
           "load_records", "Policy"]


def __getattr__(name):  # lazy imports keep `import fdnet` and the CLI start fast
    if name in ("run", "Run"):
        import importlib
        mod = importlib.import_module(".run", __name__)   # the module is callable: fdnet.run(data_dir)
        return mod if name == "run" else mod.Run
    if name in ("open_run", "RunFolder"):
        from . import runfolder
        return getattr(runfolder, name)
    if name in ("study", "Study"):
        from . import api
        return getattr(api, name)
    if name == "compute_run":
        from . import pipeline
        return pipeline.compute_run
    if name == "load_records":
        from .records import load_records
        return load_records
    if name == "Policy":
        from .policy import Policy
        return Policy
    raise AttributeError(name)
