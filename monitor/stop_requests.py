"""SIGINT and SIGTERM as one request to stop, so shutdown runs in order and in bounded time.

Python turns SIGINT into :class:`KeyboardInterrupt` but lets SIGTERM kill
the process at once, skipping every ``finally``: children are orphaned.
And one stop often arrives as several signals: a terminal sends Ctrl-C to
the whole foreground group, ``uv run`` forwards what it gets, ``timeout``
signals its group. :class:`StopRequests` makes the first SIGINT or SIGTERM
raise :class:`StopRequested` and then lets the shutdown finish: signals
within ``repeat_window`` seconds of the first are the same request, a later
one sets :attr:`StopRequests.hurry` ("stop now": kill what is still
stopping).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from types import FrameType, TracebackType

#: Seconds after the first signal during which further ones repeat it.
REPEAT_WINDOW = 1.0


class StopRequested(KeyboardInterrupt):
    """Raised in the main thread by the first SIGINT or SIGTERM.

    A :class:`KeyboardInterrupt`, so library code catching ``Exception``
    does not swallow it.
    """


class StopRequests:
    """Handle SIGINT and SIGTERM while the ``with`` block runs.

    Parameters
    ----------
    repeat_window
        Signals this many seconds after the first one are taken as the
        same request; later ones set :attr:`hurry`.
    clock
        Monotonic seconds (a parameter for tests).

    Examples
    --------
    >>> import os
    >>> with StopRequests() as stop:
    ...     try:
    ...         os.kill(os.getpid(), signal.SIGTERM)
    ...     except StopRequested as request:
    ...         print(request)
    ...     os.kill(os.getpid(), signal.SIGINT)  # a repeat: nothing raised
    ...     stop.hurry.is_set()
    SIGTERM
    False
    """

    def __init__(
        self, repeat_window: float = REPEAT_WINDOW, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.repeat_window = repeat_window
        self.clock = clock
        self.hurry = threading.Event()
        self.first_at: float | None = None
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        """Whether a stop was requested."""
        return self.first_at is not None

    def handle(self, signum: int, frame: FrameType | None = None) -> None:
        """The signal handler: raise on the first signal, then only note repeats."""
        now = self.clock()
        if self.first_at is None:
            self.first_at = now
            raise StopRequested(signal.Signals(signum).name)
        if now - self.first_at >= self.repeat_window:
            self.hurry.set()

    def __enter__(self) -> StopRequests:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self.handle)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous.clear()
