"""Multiboot2 headers: the kernel's header and its tags (Multiboot2 Specification 2.0, 3.1). Pure and
hardened like multiboot.py: fields read inside the header only, one LoaderError with the cause.

The header is 8-byte aligned and lies wholly within the first 32768 bytes of the file:
  0 magic 0xE85250D6   4 architecture (0 i386, 4 MIPS32)   8 header_length   12 checksum
  (magic + architecture + header_length + checksum = 0 mod 2^32), then tags, each 8-byte aligned:
  u16 type, u16 flags (bit 0: optional), u32 size (with these 8 bytes, without padding), ending with
  a tag of type 0 and size 8.
What kvmrun does with each tag:
  1 information request   each requested type kvmrun gives is given; a request that is not optional
                          for a type it cannot give (VBE, ACPI, EFI, ...) refuses the kernel, naming it
  2 address, 3 entry      load the file by the address fields (as multiboot's flags bit 16), enter there
  4 console flags         kvmrun's one console is the EGA text screen: a kernel that requires a console
                          and does not accept EGA text is refused (unless the tag is optional)
  5 framebuffer           no graphics modes: a note, and the framebuffer information describes the text
                          screen, as GRUB's does when it stays in text mode
  6 module alignment      modules are always page-aligned
  7, 8, 9 EFI             boot services and EFI entry points: the spec has loaders use them only under
                          EFI firmware; kvmrun boots as a BIOS loader, so they are ignored with a note
  10 relocatable          loaded at its link address when that is inside the range the tag allows,
                          else at the lowest aligned address there
  other                   refused unless optional
"""
from __future__ import annotations

import struct

from .elf import is_elf
from .multiboot import (AddressFields, BrokenHeader, address_fields, header_error, magic_offsets, u32)

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Dict, FrozenSet, List, NamedTuple, Optional, Set, Tuple
else:
    from ..named_tuple import NamedTuple

MAGIC = 0xE85250D6
BOOTLOADER_MAGIC = 0x36D76289     # EAX at entry
SEARCH_LIMIT = 32768
ALIGN = 8
ARCH_I386, ARCH_MIPS32 = 0, 4
FIXED_SIZE = 16
END_TAG_SIZE = 8
TAG_OPTIONAL = 1 << 0

TAG_END, TAG_INFORMATION_REQUEST, TAG_ADDRESS, TAG_ENTRY_ADDRESS = 0, 1, 2, 3
TAG_CONSOLE_FLAGS, TAG_FRAMEBUFFER, TAG_MODULE_ALIGN, TAG_EFI_BS = 4, 5, 6, 7
TAG_ENTRY_ADDRESS_EFI32, TAG_ENTRY_ADDRESS_EFI64, TAG_RELOCATABLE = 8, 9, 10
CONSOLE_REQUIRED, CONSOLE_EGA_TEXT_SUPPORTED = 1 << 0, 1 << 1

# Header tags and the bytes their fields need (with the 8-byte tag header).
_TAG_SIZES = {TAG_INFORMATION_REQUEST: 8, TAG_ADDRESS: 24, TAG_ENTRY_ADDRESS: 12, TAG_CONSOLE_FLAGS: 12,
              TAG_FRAMEBUFFER: 20, TAG_MODULE_ALIGN: 8, TAG_EFI_BS: 8, TAG_ENTRY_ADDRESS_EFI32: 12,
              TAG_ENTRY_ADDRESS_EFI64: 12, TAG_RELOCATABLE: 24}
_TAG_NAMES = {TAG_INFORMATION_REQUEST: "information request", TAG_ADDRESS: "address", TAG_ENTRY_ADDRESS: "entry "
              "address", TAG_CONSOLE_FLAGS: "console flags", TAG_FRAMEBUFFER: "framebuffer", TAG_MODULE_ALIGN:
              "module alignment", TAG_EFI_BS: "EFI boot services", TAG_ENTRY_ADDRESS_EFI32: "EFI i386 entry address",
              TAG_ENTRY_ADDRESS_EFI64: "EFI amd64 entry address", TAG_RELOCATABLE: "relocatable"}

# Boot information tag types (spec 3.6).
INFO_CMDLINE, INFO_LOADER_NAME, INFO_MODULE, INFO_BASIC_MEMINFO, INFO_BOOTDEV, INFO_MMAP = 1, 2, 3, 4, 5, 6
INFO_FRAMEBUFFER, INFO_LOAD_BASE_ADDR = 8, 21
# Given whenever asked (or always): the end tag 0 is a harmless request too, as GRUB takes it.
GIVEN = frozenset({0, INFO_CMDLINE, INFO_LOADER_NAME, INFO_MODULE, INFO_BASIC_MEMINFO, INFO_BOOTDEV, INFO_MMAP,
                   INFO_FRAMEBUFFER, INFO_LOAD_BASE_ADDR})
