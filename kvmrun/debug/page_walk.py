"""A guest linear address -> guest-physical, through the guest's own current paging, as the CPU walks it.

The gdb stub reads and writes memory at the addresses the guest's code uses; this turns them into RAM
addresses without asking KVM (KVM_TRANSLATE knows no page sizes nor flags, and needs a paused vCPU).
Pure: page-table entries are read through `read_phys(address, size) -> bytes or None`, None outside
guest RAM, so a walk can never read anything but RAM, and an entry that points elsewhere makes the
address "not mapped" (None), never an exception. Every value an entry holds is the guest's: hostile.

Follows the Intel SDM vol. 3A, chapter 4 ("Paging"):
- CR0.PG=0 (real mode, protected mode without paging): linear = physical, for any 32-bit linear address.
  Real mode's seg*16+off reaches 0x10FFEF; kvmrun keeps A20 on, so it does not wrap at 1 MiB.
- 32-bit paging (PG=1, CR4.PAE=0): 4 KiB pages, and 4 MiB pages with CR4.PSE (PSE-36's address bits
  39:32 in the PDE's bits 20:13).
- PAE paging (PAE=1, EFER.LME=0): 4 PDPTEs, 4 KiB and 2 MiB pages, XD.
- 4-level paging (PAE=1, LME=1): 48-bit canonical addresses, 4 KiB, 2 MiB and 1 GiB pages;
  5-level with CR4.LA57: 57-bit canonical addresses, one more table on top.
A reserved bit set in an entry the walk uses makes the CPU fault (#PF with RSVD, or #GP on loading a
PAE PDPTE): here the address is not mapped. The walk reads PAE's PDPTEs from memory; the CPU reads them
once when CR3 is loaded, so a guest that changed them since sees its old ones.
"""
from __future__ import annotations

import struct

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Callable, List, NamedTuple, Optional, Tuple

    from ..memory import GuestMemory

    ReadPhys = Callable[[int, int], Optional[bytes]]
else:
    from ..named_tuple import NamedTuple

# Control register and EFER bits the walk depends on (SDM vol. 3A 2.5, 4.1).
CR0_PG = 1 << 31
CR4_PSE = 1 << 4
CR4_PAE = 1 << 5
CR4_LA57 = 1 << 12
EFER_LME = 1 << 8
EFER_NXE = 1 << 11

# Paging-structure entry bits (SDM vol. 3A, 4.3-4.5).
PRESENT = 1 << 0
WRITABLE = 1 << 1            # R/W
USER = 1 << 2                # U/S
PAGE_SIZE_BIT = 1 << 7       # PS: this entry maps a page (4 MiB, 2 MiB, 1 GiB), not a table
XD = 1 << 63                 # execute-disable, when EFER.NXE is set

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
PAGE = 4 * KiB
UNPAGED_SIZE = 1 << 32       # without paging, the whole 32-bit linear space maps to itself
MAX_PHYS_BITS = 52           # the SDM's largest MAXPHYADDR: the default, since a guest sees no smaller one here
_LIMIT_32 = 1 << 32


class Translation(NamedTuple):
    """Where a linear address lies in guest-physical memory, and what the entries allow there.

    writable, user and executable combine every level's R/W, U/S and XD as the SDM does for the
    access rights (supervisor writes may still pass a read-only page while CR0.WP is clear);
    page_size is the size of the aligned linear region this one translation covers."""
    physical: int
    writable: bool
    user: bool
    executable: bool
    page_size: int


def translate(linear: int, cr0: int, cr3: int, cr4: int, efer: int, read_phys: ReadPhys,
              max_phys_bits: int = MAX_PHYS_BITS) -> Optional[Translation]:
    """`linear` translated through the paging the control registers select, None when it is not mapped:
    a not-present entry, a reserved bit set, an entry or table outside RAM, a non-canonical address,
    or more than 32 bits where linear addresses have 32."""
    if linear < 0:
        return None
    if not cr0 & CR0_PG:
        if linear >= _LIMIT_32:
            return None
        return Translation(linear, True, True, True, UNPAGED_SIZE)
    if not 32 <= max_phys_bits <= MAX_PHYS_BITS:
        raise ValueError(f"MAXPHYADDR {max_phys_bits} is not between 32 and {MAX_PHYS_BITS}")
    if not cr4 & CR4_PAE:
        return _walk_32bit(linear, cr3, cr4, read_phys, max_phys_bits)
    nx = bool(efer & EFER_NXE)
    if not efer & EFER_LME:
        return _walk_pae(linear, cr3, nx, read_phys, max_phys_bits)
    return _walk_long(linear, cr3, 5 if cr4 & CR4_LA57 else 4, nx, read_phys, max_phys_bits)


