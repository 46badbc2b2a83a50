"""The page walk the gdb stub reads guest memory through (kvmrun/debug/page_walk.py), over a bytearray
"RAM" holding tables built by hand for each paging mode (Intel SDM vol. 3A, chapter 4), and kvmrun's
own identity tables (paging.py). Pure: no KVM."""
import random
import struct

import pytest
from hypothesis import given, settings, strategies as st

from kvmrun import paging
from kvmrun.debug.page_walk import (CR0_PG, CR4_LA57, CR4_PAE, CR4_PSE, EFER_LME, EFER_NXE, GiB, Mapping, MiB,
                                    Translation, long_mode_mappings, memory_reader, ram_reader, read_linear,
                                    translate)
from kvmrun.memory import GuestMemory

PE = 1
P, RW, US, PS = 1, 2, 4, 0x80
XD = 1 << 63
RAM_SIZE = 16 * MiB
LONG = dict(cr0=PE | CR0_PG, cr4=CR4_PAE, efer=EFER_LME | (1 << 10))     # LME and LMA, as KVM reports them


class Ram:
    """A bytearray as guest-physical [0, RAM_SIZE), with entries written by hand."""

    def __init__(self, size=RAM_SIZE):
        self.bytes = bytearray(size)
        self.read = ram_reader(self.bytes)

    def u32(self, table, index, value):
        struct.pack_into("<I", self.bytes, table + 4 * index, value)

    def u64(self, table, index, value):
        struct.pack_into("<Q", self.bytes, table + 8 * index, value)

    def fill(self, addr, data):
        self.bytes[addr:addr + len(data)] = data


def marker(n):
    """Bytes that differ everywhere, so a read from the wrong address cannot match."""
    return bytes((n * 7 + i * 13) & 0xFF for i in range(n))


# --- no paging ------------------------------------------------------------------------------------

@pytest.mark.parametrize("cr0", [0, PE], ids=["real", "protected"])
@pytest.mark.parametrize("linear", [0, 0x7C00, 0xFFFFF, 0x10FFEF, 0xFFFFFFFF])
def test_without_paging_linear_is_physical(cr0, linear):
    # Real mode's FFFF:FFFF is 0x10FFEF: A20 is on in kvmrun, so nothing wraps at 1 MiB.
    assert translate(linear, cr0, 0x1000, CR4_PAE, 0, Ram(0).read) == Translation(linear, True, True, True, 1 << 32)


def test_without_paging_addresses_have_32_bits():
    assert translate(1 << 32, PE, 0, 0, 0, Ram(0).read) is None
    assert translate(-1, PE, 0, 0, 0, Ram(0).read) is None


def test_without_paging_a_read_is_one_read_of_ram():
    ram = Ram()
    ram.fill(0x10FFE0, marker(32))
    assert read_linear(0x10FFE0, 32, 0, 0, 0, 0, ram.read) == marker(32)
    assert read_linear(RAM_SIZE - 4, 8, PE, 0, 0, 0, ram.read) is None          # past the end of RAM


# --- 32-bit paging --------------------------------------------------------------------------------

PD32, PT32 = 0x1000, 0x2000
PAGING32 = dict(cr0=PE | CR0_PG, cr4=CR4_PSE, efer=0)


def tables_32bit():
    """Linear 0x00400000-0x007FFFFF through a page table: page 3 -> 0x5000 (user, writable), page 4 ->
    0x9000 (read-only); linear 0x00800000 a 4 MiB page at 0x00C00000."""
    ram = Ram()
    ram.u32(PD32, 1, PT32 | P | RW | US)
    ram.u32(PT32, 3, 0x5000 | P | RW | US)
    ram.u32(PT32, 4, 0x9000 | P | US)
    ram.u32(PD32, 2, 0x00C00000 | P | RW | PS)
    return ram


def walk32(linear, ram, **regs):
    return translate(linear, cr3=PD32, read_phys=ram.read, **{**PAGING32, **regs})


def test_32bit_4kib_pages():
    ram = tables_32bit()
    assert walk32(0x00403ABC, ram) == Translation(0x5ABC, True, True, True, 4096)
    assert walk32(0x00404000, ram) == Translation(0x9000, False, True, True, 4096)
    assert walk32(0x00405000, ram) is None                      # PTE not present
    assert walk32(0x00000000, ram) is None                      # PDE not present


