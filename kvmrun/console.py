"""The host side of the serial line: guest output to a file descriptor, host input to the guest.

Output is buffered and written with few syscalls: at a newline, when the guest starts waiting for
input, when the buffer is large, and at the end. Input is read without blocking and only when the
guest polls for it, so a guest that only prints never pays for a poll.
"""
import os
import select
from typing import Callable, Optional

_FLUSH_AT = 64 * 1024
_READ_CHUNK = 4096
_POLLS_BEFORE_HOST_READ = 2       # a putc reads LSR once; a getc loop reads it again and again


class FdOutput:
    """Buffered, byte-exact writer to a file descriptor. When the reader goes away (EPIPE) the output
    is dropped and `on_closed` is called once: the machine uses it to end the run."""

    def __init__(self, fd: int):
        self.fd = fd
        self._buf = bytearray()
        self.count = 0                # bytes put so far: lets the input side see output activity
        self.broken = False
        self.on_closed: Optional[Callable[[], None]] = None

    def put(self, byte: int) -> None:
        self._buf.append(byte)
        self.count += 1
        if byte == 0x0A or len(self._buf) >= _FLUSH_AT:
            self.flush()

    def flush(self) -> None:
        if not self._buf:
            return
        data = bytes(self._buf)
        self._buf.clear()
        while data and not self.broken:
            try:
                written = os.write(self.fd, data)
            except BlockingIOError:
                select.select([], [self.fd], [])    # a full non-blocking stdout: wait, lose nothing
                continue
            except BrokenPipeError:
                self.broken = True
                if self.on_closed is not None:
                    self.on_closed()
                return
            data = data[written:]


class CapturedOutput:
    """Collects the guest's serial output in memory (for the Python API and tests)."""

    def __init__(self):
        self.data = bytearray()
        self.on_closed = None         # memory never closes

    def put(self, byte: int) -> None:
        self.data.append(byte)

    def flush(self) -> None:
        pass


class FdInput:
    """Bytes from a file descriptor (pipe, file or terminal), read without blocking the vCPU."""

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
