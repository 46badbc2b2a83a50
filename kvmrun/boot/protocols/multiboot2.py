"""Booting a multiboot2 kernel: loaded by its address tag or its ELF program headers (ELF32 or
ELF64), its modules page-aligned after it, the boot information after them, on the PC platform
(pc.py), as GRUB 2 does on a BIOS machine in text mode (Multiboot2 Specification 2.0, 3.2, 3.6).

vCPU 0 enters in 32-bit protected mode with EAX = 0x36D76289 and EBX = the information's address.
The information: total_size, reserved, then 8-byte aligned tags: the command line (1), the boot
loader's name (2), one per module (3), basic memory information (4), the boot device (5), the
memory map (6), the framebuffer (8, when asked for, describing the EGA text screen), the load base
address (21, when asked for), and the end tag.
"""
from __future__ import annotations

import struct

from ... import layout
from ...errors import LoaderError
from ...memory import RamLayout
from ...platform.memory_map import lower_memory_kib, memory_map, upper_memory_kib
from .. import multiboot2
from ..multiboot import MODE_HINT, header_error
from ..multiboot2 import (INFO_BASIC_MEMINFO, INFO_BOOTDEV, INFO_CMDLINE, INFO_FRAMEBUFFER, INFO_LOAD_BASE_ADDR,
                          INFO_LOADER_NAME, INFO_MMAP, INFO_MODULE)
from ..setup import Blob, BootSetup
from .multiboot import (FRAMEBUFFER_TYPE_EGA_TEXT, LOADER_NAME, TEXT_BITS_PER_CELL, TEXT_COLUMNS, TEXT_ROWS,
                        load_kernel, place_after_kernel, refuse_beyond_low_ram)
from .pc import Module, align_up, c_string, end_of, pc_setup, refuse_kernel_outside_ram

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Sequence, Tuple

TAG_ALIGN = 8
MMAP_ENTRY_SIZE = 24               # base_addr u64, length u64, type u32, reserved u32
MMAP_ENTRY_VERSION = 0
# The boot device: the first hard disk, whole (GRUB gives ~0 for a slice and a part it has not got).
BIOS_DEVICE, NO_PARTITION = 0x80, 0xFFFFFFFF
# GRUB's framebuffer tag for the text screen is its common part alone: 32 bytes, the reserved field
# a u16 (the spec's table shows a u8; GRUB's multiboot2.h and every kernel reading it use 32).
FRAMEBUFFER_TAG_SIZE = 32


def plan(header: multiboot2.Header, image: bytes, image_name: str, ram: RamLayout, cpus: int, cmdline: str,
         modules: Sequence[Module]) -> BootSetup:
    """The setup that boots `image` by its multiboot2 `header` with `modules`. LoaderError for what no
    multiboot2 loader could place; the rest (RAM, kvmrun's own ranges) is for check_setup."""
    kernel, entry = load_kernel("multiboot2", header.address, header.entry, image)
    notes = header.notes
    if header.relocatable is not None:
        kernel, entry, moved = _relocated(header, kernel, entry)
        notes += moved
    refuse_kernel_outside_ram(kernel, ram)
    placed, area = place_after_kernel(kernel, modules, "multiboot2 information")
    # The tags' addresses are known only once the area is complete; build them with placeholders
    # of the right size, check the area's end, then write the real values.
    tags = [_tag(INFO_CMDLINE, c_string(cmdline)),          # the arguments alone: GRUB skips the path
            _tag(INFO_LOADER_NAME, c_string(LOADER_NAME))]
    for module in modules:
        tags.append(_tag(INFO_MODULE, struct.pack("<II", 0, 0) + c_string(module.cmdline)))
    tags.append(_tag(INFO_BASIC_MEMINFO, struct.pack("<II", lower_memory_kib(ram), upper_memory_kib(ram))))
    tags.append(_tag(INFO_BOOTDEV, struct.pack("<III", BIOS_DEVICE, NO_PARTITION, NO_PARTITION)))
    tags.append(_tag(INFO_MMAP, struct.pack("<II", MMAP_ENTRY_SIZE, MMAP_ENTRY_VERSION) + b"".join(
        struct.pack("<QQII", entry.addr, entry.size, entry.type, 0) for entry in memory_map(ram))))
    if INFO_FRAMEBUFFER in header.requested or header.framebuffer:
        tags.append(_tag(INFO_FRAMEBUFFER, struct.pack("<QIIIBBH", layout.VGA_TEXT_ADDR, TEXT_COLUMNS * 2,
                                                       TEXT_COLUMNS, TEXT_ROWS, TEXT_BITS_PER_CELL,
                                                       FRAMEBUFFER_TYPE_EGA_TEXT, 0)))
    if INFO_LOAD_BASE_ADDR in header.requested:
        tags.append(_tag(INFO_LOAD_BASE_ADDR, struct.pack("<I", min(blob.addr for blob in kernel))))
    tags.append(_tag(0, b""))
    total = 8 + sum(len(tag) for tag in tags)
    info_addr = area.place(bytes(total), TAG_ALIGN)
    refuse_beyond_low_ram(area, "multiboot2", bool(modules))

    info = bytearray(struct.pack("<II", total, 0) + b"".join(tags))
    position = 8 + len(tags[0]) + len(tags[1])
    for (_, addr, size), tag in zip(placed, tags[2:]):
        struct.pack_into("<II", info, position + 8, addr, addr + size)
        position += len(tag)
    area.patch(info_addr, bytes(info))
    structures = tuple(blob for blob, _, _ in placed) + (area.blob(),)
    return pc_setup(kernel, structures, entry, {"rax": multiboot2.BOOTLOADER_MAGIC, "rbx": info_addr}, cpus, notes)


def _tag(type_: int, body: bytes) -> bytes:
    """One information tag, padded to the next 8-byte boundary (its size field leaves the padding out)."""
    size = 8 + len(body)
    return struct.pack("<II", type_, size) + body + bytes(align_up(size, TAG_ALIGN) - size)


def _relocated(header: multiboot2.Header, kernel: Tuple[Blob, ...],
               entry: int) -> Tuple[Tuple[Blob, ...], int, Tuple[str, ...]]:
    """The kernel where its relocatable tag allows: at its link address when that lies inside
    [min_addr, max_addr] and is aligned (nothing to do), else moved whole to the lowest aligned address
    in the range from 1 MiB (below is the PC's low memory), its entry moved with it, as GRUB moves it."""
    assert header.relocatable is not None
    low, high = min(blob.addr for blob in kernel), end_of(kernel)
    min_addr, max_addr, align = header.relocatable
    align = align or 1
    if min_addr <= low and high <= max_addr and low % align == 0:
        return kernel, entry, ()
    base = align_up(max(min_addr, layout.HIGH_MEMORY), align)
    if base + (high - low) > max_addr:
        raise header_error("multiboot2", header.offset, f"the relocatable tag (type 10) allows 0x{min_addr:x}-"
                           f"0x{max_addr:x} aligned to 0x{align:x}, which does not hold the kernel's 0x{high - low:x} "
                           "bytes above 1 MiB")
    delta = base - low
    if not 0 <= entry + delta < 1 << 32:
        raise LoaderError(f"the kernel's entry point 0x{entry:x}, moved with it by {delta:+#x}, would lie outside "
                          f"the first 4 GiB; {MODE_HINT}")
    moved = tuple(blob._replace(addr=blob.addr + delta) for blob in kernel)
    note = (f"the kernel is relocatable (multiboot2 tag 10) and its link address 0x{low:x} is not one the tag "
            f"allows; kvmrun loads it at 0x{base:x}")
    return moved, entry + delta, (note,)
