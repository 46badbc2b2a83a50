"""One BIOS call as a service sees it: the caller's registers, real-mode memory, and the result.

A boot sector's `int 13h` lands in a stub of kvmrun's ROM that traps to kvmrun (bios/rom.py); the
trap reads the vCPU's registers into a BiosCall, the service for that vector reads and changes them,
and the trap writes them back, with the carry flag in the FLAGS the stub's IRET restores. Everything a
service touches in the guest goes through the call, bounds-checked, so a service is pure and tested
with a bytearray for RAM. Pure: nothing here touches KVM.
"""
from __future__ import annotations

from .rom import overlaps_rom

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Callable, Optional

REAL_MODE_TOP = 0x10FFF0          # FFFF:FFFF + 1 with A20 on: the highest byte real mode can address


class Unsupported(Exception):
    """A function of a service kvmrun does not provide: the run ends as a guest fault naming it.
    `selector` says which register picked it when AH alone does not ("AL=03h")."""

    def __init__(self, why: str = "", selector: str = ""):
        super().__init__(why)
        self.why = why
        self.selector = selector


class BadBuffer(Exception):
    """A buffer a caller gave lies outside RAM, in the BIOS area, or beyond what real mode reaches.
    Services turn it into their own error code (int 13h: AH=01h or 09h; int 15h: CF=1)."""


class WaitForInterrupt(Exception):
    """The service has nothing to give yet (int 16h with no key): the caller is made to wait with
    interrupts on and call again after the next interrupt (the timer's tick at the latest)."""


class InputEnded(Exception):
    """The service would wait for input that can never come (int 16h with stdin at its end): the run
    ends, saying so, rather than waiting for its timeout (or for ever, without one)."""


def linear(segment: int, offset: int) -> int:
    """The real-mode address of segment:offset."""
    return ((segment & 0xFFFF) << 4) + (offset & 0xFFFF)


def _part(register: str, shift: int, mask: int) -> property:
    """A property for part of a 32-bit register: AX is eax's low 16 bits, AH bits 8-15."""
    def get(self) -> int:
        return (getattr(self, register) >> shift) & mask

    def put(self, value: int) -> None:
        setattr(self, register, (getattr(self, register) & ~(mask << shift)) | ((value & mask) << shift))
    return property(get, put)


class BiosCall:
    """The caller's registers at the `int`: 32-bit general registers (services read the 16- and 8-bit
    parts), the data segments' selectors, and the carry the caller will see. `mem` is guest RAM
    (GuestMemory or anything with read/write/contains). `vector` is the interrupt called; `cs`/`ip`
    where the `int` instruction is (for reports)."""

    def __init__(self, vector: int, mem, eax: int = 0, ebx: int = 0, ecx: int = 0, edx: int = 0,
                 esi: int = 0, edi: int = 0, ebp: int = 0, ds: int = 0, es: int = 0,
                 cs: int = 0, ip: int = 0, flags: int = 0x202):
        self.vector = vector
        self.mem = mem
        self.eax, self.ebx, self.ecx, self.edx = eax, ebx, ecx, edx
        self.esi, self.edi, self.ebp = esi, edi, ebp
        self.ds, self.es = ds, es
        self.cs, self.ip = cs, ip
        self.flags = flags                  # the caller's FLAGS (interrupt flag, etc.), read only
        self.carry = False                  # what the caller's CF will be
        # Told of every write to guest RAM: the screen learns of a disk read into the text buffer, which
        # KVM's dirty log (guest writes only) would not show.
        self.on_write: Optional[Callable[[int, int], None]] = None
        self.zero_flag: Optional[bool] = None   # int 16h AH=01h: ZF out; None leaves the caller's

    # the 16- and 8-bit registers services are specified in
    ax, bx, cx, dx = _part("eax", 0, 0xFFFF), _part("ebx", 0, 0xFFFF), _part("ecx", 0, 0xFFFF), _part("edx", 0, 0xFFFF)
    si, di, bp = _part("esi", 0, 0xFFFF), _part("edi", 0, 0xFFFF), _part("ebp", 0, 0xFFFF)
    ah, al = _part("eax", 8, 0xFF), _part("eax", 0, 0xFF)
    bh, bl = _part("ebx", 8, 0xFF), _part("ebx", 0, 0xFF)
    ch, cl = _part("ecx", 8, 0xFF), _part("ecx", 0, 0xFF)
    dh, dl = _part("edx", 8, 0xFF), _part("edx", 0, 0xFF)

    # --- outcomes --------------------------------------------------------------------------------------
    def fail(self, status: int) -> None:
        """The BIOS way to fail: AH=status, CF=1."""
        self.ah = status
        self.carry = True

    def succeed(self, status: int = 0) -> None:
        self.ah = status
        self.carry = False

    # --- memory ----------------------------------------------------------------------------------------
    def read(self, segment: int, offset: int, length: int) -> bytes:
        """`length` bytes at segment:offset (contiguous from there: a buffer may run past the offset's
        64 KiB as a BIOS's DMA would). BadBuffer if any byte is not RAM real mode reaches."""
        addr = self._checked(segment, offset, length, writing=False)
        return self.mem.read(addr, length) if length else b""

    def write(self, segment: int, offset: int, data: bytes) -> None:
        """BadBuffer (and nothing written) if any byte is not writable RAM real mode reaches."""
        addr = self._checked(segment, offset, len(data), writing=True)
        if not data:
            return                          # nothing to write: where it would have gone does not matter
        self.mem.write(addr, data)
        if self.on_write is not None:
            self.on_write(addr, len(data))

    def read_linear(self, addr: int, length: int) -> bytes:
        self._check_linear(addr, length, writing=False)
        return self.mem.read(addr, length) if length else b""

    def write_linear(self, addr: int, data: bytes) -> None:
        self._check_linear(addr, len(data), writing=True)
        if not data:
            return
        self.mem.write(addr, data)
        if self.on_write is not None:
            self.on_write(addr, len(data))

    def _checked(self, segment: int, offset: int, length: int, writing: bool) -> int:
        addr = linear(segment, offset)
        self._check_linear(addr, length, writing)
        return addr

    def _check_linear(self, addr: int, length: int, writing: bool) -> None:
        end = addr + length
        if length < 0 or addr < 0 or end > REAL_MODE_TOP:
            raise BadBuffer(f"0x{addr:x}+0x{length:x} is beyond real mode's reach")
        if writing and overlaps_rom(addr, length):
            raise BadBuffer(f"0x{addr:x}+0x{length:x} overlaps the BIOS area")
        if length and not self.mem.contains(addr, length):
            raise BadBuffer(f"0x{addr:x}+0x{length:x} is not all RAM")
