"""The host side of the serial line: buffered output to a pipe, non-blocking input from one."""
import os

from kvmrun.console import BytesInput, CapturedOutput, FdInput, FdOutput


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


def test_input_is_read_only_when_the_guest_keeps_polling():
    r, w = os.pipe()
    try:
        out = FdOutput(w)
        source = FdInput(r, out)
        os.write(w, b"xy")
        assert source.ready() is False              # the first poll after output is free
        assert source.ready() is True               # a second poll reads the host
        assert [source.take(), source.take()] == [ord("x"), ord("y")]
        assert source.take() is None
    finally:
        os.close(r)
        os.close(w)


def test_input_end_of_file_is_remembered():
    r, w = os.pipe()
    os.write(w, b"z")
    os.close(w)
    source = FdInput(r)
    assert source.take() == ord("z")
    assert source.take() is None
    assert not source.ready() and not source.ready()
    os.close(r)


def test_waiting_for_input_flushes_a_prompt():
    r_out, w_out = os.pipe()
    r_in, w_in = os.pipe()
    try:
        out = FdOutput(w_out)
        source = FdInput(r_in, out)
        for b in b"> ":
            out.put(b)
        source.ready()
        source.ready()
        assert read_available(r_out) == b"> "
    finally:
        for fd in (r_out, w_out, r_in, w_in):
            os.close(fd)


def test_in_memory_ends():
    captured = CapturedOutput()
    captured.put(65)
    captured.flush()
    assert captured.data == b"A"
    source = BytesInput(b"q")
    assert source.ready() and source.take() == ord("q") and not source.ready() and source.take() is None
