"""--trace's output: where its lines go (stderr or --trace-file), and the line of one exit.

Lines come from vCPU threads, some under the device lock (a BIOS call's), so writing them never waits
for a reader during the run: they are queued and written in batches, by the vCPU that fills a batch or
by the host loop's tick, as much as the descriptor takes at once. What a slow reader has not taken is
written after the run, waited for as the guest's output is. The queue is bounded: past BACKLOG lines
are dropped and counted, and the count is said at the end, so a guest making millions of exits costs
a bounded amount of memory whoever reads the trace.
"""
from __future__ import annotations

import collections
import os
import select

from ..sync import Lock

from ..kvm.abi import KvmExit

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Callable, Deque, Dict, Tuple

DATA_SHOWN = 16                   # bytes of an exit's data a line shows; the rest is counted


class TraceOutput:
    """Trace lines for a file descriptor (stderr's, or a --trace-file's). `where` names it in the
    count of dropped lines."""
    BACKLOG = 100_000                  # lines queued at most (a few MiB)
    BATCH = 256                        # lines a vCPU queues before it writes them itself
    CHUNK = 4096                       # what a pipe that polls writable takes without blocking
    WAIT_SLICE = 0.05

    def __init__(self, fd: int = 2, where: str = "stderr"):
        self.fd = fd
        self.where = where
        self.lines: Deque[str] = collections.deque()
        self.dropped = 0
        self._poller = select.poll()
        self._poller.register(fd, select.POLLOUT)
        self._pending = b""
        self._started = False                  # part of _pending's first line is written already
        self.failed = ""                       # why the descriptor stopped taking lines, if it did
        self._writing = Lock()       # one writer at a time; the others leave it the lines

    def __call__(self, line: str) -> None:
        lines = self.lines
        if len(lines) >= self.BACKLOG:
            self.dropped += 1
            return
        lines.append(line)
        if len(lines) >= self.BATCH:
            self.flush()

    def flush(self) -> None:
        """Write what the descriptor takes now, without waiting (the host loop's tick, a full batch)."""
        if self._writing.acquire(blocking=False):
            try:
                self._write(wait=lambda: False)
            finally:
                self._writing.release()

    def finish(self, stop_waiting: Callable[[], bool]) -> None:
        """After the run: the rest, waiting for the reader until `stop_waiting()` (a run cut short by
        its timeout or a signal does not wait), then, on stderr, how many lines never reached it."""
        with self._writing:
            self._write(wait=lambda: not stop_waiting())
            cut = bool(self._pending) and self._started      # a line half-written where the notice goes
            untaken = len(self.lines) + self._pending.count(b"\n")
            self.lines.clear()
            self._pending = b""
            self.dropped += untaken
            if self.dropped:
                why = f": {self.failed}" if self.failed else " did not take them"
                notice = f"kvmrun: {self.dropped} trace lines dropped: {self.where}{why}\n"
                self.dropped = 0
                # On stderr when that is where the trace went, else on kvmrun's stderr (a trace file's
                # reader may be gone, or the file's disk full).
                on_trace = self.where == "stderr"
                _tell((("\n" if cut and on_trace else "") + notice).encode(), self.fd if on_trace else 2)

    def _write(self, wait: Callable[[], bool]) -> None:
        lines = self.lines
        while self._pending or lines:
            if not self._pending:
                batch = []
                size = 0
                while lines and size < self.CHUNK:
                    line = lines.popleft()
                    batch.append(line)
                    size += len(line) + 1
                self._pending = ("\n".join(batch) + "\n").encode(errors="backslashreplace")
            if not self._poller.poll(self.WAIT_SLICE * 1000 if wait() else 0):
                if wait():
                    continue
                return
            try:
                written = os.write(self.fd, self._pending[:self.CHUNK])
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as err:         # the reader or the disk is gone: the trace with it, the run goes on
                self.failed = err.strerror or str(err)
                self.dropped += len(lines) + self._pending.count(b"\n")
                lines.clear()
                self._pending = b""
                return
            # A write that stopped inside a line leaves its rest in _pending: a notice must not join it.
            if written:
                self._started = self._pending[written - 1] != 0x0A     # not b"\n"
            self._pending = self._pending[written:]


