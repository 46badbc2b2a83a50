"""Raw images, reading image files, and checking a plan against RAM and kvmrun's structures."""
import os

import pytest

from kvmrun.boot.cpu_modes import Mode
from kvmrun.boot.image import plan_image, read_image
from kvmrun.boot.plan import LoadPlan, LoadSegment, Reserved, apply_plan, check_plan
from kvmrun.boot.raw import plan_raw
from kvmrun.boot.structures import plan_boot_structures
from kvmrun.errors import ConfigError, LoaderError
from kvmrun.layout import GiB, MiB
from kvmrun.memory import GuestMemory, RamLayout

from elfimage import Seg, elf


def test_raw_defaults_per_mode():
    long = plan_raw(b"\xf4", Mode.LONG)
    real = plan_raw(b"\xf4", Mode.REAL)
    assert (long.entry, long.segments[0].addr) == (0x100000, 0x100000)
    assert (real.entry, real.segments[0].addr) == (0x7C00, 0x7C00)
    assert plan_raw(b"\xf4", Mode.PROTECTED, load_addr=0x200000, entry=0x200010).entry == 0x200010


def test_raw_real_mode_entry_must_be_below_1mib():
    with pytest.raises(LoaderError, match="^real-mode entry 0x100000 must lie below 1 MiB$"):
        plan_raw(b"\xf4", Mode.REAL, entry=0x100000)


def test_plan_image_detects_elf_and_defaults_raw_to_long_mode():
    assert plan_image(b"\x90\xf4", None, None, None).default_mode is Mode.LONG
    image = bytes(elf([Seg(0x100000, b"\xf4")], entry=0x100000))
    assert plan_image(image, None, None, None).kind == "ELF64"
    with pytest.raises(LoaderError, match="apply to raw images"):
        plan_image(image, None, 0x1000, None)


def test_a_raw_image_with_the_boot_signature_gets_a_note_when_no_mode_is_asked():
    sector = bytes(510) + b"\x55\xaa"
    note = plan_image(sector, None, None, None).notes
    assert len(note) == 1 and "looks like a PC boot sector" in note[0] and "--mode real" in note[0]
    assert plan_image(sector + bytes(1024), None, None, None).notes == note      # a boot disk, too
    assert plan_image(sector, None, None, None).default_mode is Mode.LONG        # the default is unchanged
    for mode in Mode:
        assert plan_image(sector, mode, None, None).notes == ()
    assert plan_image(bytes(512), None, None, None).notes == ()
    assert plan_image(b"\x55\xaa", None, None, None).notes == ()


def test_read_image_errors(tmp_path):
    with pytest.raises(LoaderError, match=r"nope\.bin: no such file$"):
        read_image(str(tmp_path / "nope.bin"), 1 << 20)
    with pytest.raises(LoaderError, match="is a directory"):
        read_image(str(tmp_path), 1 << 20)
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    with pytest.raises(LoaderError, match="empty.bin: the image is empty$"):
        read_image(str(empty), 1 << 20)
    big = tmp_path / "big.bin"
    big.write_bytes(b"\0" * 5000)
    with pytest.raises(LoaderError, match=r"the image \(5000 bytes\) is larger than guest RAM \(4096 bytes\)"):
        read_image(str(big), 4096)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(LoaderError, match="fifo: not a regular file$"):
        read_image(str(fifo), 1 << 20)


def plan_of(*segments, entry=None):
    segs = tuple(LoadSegment(addr=a, data=b"x" * min(n, 4), memsz=n, name=f"segment {i} (PT_LOAD)")
                 for i, (a, n) in enumerate(segments))
    return LoadPlan(kind="ELF64", default_mode=Mode.LONG, entry=segs[0].addr if entry is None else entry,
                    segments=segs)


def test_check_plan_refuses_segments_outside_ram():
    mem = GuestMemory.for_tests(2 * MiB)
    check_plan(plan_of((0x100000, 1 * MiB)), mem, [], Mode.LONG)          # exactly fits
    with pytest.raises(LoaderError) as err:
        check_plan(plan_of((0x100000, 1 * MiB + 1)), mem, [], Mode.LONG)  # one byte over
    assert str(err.value) == ("segment 0 (PT_LOAD) (0x100000-0x200001, 1048577 bytes) does not fit in guest "
                              "RAM (0x0-0x200000); give more with --memory")


