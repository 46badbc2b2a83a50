"""GDT, TSS and the segment and control registers (sregs) a guest starts with in each mode; the
general registers are the boot protocol's (boot/setup.py, vcpu_regs). Pure logic.

Segment state follows the Intel SDM's rules for VM entry (vol. 3C, 28.3.1.2): accessed code and data
segments, CS.L=1 with CS.D=0 in long mode, TR a present busy TSS, EFER.LMA together with LME and PG.
"""
from __future__ import annotations

import struct

from .. import layout
from ..kvm import abi

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import List, NamedTuple, Tuple
else:
    from ..named_tuple import NamedTuple
if TYPE_CHECKING:                 # mypy checks it as the Enum it stands in for (named_values.py)
    from enum import Enum as NamedValues
else:
    from ..named_values import NamedValues


class Mode(str, NamedValues):
    REAL = "real"
    PROTECTED = "protected"
    LONG = "long"


# GDT selectors (documented in the README: guests may rely on them).
SEL_NULL = 0x00
SEL_CODE64 = 0x08
SEL_DATA = 0x10
SEL_CODE32 = 0x18
SEL_TSS = 0x20                   # 16 bytes in long mode, so the GDT is 0x30 bytes long
GDT_LIMIT = 0x30 - 1

# Segment types (SDM vol. 3A, table 3-1 and 3-2)
TYPE_CODE_EXEC_READ_ACCESSED = 0xB
TYPE_DATA_READ_WRITE_ACCESSED = 0x3
TYPE_TSS_BUSY = 0xB              # 32-bit busy TSS; in IA-32e mode, 64-bit busy TSS

# Control registers and EFER
CR0_PE = 1 << 0
CR0_MP = 1 << 1
CR0_ET = 1 << 4
CR0_NE = 1 << 5
CR0_WP = 1 << 16
CR0_PG = 1 << 31
CR4_PAE = 1 << 5
CR4_OSFXSR = 1 << 9
CR4_OSXMMEXCPT = 1 << 10
EFER_LME = 1 << 8
EFER_LMA = 1 << 10

LONG_MODE_CR0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG
LONG_MODE_CR4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT
LONG_MODE_EFER = EFER_LME | EFER_LMA
PROTECTED_MODE_CR0 = CR0_PE | CR0_ET

RFLAGS_RESERVED = 0x2            # bit 1 is always set; IF clear


class Segment(NamedTuple):
    """A segment as the CPU caches it (the fields of kvm_segment), from which the GDT entry is made."""
    selector: int
    base: int
    limit: int                   # in bytes, as cached: 0xFFFFFFFF for a flat 4 GiB segment
    type: int
    s: int                       # 1 code/data, 0 system
    db: int = 0
    l: int = 0
    g: int = 0
    dpl: int = 0
    present: int = 1

    def descriptor(self) -> bytes:
        """The 8-byte GDT descriptor (16 bytes for a system segment in long mode: see tss_descriptor)."""
        limit = self.limit >> 12 if self.g else self.limit
        value = ((limit & 0xFFFF)
                 | (self.base & 0xFFFFFF) << 16
                 | self.type << 40 | self.s << 44 | self.dpl << 45 | self.present << 47
                 | ((limit >> 16) & 0xF) << 48
                 | self.l << 53 | self.db << 54 | self.g << 55
                 | ((self.base >> 24) & 0xFF) << 56)
        return struct.pack("<Q", value)

    def to_kvm(self) -> abi.kvm_segment:
        return abi.kvm_segment(base=self.base, limit=self.limit, selector=self.selector, type=self.type,
                               present=self.present, dpl=self.dpl, db=self.db, s=self.s, l=self.l,
                               g=self.g, avl=0, unusable=0)


FLAT = 0xFFFFFFFF
CODE64 = Segment(SEL_CODE64, 0, FLAT, TYPE_CODE_EXEC_READ_ACCESSED, s=1, l=1, db=0, g=1)
CODE32 = Segment(SEL_CODE32, 0, FLAT, TYPE_CODE_EXEC_READ_ACCESSED, s=1, db=1, g=1)
DATA = Segment(SEL_DATA, 0, FLAT, TYPE_DATA_READ_WRITE_ACCESSED, s=1, db=1, g=1)
TSS = Segment(SEL_TSS, layout.TSS_ADDR, layout.TSS_SIZE - 1, TYPE_TSS_BUSY, s=0)


def gdt_bytes() -> bytes:
    """The whole GDT: null, 64-bit code, flat data, 32-bit code, TSS (16 bytes)."""
    table = bytes(8) + CODE64.descriptor() + DATA.descriptor() + CODE32.descriptor()
    table += TSS.descriptor() + struct.pack("<Q", TSS.base >> 32)
    assert len(table) == GDT_LIMIT + 1
    return table


def tss_bytes() -> bytes:
    """A zeroed TSS whose IO map base points past its limit: no IO permission bitmap."""
    tss = bytearray(layout.TSS_SIZE)
    struct.pack_into("<H", tss, 102, layout.TSS_SIZE)
    return bytes(tss)


def _load_flat(sregs: abi.kvm_sregs, code: Segment) -> None:
    sregs.cs = code.to_kvm()
    for name in ("ds", "es", "fs", "gs", "ss"):
        setattr(sregs, name, DATA.to_kvm())
    sregs.tr = TSS.to_kvm()
    sregs.ldt = abi.kvm_segment(selector=0, type=2, present=0, unusable=1)
    sregs.gdt.base, sregs.gdt.limit = layout.GDT_ADDR, GDT_LIMIT
    sregs.idt.base, sregs.idt.limit = 0, 0


def protected_mode_sregs(sregs: abi.kvm_sregs) -> None:
    _load_flat(sregs, CODE32)
    sregs.cr0 = PROTECTED_MODE_CR0
    sregs.cr3 = 0
    sregs.cr4 = 0
    sregs.efer = 0


def long_mode_sregs(sregs: abi.kvm_sregs, cr3: int) -> None:
    _load_flat(sregs, CODE64)
    sregs.cr0 = LONG_MODE_CR0
    sregs.cr3 = cr3
    sregs.cr4 = LONG_MODE_CR4
    sregs.efer = LONG_MODE_EFER


def real_mode_code_segment(entry: int) -> Tuple[int, int]:
    """(CS selector, IP) reaching linear `entry`: CS=0 below 64 KiB, as the ABI promises."""
    selector = (entry >> 4) & 0xF000
    return selector, entry - (selector << 4)


def real_mode_sregs(sregs: abi.kvm_sregs, entry: int) -> None:
    """Real mode from the CPU's reset state: only the segment registers are pointed at 0."""
    cs, _ = real_mode_code_segment(entry)
    sregs.cs.selector, sregs.cs.base = cs, cs << 4
    for name in ("ds", "es", "fs", "gs", "ss"):
        seg = getattr(sregs, name)
        seg.selector, seg.base = 0, 0


def initial_sregs(sregs: abi.kvm_sregs, mode: Mode, entry: int, cr3: int) -> None:
    if mode is Mode.REAL:
        real_mode_sregs(sregs, entry)
    elif mode is Mode.PROTECTED:
        protected_mode_sregs(sregs)
    else:
        long_mode_sregs(sregs, cr3)


def stack_tops(ram_top: int, cpus: int) -> List[int]:
    """Top of each vCPU's 64 KiB stack, vCPU 0 highest; all 16-byte aligned."""
    top = ram_top & ~0xF
    return [top - i * layout.STACK_SIZE for i in range(cpus)]
