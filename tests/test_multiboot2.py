"""Multiboot2: the header and its tags (boot/multiboot2.py) and the boot they ask for
(boot/protocols/multiboot2.py), pure. Images are built here from the Multiboot2 Specification 2.0;
the boot information is read back from guest memory tag by tag at the spec's offsets."""
import struct

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from elfimage import Seg, elf
from kvmrun.boot import multiboot2
from kvmrun.boot.cpu_modes import Mode
from kvmrun.boot.protocols import multiboot2 as protocol
from kvmrun.boot.protocols.pc import Module
from kvmrun.boot.setup import apply_setup, check_setup
from kvmrun.errors import LoaderError
from kvmrun.memory import GuestMemory, RamLayout
from kvmrun.platform.memory_map import memory_map
from pc_kernel_checks import refused_cleanly_or_inside_ram

MiB, GiB = 1 << 20, 1 << 30
MAGIC = 0xE85250D6
OPTIONAL = 1
HINT = "; --mode boots the image with kvmrun's own ABI instead"


def tag(type_, body=b"", flags=0, size=None):
    """A header tag: u16 type, u16 flags, u32 size, the body, padding to 8 bytes."""
    size = 8 + len(body) if size is None else size
    data = struct.pack("<HHI", type_, flags, size) + body
    return data + bytes(-len(data) % 8)


END = tag(0)


def request(*types, flags=0):
    return tag(1, struct.pack(f"<{len(types)}I", *types), flags)


def address(header_addr, load_addr, load_end=0, bss_end=0):
    return tag(2, struct.pack("<4I", header_addr, load_addr, load_end, bss_end))


def entry(addr):
    return tag(3, struct.pack("<I", addr))


def header(*tags, arch=0, length=None, checksum=None):
    body = b"".join(tags) + END
    length = 16 + len(body) if length is None else length
    if checksum is None:
        checksum = -(MAGIC + arch + length) % (1 << 32)
    return struct.pack("<4I", MAGIC, arch, length, checksum) + body


def flat_kernel(*tags, offset=0x40, load_addr=0x100000, size=0x400, bss=0x1000, entry_addr=None):
    """A raw kernel loaded whole at load_addr by an address tag, with its bss after it."""
    hdr = header(address(load_addr + offset, load_addr, load_addr + size, load_addr + size + bss),
                 entry(load_addr + 0x10 if entry_addr is None else entry_addr), *tags)
    image = bytearray(b"\xf4" * max(size, offset + len(hdr)))
    image[offset:offset + len(hdr)] = hdr
    return bytes(image)


def elf_kernel(*tags, bits=32, paddr=0x100000, bss=0x2000, extra=()):
    """An ELF kernel with the header at the start of its first segment, 8-byte aligned in the file."""
    data_offset = (52 + 32 if bits == 32 else 64 + 56) + (56 if bits == 64 else 32) * len(extra)
    pad = -data_offset % 8
    code = bytes(pad) + header(*tags) + b"\xf4" * 16
    return bytes(elf([Seg(paddr, code, len(code) + bss)] + list(extra), paddr + len(code) - 16, bits=bits))


def elf_entry(image):
    return struct.unpack_from("<I", image, 24)[0]      # e_entry (its low half in an ELF64)


def planned(image, ram_size=8 * MiB, cmdline="", modules=(), name="kernel.elf"):
    head = multiboot2.probe(image)
    ram = RamLayout(ram_size)
    setup = protocol.plan(head, image, name, ram, 1, cmdline, modules)
    check_setup(setup, ram)
    mem = GuestMemory.for_tests(ram_size)
    apply_setup(setup, mem)
    return setup, mem


