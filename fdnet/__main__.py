"""``python -m fdnet`` and the ``fdnet`` command.

SIGTERM and SIGHUP are handled from the first line: until the CLI installs its own handling
(:func:`fdnet.atomic.signals_as_exceptions`, which cleans up a run being written), nothing has been
written, so the process says so and exits 128 + the signal number; once the command has finished,
a late signal is ignored so that the command's own exit code stands.
"""
import signal
import sys

_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _before_start(signum, _frame):
    sys.stderr.write(f"fdnet: error: stopped by {signal.Signals(signum).name}; nothing partial was left behind\n")
    raise SystemExit(128 + signum)


def main() -> int:
    for s in _SIGNALS:
        signal.signal(s, _before_start)
    from .cli import main as cli_main
    rc = cli_main()
    for s in _SIGNALS:   # finished: the command's exit code stands
        signal.signal(s, signal.SIG_IGN)
    return rc


if __name__ == "__main__":
    sys.exit(main())
