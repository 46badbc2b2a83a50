"""The ELF loader on valid images and on images corrupted one field at a time."""
import struct
import sys
import tracemalloc

import pytest

from kvmrun.boot.cpu_modes import Mode
from kvmrun.boot.elf import plan_elf
from kvmrun.errors import LoaderError

from conftest import ROOT
from elfimage import PT_NOTE, Seg, elf, phdr_field_offset

sys.path.insert(0, str(ROOT / "fuzz"))
from fuzz_loaders import flood_elf  # noqa: E402

CODE = b"\xf4" * 16


def valid64():
    return elf([Seg(0x100000, CODE), Seg(0x200000, b"data", memsz=0x10000, flags=6)], entry=0x100000)


def test_valid_elf64_plans_its_segments():
    plan = plan_elf(bytes(valid64()))
    assert (plan.kind, plan.default_mode, plan.entry) == ("ELF64", Mode.LONG, 0x100000)
    assert [(s.addr, s.data, s.memsz) for s in plan.segments] == \
        [(0x100000, CODE, 16), (0x200000, b"data", 0x10000)]


def test_valid_elf32_defaults_to_protected_mode():
    plan = plan_elf(bytes(elf([Seg(0x100000, CODE)], entry=0x100004, bits=32)))
    assert (plan.kind, plan.default_mode, plan.entry) == ("ELF32", Mode.PROTECTED, 0x100004)


def test_entry_in_a_higher_half_segment_is_translated_to_physical():
    image = elf([Seg(0x100000, CODE, vaddr=0xFFFFFFFF80100000)], entry=0xFFFFFFFF80100008)
    assert plan_elf(bytes(image)).entry == 0x100008


def test_segments_other_than_load_and_empty_ones_are_skipped():
    image = elf([Seg(0, b"note", type=PT_NOTE), Seg(0x100000, CODE), Seg(0x300000, b"", memsz=0)],
                entry=0x100000)
    assert [s.addr for s in plan_elf(bytes(image)).segments] == [0x100000]


def corrupt(image, offset, fmt, value):
    struct.pack_into(fmt, image, offset, value)
    return bytes(image)


@pytest.mark.parametrize("image, message", [
    (b"\x7fELF\x02\x01", "truncated ELF: 6 bytes, too short for e_ident"),
    (bytes(valid64()[:40]), "truncated ELF64: 40 bytes, the ELF header alone needs 64"),
])
def test_truncated_headers(image, message):
    with pytest.raises(LoaderError) as err:
        plan_elf(image)
    assert str(err.value) == message


@pytest.mark.parametrize("offset, fmt, value, message", [
    (4, "B", 3, "malformed ELF: unknown class 3 in e_ident (1 is ELF32, 2 is ELF64)"),
    (5, "B", 2, "ELF64 is not little-endian (EI_DATA=2): not an x86 image"),
    (6, "B", 0, "malformed ELF64: EI_VERSION is 0, expected 1"),
    (18, "<H", 183, "ELF64 for another machine: e_machine is 183 (AArch64); kvmrun boots x86-64 ELF64 images"),
    (18, "<H", 3, "ELF64 for another machine: e_machine is 3 (i386); kvmrun boots x86-64 ELF64 images"),
    (16, "<H", 3, "ELF64 is ET_DYN, not an executable (ET_EXEC): link it with a fixed load address"),
    (54, "<H", 32, "malformed ELF64: e_phentsize is 32, expected 56"),
    (56, "<H", 0, "ELF64 has no program headers (e_phnum is 0): nothing to load"),
    (56, "<H", 0xFFFF, "ELF64 uses extended program header numbering (PN_XNUM): not supported"),
    (32, "<Q", 0x1000, "truncated ELF64: program headers at offset 0x1000 (2 x 56 bytes) extend beyond the end "
                       "of the file (196 bytes)"),
])
def test_corrupt_elf64_header_fields(offset, fmt, value, message):
    with pytest.raises(LoaderError) as err:
        plan_elf(corrupt(valid64(), offset, fmt, value))
    assert str(err.value) == message


