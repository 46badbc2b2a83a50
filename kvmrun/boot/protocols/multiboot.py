"""Booting a multiboot (version 1) kernel: its parts loaded, its modules after it, the multiboot
information after them, on the PC platform (pc.py), as QEMU's -kernel and GRUB do (Multiboot
Specification 0.6.96, 3.2 machine state, 3.3 boot information).

vCPU 0 enters in 32-bit protected mode with EAX = 0x2BADB002 and EBX = the information's address.
Everything lies below 4 GiB, as the protocol's 32-bit fields need. The helpers here (loading the
kernel, placing what follows it) serve multiboot2.py too.
"""
from __future__ import annotations

import struct

from ... import layout
from ...errors import LoaderError
from ...memory import RamLayout
from ...platform.memory_map import MapEntry, lower_memory_kib, memory_map, upper_memory_kib
from .. import multiboot
from ..elf import plan_elf
from ..multiboot import ADDRESS_LIMIT, MODE_HINT, AddressFields
from ..plan import span
from ..setup import Blob, BootSetup
from .pc import (PAGE, Module, StructureArea, align_up, c_string, end_of, kernel_blobs, modules_start, pc_setup,
                 place_modules, refuse_kernel_outside_ram)

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import List, Optional, Sequence, Tuple

LOADER_NAME = "kvmrun"
# The EGA text screen kvmrun has (layout.VGA_TEXT_ADDR): 80x25 cells of a character and an attribute.
TEXT_COLUMNS, TEXT_ROWS, TEXT_BITS_PER_CELL = 80, 25, 16
FRAMEBUFFER_TYPE_EGA_TEXT = 2

# The multiboot information (spec 3.3): flags and the offsets of the fields kvmrun fills.
INFO_MEMORY = 1 << 0
INFO_BOOT_DEVICE = 1 << 1
INFO_CMDLINE = 1 << 2
INFO_MODULES = 1 << 3
INFO_MEMORY_MAP = 1 << 6
INFO_LOADER_NAME = 1 << 9
INFO_FRAMEBUFFER = 1 << 12
OFF_FLAGS, OFF_MEM_LOWER, OFF_MEM_UPPER, OFF_BOOT_DEVICE, OFF_CMDLINE = 0, 4, 8, 12, 16
OFF_MODS_COUNT, OFF_MODS_ADDR, OFF_MMAP_LENGTH, OFF_MMAP_ADDR, OFF_LOADER_NAME = 20, 24, 44, 48, 64
OFF_FRAMEBUFFER = 88               # addr u64, pitch, width, height u32, bpp u8, type u8, color_info
# 0.6.96 defines the information up to the framebuffer's color_info, 116 bytes. QEMU writes 88 (up to
# the VBE fields); kvmrun reserves all 116, zeroed beyond what it fills, so a kernel that copies the
# whole structure as its multiboot.h declares it reads zeroes, never the next structure.
INFO_SIZE = 116
MODULE_ENTRY_SIZE = 16             # mod_start, mod_end, string, reserved
MMAP_ENTRY_SIZE = 24               # size (20: the bytes after it), base_addr u64, length u64, type u32
# boot_device: the BIOS drive in the most significant byte, then partitions part1, part2, part3 down to
# the least significant; 0xFF is "no partition". The spec's diagram reads "drive | part1 | part2 |
# part3" from the high byte down (GRUB Legacy builds it as drive << 24 | partition; its bug 19621 says
# the drive is the last byte in memory). So the first hard disk, whole, is 0x80FFFFFF. QEMU's
# 0x8000FFFF would claim partition 0.
BOOT_DEVICE = 0x80FFFFFF


