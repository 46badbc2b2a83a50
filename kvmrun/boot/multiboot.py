"""Multiboot (version 1) headers: where a kernel says how it wants to be loaded (Multiboot
Specification 0.6.96, 3.1). Pure and hardened: every field is read inside the image, a header that
is there but broken is one LoaderError with its cause, and nothing is copied out of the image.

The header is a 4-byte aligned block within the first 8192 bytes of the file:
  0 magic 0x1BADB002   4 flags   8 checksum (magic + flags + checksum = 0 mod 2^32)
  flags bit 16 (the "a.out kludge"): 12 header_addr, 16 load_addr, 20 load_end_addr, 24 bss_end_addr,
  28 entry_addr; flags bit 2: 32 mode_type, 36 width, 40 height, 44 depth.
Without bit 16 the kernel is an ELF image, loaded by its program headers.
boot/multiboot2.py shares the address fields' rules (its address tag means the same).
"""
from __future__ import annotations

import struct

from ..errors import LoaderError
from .elf import is_elf

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Iterator, NamedTuple, Optional, Tuple
else:
    from ..named_tuple import NamedTuple

MAGIC = 0x1BADB002
BOOTLOADER_MAGIC = 0x2BADB002      # EAX at entry
SEARCH_LIMIT = 8192
ALIGN = 4

FLAG_PAGE_ALIGN = 1 << 0           # modules page-aligned: kvmrun always does
FLAG_MEMORY_INFO = 1 << 1          # mem_lower/mem_upper and the memory map: always given
FLAG_VIDEO_MODE = 1 << 2           # a graphics mode: kvmrun has only the 80x25 text screen
FLAG_ADDRESS = 1 << 16             # load by the address fields, not as an ELF
REQUIRED_FLAGS = 0xFFFF            # bits 0-15: a loader that does not understand one must refuse the kernel
KNOWN_REQUIRED_FLAGS = FLAG_PAGE_ALIGN | FLAG_MEMORY_INFO | FLAG_VIDEO_MODE

HEADER_SIZE = 12
ADDRESS_HEADER_SIZE = 32           # with the address fields
VIDEO_HEADER_SIZE = 48             # with the video mode fields (they follow the address fields)

ADDRESS_LIMIT = 1 << 32            # multiboot is a 32-bit protocol: everything it loads lies below 4 GiB
MODE_HINT = "--mode boots the image with kvmrun's own ABI instead"
VIDEO_MODE_NOTE = ("the multiboot header asks for a video mode (flags bit 2); kvmrun offers the 80x25 text screen "
                   "only and ignores it (the boot information describes that screen)")


class BrokenHeader(Exception):
    """A header's cause of refusal, without the header's place: probe adds that."""


def header_error(protocol: str, offset: int, cause: str) -> LoaderError:
    """The one wording of a broken header: where it is, why, and the way around it."""
    return LoaderError(f"{protocol} header at offset 0x{offset:x}: {cause}; {MODE_HINT}")


def magic_offsets(image: bytes, magic: int, limit: int, align: int) -> Iterator[int]:
    """Every `align`-ed offset below `limit` where `magic` (little-endian u32) starts, in order."""
    needle = struct.pack("<I", magic)
    end = min(len(image), limit)
    position = image.find(needle, 0, end)
    while position >= 0:
        if position % align == 0:
            yield position
        position = image.find(needle, position + 1, end)


def u32(image: bytes, offset: int) -> int:
    """The little-endian u32 at `offset`; callers have checked that it lies inside the image."""
    return struct.unpack_from("<I", image, offset)[0]


class AddressFields(NamedTuple):
    """Where the address fields put the kernel: file bytes [file_offset, file_offset + load_size)
    at load_addr, then zeroes up to load_addr + mem_size (the bss)."""
    load_addr: int
    file_offset: int
    load_size: int
    mem_size: int


