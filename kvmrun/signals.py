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

from . import os_signal as signal

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Callable, Dict, Optional

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


class ending_signals:
    """A context that handles the ending signals for its duration and gives their route; or gives
    the route already handling them (the CLI installs it around raw mode, boot() again around the
    run). None outside the main thread, where Python cannot set handlers. (A class, not a
    contextlib.contextmanager: `kvmrun boot` does not import contextlib, cleanup.py.)"""

    def __init__(self):
        self._route: Optional[SignalRoute] = None     # set when this one installed the handlers
        self._saved: Dict[int, object] = {}

    def __enter__(self) -> Optional[SignalRoute]:
        global _active
        if _active is not None:
            return _active
        route = self._route = SignalRoute()
        try:
            for signum in ENDING_SIGNALS:
                self._saved[signum] = signal.signal(signum, route.handle)
            _active = route
            return route
        except ValueError:                # not the main thread: Python sets handlers there only
            self._restore()
            return None
        except BaseException:             # a signal while installing: the ones installed go back
            self._restore()
            raise

    def __exit__(self, *exc_info) -> None:
        if self._route is not None:
            self._restore()

    def _restore(self) -> None:
        global _active
        _active = None
        assert self._route is not None
        self._route.record_only()
        for signum, handler in self._saved.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        self._saved.clear()
        self._route = None
