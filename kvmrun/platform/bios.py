"""kvmrun's BIOS in a machine (a boot disk's, boot/protocols/bios.py): the services a stub's trap
reaches, over the machine's own devices — the VGA registers and text buffer, COM1's UART, guest RAM —
and the disk. Keys come from the same input as COM1's: whichever the guest reads first takes a byte.
"""
from __future__ import annotations

from .. import layout
from ..bios import rom
from ..bios.call import BiosCall, InputEnded, WaitForInterrupt
from ..bios.disk import Disk, DiskServices
from ..bios.services import Bios
from ..bios.trap import BiosTrap
from ..devices.serial import NoInput
from ..memory import RamLayout
from ..outcome import Outcome

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Optional, Tuple


class KeysFromInput:
    """int 16h's keyboard, filled from the serial input (ready()/take()) when the guest asks: what
    has arrived is translated in one piece, so an escape sequence read together stays together; one
    left unfinished is taken as typed (a lone Esc) if nothing more came by the guest's next try. Once the
    input has ended (a pipe's or a file's end, the API's bytes used up) and every key is taken, a guest
    that waits for another ends the run (InputEnded) instead of waiting for ever."""

    def __init__(self, source):
        from ..bios.keyboard import Keyboard, KeyboardServices
        self.source = source if source is not None else NoInput()
        self.keyboard = Keyboard()
        self.services = KeyboardServices(self.keyboard)

    def int16(self, call: BiosCall) -> None:
        data = bytearray()
        while len(data) < self.keyboard.room() and self.source.ready():
            byte = self.source.take()
            if byte is None:
                break
            data.append(byte)
        if data:
            self.keyboard.push(bytes(data))
        elif self.keyboard.buffered():
            self.keyboard.flush_pending()
        ended = getattr(self.source, "ended", None)
        if ended is not None and ended() and not self.keyboard.ended:
            self.keyboard.end_of_input()
        try:
            self.services.int16(call)
        except WaitForInterrupt:
            if self.keyboard.exhausted:
                raise InputEnded() from None
            raise


def install_bios(bus, config, mem, vga, uart, serial_source, rtc, stream: Callable[[int], None],
                 finish: Callable[[Outcome], None], boot_sector: bytes,
                 stack) -> Tuple[BiosTrap, Optional[TraceToStderr]]:
    """kvmrun's BIOS on `bus`: the disk opened (closed with `stack`), the services over the machine's
    devices, the trap on rom.BIOS_PORT. The caller gives the trap its vCPUs once they exist, and
    finishes the trace (with --trace=bios) after the run."""
    disk = stack.enter_context(Disk.from_file(config.disk or config.image, writable=config.disk_writable))
    trace = TraceToStderr() if config.trace == "bios" else None
    trap = bios_trap(mem, disk, boot_sector, vga, uart, serial_source, rtc, stream, finish, trace)
    bus.register(rom.BIOS_PORT, 1, trap)
    return trap, trace


class TraceToStderr:
    """--trace=bios lines for stderr. A vCPU's trap (under the device lock) only queues a line and
    writes what stderr takes at once; it never waits, for the host loop must still take the lock and
    end the run at its timeout. What a lagging reader has not taken is written after the run, waited
    for as the guest's output is (not when the run was cut short). Bounded: past BACKLOG lines, lines
    are dropped and counted, and the count is said."""
    BACKLOG = 100_000
    CHUNK = 4096                           # what a pipe that polls writable takes without blocking
    WAIT_SLICE = 0.05

    def __init__(self, fd: int = 2):
        import collections
        import select
        self.fd = fd
        self.lines: collections.deque = collections.deque()
        self.dropped = 0
        self._poller = select.poll()
        self._poller.register(fd, select.POLLOUT)
        self._pending = b""

    def __call__(self, line: str) -> None:
        if len(self.lines) >= self.BACKLOG:
            self.dropped += 1
        else:
            self.lines.append(line)
        self._write(wait=lambda: False)

    def finish(self, stop_waiting: Callable[[], bool]) -> None:
        """After the run: the rest, waiting for the reader until `stop_waiting()`."""
        self._write(wait=lambda: not stop_waiting())
        if self.dropped and not self.lines and not self._pending:
            self.lines.append(f"kvmrun: {self.dropped} BIOS trace lines dropped: stderr did not take them")
            self.dropped = 0
            self._write(wait=lambda: not stop_waiting())

    def _write(self, wait: Callable[[], bool]) -> None:
        import os
        while self._pending or self.lines:
            if not self._pending:
                self._pending = (self.lines.popleft() + "\n").encode()
            if not self._poller.poll(self.WAIT_SLICE * 1000 if wait() else 0):
                if wait():
                    continue
                return
            try:
                self._pending = self._pending[os.write(self.fd, self._pending[:self.CHUNK]):]
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:                # stderr is gone: the trace with it, the run goes on
                self.lines.clear()
                self._pending = b""
                return


TEXT_WINDOW_START, TEXT_WINDOW_END = layout.VGA_TEXT_ADDR, layout.VGA_TEXT_ADDR + layout.VGA_TEXT_SIZE


def _once(make: Callable[[], Any]) -> Callable[[], Any]:
    """A getter of what `make()` builds, made when first wanted: a boot sector that only prints pays for
    importing the video service, not the keyboard's tables or the others (start-up time counts)."""
    built: List[Any] = []

    def get() -> Any:
        if not built:
            built.append(make())
        return built[0]
    return get


def bios_trap(mem, disk: Disk, boot_sector: bytes, vga, uart, serial_source, rtc, stream: Callable[[int], None],
              finish: Callable[[Outcome], None], trace: Optional[Callable[[str], None]] = None) -> BiosTrap:
    """The trap and its services. `boot_sector` is what was booted, `rtc` the machine's CMOS clock,
    `stream` takes teletype output (the serial output's put)."""
    def video():
        from ..bios.video import VideoServices
        return VideoServices(vga, stream)

    def serial():
        from ..bios.serial_port import SerialServices
        return SerialServices(uart)

    def clock():
        from ..bios.clock import ClockServices
        return ClockServices(rtc)

    def system():
        from ..bios.system import SystemServices
        return SystemServices(RamLayout(mem.size))

    video_services, serial_services, clock_services = _once(video), _once(serial), _once(clock)
    system_services, keyboard = _once(system), _once(lambda: KeysFromInput(serial_source))
    disk_services = DiskServices(disk)         # the disk is opened, and its errors given, before the run
    services: Dict[int, Callable[[BiosCall], None]] = {
        0x10: lambda call: video_services().int10(call),
        0x11: lambda call: system_services().int11(call),
        0x12: lambda call: system_services().int12(call),
        0x13: disk_services.int13,
        0x14: lambda call: serial_services().int14(call),
        0x15: lambda call: system_services().int15(call),
        0x16: lambda call: keyboard().int16(call),
        0x1A: lambda call: clock_services().int1a(call),
    }

    def sector_0() -> bytes:
        """int 19h boots from the disk as it is now (a guest may have written a new boot sector); a disk
        without a whole first sector gives the one that was booted."""
        return disk.read(0, 1) if disk.size >= len(boot_sector) else boot_sector

    def wrote(addr: int, length: int) -> None:
        if addr < TEXT_WINDOW_END and TEXT_WINDOW_START < addr + length:
            vga.host_wrote_text()      # a disk read into the text buffer: the screen shows it

    return BiosTrap(Bios(services), mem, finish, sector_0, trace, wrote)
