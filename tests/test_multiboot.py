"""Multiboot (version 1): the header (boot/multiboot.py) and the boot it asks for
(boot/protocols/multiboot.py), pure. Images are built here from the Multiboot Specification 0.6.96;
the multiboot information is read back from guest memory at the spec's offsets, byte for byte."""
import struct

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from elfimage import Seg, elf
from kvmrun import layout
from kvmrun.boot import multiboot
from kvmrun.boot.cpu_modes import Mode
from kvmrun.boot.protocols import multiboot as protocol
from kvmrun.boot.protocols.pc import Module
from kvmrun.boot.setup import apply_setup, check_setup
from kvmrun.errors import LoaderError
from kvmrun.memory import GuestMemory, RamLayout
from kvmrun.platform.memory_map import memory_map
from pc_kernel_checks import refused_cleanly_or_inside_ram

MiB, GiB = 1 << 20, 1 << 30
MAGIC = 0x1BADB002
ADDRESS, VIDEO = 1 << 16, 1 << 2
HINT = "; --mode boots the image with kvmrun's own ABI instead"


def header(flags=0, checksum=None, fields=None):
    """A multiboot header (spec 3.1.1): magic, flags, checksum, then the address fields when given
    (header_addr, load_addr, load_end_addr, bss_end_addr, entry_addr) and room for the video fields."""
    if checksum is None:
        checksum = -(MAGIC + flags) % (1 << 32)
    data = struct.pack("<3I", MAGIC, flags, checksum)
    if fields is not None:
        data += struct.pack("<5I", *fields)
    if flags & VIDEO:
        data = data.ljust(32, b"\0") + struct.pack("<4I", 1, 80, 25, 0)
    return data


def flat_kernel(offset=0x40, load_addr=0x100000, size=0x400, load_end=None, bss_end=None, entry=None, flags=0):
    """A raw kernel with the address fields: the file loaded whole at load_addr."""
    fields = (load_addr + offset, load_addr, load_addr + size if load_end is None else load_end,
              load_addr + size + 0x1000 if bss_end is None else bss_end, load_addr + 0x10 if entry is None else entry)
    image = bytearray(b"\xf4" * size)
    image[offset:offset + 48] = header(ADDRESS | flags, fields=fields).ljust(48, b"\0")
    return bytes(image)


def elf_kernel(bits=32, paddr=0x100000, flags=0, bss=0x2000, extra=()):
    """An ELF kernel with the header at the start of its first segment (spec: within 8 KiB)."""
    code = header(flags).ljust(48, b"\0") + b"\xf4" * 16
    return bytes(elf([Seg(paddr, code, len(code) + bss)] + list(extra), paddr + 48, bits=bits))


def planned(image, ram_size=8 * MiB, cmdline="", modules=(), cpus=1, name="kernel.bin"):
    head = multiboot.probe(image)
    ram = RamLayout(ram_size)
    setup = protocol.plan(head, image, name, ram, cpus, cmdline, modules)
    check_setup(setup, ram)
    mem = GuestMemory.for_tests(ram_size)
    apply_setup(setup, mem)
    return setup, mem


def u32(mem, addr):
    return struct.unpack("<I", mem.read(addr, 4))[0]


def c_string(mem, addr):
    data = b""
    while not data.endswith(b"\0"):
        data += mem.read(addr + len(data), 1)
    return data[:-1].decode()


def refused(image):
    with pytest.raises(LoaderError) as err:
        multiboot.probe(image)
    return str(err.value)


# --- Finding the header ----------------------------------------------------------------------------

def test_no_magic_is_no_multiboot_kernel():
    assert multiboot.probe(b"\x90" * 10000) is None
    assert multiboot.probe(bytes(elf([Seg(0x100000, b"\xf4")], 0x100000, bits=32))) is None


def test_the_magic_counts_only_4_byte_aligned_within_the_first_8192_bytes():
    good = header(ADDRESS, fields=(0x100002, 0x100000, 0, 0, 0x100000))
    assert multiboot.probe(b"\0\0" + good) is None                     # offset 2: not aligned
    assert multiboot.probe(bytes(8192) + good) is None                  # offset 8192: past the search
    assert multiboot.probe(bytes(8192 - 32) + good).offset == 8192 - 32


def test_a_header_with_address_fields():
    image = flat_kernel(offset=0x40, load_addr=0x200000, size=0x400, entry=0x200010)
    found = multiboot.probe(image)
    assert found == multiboot.Header(0x40, ADDRESS, multiboot.AddressFields(0x200000, 0, 0x400, 0x1400),
                                     0x200010, ())