def test_32bit_4mib_page_with_pse():
    ram = tables_32bit()
    assert walk32(0x00800000 + 0x123456, ram) == Translation(0x00C00000 + 0x123456, True, False, True, 4 * MiB)
    ram.fill(0x00C00000 + 0x3FFFF0, marker(16))
    assert read_linear(0x00BFFFF0, 16, cr3=PD32, read_phys=ram.read, **PAGING32) == marker(16)


def test_32bit_ps_is_ignored_without_cr4_pse():
    ram = tables_32bit()
    # Without PSE the PDE at index 2 names a page table at 0x00C00000, whose entries are all zero.
    assert walk32(0x00800000, ram, cr4=0) is None
    ram.u32(0x00C00000, 1, 0x7000 | P)
    assert walk32(0x00801234, ram, cr4=0) == Translation(0x7234, False, False, True, 4096)


def test_32bit_pse36_high_address_bits():
    ram = tables_32bit()
    ram.u32(PD32, 3, 0x00400000 | 0x5 << 13 | P | PS)            # bits 20:13 = physical bits 39:32
    assert walk32(0x00C00010, ram).physical == 0x5_0040_0010
    assert walk32(0x00C00010, ram, max_phys_bits=36).physical == 0x5_0040_0010
    ram.u32(PD32, 3, 0x00400000 | 0x10 << 13 | P | PS)           # bit 36: above a 36-bit MAXPHYADDR
    assert walk32(0x00C00010, ram, max_phys_bits=36) is None
    assert read_linear(0x00C00010, 1, cr3=PD32, read_phys=ram.read, **PAGING32) is None   # not RAM


def test_32bit_reserved_bit_21_of_a_4mib_pde():
    ram = tables_32bit()
    ram.u32(PD32, 2, 0x00C00000 | 1 << 21 | P | PS)
    assert walk32(0x00800000, ram) is None


def test_32bit_linear_addresses_have_32_bits():
    assert walk32(1 << 32 | 0x00403000, tables_32bit()) is None


def test_32bit_page_crossing_read_into_an_unmapped_page():
    ram = tables_32bit()
    ram.fill(0x5FF8, marker(8))
    ram.fill(0x9000, marker(8)[::-1])
    assert read_linear(0x00403FF8, 16, cr3=PD32, read_phys=ram.read, **PAGING32) == marker(8) + marker(8)[::-1]
    assert read_linear(0x00404FF8, 8, cr3=PD32, read_phys=ram.read, **PAGING32) == bytes(8)
    assert read_linear(0x00404FF8, 9, cr3=PD32, read_phys=ram.read, **PAGING32) is None


def test_32bit_table_outside_ram():
    ram = tables_32bit()
    ram.u32(PD32, 5, 0xFFFFF000 | P)
    assert walk32(0x01400000, ram) is None
    assert translate(0x1000, PE | CR0_PG, 0xFFFFF000, 0, 0, ram.read) is None        # CR3 itself


# --- PAE paging -----------------------------------------------------------------------------------

PDPT_PAE, PD_PAE, PT_PAE = 0x1020, 0x2000, 0x3000                 # the PDPT is 32-byte aligned, not 4 KiB
PAE = dict(cr0=PE | CR0_PG, cr4=CR4_PAE, efer=EFER_NXE)


def tables_pae():
    """Linear 0x40000000 (PDPTE 1): a 4 KiB page at 0x7000, a read-only no-execute one at 0x8000, and
    a 2 MiB page at 0x00600000 for linear 0x40200000."""
    ram = Ram()
    ram.u64(PDPT_PAE, 1, PD_PAE | P)
    ram.u64(PD_PAE, 0, PT_PAE | P | RW | US)
    ram.u64(PT_PAE, 0, 0x7000 | P | RW | US)
    ram.u64(PT_PAE, 1, XD | 0x8000 | P | US)
    ram.u64(PD_PAE, 1, 0x00600000 | P | RW | PS)
    return ram


def walk_pae(linear, ram, **regs):
    return translate(linear, cr3=PDPT_PAE, read_phys=ram.read, **{**PAE, **regs})


def test_pae_4kib_and_2mib_pages():
    ram = tables_pae()
    assert walk_pae(0x40000123, ram) == Translation(0x7123, True, True, True, 4096)
    assert walk_pae(0x40001123, ram) == Translation(0x8123, False, True, False, 4096)   # XD masked out
    assert walk_pae(0x40212345, ram) == Translation(0x00612345, True, False, True, 2 * MiB)
    ram.fill(0x00612345, marker(40))
    assert read_linear(0x40212345, 40, cr3=PDPT_PAE, read_phys=ram.read, **PAE) == marker(40)


