"""PVH: the Xen PHYS32_ENTRY note found in ELF images built here (and refused, exactly, when corrupt),
and the boot setup: kernel, modules, then hvm_start_info, the command line, the module list and the
memory map, pinned byte for byte and read back as a PVH kernel reads them."""
import struct
from typing import Sequence

import pytest
from hypothesis import given, settings, strategies as st

from kvmrun.boot.cpu_modes import Mode
from kvmrun.boot.protocols import pvh as pvh_protocol
from kvmrun.boot.protocols.pc import Module
from kvmrun.boot.pvh import MAX_NOTES, probe
from kvmrun.boot.setup import BootSetup, check_setup
from kvmrun.errors import LoaderError
from kvmrun.memory import RamLayout
from kvmrun.platform.memory_map import E820_RAM, E820_RESERVED, memory_map
from kvmrun.platform.needs import AP_START_SIPI

from elfimage import PT_NOTE, Seg, elf

MiB, GiB = 1 << 20, 1 << 30
KERNEL = 0x100000
ENTRY = 0x100040
CODE = b"\xf4" * 0x1234


def note(name: bytes, note_type: int, desc: bytes, align: int = 4) -> bytes:
    """One ELF note: header and name, padded to `align` from the note's start, then the descriptor,
    padded so the next note starts aligned (binutils' ELF_NOTE_DESC_OFFSET and NEXT_OFFSET)."""
    data = struct.pack("<III", len(name), len(desc), note_type) + name
    data += bytes(-len(data) % align) + desc
    return data + bytes(-len(data) % align)


def xen_entry(entry: int = ENTRY, size: int = 8) -> bytes:
    return note(b"Xen\0", 18, entry.to_bytes(size, "little"))


BUILD_ID = note(b"GNU\0", 3, bytes(range(20)))
LINUX = note(b"Linux\0", 6, b"6.8\0\0")          # a name that needs padding


def kernel(notes: bytes = BUILD_ID + LINUX + xen_entry(), bits: int = 64, code: bytes = CODE,
           paddr: int = KERNEL) -> bytearray:
    return elf([Seg(0, notes, type=PT_NOTE, flags=4), Seg(paddr, code)], entry=paddr, bits=bits)


NOTE_OFFSET = {64: 64 + 2 * 56, 32: 52 + 2 * 32}         # where elf() puts the first segment's data


def phdr_offset(bits: int, index: int) -> int:
    return (64 + index * 56) if bits == 64 else (52 + index * 32)


# --- probe -------------------------------------------------------------------------------------------

def test_an_elf64_kernel_with_linux_s_8_byte_note():
    assert probe(bytes(kernel())) == ENTRY


def test_an_elf32_kernel_with_a_4_byte_note():
    assert probe(bytes(kernel(BUILD_ID + xen_entry(size=4), bits=32))) == ENTRY


def test_the_entry_may_be_anywhere_below_4_gib():
    assert probe(bytes(kernel(xen_entry(0xFFFFFFFF)))) == 0xFFFFFFFF


@pytest.mark.parametrize("image", [
    b"", b"MZ" + bytes(100), b"\x7fELF", bytes(kernel())[:50],            # not ELF, or headers cut off
    bytes(elf([Seg(KERNEL, CODE)], entry=KERNEL)),                           # no PT_NOTE
    bytes(kernel(BUILD_ID + LINUX)),                                         # notes, none of Xen's
    bytes(kernel(note(b"GNU\0", 18, ENTRY.to_bytes(8, "little")))),          # type 18, not Xen's name
    bytes(kernel(note(b"Xen\0", 1, ENTRY.to_bytes(8, "little")))),           # Xen's name, other type
])
def test_no_pvh_entry(image):
    assert probe(image) is None


def test_the_first_of_several_pt_note_segments_can_hold_it():
    image = elf([Seg(0, BUILD_ID, type=PT_NOTE), Seg(0, xen_entry(), type=PT_NOTE), Seg(KERNEL, CODE)], KERNEL)
    assert probe(bytes(image)) == ENTRY


