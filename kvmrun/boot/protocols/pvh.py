"""PVH (Xen docs/misc/pvh.pandoc, "x86/HVM direct boot ABI") as a boot protocol, on the PC platform.

The kernel's PT_LOAD segments go where they say; its modules follow, page-aligned; then one page-
aligned area holds the boot information (xen/include/public/arch-x86/hvm/start_info.h):
  hvm_start_info (56 bytes): magic 0x336EC578, version 1, flags 0, nr_modules, modlist_paddr,
      cmdline_paddr, rsdp_paddr 0 (no ACPI tables), memmap_paddr, memmap_entries, reserved 0;
  the command line: the user's, NUL-terminated, as QEMU (fw_cfg's FW_CFG_CMDLINE_DATA, which its
      PVH option ROM points at) and Firecracker pass it: no kernel name in front, unlike multiboot;
  each module's string, NUL-terminated;
  hvm_modlist_entry per module (32 bytes): paddr, size, cmdline_paddr, reserved 0;
  hvm_memmap_table_entry per memory range (24 bytes): addr, size, type (E820's), reserved 0.
vCPU 0 starts at the note's entry with EBX = the start info's address and every other general
register 0; pc_setup gives 32-bit protected mode, paging off, flat segments and interrupts off, as
the ABI asks. One difference: the ABI describes TR as a 32-bit TSS with base 0 and limit 0x67;
kvmrun's TSS has limit 0x67 (104 bytes) but lies at 0x600 (layout.TSS_ADDR), since RAM at 0 holds
the real-mode IVT. A kernel reloads TR before it uses it, so no PVH kernel can tell.
"""
from __future__ import annotations

import struct

from ... import layout
from ...errors import LoaderError
from ...memory import RamLayout
from ...platform.memory_map import memory_map
from ..elf import plan_elf
from ..setup import BootSetup
from .pc import (PAGE, Module, StructureArea, align_up, c_string, end_of, kernel_blobs, modules_start, pc_setup,
                 place_modules, refuse_kernel_outside_ram)

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Sequence

XEN_HVM_START_MAGIC = 0x336EC578
START_INFO_VERSION = 1
START_INFO = struct.Struct("<IIIIQQQQII")        # 56 bytes
MODLIST_ENTRY = struct.Struct("<QQQQ")           # 32 bytes
MEMMAP_ENTRY = struct.Struct("<QQII")            # 24 bytes
EBX_LIMIT = 1 << 32                              # the start info's address travels in EBX


def plan(entry: int, image: bytes, image_name: str, ram: RamLayout, cpus: int, cmdline: str,
         modules: Sequence[Module]) -> BootSetup:
    """The setup booting the PVH kernel `image` at `entry` (from boot/pvh.py's probe). `image_name`
    is not used: PVH's command line carries no kernel name. LoaderError for an image plan_elf refuses,
    and for boot information that would lie beyond EBX's 4 GiB; the rest is check_setup's to judge."""
    kernel_plan = plan_elf(image)
    kernel = kernel_blobs(kernel_plan)
    refuse_kernel_outside_ram(kernel, ram)
    placed = place_modules(modules, modules_start(kernel))
    module_blobs = tuple(blob for blob, _, _ in placed)
    # Never in low memory, as multiboot's information (docs/guest-abi.md): kernels keep their own there.
    area = StructureArea(align_up(max(end_of(kernel + module_blobs), layout.HIGH_MEMORY), PAGE), "PVH start info")
    start_info = area.reserve(START_INFO.size)
    cmdline_addr = area.place(c_string(cmdline), align=1)
    strings = [area.place(c_string(module.cmdline), align=1) for module in modules]
    modlist_addr = area.place(b"".join(MODLIST_ENTRY.pack(addr, size, string, 0)
                                       for (_, addr, size), string in zip(placed, strings))) if modules else 0
    ranges = memory_map(ram)
    memmap_addr = area.place(b"".join(MEMMAP_ENTRY.pack(r.addr, r.size, r.type, 0) for r in ranges))
    area.patch(start_info, START_INFO.pack(XEN_HVM_START_MAGIC, START_INFO_VERSION, 0, len(modules), modlist_addr,
                                           cmdline_addr, 0, memmap_addr, len(ranges), 0))
    info = area.blob()
    if info.end > EBX_LIMIT:
        where = f"the PVH start info would lie at 0x{info.addr:x}-0x{info.end:x}"
        if modules and modules_start(kernel) + info.size <= EBX_LIMIT:      # the kernel alone leaves room
            raise LoaderError(f"{where}, after the modules (0x{placed[0][1]:x}-0x{end_of(module_blobs):x}), beyond "
                              "the 4 GiB EBX can point at: give fewer or smaller modules")
        raise LoaderError(f"{where}, after the kernel{' and its modules' if modules else ''}, beyond the 4 GiB EBX "
                          "can point at: load the kernel lower")
    return pc_setup(kernel, module_blobs + (info,), entry, {"rbx": start_info}, cpus, notes=kernel_plan.notes)