@pytest.mark.parametrize("linear, table, index", [
    (0x00000000, PDPT_PAE, 0), (0x40400000, PD_PAE, 2), (0x40002000, PT_PAE, 2)], ids=["PDPTE", "PDE", "PTE"])
def test_pae_not_present_at_each_level(linear, table, index):
    ram = tables_pae()
    assert walk_pae(linear, ram) is None
    ram.u64(table, index, (0x4000 if table != PT_PAE else 0x7000) | RW)      # all but P
    assert walk_pae(linear, ram) is None


def test_pae_xd_is_reserved_without_efer_nxe():
    assert walk_pae(0x40001000, tables_pae(), efer=0) is None
    assert walk_pae(0x40000000, tables_pae(), efer=0).physical == 0x7000


def test_pae_reserved_bits():
    ram = tables_pae()
    ram.u64(PD_PAE, 1, 0x00600000 | 1 << 13 | P | PS)           # bits 20:13 of a 2 MiB PDE
    assert walk_pae(0x40200000, ram) is None
    ram = tables_pae()
    ram.u64(PDPT_PAE, 1, PD_PAE | P | RW)                        # PDPTE bits 2:1 are reserved
    assert walk_pae(0x40000000, ram) is None
    ram = tables_pae()
    ram.u64(PT_PAE, 0, 1 << 40 | 0x7000 | P)                     # above MAXPHYADDR 36
    assert walk_pae(0x40000000, ram).physical == 1 << 40 | 0x7000
    assert walk_pae(0x40000000, ram, max_phys_bits=36) is None
    ram.u64(PT_PAE, 0, 1 << 55 | 0x7000 | P)                     # PAE's 62:52 are reserved, not ignored
    assert walk_pae(0x40000000, ram) is None


def test_pae_2mib_page_keeps_pat_out_of_the_address():
    ram = tables_pae()
    ram.u64(PD_PAE, 1, 0x00600000 | 1 << 12 | P | PS)           # bit 12 of a large page is PAT
    assert walk_pae(0x40200000, ram).physical == 0x00600000


def test_pae_linear_addresses_have_32_bits():
    assert walk_pae(1 << 32 | 0x40000000, tables_pae()) is None


# --- 4-level and 5-level paging -------------------------------------------------------------------

def identity_ram(one_gib_pages, ram_top=RAM_SIZE):
    """kvmrun's own identity tables, as the kvmrun-ABI protocol writes them at 0x1000."""
    ram = Ram()
    tables, data = paging.identity_map_bytes(0x1000, ram_top, one_gib_pages)
    ram.fill(0x1000, data)
    return ram, tables


HIGH_PDPT, HIGH_PD, HIGH_PT = 0x20000, 0x21000, 0x22000
KERNEL = 0xFFFF_8000_0000_0000                                   # PML4 entry 256: the upper half


def long_tables(one_gib_pages=True):
    """The identity map plus the upper half's first GiB in 4 KiB pages: KERNEL+0x1000 -> 0x30000
    (supervisor, writable), KERNEL+0x2000 -> 0x31000 (user, read-only, no-execute)."""
    ram, tables = identity_ram(one_gib_pages)
    ram.u64(tables.cr3, 256, HIGH_PDPT | P | RW | US)
    ram.u64(HIGH_PDPT, 0, HIGH_PD | P | RW | US)
    ram.u64(HIGH_PD, 0, HIGH_PT | P | RW | US)
    ram.u64(HIGH_PT, 1, 0x30000 | P | RW)
    ram.u64(HIGH_PT, 2, XD | 0x31000 | P | US)
    return ram, tables


def walk_long(linear, ram, cr3, **regs):
    return translate(linear, cr3=cr3, read_phys=ram.read, **{**LONG, "efer": LONG["efer"] | EFER_NXE, **regs})


