"""The MP table (Intel MultiProcessor Specification 1.4) that tells a PC kernel its processors, its
IOAPIC and how the ISA interrupts reach it, as a PC's firmware leaves one in the EBDA.

Layout, each piece right after the one before, every multi-byte field little-endian:
- the MP floating pointer structure (spec 4.1, 16 bytes, on a 16-byte boundary: kernels search
  for "_MP_" on paragraph boundaries), pointing at
- the configuration table header (spec 4.2, 44 bytes), then its base table entries, grouped by
  type in ascending order (spec 4.3): one processor entry per vCPU, the ISA bus, the IOAPIC, the
  ISA interrupts, the two local interrupts. No OEM table, no extended table.

What it describes is what KVM gives the machine (platform/interrupts.py): local APICs at 0xFEE00000
with APIC ID = vCPU index, one IOAPIC at 0xFEC00000, and KVM's default routing (GSI n -> IOAPIC
pin n), so ISA IRQ n goes to INTIN n; the PICs reach the BSP's LINT0 (ExtINT), NMIs every LINT1.
Pure: bytes, written by the boot protocol that needs them (boot/protocols/pc.py).
"""
from __future__ import annotations

import struct

from .. import layout
from ..options import OptionError

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Iterable, List

# --- Entry sizes (spec 4.1-4.3) ----------------------------------------------------------------------
FLOATING_POINTER_SIZE = 16
HEADER_SIZE = 44
PROCESSOR_ENTRY_SIZE = 20
BUS_ENTRY_SIZE = IOAPIC_ENTRY_SIZE = INTERRUPT_ENTRY_SIZE = 8

# Entry types (spec table 4-3), in the order the table holds them.
PROCESSOR, BUS, IOAPIC, IO_INTERRUPT, LOCAL_INTERRUPT = 0, 1, 2, 3, 4

SPEC_REVISION = 4                         # MPS 1.4
OEM_ID = b"KVMRUN  "                      # 8 bytes, space-padded
PRODUCT_ID = b"PC          "              # 12 bytes, space-padded

LOCAL_APIC_ADDR = 0xFEE00000
LOCAL_APIC_VERSION = 0x14                 # what KVM's local APIC reports in its version register
IOAPIC_ADDR = 0xFEC00000
IOAPIC_VERSION = 0x11                     # the 82093AA's, which KVM's IOAPIC reports

CPU_ENABLED = 1 << 0                      # EN
CPU_BOOTSTRAP = 1 << 1                    # BP
IOAPIC_ENABLED = 1 << 0
# The processor entries' CPU signature and feature flags are CPUID leaf 1's EAX and EDX on real
# firmware (spec 4.3.1). A pure table cannot see the vCPUs' CPUID, and kernels read CPUID
# themselves; like Firecracker and crosvm, the table says family 6 with an FPU and an on-chip APIC.
CPU_SIGNATURE = 0x600                     # family 6, model 0, stepping 0
CPU_FEATURES = (1 << 0) | (1 << 9)        # FPU, APIC

ISA_BUS_ID = 0
ISA_BUS_TYPE = b"ISA   "                  # 6 bytes, space-padded (spec table 4-8)

INT, NMI, SMI, EXTINT = 0, 1, 2, 3        # interrupt types (spec table 4-10)
CONFORMS_TO_BUS = 0                       # polarity and trigger as the bus says: ISA is edge, high
ALL_LOCAL_APICS = 0xFF
BSP_APIC_ID = 0
# ISA IRQs and the IOAPIC inputs they reach. KVM's PIT raises GSI 0, so IRQ 0 arrives at INTIN 0,
# not at INTIN 2 where a PC (and QEMU, which routes GSI 0 to pin 2) wires the timer. IRQ 2 is the
# PICs' cascade: no device raises it, so no entry names it (as on a PC, where firmware omits it too).
ISA_IRQS = tuple(irq for irq in range(16) if irq != 2)

# The table lives in the 1 KiB below 640 KiB (layout.MP_TABLE_ADDR up to layout.EBDA_END); how many
# processor entries fit beside everything else it holds.
TABLE_ROOM = layout.EBDA_END - layout.MP_TABLE_ADDR
_FIXED_SIZE = (FLOATING_POINTER_SIZE + HEADER_SIZE + BUS_ENTRY_SIZE + IOAPIC_ENTRY_SIZE
               + INTERRUPT_ENTRY_SIZE * (len(ISA_IRQS) + 2))
