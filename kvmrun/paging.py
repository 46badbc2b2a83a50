"""Identity-mapped 4-level page tables for long mode (virtual == physical), pure logic.

One PML4 page, one PDPT page per 512 GiB, and, only without 1 GiB pages, one page directory per GiB
of 2 MiB pages. The pages follow each other from `base`; only those needed are written.
"""
from __future__ import annotations

import struct

from .layout import PAGE_SIZE, GiB
from .memo import memoized

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import NamedTuple
else:
    from .named_tuple import NamedTuple

PRESENT = 1 << 0
WRITABLE = 1 << 1
PAGE_SIZE_BIT = 1 << 7            # PS: this entry maps a 1 GiB (PDPTE) or 2 MiB (PDE) page
TABLE_FLAGS = PRESENT | WRITABLE
LARGE_PAGE_FLAGS = PRESENT | WRITABLE | PAGE_SIZE_BIT

_ENTRIES = 512
_PDPT_SPAN = _ENTRIES * GiB       # what one PDPT covers
_MAX_SPAN = _ENTRIES * _PDPT_SPAN  # what one PML4 covers: 256 TiB


class PageTables(NamedTuple):
    cr3: int                      # guest-physical address of the PML4
    start: int                    # [start, end): the guest-physical pages the tables occupy
    end: int
    span: int                     # bytes identity-mapped from address 0
    one_gib_pages: bool


def mapped_span(ram_top: int) -> int:
    """Map all RAM and at least the first 4 GiB (the ABI), in whole GiB."""
    return max(4 * GiB, -(-ram_top // GiB) * GiB)


def table_pages(span: int, one_gib_pages: bool) -> int:
    """How many 4 KiB pages the identity map of `span` bytes takes."""
    gibs = -(-span // GiB)
    pdpts = -(-gibs // _ENTRIES)
    return 1 + pdpts + (0 if one_gib_pages else gibs)


def identity_map_bytes(base: int, ram_top: int, one_gib_pages: bool) -> "tuple[PageTables, bytes]":
    """The tables as they go to guest memory from `base`: exactly (end - start) bytes, every page of
    them written, so a boot protocol can place them like any other blob."""
    span = mapped_span(ram_top)
    if span > _MAX_SPAN:
        raise ValueError(f"cannot identity-map 0x{span:x} bytes with one PML4")
    gibs = span // GiB
    pdpts = -(-gibs // _ENTRIES)
    pml4 = base
    first_pdpt = pml4 + PAGE_SIZE
    first_pd = first_pdpt + pdpts * PAGE_SIZE
    end = base + table_pages(span, one_gib_pages) * PAGE_SIZE

    # Entries are arithmetic progressions (address | flags, the flags in the low bits the addresses
    # leave clear), so each table is a range. The pages follow each other: PML4, PDPTs, directories.
    pages = [_table(range(first_pdpt | TABLE_FLAGS, (first_pdpt | TABLE_FLAGS) + pdpts * PAGE_SIZE, PAGE_SIZE))]
    for p in range(pdpts):
        count = min(gibs, (p + 1) * _ENTRIES) - p * _ENTRIES
        if one_gib_pages:
            first, step = p * _ENTRIES * GiB | LARGE_PAGE_FLAGS, GiB
        else:
            first, step = first_pd + p * _ENTRIES * PAGE_SIZE | TABLE_FLAGS, PAGE_SIZE
        pages.append(_table(range(first, first + count * step, step)))
    if not one_gib_pages:
        two_mib = 2 << 20
        for g in range(gibs):
            first = g * GiB | LARGE_PAGE_FLAGS
            pages.append(_table(range(first, first + _ENTRIES * two_mib, two_mib)))
    data = b"".join(pages)
    assert len(data) == end - base
    return PageTables(cr3=pml4, start=base, end=end, span=span, one_gib_pages=one_gib_pages), data


def _table(entries: range) -> bytes:
    """One 512-entry table; entries past the given ones are zero (not present)."""
    return _table_bytes(entries.start, entries.step, len(entries))


_TABLE = struct.Struct(f"<{_ENTRIES}Q")


@memoized(256)
def _table_bytes(first: int, step: int, count: int) -> bytes:
    # Built once per process: every boot of the same RAM size writes the same tables.
    return _TABLE.pack(*range(first, first + step * count, step), *[0] * (_ENTRIES - count))