def read_linear(linear: int, length: int, cr0: int, cr3: int, cr4: int, efer: int, read_phys: ReadPhys,
                max_phys_bits: int = MAX_PHYS_BITS) -> Optional[bytes]:
    """`length` bytes from `linear` on, translated page by page (consecutive linear pages need not be
    consecutive in RAM); None if any byte's page is not mapped or not in RAM."""
    if length < 0:
        raise ValueError(f"cannot read {length} bytes")
    parts: List[bytes] = []
    while length:
        where = translate(linear, cr0, cr3, cr4, efer, read_phys, max_phys_bits)
        if where is None:
            return None
        chunk = min(length, where.page_size - linear % where.page_size)
        data = read_phys(where.physical, chunk)
        if data is None or len(data) != chunk:
            return None
        parts.append(bytes(data))
        linear += chunk
        length -= chunk
    return b"".join(parts)


def ram_reader(ram: bytes | bytearray | memoryview, base: int = 0) -> ReadPhys:
    """A read_phys over a buffer holding guest-physical [base, base + len(ram)): None for anything
    not wholly inside it."""
    view = memoryview(ram)

    def read_phys(address: int, size: int) -> Optional[bytes]:
        offset = address - base
        if offset < 0 or size < 0 or offset + size > len(view):
            return None
        return bytes(view[offset:offset + size])
    return read_phys


def memory_reader(mem: GuestMemory) -> ReadPhys:
    """A read_phys over the machine's RAM (the MMIO gap and beyond the top are not RAM: None)."""
    def read_phys(address: int, size: int) -> Optional[bytes]:
        return mem.read(address, size) if mem.contains(address, size) else None
    return read_phys


def _entry(read_phys: ReadPhys, address: int, size: int) -> Optional[int]:
    data = read_phys(address, size)
    if data is None or len(data) != size:
        return None
    return struct.unpack("<Q" if size == 8 else "<I", data)[0]


def _address_mask(max_phys_bits: int) -> int:
    """Bits 51:12 of an entry hold the address; those at MAXPHYADDR and above are reserved."""
    return ((1 << max_phys_bits) - 1) & ~(PAGE - 1)


def _walk_32bit(linear: int, cr3: int, cr4: int, read_phys: ReadPhys, max_phys_bits: int) -> Optional[Translation]:
    """SDM 4.3: a page directory of 1024 4-byte entries at CR3[31:12], then a page table or a 4 MiB page."""
    if linear >= _LIMIT_32:
        return None
    pde = _entry(read_phys, (cr3 & 0xFFFFF000) + (linear >> 22) * 4, 4)
    if pde is None or not pde & PRESENT:
        return None
    if pde & PAGE_SIZE_BIT and cr4 & CR4_PSE:
        # Bits 20:13 hold physical address bits 39:32 (PSE-36), up to min(MAXPHYADDR, 40); bit 21 and
        # the rest of 20:13 are reserved.
        high_bits = min(max_phys_bits, 40) - 32
        if pde & (1 << 21) or pde >> (13 + high_bits) & (0xFF >> high_bits):
            return None
        high = (pde >> 13 & ((1 << high_bits) - 1)) << 32
        base = (pde & 0xFFC00000 | high) & ((1 << max_phys_bits) - 1)
        return Translation(base | linear & (4 * MiB - 1), bool(pde & WRITABLE), bool(pde & USER), True, 4 * MiB)
    pte = _entry(read_phys, (pde & 0xFFFFF000) + (linear >> 12 & 0x3FF) * 4, 4)
    if pte is None or not pte & PRESENT:
        return None
    return Translation((pte & 0xFFFFF000 | linear & (PAGE - 1)) & ((1 << max_phys_bits) - 1),
                       bool(pde & pte & WRITABLE), bool(pde & pte & USER), True, PAGE)


# PAE's PDPTEs have no access rights: their bits 2:1 and 8:5 are reserved (SDM 4.4.1, table 4-8).
_PDPTE_RESERVED = 0b1_1110_0110


def _walk_pae(linear: int, cr3: int, nx: bool, read_phys: ReadPhys, max_phys_bits: int) -> Optional[Translation]:
    """SDM 4.4: four PDPTEs at CR3[31:5], then a page directory (2 MiB pages) and a page table."""
    if linear >= _LIMIT_32:
        return None
    mask = _address_mask(max_phys_bits)
    reserved = ~mask & ~((1 << 12) - 1) & ((1 << 63) - 1)       # bits 62:MAXPHYADDR
    if not nx:
        reserved |= XD
    pdpte = _entry(read_phys, (cr3 & 0xFFFFFFE0) + (linear >> 30) * 8, 8)
    if pdpte is None or not pdpte & PRESENT or pdpte & (reserved | XD | _PDPTE_RESERVED):
        return None
    return _walk_tables(linear, pdpte & mask, (21, 12), reserved, mask, read_phys,
                        writable=True, user=True, executable=True)


