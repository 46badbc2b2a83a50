"""The four x86 debug registers as breakpoints and watchpoints share them, and the DR7 that enables
them (Intel SDM vol. 3B, 18.2: DR0-DR3 hold linear addresses; DR7 has per register an enable bit, an
R/W field and a LEN field). Pure: kvmrun hands `debugreg()` to KVM_SET_GUEST_DEBUG, which makes them the
vCPU's breakpoints while the guest's own debug registers stay the guest's.

x86 has no read-only data breakpoint: a read watchpoint uses R/W=11 (read or write), as QEMU's does.
"""
from __future__ import annotations

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import List, Optional, Tuple

    Slot = Tuple[str, int, int]     # (kind, linear address, length)

SLOTS = 4
# R/W field values (SDM table 18-2 / DR7): what a breakpoint of each kind watches.
_RW = {"execute": 0b00, "write": 0b01, "read": 0b11, "access": 0b11}
# LEN field values: 1, 2, 8 and 4 bytes (8 bytes only in 64-bit processors, which these are).
_LEN = {1: 0b00, 2: 0b01, 8: 0b10, 4: 0b11}
DR7_RESERVED_ONE = 1 << 10         # DR7 bit 10 reads as 1
DR7_GE = 1 << 9                    # exact data breakpoints (as QEMU sets it)
KINDS = tuple(_RW)


class DebugRegisters:
    def __init__(self) -> None:
        self.slots: List[Optional[Slot]] = [None] * SLOTS

    def add(self, kind: str, address: int, length: int) -> bool:
        """Take a free register for a breakpoint of `kind`; False when none is free or the CPU cannot
        watch this range with one (data: 1, 2, 4 or 8 bytes, aligned to their size)."""
        if kind not in _RW:
            raise ValueError(f"no debug register breakpoint of kind {kind!r}")
        if kind == "execute":
            length = 1                                # LEN must be 00 for an instruction breakpoint
        elif length not in _LEN or address % length:
            return False
        if not 0 <= address < 1 << 64:
            return False
        for index, slot in enumerate(self.slots):
            if slot is None:
                self.slots[index] = (kind, address, length)
                return True
        return False

    def remove(self, kind: str, address: int, length: int) -> bool:
        length = 1 if kind == "execute" else length
        for index, slot in enumerate(self.slots):
            if slot == (kind, address, length):
                self.slots[index] = None
                return True
        return False

    def clear(self) -> None:
        self.slots = [None] * SLOTS

    @property
    def used(self) -> int:
        return sum(slot is not None for slot in self.slots)

    def free(self) -> int:
        return SLOTS - self.used

    def dr7(self) -> int:
        value = DR7_RESERVED_ONE | DR7_GE
        for index, slot in enumerate(self.slots):
            if slot is not None:
                kind, _, length = slot
                value |= (2 << (index * 2)) | (_RW[kind] << (16 + index * 4)) | (_LEN[length] << (18 + index * 4))
        return value

    def debugreg(self) -> Tuple[int, ...]:
        """KVM_SET_GUEST_DEBUG's debugreg[8]: DR0-DR3, two unused, DR6 (ignored), DR7."""
        addresses = tuple(slot[1] if slot is not None else 0 for slot in self.slots)
        return addresses + (0, 0, 0, self.dr7())

    def hit(self, dr6: int) -> Optional[Slot]:
        """The breakpoint whose DR6 bit (B0-B3) is set, if one of ours is."""
        for index, slot in enumerate(self.slots):
            if slot is not None and dr6 & (1 << index):
                return slot
        return None