def test_the_load_may_start_inside_the_file():
    # header_addr - load_addr = 0x20 while the header lies at 0x60: the load starts at file offset 0x40.
    image = bytes(0x60) + header(ADDRESS, fields=(0x100020, 0x100000, 0x100100, 0, 0x100000)) + bytes(0x200)
    assert multiboot.probe(image).address == multiboot.AddressFields(0x100000, 0x40, 0x100, 0x100)


def test_load_end_0_loads_to_the_end_of_the_file_and_bss_end_0_means_no_bss():
    image = bytes(0x10) + header(ADDRESS, fields=(0x100010, 0x100000, 0, 0, 0x100000)) + bytes(0x1000)
    assert multiboot.probe(image).address == multiboot.AddressFields(0x100000, 0, len(image), len(image))


def test_an_elf_kernel_without_address_fields():
    found = multiboot.probe(elf_kernel())
    assert (found.offset, found.flags, found.address, found.entry) == (84, 0, None, None)


def test_optional_flags_the_loader_does_not_know_are_ignored():
    assert multiboot.probe(elf_kernel(flags=0xFFFE0000 | 3)).flags == 0xFFFE0003


def test_a_broken_magic_before_a_valid_header_is_passed_over():
    image = header(checksum=0) + bytes(4) + header(ADDRESS, fields=(0x100010, 0x100000, 0, 0, 0x100000))
    assert multiboot.probe(image).offset == 16


# --- A broken header: one cause each ---------------------------------------------------------------

def test_bad_checksum():
    image = header(ADDRESS, checksum=0x1234, fields=(0x100000, 0x100000, 0, 0, 0x100000))
    assert refused(image) == ("multiboot header at offset 0x0: checksum 0x00001234 does not make magic + flags "
                              "(0x00010000) + checksum zero; it should be 0xe4514ffe" + HINT)


def test_header_cut_short_by_the_end_of_the_file():
    assert refused(b"\0" * 8 + struct.pack("<2I", MAGIC, 0)) == (
        "multiboot header at offset 0x8: the header (12 bytes) is cut short: the file ends at 0x10" + HINT)


def test_header_beyond_the_first_8192_bytes():
    image = bytes(8188) + header()
    assert refused(image) == ("multiboot header at offset 0x1ffc: the header (12 bytes) does not end within the "
                              "first 8192 bytes of the file, where the spec requires it" + HINT)


def test_address_fields_cut_short():
    assert refused(header(ADDRESS) + bytes(8)) == (
        "multiboot header at offset 0x0: the header (32 bytes) is cut short: the file ends at 0x14" + HINT)


def test_video_fields_cut_short():
    assert refused(header(VIDEO)[:40]) == (
        "multiboot header at offset 0x0: the header (48 bytes) is cut short: the file ends at 0x28" + HINT)


@pytest.mark.parametrize("flags, named", [(1 << 3, "flags bit 3 asks"), ((1 << 15) | (1 << 5), "flags bits 5, 15 ask")])
def test_required_flags_kvmrun_does_not_know(flags, named):
    assert refused(elf_kernel(flags=flags)) == (
        f"multiboot header at offset 0x54: {named} for something kvmrun does not know (a loader must understand "
        "every one of bits 0-15 that is set)" + HINT)


@pytest.mark.parametrize("fields, cause", [
    ((0x100000, 0x100010, 0, 0, 0), "load_addr 0x100010 lies above header_addr 0x100000"),
    ((0x100100, 0x100000, 0, 0, 0), "header_addr 0x100100 - load_addr 0x100000 is more than the header's offset in "
                                    "the file (0x40): the load would start before the file does"),
    ((0x100040, 0x100000, 0xFFFFF, 0, 0), "load_end_addr 0xfffff lies below load_addr 0x100000"),
    ((0x100040, 0x100000, 0x100000, 0, 0), "load_end_addr equals load_addr (0x100000): nothing to load"),
    ((0x100040, 0x100000, 0x100201, 0, 0), "load_end_addr 0x100201 asks for 0x201 bytes from file offset 0x0, but "
                                           "the file ends at 0x200"),
    ((0xFFFFFF40, 0xFFFFFF00, 0, 0, 0), "the file's 0x200 bytes from offset 0x0 loaded at 0xffffff00 would end "
                                        "beyond 4 GiB"),
    ((0x100040, 0x100000, 0x100100, 0x1000ff, 0), "bss_end_addr 0x1000ff lies below the end of the loaded part "
                                                  "(0x100100)"),
])
def test_address_fields_that_do_not_fit(fields, cause):
    image = bytes(0x40) + header(ADDRESS, fields=fields)
    image += bytes(0x200 - len(image))
    assert refused(image) == f"multiboot header at offset 0x40: {cause}" + HINT


