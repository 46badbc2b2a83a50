"""The host loop: one selectors loop on the caller's thread while the vCPUs run.

It owns the timeout (time the machine spent paused on request does not count), readable file
descriptors (stdin for the guest; later a debugger's socket) and periodic work (showing output that
waits, draining the coalesced ring, halt detection under the in-kernel irqchip). The machine wakes it
through an eventfd when the run ends or a vCPU pauses; signals wake it by interrupting select().
"""
import os
import selectors
import time
from typing import Callable, List, Optional

from ..outcome import Outcome


class Periodic:
    def __init__(self, interval: float, work: Callable[[], Optional[float]]):
        self.interval = interval
        self.work = work                  # may return the next interval (a back-off), or None to keep it
        self.due = time.monotonic() + interval


class HostLoop:
    def __init__(self, machine):
        self.machine = machine
        # select(2), not epoll: it sleeps with microsecond precision, where epoll rounds up to whole
        # milliseconds; halt detection's first checks come well within one. Few descriptors here.
        self._selector = selectors.SelectSelector()
        self._periodic: List[Periodic] = []
        self._selector.register(machine.wakeup, selectors.EVENT_READ, self._drain_wakeup)

    def every(self, interval: float, work: Callable[[], Optional[float]]) -> None:
        self._periodic.append(Periodic(interval, work))

    def watch(self, fd: int, on_readable: Callable[[], None]) -> None:
        self._selector.register(fd, selectors.EVENT_READ, on_readable)

    def unwatch(self, fd: int) -> None:
        try:
            self._selector.unregister(fd)
        except (KeyError, ValueError):
            pass

    def close(self) -> None:
        self._selector.close()

    def run(self, deadline: Optional[float]) -> None:
        """Until the machine has an outcome; a `deadline` (time.monotonic()) that passes, later by
        the time spent paused, ends it with a timeout."""
        machine = self.machine
        while not machine.done:
            now = time.monotonic()
            wait = 0.05
            if deadline is not None:
                left = deadline + machine.paused_seconds - now
                if left <= 0 and not machine.paused_on_request:
                    machine.finish(Outcome.timeout())
                    break
                wait = max(0.0, min(wait, left))
            for task in self._periodic:
                wait = max(0.0, min(wait, task.due - now))
            for key, _ in self._selector.select(wait):
                key.data()
            now = time.monotonic()
            for task in self._periodic:
                if now >= task.due and not machine.done:
                    interval = task.work()
                    if interval is not None:
                        task.interval = interval
                    task.due = now + task.interval

    def _drain_wakeup(self) -> None:
        try:
            os.eventfd_read(self.machine.wakeup)
        except (BlockingIOError, OSError):
            pass
