"""ELF32 (EM_386) and ELF64 (EM_X86_64) executables: the ELF header and the program headers, read with
struct (the System V ABI's layouts). pyelftools would do it too, but importing it costs ~25 ms, a
third of `kvmrun boot`'s start-up; kvmrun keeps it for symbol tables, where it earns its cost.

Every size and offset is checked against the file before a header is read, so a corrupt image gives
one precise LoaderError; section headers are never read (loading needs only program headers).
Segment data is never copied here: a plan holds memoryview slices of the image, so whatever the
headers say (a thousand segments each naming the whole file), planning costs memory in proportion
to the number of headers, which is bounded, not to the bytes they name.
"""
from __future__ import annotations

import struct
from itertools import pairwise

from ..errors import LoaderError
from .cpu_modes import Mode
from .plan import LoadPlan, LoadSegment

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import List, NamedTuple
else:
    from ..named_tuple import NamedTuple

ELF_MAGIC = b"\x7fELF"
ELFCLASS32, ELFCLASS64 = 1, 2
ELFDATA2LSB = 1
EV_CURRENT = 1
EM_386, EM_X86_64 = 3, 62
PF_X = 1
PN_XNUM = 0xFFFF
# Linux's ELF loader reads at most 64 KiB of program headers (fs/binfmt_elf.c, load_elf_phdrs);
# kvmrun takes the same bound, which also bounds what planning allocates per header.
MAX_PROGRAM_HEADER_BYTES = 65536
_ADDRESS_LIMIT = 1 << 64

# class -> (name, header size, program header size, machine, mode)
_CLASSES = {
    ELFCLASS32: ("ELF32", 52, 32, EM_386, Mode.PROTECTED),
    ELFCLASS64: ("ELF64", 64, 56, EM_X86_64, Mode.LONG),
}

_MACHINE_NAMES = {0: "none", 2: "SPARC", 3: "i386", 8: "MIPS", 20: "PowerPC", 21: "PowerPC64",
                  22: "S390", 40: "ARM", 50: "IA-64", 62: "x86-64", 183: "AArch64", 243: "RISC-V",
                  258: "LoongArch"}


def is_elf(image: bytes) -> bool:
    return image[:4] == ELF_MAGIC


# The ELF header after e_ident (e_type ... e_shstrndx) and a program header, as struct formats.
_EHDR = {ELFCLASS32: struct.Struct("<HHIIIIIHHHHHH"), ELFCLASS64: struct.Struct("<HHIQQQIHHHHHH")}
_PHDR_32 = struct.Struct("<IIIIIIII")        # p_type, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_flags, p_align
_PHDR_64 = struct.Struct("<IIQQQQQQ")        # p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align
PT_LOAD = 1
_TYPE_NAMES = {0: "ET_NONE", 1: "ET_REL", 2: "ET_EXEC", 3: "ET_DYN", 4: "ET_CORE"}
ET_EXEC = 2


class _Phdr(NamedTuple):
    p_type: int
    p_offset: int
    p_vaddr: int
    p_paddr: int
    p_filesz: int
    p_memsz: int
    p_flags: int


def _program_header(image: bytes, elfclass: int, start: int) -> _Phdr:
    if elfclass == ELFCLASS32:
        p_type, offset, vaddr, paddr, filesz, memsz, flags, _ = _PHDR_32.unpack_from(image, start)
    else:
        p_type, flags, offset, vaddr, paddr, filesz, memsz, _ = _PHDR_64.unpack_from(image, start)
    return _Phdr(p_type, offset, vaddr, paddr, filesz, memsz, flags)


