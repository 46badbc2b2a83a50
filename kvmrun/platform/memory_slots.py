"""Guest RAM as KVM memory slots: most of it in as few slots as its regions, and windows cut out as
slots of their own with flags — the VGA text window dirty-logged (platform/screen_window.py), a
BIOS's ROM read-only (bios/rom.py). Pure."""
from __future__ import annotations

from ..memory import RamRegion

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import List, NamedTuple, Sequence
else:
    from ..named_tuple import NamedTuple

KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_READONLY = 1 << 0, 1 << 1      # kvm/abi.py's, without importing ctypes


class Window(NamedTuple):
    """A range of RAM that is a memory slot of its own, with KVM flags."""
    start: int
    size: int
    flags: int

    @property
    def end(self) -> int:
        return self.start + self.size


class Slot(NamedTuple):
    region: RamRegion
    flags: int = 0

    @property
    def log_dirty(self) -> bool:
        return bool(self.flags & KVM_MEM_LOG_DIRTY_PAGES)


def memory_slots(regions: Sequence[RamRegion], windows: Sequence[Window]) -> List[Slot]:
    """RAM's regions as KVM memory slots, each window (inside one region, not overlapping another) cut
    out as a slot of its own with its flags: the VGA text window logged, a BIOS ROM read-only."""
    slots: List[Slot] = []
    for region in regions:
        at = region.guest_addr
        for window in sorted(w for w in windows if region.guest_addr <= w.start and w.end <= region.end):
            if window.start > at:
                slots.append(Slot(RamRegion(at, window.start - at, region.host_offset + at - region.guest_addr)))
            offset = region.host_offset + window.start - region.guest_addr
            slots.append(Slot(RamRegion(window.start, window.size, offset), window.flags))
            at = window.end
        if at < region.end:
            slots.append(Slot(RamRegion(at, region.end - at, region.host_offset + at - region.guest_addr)))
    return slots
