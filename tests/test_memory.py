import pytest

from kvmrun import layout
from kvmrun.errors import GuestMemoryError
from kvmrun.layout import GiB, MiB
from kvmrun.memory import GuestMemory, RamRegion, ram_regions


def test_small_ram_is_one_region_from_zero():
    assert ram_regions(128 * MiB) == [RamRegion(0, 128 * MiB, 0)]


def test_ram_above_3gib_continues_at_4gib():
    assert ram_regions(5 * GiB) == [RamRegion(0, 3 * GiB, 0), RamRegion(4 * GiB, 2 * GiB, 3 * GiB)]


def test_exactly_3gib_has_no_high_region():
    assert ram_regions(3 * GiB) == [RamRegion(0, 3 * GiB, 0)]


def test_read_write_round_trip_and_u64():
    mem = GuestMemory.for_tests(64 * 1024)
    mem.write(0x100, b"abc")
    assert mem.read(0x100, 3) == b"abc"
    mem.write_u64(0x200, 0x1122334455667788)
    assert mem.read(0x200, 8) == bytes.fromhex("8877665544332211")
    assert mem.read_u64(0x200) == 0x1122334455667788


def test_last_byte_is_accessible_and_one_past_is_not():
    mem = GuestMemory.for_tests(4096)
    mem.write(4095, b"x")
    assert mem.read(4095, 1) == b"x"
    with pytest.raises(GuestMemoryError, match=r"invalid guest address 0xfff \(\+2 bytes\)"):
        mem.read(4095, 2)
    with pytest.raises(GuestMemoryError, match="0x1000"):
        mem.write(4096, b"x")


def test_negative_addresses_and_lengths_are_refused():
    mem = GuestMemory.for_tests(4096)
    with pytest.raises(GuestMemoryError):
        mem.read(-1, 1)
    assert not mem.contains(0, -1)


def test_the_mmio_gap_is_not_ram():
    mem = GuestMemory(3 * GiB + 2 * MiB)    # lazily mapped: costs nothing
    try:
        assert mem.top == 4 * GiB + 2 * MiB
        assert mem.contains(3 * GiB - 1, 1)
        assert not mem.contains(3 * GiB, 1)
        assert not mem.contains(3 * GiB - 1, 2)         # an access may not straddle the gap
        mem.write(4 * GiB, b"high")
        assert mem.read(4 * GiB, 4) == b"high"
    finally:
        mem.close()


def test_zero_clears_partial_and_whole_pages_of_an_mmap():
    mem = GuestMemory(1 * MiB)
    try:
        mem.write(0, b"\xaa" * (5 * 4096))
        mem.zero(100, 3 * 4096 + 50)
        data = mem.read(0, 5 * 4096)
        assert data[:100] == b"\xaa" * 100
        assert data[100:100 + 3 * 4096 + 50] == bytes(3 * 4096 + 50)
        assert data[100 + 3 * 4096 + 50:] == b"\xaa" * (2 * 4096 - 150)
    finally:
        mem.close()


def test_defaults_are_sane():
    assert layout.MIN_MEMORY <= layout.DEFAULT_MEMORY <= layout.MAX_MEMORY
