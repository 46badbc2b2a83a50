"""Where kvmrun's own boot structures go for a given mode and RAM size (boot/protocols/kvmrun_abi.py
builds and places them)."""
from __future__ import annotations

from .. import layout, paging
from ..memory import RamLayout, RamRegion
from ..options import OptionError
from .cpu_modes import GDT_LIMIT, Mode, stack_tops
from .plan import Reserved

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import List, NamedTuple, Tuple
else:
    from ..named_tuple import NamedTuple


class BootStructures(NamedTuple):
    reserved: Tuple[Reserved, ...]
    stack_tops: Tuple[int, ...]   # per vCPU; empty in real mode (SP is fixed there)


def stack_region(mode: Mode, mem: RamLayout, cpus: int) -> RamRegion:
    """The RAM region whose top the stacks are carved from: the highest one the mode can address
    (below 4 GiB without paging), unless --memory puts too little above 4 GiB for all of them
    (3G+4K leaves 4 KiB there), when they go below 3 GiB instead."""
    high = mem.regions[-1]
    if mode is Mode.LONG and high.size >= cpus * layout.STACK_SIZE:
        return high
    return mem.regions[0]


def plan_boot_structures(mode: Mode, mem: RamLayout, cpus: int, one_gib_pages: bool) -> BootStructures:
    if mode is Mode.REAL:
        from .no_bios import RESERVED        # here: protected and long mode need none of it
        return BootStructures(reserved=RESERVED, stack_tops=())
    reserved: List[Reserved] = [
        Reserved(layout.GDT_ADDR, layout.GDT_ADDR + GDT_LIMIT + 1, "GDT"),
        Reserved(layout.TSS_ADDR, layout.TSS_ADDR + layout.TSS_SIZE, "TSS"),
    ]
    if mode is Mode.LONG:
        span = paging.mapped_span(mem.top)
        end = layout.PAGE_TABLES_ADDR + paging.table_pages(span, one_gib_pages) * layout.PAGE_SIZE
        reserved.append(Reserved(layout.PAGE_TABLES_ADDR, end, "page tables"))
    region = stack_region(mode, mem, cpus)
    top = region.end
    bottom = top - cpus * layout.STACK_SIZE
    floor = max(r.end for r in reserved)
    if bottom < max(floor, region.guest_addr):
        raise OptionError("memory", f"must hold {cpus} vCPU stack{'s' if cpus > 1 else ''} of 64 KiB beside "
                                    f"kvmrun's tables, not {mem.size} bytes")
    reserved.append(Reserved(bottom, top, f"vCPU stack{'s' if cpus > 1 else ''}"))
    return BootStructures(reserved=tuple(reserved), stack_tops=tuple(stack_tops(top, cpus)))
