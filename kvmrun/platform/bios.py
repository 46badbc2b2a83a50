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
    from typing import Any, Callable, Dict, List, Optional


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
                 finish: Callable[[Outcome], None], boot_sector: bytes, stack,
                 trace: Optional[Callable[[str], None]] = None) -> BiosTrap:
    """kvmrun's BIOS on `bus`: the disk opened (closed with `stack`), the services over the machine's
    devices, the trap on rom.BIOS_PORT. The caller gives the trap its vCPUs once they exist. `trace`
    (--trace, --trace=bios: debug/trace.TraceOutput) is told every call; it never waits for its reader,
    for the trap calls it under the device lock."""
    disk = stack.enter_context(Disk.from_file(config.disk or config.image, writable=config.disk_writable))
    trap = bios_trap(mem, disk, boot_sector, vga, uart, serial_source, rtc, stream, finish, trace)
    bus.register(rom.BIOS_PORT, 1, trap)
    return trap


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
