"""int 13h disk services (kvmrun/bios/disk.py) against Ralf Brown's interrupt list and SeaBIOS: pure,
guest RAM is a bytearray."""
import os
import resource
import struct

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from kvmrun.bios import disk as disk_module
from kvmrun.bios.call import BiosCall, Unsupported, linear
from kvmrun.bios.disk import (BDA_DISKETTE_STATUS, BDA_HARD_DISK_STATUS, SECTOR, Disk, DiskImageError,
                              DiskServices, Geometry, disk_geometry)
from kvmrun.errors import LoaderError
from kvmrun.memory import GuestMemory

RAM = 0x100000          # 1 MiB: 100000-10FFEF is beyond RAM, F0000-FFFFF the BIOS area
MiB, GiB = 1 << 20, 1 << 30


def sector_bytes(lba: int) -> bytes:
    """A sector that says which it is."""
    return struct.pack("<I", lba) * (SECTOR // 4)


def numbered_disk(sectors: int) -> Disk:
    return Disk.from_bytes(b"".join(sector_bytes(lba) for lba in range(sectors)))


def int13(services: DiskServices, mem, ah: int, al: int = 0, dl: int = 0x80, **registers) -> BiosCall:
    call = BiosCall(0x13, mem, eax=ah << 8 | al, edx=registers.pop("dh", 0) << 8 | dl, **registers)
    services.int13(call)
    return call


def chs(cylinder: int, head: int, sector: int) -> dict:
    """CX and DH for a CHS address: cylinder bits 8-9 in CL's bits 6-7."""
    return {"ecx": (cylinder & 0xFF) << 8 | (cylinder >> 2) & 0xC0 | sector, "dh": head}


def packet(count: int, segment: int, offset: int, lba: int, size: int = 0x10, flat: int = 0) -> bytes:
    data = struct.pack("<BBHHHQ", size, 0, count, offset, segment, lba)
    return data + struct.pack("<Q", flat) if size >= 0x18 else data


@pytest.fixture
def mem():
    return GuestMemory.for_tests(RAM)


@pytest.fixture
def services():
    return DiskServices(numbered_disk(100))


def sparse_image(path, size: int, writes=()) -> str:
    """A sparse file of `size` bytes with (offset, bytes) written into it."""
    with open(path, "wb") as f:
        f.truncate(size)
        for offset, data in writes:
            f.seek(offset)
            f.write(data)
    return str(path)


# --- geometry -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sectors, logical", [
    (1, (2, 16, 63)), (8, (2, 16, 63)), (2048, (2, 16, 63)),         # a boot sector, 4 KiB, 1 MiB: QEMU's minimum
    (20 * MiB // SECTOR, (40, 16, 63)), (3 * 1008 - 1, (2, 16, 63)),  # whole cylinders only
    (1024 * 1008, (1024, 16, 63)),                                    # 504 MiB: the last untranslated size
    (1025 * 1008, (1024, 16, 63)),                                    # LBA translation: 16 heads still enough
    (GiB // SECTOR, (1024, 32, 63)),                                  # SeaBIOS's LCHS for QEMU's 1, 2, 4 GiB disks
    (2 * GiB // SECTOR, (520, 128, 63)),
    (4 * GiB // SECTOR, (522, 255, 63)),
    (63 * 255 * 1024 + 1, (1024, 255, 63)),                           # what CHS reaches at most
])
def test_geometry_is_qemus_ide_disk_under_seabios(sectors, logical):
    assert disk_geometry(sectors)[1] == Geometry(*logical)


def test_physical_geometry_keeps_cylinders_up_to_16383():
    assert disk_geometry(GiB // SECTOR)[0] == Geometry(2080, 16, 63)
    assert disk_geometry(100 * GiB // SECTOR)[0] == Geometry(16383, 16, 63)


def mbr(end_head: int, end_sector: int, length: int = 1000, entry: int = 0) -> bytes:
    sector = bytearray(SECTOR)
    at = 0x1BE + 16 * entry
    sector[at + 5], sector[at + 6] = end_head, end_sector
    struct.pack_into("<I", sector, at + 12, length)
    sector[510:512] = b"\x55\xaa"
    return bytes(sector)


def test_a_partition_table_with_16_heads_or_fewer_gives_the_geometry_as_qemu_guesses_it():
    total = 64 * MiB // SECTOR
    assert disk_geometry(total, mbr(end_head=3, end_sector=32)) == (Geometry(1024, 4, 32), Geometry(1024, 4, 32))
    assert disk_geometry(total, mbr(end_head=7, end_sector=0x40 | 17, entry=2))[1] == Geometry(963, 8, 17)
    # an entry without sectors, with end head 0 or end sector 0 is skipped, as is a table without 55AA
    size_guess = Geometry(130, 16, 63)
    assert disk_geometry(total, mbr(end_head=3, end_sector=32, length=0))[1] == size_guess
    assert disk_geometry(total, mbr(end_head=0, end_sector=32))[1] == size_guess
    assert disk_geometry(total, mbr(end_head=3, end_sector=0))[1] == size_guess
    assert disk_geometry(total, mbr(end_head=3, end_sector=32)[:510] + b"\0\0")[1] == size_guess
    # cylinders past 1024 are cut for int 13h
    assert disk_geometry(GiB // SECTOR, mbr(end_head=15, end_sector=63)) == (Geometry(2080, 16, 63),
                                                                             Geometry(1024, 16, 63))


def test_a_partition_table_with_more_than_16_heads_gets_the_size_geometry_and_large_translation():
    assert disk_geometry(64 * MiB // SECTOR, mbr(254, 63))[1] == Geometry(130, 16, 63)
    # cylinders halve and heads double until 1024 cylinders or 128 heads
    assert disk_geometry(GiB // SECTOR, mbr(254, 63)) == (Geometry(2080, 16, 63), Geometry(520, 64, 63))
    assert disk_geometry(2 * GiB // SECTOR, mbr(254, 63))[1] == Geometry(520, 128, 63)
    assert disk_geometry(5 * GiB // SECTOR, mbr(254, 63))[1] == Geometry(652, 255, 63)     # past 131072 tracks: LBA


@given(st.integers(1, 1024), st.integers(1, 255), st.integers(1, 63), st.data())
def test_chs_and_lba_map_one_to_one(cylinders, heads, sectors, data):
    geometry = Geometry(cylinders, heads, sectors)
    lba = data.draw(st.integers(0, geometry.cylinders * heads * sectors - 1))
    cylinder, head, sector = geometry.chs(lba)
    assert geometry.holds(cylinder, head, sector)
    assert geometry.lba(cylinder, head, sector) == lba


# --- the disk -------------------------------------------------------------------------------------------
def test_a_partial_last_sector_reads_as_zeros_past_the_image():
    disk = Disk.from_bytes(b"\x11" * SECTOR + b"\x22" * 100)
    assert disk.sectors == 2
    assert disk.read(1, 1) == b"\x22" * 100 + bytes(SECTOR - 100)
    assert disk.read(0, 2) == b"\x11" * SECTOR + b"\x22" * 100 + bytes(SECTOR - 100)


def test_writes_read_back_including_past_the_images_end():
    disk = Disk.from_bytes(bytes(SECTOR + 100))
    disk.write(0, b"\x33" * 2 * SECTOR)
    assert disk.read(0, 2) == b"\x33" * 2 * SECTOR
    disk.write(1, b"\x44" * SECTOR)
    assert disk.read(0, 2) == b"\x33" * SECTOR + b"\x44" * SECTOR


def test_sectors_off_the_disk_are_refused_by_the_disk_itself():
    disk = numbered_disk(4)
    for lba, count in ((4, 1), (3, 2), (-1, 1)):
        with pytest.raises(ValueError):
            disk.read(lba, count)
    with pytest.raises(ValueError):
        disk.write(0, b"\0" * 100)


def test_from_file_is_a_private_copy_unless_writable(tmp_path):
    path = tmp_path / "disk.img"
    original = b"\x55" * SECTOR + b"\x66" * 300
    path.write_bytes(original)
    with Disk.from_file(path) as disk:
        disk.write(1, b"\x77" * SECTOR)
        assert disk.read(1, 1) == b"\x77" * SECTOR
        assert path.read_bytes() == original
    with Disk.from_file(path, writable=True) as disk:
        disk.write(0, b"\x88" * 2 * SECTOR)
        assert disk.read(0, 2) == b"\x88" * 2 * SECTOR
    assert path.read_bytes() == b"\x88" * (SECTOR + 300)        # the file keeps its size


def test_from_file_does_not_read_a_large_image_into_memory(tmp_path):
    size = 10 * GiB + 100
    path = sparse_image(tmp_path / "big.img", size, [(0, sector_bytes(0)), (size - 100, b"\x99" * 100)])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with Disk.from_file(path) as disk:
        assert disk.sectors == 10 * GiB // SECTOR + 1
        assert disk.read(0, 1) == sector_bytes(0)
        assert disk.read(disk.sectors - 1, 1) == b"\x99" * 100 + bytes(SECTOR - 100)
        disk.write(disk.sectors - 2, b"\xaa" * 2 * SECTOR)
        assert disk.read(disk.sectors - 1, 1) == b"\xaa" * SECTOR
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 64 * 1024
    assert os.path.getsize(path) == size


def test_images_that_cannot_be_the_disk_are_one_line_errors(tmp_path, monkeypatch):
    with pytest.raises(DiskImageError, match="cannot open the disk image .*missing.img: No such file"):
        Disk.from_file(tmp_path / "missing.img")
    with pytest.raises(DiskImageError, match="is a directory"):
        Disk.from_file(tmp_path)
    read_only = tmp_path / "ro.img"
    read_only.write_bytes(bytes(SECTOR))
    read_only.chmod(0o444)
    if os.geteuid() != 0:
        with pytest.raises(DiskImageError, match="for writing"):
            Disk.from_file(read_only, writable=True)
    monkeypatch.setattr(disk_module, "MAX_DISK_BYTES", 4 * SECTOR)
    path = sparse_image(tmp_path / "big.img", 4 * SECTOR + 1)
    with pytest.raises(DiskImageError, match=r"big.img is .*\(2049 bytes\).* at most") as refused:
        Disk.from_file(path)
    assert isinstance(refused.value, LoaderError) and isinstance(refused.value, ValueError)
    assert "\n" not in str(refused.value)


def test_an_empty_file_is_a_disk_of_no_sectors(tmp_path, mem):
    path = tmp_path / "empty.img"
    path.write_bytes(b"")
    disk = Disk.from_file(path)
    assert disk.sectors == 0
    call = int13(DiskServices(disk), mem, 0x02, al=1, **chs(0, 0, 1), es=0x1000)
    assert (call.carry, call.ah, call.al) == (True, 0x04, 0)


@settings(max_examples=50)
@given(st.integers(0, 3 * SECTOR), st.lists(st.tuples(st.integers(0, 6), st.integers(1, 3), st.binary(max_size=1)),
                                             max_size=8))
def test_the_disk_behaves_as_its_bytes_padded_to_whole_sectors(size, writes):
    disk = Disk.from_bytes(bytes(range(256)) * (size // 256) + bytes(range(size % 256)))
    model = bytearray(bytes(range(256)) * (size // 256) + bytes(range(size % 256)))
    model += bytes(-len(model) % SECTOR)
    for lba, count, fill in writes:
        data = (fill or b"\xee") * count * SECTOR
        if lba + count <= disk.sectors:
            disk.write(lba, data)
            model[lba * SECTOR:(lba + count) * SECTOR] = data
    assert disk.read(0, disk.sectors) == bytes(model)


# --- int 13h: CHS ---------------------------------------------------------------------------------------
def bda_status(mem) -> int:
    return mem.read(BDA_HARD_DISK_STATUS, 1)[0]


def test_reset_succeeds(services, mem):
    mem.write(BDA_HARD_DISK_STATUS, b"\x04")
    call = int13(services, mem, 0x00, ebx=0x1234)
    assert (call.carry, call.ah, call.bx, bda_status(mem)) == (False, 0, 0x1234, 0)


def test_read_lands_at_es_bx_and_nowhere_else(services, mem):
    call = int13(services, mem, 0x02, al=3, **chs(0, 0, 2), es=0x1000, ebx=0x0200)
    assert (call.carry, call.ah, call.al) == (False, 0, 3)
    assert mem.read(0x10200, 3 * SECTOR) == sector_bytes(1) + sector_bytes(2) + sector_bytes(3)
    assert mem.read(0, 0x10200) == bytes(0x10200)
    assert mem.read(0x10200 + 3 * SECTOR, 0x1000) == bytes(0x1000)


def test_a_read_continues_on_the_next_head_and_past_the_segments_64k(services, mem):
    call = int13(services, mem, 0x02, al=2, **chs(0, 0, 63), es=0x1000, ebx=0xFE00)
    assert (call.carry, call.al) == (False, 2)
    assert mem.read(0x1FE00, 2 * SECTOR) == sector_bytes(62) + sector_bytes(63)
    int13(services, mem, 0x02, al=1, **chs(0, 1, 1), es=0x3000)
    assert mem.read(0x30000, SECTOR) == sector_bytes(63)


def test_cylinder_bits_8_and_9_come_from_cl(tmp_path, mem):
    lba = (257 * 16 + 3) * 63 + 4       # cylinder 257, head 3, sector 5
    path = sparse_image(tmp_path / "300m.img", 300 * MiB, [(lba * SECTOR, sector_bytes(lba))])
    services = DiskServices(Disk.from_file(path))
    assert services.disk.geometry == Geometry(609, 16, 63)
    call = int13(services, mem, 0x02, al=1, **chs(257, 3, 5), es=0x2000)
    assert call.cx == 0x0145 and call.carry is False
    assert mem.read(0x20000, SECTOR) == sector_bytes(lba)


@pytest.mark.parametrize("al, address, status", [
    (0, chs(0, 0, 1), 0x01),             # no sectors
    (129, chs(0, 0, 1), 0x01),           # more than 128
    (1, chs(0, 0, 0), 0x01),             # sectors count from 1
    (1, chs(0, 16, 1), 0x01),            # 16 heads
    (1, chs(2, 0, 1), 0x01),             # a 100-sector disk has QEMU's 2 cylinders
    (2, chs(0, 1, 37), 0x04),            # sectors 99 and 100: past the end
    (1, chs(1, 0, 1), 0x04),             # inside the geometry, past the disk
])
def test_bad_chs_reads_fail_without_transferring(services, mem, al, address, status):
    call = int13(services, mem, 0x02, al=al, es=0x1000, **address)
    assert (call.carry, call.ah, call.al, bda_status(mem)) == (True, status, 0, status)
    assert mem.read(0, RAM) == bytes(BDA_HARD_DISK_STATUS) + bytes([status]) + bytes(RAM - BDA_HARD_DISK_STATUS - 1)


@pytest.mark.parametrize("es, bx", [
    (0xF000, 0x0000),     # the BIOS area
    (0xEFFF, 0x0F00),     # running into it
    (0xFFFF, 0x0010),     # past RAM (1 MiB here)
])
def test_a_read_into_a_buffer_that_is_not_writable_ram_is_a_boundary_error(services, mem, es, bx):
    call = int13(services, mem, 0x02, al=2, **chs(0, 0, 1), es=es, ebx=bx)
    assert (call.carry, call.ah, call.al) == (True, 0x09, 0)
    assert mem.read(0, RAM) == bytes(BDA_HARD_DISK_STATUS) + b"\x09" + bytes(RAM - BDA_HARD_DISK_STATUS - 1)


def test_write_then_read_back(services, mem):
    mem.write(0x5000, b"\xab" * SECTOR + b"\xcd" * SECTOR)
    call = int13(services, mem, 0x03, al=2, **chs(0, 1, 10), es=0x0500)
    assert (call.carry, call.ah, call.al) == (False, 0, 2)
    assert services.disk.read(72, 3) == b"\xab" * SECTOR + b"\xcd" * SECTOR + sector_bytes(74)
    int13(services, mem, 0x02, al=2, **chs(0, 1, 10), es=0x0800)
    assert mem.read(0x8000, 2 * SECTOR) == b"\xab" * SECTOR + b"\xcd" * SECTOR


def test_a_write_may_come_from_the_bios_area_but_not_from_past_ram(services, mem):
    assert int13(services, mem, 0x03, al=1, **chs(0, 0, 5), es=0xF000).carry is False
    call = int13(services, mem, 0x03, al=1, **chs(0, 0, 6), es=0xFFFF, ebx=0x0100)
    assert (call.carry, call.ah, call.al) == (True, 0x09, 0)
    assert services.disk.read(5, 1) == sector_bytes(5)


def test_writes_to_a_copy_stay_in_kvmrun_and_writable_writes_reach_the_file(tmp_path, mem):
    path = tmp_path / "boot.img"
    path.write_bytes(b"".join(sector_bytes(lba) for lba in range(4)))
    mem.write(0x5000, b"\x42" * SECTOR)
    for writable in (False, True):
        with Disk.from_file(path, writable=writable) as disk:
            services = DiskServices(disk)
            assert int13(services, mem, 0x03, al=1, **chs(0, 0, 3), es=0x0500).carry is False
            assert int13(services, mem, 0x02, al=1, **chs(0, 0, 3), es=0x0600).carry is False
            assert mem.read(0x6000, SECTOR) == b"\x42" * SECTOR
        mem.write(0x6000, bytes(SECTOR))
        assert (path.read_bytes()[2 * SECTOR:3 * SECTOR] == b"\x42" * SECTOR) is writable


def test_verify_checks_the_sectors_and_touches_no_memory(services, mem):
    call = int13(services, mem, 0x04, al=5, **chs(0, 0, 1), es=0x1000)
    assert (call.carry, call.ah, call.al) == (False, 0, 5)
    call = int13(services, mem, 0x04, al=5, **chs(0, 1, 35), es=0x1000)
    assert (call.carry, call.ah, call.al) == (True, 0x04, 0)
    assert mem.read(0x10000, 0x10000) == bytes(0x10000)


def test_status_of_last_operation_reports_the_kept_status(services, mem):
    int13(services, mem, 0x02, al=0, **chs(0, 0, 1))
    call = int13(services, mem, 0x01)
    assert (call.carry, call.ah, bda_status(mem)) == (True, 0x01, 0x01)
    int13(services, mem, 0x02, al=1, **chs(0, 0, 1), es=0x1000)
    call = int13(services, mem, 0x01)
    assert (call.carry, call.ah) == (False, 0)


# --- int 13h: parameters ----------------------------------------------------------------------------------
def test_drive_parameters_of_a_small_disk(services, mem):
    call = int13(services, mem, 0x08, al=0x55, ebx=0x1234, edi=0x5678, es=0x9000)
    assert (call.carry, call.ah, call.al) == (False, 0, 0)
    assert (call.ch, call.cl, call.dh, call.dl) == (0, 63, 15, 1)         # 2 cylinders, the last kept back
    assert (call.bx, call.di, call.es) == (0x1234, 0x5678, 0x9000)        # hard disks: no diskette table


def test_drive_parameters_put_cylinder_bits_8_and_9_in_cl(tmp_path, mem):
    services = DiskServices(Disk.from_file(sparse_image(tmp_path / "300m.img", 300 * MiB)))
    call = int13(services, mem, 0x08)
    last = 609 - 2
    assert (call.ch, call.cl, call.dh) == (last & 0xFF, (last >> 2) & 0xC0 | 63, 15)
    call = int13(services, mem, 0x15)
    assert (call.carry, call.ah, call.cx << 16 | call.dx) == (False, 0x03, 608 * 16 * 63)


def test_disk_type_says_hard_disk_with_its_sectors(services, mem):
    mem.write(BDA_HARD_DISK_STATUS, b"\x04")
    call = int13(services, mem, 0x15, al=0xFF, ecx=0xFFFF)
    assert (call.carry, call.ah, call.cx, call.dx, bda_status(mem)) == (False, 0x03, 0, 1 * 16 * 63, 0)


def test_change_line_is_for_diskettes(services, mem):
    call = int13(services, mem, 0x16)
    assert (call.carry, call.ah) == (True, 0x01)


@pytest.mark.parametrize("ah", [0x09, 0x0C, 0x0D, 0x10, 0x11, 0x14, 0x45, 0x49])
def test_functions_without_meaning_here_succeed_as_seabios_answers_a_hard_disk(services, mem, ah):
    call = int13(services, mem, ah, al=0x01, **chs(5, 5, 5))
    assert (call.carry, call.ah, call.al) == (False, 0, 0x01)


def test_eject_says_not_removable(services, mem):
    call = int13(services, mem, 0x46)
    assert (call.carry, call.ah, bda_status(mem)) == (True, 0xB2, 0xB2)


@pytest.mark.parametrize("ah", [0x05, 0x0A, 0x0B, 0x4B, 0x4E, 0x06, 0x50, 0xFF])
def test_functions_kvmrun_does_not_provide_end_the_run(services, mem, ah):
    with pytest.raises(Unsupported) as unsupported:
        int13(services, mem, ah)
    if ah in (0x05, 0x0A):
        assert unsupported.value.why == {0x05: "format track", 0x0A: "read long"}[ah]
    assert mem.read(0, RAM) == bytes(RAM)


@pytest.mark.parametrize("dl, bda", [(0x00, BDA_DISKETTE_STATUS), (0x01, BDA_DISKETTE_STATUS),
                                     (0x81, BDA_HARD_DISK_STATUS), (0xE0, BDA_HARD_DISK_STATUS)])
@pytest.mark.parametrize("ah", [0x00, 0x01, 0x02, 0x08, 0x15, 0x41, 0x42, 0x48, 0x05, 0xFF])
def test_drives_other_than_80h_are_not_there(services, mem, dl, bda, ah):
    mem.write(0x500, packet(1, 0x1000, 0, 0))
    call = int13(services, mem, ah, al=1, dl=dl, **chs(0, 0, 1), es=0x1000, esi=0x500, ebx=0x55AA)
    assert (call.carry, call.ah, call.dl, call.bx) == (True, 0x01, dl, 0x55AA)
    assert mem.read(bda, 1) == b"\x01"
    assert mem.read(0x10000, SECTOR) == bytes(SECTOR)


# --- int 13h: EDD -----------------------------------------------------------------------------------------
def test_extensions_check(services, mem):
    call = int13(services, mem, 0x41, ebx=0x55AA)
    assert (call.carry, call.ah, call.bx, call.cx) == (False, 0x30, 0xAA55, 0x0001)


def test_extended_read_lands_at_the_packets_buffer(services, mem):
    mem.write(0x600, packet(count=4, segment=0x2000, offset=0x0010, lba=96))
    call = int13(services, mem, 0x42, esi=0x600)
    assert (call.carry, call.ah) == (False, 0)
    assert mem.read(0x20010, 4 * SECTOR) == b"".join(sector_bytes(lba) for lba in range(96, 100))
    assert mem.read(0x600, 0x10) == packet(4, 0x2000, 0x0010, 96)           # count: all 4 transferred
    assert mem.read(0x20010 + 4 * SECTOR, 0x100) == bytes(0x100)


def test_extended_read_with_a_64_bit_flat_buffer(services, mem):
    mem.write(0x600, packet(count=1, segment=0xFFFF, offset=0xFFFF, lba=7, size=0x18, flat=0x34000))
    call = int13(services, mem, 0x42, ds=0x0060, esi=0)
    assert call.carry is False
    assert mem.read(0x34000, SECTOR) == sector_bytes(7)
    # out of real mode's reach: refused, count 0
    mem.write(0x600, packet(count=1, segment=0xFFFF, offset=0xFFFF, lba=7, size=0x18, flat=0x1_0000_0000))
    call = int13(services, mem, 0x42, ds=0x0060)
    assert (call.carry, call.ah, mem.read(0x602, 2)) == (True, 0x09, b"\0\0")


def test_ffff_ffff_in_a_10h_packet_is_a_segment_and_offset(services, mem):
    mem.write(0x600, packet(count=1, segment=0xFFFF, offset=0xFFFF, lba=7))
    call = int13(services, mem, 0x42, esi=0x600)
    assert (call.carry, call.ah) == (True, 0x09)           # FFFF:FFFF + 512 is past 1 MiB of RAM


@pytest.mark.parametrize("fields, status", [
    ({"count": 128}, 0x01),                    # Phoenix EDD: at most 127
    ({"lba": 100}, 0x01),                      # starts past the end
    ({"lba": 1 << 63}, 0x01),
    ({"lba": 99, "count": 2}, 0x04),           # runs past the end
    ({"size": 0x0F}, 0x01),
    ({"segment": 0xF000}, 0x09),               # into the BIOS area
])
def test_bad_extended_reads_fail_and_report_no_blocks_transferred(services, mem, fields, status):
    mem.write(0x600, packet(**{"count": 1, "segment": 0x2000, "offset": 0, "lba": 0, **fields}))
    call = int13(services, mem, 0x42, esi=0x600)
    assert (call.carry, call.ah, bda_status(mem)) == (True, status, status)
    assert mem.read(0x602, 2) == b"\0\0"
    assert mem.read(0x20000, SECTOR) == bytes(SECTOR)


def test_a_zero_block_extended_read_succeeds_doing_nothing(services, mem):
    mem.write(0x600, packet(count=0, segment=0x2000, offset=0, lba=5))
    call = int13(services, mem, 0x42, esi=0x600)
    assert (call.carry, call.ah) == (False, 0)
    assert mem.read(0x20000, SECTOR) == bytes(SECTOR)


def test_a_packet_that_is_not_ram_is_an_invalid_parameter(services, mem):
    call = int13(services, mem, 0x42, ds=0xFFFF, esi=0x0100)
    assert (call.carry, call.ah) == (True, 0x01)


def test_extended_write_with_each_write_flag(services, mem):
    mem.write(0x3000, b"\x5a" * SECTOR)
    for flags in (0x00, 0x01, 0x02):
        mem.write(0x600, packet(count=1, segment=0x0300, offset=0, lba=10 + flags))
        call = int13(services, mem, 0x43, al=flags, esi=0x600)
        assert (call.carry, call.ah) == (False, 0)
        assert services.disk.read(10 + flags, 1) == b"\x5a" * SECTOR
    mem.write(0x600, packet(count=1, segment=0x0300, offset=0, lba=20))
    call = int13(services, mem, 0x43, al=0x03, esi=0x600)
    assert (call.carry, call.ah, mem.read(0x602, 2)) == (True, 0x01, b"\0\0")
    assert services.disk.read(20, 1) == sector_bytes(20)


def test_extended_verify_and_seek(services, mem):
    mem.write(0x600, packet(count=3, segment=0x2000, offset=0, lba=97))
    assert int13(services, mem, 0x44, esi=0x600).carry is False
    assert int13(services, mem, 0x47, esi=0x600).carry is False
    assert mem.read(0x20000, 3 * SECTOR) == bytes(3 * SECTOR)
    mem.write(0x600, packet(count=4, segment=0x2000, offset=0, lba=97))
    call = int13(services, mem, 0x44, esi=0x600)
    assert (call.carry, call.ah, mem.read(0x602, 2)) == (True, 0x04, b"\0\0")
    mem.write(0x600, packet(count=200, segment=0x2000, offset=0, lba=99))
    assert int13(services, mem, 0x47, esi=0x600).carry is False            # a seek needs the block only
    mem.write(0x600, packet(count=1, segment=0x2000, offset=0, lba=100))
    assert (int13(services, mem, 0x47, esi=0x600).ah, mem.read(0x602, 2)) == (0x01, b"\x01\0")


@pytest.mark.parametrize("room, returned", [(0x1A, 0x1A), (0x1D, 0x1A), (0x1E, 0x1E), (0x42, 0x1E), (0xFFFF, 0x1E)])
def test_extended_drive_parameters(services, mem, room, returned):
    mem.write(0x700, struct.pack("<H", room) + b"\xcc" * 0x40)
    call = int13(services, mem, 0x48, ds=0x0070, esi=0)
    assert (call.carry, call.ah) == (False, 0)
    fields = struct.unpack_from("<HHIIIQH", mem.read(0x700, 0x1A))
    assert fields == (returned, 0x0A, 2, 16, 63, 100, 512)     # CHS valid, write with verify; 100 sectors
    tail = mem.read(0x71A, 0x42 - 0x1A)
    assert tail == (b"\xff" * 4 if returned == 0x1E else b"\xcc" * 4) + b"\xcc" * (0x42 - 0x1E)


def test_extended_drive_parameters_of_a_disk_past_chs(tmp_path, mem):
    services = DiskServices(Disk.from_file(sparse_image(tmp_path / "big.img", 16 * GiB)))
    mem.write(0x700, struct.pack("<H", 0x1A))
    assert int13(services, mem, 0x48, esi=0x700).carry is False
    assert struct.unpack_from("<HHIIIQ", mem.read(0x700, 0x18)) == (0x1A, 0x08, 0x3FFF, 16, 63, 16 * GiB // SECTOR)


@pytest.mark.parametrize("room, ds, si", [(0x19, 0x0070, 0), (0x0, 0x0070, 0), (0x1A, 0xF000, 0), (0x1A, 0xFFFF, 0x20)])
def test_extended_drive_parameters_need_a_large_enough_writable_buffer(services, mem, room, ds, si):
    if linear(ds, si) < RAM - 2:
        mem.write(linear(ds, si), struct.pack("<H", room))
    call = int13(services, mem, 0x48, ds=ds, esi=si)
    assert (call.carry, call.ah) == (True, 0x01)


# --- int 13h with anything in the registers ---------------------------------------------------------------
ANSWERED = {0x00, 0x01, 0x02, 0x03, 0x04, 0x08, 0x09, 0x0C, 0x0D, 0x10, 0x11, 0x14, 0x15, 0x16,
            0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49}
FILL = 0xA5             # RAM's bytes before the call, so a stray zero shows
words = st.integers(0, 0xFFFF)
segments = st.one_of(st.sampled_from([0x0000, 0x0050, 0x1000, 0x9FFF, 0xEFFF, 0xF000, 0xFFFF]), words)
offsets = st.one_of(st.sampled_from([0x0000, 0x0474, 0x7C00, 0xFE00, 0xFFF0, 0xFFFF]), words)
flat_addresses = st.one_of(st.sampled_from([0, 0x20000, 0xEFF00, 0xFFE00, 0x10FE00, 0x10FFF0, (1 << 64) - 1]),
                           st.integers(0, (1 << 64) - 1))


@st.composite
def disk_packets(draw) -> bytes:
    size = draw(st.one_of(st.sampled_from([0x10, 0x18, 0x0F, 0x00]), st.integers(0, 0xFF)))
    count = draw(st.one_of(st.integers(1, 4), st.sampled_from([0, 127, 128]), words))
    segment, offset = draw(st.one_of(st.just((0xFFFF, 0xFFFF)), st.tuples(segments, offsets)))
    lba = draw(st.one_of(st.integers(0, 110), st.integers(0, (1 << 64) - 1)))
    return struct.pack("<BBHHHQQ", size, draw(st.integers(0, 0xFF)), count, offset, segment, lba, draw(flat_addresses))


def write_ranges(ah: int, al: int, es: int, bx: int, ds: int, si: int, before: bytes):
    """Where int 13h may write for these inputs: the status bytes, and the caller's buffers."""
    ranges = [(BDA_DISKETTE_STATUS, 1), (BDA_HARD_DISK_STATUS, 1)]
    packet_at = linear(ds, si)
    if ah == 0x02:
        ranges.append((linear(es, bx), al * SECTOR))
    elif ah == 0x48:
        ranges.append((packet_at, 0x1E))
    elif ah in (0x42, 0x43, 0x44) and packet_at + 16 <= RAM:
        ranges.append((packet_at + 2, 2))
        size, count, pointer = struct.unpack_from("<BxHI", before, packet_at)
        if ah == 0x42:
            buffer = linear(pointer >> 16, pointer)
            if pointer == 0xFFFFFFFF and size >= 0x18 and packet_at + 24 <= RAM:
                buffer = struct.unpack_from("<Q", before, packet_at + 16)[0]
            ranges.append((buffer, count * SECTOR))
    return ranges


DISKS = [numbered_disk(100), Disk.from_bytes(numbered_disk(50).read(0, 50) + b"\x77" * 100)]


REGISTERS = dict(al=st.one_of(st.integers(1, 4), st.integers(0, 0xFF)),
                 dh=st.one_of(st.integers(0, 1), st.integers(0, 0xFF)),
                 cx=st.one_of(st.builds(lambda cylinder, sector: cylinder << 8 | sector, st.integers(0, 2),
                                        st.integers(0, 64)), words),
                 es=segments, bx=offsets, ds=segments, si=offsets, high=words, which=st.sampled_from(DISKS),
                 packet_bytes=disk_packets())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ah=st.one_of(st.sampled_from(sorted(ANSWERED)), st.integers(0, 0xFF)),
       dl=st.one_of(st.just(0x80), st.integers(0, 0xFF)), **REGISTERS)
def test_int13_with_any_registers_answers_as_documented_and_writes_only_the_callers_buffers(ah, dl, **registers):
    check_int13(ah, dl, **registers)


@st.composite
def likely_packets(draw) -> bytes:
    """Packets that mostly ask for something the disk and RAM can do."""
    flat = draw(st.integers(0, RAM))
    segment, offset = draw(st.one_of(st.just((0xFFFF, 0xFFFF)), st.tuples(st.integers(0, 0xF000), words)))
    return struct.pack("<BBHHHQQ", draw(st.sampled_from([0x10, 0x18])), 0, draw(st.integers(1, 4)), offset, segment,
                       draw(st.integers(0, 100)), flat)


LIKELY = dict(REGISTERS, al=st.integers(0, 4), dh=st.integers(0, 1), cx=st.integers(1, 63),
              es=st.one_of(st.integers(0, 0xF000), segments), ds=st.one_of(st.integers(0, 0xE000), segments),
              packet_bytes=st.one_of(likely_packets(), disk_packets()))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ah=st.sampled_from([0x02, 0x03, 0x04, 0x42, 0x43, 0x44, 0x47, 0x48]), **LIKELY)
def test_transfers_with_any_buffers_and_packets_move_only_what_was_asked(ah, **registers):
    check_int13(ah, 0x80, **registers)


def check_int13(ah, dl, al, dh, cx, es, bx, ds, si, high, which, packet_bytes):
    """int 13h's documented results: an answer, or Unsupported for what kvmrun does not provide; CF set
    exactly when AH is a failure status; the status kept; only the caller's buffers written; the disk
    changed only by a successful write."""
    mem = GuestMemory(RAM, bytearray([FILL]) * RAM)
    packet_at = linear(ds, si)
    if packet_at + len(packet_bytes) <= RAM:
        mem.write(packet_at, packet_bytes)
    before = mem.read(0, RAM)
    disk_before = which.read(0, which.sectors)
    services = DiskServices(which)
    call = BiosCall(0x13, mem, eax=high << 16 | ah << 8 | al, ebx=high << 16 | bx, ecx=cx, edx=dh << 8 | dl,
                    esi=si, ds=ds, es=es)
    try:
        services.int13(call)
    except Unsupported:
        assert dl == 0x80 and ah not in ANSWERED
        assert mem.read(0, RAM) == before
        return
    assert dl != 0x80 or ah in ANSWERED

    after = mem.read(0, RAM)
    expected = bytearray(before)
    for start, length in write_ranges(ah, al, es, bx, ds, si, before):
        start, end = max(start, 0), min(start + length, RAM)
        expected[start:end] = after[start:end]
    assert after == bytes(expected), "int 13h wrote outside the caller's buffers"

    if dl != 0x80:
        assert (call.carry, call.ah) == (True, 0x01)
    elif ah == 0x15:
        assert (call.carry, call.ah) == (False, 0x03)
    elif ah == 0x41:
        assert (call.carry, call.ah, call.bx) == (False, 0x30, 0xAA55)
    else:
        assert call.carry == (call.ah != 0)
        if ah in (0x02, 0x03, 0x04):
            assert call.al == (0 if call.carry else al)
    if dl != 0x80 or ah != 0x01:
        status = 0 if ah in (0x15, 0x41) and dl == 0x80 else call.ah
        assert after[BDA_DISKETTE_STATUS if dl < 0x80 else BDA_HARD_DISK_STATUS] == status
    assert call.eax >> 16 == high and call.ebx >> 16 == high

    if not (dl == 0x80 and ah in (0x03, 0x43) and not call.carry):
        assert which.read(0, which.sectors) == disk_before
