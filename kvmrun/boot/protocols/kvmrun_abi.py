"""kvmrun's own boot ABI (docs/guest-abi.md) as a boot protocol.

Protected and long mode: kvmrun's GDT at 0x500 and TSS at 0x600, in long mode identity-mapped page
tables from 0x1000, and a 64 KiB stack per vCPU at the top of RAM; every vCPU starts at the entry
with RDI = its index, RSI = the vCPU count, RDX = RAM in KiB, RSP = the top of its stack.
Real mode: the no-BIOS interrupt vector table and its HLT stubs (boot/no_bios.py); CS:IP reaches
the entry, SP = 0x7C00, DL = 0x80. No interrupt controllers; every vCPU runnable at once.
"""
from __future__ import annotations

from ... import layout, paging
from ...memory import RamLayout
from ...platform.needs import PlatformNeeds
from ..cpu_modes import Mode, gdt_bytes, tss_bytes
from ..plan import LoadPlan
from ..setup import Blob, BootSetup, VcpuStart
from ..structures import plan_boot_structures

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Dict, List, Tuple


def plan(image_plan: LoadPlan, ram: RamLayout, cpus: int, mode: Mode, one_gib_pages: bool) -> BootSetup:
    """The setup that boots `image_plan` in `mode` on `cpus` vCPUs. ConfigError when the vCPU stacks
    do not fit in RAM; everything else is for check_setup to judge."""
    structures = plan_boot_structures(mode, ram, cpus, one_gib_pages)
    own, cr3 = _structures(mode, ram, one_gib_pages)
    image = tuple(Blob(seg.addr, seg.data, seg.memsz, seg.name, file_offset=seg.file_offset, flags=seg.flags)
                  for seg in image_plan.segments)
    vcpus = tuple(VcpuStart(mode, image_plan.entry, cr3, _registers(mode, index, cpus, ram, structures.stack_tops))
                  for index in range(cpus))
    return BootSetup(blobs=own + image, reserved=structures.reserved, vcpus=vcpus, needs=PlatformNeeds(),
                     notes=image_plan.notes)


def _structures(mode: Mode, ram: RamLayout, one_gib_pages: bool) -> Tuple[Tuple[Blob, ...], int]:
    """kvmrun's own blobs for `mode`, named as their reserved ranges are, and CR3 (0 without paging)."""
    if mode is Mode.REAL:
        from .. import no_bios             # here: protected and long mode need none of it
        return (Blob(no_bios.IVT_ADDR, no_bios.ivt_bytes(), no_bios.IVT_SIZE, no_bios.RESERVED[0].what, True),
                Blob(no_bios.STUBS_ADDR, no_bios.stubs_bytes(), no_bios.VECTORS, no_bios.RESERVED[1].what,
                     True)), 0
    gdt, tss = gdt_bytes(), tss_bytes()
    blobs: List[Blob] = [Blob(layout.GDT_ADDR, gdt, len(gdt), "GDT", True),
                         Blob(layout.TSS_ADDR, tss, len(tss), "TSS", True)]
    if mode is not Mode.LONG:
        return tuple(blobs), 0
    tables, data = paging.identity_map_bytes(layout.PAGE_TABLES_ADDR, ram.top, one_gib_pages)
    blobs.append(Blob(tables.start, data, len(data), "page tables", True))
    return tuple(blobs), tables.cr3


def _registers(mode: Mode, index: int, cpus: int, ram: RamLayout, stack_tops: Tuple[int, ...]) -> Dict[str, int]:
    if mode is Mode.REAL:
        return {"rsp": layout.REAL_MODE_SP, "rdx": layout.REAL_MODE_BOOT_DRIVE}
    return {"rdi": index, "rsi": cpus, "rdx": ram.size >> 10, "rsp": stack_tops[index]}
