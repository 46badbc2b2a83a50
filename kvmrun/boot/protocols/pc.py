"""The machine multiboot, multiboot2 and PVH kernels boot on, as a PC's firmware leaves it: shared by
those protocols, which add their kernel and their boot information (docs/guest-abi.md, "PC kernels").

- vCPU 0 in 32-bit protected mode, paging off, flat segments from kvmrun's GDT (0x500) with its TSS
  in TR (0x600), interrupts off, the protocol's registers (EAX magic, EBX its boot information);
- the other vCPUs waiting for INIT/SIPI, with the in-kernel PICs, IOAPIC, local APICs and PIT on;
- an MP table (MPS 1.4) at the top of conventional memory, with the BIOS data area words that lead
  a spec-following search to it;
- structures placed after the kernel, page-aligned, as QEMU places its boot information: never in
  low memory, where kernels put their own SMP trampolines and stacks.
Pure: builds a BootSetup, for check_setup to judge.
"""
from __future__ import annotations

import struct

from ... import layout
from ...errors import LoaderError
from ...memory import RamLayout
from ...platform.needs import AP_START_SIPI, PlatformNeeds
from ..cpu_modes import GDT_LIMIT, Mode, gdt_bytes, tss_bytes
from ..plan import LoadPlan, Reserved
from ..setup import Blob, BootSetup, VcpuStart

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import List, Mapping, NamedTuple, Sequence, Tuple
else:
    from ...named_tuple import NamedTuple

PAGE = layout.PAGE_SIZE


class Module(NamedTuple):
    """A file handed to the kernel beside it (`--module FILE[=CMDLINE]`)."""
    path: str                     # as the user gave it (a manifest's: as written there)
    data: bytes
    cmdline: str                  # the module's string: its path, then its command line if given