def info_tags(mem, addr):
    """The boot information at `addr`: (total_size, reserved, [(type, size, body)...]), walking the tags
    as a kernel does and checking their alignment and the end tag."""
    total, reserved = struct.unpack("<II", mem.read(addr, 8))
    tags, at = [], addr + 8
    while True:
        assert at % 8 == 0
        type_, size = struct.unpack("<II", mem.read(at, 8))
        tags.append((type_, size, mem.read(at + 8, size - 8)))
        at += -(-size // 8) * 8
        if type_ == 0:
            break
    assert at - addr == total and tags[-1] == (0, 8, b"")
    return total, reserved, tags[:-1]


def by_type(tags, type_):
    return [body for t, _, body in tags if t == type_]


def refused(image):
    with pytest.raises(LoaderError) as err:
        multiboot2.probe(image)
    return str(err.value)


# --- Finding the header ----------------------------------------------------------------------------

def test_no_magic_is_no_multiboot2_kernel():
    assert multiboot2.probe(b"\x90" * 40000) is None
    assert multiboot2.probe(bytes(elf([Seg(0x100000, b"\xf4")], 0x100000))) is None


def test_the_magic_counts_only_8_byte_aligned_within_the_first_32768_bytes():
    good = header(address(0x100000, 0xFFFFFFFF), entry(0x100000))
    assert multiboot2.probe(bytes(4) + good) is None                     # offset 4: not 8-aligned
    assert multiboot2.probe(bytes(32768) + good) is None
    assert multiboot2.probe(bytes(32768 - len(good)) + good).offset == 32768 - len(good)


def test_a_header_with_address_and_entry_tags():
    image = flat_kernel(offset=0x40, load_addr=0x200000, size=0x400, bss=0x1000, entry_addr=0x200010)
    found = multiboot2.probe(image)
    assert found.offset == 0x40 and found.length == 16 + 24 + 16 + 8
    assert found.address == multiboot2.AddressFields(0x200000, 0, 0x400, 0x1400)
    assert (found.entry, found.requested, found.framebuffer, found.relocatable, found.notes) == (
        0x200010, frozenset(), False, None, ())


def test_load_addr_minus_1_loads_the_file_from_its_start():
    image = bytes(0x20) + header(address(0x100020, 0xFFFFFFFF), entry(0x100000)) + bytes(0x100)
    assert multiboot2.probe(image).address == multiboot2.AddressFields(0x100000, 0, len(image), len(image))


def test_an_elf_kernel_without_an_address_tag():
    found = multiboot2.probe(elf_kernel(request(1, 6, 8)))
    assert (found.offset, found.address, found.entry, found.requested) == (88, None, None, frozenset({1, 6, 8}))


def test_tags_kvmrun_honours_or_may_ignore():
    found = multiboot2.probe(elf_kernel(
        tag(6), tag(4, struct.pack("<I", 3)),               # module alignment; console required, EGA text ok
        request(14, 15, 9, 99, flags=OPTIONAL),              # optional: what cannot be given is left out
        tag(42, b"xyz", flags=OPTIONAL)))                    # unknown but optional
    assert found.notes == () and found.requested == frozenset({14, 15, 9, 99})


def test_a_broken_magic_before_a_valid_header_is_passed_over():
    image = header(checksum=0) + header(address(0x100018, 0x100000), entry(0x100000))
    assert multiboot2.probe(image).offset == 24


# --- A broken header: one cause each ---------------------------------------------------------------

def test_bad_checksum():
    assert refused(header(checksum=5)) == (
        "multiboot2 header at offset 0x0: checksum 0x00000005 does not make magic + architecture + header_length + "
        "checksum zero; it should be 0x17adaf12" + HINT)


def test_fixed_part_cut_short():
    assert refused(bytes(8) + struct.pack("<2I", MAGIC, 0)) == (
        "multiboot2 header at offset 0x8: the header's fixed part (16 bytes) is cut short: the file ends at 0x10"
        + HINT)


def test_fixed_part_beyond_the_first_32768_bytes():
    assert refused(bytes(32760) + header()) == (
        "multiboot2 header at offset 0x7ff8: the header's fixed part (16 bytes) does not end within the first 32768 "
        "bytes of the file, where the spec requires the header" + HINT)


def test_a_mips_kernel():
    assert refused(header(arch=4)) == ("multiboot2 header at offset 0x0: architecture 4 is MIPS32; kvmrun boots "
                                       "i386 kernels (architecture 0)" + HINT)


def test_an_architecture_the_spec_does_not_define():
    assert refused(header(arch=7)) == ("multiboot2 header at offset 0x0: architecture 7 is none the spec defines "
                                       "(0 is i386, 4 MIPS32)" + HINT)


def test_header_length_too_small():
    assert refused(header(length=20)) == (
        "multiboot2 header at offset 0x0: header_length 20 is too small for the fixed part (16 bytes) and the end "
        "tag (8)" + HINT)


def test_header_length_beyond_the_file():
    assert refused(header(length=64)) == (
        "multiboot2 header at offset 0x0: header_length 64 takes the header beyond the end of the file (0x18)"
        + HINT)


def test_header_length_beyond_the_first_32768_bytes():
    image = bytes(32744) + header(length=32) + bytes(100)
    assert refused(image) == (
        "multiboot2 header at offset 0x7fe8: header_length 32 takes the header beyond the first 32768 bytes of the "
        "file, where the spec requires it" + HINT)


def test_a_tag_smaller_than_its_own_header():
    assert refused(header(tag(6, size=4))) == (
        "multiboot2 header at offset 0x0: the tag at +0x10 (type 6) has size 4, less than its own 8-byte header"
        + HINT)


def test_a_tag_past_header_length():
    assert refused(header(tag(6, size=64)) + bytes(64)) == (
        "multiboot2 header at offset 0x0: the tag at +0x10 (type 6, size 64) runs past header_length 32" + HINT)


def test_no_end_tag():
    image = struct.pack("<4I", MAGIC, 0, 32, -(MAGIC + 32) % (1 << 32)) + tag(6) + tag(6)
    assert refused(image) == "multiboot2 header at offset 0x0: no end tag (type 0) within header_length 32" + HINT


def test_a_tag_too_small_for_its_fields():
    assert refused(header(tag(2, bytes(8)))) == (
        "multiboot2 header at offset 0x0: the address tag (type 2) at +0x10 has size 16; its fields need 24" + HINT)


@pytest.mark.parametrize("asked, what", [
    (14, "the ACPI 1.0 RSDP (type 14), which kvmrun cannot give: kvmrun builds no ACPI tables"),
    (15, "the ACPI 2.0 RSDP (type 15), which kvmrun cannot give: kvmrun builds no ACPI tables"),
    (9, "ELF sections (type 9), which kvmrun cannot give: kvmrun does not pass the kernel's section headers"),
    (7, "VBE information (type 7), which kvmrun cannot give: there is no VBE BIOS"),
    (12, "the EFI 64-bit system table (type 12), which kvmrun cannot give: there is no EFI firmware"),
    (99, "an information type the spec does not define (type 99), which kvmrun cannot give: kvmrun does not know it"),
])
def test_a_required_information_request_kvmrun_cannot_meet(asked, what):
    assert refused(elf_kernel(request(1, 6, asked))) == (
        f"multiboot2 header at offset 0x58: the information request tag (type 1) at +0x10 asks, not optionally, for "
        f"{what}" + HINT)


def test_an_unknown_required_tag():
    assert refused(elf_kernel(tag(6), tag(11, bytes(8)))) == (
        "multiboot2 header at offset 0x58: the tag at +0x18 has type 11, which kvmrun does not know, and its flags "
        "do not mark it optional (bit 0)" + HINT)


def test_a_required_console_that_is_not_ega_text():
    assert refused(elf_kernel(tag(4, struct.pack("<I", 1)))) == (
        "multiboot2 header at offset 0x58: the console flags tag (type 4) requires a console (bit 0) and does not "
        "accept EGA text (bit 1), kvmrun's only screen" + HINT)


def test_an_address_tag_without_an_entry_tag():
    assert refused(header(address(0x100000, 0x100000)) + bytes(64)) == (
        "multiboot2 header at offset 0x0: the address tag (type 2) comes without an entry address tag (type 3): "
        "there is nowhere to enter the kernel" + HINT)


def test_without_an_address_tag_the_kernel_must_be_an_elf():
    assert refused(header(entry(0x100000)) + bytes(64)) == (
        "multiboot2 header at offset 0x0: there is no address tag (type 2), so the kernel must be an ELF image, and "
        "this file is not one" + HINT)


def test_address_fields_that_do_not_fit_as_in_multiboot():
    assert refused(header(address(0x100000, 0x100010), entry(0)) + bytes(64)) == (
        "multiboot2 header at offset 0x0: load_addr 0x100010 lies above header_addr 0x100000" + HINT)


def test_load_addr_minus_1_with_the_header_below_its_offset():
    assert refused(bytes(0x40) + header(address(0x10, 0xFFFFFFFF), entry(0))) == (
        "multiboot2 header at offset 0x40: load_addr is -1 (the file from its start), but header_addr 0x10 is less "
        "than the header's offset in the file (0x40)" + HINT)


def test_a_relocatable_range_upside_down():
    assert refused(elf_kernel(tag(10, struct.pack("<4I", 0x200000, 0x100000, 0, 0)))) == (
        "multiboot2 header at offset 0x58: the relocatable tag (type 10) at +0x10 has min_addr 0x200000 above "
        "max_addr 0x100000" + HINT)


# --- The boot: kernel, modules, information --------------------------------------------------------

def test_registers_entry_and_the_kernel_by_its_address_tag():
    image = flat_kernel(offset=0x40, load_addr=0x200000, size=0x400, bss=0x1000, entry_addr=0x200010)
    setup, mem = planned(image)
    bsp = setup.vcpus[0]
    assert (bsp.mode, bsp.entry, bsp.regs["rax"]) == (Mode.PROTECTED, 0x200010, 0x36D76289)
    assert mem.read(0x200000, 0x400) == image and mem.read(0x200400, 0x1000) == bytes(0x1000)
    assert bsp.regs["rbx"] == 0x202000                   # the page after the kernel's bss


def test_the_information_tag_by_tag():
    image = flat_kernel(size=0x400, bss=0x2C00)             # the kernel ends at 0x103000
    mods = (Module("a.bin", b"A" * 5000, "a.bin x=1"), Module("b.bin", b"", "b.bin"))
    setup, mem = planned(image, cmdline="console=ttyS0 quiet", modules=mods, name="build/k.elf")
    total, reserved, tags = info_tags(mem, setup.vcpus[0].regs["rbx"])
    assert reserved == 0
    assert [(t, size) for t, size, _ in tags] == [
        (1, 8 + 20), (2, 8 + 7), (3, 16 + 10), (3, 16 + 6), (4, 16), (5, 20), (6, 16 + 24 * 5)]
    # The command line is the arguments alone, as GRUB 2 passes them (it skips the kernel's path).
    assert by_type(tags, 1) == [b"console=ttyS0 quiet\0"]
    assert by_type(tags, 2) == [b"kvmrun\0"]
    # Modules page-aligned from the kernel's end: mod_start, mod_end (one past), string.
    assert by_type(tags, 3) == [struct.pack("<II", 0x103000, 0x103000 + 5000) + b"a.bin x=1\0",
                                struct.pack("<II", 0x105000, 0x105000) + b"b.bin\0"]
    assert mem.read(0x103000, 5000) == b"A" * 5000
    assert by_type(tags, 4) == [struct.pack("<II", 639, 7 * 1024)]
    assert by_type(tags, 5) == [struct.pack("<3I", 0x80, 0xFFFFFFFF, 0xFFFFFFFF)]
    mmap = by_type(tags, 6)[0]
    assert struct.unpack_from("<II", mmap) == (24, 0)           # entry_size, entry_version
    assert [struct.unpack_from("<QQII", mmap, 8 + 24 * i) for i in range(5)] == [
        (e.addr, e.size, e.type, 0) for e in memory_map(RamLayout(8 * MiB))]
    assert setup.vcpus[0].regs["rbx"] == 0x105000               # after the empty last module, page-aligned
    assert total == 8 + 32 + 16 + 32 + 24 + 16 + 24 + 136 + 8


def test_an_empty_command_line_is_an_empty_string():
    setup, mem = planned(flat_kernel())
    _, _, tags = info_tags(mem, setup.vcpus[0].regs["rbx"])
    assert by_type(tags, 1) == [b"\0"]


def test_framebuffer_information_describes_the_ega_text_screen_when_asked_for():
    setup, mem = planned(elf_kernel(request(8)))
    _, _, tags = info_tags(mem, setup.vcpus[0].regs["rbx"])
    assert [(t, size) for t, size, _ in tags if t == 8] == [(8, 32)]
    addr, pitch, width, height, bpp, kind, reserved = struct.unpack("<QIIIBBH", by_type(tags, 8)[0])
    assert (addr, pitch, width, height, bpp, kind, reserved) == (0xB8000, 160, 80, 25, 16, 2, 0)
    assert setup.notes == ()
    _, mem = planned(elf_kernel())
    assert not by_type(info_tags(mem, setup.vcpus[0].regs["rbx"])[2], 8)


def test_a_framebuffer_tag_gets_a_note_and_the_text_screen_described():
    setup, mem = planned(elf_kernel(tag(5, struct.pack("<3I", 1024, 768, 32), flags=OPTIONAL)))
    assert setup.notes == ("the multiboot2 header asks for a 1024x768x32 framebuffer (tag 5); kvmrun offers the "
                           "80x25 EGA text screen only (the boot information describes it)",)
    assert len(by_type(info_tags(mem, setup.vcpus[0].regs["rbx"])[2], 8)) == 1


def test_console_flags_without_ega_text_that_may_be_ignored_get_a_note():
    setup, _ = planned(elf_kernel(tag(4, struct.pack("<I", 1), flags=OPTIONAL)))
    assert setup.notes == ("the multiboot2 header's console flags do not accept EGA text, kvmrun's only screen: the "
                           "kernel runs without a console it accepts",)


def test_efi_tags_are_ignored_with_a_note():
    image = elf_kernel(tag(7), tag(8, struct.pack("<I", 0x100000)), tag(9, struct.pack("<I", 0x100000)))
    setup, _ = planned(image)
    assert setup.notes == ("the multiboot2 header has EFI tags (types 7-9), which apply under EFI firmware only; "
                           "kvmrun boots as a BIOS loader and ignores them",)
    assert setup.vcpus[0].entry == elf_entry(image) != 0x100000     # the ELF's entry, not the EFI one


def test_the_load_base_address_when_asked_for():
    setup, mem = planned(elf_kernel(request(21), paddr=0x300000))
    assert by_type(info_tags(mem, setup.vcpus[0].regs["rbx"])[2], 21) == [struct.pack("<I", 0x300000)]


def test_an_elf64_kernel_is_entered_at_its_32_bit_entry_or_the_entry_tag():
    setup, _ = planned(elf_kernel(bits=64))
    assert (setup.vcpus[0].mode, setup.vcpus[0].entry) == (Mode.PROTECTED, 0x100000 + 16 + 8)
    setup, _ = planned(elf_kernel(entry(0x100004), bits=64))
    assert setup.vcpus[0].entry == 0x100004


def test_an_elf64_segment_above_4_gib_is_refused():
    image = elf_kernel(bits=64, extra=[Seg(4 * GiB, b"high")])
    with pytest.raises(LoaderError) as err:
        protocol.plan(multiboot2.probe(image), image, "k", RamLayout(6 * GiB), 1, "", ())
    assert str(err.value) == ("segment 1 (PT_LOAD) (0x100000000-0x100000004) ends above 4 GiB, where a multiboot2 "
                              "loader does not load kernels" + HINT)


def relocatable(min_addr, max_addr, align):
    return tag(10, struct.pack("<4I", min_addr, max_addr, align, 0))


def test_a_relocatable_kernel_stays_at_its_link_address_when_the_tag_allows_it():
    image = elf_kernel(relocatable(0x100000, 0x800000, 0x1000), request(21))
    setup, _ = planned(image)
    assert setup.notes == () and setup.vcpus[0].entry == elf_entry(image)


def test_a_relocatable_kernel_moves_into_the_range_it_allows():
    image = elf_kernel(relocatable(0x400000, 0x800000, 0x200000), request(21))
    setup, mem = planned(image)
    assert setup.notes == ("the kernel is relocatable (multiboot2 tag 10) and its link address 0x100000 is not one the "
                           "tag allows; kvmrun loads it at 0x400000",)
    assert setup.vcpus[0].entry == elf_entry(image) + 0x300000
    assert mem.read(0x400000 + 4, 4) == struct.pack("<I", MAGIC)     # after the 4 bytes aligning it
    assert by_type(info_tags(mem, setup.vcpus[0].regs["rbx"])[2], 21) == [struct.pack("<I", 0x400000)]


def test_a_relocatable_range_too_small_for_the_kernel():
    image = elf_kernel(relocatable(0x400000, 0x401000, 0))
    with pytest.raises(LoaderError) as err:
        protocol.plan(multiboot2.probe(image), image, "k", RamLayout(8 * MiB), 1, "", ())
    assert str(err.value) == ("multiboot2 header at offset 0x58: the relocatable tag (type 10) allows "
                              "0x400000-0x401000 aligned to 0x1, which does not hold the kernel's 0x2044 bytes above "
                              "1 MiB" + HINT)


def test_modules_and_information_must_end_below_3_gib():
    image = flat_kernel(load_addr=0xBFFFE000, size=0x400, bss=0xC00)
    with pytest.raises(LoaderError) as err:
        protocol.plan(multiboot2.probe(image), image, "k", RamLayout(5 * GiB), 1, "", (Module("m", b"m" * 8192, "m"),))
    assert str(err.value).startswith("the modules and the multiboot2 information would end at 0xc000")


def test_a_kernel_loaded_outside_ram_is_named_not_the_modules():
    image = flat_kernel(load_addr=0xC0000000, size=0x400, bss=0xC00)
    with pytest.raises(LoaderError) as err:
        protocol.plan(multiboot2.probe(image), image, "k", RamLayout(128 * MiB), 1, "", (Module("m", b"m", "m"),))
    assert str(err.value) == ("the kernel's load address 0xc0000000 lies outside the guest's RAM (128 MiB: "
                              "0x0-0x8000000); the PC has no RAM from 3 GiB to 4 GiB (the MMIO hole)")


def test_an_elf_kernel_segment_outside_ram_is_named():
    image = elf_kernel(paddr=0x10000000)
    with pytest.raises(LoaderError) as err:
        protocol.plan(multiboot2.probe(image), image, "k", RamLayout(8 * MiB), 1, "", ())
    assert str(err.value) == ("the load address 0x10000000 of the kernel's segment 0 (PT_LOAD) lies outside the "
                              "guest's RAM (8 MiB: 0x0-0x800000); give more with --memory")


def test_a_command_line_larger_than_ram_is_refused_by_the_setup_check():
    image = flat_kernel()
    setup = protocol.plan(multiboot2.probe(image), image, "k", RamLayout(2 * MiB), 1, "x" * MiB, ())
    with pytest.raises(LoaderError) as err:
        check_setup(setup, RamLayout(2 * MiB))
    assert "multiboot2 information" in str(err.value) and "does not fit in guest RAM" in str(err.value)


# --- Hostile images ---------------------------------------------------------------------------------

_TAG_TYPES = st.sampled_from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 21, 0xFFFF])


