"""Builds small ELF images in memory, so loader tests can corrupt exactly one field."""
import struct
from dataclasses import dataclass
from typing import List

PT_LOAD, PT_NOTE = 1, 4


@dataclass
class Seg:
    paddr: int
    data: bytes
    memsz: int = -1               # -1: same as len(data)
    vaddr: int = -1               # -1: same as paddr
    type: int = PT_LOAD
    flags: int = 5                # R+X


def elf(segments: List[Seg], entry: int, bits: int = 64, machine: int = -1, e_type: int = 2) -> bytearray:
    if machine == -1:
        machine = 62 if bits == 64 else 3
    ehsize, phentsize = (64, 56) if bits == 64 else (52, 32)
    phoff = ehsize
    offset = phoff + phentsize * len(segments)
    phdrs, blobs = [], []
    for seg in segments:
        memsz = len(seg.data) if seg.memsz == -1 else seg.memsz
        vaddr = seg.paddr if seg.vaddr == -1 else seg.vaddr
        if bits == 64:
            phdrs.append(struct.pack("<IIQQQQQQ", seg.type, seg.flags, offset, vaddr, seg.paddr,
                                     len(seg.data), memsz, 0x1000))
        else:
            phdrs.append(struct.pack("<IIIIIIII", seg.type, offset, vaddr, seg.paddr, len(seg.data),
                                     memsz, seg.flags, 0x1000))
        blobs.append(seg.data)
        offset += len(seg.data)
    ident = b"\x7fELF" + bytes([2 if bits == 64 else 1, 1, 1]) + bytes(9)
    if bits == 64:
        header = struct.pack("<HHIQQQIHHHHHH", e_type, machine, 1, entry, phoff, 0, 0, ehsize, phentsize,
                             len(segments), 64, 0, 0)
    else:
        header = struct.pack("<HHIIIIIHHHHHH", e_type, machine, 1, entry, phoff, 0, 0, ehsize, phentsize,
                             len(segments), 40, 0, 0)
    return bytearray(ident + header + b"".join(phdrs) + b"".join(blobs))


def phdr_field_offset(bits: int, index: int, field: str) -> int:
    """File offset of one program header field, to corrupt it."""
    ehsize, phentsize = (64, 56) if bits == 64 else (52, 32)
    fields64 = {"type": 0, "offset": 8, "vaddr": 16, "paddr": 24, "filesz": 32, "memsz": 40}
    fields32 = {"type": 0, "offset": 4, "vaddr": 8, "paddr": 12, "filesz": 16, "memsz": 20}
    return ehsize + index * phentsize + (fields64 if bits == 64 else fields32)[field]