def _tell(notice: bytes, fd: int, seconds: float = 1.0) -> None:
    """One line, waiting for its reader a little, never for good."""
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    if poller.poll(seconds * 1000):
        try:
            os.write(fd, notice)
        except OSError:
            pass


# --- one exit as a line -------------------------------------------------------------------------------

# Friendlier names than the classes' for the devices kvmrun puts on the bus.
_DEVICE_NAMES: Dict[str, str] = {
    "Serial16550": "uart", "ExitPort": "exit-port", "VgaRegisters": "vga", "FwCfg": "fw_cfg",
    "IgnoredPort": "post", "_Port": "i8042", "SystemControlA": "port92", "Cmos": "cmos", "BiosTrap": "bios",
}


def device_name(device) -> str:
    name = type(device).__name__
    return _DEVICE_NAMES.get(name, name)


def port_owner(bus, port: int) -> str:
    """Who handles `port` on `bus`: `uart+5` (the device, the port's offset in its range), or
    `unclaimed`."""
    claimed = bus.device_at(port)
    if claimed is None:
        return "unclaimed"
    device, offset = claimed
    return f"{device_name(device)}+{offset}"


def mmio_owner(bus, address: int, size: int) -> str:
    claimed = bus.mmio_device_at(address, size)
    if claimed is None:
        return "unclaimed"
    device, offset = claimed
    return f"{device_name(device)}+0x{offset:x}"


def reason_name(reason: int) -> str:
    """`IO`, `HLT`, `MMIO`: KVM's exit reason without its KVM_EXIT_ prefix."""
    try:
        return KvmExit(reason).name.removeprefix("KVM_EXIT_")
    except ValueError:
        return f"reason {reason}"


def data_text(data: bytes) -> str:
    """Hex bytes, at most DATA_SHOWN of them and how many more."""
    shown = data[:DATA_SHOWN].hex(" ")
    return shown if len(data) <= DATA_SHOWN else f"{shown} ... ({len(data)} bytes)"


def milliseconds(ns: int) -> str:
    return f"{ns / 1e6:10.3f} ms"


def exit_line(ns: int, vcpu: int, reason: int, what: str = "") -> str:
    """`exit:      1.250 ms vcpu 0 IO out port 0x03f8 size 1 data 48 -> uart+0`: when (since the
    trace started), which vCPU, KVM's reason, then what the exit was."""
    return f"exit: {milliseconds(ns)} vcpu {vcpu} {reason_name(reason)}" + (f" {what}" if what else "")


def port_io(direction: str, port: int, size: int, data: bytes, owner: str) -> str:
    """An IO exit's part of the line: `out port 0x03f8 size 1 data 48 -> uart+0`; `count` where a
    string instruction moved several elements at once."""
    count = len(data) // size if size else 0
    counted = f" count {count}" if count > 1 else ""
    return f"{direction} port 0x{port:04x} size {size}{counted} data {data_text(data)} -> {owner}"


def byte_out_texts(vcpu: int, port: int, owner: str) -> Tuple[str, str]:
    """A one-byte OUT's line around its time and data byte, made once per port: the traced loop
    writes `f"exit: {ms:10.3f}{before}{byte:02x}{after}"`, exit_line's line for it."""
    return f" ms vcpu {vcpu} IO out port 0x{port:04x} size 1 data ", f" -> {owner}"


def mmio(direction: str, address: int, data: bytes, owner: str) -> str:
    return f"{direction} 0x{address:08x} size {len(data)} data {data_text(data)} -> {owner}"


def other_exit(exit) -> str:
    """The fields of any other decoded exit, as the named tuple holds them."""
    fields = getattr(exit, "_fields", ())
    return " ".join(f"{name}={_field(getattr(exit, name))}" for name in fields)


def _field(value) -> str:
    if isinstance(value, int):
        return f"0x{value:x}" if value > 9 else str(value)
    if isinstance(value, tuple):
        return "(" + ",".join(_field(item) for item in value) + ")"
    return str(value)


def open_trace_file(path: str) -> int:
    """--trace-file: a descriptor to write it through, created or emptied. OSError when it cannot be.
    Opened without waiting: a FIFO nobody reads is refused (ENXIO) instead of hanging set-up."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NONBLOCK, 0o666)