def plan_elf(image: bytes) -> LoadPlan:
    size = len(image)
    if size < 16:
        raise LoaderError(f"truncated ELF: {size} bytes, too short for e_ident")
    elfclass, data_encoding, version = image[4], image[5], image[6]
    if elfclass not in _CLASSES:
        raise LoaderError(f"malformed ELF: unknown class {elfclass} in e_ident (1 is ELF32, 2 is ELF64)")
    kind, ehsize, phentsize, machine, mode = _CLASSES[elfclass]
    if data_encoding != ELFDATA2LSB:
        raise LoaderError(f"{kind} is not little-endian (EI_DATA={data_encoding}): not an x86 image")
    if version != EV_CURRENT:
        raise LoaderError(f"malformed {kind}: EI_VERSION is {version}, expected 1")
    if size < ehsize:
        raise LoaderError(f"truncated {kind}: {size} bytes, the ELF header alone needs {ehsize}")

    (e_type, e_machine, _, e_entry, e_phoff, _, _, _, e_phentsize, e_phnum, _, _,
     _) = _EHDR[elfclass].unpack_from(image, 16)
    if e_machine != machine:
        name = _MACHINE_NAMES.get(e_machine, "unknown")
        raise LoaderError(f"{kind} for another machine: e_machine is {e_machine} ({name}); "
                          f"kvmrun boots {_MACHINE_NAMES[machine]} {kind} images")
    if e_type != ET_EXEC:
        raise LoaderError(f"{kind} is {_TYPE_NAMES.get(e_type, e_type)}, not an executable (ET_EXEC): link it "
                          "with a fixed load address")
    if e_phentsize != phentsize:
        raise LoaderError(f"malformed {kind}: e_phentsize is {e_phentsize}, expected {phentsize}")
    phnum, phoff = e_phnum, e_phoff
    if phnum == 0:
        raise LoaderError(f"{kind} has no program headers (e_phnum is 0): nothing to load")
    if phnum == PN_XNUM:
        raise LoaderError(f"{kind} uses extended program header numbering (PN_XNUM): not supported")
    if phnum * phentsize > MAX_PROGRAM_HEADER_BYTES:
        raise LoaderError(f"malformed {kind}: {phnum} program headers ({phnum * phentsize} bytes); at most "
                          f"{MAX_PROGRAM_HEADER_BYTES // phentsize} ({MAX_PROGRAM_HEADER_BYTES} bytes) are "
                          "accepted, as by Linux")
    if phoff + phnum * phentsize > size:
        raise LoaderError(f"truncated {kind}: program headers at offset 0x{phoff:x} ({phnum} x {phentsize} "
                          f"bytes) extend beyond the end of the file ({size} bytes)")

    view = memoryview(image)             # slices of it share the image's bytes: nothing is copied
    segments: List[LoadSegment] = []
    entry = e_entry
    physical_entry = None
    previous_vaddr = -1
    for index in range(phnum):
        start = phoff + index * phentsize
        ph = _program_header(image, elfclass, start)
        if ph.p_type != PT_LOAD or ph.p_memsz == 0:
            continue
        name = f"segment {index} (PT_LOAD)"
        if ph.p_vaddr < previous_vaddr:
            raise LoaderError(f"malformed {kind}: {name} at p_vaddr 0x{ph.p_vaddr:x} comes after one at "
                              f"0x{previous_vaddr:x}; PT_LOAD segments must be in ascending order")
        previous_vaddr = ph.p_vaddr
        if ph.p_filesz > ph.p_memsz:
            raise LoaderError(f"malformed {kind}: {name} has p_filesz 0x{ph.p_filesz:x} larger than "
                              f"p_memsz 0x{ph.p_memsz:x}")
        if ph.p_offset + ph.p_filesz > size:
            raise LoaderError(f"truncated {kind}: {name} data (offset 0x{ph.p_offset:x}, 0x{ph.p_filesz:x} "
                              f"bytes) extends beyond the end of the file ({size} bytes)")
        if ph.p_paddr + ph.p_memsz > _ADDRESS_LIMIT or ph.p_vaddr + ph.p_memsz > _ADDRESS_LIMIT:
            raise LoaderError(f"malformed {kind}: {name} address 0x{ph.p_paddr:x} + size 0x{ph.p_memsz:x} "
                              "overflows the address space")
        segments.append(LoadSegment(addr=ph.p_paddr, data=view[ph.p_offset:ph.p_offset + ph.p_filesz],
                                    memsz=ph.p_memsz, name=name, file_offset=ph.p_offset,
                                    flags=segment_flags(ph.p_flags)))
        if physical_entry is None and ph.p_flags & PF_X and ph.p_vaddr <= entry < ph.p_vaddr + ph.p_memsz:
            physical_entry = entry - ph.p_vaddr + ph.p_paddr
    if not segments:
        raise LoaderError(f"{kind} has no loadable segment (PT_LOAD with p_memsz > 0)")
    if physical_entry is None:
        raise LoaderError(f"{kind}'s entry point 0x{entry:x} is not inside an executable PT_LOAD segment")
    _refuse_overlaps(kind, segments)
    return LoadPlan(kind=kind, default_mode=mode, entry=physical_entry, segments=tuple(segments))


def segment_flags(p_flags: int) -> str:
    """PF_R, PF_W and PF_X as readelf shows them: "R-X" for text, "RW-" for data."""
    return "".join(letter if p_flags & bit else "-" for letter, bit in (("R", 4), ("W", 2), ("X", PF_X)))


def _refuse_overlaps(kind: str, segments: List[LoadSegment]) -> None:
    ordered = sorted(segments, key=lambda s: s.addr)
    for before, after in pairwise(ordered):
        if after.addr < before.end:
            raise LoaderError(f"malformed {kind}: {before.name} (0x{before.addr:x}-0x{before.end:x}) and "
                              f"{after.name} (0x{after.addr:x}-0x{after.end:x}) overlap in physical memory")
