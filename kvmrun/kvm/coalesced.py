"""The coalesced MMIO/PIO ring (api.rst: KVM_REGISTER_COALESCED_MMIO): writes KVM kept instead of
exiting for each one. The ring is one page per VM, shared by every vCPU's kvm_run mapping at page
KVM_CAP_COALESCED_MMIO. It must be drained, in order, before any other exit is handled."""
from __future__ import annotations

import struct

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Callable

_HEAD = struct.Struct("<II")                # first (ours to advance), last (the kernel's)
_ENTRY = struct.Struct("<QII")              # phys_addr, len, pio; then data[8]
_ENTRY_SIZE = 24


class CoalescedRing:
    def __init__(self, mapping, page: int, page_size: int):
        self._map = mapping
        self._base = page * page_size
        self._entries = self._base + _HEAD.size
        self._max = (page_size - _HEAD.size) // _ENTRY_SIZE
        self.drained = 0                    # writes handed on so far (--stats: what KVM absorbed)

    def pending(self) -> bool:
        first, last = _HEAD.unpack_from(self._map, self._base)
        return first != last

    def drain(self, write: Callable[[int, int, bytes], None]) -> None:
        """Hand each kept write to `write(address, length, data)`, oldest first."""
        mapping, base, entries, limit = self._map, self._base, self._entries, self._max
        first, last = _HEAD.unpack_from(mapping, base)
        if first >= limit or last >= limit:
            return                          # not a ring KVM wrote: touch nothing
        self.drained += (last - first) % limit
        while first != last:
            at = entries + first * _ENTRY_SIZE
            address, length, _pio = _ENTRY.unpack_from(mapping, at)
            length = min(length, 8)
            write(address, length, mapping[at + 16:at + 16 + length])
            first = (first + 1) % limit
            struct.pack_into("<I", mapping, base, first)
