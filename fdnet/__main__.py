"""``python -m fdnet`` and the ``fdnet`` command.

SIGTERM and SIGHUP are handled from the first line: until the CLI installs its own handling
(:func:`fdnet.atomic.signals_as_exceptions`, which cleans up a run being written), nothing has been
written, so the process says so and exits 128 + the signal number; once the command has finished,
a late signal is ignored so that the command's own exit code stands.

While the CLI's modules are being imported the process leaves with ``os._exit``: an exception raised
from a signal handler while a compiled extension initialises (SciPy's HiGHS module, for one) is turned
by that extension into ``ImportError: initialization failed``, so ``SystemExit`` would surface as a
traceback and exit 1. Nothing is open for writing during the imports, so leaving at once is safe.
"""
import os
import signal
import sys

_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _message(signum) -> str:
    return f"fdnet: error: stopped by {signal.Signals(signum).name}; nothing partial was left behind\n"


def _while_importing(signum, _frame):
    try:
        sys.stderr.write(_message(signum))
        sys.stderr.flush()
    finally:
        os._exit(128 + signum)


def _before_start(signum, _frame):
    sys.stderr.write(_message(signum))
    raise SystemExit(128 + signum)


def main() -> int:
    for s in _SIGNALS:
        signal.signal(s, _while_importing)
    from .cli import main as cli_main
    for s in _SIGNALS:
        signal.signal(s, _before_start)
    rc = cli_main()
    for s in _SIGNALS:   # finished: the command's exit code stands
        signal.signal(s, signal.SIG_IGN)
    return rc


if __name__ == "__main__":
    sys.exit(main())