def test_long_mode_4kib_pages():
    ram, tables = long_tables()
    assert walk_long(KERNEL + 0x1FFF, ram, tables.cr3) == Translation(0x30FFF, True, False, True, 4096)
    assert walk_long(KERNEL + 0x2000, ram, tables.cr3) == Translation(0x31000, False, True, False, 4096)
    assert walk_long(KERNEL + 0x3000, ram, tables.cr3) is None
    ram.fill(0x30FF0, marker(16))
    ram.fill(0x31000, marker(16)[::-1])
    assert read_linear(KERNEL + 0x1FF0, 32, cr3=tables.cr3, read_phys=ram.read, **LONG) is None  # XD without NXE
    regs = {**LONG, "efer": LONG["efer"] | EFER_NXE}
    assert read_linear(KERNEL + 0x1FF0, 32, cr3=tables.cr3, read_phys=ram.read, **regs) == \
        marker(16) + marker(16)[::-1]


def test_long_mode_1gib_page():
    ram, tables = identity_ram(one_gib_pages=True)
    assert walk_long(3 * GiB + 0x1234, ram, tables.cr3) == Translation(3 * GiB + 0x1234, True, False, True, GiB)
    ram.u64(tables.cr3 + 4096, 5, 1 * GiB | P | RW | PS)         # a second view of the second GiB
    assert walk_long(5 * GiB + 0x100, ram, tables.cr3).physical == GiB + 0x100
    ram.u64(tables.cr3 + 4096, 6, 0 | P | PS)                    # and of the first, where RAM is
    ram.fill(0x7654, marker(9))
    assert read_linear(6 * GiB + 0x7654, 9, cr3=tables.cr3, read_phys=ram.read, **LONG) == marker(9)
    ram.u64(tables.cr3 + 4096, 7, 1 << 29 | P | PS)              # bits 29:13 of a 1 GiB PDPTE are reserved
    assert walk_long(7 * GiB, ram, tables.cr3) is None


def test_long_mode_2mib_page():
    ram, tables = identity_ram(one_gib_pages=False)
    assert walk_long(0x00A12345, ram, tables.cr3) == Translation(0x00A12345, True, False, True, 2 * MiB)
    ram.fill(0x001FFFFC, marker(8))                              # across two 2 MiB pages
    assert read_linear(0x001FFFFC, 8, cr3=tables.cr3, read_phys=ram.read, **LONG) == marker(8)


@pytest.mark.parametrize("level", ["PML4E", "PDPTE", "PDE", "PTE"])
def test_long_mode_not_present_at_each_level(level):
    ram, tables = long_tables()
    table = {"PML4E": tables.cr3, "PDPTE": HIGH_PDPT, "PDE": HIGH_PD, "PTE": HIGH_PT}[level]
    index = 256 if level == "PML4E" else 0 if level != "PTE" else 1
    assert walk_long(KERNEL + 0x1000, ram, tables.cr3) is not None
    old = struct.unpack_from("<Q", ram.bytes, table + 8 * index)[0]
    ram.u64(table, index, old & ~P)
    assert walk_long(KERNEL + 0x1000, ram, tables.cr3) is None


@pytest.mark.parametrize("level", ["PML4E", "PDPTE", "PDE"])
def test_long_mode_entry_pointing_outside_ram(level):
    ram, tables = long_tables()
    table = {"PML4E": tables.cr3, "PDPTE": HIGH_PDPT, "PDE": HIGH_PD}[level]
    index = 256 if level == "PML4E" else 0
    ram.u64(table, index, 0x7FFF_FFFF_F000 | P | RW | US)
    assert walk_long(KERNEL + 0x1000, ram, tables.cr3) is None
    assert read_linear(KERNEL + 0x1000, 1, cr3=tables.cr3, read_phys=ram.read, **LONG) is None


def test_long_mode_page_outside_ram_translates_but_cannot_be_read():
    ram, tables = long_tables()
    ram.u64(HIGH_PT, 3, 0xF_0000_0000 | P)
    assert walk_long(KERNEL + 0x3000, ram, tables.cr3).physical == 0xF_0000_0000
    assert read_linear(KERNEL + 0x3000, 1, cr3=tables.cr3, read_phys=ram.read, **LONG) is None


@pytest.mark.parametrize("linear", [1 << 47, 0x0000_8000_0000_0000, 0xFFFF_7FFF_FFFF_FFFF, 0x1234 << 48, 1 << 64])
def test_long_mode_non_canonical(linear):
    ram, tables = long_tables()
    assert walk_long(linear, ram, tables.cr3) is None