def test_a_segment_aligned_to_8_pads_its_notes_to_8():
    notes = note(b"Linux\0", 6, b"6.8\0\0", align=8) + note(b"Xen\0", 18, ENTRY.to_bytes(8, "little"), align=8)
    image = kernel(notes)
    struct.pack_into("<Q", image, phdr_offset(64, 0) + 48, 8)               # p_align
    assert probe(bytes(image)) == ENTRY
    struct.pack_into("<Q", image, phdr_offset(64, 0) + 48, 4)               # read with 4, it is garbage
    try:
        found = probe(bytes(image))
    except LoaderError:
        found = None
    assert found != ENTRY


def refused(image) -> str:
    with pytest.raises(LoaderError) as err:
        probe(bytes(image))
    return str(err.value)


def test_a_note_segment_beyond_the_file():
    image = kernel()
    struct.pack_into("<Q", image, phdr_offset(64, 0) + 32, 0x10000)         # p_filesz
    assert refused(image) == (f"truncated ELF64: segment 0 (PT_NOTE) data (offset 0x{NOTE_OFFSET[64]:x}, "
                              f"0x10000 bytes) extends beyond the end of the file ({len(image)} bytes)")


def test_a_misaligned_note_segment():
    image = kernel()
    struct.pack_into("<Q", image, phdr_offset(64, 0) + 8, NOTE_OFFSET[64] + 2)   # p_offset
    assert refused(image) == (f"malformed ELF64: segment 0 (PT_NOTE) starts at offset 0x{NOTE_OFFSET[64] + 2:x}, "
                              "which is not 4-byte aligned as notes must be")


def test_a_huge_namesz():
    image = kernel(BUILD_ID + xen_entry())
    xen = NOTE_OFFSET[64] + len(BUILD_ID)
    struct.pack_into("<I", image, xen, 0xFFFFFFFF)
    end = NOTE_OFFSET[64] + len(BUILD_ID) + len(xen_entry())
    assert refused(image) == (f"malformed ELF64: the note at offset 0x{xen:x} in segment 0 (PT_NOTE) has a "
                              f"4294967295-byte name and a 8-byte descriptor, which run past the segment's end "
                              f"at offset 0x{end:x}")


def test_a_huge_descsz():
    image = kernel(xen_entry())
    struct.pack_into("<I", image, NOTE_OFFSET[64] + 4, 0x7FFFFFF0)
    assert "has a 4-byte name and a 2147483632-byte descriptor, which run past the segment's end" in refused(image)


def test_a_note_cut_off_in_its_header():
    image = kernel(BUILD_ID + xen_entry()[:5])
    cut = NOTE_OFFSET[64] + len(BUILD_ID)
    assert refused(image) == (f"malformed ELF64: the note at offset 0x{cut:x} in segment 0 (PT_NOTE) is cut off: "
                              "5 bytes are left of its 12-byte header")


def test_a_note_cut_off_in_its_descriptor():
    image = kernel(BUILD_ID + xen_entry()[:-4])
    assert "has a 4-byte name and a 8-byte descriptor, which run past the segment's end" in refused(image)


def test_a_2_byte_entry():
    image = kernel(LINUX + note(b"Xen\0", 18, b"\x40\x00"))
    at = NOTE_OFFSET[64] + len(LINUX)
    assert refused(image) == (f"malformed ELF64: the Xen PHYS32_ENTRY note at offset 0x{at:x} has a 2-byte "
                              "descriptor; the PVH entry point is a 4- or 8-byte address")


def test_an_entry_above_4_gib():
    image = kernel(xen_entry(0x100000000))
    assert refused(image) == (f"the PVH entry point 0x100000000 (the Xen PHYS32_ENTRY note at offset "
                              f"0x{NOTE_OFFSET[64]:x}) lies above 4 GiB: PVH enters the kernel in 32-bit mode, "
                              "below 0x100000000")


def test_a_flood_of_notes_is_refused_not_walked_for_ever():
    empty = struct.pack("<III", 0, 0, 0)
    image = kernel(empty * (MAX_NOTES + 1) + xen_entry())
    assert refused(image) == (f"malformed ELF64: its PT_NOTE segments hold more than {MAX_NOTES} notes; kvmrun "
                              "reads no more (kernels carry a few dozen)")