MAX_CPUS = (TABLE_ROOM - _FIXED_SIZE) // PROCESSOR_ENTRY_SIZE          # 40


def table_size(cpus: int) -> int:
    """Bytes of the floating pointer and the configuration table for `cpus` vCPUs."""
    return _FIXED_SIZE + PROCESSOR_ENTRY_SIZE * cpus


def checksum(data: Iterable[int]) -> int:
    """The byte that makes `data` plus it sum to 0 modulo 256 (spec 4.1 and 4.2)."""
    return -sum(data) & 0xFF


def mp_table_bytes(cpus: int, addr: int) -> bytes:
    """The floating pointer at `addr` followed by the configuration table it points at, for `cpus`
    vCPUs with APIC IDs 0..cpus-1 (vCPU 0 the bootstrap processor) and the IOAPIC's ID = cpus.

    OptionError naming cpus beyond MAX_CPUS (what fits in the 1 KiB); ValueError for an `addr` no
    kernel would find (not on a 16-byte boundary, or the table reaching past 4 GiB)."""
    if cpus < 1:
        raise ValueError(f"an MP table describes at least one processor, not {cpus}")
    if cpus > MAX_CPUS:
        raise OptionError("cpus", f"must be at most {MAX_CPUS} for a PC kernel (multiboot, multiboot2, PVH): "
                                  f"its MP table fills the {TABLE_ROOM} bytes below 640 KiB with {MAX_CPUS} "
                                  f"processors at most, not {cpus}")
    if addr % 16 or not 0 <= addr <= (1 << 32) - table_size(cpus):
        raise ValueError(f"an MP table at 0x{addr:x} is not on a 16-byte boundary below 4 GiB")
    entries = _entries(cpus)
    body = b"".join(entries)
    header = _header(len(entries), HEADER_SIZE + len(body))
    header[7] = checksum(header + body)
    table = bytes(header) + body
    return _floating_pointer(addr + FLOATING_POINTER_SIZE) + table


def _floating_pointer(table_addr: int) -> bytes:
    pointer = bytearray(struct.pack("<4sIBBB5B", b"_MP_", table_addr, FLOATING_POINTER_SIZE // 16,
                                    SPEC_REVISION, 0,
                                    0,            # feature byte 1: 0 = a configuration table follows
                                    0, 0, 0, 0))  # feature 2 bit 7 clear: virtual wire, no IMCR
    pointer[10] = checksum(pointer)
    return bytes(pointer)


def _header(entry_count: int, base_table_length: int) -> bytearray:
    return bytearray(struct.pack("<4sHBB8s12sIHHIHBB", b"PCMP", base_table_length, SPEC_REVISION, 0,
                                 OEM_ID, PRODUCT_ID, 0, 0, entry_count, LOCAL_APIC_ADDR, 0, 0, 0))


def _entries(cpus: int) -> List[bytes]:
    ioapic_id = cpus                      # the first APIC ID no processor has
    entries = [struct.pack("<BBBBII8x", PROCESSOR, apic_id, LOCAL_APIC_VERSION,
                           CPU_ENABLED | (CPU_BOOTSTRAP if apic_id == BSP_APIC_ID else 0),
                           CPU_SIGNATURE, CPU_FEATURES)
               for apic_id in range(cpus)]
    entries.append(struct.pack("<BB6s", BUS, ISA_BUS_ID, ISA_BUS_TYPE))
    entries.append(struct.pack("<BBBBI", IOAPIC, ioapic_id, IOAPIC_VERSION, IOAPIC_ENABLED, IOAPIC_ADDR))
    entries.extend(struct.pack("<BBHBBBB", IO_INTERRUPT, INT, CONFORMS_TO_BUS, ISA_BUS_ID, irq, ioapic_id, irq)
                   for irq in ISA_IRQS)
    entries.append(struct.pack("<BBHBBBB", LOCAL_INTERRUPT, EXTINT, CONFORMS_TO_BUS, ISA_BUS_ID, 0,
                               BSP_APIC_ID, 0))                     # the PICs -> the BSP's LINT0
    entries.append(struct.pack("<BBHBBBB", LOCAL_INTERRUPT, NMI, CONFORMS_TO_BUS, ISA_BUS_ID, 0,
                               ALL_LOCAL_APICS, 1))                 # NMI -> every LINT1
    return entries