def test_without_address_fields_the_kernel_must_be_an_elf():
    assert refused(header() + bytes(64)) == (
        "multiboot header at offset 0x0: flags bit 16 (address fields) is clear, so the kernel must be an ELF image, "
        "and this file is not one" + HINT)


def test_only_the_first_broken_magic_is_reported_when_no_header_holds():
    image = header(checksum=1) + header(checksum=2)
    assert refused(image).startswith("multiboot header at offset 0x0: checksum 0x00000001")


# --- The boot: kernel, modules, information --------------------------------------------------------

def test_registers_entry_and_platform():
    setup, _ = planned(flat_kernel(entry=0x100010), cpus=2)
    bsp, ap = setup.vcpus
    assert (bsp.mode, bsp.entry, bsp.cr3, bsp.runnable) == (Mode.PROTECTED, 0x100010, 0, True)
    assert bsp.regs["rax"] == 0x2BADB002
    assert bsp.regs["rbx"] % layout.PAGE_SIZE == 0
    assert not ap.runnable                              # waits for INIT/SIPI, as on a PC
    assert setup.needs.irqchip and setup.notes == ()


def test_the_kernel_is_loaded_by_its_address_fields_with_its_bss_zeroed():
    image = flat_kernel(offset=0x40, load_addr=0x200000, size=0x400, bss_end=0x202000)
    setup, mem = planned(image)
    assert mem.read(0x200000, 0x400) == image
    assert mem.read(0x200400, 0x1C00) == bytes(0x1C00)
    kernel = [blob for blob in setup.blobs if blob.name == "the kernel"]
    assert [(b.addr, b.size) for b in kernel] == [(0x200000, 0x2000)]
    assert isinstance(kernel[0].data, memoryview)       # a slice of the image, not a copy


def test_the_information_field_by_field():
    image = flat_kernel(load_addr=0x100000, size=0x400, bss_end=0x103000)
    mods = (Module("a.bin", b"A" * 5000, "a.bin x=1"), Module("b.bin", b"BB", "b.bin"))
    setup, mem = planned(image, ram_size=8 * MiB, cmdline="console=ttyS0 quiet", modules=mods, name="k.elf")
    info = setup.vcpus[0].regs["rbx"]
    assert u32(mem, info + 0) == 0b10_0100_1111                  # flags: mem, bootdev, cmdline, mods, mmap, name
    assert u32(mem, info + 4) == 639                              # mem_lower: KiB below the EBDA
    assert u32(mem, info + 8) == 7 * 1024                         # mem_upper: KiB from 1 MiB
    assert mem.read(info + 12, 4) == bytes([0xFF, 0xFF, 0xFF, 0x80])   # boot_device: drive 0x80, no partitions
    assert c_string(mem, u32(mem, info + 16)) == "k.elf console=ttyS0 quiet"
    assert u32(mem, info + 20) == 2                               # mods_count
    assert mem.read(info + 28, 16) == bytes(16)                   # syms: none given
    assert mem.read(info + 52, 12) == bytes(12)                   # drives, config table: none
    assert c_string(mem, u32(mem, info + 64)) == "kvmrun"
    assert mem.read(info + 68, 116 - 68) == bytes(48)             # APM, VBE, framebuffer: none
    # Modules: page-aligned one after the other from the kernel's end (bss included), then the
    # information on the page after them.
    mods_addr = u32(mem, info + 24)
    entries = [struct.unpack("<4I", mem.read(mods_addr + 16 * i, 16)) for i in range(2)]
    assert [(start, end, reserved) for start, end, _, reserved in entries] == [
        (0x103000, 0x103000 + 5000, 0), (0x105000, 0x105002, 0)]
    assert [c_string(mem, string) for _, _, string, _ in entries] == ["a.bin x=1", "b.bin"]
    assert mem.read(0x103000, 5000) == b"A" * 5000 and mem.read(0x105000, 2) == b"BB"
    assert info == 0x106000
    # Memory map: entries of size 20 (not counting the size field), base, length, type.
    length, mmap_addr = u32(mem, info + 44), u32(mem, info + 48)
    raw = mem.read(mmap_addr, length)
    read = [struct.unpack_from("<IQQI", raw, at) for at in range(0, length, 24)]
    assert read == [(20, e.addr, e.size, e.type) for e in memory_map(RamLayout(8 * MiB))]
    assert length == 24 * 5
    # Every structure is reserved, so the kernel cannot overlap one unnoticed.
    reserved = {(r.start, r.end) for r in setup.reserved}
    assert {(0x103000, 0x103000 + 5000), (0x105000, 0x105002)} <= reserved
    assert any(start == info for start, _ in reserved)