# What kvmrun cannot give, and why.
NOT_GIVEN: Dict[int, Tuple[str, str]] = {
    7: ("VBE information", "there is no VBE BIOS"),
    9: ("ELF sections", "kvmrun does not pass the kernel's section headers"),
    10: ("the APM table", "there is no APM BIOS"),
    11: ("the EFI 32-bit system table", "there is no EFI firmware"),
    12: ("the EFI 64-bit system table", "there is no EFI firmware"),
    13: ("SMBIOS tables", "kvmrun builds no SMBIOS tables"),
    14: ("the ACPI 1.0 RSDP", "kvmrun builds no ACPI tables"),
    15: ("the ACPI 2.0 RSDP", "kvmrun builds no ACPI tables"),
    16: ("networking information", "there is no network"),
    17: ("the EFI memory map", "there is no EFI firmware"),
    18: ("EFI boot services not terminated", "there is no EFI firmware"),
    19: ("the EFI 32-bit image handle", "there is no EFI firmware"),
    20: ("the EFI 64-bit image handle", "there is no EFI firmware"),
}

EFI_NOTE = ("the multiboot2 header has EFI tags (types 7-9), which apply under EFI firmware only; kvmrun boots as a "
            "BIOS loader and ignores them")


class Relocatable(NamedTuple):
    """Tag 10: the kernel may be loaded anywhere in [min_addr, max_addr] (its end included), aligned."""
    min_addr: int
    max_addr: int
    align: int


class Header(NamedTuple):
    offset: int                         # in the file
    length: int                         # header_length
    address: Optional[AddressFields]    # tag 2; None: the kernel is an ELF image
    entry: Optional[int]                # tag 3; None: the ELF's entry
    requested: FrozenSet[int]           # information types asked for (optionally or not)
    framebuffer: bool                   # a framebuffer tag (5): the kernel wants to know its screen
    relocatable: Optional[Relocatable]
    notes: Tuple[str, ...]


def probe(image: bytes) -> Optional[Header]:
    """The multiboot2 header: None when no magic is where the spec says to look (8-byte aligned, first
    32768 bytes); LoaderError when one is there but broken. The first header whose checksum holds is
    the kernel's, as GRUB takes it; if none holds, the first magic's fault is reported."""
    first_fault = None
    for offset in magic_offsets(image, MAGIC, SEARCH_LIMIT, ALIGN):
        try:
            architecture, length = _checked_fixed_part(image, offset)
        except BrokenHeader as cause:
            if first_fault is None:
                first_fault = header_error("multiboot2", offset, str(cause))
            continue
        try:
            return _parse(image, offset, architecture, length)
        except BrokenHeader as cause:
            raise header_error("multiboot2", offset, str(cause)) from None
    if first_fault is not None:
        raise first_fault
    return None


def _checked_fixed_part(image: bytes, offset: int) -> Tuple[int, int]:
    if offset + FIXED_SIZE > len(image):
        raise BrokenHeader(f"the header's fixed part ({FIXED_SIZE} bytes) is cut short: the file ends at "
                           f"0x{len(image):x}")
    if offset + FIXED_SIZE > SEARCH_LIMIT:
        raise BrokenHeader(f"the header's fixed part ({FIXED_SIZE} bytes) does not end within the first "
                           f"{SEARCH_LIMIT} bytes of the file, where the spec requires the header")
    architecture, length, checksum = struct.unpack_from("<3I", image, offset + 4)
    if (MAGIC + architecture + length + checksum) % (1 << 32):
        raise BrokenHeader(f"checksum 0x{checksum:08x} does not make magic + architecture + header_length + "
                           f"checksum zero; it should be 0x{-(MAGIC + architecture + length) % (1 << 32):08x}")
    return architecture, length


