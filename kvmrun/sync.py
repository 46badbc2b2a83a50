"""The thread primitives kvmrun's runtime uses, on `_thread` as threading's own are, without
importing threading: its import pulls in functools and collections, ~5 ms of every `kvmrun boot`.

Lock and RLock are _thread's (threading.Lock and threading.RLock are these same types). Condition and
Event keep threading's algorithm: each waiter sleeps on a lock of its own that a notify releases,
and an RLock is released however deep it is held while waiting. Thread runs a function on a new
daemon thread (every kvmrun thread is one: none may keep a process alive), with join, is_alive and
ident. tests/test_sync.py holds them to threading's behaviour."""
from __future__ import annotations

import _thread

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Any, Callable, List, Optional

Lock = _thread.allocate_lock
RLock = _thread.RLock
get_ident = _thread.get_ident


class Condition:
    """threading.Condition over a Lock or an RLock: wait, notify_all, and `with`."""

    def __init__(self, lock=None):
        self._lock = RLock() if lock is None else lock
        self._waiters: List[Any] = []

    def __enter__(self):
        return self._lock.__enter__()

    def __exit__(self, *exc_info):
        return self._lock.__exit__(*exc_info)

    def _release_save(self):
        if hasattr(self._lock, "_release_save"):
            return self._lock._release_save()      # an RLock: released entirely, its depth kept
        self._lock.release()
        return None

    def _acquire_restore(self, saved) -> None:
        if hasattr(self._lock, "_acquire_restore"):
            self._lock._acquire_restore(saved)
        else:
            self._lock.acquire()

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Release the lock until notified or `timeout` seconds pass (True when notified); the lock
        is held again on return. The caller must hold it."""
        waiter = _thread.allocate_lock()
        waiter.acquire()
        self._waiters.append(waiter)
        saved = self._release_save()
        notified = False
        try:
            notified = waiter.acquire(True, -1 if timeout is None else max(timeout, 0.0))
            return notified
        finally:
            self._acquire_restore(saved)
            if not notified:
                try:
                    self._waiters.remove(waiter)
                except ValueError:        # notified between the timeout and this
                    pass

    def notify_all(self) -> None:
        """Wake every thread waiting. The caller must hold the lock."""
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.release()


class Event:
    """threading.Event: set, clear, is_set, wait."""

    def __init__(self):
        self._cond = Condition(Lock())
        self._flag = False

    def is_set(self) -> bool:
        return self._flag

    def set(self) -> None:
        with self._cond:
            self._flag = True
            self._cond.notify_all()

    def clear(self) -> None:
        with self._cond:
            self._flag = False

    def wait(self, timeout: Optional[float] = None) -> bool:
        with self._cond:
            if not self._flag:
                self._cond.wait(timeout)
            return self._flag


class Thread:
    """A function on a daemon thread of its own: start, join, is_alive, ident (None until started)."""

    def __init__(self, target: Callable[[], Any], name: str = ""):
        self._target = target
        self.name = name
        self.ident: Optional[int] = None
        self._running = Lock()            # held from start until the function has returned

    def start(self) -> None:
        """RuntimeError ("can't start new thread") where the host has no more, as threading's."""
        if self.ident is not None:
            raise RuntimeError("threads can only be started once")
        self._running.acquire()
        try:
            self.ident = _thread.start_new_thread(self._main, ())
        except BaseException:
            self._running.release()
            raise

    def _main(self) -> None:
        try:
            self._target()
        finally:
            self._running.release()

    def is_alive(self) -> bool:
        return self.ident is not None and self._running.locked()

    def join(self, timeout: Optional[float] = None) -> None:
        if self.ident is None:
            raise RuntimeError("cannot join a thread before it is started")
        if self._running.acquire(True, -1 if timeout is None else max(timeout, 0.0)):
            self._running.release()
