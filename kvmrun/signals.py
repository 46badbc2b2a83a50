"""Signals that end a run: SIGINT, SIGTERM, SIGHUP and SIGQUIT end `kvmrun boot` with 128+N at any
point, set-up included, and every way out restores the terminal.

Python runs signal handlers in the main thread, between bytecodes. What a signal does depends on
where the run is, which the boot sets through `SignalRoute.target`:
- setting up (the route has no target): the handler raises Interrupted once, which unwinds set-up,
  closing what was opened, and boot() turns it into Outcome.interrupted;
- running, and writing the last output: the target is the machine's, which stops the vCPUs;
- afterwards (tearing down, restoring the terminal): signals are only recorded.
The Python API leaves the caller's handlers alone: there a KeyboardInterrupt is the caller's.
"""
from __future__ import annotations

import contextlib
import signal
import threading

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Callable, Iterator, Optional

ENDING_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


class Interrupted(BaseException):
    """A signal arrived while the run was being set up. A BaseException, like KeyboardInterrupt, so
    that no `except Exception` on the way swallows it."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _record_only(signum: int) -> None:
    pass


class SignalRoute:
    def __init__(self):
        self.signum: Optional[int] = None     # the first ending signal that arrived
        self.target: Optional[Callable[[int], None]] = None

    def handle(self, signum: int, frame) -> None:
        first = self.signum is None
        if first:
            self.signum = signum
        target = self.target
        if target is not None:
            target(signum)
        elif first:
            raise Interrupted(signum)

    def record_only(self) -> None:
        """From now on signals are only recorded: the run is over."""
        self.target = _record_only


_active: Optional[SignalRoute] = None


@contextlib.contextmanager
def ending_signals() -> Iterator[Optional[SignalRoute]]:
    """Handle the ending signals for the duration, or yield the route already handling them (the
    CLI installs it around raw mode, boot() again around the run). None outside the main thread,
    where Python cannot set handlers."""
    global _active
    if _active is not None:
        yield _active
        return
    if threading.current_thread() is not threading.main_thread():
        yield None
        return
    route = SignalRoute()
    saved = {}
    try:
        for signum in ENDING_SIGNALS:
            saved[signum] = signal.signal(signum, route.handle)
        _active = route
        yield route
    finally:
        _active = None
        route.record_only()
        for signum, handler in saved.items():
            signal.signal(signum, handler)
