"""The host side of the serial line: guest output to a file descriptor, host input to the guest.

Output is buffered and written with few syscalls: at a newline, when the guest starts waiting for
input, when the buffer is large, and at the end. On top of that the machine's main thread calls
show_waiting() every tick: a terminal gets what is buffered at once, any other output once the guest
has stopped printing for a tick, so a prompt without a newline ("Booting kernel... ") shows while
the guest works. Nothing of that is done per byte.

Output never keeps kvmrun's control waiting: the main thread only writes what the reader takes at
once, and a vCPU thread that waits for a slow reader looks at `stop_waiting` every 50 ms, so a
timeout or a signal still ends the run while stdout's reader is stalled.

Input is pushed in: the host loop reads stdin when it is readable (StdinPump) into a bounded queue the
UART takes from, so a guest's polls cost no syscalls and a guest halted with interrupts on wakes when
a key arrives.
"""
from __future__ import annotations

import os
import select
import stat

from .sync import Lock

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Callable, Optional

if TYPE_CHECKING:
    from .screen_view import LiveScreen

_FLUSH_AT = 64 * 1024
_READ_CHUNK = 4096
_WAIT_SLICE = 0.05                # how often a writer waiting for the reader looks at stop_waiting
SCREEN_AUTO, SCREEN_LIVE, SCREEN_TEXT, SCREEN_OFF = "auto", "live", "text", "off"
SCREEN_CHOICES = (SCREEN_AUTO, SCREEN_LIVE, SCREEN_TEXT, SCREEN_OFF)


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
        self._flush_lock = Lock()
        self._count_at_tick = 0
        self._may_block = self._can_block(fd)
        # The screen (`--screen`): "live" redraws it below the serial output while the guest runs
        # (screen_view.LiveScreen), "text" writes the final one as plain text after the run, "auto"
        # is live on a terminal and text elsewhere, "off" shows nothing.
        self.screen_mode = SCREEN_AUTO
        self._live: Optional["LiveScreen"] = None    # where the screen is shown live
        self._redraws = False             # the live screen is drawn: each write redraws it
        self._terminal = bytearray()      # what the LiveScreen made of the output, still to write
        self._resized = False             # the terminal's size changed: the live screen follows it
        self._last_byte = 0x0A            # of the serial output written: a final screen starts a line

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
        # Under a live screen every write redraws it: lines then wait for the tick, a batch a redraw.
        if (byte == 0x0A and not self._redraws) or len(self._buf) >= _FLUSH_AT:
            self.flush()

    def flush(self) -> None:
        """Write everything buffered, waiting for a slow reader until stop_waiting() says not to
        (what is left then stays buffered)."""
        with self._flush_lock:
            self._write_buffered(self.waits)

    def _shows_live(self) -> bool:
        return self.screen_mode == SCREEN_LIVE or (self.screen_mode == SCREEN_AUTO and self.interactive)

    def live_on_terminal(self) -> bool:
        """Whether the screen is shown live on a terminal, which the user may resize."""
        return self._shows_live() and os.isatty(self.fd)

    def terminal_resized(self) -> None:
        """The host loop's, on SIGWINCH: the live screen redrawn for the terminal's new size, now or,
        when a vCPU is writing output, at the next tick."""
        self._resized = True
        if self._live is not None and not self.broken and self._flush_lock.acquire(blocking=False):
            try:
                self._follow_terminal_size()
                self._write_buffered(False)
            finally:
                self._flush_lock.release()

    def _follow_terminal_size(self) -> None:
        """With the flush lock: a size change the live screen has not seen yet, redrawn to fit."""
        live = self._live
        if not self._resized or live is None:
            return
        self._resized = False
        size = _terminal_size(self.fd)
        if size != (live.width, live.height):
            self._take_serial()
            self._terminal += live.resize(*size)

    def show_screen(self, screen) -> None:
        """The main thread's tick found the screen changed: redrawn when it is shown live. Skipped
        when a vCPU is writing output (the next change, or the end, draws it)."""
        if not self._shows_live() or self.broken or not self._flush_lock.acquire(blocking=False):
            return
        try:
            live = self._live_screen()
            self._follow_terminal_size()
            self._take_serial()
            self._terminal += live.update(screen)
            self._redraws = True
            self._write_buffered(False)
        finally:
            self._flush_lock.release()

    def final_screen(self, screen) -> None:
        """The run is over: the live screen left in its last state, or the screen as plain text after
        the serial output ("text", or "auto" where stdout is not a terminal)."""
        with self._flush_lock:
            if self._shows_live():
                live = self._live_screen()
                self._resized = True          # the final frame fits the terminal as it is now
                self._follow_terminal_size()
                self._take_serial()
                self._terminal += live.update(screen) + live.finish()
                self._redraws = False
            elif self.screen_mode != SCREEN_OFF:
                from .screen_view import plain
                text = plain(screen)
                if text:
                    self._write_buffered(self.waits)
                    last = self._buf[-1] if self._buf else self._last_byte
                    self._buf += (b"" if last == 0x0A else b"\n") + text.encode("utf-8", "replace")
            self._write_buffered(self.waits)

    def _live_screen(self) -> "LiveScreen":
        if self._live is None:
            from .screen_view import LiveScreen
            self._live = LiveScreen(*_terminal_size(self.fd))
        return self._live

    def _take_serial(self) -> None:
        """Serial output buffered so far, passed through the live screen (called with the flush lock)."""
        buf = self._buf
        if buf and self._live is not None:
            data = bytes(buf)
            del buf[:len(data)]            # exactly what was taken: vCPUs may append meanwhile
            self._terminal += self._live.serial(data)

    def show_waiting(self) -> None:
        """The main thread's tick: a terminal's buffered output, or any output the guest has not
        added to since the last tick, is written now, as far as the reader takes it without waiting."""
        count = self.count
        if (self._buf or self._terminal) and (self.interactive or count == self._count_at_tick) \
                and self._flush_lock.acquire(blocking=False):
            try:
                self._write_buffered(False)
            finally:
                self._flush_lock.release()
        if self._resized:
            self.terminal_resized()
        self._count_at_tick = count

    def _write_buffered(self, wait: bool) -> None:
        # Where the screen may be shown live, serial output goes through the LiveScreen from the
        # first byte, so it knows an unfinished line ("Loading... ") the screen is later drawn under.
        if self._live is not None or (self._buf and self._shows_live()):
            self._live_screen()
            self._take_serial()
            buf = self._terminal
        else:
            buf = self._buf
        while buf:
            if self.broken:
                buf.clear()
                return
            # A copy: a memoryview of the bytearray would stop a vCPU from appending to it meanwhile.
            data = bytes(buf[:select.PIPE_BUF]) if self._may_block else bytes(buf)
            try:
                if self._may_block and not _writable(self.fd, 0):
                    raise BlockingIOError
                written = os.write(self.fd, data)
            except BlockingIOError:
                if not wait or self.stop_waiting():
                    return
                _writable(self.fd, _WAIT_SLICE)
                continue
            except InterruptedError:
                continue
            except OSError as err:
                self._fail(err)
                continue
            if written:
                self._last_byte = data[written - 1]
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