def address_fields(header_offset: int, header_addr: int, load_addr: int, load_end_addr: int,
                   bss_end_addr: int, file_size: int) -> AddressFields:
    """The load the fields describe (spec 3.1.3; multiboot2 3.1.5 means the same), or BrokenHeader
    naming the field that does not fit: load_addr <= header_addr, the load starting inside the file,
    load_end_addr 0 (to the end of the file) or at least load_addr and inside the file,
    bss_end_addr 0 (no bss) or at least the loaded end, everything below 4 GiB."""
    if load_addr > header_addr:
        raise BrokenHeader(f"load_addr 0x{load_addr:x} lies above header_addr 0x{header_addr:x}")
    file_offset = header_offset - (header_addr - load_addr)
    if file_offset < 0:
        raise BrokenHeader(f"header_addr 0x{header_addr:x} - load_addr 0x{load_addr:x} is more than the header's "
                           f"offset in the file (0x{header_offset:x}): the load would start before the file does")
    if load_end_addr == 0:
        load_size = file_size - file_offset
        if load_addr + load_size > ADDRESS_LIMIT:
            raise BrokenHeader(f"the file's 0x{load_size:x} bytes from offset 0x{file_offset:x} loaded at "
                               f"0x{load_addr:x} would end beyond 4 GiB")
    else:
        if load_end_addr < load_addr:
            raise BrokenHeader(f"load_end_addr 0x{load_end_addr:x} lies below load_addr 0x{load_addr:x}")
        load_size = load_end_addr - load_addr
        if load_size == 0:
            raise BrokenHeader(f"load_end_addr equals load_addr (0x{load_addr:x}): nothing to load")
        if file_offset + load_size > file_size:
            raise BrokenHeader(f"load_end_addr 0x{load_end_addr:x} asks for 0x{load_size:x} bytes from file offset "
                               f"0x{file_offset:x}, but the file ends at 0x{file_size:x}")
    mem_size = load_size
    if bss_end_addr:
        if bss_end_addr < load_addr + load_size:
            raise BrokenHeader(f"bss_end_addr 0x{bss_end_addr:x} lies below the end of the loaded part "
                               f"(0x{load_addr + load_size:x})")
        mem_size = bss_end_addr - load_addr
    return AddressFields(load_addr, file_offset, load_size, mem_size)


class Header(NamedTuple):
    offset: int                         # in the file
    flags: int
    address: Optional[AddressFields]    # flags bit 16; None: the kernel is an ELF image
    entry: Optional[int]                # entry_addr with the address fields; an ELF gives its own
    notes: Tuple[str, ...]


def probe(image: bytes) -> Optional[Header]:
    """The multiboot header: None when no magic is where the spec says to look (4-byte aligned, first
    8192 bytes); LoaderError when one is there but broken. The first header whose checksum holds is
    the kernel's, as QEMU and GRUB take it; if none holds, the first magic's fault is reported."""
    first_fault: Optional[LoaderError] = None
    for offset in magic_offsets(image, MAGIC, SEARCH_LIMIT, ALIGN):
        try:
            flags = _checked_flags(image, offset)
        except BrokenHeader as cause:
            if first_fault is None:
                first_fault = header_error("multiboot", offset, str(cause))
            continue
        try:
            return _parse(image, offset, flags)
        except BrokenHeader as cause:
            raise header_error("multiboot", offset, str(cause)) from None
    if first_fault is not None:
        raise first_fault
    return None


def _checked_flags(image: bytes, offset: int) -> int:
    _refuse_truncated(image, offset, HEADER_SIZE)
    flags, checksum = u32(image, offset + 4), u32(image, offset + 8)
    if (MAGIC + flags + checksum) % (1 << 32):
        raise BrokenHeader(f"checksum 0x{checksum:08x} does not make magic + flags (0x{flags:08x}) + checksum "
                           f"zero; it should be 0x{-(MAGIC + flags) % (1 << 32):08x}")
    return flags


def _refuse_truncated(image: bytes, offset: int, size: int) -> None:
    if offset + size > SEARCH_LIMIT:
        raise BrokenHeader(f"the header ({size} bytes) does not end within the first {SEARCH_LIMIT} bytes of the "
                           "file, where the spec requires it")
    if offset + size > len(image):
        raise BrokenHeader(f"the header ({size} bytes) is cut short: the file ends at 0x{len(image):x}")


def _parse(image: bytes, offset: int, flags: int) -> Header:
    unknown = flags & REQUIRED_FLAGS & ~KNOWN_REQUIRED_FLAGS
    if unknown:
        bits = [bit for bit in range(16) if unknown >> bit & 1]
        which = "bit {} asks" if len(bits) == 1 else "bits {} ask"
        raise BrokenHeader(f"flags {which.format(', '.join(map(str, bits)))} for something kvmrun does not know "
                           "(a loader must understand every one of bits 0-15 that is set)")
    notes: Tuple[str, ...] = ()
    size = HEADER_SIZE
    if flags & FLAG_ADDRESS:
        size = ADDRESS_HEADER_SIZE
    if flags & FLAG_VIDEO_MODE:
        size = VIDEO_HEADER_SIZE        # read by nobody here, but part of the header the spec describes
        notes = (VIDEO_MODE_NOTE,)
    _refuse_truncated(image, offset, size)
    if not flags & FLAG_ADDRESS:
        if not is_elf(image):
            raise BrokenHeader("flags bit 16 (address fields) is clear, so the kernel must be an ELF image, and "
                               "this file is not one")
        return Header(offset, flags, None, None, notes)
    header_addr, load_addr, load_end_addr, bss_end_addr, entry = struct.unpack_from("<5I", image, offset + 12)
    fields = address_fields(offset, header_addr, load_addr, load_end_addr, bss_end_addr, len(image))
    return Header(offset, flags, fields, entry, notes)
