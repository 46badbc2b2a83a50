"""The guest-physical memory map a PC kernel is told about (E820 types): what the multiboot,
multiboot2 and PVH boot information and (later) int 15h E820 all report, from one place.

RAM below 640 KiB up to the EBDA (which holds the MP table), a hole for VGA and option ROMs, the
BIOS area reserved, RAM from 1 MiB up to the MMIO gap at 3 GiB, the device area below 4 GiB
reserved, and the rest of RAM from 4 GiB. Pure."""
from __future__ import annotations

from .. import layout
from ..memory import RamLayout

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import NamedTuple, Tuple
else:
    from ..named_tuple import NamedTuple

E820_RAM = 1
E820_RESERVED = 2


class MapEntry(NamedTuple):
    addr: int
    size: int
    type: int                     # E820_RAM or E820_RESERVED

    @property
    def end(self) -> int:
        return self.addr + self.size


def memory_map(ram: RamLayout) -> Tuple[MapEntry, ...]:
    """Every range in address order; RAM entries lie inside RAM, none overlap."""
    low_end = ram.regions[0].end          # RAM is at least 1 MiB (layout.MIN_MEMORY)
    entries = [
        MapEntry(0, layout.BASE_MEMORY_END, E820_RAM),
        MapEntry(layout.BASE_MEMORY_END, layout.EBDA_END - layout.BASE_MEMORY_END, E820_RESERVED),
        MapEntry(layout.BIOS_AREA, layout.HIGH_MEMORY - layout.BIOS_AREA, E820_RESERVED),
    ]
    if low_end > layout.HIGH_MEMORY:
        entries.append(MapEntry(layout.HIGH_MEMORY, low_end - layout.HIGH_MEMORY, E820_RAM))
    entries.append(MapEntry(layout.DEVICE_AREA, layout.RAM_GAP_END - layout.DEVICE_AREA, E820_RESERVED))
    for region in ram.regions[1:]:
        entries.append(MapEntry(region.guest_addr, region.size, E820_RAM))
    return tuple(entries)


def lower_memory_kib(ram: RamLayout) -> int:
    """Multiboot's mem_lower: KiB of RAM from 0 (to the EBDA)."""
    return layout.BASE_MEMORY_END >> 10


def upper_memory_kib(ram: RamLayout) -> int:
    """Multiboot's mem_upper: KiB of RAM from 1 MiB up to the first hole."""
    return max(0, ram.regions[0].end - layout.HIGH_MEMORY) >> 10