def align_up(value: int, alignment: int) -> int:
    return -(-value // alignment) * alignment


def c_string(text: str) -> bytes:
    """`text` as the kernel reads it: UTF-8 (a path's undecodable bytes as they were), NUL-terminated."""
    return text.encode("utf-8", "surrogateescape") + b"\0"


def kernel_blobs(plan: LoadPlan) -> Tuple[Blob, ...]:
    return tuple(Blob(seg.addr, seg.data, seg.memsz, seg.name, file_offset=seg.file_offset, flags=seg.flags)
                 for seg in plan.segments)


def end_of(blobs: Sequence[Blob]) -> int:
    """One past the highest byte of `blobs` (0 for none)."""
    return max((blob.end for blob in blobs), default=0)


class StructureArea:
    """Boot information built in one area of guest RAM: each piece placed at the next address with
    its alignment; `blob()` is the whole area, written as one structure blob."""

    def __init__(self, base: int, name: str):
        self.base = base
        self.name = name
        self._data = bytearray()

    def address(self) -> int:
        """Where the next piece would go without alignment."""
        return self.base + len(self._data)

    def place(self, data: bytes, align: int = 8) -> int:
        """Append `data` at the next `align`-ed address; returns that guest-physical address."""
        offset = align_up(self.base + len(self._data), align) - self.base
        self._data.extend(bytes(offset - len(self._data)))
        self._data.extend(data)
        return self.base + offset

    def reserve(self, size: int, align: int = 8) -> int:
        """Room for `size` bytes filled in later with `patch` (a structure that points at pieces
        placed after it)."""
        return self.place(bytes(size), align)

    def patch(self, addr: int, data: bytes) -> None:
        offset = addr - self.base
        if not 0 <= offset <= len(self._data) - len(data):
            raise ValueError(f"patch at 0x{addr:x} (+{len(data)}) lies outside {self.name}")
        self._data[offset:offset + len(data)] = data

    def blob(self) -> Blob:
        return Blob(self.base, bytes(self._data), len(self._data), self.name, structure=True)


def modules_start(kernel: Sequence[Blob]) -> int:
    """Where the first module goes: the page after the kernel's highest byte, never below 1 MiB, where
    kernels keep their own low-memory structures and the VGA window lies."""
    return align_up(max(end_of(kernel), layout.HIGH_MEMORY), PAGE)


def place_modules(modules: Sequence[Module], start: int, alignment: int = PAGE) -> Tuple[Tuple[Blob, int, int], ...]:
    """Each module's blob, address and size, one after another from `start`, each `alignment`-aligned.
    Numbered from 0, as kernels count them (and vCPUs and segments are)."""
    placed = []
    addr = align_up(start, alignment)
    for index, module in enumerate(modules):
        blob = Blob(addr, module.data, len(module.data), f"module {index} ({module.path})", structure=True)
        placed.append((blob, addr, len(module.data)))
        addr = align_up(addr + len(module.data), alignment)
    return tuple(placed)


def ram_text(ram: RamLayout) -> str:
    """The guest's RAM as messages give it: its size and where it lies."""
    size = f"{ram.size >> 20} MiB" if ram.size % layout.MiB == 0 else f"{ram.size >> 10} KiB"
    return f"{size}: {ram.describe()}"


def refuse_kernel_outside_ram(kernel: Sequence[Blob], ram: RamLayout) -> None:
    """The kernel's own parts inside RAM, checked before anything is placed after them: a kernel
    linked where there is no RAM is the kernel's fault, not that of the modules or the boot
    information that would follow it."""
    for blob in kernel:
        if ram.contains(blob.addr, blob.size):
            continue
        what = "the kernel" if blob.name == "the kernel" else f"the kernel's {blob.name}"
        if ram.contains(blob.addr, 1):
            problem = f"{what} (0x{blob.addr:x}-0x{blob.end:x}) runs past the end of the guest's RAM"
        elif what == "the kernel":
            problem = f"the kernel's load address 0x{blob.addr:x} lies outside the guest's RAM"
        else:
            problem = f"the load address 0x{blob.addr:x} of {what} lies outside the guest's RAM"
        if blob.addr < layout.RAM_GAP_END and blob.end > layout.RAM_GAP_START:
            hint = "the PC has no RAM from 3 GiB to 4 GiB (the MMIO hole)"
        elif blob.end > RamLayout(layout.MAX_MEMORY).top:
            hint = f"no --memory reaches it (at most {layout.MAX_MEMORY >> 30}G)"
        else:
            hint = "give more with --memory"
        raise LoaderError(f"{problem} ({ram_text(ram)}); {hint}")


def pc_setup(kernel: Sequence[Blob], structures: Sequence[Blob], entry: int, regs: Mapping[str, int],
             cpus: int, notes: Sequence[str] = ()) -> BootSetup:
    """The setup booting `kernel` at `entry` (32-bit, paging off) with the BSP's `regs`, the
    protocol's `structures` (boot information, modules) written with it, and the PC platform."""
    from ...platform.mptable import mp_table_bytes    # the MP table's own module: platform, not boot
    gdt, tss = gdt_bytes(), tss_bytes()
    mp_table = mp_table_bytes(cpus, layout.MP_TABLE_ADDR)
    own: List[Blob] = [
        Blob(layout.BDA_EBDA_SEGMENT, struct.pack("<H", layout.MP_TABLE_ADDR >> 4), 2, "BIOS data area", True),
        Blob(layout.BDA_BASE_MEMORY_KIB, struct.pack("<H", layout.BASE_MEMORY_END >> 10), 2, "BIOS data area",
             True),
        Blob(layout.GDT_ADDR, gdt, len(gdt), "GDT", True),
        Blob(layout.TSS_ADDR, tss, len(tss), "TSS", True),
        Blob(layout.MP_TABLE_ADDR, mp_table, len(mp_table), "MP table", True),
    ]
    reserved = (
        Reserved(layout.BDA_EBDA_SEGMENT, layout.BDA_BASE_MEMORY_KIB + 2, "BIOS data area"),
        Reserved(layout.GDT_ADDR, layout.GDT_ADDR + GDT_LIMIT + 1, "GDT"),
        Reserved(layout.TSS_ADDR, layout.TSS_ADDR + layout.TSS_SIZE, "TSS"),
        Reserved(layout.MP_TABLE_ADDR, layout.EBDA_END, "MP table"),
    ) + tuple(Reserved(blob.addr, blob.end, blob.name) for blob in structures)
    vcpus = (VcpuStart(Mode.PROTECTED, entry, 0, dict(regs)),) + tuple(
        VcpuStart(Mode.PROTECTED, entry, 0, {}, runnable=False) for _ in range(1, cpus))
    # The kernel first: check_setup names the first blob that does not fit, and the kernel is the user's.
    return BootSetup(blobs=tuple(kernel) + tuple(own) + tuple(structures), reserved=reserved, vcpus=vcpus,
                     needs=PlatformNeeds(irqchip=True, ap_start=AP_START_SIPI), notes=tuple(notes))
