"""The PVH entry point of an ELF kernel: its XEN_ELFNOTE_PHYS32_ENTRY note (Xen docs/misc/pvh.pandoc),
which Linux, FreeBSD, NetBSD and unikernels carry to be entered in 32-bit protected mode with EBX =
an hvm_start_info (boot/protocols/pvh.py).

The notes are found in the PT_NOTE segments; each note is a 12-byte header (namesz, descsz, type:
32-bit in ELF32 and ELF64 alike), the name and the descriptor, each padded to 4 bytes. A segment
whose p_align is 8 is walked with 8-byte padding instead, as binutils' readelf and glibc do: linkers
give 8-byte aligned notes (ELF64's gABI rule) a segment of their own. Every size is checked against
the segment before anything is read, so a corrupt note gives one precise LoaderError. An image
whose ELF header or program headers cannot be read is not probed further: plan_elf says what is
wrong with it.
"""
from __future__ import annotations

import struct

from ..errors import LoaderError
from .elf import ELF_MAGIC, ELFCLASS32, ELFCLASS64, ELFDATA2LSB, MAX_PROGRAM_HEADER_BYTES, PN_XNUM

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Iterator, List, NamedTuple, Optional, Tuple
else:
    from ..named_tuple import NamedTuple

PT_NOTE = 4
XEN_ELFNOTE_PHYS32_ENTRY = 18
XEN_NOTE_NAME = b"Xen"
NOTE_HEADER = struct.Struct("<III")       # namesz, descsz, type
# Kernels carry a few dozen notes; a bound on how many are read keeps a hostile image (a thousand
# PT_NOTE segments each spanning a file of tiny notes) from costing more than a moment.
MAX_NOTES = 4096
ENTRY_LIMIT = 1 << 32                     # entered in 32-bit mode: EIP cannot reach further

# class -> (name, program header offset/size/count in the ELF header, phdr struct, phdr size)
_LAYOUTS = {
    ELFCLASS32: ("ELF32", struct.Struct("<28xIIxxxxxxHH"), struct.Struct("<II8xI8xI"), 32),
    ELFCLASS64: ("ELF64", struct.Struct("<32xQQxxxxxxHH"), struct.Struct("<I4xQ16xQ8xQ"), 56),
}


class NoteSegment(NamedTuple):
    number: int                           # its index in the program header table, as errors name it
    offset: int
    size: int
    align: int


def probe(image: bytes) -> Optional[int]:
    """The PVH entry point (guest-physical, below 4 GiB) the image's Xen PHYS32_ENTRY note gives;
    None for an image that is not ELF or carries no such note. LoaderError for a note segment that
    lies outside the file or a note that does not fit in its segment, and for an entry note whose
    descriptor is not a 4- or 8-byte address below 4 GiB."""
    found = _note_segments(image)
    if found is None:
        return None
    kind, segments = found
    notes_read = 0
    for segment in segments:
        for offset, name, note_type, desc in _notes(image, kind, segment):
            notes_read += 1
            if notes_read > MAX_NOTES:
                raise LoaderError(f"malformed {kind}: its PT_NOTE segments hold more than {MAX_NOTES} notes; "
                                  "kvmrun reads no more (kernels carry a few dozen)")
            if note_type == XEN_ELFNOTE_PHYS32_ENTRY and name.rstrip(b"\0") == XEN_NOTE_NAME:
                return _entry(kind, offset, desc)
    return None


def _entry(kind: str, offset: int, desc: bytes) -> int:
    if len(desc) not in (4, 8):
        raise LoaderError(f"malformed {kind}: the Xen PHYS32_ENTRY note at offset 0x{offset:x} has a "
                          f"{len(desc)}-byte descriptor; the PVH entry point is a 4- or 8-byte address")
    entry = int.from_bytes(desc, "little")
    if entry >= ENTRY_LIMIT:
        raise LoaderError(f"the PVH entry point 0x{entry:x} (the Xen PHYS32_ENTRY note at offset 0x{offset:x}) "
                          f"lies above 4 GiB: PVH enters the kernel in 32-bit mode, below 0x{ENTRY_LIMIT:x}")
    return entry


def _note_segments(image: bytes) -> Optional[Tuple[str, List[NoteSegment]]]:
    """(kind, the PT_NOTE segments), or None when the ELF and program headers cannot be read."""
    if len(image) < 16 or image[:4] != ELF_MAGIC or image[5] != ELFDATA2LSB or image[4] not in _LAYOUTS:
        return None
    kind, header, phdr, phentsize = _LAYOUTS[image[4]]
    if len(image) < header.size:
        return None
    phoff, _, entsize, phnum = header.unpack_from(image)
    if (entsize != phentsize or phnum in (0, PN_XNUM) or phnum * phentsize > MAX_PROGRAM_HEADER_BYTES
            or phoff + phnum * phentsize > len(image)):
        return None
    segments = []
    for index in range(phnum):
        p_type, p_offset, p_filesz, p_align = phdr.unpack_from(image, phoff + index * phentsize)
        if p_type != PT_NOTE or p_filesz == 0:
            continue
        segment = NoteSegment(index, p_offset, p_filesz, 8 if p_align == 8 else 4)
        if p_offset + p_filesz > len(image):
            raise LoaderError(f"truncated {kind}: segment {index} (PT_NOTE) data (offset 0x{p_offset:x}, "
                              f"0x{p_filesz:x} bytes) extends beyond the end of the file ({len(image)} bytes)")
        if p_offset % segment.align:
            raise LoaderError(f"malformed {kind}: segment {index} (PT_NOTE) starts at offset 0x{p_offset:x}, "
                              f"which is not {segment.align}-byte aligned as notes must be")
        segments.append(segment)
    return kind, segments


def _notes(image: bytes, kind: str, segment: NoteSegment) -> Iterator[Tuple[int, bytes, int, bytes]]:
    """Each note of `segment` as (file offset, name, type, descriptor), bounds-checked."""
    align = segment.align
    end = segment.offset + segment.size
    offset = segment.offset
    while offset < end:
        where = f"the note at offset 0x{offset:x} in segment {segment.number} (PT_NOTE)"
        if end - offset < NOTE_HEADER.size:
            raise LoaderError(f"malformed {kind}: {where} is cut off: {end - offset} bytes are left of its "
                              f"{NOTE_HEADER.size}-byte header")
        namesz, descsz, note_type = NOTE_HEADER.unpack_from(image, offset)
        name_start = offset + NOTE_HEADER.size
        desc_start = _align_up(name_start + namesz, align)
        note_end = desc_start + descsz if descsz else name_start + namesz
        if note_end > end:
            raise LoaderError(f"malformed {kind}: {where} has a {namesz}-byte name and a {descsz}-byte "
                              f"descriptor, which run past the segment's end at offset 0x{end:x}")
        yield offset, image[name_start:name_start + namesz], note_type, image[desc_start:desc_start + descsz]
        offset = _align_up(note_end, align)


def _align_up(value: int, alignment: int) -> int:
    return -(-value // alignment) * alignment
