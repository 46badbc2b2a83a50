"""GuestMemory: guest RAM with bounds-checked access. No other module slices guest RAM.

RAM is guest-physical from 0 up to 3 GiB and continues at 4 GiB (layout.RAM_GAP_*). On the host it is
one anonymous MAP_NORESERVE mapping, so untouched RAM costs nothing; tests can back it with a
bytearray instead.
"""
from __future__ import annotations

import ctypes
import mmap
import struct

from . import layout
from .errors import GuestMemoryError, KvmrunError

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import List, NamedTuple, Optional, Tuple, Union
else:
    from .named_tuple import NamedTuple

_MAP_NORESERVE = 0x4000           # <sys/mman.h>; Python's mmap module does not name it


class RamRegion(NamedTuple):
    guest_addr: int
    size: int
    host_offset: int

    @property
    def end(self) -> int:
        return self.guest_addr + self.size


def ram_regions(size: int) -> List[RamRegion]:
    """How `size` bytes of RAM are laid out in guest-physical space around the MMIO gap."""
    low = min(size, layout.RAM_GAP_START)
    regions = [RamRegion(0, low, 0)]
    if size > low:
        regions.append(RamRegion(layout.RAM_GAP_END, size - low, low))
    return regions


class RamLayout:
    """Where RAM is in guest-physical space, without the memory itself: enough to check a plan."""

    def __init__(self, size: int):
        self.size = size
        self.regions = ram_regions(size)

    @property
    def top(self) -> int:
        """One past the highest guest-physical RAM address."""
        return self.regions[-1].end

    def contains(self, guest_addr: int, length: int) -> bool:
        return self._offset(guest_addr, length) is not None

    def _offset(self, guest_addr: int, length: int) -> Optional[int]:
        if guest_addr < 0 or length < 0:
            return None
        for region in self.regions:
            if region.guest_addr <= guest_addr and guest_addr + length <= region.end:
                return region.host_offset + guest_addr - region.guest_addr
        return None

    def describe(self) -> str:
        return ", ".join(f"0x{r.guest_addr:x}-0x{r.end:x}" for r in self.regions)


class GuestMemory(RamLayout):
    def __init__(self, size: int, backing=None):
        super().__init__(size)
        if backing is None:
            try:
                backing = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | _MAP_NORESERVE,
                                    prot=mmap.PROT_READ | mmap.PROT_WRITE)
            except (OSError, OverflowError) as err:
                raise KvmrunError(f"cannot reserve {size} bytes of host memory for guest RAM: {err}") from None
        elif len(backing) != size:
            raise ValueError("backing buffer must be exactly `size` bytes")
        self._buf = backing

    @classmethod
    def for_tests(cls, size: int) -> "GuestMemory":
        return cls(size, bytearray(size))

    def host_address(self) -> int:
        """Address of the mapping in this process, for KVM_SET_USER_MEMORY_REGION."""
        anchor = ctypes.c_char.from_buffer(self._buf)
        try:
            return ctypes.addressof(anchor)
        finally:
            del anchor          # the export would keep the mmap from closing

    def _checked(self, guest_addr: int, length: int) -> int:
        offset = self._offset(guest_addr, length)
        if offset is None:
            raise GuestMemoryError(
                f"invalid guest address 0x{guest_addr:x} (+{length} bytes): outside guest RAM "
                f"({self.describe()})")
        return offset

    def read(self, guest_addr: int, length: int) -> bytes:
        offset = self._checked(guest_addr, length)
        return bytes(self._buf[offset:offset + length])

    def write(self, guest_addr: int, data: Union[bytes, memoryview]) -> None:
        offset = self._checked(guest_addr, len(data))
        self._buf[offset:offset + len(data)] = data

    def read_u64(self, guest_addr: int) -> int:
        return struct.unpack("<Q", self.read(guest_addr, 8))[0]

    def write_u64(self, guest_addr: int, value: int) -> None:
        self.write(guest_addr, struct.pack("<Q", value))

    def zero(self, guest_addr: int, length: int) -> None:
        """Zero a range; whole pages of the mmap are dropped instead of written, so a large .bss
        costs no host memory."""
        offset = self._checked(guest_addr, length)
        end = offset + length
        if isinstance(self._buf, mmap.mmap):
            first = -(-offset // mmap.PAGESIZE) * mmap.PAGESIZE
            last = end // mmap.PAGESIZE * mmap.PAGESIZE
            if last - first >= mmap.PAGESIZE:
                self._buf.madvise(mmap.MADV_DONTNEED, first, last - first)
                self._buf[offset:first] = bytes(first - offset)
                self._buf[last:end] = bytes(end - last)
                return
        self._buf[offset:end] = bytes(length)

    def close(self) -> None:
        if isinstance(self._buf, mmap.mmap) and not self._buf.closed:
            self._buf.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def overlap(a: Tuple[int, int], b: Tuple[int, int]) -> bool:
    """Whether half-open ranges [start, end) a and b share a byte."""
    return a[0] < b[1] and b[0] < a[1]