def test_long_mode_xd_masked_and_high_bits_ignored():
    ram, tables = long_tables()
    ram.u64(HIGH_PT, 3, XD | 0x7F << 52 | 0x32000 | P)           # 62:52 ignored by 4-level paging, XD no address
    assert walk_long(KERNEL + 0x3000, ram, tables.cr3) == Translation(0x32000, False, False, False, 4096)
    ram.u64(HIGH_PT, 3, 1 << 45 | 0x32000 | P)
    assert walk_long(KERNEL + 0x3000, ram, tables.cr3, max_phys_bits=40) is None
    assert walk_long(KERNEL + 0x3000, ram, tables.cr3).physical == 1 << 45 | 0x32000


def test_long_mode_ps_in_a_pml4e_is_reserved():
    ram, tables = long_tables()
    ram.u64(tables.cr3, 256, HIGH_PDPT | P | RW | US | PS)
    assert walk_long(KERNEL + 0x1000, ram, tables.cr3) is None


def test_long_mode_rights_combine_every_level():
    ram, tables = long_tables()
    ram.u64(HIGH_PT, 1, 0x30000 | P | RW | US)
    assert walk_long(KERNEL + 0x1000, ram, tables.cr3).user
    ram.u64(HIGH_PDPT, 0, HIGH_PD | P | US)                      # a read-only PDPTE: nothing under it writable
    assert not walk_long(KERNEL + 0x1000, ram, tables.cr3).writable
    ram.u64(tables.cr3, 256, HIGH_PDPT | P | RW)                 # a supervisor PML4E
    assert not walk_long(KERNEL + 0x1000, ram, tables.cr3).user


PML5 = 0x40000


def test_five_level_paging():
    ram, tables = long_tables()
    ram.u64(PML5, 0, tables.cr3 | P | RW | US)                  # the 4-level tables, as the lower half
    ram.u64(PML5, 0x1FF, tables.cr3 | P | RW | US)              # and again as the upper half's top
    la57 = dict(cr4=CR4_PAE | CR4_LA57)
    assert walk_long(0x12345, ram, PML5, **la57) == Translation(0x12345, True, False, True, GiB)
    # KERNEL's bits 63:48 are all set: PML5 index 0x1FF, then PML4 index 256 as in 4-level paging.
    assert walk_long(KERNEL + 0x1000, ram, PML5, **la57) == Translation(0x30000, True, False, True, 4096)
    assert walk_long(1 << 56, ram, PML5, **la57) is None         # bit 56 without 63:57: non-canonical
    assert walk_long(3 << 48, ram, PML5, **la57) is None         # PML5E 3 not present
    assert walk_long(3 << 48, ram, tables.cr3) is None           # 4-level: non-canonical
    fifth = 0x50000                                              # PML5E 3 -> a PML4 -> a PDPT with a 1 GiB page
    ram.u64(PML5, 3, fifth | P | RW)
    ram.u64(fifth, 0, fifth + 0x1000 | P | RW | US)
    ram.u64(fifth + 0x1000, 0, GiB | P | US | PS)
    assert walk_long(3 << 48 | 0x777, ram, PML5, **la57) == Translation(GiB + 0x777, False, False, True, GiB)


def test_maxphyaddr_out_of_range_is_a_caller_error():
    with pytest.raises(ValueError):
        translate(0, PE | CR0_PG, 0, 0, 0, Ram(0).read, max_phys_bits=53)


def test_memory_reader_reads_guest_ram_and_refuses_the_gap():
    mem = GuestMemory.for_tests(4096)
    mem.write(0x10, b"abc")
    read = memory_reader(mem)
    assert read(0x10, 3) == b"abc"
    assert read(4095, 2) is None
    assert read_linear(0x10, 3, 0, 0, 0, 0, read) == b"abc"


# --- properties -----------------------------------------------------------------------------------

IDENTITY = {flag: paging.identity_map_bytes(0x1000, 128 * MiB, flag) for flag in (False, True)}


@settings(max_examples=500, deadline=None)
@given(st.booleans(), st.integers(0, 4 * GiB - 1))
def test_kvmrun_identity_tables_map_every_address_to_itself(one_gib_pages, linear):
    tables, data = IDENTITY[one_gib_pages]
    # Only the table pages are "RAM" here: the walk never needs anything else.
    where = translate(linear, cr3=tables.cr3, read_phys=ram_reader(data, 0x1000), **LONG)
    assert where is not None and where.physical == linear and where.writable
    assert where.page_size == (GiB if one_gib_pages else 2 * MiB)


