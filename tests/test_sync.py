"""kvmrun.sync's thread primitives behave as threading's for what the runtime uses: a condition
waited on and notified (over a Lock, and over an RLock held more than once), timeouts, an event
many threads wait for, threads started, joined, and their failures to start."""
import sys
import time

import pytest

from kvmrun import sync


def _wait_for(predicate, timeout=5.0):
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.001)


@pytest.mark.parametrize("make_lock", [sync.Lock, sync.RLock])
def test_notify_all_wakes_every_waiter_and_each_holds_the_lock_again(make_lock):
    cond = sync.Condition(make_lock())
    state = {"go": False, "woken": 0, "inside": 0, "most_inside": 0}

    def waiter():
        with cond:
            while not state["go"]:
                cond.wait()
            state["inside"] += 1                     # the lock is held here: no two at once
            state["most_inside"] = max(state["most_inside"], state["inside"])
            time.sleep(0.002)
            state["inside"] -= 1
            state["woken"] += 1

    threads = [sync.Thread(waiter) for _ in range(4)]
    for thread in threads:
        thread.start()
    _wait_for(lambda: len(cond._waiters) == 4)
    with cond:
        state["go"] = True
        cond.notify_all()
    for thread in threads:
        thread.join(5)
    assert state["woken"] == 4 and state["most_inside"] == 1
    assert not any(thread.is_alive() for thread in threads)


def test_waiting_releases_an_rlock_however_deep_it_is_held():
    cond = sync.Condition(sync.RLock())
    got_in = []

    def other():
        with cond:                                   # only possible while the owner waits
            got_in.append(True)
            cond.notify_all()

    with cond:
        with cond:                                   # held twice, as a signal handler inside finish() does
            thread = sync.Thread(other)
            thread.start()
            while not got_in:
                assert cond.wait(5)
            assert cond._lock._is_owned()
    thread.join(5)
    assert got_in == [True]


def test_a_wait_times_out_unnotified_and_leaves_no_waiter_behind():
    cond = sync.Condition(sync.Lock())
    with cond:
        start = time.monotonic()
        assert cond.wait(0.05) is False
        assert time.monotonic() - start >= 0.04
        assert cond._waiters == []
        assert cond.wait(0) is False


def test_an_event_lets_every_waiter_through_once_set():
    event = sync.Event()
    passed = []
    threads = [sync.Thread(lambda: passed.append(event.wait(10))) for _ in range(3)]
    for thread in threads:
        thread.start()
    assert not event.is_set() and event.wait(0.01) is False
    event.set()
    for thread in threads:
        thread.join(5)
    assert passed == [True, True, True] and event.wait() is True
    event.clear()
    assert not event.is_set()


def test_a_thread_has_an_ident_once_started_and_is_alive_until_its_function_returns():
    release = sync.Lock()
    release.acquire()
    seen = []
    thread = sync.Thread(lambda: (seen.append(sync.get_ident()), release.acquire()), name="worker")
    assert thread.ident is None and not thread.is_alive()
    with pytest.raises(RuntimeError):
        thread.join()
    thread.start()
    _wait_for(lambda: seen)
    assert thread.is_alive() and seen == [thread.ident] and thread.ident != sync.get_ident()
    thread.join(0.01)
    assert thread.is_alive()                         # a join that times out leaves it running
    release.release()
    thread.join(5)
    assert not thread.is_alive()
    with pytest.raises(RuntimeError):
        thread.start()


def test_a_thread_whose_function_raises_still_ends_and_the_error_is_reported(monkeypatch):
    reported = []
    monkeypatch.setattr(sys, "unraisablehook", reported.append)
    thread = sync.Thread(lambda: 1 / 0)
    thread.start()
    thread.join(5)
    assert not thread.is_alive()
    assert [type(report.exc_value) for report in reported] == [ZeroDivisionError]


def test_a_thread_that_cannot_start_raises_and_is_not_alive(monkeypatch):
    def refuse(function, args):
        raise RuntimeError("can't start new thread")
    monkeypatch.setattr(sync._thread, "start_new_thread", refuse)
    thread = sync.Thread(lambda: None)
    with pytest.raises(RuntimeError, match="can't start new thread"):
        thread.start()
    assert thread.ident is None and not thread.is_alive()
