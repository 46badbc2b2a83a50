"""Page tables read back from guest memory, as the CPU would walk them: built as bytes and written
as a boot protocol writes them, a blob through check_setup and apply_setup."""
import pytest

from kvmrun import paging
from kvmrun.boot.cpu_modes import Mode
from kvmrun.boot.setup import Blob, BootSetup, VcpuStart, apply_setup, check_setup
from kvmrun.errors import LoaderError
from kvmrun.layout import GiB, MiB
from kvmrun.memory import GuestMemory

BASE = 0x1000


def write_identity_map(mem, ram_top, one_gib_pages):
    tables, data = paging.identity_map_bytes(BASE, ram_top, one_gib_pages)
    setup = BootSetup(blobs=(Blob(BASE, data, len(data), "page tables", structure=True),), reserved=(),
                      vcpus=(VcpuStart(Mode.LONG, BASE, tables.cr3, {}),))
    check_setup(setup, mem)
    apply_setup(setup, mem)
    return tables


def entry(mem, table, index):
    return mem.read_u64(table + 8 * index)


def test_1gib_pages_map_4gib_with_two_tables():
    mem = GuestMemory.for_tests(1 * MiB)
    pt = write_identity_map(mem, 128 * MiB, one_gib_pages=True)
    assert (pt.cr3, pt.start, pt.end, pt.span) == (BASE, BASE, BASE + 2 * 4096, 4 * GiB)
    pdpt = BASE + 4096
    assert entry(mem, BASE, 0) == pdpt | 0x3
    assert entry(mem, BASE, 1) == 0
    for g in range(4):
        assert entry(mem, pdpt, g) == g * GiB | 0x83
    assert entry(mem, pdpt, 4) == 0


def test_2mib_pages_use_one_directory_per_gib():
    mem = GuestMemory.for_tests(1 * MiB)
    pt = write_identity_map(mem, 128 * MiB, one_gib_pages=False)
    assert pt.end == BASE + (2 + 4) * 4096
    pdpt = BASE + 4096
    for g in range(4):
        pd = entry(mem, pdpt, g) & ~0xFFF
        assert entry(mem, pdpt, g) & 0xFFF == 0x3
        assert pd == BASE + (2 + g) * 4096
        for i in (0, 1, 255, 511):
            assert entry(mem, pd, i) == (g * GiB + i * 2 * MiB) | 0x83


def test_ram_above_4gib_is_mapped_too():
    mem = GuestMemory.for_tests(1 * MiB)
    pt = write_identity_map(mem, 9 * GiB + 1, one_gib_pages=True)
    assert pt.span == 10 * GiB
    assert entry(mem, BASE + 4096, 9) == 9 * GiB | 0x83
    assert entry(mem, BASE + 4096, 10) == 0


@pytest.mark.parametrize("ram_top, one_gib, pages", [
    (128 * MiB, True, 2), (128 * MiB, False, 6), (4 * GiB, False, 6), (4 * GiB + 1, False, 7),
    (513 * GiB, True, 3),
])
def test_table_page_counts(ram_top, one_gib, pages):
    assert paging.table_pages(paging.mapped_span(ram_top), one_gib) == pages


def test_tables_fit_exactly_and_not_one_byte_less():
    need = BASE + 6 * 4096
    write_identity_map(GuestMemory.for_tests(need), 128 * MiB, one_gib_pages=False)
    short = GuestMemory.for_tests(need - 1)
    with pytest.raises(LoaderError, match=r"^page tables \(0x1000-0x7000, 24576 bytes\) does not fit in guest RAM "
                                          r"\(0x0-0x6fff\)"):
        write_identity_map(short, 128 * MiB, one_gib_pages=False)
    assert short.read(0, need - 1) == bytes(need - 1)             # refused before a byte was written


def test_stale_bytes_in_the_table_pages_are_overwritten():
    mem = GuestMemory.for_tests(1 * MiB)
    mem.write(BASE, b"\xff" * (2 * 4096))
    write_identity_map(mem, 128 * MiB, one_gib_pages=True)
    assert entry(mem, BASE, 511) == 0
    assert entry(mem, BASE + 4096, 511) == 0