def _walk_long(linear: int, cr3: int, levels: int, nx: bool, read_phys: ReadPhys,
               max_phys_bits: int) -> Optional[Translation]:
    """SDM 4.5: PML5 (with LA57), PML4, PDPT (1 GiB pages), page directory (2 MiB pages), page table,
    each 512 8-byte entries, indexed by 9 bits of a canonical address."""
    width = 12 + 9 * levels                  # 48 or 57 bits
    top = linear >> (width - 1)
    if top not in (0, (1 << (64 - width + 1)) - 1):
        return None                          # not canonical (or wider than 64 bits)
    mask = _address_mask(max_phys_bits)
    reserved = ~mask & ~((1 << 12) - 1) & ((1 << 52) - 1)       # bits 51:MAXPHYADDR; 62:52 are ignored
    if not nx:
        reserved |= XD
    table = cr3 & mask
    writable = user = executable = True
    # The PML5E and PML4E cannot map a page: their PS bit is reserved.
    for shift in (48, 39)[5 - levels:]:
        entry = _entry(read_phys, table + (linear >> shift & 0x1FF) * 8, 8)
        if entry is None or not entry & PRESENT or entry & (reserved | PAGE_SIZE_BIT):
            return None
        writable, user, executable = _rights(entry, writable, user, executable)
        table = entry & mask
    return _walk_tables(linear, table, (30, 21, 12), reserved, mask, read_phys, writable, user, executable)


def _walk_tables(linear: int, table: int, shifts: Tuple[int, ...], reserved: int, mask: int, read_phys: ReadPhys,
                 writable: bool, user: bool, executable: bool) -> Optional[Translation]:
    """The levels PAE and 4-level paging share: 8-byte entries, each level indexed by 9 bits from
    `shift`, an entry with PS above the last level mapping a page of 1 << shift bytes."""
    for shift in shifts:
        entry = _entry(read_phys, table + (linear >> shift & 0x1FF) * 8, 8)
        if entry is None or not entry & PRESENT or entry & reserved:
            return None
        writable, user, executable = _rights(entry, writable, user, executable)
        if shift == 12 or entry & PAGE_SIZE_BIT:
            size = 1 << shift
            if size > PAGE:
                # A large page: bit 12 is PAT, bits (shift-1):13 reserved, the address from bit `shift`.
                if entry & (size - 1) & ~((1 << 13) - 1):
                    return None
                base = entry & mask & ~(size - 1)
            else:
                base = entry & mask
            return Translation(base | linear & (size - 1), writable, user, executable, size)
        table = entry & mask
    return None                              # unreachable: the last level always maps a page


def _rights(entry: int, writable: bool, user: bool, executable: bool) -> Tuple[bool, bool, bool]:
    return writable and bool(entry & WRITABLE), user and bool(entry & USER), executable and not entry & XD


class Mapping(NamedTuple):
    """A run of linear addresses mapped to consecutive physical ones by pages of one size and rights."""
    linear: int
    physical: int
    size: int
    page_size: int
    writable: bool
    user: bool
    executable: bool


def long_mode_mappings(cr3: int, cr4: int, efer: int, read_phys: ReadPhys,
                       max_phys_bits: int = MAX_PHYS_BITS, max_entries: int = 1 << 20) -> List[Mapping]:
    """Everything 4-level (5-level with CR4.LA57) paging maps, in linear order, adjacent pages merged
    into runs. The tables are enumerated for present entries, and each page found is confirmed by
    translate(), so a page reported here is one the walk (and the CPU) reaches; a table outside RAM
    maps nothing. Guest tables may point back at themselves and so name 512**4 pages: the enumeration
    stops after `max_entries` present entries (kvmrun's own identity map of 64 GiB has 32,800)."""
    levels = 5 if cr4 & CR4_LA57 else 4
    width = 12 + 9 * levels
    cr0 = CR0_PG | 1
    efer |= EFER_LME
    mask = _address_mask(max_phys_bits)
    runs: List[Mapping] = []
    budget = [max_entries]

    def visit(table: int, shift: int, base: int) -> None:
        data = read_phys(table, PAGE)
        if data is None or len(data) != PAGE:
            return
        for index, entry in enumerate(struct.unpack("<512Q", data)):
            if not entry & PRESENT:
                continue
            budget[0] -= 1
            if budget[0] < 0:
                return
            linear = base | index << shift
            if shift > 12 and not (shift <= 30 and entry & PAGE_SIZE_BIT):
                visit(entry & mask, shift - 9, linear)
                continue
            if linear >> (width - 1):
                linear |= ~((1 << width) - 1) & ((1 << 64) - 1)     # the upper half, sign-extended
            where = translate(linear, cr0, cr3, cr4 | CR4_PAE, efer, read_phys, max_phys_bits)
            if where is None or where.page_size != 1 << shift:
                continue
            last = runs[-1] if runs else None
            if (last is not None and last.linear + last.size == linear and last.physical + last.size == where.physical
                    and (last.page_size, last.writable, last.user, last.executable)
                    == (where.page_size, where.writable, where.user, where.executable)):
                runs[-1] = last._replace(size=last.size + where.page_size)
            else:
                runs.append(Mapping(linear, where.physical, where.page_size, where.page_size, where.writable,
                                    where.user, where.executable))

    visit(cr3 & mask, width - 9, 0)
    return runs
