"""Work in a background thread for the stages that share the run's two cores (betweenness beside the other
analytics, the second half of a projection): the work runs in the Cython core or a C library with the GIL
released, and the thread that waits for it gets its result or its exception.

>>> Background(divmod, 7, 2).result()
(3, 1)
>>> Background(int, "x").result()
Traceback (most recent call last):
...
ValueError: invalid literal for int() with base 10: 'x'
"""
from __future__ import annotations

import threading


class Background:
    """``fn(*args, **kwargs)`` in a daemon thread; :meth:`result` joins it and returns or re-raises.

    A daemon thread, not a ``concurrent.futures`` pool, so that an interrupted
    run (Ctrl-C, SIGTERM) exits at once instead of waiting for the work at
    interpreter exit.
    """

    def __init__(self, fn, *args, name: str | None = None, **kwargs):
        self._value = self._error = None

        def work():
            try:
                self._value = fn(*args, **kwargs)
            except BaseException as e:       # handed to the joining thread
                self._error = e
        self._thread = threading.Thread(target=work, name=name or f"fdnet-{getattr(fn, '__name__', 'job')}",
                                        daemon=True)
        self._thread.start()

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value