@pytest.mark.parametrize("field, value, message", [
    ("offset", 0x190, "truncated ELF64: segment 1 (PT_LOAD) data (offset 0x190, 0x4 bytes) extends beyond the "
                      "end of the file (196 bytes)"),
    ("filesz", 0x20000, "malformed ELF64: segment 1 (PT_LOAD) has p_filesz 0x20000 larger than p_memsz 0x10000"),
    ("paddr", 2**64 - 0x100, "malformed ELF64: segment 1 (PT_LOAD) address 0xffffffffffffff00 + size 0x10000 "
                             "overflows the address space"),
    ("vaddr", 2**64 - 0x100, "malformed ELF64: segment 1 (PT_LOAD) address 0x200000 + size 0x10000 "
                             "overflows the address space"),
    ("paddr", 0x100008, "malformed ELF64: segment 0 (PT_LOAD) (0x100000-0x100010) and segment 1 (PT_LOAD) "
                        "(0x100008-0x110008) overlap in physical memory"),
    ("type", PT_NOTE, None),
])
def test_corrupt_program_header_fields(field, value, message):
    image = corrupt(valid64(), phdr_field_offset(64, 1, field), "<Q" if field != "type" else "<I", value)
    if message is None:
        assert len(plan_elf(image).segments) == 1
        return
    with pytest.raises(LoaderError) as err:
        plan_elf(image)
    assert str(err.value) == message


def test_elf32_for_x86_64_is_refused():
    image = elf([Seg(0x100000, CODE)], entry=0x100000, bits=32, machine=62)
    with pytest.raises(LoaderError, match=r"^ELF32 for another machine: e_machine is 62 \(x86-64\)"):
        plan_elf(bytes(image))


def test_elf32_corrupt_phentsize():
    image = elf([Seg(0x100000, CODE)], entry=0x100000, bits=32)
    struct.pack_into("<H", image, 42, 56)
    with pytest.raises(LoaderError, match="^malformed ELF32: e_phentsize is 56, expected 32$"):
        plan_elf(bytes(image))


@pytest.mark.parametrize("entry, flags", [(0x9000000, 5), (0x100004, 6)])
def test_entry_must_lie_in_an_executable_segment(entry, flags):
    image = elf([Seg(0x100000, CODE, flags=flags)], entry=entry)
    with pytest.raises(LoaderError) as err:
        plan_elf(bytes(image))
    assert str(err.value) == f"ELF64's entry point 0x{entry:x} is not inside an executable PT_LOAD segment"


def test_segments_out_of_order_are_refused():
    image = elf([Seg(0x200000, b"data", flags=6), Seg(0x100000, CODE)], entry=0x100000)
    with pytest.raises(LoaderError) as err:
        plan_elf(bytes(image))
    assert str(err.value) == ("malformed ELF64: segment 1 (PT_LOAD) at p_vaddr 0x100000 comes after one at "
                              "0x200000; PT_LOAD segments must be in ascending order")


def test_no_loadable_segment():
    image = elf([Seg(0x100000, b"n", type=PT_NOTE)], entry=0x100000)
    with pytest.raises(LoaderError, match=r"^ELF64 has no loadable segment"):
        plan_elf(bytes(image))


def test_every_truncation_of_a_valid_image_is_a_loader_error_or_a_plan():
    image = bytes(valid64())
    for length in range(len(image)):
        try:
            plan_elf(image[:length])
        except LoaderError:
            pass


def _peak_planning(image):
    """plan_elf's outcome (a plan or the LoaderError) and the peak memory it traced."""
    plan_elf(bytes(valid64()))                 # one-time set-up (imports) is not the image's cost
    tracemalloc.start()
    try:
        outcome = plan_elf(image)
    except LoaderError as err:
        outcome = err
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return outcome, peak


def test_a_flood_of_program_headers_is_refused_as_linux_does_before_anything_is_read():
    image = flood_elf(18_000, 1 << 20)         # 1 MiB: 18,000 PT_LOAD headers, each naming the whole file
    outcome, peak = _peak_planning(image)
    assert str(outcome) == ("malformed ELF64: 18000 program headers (1008000 bytes); at most 1170 (65536 bytes) "
                            "are accepted, as by Linux")
    assert peak < len(image)


@pytest.mark.parametrize("stride", [0, 1 << 20], ids=["overlapping", "side by side"])
def test_headers_naming_the_whole_file_are_planned_without_copying_it(stride):
    """1000 headers each naming all but the first byte of a 256 KiB file: once 1000 copies of it
    (250 MiB) were made before the overlap check; now segments are views of the image."""
    image = flood_elf(1000, 256 << 10, offset=1, stride=stride)
    outcome, peak = _peak_planning(image)
    if stride == 0:
        assert str(outcome).startswith("malformed ELF64: segment 0 (PT_LOAD) (0x100000-0x13ffff) and segment 1 "
                                       "(PT_LOAD) (0x100000-0x13ffff) overlap")
    else:
        assert len(outcome.segments) == 1000 and bytes(outcome.segments[999].data) == image[1:]
    assert peak < 3 * len(image)