@st.composite
def random_tag(draw):
    type_ = draw(_TAG_TYPES)
    if type_ == 1:
        body = struct.pack("<3I", *(draw(st.sampled_from([0, 1, 3, 6, 8, 14, 21, 40])) for _ in range(3)))
    elif type_ == 2:
        load = draw(st.integers(0, 0x800000)) & ~7
        body = struct.pack("<4I", draw(st.sampled_from([load, load + 64, 0xFFFFFFFF])),
                           draw(st.sampled_from([load, 0xFFFFFFFF])), draw(st.sampled_from([0, load + 0x100])), 0)
    elif type_ == 10:
        body = struct.pack("<4I", draw(st.integers(0, 0x1000000)), draw(st.integers(0, 0x2000000)),
                           draw(st.sampled_from([0, 1, 0x1000, 0x200000, 0x80000000])), 0)
    else:
        body = draw(st.binary(max_size=24))
    size = draw(st.sampled_from([None, None, 0, 4, 8, 12, 30, 400]))
    return tag(type_, body, draw(st.integers(0, 3)), size)


@st.composite
def images(draw):
    """Random bytes, often an ELF, with a header of random tags injected: right or wrong checksum and
    length, sometimes an entry tag so address tags can load."""
    size = draw(st.integers(64, 33000))
    image = bytearray(draw(st.binary(min_size=64, max_size=64)) * (size // 64))
    if draw(st.booleans()):
        base = elf_kernel(bits=draw(st.sampled_from([32, 64])))
        image[:len(base)] = base
    tags = draw(st.lists(random_tag(), max_size=6))
    if draw(st.booleans()):
        tags.append(entry(draw(st.integers(0, 0x800000))))
    length = draw(st.sampled_from([None, None, 8, 24, 4096, 2**32 - 1]))
    data = header(*tags, arch=draw(st.sampled_from([0, 0, 4, 9])), length=length,
                  checksum=draw(st.sampled_from([None, None, 0])))
    offset = draw(st.integers(0, len(image) // 8)) * 8
    image[offset:offset + len(data)] = data
    return bytes(image)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(images(), st.lists(st.binary(max_size=300), max_size=3), st.text(max_size=50))
def test_any_image_is_refused_cleanly_or_boots_inside_ram(image, module_data, cmdline):
    refused_cleanly_or_inside_ram(multiboot2.probe, protocol.plan, image, module_data, cmdline, 0x36D76289)