def plan(header: multiboot.Header, image: bytes, image_name: str, ram: RamLayout, cpus: int, cmdline: str,
         modules: Sequence[Module]) -> BootSetup:
    """The setup that boots `image` by its multiboot `header` with `modules`. LoaderError for what no
    multiboot loader could place; the rest (RAM, kvmrun's own ranges) is for check_setup."""
    kernel, entry = load_kernel("multiboot", header.address, header.entry, image)
    refuse_kernel_outside_ram(kernel, ram)
    placed, area = place_after_kernel(kernel, modules, "multiboot information")
    info_addr = area.reserve(INFO_SIZE)
    mods_addr = area.reserve(MODULE_ENTRY_SIZE * len(placed))
    entries = memory_map(ram)
    mmap_addr = area.place(b"".join(_mmap_entry(entry) for entry in entries))
    # QEMU's "%s %s" of the kernel's path and -append: with no command line, the path and a space.
    cmdline_addr = area.place(c_string(f"{image_name} {cmdline}"), 1)
    string_addrs = [area.place(c_string(module.cmdline), 1) for module in modules]
    name_addr = area.place(c_string(LOADER_NAME), 1)
    refuse_beyond_low_ram(area, "multiboot", bool(modules))

    area.patch(mods_addr, b"".join(struct.pack("<4I", addr, addr + size, string, 0)
                                   for (_, addr, size), string in zip(placed, string_addrs)))
    info = bytearray(INFO_SIZE)
    flags = INFO_MEMORY | INFO_BOOT_DEVICE | INFO_CMDLINE | INFO_MODULES | INFO_MEMORY_MAP | INFO_LOADER_NAME
    struct.pack_into("<5I", info, OFF_MEM_LOWER, lower_memory_kib(ram), upper_memory_kib(ram), BOOT_DEVICE,
                     cmdline_addr, len(placed))
    struct.pack_into("<I", info, OFF_MODS_ADDR, mods_addr)
    struct.pack_into("<2I", info, OFF_MMAP_LENGTH, MMAP_ENTRY_SIZE * len(entries), mmap_addr)
    struct.pack_into("<I", info, OFF_LOADER_NAME, name_addr)
    if header.flags & multiboot.FLAG_VIDEO_MODE:
        # The kernel asked for a video mode: tell it which screen it has, as GRUB does in text mode.
        flags |= INFO_FRAMEBUFFER
        struct.pack_into("<QIIIBB", info, OFF_FRAMEBUFFER, layout.VGA_TEXT_ADDR, TEXT_COLUMNS * 2, TEXT_COLUMNS,
                         TEXT_ROWS, TEXT_BITS_PER_CELL, FRAMEBUFFER_TYPE_EGA_TEXT)
    struct.pack_into("<I", info, OFF_FLAGS, flags)
    area.patch(info_addr, bytes(info))
    structures = tuple(blob for blob, _, _ in placed) + (area.blob(),)
    return pc_setup(kernel, structures, entry, {"rax": multiboot.BOOTLOADER_MAGIC, "rbx": info_addr}, cpus,
                    header.notes)


def _mmap_entry(entry: MapEntry) -> bytes:
    return struct.pack("<IQQI", MMAP_ENTRY_SIZE - 4, entry.addr, entry.size, entry.type)


def load_kernel(protocol: str, address: Optional[AddressFields], entry: Optional[int],
                image: bytes) -> Tuple[Tuple[Blob, ...], int]:
    """The kernel's blobs and its entry: by the header's address fields (with the header's entry), or
    an ELF's PT_LOAD segments (ELF32 or ELF64), entered at the header's entry if it gives one, else the
    ELF's. Everything below 4 GiB, so the entry is too (an ELF's lies in one of its segments, a
    header's is a u32): an ELF64 kernel is entered at its 32-bit entry, as multiboot promises (QEMU
    refuses ELF64 multiboot kernels; GRUB loads them so)."""
    if address is not None:
        assert entry is not None, "address fields come with an entry"
        view = memoryview(image)[address.file_offset:address.file_offset + address.load_size]
        return (Blob(address.load_addr, view, address.mem_size, "the kernel", file_offset=address.file_offset),), entry
    elf = plan_elf(image)
    blobs = kernel_blobs(elf)
    for blob in blobs:
        if blob.end > ADDRESS_LIMIT:
            raise LoaderError(f"{blob.name} ({span(blob.addr, blob.end)}) ends above 4 GiB, where a {protocol} "
                              f"loader does not load kernels; {MODE_HINT}")
    return blobs, elf.entry if entry is None else entry


def place_after_kernel(kernel: Sequence[Blob], modules: Sequence[Module],
                       name: str) -> Tuple[Tuple[Tuple[Blob, int, int], ...], StructureArea]:
    """The modules, each page-aligned, from the end of the kernel (pc.modules_start), and the area for
    the boot information on the page after the last of them."""
    placed = place_modules(modules, modules_start(kernel), PAGE)
    after: List[Blob] = [blob for blob, _, _ in placed] or list(kernel)
    return placed, StructureArea(align_up(max(end_of(after), layout.HIGH_MEMORY), PAGE), name)


def refuse_beyond_low_ram(area: StructureArea, protocol: str, modules: bool) -> None:
    """The protocol's 32-bit fields point at the modules and the information: they must end below the
    MMIO gap at 3 GiB, whatever --memory gives above 4 GiB. The kernel itself lies in RAM (checked
    first), so what does not fit is what follows it."""
    if area.address() > layout.RAM_GAP_START:
        what = (f"the modules and the {protocol} information" if modules else
                f"the {protocol} information after the kernel")
        raise LoaderError(f"{what} would end at 0x{area.address():x}, beyond the RAM below 3 GiB that "
                          f"{protocol}'s 32-bit addresses reach")