def _writable(fd: int, timeout: float) -> bool:
    """Whether fd takes a write, waiting up to `timeout` seconds. poll(2), not select(2): select
    takes no descriptor above 1023, and a process with many vCPUs or files has such descriptors."""
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return bool(poller.poll(timeout * 1000))


def _terminal_size(fd: int):
    """The terminal's columns and rows; 80x25 where it says none (a fresh pty reports 0x0)."""
    try:
        size = os.get_terminal_size(fd)
    except OSError:
        return 80, 25
    return size.columns or 80, size.lines or 25


class CapturedOutput:
    """Collects the guest's serial output and its last screen in memory (for the Python API and tests)."""

    def __init__(self):
        self.data = bytearray()
        self.screen = None            # the final screen, when the guest touched it
        self.on_closed = None         # memory never closes
        self.stop_waiting = _never    # nor keeps anyone waiting
        self.waits = True

    def put(self, byte: int) -> None:
        self.data.append(byte)

    def flush(self) -> None:
        pass

    def show_waiting(self) -> None:
        pass

    def show_screen(self, screen) -> None:
        pass

    def final_screen(self, screen) -> None:
        self.screen = screen


def _nothing_more() -> bool:
    return False


def _pollable(fd: int) -> bool:
    import select as select_module
    poller = select_module.epoll()
    try:
        poller.register(fd, select_module.EPOLLIN)
        return True
    except OSError:
        return False
    finally:
        poller.close()