def test_check_plan_refuses_overlap_with_boot_structures():
    mem = GuestMemory.for_tests(2 * MiB)
    reserved = [Reserved(0x1000, 0x3000, "page tables")]
    check_plan(plan_of((0x3000, 0x1000)), mem, reserved, Mode.LONG)
    with pytest.raises(LoaderError, match=r"^segment 0 \(PT_LOAD\) \(0x2fff-0x3fff\) overlaps kvmrun's page "
                                          r"tables at 0x1000-0x3000$"):
        check_plan(plan_of((0x2FFF, 0x1000)), mem, reserved, Mode.LONG)


def test_check_plan_entry_rules():
    mem = GuestMemory.for_tests(2 * MiB)
    with pytest.raises(LoaderError, match="^entry point 0x300000 lies outside guest RAM"):
        check_plan(plan_of((0x1000, 16), entry=0x300000), mem, [], Mode.LONG)
    big = GuestMemory(5 * GiB)
    try:
        with pytest.raises(LoaderError, match="cannot be reached in protected mode"):
            check_plan(plan_of((0x1000, 16), entry=4 * GiB), big, [], Mode.PROTECTED)
    finally:
        big.close()


def test_apply_plan_copies_data_and_zeroes_the_rest():
    mem = GuestMemory.for_tests(1 * MiB)
    mem.write(0x10000, b"\xaa" * 0x2000)
    plan = LoadPlan("ELF64", Mode.LONG, 0x10000, (LoadSegment(0x10000, b"abcd", 0x1800, "segment 0"),))
    result = apply_plan(plan, mem, Mode.LONG)
    assert mem.read(0x10000, 4) == b"abcd"
    assert mem.read(0x10004, 0x17FC) == bytes(0x17FC)
    assert mem.read(0x11800, 0x800) == b"\xaa" * 0x800
    assert result.ranges == ((0x10000, 0x11800),) and result.entry == 0x10000


def test_boot_structures_per_mode():
    mem = GuestMemory.for_tests(2 * MiB)
    assert [(r.start, r.end, r.what) for r in plan_boot_structures(Mode.REAL, mem, 1, True).reserved] == [
        (0x0, 0x400, "real-mode interrupt vector table"), (0xF0000, 0xF0100, "no-BIOS interrupt stubs")]
    long = plan_boot_structures(Mode.LONG, mem, 2, one_gib_pages=False)
    assert [(r.start, r.end, r.what) for r in long.reserved] == [
        (0x500, 0x530, "GDT"), (0x600, 0x668, "TSS"), (0x1000, 0x7000, "page tables"),
        (0x1E0000, 0x200000, "vCPU stacks")]
    assert long.stack_tops == (0x200000, 0x1F0000)
    protected = plan_boot_structures(Mode.PROTECTED, mem, 1, one_gib_pages=True)
    assert [r.what for r in protected.reserved] == ["GDT", "TSS", "vCPU stack"]


def test_protected_mode_stacks_stay_below_4gib():
    mem = GuestMemory(5 * GiB)
    try:
        assert plan_boot_structures(Mode.PROTECTED, mem, 1, True).stack_tops == (3 * GiB,)
        assert plan_boot_structures(Mode.LONG, mem, 1, True).stack_tops == (6 * GiB,)
    finally:
        mem.close()


@pytest.mark.parametrize("memory, cpus, top", [
    (3 * GiB + 4096, 1, 3 * GiB),                 # 4 KiB at 4 GiB: too little for a stack
    (3 * GiB + 64 * 1024, 2, 3 * GiB),            # room for one of two stacks
    (3 * GiB + 64 * 1024, 1, 4 * GiB + 64 * 1024),
    (3 * GiB, 1, 3 * GiB),
])
def test_long_mode_stacks_go_below_3gib_when_too_little_ram_lies_above_4gib(memory, cpus, top):
    structures = plan_boot_structures(Mode.LONG, RamLayout(memory), cpus, one_gib_pages=True)
    assert structures.stack_tops[0] == top
    assert structures.reserved[-1].end == top


def test_too_many_stacks_for_ram():
    with pytest.raises(ConfigError, match="64 vCPU stacks of 64 KiB do not fit"):
        plan_boot_structures(Mode.LONG, GuestMemory.for_tests(1 * MiB), 64, True)
