"""kvmrun's BIOS ROM and the interrupt vector table that points into it.

rom.bin is rom.asm assembled (`make rom`; tests/test_bios_rom.py checks they agree), shipped with
kvmrun so that nothing is assembled at run time. The offsets below are where rom.asm puts each
block. Pure."""
from __future__ import annotations

import os
import struct

from ..platform.memory_slots import KVM_MEM_READONLY, Window

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Dict

ROM_SEGMENT = 0xF000
ROM_ADDR = ROM_SEGMENT << 4
ROM_SIZE = 0x10000
BIOS_PORT = 0xF5                  # rom.asm's stubs OUT here

STUB_SIZE = 4                     # out BIOS_PORT, al; iret; nop
STUB_OUT_SIZE = 2                 # IP after the OUT is stub + 2
WAIT_FOR_INTERRUPT = 0x0400
SLAVE_IRQ = 0x0460
JUST_RETURN = 0x0470
START = 0x0480                    # where vCPU 0 starts: the PICs and PIT, then 0000:7C00
DISKETTE_PARAMETERS = 0x04C0
TIMER_TICK = 0x0500                # IRQ 0; a CPU exception on vector 08h goes on to its stub
MASTER_IRQS = 0x0560               # IRQ n (1-7) at MASTER_IRQS + IRQ_STRIDE * n, the same check first
IRQ_STRIDE = 0x20
RESET_VECTOR = 0xFFF0

# Its own memory slot, read-only: a guest's write to the ROM is an MMIO exit, dropped (--strict-io: a fault).
READ_ONLY_WINDOW = Window(ROM_ADDR, ROM_SIZE, KVM_MEM_READONLY)

VECTORS = 256
IVT_SIZE = VECTORS * 4


def overlaps_rom(addr: int, length: int) -> bool:
    """Whether length bytes at addr touch the ROM, which no service or trap writes: KVM keeps it
    read-only for the guest, but kvmrun's own writes to guest memory would change it."""
    return length > 0 and addr < ROM_ADDR + ROM_SIZE and ROM_ADDR < addr + length


def rom_bytes() -> bytes:
    # Beside this file (package data). Not importlib.resources: its import alone costs ~13 ms of start-up.
    with open(os.path.join(os.path.dirname(__file__), "rom.bin"), "rb") as f:
        return f.read()


def handlers() -> Dict[int, int]:
    """Vectors whose entry is not a trap stub: the IRQs, the hooks that only return, and int 1Eh's
    table. Every other vector traps to kvmrun, which services it or names it in a fault report."""
    table = {0x08: TIMER_TICK, 0x1B: JUST_RETURN, 0x1C: JUST_RETURN, 0x1E: DISKETTE_PARAMETERS,
             0x4A: JUST_RETURN}
    table.update({0x08 + irq: MASTER_IRQS + IRQ_STRIDE * irq for irq in range(1, 8)})
    table.update({vector: SLAVE_IRQ for vector in range(0x70, 0x78)})
    return table


def ivt_bytes() -> bytes:
    own = handlers()
    words = []
    for vector in range(VECTORS):
        words += [own.get(vector, vector * STUB_SIZE), ROM_SEGMENT]
    return struct.pack(f"<{2 * VECTORS}H", *words)


def stub_vector(rip_offset: int):
    """The vector whose stub's OUT trapped, given where RIP is in the ROM at the exit (an offset, wherever
    CS puts it: F000:0006 and FFFF:0016 are the same byte); "reset" for the reset vector's OUT; None
    when the OUT came from elsewhere (not a BIOS call). RIP is past the OUT when KVM emulated it (as on
    this host) and still on it after VT-x's or AMD-V's fast port-IO exit, which steps over it when
    the vCPU runs on with RIP unchanged: both are taken."""
    for at in (rip_offset - STUB_OUT_SIZE, rip_offset):
        if 0 <= at < VECTORS * STUB_SIZE and at % STUB_SIZE == 0:
            return at // STUB_SIZE
        if at == RESET_VECTOR:
            return "reset"
    return None