def test_the_note_bound_counts_across_segments():
    empty = struct.pack("<III", 0, 0, 0) * (MAX_NOTES // 2 + 1)
    image = elf([Seg(0, empty, type=PT_NOTE), Seg(0, empty, type=PT_NOTE), Seg(KERNEL, CODE)], KERNEL)
    assert "more than 4096 notes" in refused(image)
    assert probe(bytes(kernel(struct.pack("<III", 0, 0, 0) * (MAX_NOTES - 1) + xen_entry()))) == ENTRY


NOTES = st.lists(st.tuples(st.binary(max_size=9), st.integers(0, 40), st.binary(max_size=17)), max_size=6)


@given(NOTES, NOTES, st.integers(0, 0xFFFFFFFF), st.sampled_from([4, 8]), st.sampled_from([32, 64]))
def test_the_entry_is_found_among_any_other_notes(before, after, entry, size, bits):
    others = [(name, note_type, desc) for name, note_type, desc in before + after
              if not (note_type == 18 and name.rstrip(b"\0") == b"Xen")]
    split = len([n for n in before if n in others])
    stream = b"".join(note(*n) for n in others[:split]) + xen_entry(entry, size) + \
        b"".join(note(*n) for n in others[split:])
    assert probe(bytes(kernel(stream, bits=bits))) == entry


@settings(max_examples=300)
@given(st.binary(min_size=1, max_size=64), st.integers(0, 200), st.sampled_from([32, 64]))
def test_corrupt_notes_give_an_entry_none_or_a_loader_error(garbage, at, bits):
    image = kernel(BUILD_ID + LINUX + xen_entry(size=8 if bits == 64 else 4), bits=bits)
    start = NOTE_OFFSET[bits] + at % (len(image) - NOTE_OFFSET[bits])
    image[start:start + len(garbage)] = garbage[:len(image) - start]
    try:
        found = probe(bytes(image))
    except LoaderError:
        return
    assert found is None or 0 <= found < 1 << 32


# --- the boot setup ----------------------------------------------------------------------------------

RAM = RamLayout(128 * MiB)


def read(setup: BootSetup, addr: int, size: int) -> bytes:
    """Guest memory as the setup leaves it (what its blobs write), `size` bytes from `addr`."""
    for blob in setup.blobs:
        if blob.addr <= addr and addr + size <= blob.end:
            data = bytes(blob.data) + bytes(blob.size - len(blob.data))
            return data[addr - blob.addr:addr - blob.addr + size]
    raise AssertionError(f"nothing written at 0x{addr:x} (+{size})")


def c_string(setup: BootSetup, addr: int) -> bytes:
    blob = next(blob for blob in setup.blobs if blob.addr <= addr < blob.end)
    data = bytes(blob.data)[addr - blob.addr:]
    assert b"\0" in data
    return data[:data.index(b"\0")]


def plan(cmdline: str = "console=ttyS0", modules: Sequence[Module] = (), image=None, ram=RAM,
         cpus: int = 2) -> BootSetup:
    image = bytes(kernel() if image is None else image)
    return pvh_protocol.plan(ENTRY, image, "vmlinux", ram, cpus, cmdline, modules)


MODULES = (Module("initrd.img", b"I" * 0x1800, "initrd.img"), Module("b.bin", b"B" * 3, "b.bin x=1 y"))


def test_struct_sizes_as_start_info_h_draws_them():
    assert (pvh_protocol.START_INFO.size, pvh_protocol.MODLIST_ENTRY.size, pvh_protocol.MEMMAP_ENTRY.size) == \
        (56, 32, 24)


def test_the_setup_byte_for_byte():
    setup = plan(modules=MODULES)
    # The kernel at 0x100000-0x101234; the modules from the next page; the boot information after them.
    named = {blob.name: (blob.addr, blob.size) for blob in setup.blobs}
    assert named["segment 1 (PT_LOAD)"] == (KERNEL, 0x1234)
    assert named["module 0 (initrd.img)"] == (0x102000, 0x1800)
    assert named["module 1 (b.bin)"] == (0x104000, 3)
    info = next(blob for blob in setup.blobs if blob.name == "PVH start info")
    assert info.addr == 0x105000 and info.structure
    start = setup.vcpus[0].regs["rbx"]
    assert start == 0x105000

    data = bytes(info.data)
    expected = bytearray(56)
    struct.pack_into("<I", expected, 0, 0x336EC578)      # magic
    struct.pack_into("<I", expected, 4, 1)               # version
    struct.pack_into("<I", expected, 8, 0)               # flags
    struct.pack_into("<I", expected, 12, 2)              # nr_modules
    struct.pack_into("<Q", expected, 16, 0x105060)       # modlist_paddr: after the strings, 8-aligned
    struct.pack_into("<Q", expected, 24, 0x105038)       # cmdline_paddr: right after the 56 bytes
    struct.pack_into("<Q", expected, 32, 0)              # rsdp_paddr: no ACPI
    struct.pack_into("<Q", expected, 40, 0x1050A0)       # memmap_paddr: right after the module list
    struct.pack_into("<I", expected, 48, 5)              # memmap_entries
    struct.pack_into("<I", expected, 52, 0)              # reserved
    assert data[:56] == expected
    strings = b"console=ttyS0\0" + b"initrd.img\0" + b"b.bin x=1 y\0"
    assert data[0x38:0x38 + len(strings)] == strings     # 0x38 + 37 = 0x5D, padded to 0x60
    assert data[0x5D:0x60] == bytes(3)
    modlist = struct.pack("<QQQQ", 0x102000, 0x1800, 0x105046, 0) + struct.pack("<QQQQ", 0x104000, 3, 0x105051, 0)
    assert data[0x60:0xA0] == modlist
    memmap = b"".join(struct.pack("<QQII", *fields, 0) for fields in [
        (0, 0x9FC00, E820_RAM), (0x9FC00, 0x400, E820_RESERVED), (0xF0000, 0x10000, E820_RESERVED),
        (0x100000, 127 * MiB, E820_RAM), (0xFEC00000, 0x1400000, E820_RESERVED)])
    assert data[0xA0:] == memmap
    assert info.size == 0xA0 + 5 * 24


def test_a_pvh_kernel_reads_back_what_it_was_given():
    setup = plan(modules=MODULES)
    start = setup.vcpus[0].regs["rbx"]
    magic, version, flags, nr_modules, modlist, cmdline, rsdp, memmap, entries, reserved = \
        struct.unpack("<IIIIQQQQII", read(setup, start, 56))
    assert (magic, version, flags, rsdp, reserved) == (0x336EC578, 1, 0, 0, 0)
    assert c_string(setup, cmdline) == b"console=ttyS0"
    for index, module in enumerate(MODULES):
        paddr, size, string, zero = struct.unpack("<QQQQ", read(setup, modlist + 32 * index, 32))
        assert read(setup, paddr, size) == module.data and zero == 0
        assert c_string(setup, string) == module.cmdline.encode()
    assert nr_modules == 2
    ranges = [struct.unpack("<QQII", read(setup, memmap + 24 * i, 24))[:3] for i in range(entries)]
    assert ranges == [tuple(entry) for entry in memory_map(RAM)]


def test_the_cmdline_is_the_users_only_not_the_kernel_name():
    setup = plan(cmdline="")
    start = setup.vcpus[0].regs["rbx"]
    cmdline = struct.unpack_from("<Q", read(setup, start, 56), 24)[0]
    assert cmdline != 0 and read(setup, cmdline, 1) == b"\0"


def test_without_modules_the_list_is_absent():
    setup = plan()
    info = next(blob for blob in setup.blobs if blob.name == "PVH start info")
    assert info.addr == 0x102000                          # the page after the kernel
    nr_modules, modlist = struct.unpack_from("<IQ", bytes(info.data), 12)
    assert (nr_modules, modlist) == (0, 0)


def test_vcpu_0_enters_at_the_note_s_entry_in_protected_mode_with_ebx_only():
    setup = plan(cpus=3)
    bsp, *aps = setup.vcpus
    assert (bsp.mode, bsp.entry, bsp.cr3, bsp.runnable) == (Mode.PROTECTED, ENTRY, 0, True)
    assert dict(bsp.regs) == {"rbx": 0x102000}
    assert [ap.runnable for ap in aps] == [False, False]
    assert setup.needs.irqchip and setup.needs.ap_start == AP_START_SIPI
    check_setup(setup, RAM)


def test_the_information_is_reserved_so_no_kernel_segment_can_overlap_it():
    setup = plan(modules=MODULES)
    reserved = {res.what: (res.start, res.end) for res in setup.reserved}
    assert reserved["PVH start info"] == (0x105000, 0x105000 + 0xA0 + 5 * 24)
    assert reserved["module 0 (initrd.img)"] == (0x102000, 0x103800)


def test_an_elf32_kernel_boots_the_same_way():
    setup = plan(image=kernel(BUILD_ID + xen_entry(size=4), bits=32))
    check_setup(setup, RAM)
    assert setup.vcpus[0].regs["rbx"] == 0x102000


def test_a_kernel_plan_elf_refuses_is_refused():
    image = kernel()
    struct.pack_into("<H", image, 16, 3)                  # ET_DYN
    with pytest.raises(LoaderError, match=r"is ET_DYN, not an executable"):
        plan(image=image)


def test_boot_information_beyond_ebx_s_reach_is_refused():
    image = kernel(paddr=4 * GiB)
    with pytest.raises(LoaderError) as err:
        plan(image=image, ram=RamLayout(6 * GiB))
    assert str(err.value) == ("the PVH start info would lie at 0x100002000-0x1000020d8, after the kernel, beyond the "
                              "4 GiB EBX can point at: load the kernel lower")


def test_modules_that_push_the_start_info_beyond_4_gib_are_blamed_not_the_kernel():
    import mmap
    big = mmap.mmap(-1, 4 * GiB)                         # never touched: it costs no memory
    with pytest.raises(LoaderError) as err:
        plan(modules=(Module("big.img", memoryview(big), "big.img"),), ram=RamLayout(6 * GiB))
    assert str(err.value) == ("the PVH start info would lie at 0x100102000-0x100102100, after the modules "
                              "(0x102000-0x100102000), beyond the 4 GiB EBX can point at: give fewer or smaller "
                              "modules")


def test_a_kernel_loaded_outside_ram_is_named():
    with pytest.raises(LoaderError) as err:
        plan(image=kernel(paddr=5 * GiB), ram=RamLayout(2 * GiB), modules=MODULES)
    assert str(err.value) == ("the load address 0x140000000 of the kernel's segment 1 (PT_LOAD) lies outside the "
                              "guest's RAM (2048 MiB: 0x0-0x80000000); give more with --memory")


def test_modules_and_the_start_info_of_a_kernel_in_low_memory_go_above_1_mib():
    setup = plan(image=kernel(notes=xen_entry(0x10040), paddr=0x10000), modules=MODULES)
    named = {blob.name: blob.addr for blob in setup.blobs}
    assert (named["module 0 (initrd.img)"], named["module 1 (b.bin)"]) == (0x100000, 0x102000)
    assert named["PVH start info"] == setup.vcpus[0].regs["rbx"] == 0x103000
    check_setup(setup, RAM)


def test_a_module_path_that_is_not_utf_8_reaches_the_kernel_as_its_bytes():
    setup = plan(modules=(Module("m\udcff", b"x", "m\udcff arg"),))
    start = setup.vcpus[0].regs["rbx"]
    modlist = struct.unpack_from("<Q", read(setup, start, 56), 16)[0]
    string = struct.unpack("<QQQQ", read(setup, modlist, 32))[2]
    assert c_string(setup, string) == b"m\xff arg"


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=40).filter(lambda s: "\0" not in s),
       st.lists(st.tuples(st.binary(max_size=5000), st.text(max_size=12).filter(lambda s: "\0" not in s)),
                max_size=4),
       st.sampled_from([2 * MiB, 128 * MiB, 5 * GiB]))
def test_any_command_line_and_modules_read_back_and_pass_the_check(cmdline, specs, size):
    ram = RamLayout(size)
    modules = tuple(Module(f"m{i}", data, f"m{i} {args}") for i, (data, args) in enumerate(specs))
    setup = plan(cmdline, modules, ram=ram)
    check_setup(setup, ram)
    start = setup.vcpus[0].regs["rbx"]
    assert start % 4096 == 0 and start < 1 << 32
    _, _, _, nr_modules, modlist, cmdline_addr, _, memmap, entries, _ = \
        struct.unpack("<IIIIQQQQII", read(setup, start, 56))
    assert c_string(setup, cmdline_addr) == cmdline.encode()
    assert nr_modules == len(modules) and (modlist == 0) == (not modules)
    for index, module in enumerate(modules):
        paddr, msize, string, _ = struct.unpack("<QQQQ", read(setup, modlist + 32 * index, 32))
        assert paddr % 4096 == 0 and bytes(read(setup, paddr, msize)) == module.data
        assert c_string(setup, string) == module.cmdline.encode()
    assert entries == len(memory_map(ram)) and memmap % 8 == 0 and modlist % 8 == 0