@settings(max_examples=300, deadline=None)
@given(st.booleans(), st.integers(4 * GiB, (1 << 47) - 1) | st.integers(0xFFFF_8000_0000_0000, (1 << 64) - 1))
def test_kvmrun_identity_tables_map_nothing_past_their_span(one_gib_pages, linear):
    tables, data = IDENTITY[one_gib_pages]
    assert translate(linear, cr3=tables.cr3, read_phys=ram_reader(data, 0x1000), **LONG) is None


REGS = st.tuples(st.sampled_from([0, PE, PE | CR0_PG]),
                 st.integers(0, (1 << 64) - 1) | st.integers(0, 0xF000),
                 st.integers(0, 1 << 13).map(lambda x: x & (CR4_PSE | CR4_PAE | CR4_LA57)),
                 st.sampled_from([0, EFER_LME, EFER_NXE, EFER_LME | EFER_NXE]))


def structured_ram(seed, pages=4):  # entries point into its 4 pages (2 bits of page number)
    """Random entries, most pointing back into this small RAM, with random flags and high bits, so that
    walks go deep instead of leaving RAM at the first level."""
    rng = random.Random(seed)
    values = [rng.getrandbits(2) << 12 | rng.getrandbits(12) | (rng.getrandbits(64) if rng.random() < 0.2 else 0)
              for _ in range(pages * 512)]
    return struct.pack(f"<{len(values)}Q", *values)


@settings(max_examples=600, deadline=None)
@given(st.binary(min_size=0, max_size=8192) | st.integers(0, 1 << 32).map(structured_ram),
       REGS, st.integers(-1, (1 << 65)) | st.integers(0, 1 << 32), st.integers(32, 52),
       st.integers(0, 9000))
def test_random_bytes_as_page_tables_never_raise(ram, regs, linear, max_phys_bits, length):
    cr0, cr3, cr4, efer = regs
    read = ram_reader(ram)
    where = translate(linear, cr0, cr3, cr4, efer, read, max_phys_bits)
    if where is not None:
        assert 0 <= where.physical < 1 << max_phys_bits or not cr0 & CR0_PG
        assert where.physical % where.page_size == linear % where.page_size
    data = read_linear(linear, length, cr0, cr3, cr4, efer, read, max_phys_bits)
    assert data is None or len(data) == length


# --- enumerating what long mode maps ----------------------------------------------------------------

@pytest.mark.parametrize("one_gib_pages", [True, False])
def test_mappings_of_kvmrun_identity_tables_are_one_identity_run(one_gib_pages):
    tables, data = IDENTITY[one_gib_pages]
    runs = long_mode_mappings(tables.cr3, CR4_PAE, LONG["efer"], ram_reader(data, 0x1000))
    assert runs == [Mapping(0, 0, tables.span, GiB if one_gib_pages else 2 * MiB, True, False, True)]


def test_mappings_split_where_rights_or_physical_addresses_change():
    ram, tables = long_tables()
    runs = long_mode_mappings(tables.cr3, CR4_PAE, LONG["efer"] | EFER_NXE, ram.read)
    assert runs == [Mapping(0, 0, 4 * GiB, GiB, True, False, True),
                    Mapping(KERNEL + 0x1000, 0x30000, 0x1000, 4096, True, False, True),
                    Mapping(KERNEL + 0x2000, 0x31000, 0x1000, 4096, False, True, False)]
    # Without NXE, the XD page's entry has a reserved bit set: the CPU would fault, so it is not listed.
    assert long_mode_mappings(tables.cr3, CR4_PAE, LONG["efer"], ram.read)[-1].linear == KERNEL + 0x1000


def test_mappings_of_tables_that_point_at_themselves_end():
    ram = Ram(1 * MiB)
    for index in range(512):
        ram.u64(0x1000, index, 0x1000 | P | RW)          # every entry of every level: this same table
    runs = long_mode_mappings(0x1000, CR4_PAE, LONG["efer"], ram.read, max_entries=5000)
    # The last level reads the table as page table entries: 4 KiB pages at 0x1000, the enumeration cut short.
    assert runs and all(run.physical == 0x1000 and run.page_size == 4096 for run in runs)
    assert sum(run.size for run in runs) <= 5000 * 4096


def test_mappings_of_a_table_outside_ram_are_none():
    ram, tables = long_tables()
    ram.u64(tables.cr3, 0, 0x7FFF_0000_0000 | P)
    assert long_mode_mappings(tables.cr3, CR4_PAE, LONG["efer"], ram.read)[0].linear == KERNEL + 0x1000
