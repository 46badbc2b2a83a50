"""Raw images, reading image files, checking a plan against RAM, where kvmrun's structures go, and
writing a plan's segments through the boot protocol."""
import os

import pytest

from kvmrun.boot.cpu_modes import Mode
from kvmrun.boot.image import plan_image
from kvmrun.boot.plan import LoadPlan, LoadSegment, check_plan
from kvmrun.boot.prepare import plan_image_for
from kvmrun.boot.protocols import kvmrun_abi
from kvmrun.boot.raw import plan_raw
from kvmrun.boot.setup import apply_setup, check_setup
from kvmrun.boot.structures import plan_boot_structures
from kvmrun.errors import ConfigError, LoaderError
from kvmrun.layout import GiB, MiB
from kvmrun.memory import GuestMemory, RamLayout
from kvmrun.options import BootConfig

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


def test_a_raw_image_that_almost_is_a_boot_sector_gets_a_note_saying_why_it_is_not():
    reversed_signature = bytes(510) + b"\xaa\x55"
    assert "reversed" in plan_image(reversed_signature, None, None, None).notes[0]
    cut_short = bytes(510) + b"\x55"
    assert "511 bytes" in plan_image(cut_short, None, None, None).notes[0]
    for mode in Mode:                                    # --mode says what the user wants: no note
        assert plan_image(reversed_signature, mode, None, None).notes == ()
    assert plan_image(bytes(511), None, None, None).notes == ()
    assert plan_image(bytes(510) + b"\xaa\x55" + bytes(512), None, None, None).notes != ()


def test_a_raw_image_with_the_boot_signature_plans_as_raw_without_notes():
    """Booting it as a disk is boot/prepare.py's choice (tests/test_boot_disk.py); as a raw image it is raw."""
    sector = bytes(510) + b"\x55\xaa"
    assert plan_image(sector, None, None, None).notes == ()
    assert plan_image(sector, None, None, None).default_mode is Mode.LONG


def test_read_image_errors(tmp_path):
    """Read as kvmrun boot reads it: each error names the file once (boot/prepare.py's _naming)."""
    def refusal(path):
        with pytest.raises(LoaderError) as err:
            plan_image_for(BootConfig(str(path), memory=MiB))
        return str(err.value)
    assert refusal(tmp_path / "nope.bin") == f"{tmp_path}/nope.bin: no such file"
    assert refusal(tmp_path) == f"{tmp_path}: is a directory, not an image"
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    assert refusal(empty) == f"{empty}: the image is empty"
    big = tmp_path / "big.bin"
    big.write_bytes(b"\0" * (MiB + 1))
    assert refusal(big) == (f"{big}: the image ({MiB + 1} bytes) is larger than guest RAM ({MiB} bytes); "
                            "give more with --memory")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert refusal(fifo) == f"{fifo}: not a regular file"


def plan_of(*segments, entry=None):
    segs = tuple(LoadSegment(addr=a, data=b"x" * min(n, 4), memsz=n, name=f"segment {i} (PT_LOAD)")
                 for i, (a, n) in enumerate(segments))
    return LoadPlan(kind="ELF64", default_mode=Mode.LONG, entry=segs[0].addr if entry is None else entry,
                    segments=segs)


def test_check_plan_refuses_segments_outside_ram():
    mem = GuestMemory.for_tests(2 * MiB)
    check_plan(plan_of((0x100000, 1 * MiB)), mem, Mode.LONG)          # exactly fits
    with pytest.raises(LoaderError) as err:
        check_plan(plan_of((0x100000, 1 * MiB + 1)), mem, Mode.LONG)  # one byte over
    assert str(err.value) == ("segment 0 (PT_LOAD) (0x100000-0x200001, 1048577 bytes) does not fit in guest "
                              "RAM (0x0-0x200000); give more with --memory")


def test_check_plan_entry_rules():
    mem = GuestMemory.for_tests(2 * MiB)
    with pytest.raises(LoaderError, match="^entry point 0x300000 lies outside guest RAM"):
        check_plan(plan_of((0x1000, 16), entry=0x300000), mem, Mode.LONG)
    big = GuestMemory(5 * GiB)
    try:
        with pytest.raises(LoaderError, match="cannot be reached in protected mode"):
            check_plan(plan_of((0x1000, 16), entry=4 * GiB), big, Mode.PROTECTED)
    finally:
        big.close()


def test_a_segment_is_written_with_its_data_and_the_rest_zeroed():
    mem = GuestMemory.for_tests(1 * MiB)
    mem.write(0x10000, b"\xaa" * 0x2000)
    plan = LoadPlan("ELF64", Mode.LONG, 0x10000, (LoadSegment(0x10000, b"abcd", 0x1800, "segment 0"),))
    setup = kvmrun_abi.plan(plan, mem, 1, Mode.LONG, False)
    check_setup(setup, mem)
    apply_setup(setup, mem)
    assert mem.read(0x10000, 4) == b"abcd"
    assert mem.read(0x10004, 0x17FC) == bytes(0x17FC)
    assert mem.read(0x11800, 0x800) == b"\xaa" * 0x800
    assert [(b.addr, b.end) for b in setup.blobs if not b.structure] == [(0x10000, 0x11800)]
    assert [start.entry for start in setup.vcpus] == [0x10000]


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
    with pytest.raises(ConfigError, match="memory must hold 64 vCPU stacks of 64 KiB beside kvmrun.s tables, not"):
        plan_boot_structures(Mode.LONG, GuestMemory.for_tests(1 * MiB), 64, True)