class InputQueue:
    """Serial input pushed in by the host loop (StdinPump) and taken by the UART: the guest's reads
    cost no syscall, and a guest halted with interrupts on wakes when a key arrives. Bounded: the
    pump stops reading stdin while the queue is full. Its own lock: the host loop feeds while a
    vCPU takes."""
    CAPACITY = 4096

    def __init__(self):
        self._buf = bytearray()
        self._pos = 0
        self._lock = Lock()
        # More input on demand: a regular file's StdinPump sets it; none by default.
        self.refill: Callable[[], bool] = _nothing_more
        self.closed = False                 # the pump reached stdin's end: what is buffered is all

    def room(self) -> int:
        return self.CAPACITY - (len(self._buf) - self._pos)

    def feed(self, data: bytes) -> None:
        with self._lock:
            if self._pos:
                del self._buf[:self._pos]
                self._pos = 0
            self._buf += data

    def buffered(self) -> bool:
        return self._pos < len(self._buf)

    def ready(self) -> bool:
        return self._pos < len(self._buf) or self.refill()

    def ended(self) -> bool:
        """No byte is buffered and none will come."""
        return self.closed and not self.ready()

    def take(self) -> Optional[int]:
        if self._pos >= len(self._buf) and not self.refill():
            return None
        with self._lock:
            if self._pos >= len(self._buf):
                return None
            self._pos += 1
            return self._buf[self._pos - 1]



class StdinPump:
    """Reads a file descriptor (pipe, socket or terminal) when the host loop sees it readable, into
    an InputQueue, as much as the queue has room for. End of file (or an error reading) stops it.

    A regular file or /dev/null cannot be watched (epoll refuses them) and never blocks: the queue
    then refills itself from the file when the guest finds it empty."""

    def __init__(self, fd: int, queue: Optional[InputQueue] = None):
        self.fd = fd
        self.queue = queue or InputQueue()
        self.eof = False
        self.on_input: Callable[[], None] = lambda: None      # the UART's interrupt line re-evaluated
        self.pollable = _pollable(fd)
        # A file is read both by the host loop (ahead, under the irqchip) and by a vCPU finding the queue
        # empty (refill): one reader at a time, or two chunks could be queued out of order.
        self._reading = Lock()
        if not self.pollable:
            self.queue.refill = self._refill

    def _refill(self) -> bool:
        """On the vCPU's thread, inside a UART access (the device lock held): read, but call nobody:
        the UART looks at what arrived itself."""
        self._read()
        return self.queue.buffered()

    def wants_input(self) -> bool:
        return not self.eof and self.queue.room() > 0

    def on_readable(self) -> None:
        """The host loop's: read what there is and tell the UART (its interrupt may rise)."""
        if self._read():
            self.on_input()

    def _read(self) -> bool:
        with self._reading:
            return self._read_chunk()

    def _read_chunk(self) -> bool:
        room = self.queue.room()
        if self.eof or room <= 0:
            return False
        try:
            chunk = os.read(self.fd, min(room, _READ_CHUNK))
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            chunk = b""
        if not chunk:
            self.eof = self.queue.closed = True
            return False
        self.queue.feed(chunk)
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

    def ended(self) -> bool:
        return self._pos >= len(self._data)