def test_the_command_line_is_the_kernel_path_a_space_and_the_arguments_as_qemu_gives_it():
    setup, mem = planned(flat_kernel(), cmdline="", name="build/k.bin")
    info = setup.vcpus[0].regs["rbx"]
    assert c_string(mem, u32(mem, info + 16)) == "build/k.bin "      # QEMU's "%s %s": the space stays


def test_no_modules_is_a_count_of_0():
    setup, mem = planned(flat_kernel(load_addr=0x100000, size=0x400, bss_end=0x101000))
    info = setup.vcpus[0].regs["rbx"]
    assert (u32(mem, info + 20), info) == (0, 0x101000)


def test_an_elf32_kernel_is_loaded_by_its_program_headers():
    image = elf_kernel(bits=32, paddr=0x180000, bss=0x3000)
    setup, mem = planned(image)
    assert setup.vcpus[0].entry == 0x180000 + 48
    assert mem.read(0x180000, 12) == header()
    assert mem.read(0x180000 + 64, 0x3000) == bytes(0x3000)
    assert setup.vcpus[0].regs["rbx"] == 0x184000             # page after the kernel's bss


def test_an_elf64_kernel_is_entered_at_its_32_bit_entry():
    setup, mem = planned(elf_kernel(bits=64, paddr=0x100000))
    assert (setup.vcpus[0].mode, setup.vcpus[0].entry) == (Mode.PROTECTED, 0x100000 + 48)


def test_an_elf64_segment_above_4_gib_is_refused():
    image = elf_kernel(bits=64, extra=[Seg(4 * GiB, b"high")])
    head = multiboot.probe(image)
    with pytest.raises(LoaderError) as err:
        protocol.plan(head, image, "k", RamLayout(6 * GiB), 1, "", ())
    assert str(err.value) == ("segment 1 (PT_LOAD) (0x100000000-0x100000004) ends above 4 GiB, where a multiboot "
                              "loader does not load kernels" + HINT)


def test_a_video_mode_request_gets_a_note_and_the_text_screen_described():
    setup, mem = planned(elf_kernel(flags=VIDEO | 3))
    assert setup.notes == ("the multiboot header asks for a video mode (flags bit 2); kvmrun offers the 80x25 text "
                           "screen only and ignores it (the boot information describes that screen)",)
    info = setup.vcpus[0].regs["rbx"]
    assert u32(mem, info) == 0b1_0010_0100_1111                    # + framebuffer (bit 12)
    addr, pitch, width, height, bpp, kind = struct.unpack("<QIIIBB", mem.read(info + 88, 22))
    assert (addr, pitch, width, height, bpp, kind) == (0xB8000, 160, 80, 25, 16, 2)   # 2: EGA text
    assert mem.read(info + 110, 6) == bytes(6)


def test_modules_and_information_must_end_below_3_gib():
    image = flat_kernel(load_addr=0xBFFFE000, size=0x400, bss_end=0xBFFFF000)
    head = multiboot.probe(image)
    with pytest.raises(LoaderError) as err:
        protocol.plan(head, image, "k", RamLayout(5 * GiB), 1, "", (Module("m", b"m" * 8192, "m"),))
    assert str(err.value) == ("the modules and the multiboot information would end at 0xc0001124, beyond the RAM "
                              "below 3 GiB that multiboot's 32-bit addresses reach")


def test_information_that_the_kernel_alone_pushes_beyond_3_gib_is_not_blamed_on_modules():
    image = flat_kernel(load_addr=0xBFFFE000, size=0x400, bss_end=0xC0000000)
    with pytest.raises(LoaderError) as err:
        protocol.plan(multiboot.probe(image), image, "k", RamLayout(5 * GiB), 1, "", ())
    assert str(err.value) == ("the multiboot information after the kernel would end at 0xc0000112, beyond the RAM "
                              "below 3 GiB that multiboot's 32-bit addresses reach")