def _parse(image: bytes, offset: int, architecture: int, length: int) -> Header:
    if architecture == ARCH_MIPS32:
        raise BrokenHeader("architecture 4 is MIPS32; kvmrun boots i386 kernels (architecture 0)")
    if architecture != ARCH_I386:
        raise BrokenHeader(f"architecture {architecture} is none the spec defines (0 is i386, 4 MIPS32)")
    if length < FIXED_SIZE + END_TAG_SIZE:
        raise BrokenHeader(f"header_length {length} is too small for the fixed part ({FIXED_SIZE} bytes) and the "
                           f"end tag ({END_TAG_SIZE})")
    if offset + length > SEARCH_LIMIT:
        raise BrokenHeader(f"header_length {length} takes the header beyond the first {SEARCH_LIMIT} bytes of the "
                           "file, where the spec requires it")
    if offset + length > len(image):
        raise BrokenHeader(f"header_length {length} takes the header beyond the end of the file "
                           f"(0x{len(image):x})")
    tags = _Tags()
    position = FIXED_SIZE
    while True:
        if position + END_TAG_SIZE > length:
            raise BrokenHeader(f"no end tag (type 0) within header_length {length}")
        type_, flags, size = struct.unpack_from("<HHI", image, offset + position)
        if size < 8:
            raise BrokenHeader(f"the tag at +0x{position:x} (type {type_}) has size {size}, less than its own "
                               "8-byte header")
        if position + size > length:
            raise BrokenHeader(f"the tag at +0x{position:x} (type {type_}, size {size}) runs past header_length "
                               f"{length}")
        if type_ == TAG_END:
            break
        needed = _TAG_SIZES.get(type_, 8)
        if size < needed:
            raise BrokenHeader(f"the {_TAG_NAMES[type_]} tag (type {type_}) at +0x{position:x} has size {size}; "
                               f"its fields need {needed}")
        tags.take(image, offset + position, position, type_, flags, size)
        position += -(-size // ALIGN) * ALIGN
    return tags.header(image, offset, length)


class _Tags:
    """What the tags ask for, gathered in order (a later address, entry or relocatable tag replaces an
    earlier one, as in GRUB)."""

    def __init__(self) -> None:
        self.requested: Set[int] = set()
        self.address: Optional[Tuple[int, int, int, int]] = None
        self.entry: Optional[int] = None
        self.framebuffer: Optional[Tuple[int, int, int]] = None
        self.console_flags: Optional[Tuple[int, int]] = None      # (tag flags, console_flags)
        self.relocatable: Optional[Relocatable] = None
        self.efi = False

    def take(self, image: bytes, at: int, position: int, type_: int, flags: int, size: int) -> None:
        fields = at + 8
        if type_ == TAG_INFORMATION_REQUEST:
            requests = struct.unpack_from(f"<{(size - 8) // 4}I", image, fields)
            if not flags & TAG_OPTIONAL:
                _refuse_unavailable(requests, position)
            self.requested.update(requests)
        elif type_ == TAG_ADDRESS:
            self.address = struct.unpack_from("<4I", image, fields)
        elif type_ == TAG_ENTRY_ADDRESS:
            self.entry = u32(image, fields)
        elif type_ == TAG_CONSOLE_FLAGS:
            self.console_flags = (flags, u32(image, fields))
        elif type_ == TAG_FRAMEBUFFER:
            self.framebuffer = struct.unpack_from("<3I", image, fields)
        elif type_ in (TAG_EFI_BS, TAG_ENTRY_ADDRESS_EFI32, TAG_ENTRY_ADDRESS_EFI64):
            self.efi = True
        elif type_ == TAG_RELOCATABLE:
            min_addr, max_addr, align, _preference = struct.unpack_from("<4I", image, fields)
            if min_addr > max_addr:
                raise BrokenHeader(f"the relocatable tag (type 10) at +0x{position:x} has min_addr 0x{min_addr:x} "
                                   f"above max_addr 0x{max_addr:x}")
            self.relocatable = Relocatable(min_addr, max_addr, align)
        elif type_ != TAG_MODULE_ALIGN and not flags & TAG_OPTIONAL:
            raise BrokenHeader(f"the tag at +0x{position:x} has type {type_}, which kvmrun does not know, and its "
                               "flags do not mark it optional (bit 0)")

    def header(self, image: bytes, offset: int, length: int) -> Header:
        notes: List[str] = []
        if self.console_flags is not None:
            tag_flags, console = self.console_flags
            if not console & CONSOLE_EGA_TEXT_SUPPORTED:
                if console & CONSOLE_REQUIRED and not tag_flags & TAG_OPTIONAL:
                    raise BrokenHeader("the console flags tag (type 4) requires a console (bit 0) and does not "
                                       "accept EGA text (bit 1), kvmrun's only screen")
                notes.append("the multiboot2 header's console flags do not accept EGA text, kvmrun's only screen: "
                             "the kernel runs without a console it accepts")
        if self.framebuffer is not None:
            width, height, depth = self.framebuffer
            notes.append(f"the multiboot2 header asks for a {width}x{height}x{depth} framebuffer (tag 5); kvmrun "
                         "offers the 80x25 EGA text screen only (the boot information describes it)")
        if self.efi:
            notes.append(EFI_NOTE)
        address = None
        if self.address is not None:
            if self.entry is None:
                raise BrokenHeader("the address tag (type 2) comes without an entry address tag (type 3): there "
                                   "is nowhere to enter the kernel")
            header_addr, load_addr, load_end_addr, bss_end_addr = self.address
            if load_addr == 0xFFFFFFFF:        # -1: "load the file from its beginning" (spec 3.1.5)
                if header_addr < offset:
                    raise BrokenHeader(f"load_addr is -1 (the file from its start), but header_addr "
                                       f"0x{header_addr:x} is less than the header's offset in the file "
                                       f"(0x{offset:x})")
                load_addr = header_addr - offset
            address = address_fields(offset, header_addr, load_addr, load_end_addr, bss_end_addr, len(image))
        elif not is_elf(image):
            raise BrokenHeader("there is no address tag (type 2), so the kernel must be an ELF image, and this "
                               "file is not one")
        return Header(offset, length, address, self.entry, frozenset(self.requested), self.framebuffer is not None,
                      self.relocatable, tuple(notes))


def _refuse_unavailable(requests: Tuple[int, ...], position: int) -> None:
    for request in requests:
        if request in GIVEN:
            continue
        what, why = NOT_GIVEN.get(request, ("an information type the spec does not define", "kvmrun does not "
                                                                                           "know it"))
        raise BrokenHeader(f"the information request tag (type 1) at +0x{position:x} asks, not optionally, for "
                           f"{what} (type {request}), which kvmrun cannot give: {why}")
