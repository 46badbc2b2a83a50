"""Real mode without a BIOS: an interrupt vector table whose every entry leads to a HLT, so that an
interrupt the guest never installed a handler for stops the vCPU in a known place, and the report
can say which one it was (kvmrun/vectors.py words it).

Vector n points at F000:n, and the 256 bytes from 0xF0000 are all HLT: vector n halts with CS:IP =
F000:n+1, and the interrupted code's IP, CS and FLAGS on the stack. Nothing here runs per exit: the
machine looks only when a real-mode vCPU halts.
"""
from __future__ import annotations

import struct

from ..memory import GuestMemory
from .plan import Reserved

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import NamedTuple, Optional, Tuple
else:
    from ..named_tuple import NamedTuple

VECTORS = 256
IVT_ADDR = 0x0
IVT_SIZE = VECTORS * 4                # offset, segment: 16 bits each
STUBS_SEGMENT = 0xF000                # in the PC's system BIOS area (0xF0000-0xFFFFF), as a BIOS's would be
STUBS_ADDR = STUBS_SEGMENT << 4
HLT = 0xF4
INT_N, INT3, INTO, INT1 = 0xCD, 0xCC, 0xCE, 0xF1

RESERVED = (Reserved(IVT_ADDR, IVT_ADDR + IVT_SIZE, "real-mode interrupt vector table"),
            Reserved(STUBS_ADDR, STUBS_ADDR + VECTORS, "no-BIOS interrupt stubs"))


def ivt_bytes() -> bytes:
    return struct.pack(f"<{2 * VECTORS}H", *(word for vector in range(VECTORS) for word in (vector, STUBS_SEGMENT)))


def stubs_bytes() -> bytes:
    return bytes([HLT]) * VECTORS


class UnhandledInterrupt(NamedTuple):
    vector: int
    how: str                      # "int" (int n), "int3", "into", "int1", or "exception"
    cs: Optional[int]             # the interrupted code, from the stack frame (None if unreadable)
    ip: Optional[int]             # the instruction that raised it (for int n: the int itself)
    ax: int

    @property
    def linear(self) -> Optional[int]:
        return None if self.cs is None or self.ip is None else (self.cs << 4) + self.ip


def halted_in_stub(cs_base: int, ip: int, mem: GuestMemory) -> Optional[int]:
    """The vector whose stub a vCPU halted in (CS:IP just past one of the HLTs), or None."""
    at = cs_base + (ip & 0xFFFF) - 1
    vector = at - STUBS_ADDR
    if not 0 <= vector < VECTORS or not mem.contains(at, 1) or mem.read(at, 1)[0] != HLT:
        return None
    return vector


def unhandled_interrupt(vector: int, ss_base: int, sp: int, ax: int, mem: GuestMemory) -> UnhandledInterrupt:
    """What sent the vCPU through `vector`: the frame on the stack says where it came from, and the
    bytes before that return address whether the guest executed `int n` (or int3, into, int1)."""
    frame = _read(mem, ss_base + (sp & 0xFFFF), 4)
    if frame is None:
        return UnhandledInterrupt(vector, "exception", None, None, ax)
    return_ip, cs = struct.unpack("<HH", frame)
    before = _read(mem, (cs << 4) + return_ip - 2, 2) if return_ip >= 2 else None
    how, length = _software_interrupt(vector, before)
    return UnhandledInterrupt(vector, how, cs, (return_ip - length) & 0xFFFF, ax)


def _software_interrupt(vector: int, before: Optional[bytes]) -> Tuple[str, int]:
    """("int", 2) when `int vector` ends just before the return address, and so on for the one-byte
    forms; ("exception", 0) otherwise: a fault's return address is the faulting instruction."""
    if before is not None:
        if before == bytes([INT_N, vector]):
            return "int", 2
        one_byte = {3: (INT3, "int3"), 4: (INTO, "into"), 1: (INT1, "int1")}.get(vector)
        if one_byte is not None and before[1] == one_byte[0]:
            return one_byte[1], 1
    return "exception", 0


def _read(mem: GuestMemory, addr: int, length: int) -> Optional[bytes]:
    return mem.read(addr, length) if mem.contains(addr, length) else None