@pytest.mark.parametrize("load_addr, ram_size, where", [
    (0xC0000000, 128 * MiB, "128 MiB: 0x0-0x8000000); the PC has no RAM from 3 GiB to 4 GiB (the MMIO hole)"),
    (0xC0000000, 5 * GiB, "5120 MiB: 0x0-0xc0000000, 0x100000000-0x180000000); the PC has no RAM from 3 GiB to "
                          "4 GiB (the MMIO hole)"),
    (0x10000000, 128 * MiB, "128 MiB: 0x0-0x8000000); give more with --memory"),
])
def test_a_kernel_loaded_outside_ram_is_named_not_the_modules(load_addr, ram_size, where):
    image = flat_kernel(load_addr=load_addr, size=0x400, bss_end=load_addr + 0x1000)
    with pytest.raises(LoaderError) as err:
        protocol.plan(multiboot.probe(image), image, "k", RamLayout(ram_size), 1, "", (Module("m", b"m", "m"),))
    assert str(err.value) == f"the kernel's load address 0x{load_addr:x} lies outside the guest's RAM ({where}"


def test_a_kernel_running_past_the_end_of_ram_is_named():
    image = flat_kernel(load_addr=0x7FF000, size=0x400, bss_end=0x801000)
    with pytest.raises(LoaderError) as err:
        protocol.plan(multiboot.probe(image), image, "k", RamLayout(8 * MiB), 1, "", ())
    assert str(err.value) == ("the kernel (0x7ff000-0x801000) runs past the end of the guest's RAM (8 MiB: "
                              "0x0-0x800000); give more with --memory")


def test_modules_are_numbered_from_0_as_the_kernel_counts_them():
    setup, _ = planned(flat_kernel(), modules=(Module("a.bin", b"A", "a.bin"), Module("b.bin", b"B", "b.bin")))
    assert [blob.name for blob in setup.blobs if blob.name.startswith("module")] == ["module 0 (a.bin)",
                                                                                      "module 1 (b.bin)"]


def test_a_command_line_larger_than_ram_is_refused_by_the_setup_check():
    image = flat_kernel()
    setup = protocol.plan(multiboot.probe(image), image, "k", RamLayout(2 * MiB), 1, "x" * MiB, ())
    with pytest.raises(LoaderError) as err:
        check_setup(setup, RamLayout(2 * MiB))
    assert "multiboot information" in str(err.value) and "does not fit in guest RAM" in str(err.value)


def test_a_kernel_overlapping_kvmrun_s_structures_is_refused_by_the_setup_check():
    image = flat_kernel(load_addr=0x9F000, size=0x1000, bss_end=0xA0000)
    setup = protocol.plan(multiboot.probe(image), image, "k", RamLayout(8 * MiB), 1, "", ())
    with pytest.raises(LoaderError) as err:
        check_setup(setup, RamLayout(8 * MiB))
    assert str(err.value) == "the kernel (0x9f000-0xa0000) overlaps kvmrun's MP table at 0x9fc00-0xa0000"


# --- Hostile images ---------------------------------------------------------------------------------

@st.composite
def images(draw):
    """Random bytes, often an ELF, with a header injected somewhere: right or wrong checksum,
    random flags and address fields, or fields made to fit."""
    size = draw(st.integers(64, 9000))
    image = bytearray(draw(st.binary(min_size=size, max_size=size)))
    if draw(st.booleans()):
        base = elf_kernel(bits=draw(st.sampled_from([32, 64])), paddr=draw(st.sampled_from([0x100000, 0x7000000])))
        image[:len(base)] = base
    offset = draw(st.integers(0, min(len(image), 8200) // 4)) * 4
    flags = draw(st.sampled_from([0, ADDRESS, ADDRESS | 3, 4, 1 << 9, ADDRESS | VIDEO]) | st.integers(0, 2**32 - 1))
    if draw(st.booleans()):
        load = draw(st.integers(0, 0x800000)) & ~3
        fields = (load + offset, load, draw(st.sampled_from([0, load + len(image) - 4])), 0, load)
    else:
        fields = tuple(draw(st.integers(0, 2**32 - 1)) for _ in range(5))
    checksum = None if draw(st.booleans()) else draw(st.integers(0, 2**32 - 1))
    data = header(flags, checksum, fields)
    image[offset:offset + len(data)] = data
    return bytes(image[:max(size, 1)])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(images(), st.lists(st.binary(max_size=300), max_size=3), st.text(max_size=50))
def test_any_image_is_refused_cleanly_or_boots_inside_ram(image, module_data, cmdline):
    refused_cleanly_or_inside_ram(multiboot.probe, protocol.plan, image, module_data, cmdline, 0x2BADB002)
