"""The host loop: one select(2) loop on the caller's thread while the vCPUs run.

It owns the timeout (time the machine spent paused on request does not count), readable file
descriptors (stdin for the guest; later a debugger's socket), periodic work (showing output that
waits, draining the coalesced ring, halt detection under the in-kernel irqchip) and signals that ask
for work rather than end the run (a terminal's resize). The machine wakes it through an eventfd when
the run ends or a vCPU pauses; signals wake it through the same eventfd.
"""
from __future__ import annotations

import os
import select
import time

from .. import os_signal as signal
from ..outcome import Outcome

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Callable, Dict, List, Optional

# select(2) takes no descriptor at or above FD_SETSIZE; a process with many vCPUs has such ones.
_SELECT_LIMIT = 1024


class Periodic:
    def __init__(self, interval: float, work: Callable[[], Optional[float]]):
        self.interval = interval
        self.work = work                  # may return the next interval (a back-off), or None to keep it
        self.due = time.monotonic() + interval


class HostLoop:
    def __init__(self, machine):
        self.machine = machine
        # select(2) while it can, not epoll or poll: it sleeps with microsecond precision, where
        # those round up to whole milliseconds; halt detection's first checks come well within one.
        # Called directly, not through selectors, whose import is ~1 ms of every `kvmrun boot`.
        self._watched: Dict[int, Callable[[], None]] = {}
        self._poller: Optional[select.poll] = None     # poll(2), once a descriptor is past select's limit
        self._periodic: List[Periodic] = []
        self._on_signal: Dict[int, Callable[[], None]] = {}
        self._arrived: List[int] = []     # signals whose work is still to run
        self._saved_handlers: Dict[int, object] = {}
        self._wakeup_work: List[Callable[[], None]] = []
        self.watch(machine.wakeup, self._drain_wakeup)

    def every(self, interval: float, work: Callable[[], Optional[float]]) -> None:
        self._periodic.append(Periodic(interval, work))

    def watch(self, fd: int, on_readable: Callable[[], None]) -> None:
        self._watched[fd] = on_readable
        if self._poller is not None:
            self._poller.register(fd, select.POLLIN)
        elif fd >= _SELECT_LIMIT:
            self._use_poll()

    def unwatch(self, fd: int) -> None:
        if self._watched.pop(fd, None) is not None and self._poller is not None:
            try:
                self._poller.unregister(fd)
            except (KeyError, ValueError):
                pass

    def on_wakeup(self, work: Callable[[], None]) -> None:
        """Run `work` each time the machine wakes the loop (a vCPU paused for the debugger)."""
        self._wakeup_work.append(work)

    def on_signal(self, signum: int, work: Callable[[], None]) -> None:
        """Run `work` in the loop after `signum` arrives. The handler is there for run() only, with
        the one before put back after (and still called meanwhile); only on the main thread, where
        Python sets handlers."""
        self._on_signal[signum] = work

    def close(self) -> None:
        self._watched.clear()
        self._poller = None

    def run(self, deadline: Optional[float]) -> None:
        """Until the machine has an outcome; a `deadline` (time.monotonic()) that passes, later by
        the time spent paused, ends it with a timeout."""
        self._install_handlers()
        try:
            self._loop(deadline)
        finally:
            self._restore_handlers()

    def _loop(self, deadline: Optional[float]) -> None:
        machine = self.machine
        while not machine.done:
            now = time.monotonic()
            wait = 0.05
            if deadline is not None:
                left = deadline + machine.paused_seconds - now
                if left <= 0 and not machine.paused_on_request:
                    machine.finish(Outcome.timeout())
                    break
                if not machine.paused_on_request:     # held by a debugger: the deadline waits too
                    wait = max(0.0, min(wait, left))
            for task in self._periodic:
                wait = max(0.0, min(wait, task.due - now))
            for fd in self._readable(wait):
                on_readable = self._watched.get(fd)      # None: unwatched by the one before
                if on_readable is not None:
                    on_readable()
            if self._arrived:
                self._run_signal_work()
            now = time.monotonic()
            for task in self._periodic:
                if now >= task.due and not machine.done:
                    interval = task.work()
                    if interval is not None:
                        task.interval = interval
                    task.due = now + task.interval

    def _readable(self, wait: float) -> List[int]:
        """The watched descriptors readable (or closed, or in error) within `wait` seconds."""
        if self._poller is None:
            return select.select(list(self._watched), [], [], wait)[0]
        return [fd for fd, _ in self._poller.poll(int(-(-wait * 1000 // 1)))]   # milliseconds, rounded up

    def _use_poll(self) -> None:
        """From now on poll(2), which takes any descriptor, at the price of millisecond timeouts."""
        self._poller = select.poll()
        for fd in self._watched:
            self._poller.register(fd, select.POLLIN)

    def _drain_wakeup(self) -> None:
        try:
            os.eventfd_read(self.machine.wakeup)
        except (BlockingIOError, OSError):
            pass
        for work in self._wakeup_work:
            work()

    # --- signals -------------------------------------------------------------------------------------

    def _install_handlers(self) -> None:
        for signum in self._on_signal:
            try:
                self._saved_handlers[signum] = signal.signal(signum, self._handle)
            except ValueError:            # not the main thread: Python sets handlers there only
                return

    def _restore_handlers(self) -> None:
        for signum, handler in self._saved_handlers.items():
            # None: a handler set outside Python, which cannot be put back; the default then.
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)  # type: ignore[arg-type]
        self._saved_handlers.clear()

    def _handle(self, signum: int, frame) -> None:
        """Python runs it on the main thread, between bytecodes: it only records, and wakes the loop
        from its sleep (a select() interrupted by a signal is resumed)."""
        if signum not in self._arrived:
            self._arrived.append(signum)
        try:
            os.eventfd_write(self.machine.wakeup, 1)
        except OSError:
            pass
        before = self._saved_handlers.get(signum)
        if callable(before):
            before(signum, frame)

    def _run_signal_work(self) -> None:
        while self._arrived:
            self._on_signal[self._arrived.pop(0)]()
