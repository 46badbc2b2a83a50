"""The host side of the serial line: guest output to a file descriptor, host input to the guest.

Output is buffered and written with few syscalls: at a newline, when the guest starts waiting for
input, when the buffer is large, and at the end. On top of that the machine's main thread calls
show_waiting() every tick: a terminal gets what is buffered at once, any other output once the guest
has stopped printing for a tick, so a prompt without a newline ("Booting kernel... ") shows while
the guest works. Nothing of that is done per byte.

Output never keeps kvmrun's control waiting: the main thread only writes what the reader takes at
once, and a vCPU thread that waits for a slow reader looks at `stop_waiting` every 50 ms, so a
timeout or a signal still ends the run while stdout's reader is stalled.

Input is read without blocking and only when the guest polls for it, so a guest that only prints
never pays for a poll.
"""
import os
import select
import stat
import threading
from typing import Callable, Optional

_FLUSH_AT = 64 * 1024
_READ_CHUNK = 4096
_POLLS_BEFORE_HOST_READ = 2       # a putc reads LSR once; a getc loop reads it again and again
_WAIT_SLICE = 0.05                # how often a writer waiting for the reader looks at stop_waiting


def _never() -> bool:
    return False


class FdOutput:
    """Buffered, byte-exact writer to a file descriptor.

    When the reader goes away (EPIPE) or a write fails (ENOSPC on /dev/full, EIO, ...), the output
    is dropped from then on, `error` keeps the OSError, and `on_closed` is called once: the machine
    uses it to end the run. The descriptor may be non-blocking (kvmrun's own description of stdout,
    see stdio.py); on a blocking pipe, terminal or socket each write waits for room first and stays
    within what the kernel takes at once (PIPE_BUF)."""

    def __init__(self, fd: int, interactive: Optional[bool] = None, owns_fd: bool = False):
        self.fd = fd
        self.interactive = os.isatty(fd) if interactive is None else interactive
        self._owns_fd = owns_fd
        self._buf = bytearray()
        self.count = 0                # bytes put so far: lets the input side see output activity
        self.broken = False
        self.error: Optional[OSError] = None
        self.on_closed: Optional[Callable[[], None]] = None
        # Checked while a flush waits for the reader; the machine points it at "the run is ending".
        self.stop_waiting: Callable[[], bool] = _never
        # False while the main thread handles output (the coalesced ring's drain): never wait then.
        self.waits = True
        # One flusher at a time; puts do not take it. A flush writes the head of the buffer and then
        # deletes exactly what was written, so bytes appended meanwhile by a vCPU are kept in order.
        self._flush_lock = threading.Lock()
        self._count_at_tick = 0
        self._may_block = self._can_block(fd)

    @staticmethod
    def _can_block(fd: int) -> bool:
        """Whether a write to fd may wait for a reader: a blocking pipe, terminal or socket."""
        try:
            if not os.get_blocking(fd):
                return False
            mode = os.fstat(fd).st_mode
        except OSError:
            return False
        return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(fd)

    def put(self, byte: int) -> None:
        self._buf.append(byte)
        self.count += 1
        if byte == 0x0A or len(self._buf) >= _FLUSH_AT:
            self.flush()

    def flush(self) -> None:
        """Write everything buffered, waiting for a slow reader until stop_waiting() says not to
        (what is left then stays buffered)."""
        with self._flush_lock:
            self._write_buffered(self.waits)

    def show_waiting(self) -> None:
        """The main thread's tick: a terminal's buffered output, or any output the guest has not
        added to since the last tick, is written now, as far as the reader takes it without waiting."""
        count = self.count
        if self._buf and (self.interactive or count == self._count_at_tick) \
                and self._flush_lock.acquire(blocking=False):
            try:
                self._write_buffered(False)
            finally:
                self._flush_lock.release()
        self._count_at_tick = count

    def _write_buffered(self, wait: bool) -> None:
        buf = self._buf
        while buf:
            if self.broken:
                buf.clear()
                return
            # A copy: a memoryview of the bytearray would stop a vCPU from appending to it meanwhile.
            data = bytes(buf[:select.PIPE_BUF]) if self._may_block else bytes(buf)
            try:
                if self._may_block and not select.select([], [self.fd], [], 0)[1]:
                    raise BlockingIOError
                written = os.write(self.fd, data)
            except BlockingIOError:
                if not wait or self.stop_waiting():
                    return
                select.select([], [self.fd], [], _WAIT_SLICE)
                continue
            except InterruptedError:
                continue
            except OSError as err:
                self._fail(err)
                continue
            del buf[:written]

    def _fail(self, err: OSError) -> None:
        self.broken = True
        self.error = err
        if self.on_closed is not None:
            self.on_closed()

    def close(self) -> None:
        if self._owns_fd and self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class CapturedOutput:
    """Collects the guest's serial output in memory (for the Python API and tests)."""

    def __init__(self):
        self.data = bytearray()
        self.on_closed = None         # memory never closes
        self.stop_waiting = _never    # nor keeps anyone waiting
        self.waits = True

    def put(self, byte: int) -> None:
        self.data.append(byte)

    def flush(self) -> None:
        pass

    def show_waiting(self) -> None:
        pass


class FdInput:
    """Bytes from a file descriptor (pipe, file or terminal), read without blocking the vCPU.
    End of file is remembered: a guest that keeps reading after it (`rep insb`) costs no syscalls."""

    def __init__(self, fd: int, output=None):
        self.fd = fd
        self._output = output
        self._buf = b""
        self._pos = 0
        self._eof = False
        self._idle_polls = 0
        self._output_seen = 0

    def ready(self) -> bool:
        if self._pos < len(self._buf):
            return True
        if self._eof:
            return False
        output_count = getattr(self._output, "count", 0)
        if output_count != self._output_seen:       # the guest printed since its last poll
            self._output_seen = output_count
            self._idle_polls = 0
        self._idle_polls += 1
        if self._idle_polls < _POLLS_BEFORE_HOST_READ:
            return False
        # The guest is waiting for input: show it everything it printed first (a prompt).
        if self._output is not None:
            self._output.flush()
        return self._fill()

    def take(self) -> Optional[int]:
        if self._pos >= len(self._buf) and not self._fill():
            return None
        byte = self._buf[self._pos]
        self._pos += 1
        return byte

    def _fill(self) -> bool:
        if self._eof:
            return False
        try:
            readable, _, _ = select.select([self.fd], [], [], 0)
            if not readable:
                return False
            chunk = os.read(self.fd, _READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            chunk = b""
        if not chunk:
            self._eof = True
            return False
        self._buf, self._pos = chunk, 0
        return True


class BytesInput:
    """A fixed string of input bytes (for the Python API and tests)."""

    def __init__(self, data: bytes = b""):
        self._data = bytes(data)
        self._pos = 0

    def ready(self) -> bool:
        return self._pos < len(self._data)

    def take(self) -> Optional[int]:
        if self._pos >= len(self._data):
            return None
        self._pos += 1
        return self._data[self._pos - 1]
