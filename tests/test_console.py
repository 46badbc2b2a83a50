"""The host side of the serial line: buffered output to a pipe, non-blocking input from one."""
import os

from kvmrun.console import BytesInput, CapturedOutput, FdOutput, InputQueue, StdinPump


def read_available(fd):
    os.set_blocking(fd, False)
    try:
        return os.read(fd, 65536)
    except BlockingIOError:
        return b""


def test_output_is_flushed_at_newline_and_on_request():
    r, w = os.pipe()
    try:
        out = FdOutput(w)
        for b in b"abc":
            out.put(b)
        assert read_available(r) == b""             # buffered
        out.put(ord("\n"))
        assert read_available(r) == b"abc\n"
        out.put(0)
        out.flush()
        assert read_available(r) == b"\0"
        assert out.count == 5
    finally:
        os.close(r)
        os.close(w)


def test_a_closed_reader_drops_output_without_raising():
    r, w = os.pipe()
    os.close(r)
    out = FdOutput(w)
    for b in b"lost\n":
        out.put(b)
    assert out.broken
    os.close(w)


def test_the_pump_reads_what_the_host_loop_saw_and_the_queue_stays_bounded():
    r, w = os.pipe()
    try:
        pump = StdinPump(r)
        arrived = []
        pump.on_input = lambda: arrived.append(True)
        assert pump.pollable and pump.wants_input() and not pump.queue.ready()
        os.write(w, b"x" * (InputQueue.CAPACITY + 100))
        pump.on_readable()
        assert arrived == [True] and pump.queue.room() == 0 and not pump.wants_input()
        pump.on_readable()                           # full: nothing read, nothing lost
        assert [pump.queue.take() for _ in range(3)] == [ord("x")] * 3
        assert pump.wants_input() and pump.queue.room() == 3
        pump.on_readable()
        assert pump.queue.room() == 0
    finally:
        os.close(r)
        os.close(w)


def test_the_pump_stops_at_end_of_file():
    r, w = os.pipe()
    os.write(w, b"z")
    os.close(w)
    pump = StdinPump(r)
    pump.on_readable()
    pump.on_readable()
    assert pump.eof and not pump.wants_input()
    assert pump.queue.take() == ord("z") and pump.queue.take() is None and not pump.queue.ready()
    os.close(r)


def test_a_file_on_stdin_is_read_on_demand(tmp_path):
    """epoll cannot watch a regular file (or /dev/null): the queue reads it when the guest asks."""
    path = tmp_path / "input"
    path.write_bytes(b"ab")
    with open(path, "rb") as f, open("/dev/null", "rb") as null:
        pump = StdinPump(f.fileno())
        assert not pump.pollable
        assert [pump.queue.take(), pump.queue.take(), pump.queue.take()] == [ord("a"), ord("b"), None]
        assert not StdinPump(null.fileno()).queue.ready()


def test_in_memory_ends():
    captured = CapturedOutput()
    captured.put(65)
    captured.flush()
    assert captured.data == b"A"
    source = BytesInput(b"q")
    assert source.ready() and source.take() == ord("q") and not source.ready() and source.take() is None


def test_end_of_input_is_remembered_by_take_too(monkeypatch, tmp_path):
    """`rep insb` with stdin at EOF takes byte after byte: after the first EOF no more syscalls."""
    from kvmrun import console
    calls = []
    real_read = os.read
    monkeypatch.setattr(console.os, "read", lambda *a: calls.append("read") or real_read(*a))
    path = tmp_path / "empty"
    path.write_bytes(b"")
    with open(path, "rb") as f:
        queue = StdinPump(f.fileno()).queue
        assert [queue.take() for _ in range(1000)] == [None] * 1000
        assert not queue.ready()
    assert calls == ["read"]


def test_a_terminal_gets_what_waits_at_every_tick_other_outputs_once_the_guest_is_idle():
    r, w = os.pipe()
    try:
        for interactive in (True, False):
            out = FdOutput(w, interactive=interactive)
            for b in b"Booting... ":
                out.put(b)
            out.show_waiting()                      # the tick right after the guest printed
            assert read_available(r) == (b"Booting... " if interactive else b"")
            out.show_waiting()                      # a tick later, nothing new was printed
            assert read_available(r) == (b"" if interactive else b"Booting... ")
            out.put(ord("x"))
            out.show_waiting()
            out.show_waiting()
            assert read_available(r) == b"x"
    finally:
        os.close(r)
        os.close(w)


def test_the_tick_never_waits_for_a_stalled_reader_and_loses_nothing():
    import time
    r, w = os.pipe()
    os.set_blocking(w, False)
    try:
        out = FdOutput(w, interactive=True)
        size = 200_000                              # more than a pipe holds (64 KiB)
        out._buf.extend(b"a" * size)                # as put() leaves it before a flush
        start = time.monotonic()
        out.show_waiting()
        assert time.monotonic() - start < 1
        got = read_available(r)
        assert 0 < len(got) < size
        out.show_waiting()
        got += read_available(r)
        while len(got) < size:
            out.show_waiting()
            got += read_available(r)
        assert got == b"a" * size
    finally:
        os.close(r)
        os.close(w)


def returns_within(seconds, call):
    """Whether call() returns in time (run on a daemon thread, so a hang fails the test, not the run)."""
    import threading
    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(seconds)
    return not thread.is_alive()


def test_a_flush_waiting_for_the_reader_lets_go_when_told_and_keeps_the_rest():
    import threading
    import time
    r, w = os.pipe()
    os.set_blocking(w, False)
    try:
        out = FdOutput(w)
        stop = threading.Event()
        out.stop_waiting = stop.is_set
        start = time.monotonic()                    # before the timer starts: the wait is 0.3 s at least
        threading.Timer(0.3, stop.set).start()
        for _ in range(100_000):
            out.put(ord("b"))
        assert returns_within(5, out.flush)         # the pipe is full: waits until told to stop
        assert time.monotonic() - start > 0.25
        kept = len(out._buf)
        assert kept > 0
        assert len(read_available(r)) + kept == 100_000
    finally:
        os.close(r)
        os.close(w)


def test_a_blocking_pipe_is_never_written_more_than_it_takes():
    """A pipe kvmrun could not get a non-blocking description of: each write waits for room first."""
    import threading
    r, w = os.pipe()
    try:
        out = FdOutput(w)
        stop = threading.Event()
        out.stop_waiting = stop.is_set
        threading.Timer(0.3, stop.set).start()
        out._buf.extend(b"c" * 200_000)
        assert returns_within(5, out.flush)         # one large write would block for good
        assert len(read_available(r)) + len(out._buf) == 200_000
    finally:
        os.close(r)
        os.close(w)


def test_a_write_error_is_kept_and_ends_the_output():
    fd = os.open("/dev/full", os.O_WRONLY)
    try:
        out = FdOutput(fd)
        closed = []
        out.on_closed = lambda: closed.append(True)
        for b in b"to a full disk\nmore\n":
            out.put(b)
        assert closed == [True] and out.broken
        assert out.error is not None and out.error.strerror == "No space left on device"
    finally:
        os.close(fd)
