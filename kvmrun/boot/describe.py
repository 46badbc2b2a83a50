"""The boot plan of a BootConfig as plain data, for `kvmrun inspect`: what `kvmrun boot` would do, from
the very functions it does it with, without opening /dev/kvm or running anything.

The image is planned by boot/prepare.py (plan_image_for, plan_setup: the same checks, the same errors),
the vCPUs' registers are setup.py's vcpu_regs and vcpu_sregs (what boot hands KVM_SET_REGS and
KVM_SET_SREGS) applied to the CPU's reset state, the GDT and page tables are decoded from the bytes of
the blobs boot writes, and the devices are platform/devices.py's list, which the machine registers.
Everything is ints, strings, bools, lists and dicts: the JSON document `kvmrun inspect --json` prints.
"""
from __future__ import annotations

import bisect
import os
import struct

from .. import layout
from ..debug.page_walk import CR0_PG, CR4_LA57, EFER_LME, long_mode_mappings
from ..diagnostics import CR0_FLAGS, CR4_FLAGS, EFER_FLAGS, RFLAGS_FLAGS, SEGMENT_REGISTERS
from ..kvm import abi
from ..memory import RamLayout
from ..options import BootConfig
from ..platform.devices import machine_devices
from .cpu_modes import Mode
from .prepare import KVMRUN_ABI, ImageBoot, plan_image_for, plan_setup
from .setup import BootSetup, VcpuStart, vcpu_regs, vcpu_sregs

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional

    from ..debug.page_walk import ReadPhys

SCHEMA = 1                 # the JSON document's version: raised when a field changes meaning or goes away
GENERAL_REGISTERS = tuple(field[0] for field in abi.kvm_regs._fields_)
_SEGMENT_FIELDS = ("selector", "base", "limit", "type", "present", "dpl", "db", "s", "l", "g", "avl", "unusable")


def describe(config: BootConfig) -> Dict[str, Any]:
    """How `config` boots. LoaderError, ConfigError or OptionError as `kvmrun boot` raises them before
    it opens /dev/kvm: the same image and options fail here with the same message."""
    image_boot = plan_image_for(config)
    if config.gdb is not None or config.until is not None:
        from ..debug.session import check_debugging
        check_debugging(config)                 # as boot refuses them, without opening a port
    # Boot plans with 1 GiB pages first and plans again only where KVM offers none: both are shown.
    setup = plan_setup(config, image_boot, one_gib_pages=True)
    fallback = plan_setup(config, image_boot, one_gib_pages=False)
    return describe_setup(config, image_boot, setup, fallback)


def describe_setup(config: BootConfig, image_boot: ImageBoot, setup: BootSetup,
                   fallback: Optional[BootSetup] = None) -> Dict[str, Any]:
    ram = RamLayout(config.memory)
    read_phys = _initial_ram(setup, ram)
    vcpus = [describe_vcpu(index, start, setup) for index, start in enumerate(setup.vcpus)]
    first = setup.vcpus[0]
    plan: Dict[str, Any] = {
        "schema": SCHEMA,
        "image": {"path": config.image, "size": _file_size(config.image), "format": image_boot.format,
                  "detected": image_boot.detected},
        "protocol": image_boot.protocol,
        "mode": image_boot.mode.value,
        "entry": first.entry,
        "memory": {"size": config.memory,
                   "regions": [{"start": region.guest_addr, "end": region.end} for region in ram.regions]},
        "cpus": len(setup.vcpus),
        "platform": {"irqchip": setup.needs.irqchip, "ap_start": setup.needs.ap_start, "bios": setup.needs.bios},
        "segments": [_segment(blob) for blob in setup.blobs if not blob.structure],
        "structures": [{"name": blob.name, "start": blob.addr, "end": blob.end, "size": blob.size}
                       for blob in setup.blobs if blob.structure],
        "reserved": [{"what": res.what, "start": res.start, "end": res.end} for res in setup.reserved],
        "gdt": describe_gdt(vcpus[0]["sregs"], read_phys, long_mode=first.mode is Mode.LONG),
        "page_tables": describe_page_tables(setup, read_phys, fallback),
        "vcpus": vcpus,
        "devices": [{"name": device.name, "space": device.space, "start": device.start, "end": device.end,
                     "by": device.by, "why": device.why} for device in machine_devices(config, setup.needs)],
        "memory_map": _memory_map(image_boot, ram),
        "notes": list(setup.notes),
    }
    return plan


def _file_size(path: str) -> Optional[int]:
    try:
        return os.stat(path).st_size
    except OSError:
        return None


def _segment(blob) -> Dict[str, Any]:
    """An image part: where its bytes are in the file, where they go in RAM (zeroes up to `end`)."""
    length = len(blob.data)
    return {"name": blob.name, "file_offset": blob.file_offset, "file_size": length,
            "start": blob.addr, "data_end": blob.addr + length, "end": blob.end, "flags": blob.flags}


def _memory_map(image_boot: ImageBoot, ram: RamLayout) -> List[Dict[str, Any]]:
    """The E820 map PC kernels are given (and a boot disk's int 15h reports); kvmrun's ABI has none."""
    if image_boot.protocol == KVMRUN_ABI:
        return []
    from ..platform.memory_map import E820_RAM, memory_map
    return [{"start": entry.addr, "end": entry.end, "type": "RAM" if entry.type == E820_RAM else "reserved"}
            for entry in memory_map(ram)]


def _initial_ram(setup: BootSetup, ram: RamLayout) -> ReadPhys:
    """Guest RAM as boot leaves it before the first instruction: the blobs, zeroes elsewhere."""
    blobs = sorted((blob for blob in setup.blobs if len(blob.data)), key=lambda blob: blob.addr)
    starts = [blob.addr for blob in blobs]          # blobs never overlap (check_setup)

    def read_phys(address: int, size: int) -> Optional[bytes]:
        if size < 0 or not ram.contains(address, size):
            return None
        out = bytearray(size)
        for blob in blobs[max(0, bisect.bisect_right(starts, address) - 1):]:
            if blob.addr >= address + size:
                break
            start, end = max(address, blob.addr), min(address + size, blob.addr + len(blob.data))
            if start < end:
                out[start - address:end - address] = blob.data[start - blob.addr:end - blob.addr]
        return bytes(out)
    return read_phys


# --- vCPUs ----------------------------------------------------------------------------------------

def reset_sregs(index: int = 0) -> abi.kvm_sregs:
    """The segment and control registers of vCPU `index` as KVM creates it: the x86 reset state (Intel
    SDM vol. 3A, 10.1.1, table 10-1), which is what boot reads with KVM_GET_SREGS and sets up from
    (vcpu_sregs keeps what a real-mode start does not change). tests/test_inspect.py holds it to KVM's."""
    sregs = abi.kvm_sregs()
    for name in ("ds", "es", "fs", "gs", "ss"):
        setattr(sregs, name, abi.kvm_segment(base=0, limit=0xFFFF, selector=0, type=3, present=1, s=1))
    sregs.cs = abi.kvm_segment(base=0xFFFF0000, limit=0xFFFF, selector=0xF000, type=0xB, present=1, s=1)
    sregs.tr = abi.kvm_segment(base=0, limit=0xFFFF, selector=0, type=0xB, present=1)
    sregs.ldt = abi.kvm_segment(base=0, limit=0xFFFF, selector=0, type=2, present=1)
    sregs.gdt.limit = sregs.idt.limit = 0xFFFF
    sregs.cr0 = 0x60000010                      # CD, NW, ET
    sregs.apic_base = 0xFEE00000 | 1 << 11 | (1 << 8 if index == 0 else 0)    # enabled; vCPU 0 the BSP
    return sregs


def describe_vcpu(index: int, start: VcpuStart, setup: BootSetup) -> Dict[str, Any]:
    """vCPU `index` as boot starts it: the registers vcpu_regs and vcpu_sregs give, decoded."""
    regs = vcpu_regs(start)
    sregs = vcpu_sregs(start, reset_sregs(index))
    values = {name: getattr(regs, name) for name in GENERAL_REGISTERS}
    described: Dict[str, Any] = {
        "index": index,
        "runnable": start.runnable,
        "mode": start.mode.value,
        "entry": start.entry,
        "regs": values,
        "rflags": _flags(regs.rflags, RFLAGS_FLAGS),
        "points_to": _points_to(values, setup),
        "sregs": {
            **{name: _segment_register(getattr(sregs, name)) for name in SEGMENT_REGISTERS},
            "gdt": {"base": sregs.gdt.base, "limit": sregs.gdt.limit},
            "idt": {"base": sregs.idt.base, "limit": sregs.idt.limit},
            "cr0": _flags(sregs.cr0, CR0_FLAGS),
            "cr2": sregs.cr2,
            "cr3": sregs.cr3,
            "cr4": _flags(sregs.cr4, CR4_FLAGS),
            "cr8": sregs.cr8,
            "efer": _flags(sregs.efer, EFER_FLAGS),
            "apic_base": sregs.apic_base,
        },
    }
    if start.mode is Mode.REAL:
        described["cs_ip"] = f"{sregs.cs.selector:04X}:{regs.rip:04X}"
    return described


def _flags(value: int, names: Dict[int, str]) -> Dict[str, Any]:
    return {"value": value, "flags": [names.get(bit, f"bit{bit}") for bit in range(64) if value >> bit & 1]}


def _segment_register(segment: abi.kvm_segment) -> Dict[str, int]:
    return {name: getattr(segment, name) for name in _SEGMENT_FIELDS}


def _points_to(regs: Dict[str, int], setup: BootSetup) -> Dict[str, str]:
    """Which of kvmrun's structures or reserved ranges each register's value lies in ("rbx": "multiboot
    information +0x0"), a stack pointer at the top of its range too. Values in the first page (a drive
    number, a count: the IVT and BIOS data area are there) and registers that point nowhere are left out."""
    ranges = [(blob.addr, blob.end, blob.name) for blob in setup.blobs if blob.size and blob.structure]
    ranges += [(res.start, res.end, res.what) for res in setup.reserved]
    found = {}
    for name, value in regs.items():
        if name in ("rip", "rflags") or value < layout.PAGE_SIZE:
            continue
        for start, end, what in ranges:
            if start <= value < end:
                found[name] = f"{what} +0x{value - start:x}"
                break
            if name == "rsp" and value == end:
                found[name] = f"the top of {what}"
                break
    return found


# --- GDT and page tables ----------------------------------------------------------------------------

_CODE_DATA = {False: "data", True: "code"}
_SYSTEM_TYPES = {0x1: "16-bit TSS (available)", 0x2: "LDT", 0x3: "16-bit TSS (busy)", 0x4: "16-bit call gate",
                 0x9: "TSS (available)", 0xB: "TSS (busy)", 0xC: "call gate", 0xE: "interrupt gate",
                 0xF: "trap gate"}
_SYSTEM_16_BYTES = frozenset((0x2, 0x9, 0xB, 0xC))        # in IA-32e mode: 16-byte descriptors


def describe_gdt(sregs: Dict[str, Any], read_phys: ReadPhys, long_mode: bool) -> List[Dict[str, Any]]:
    """The descriptors in the GDT vCPU 0 starts with (GDTR from its sregs), as the bytes boot writes
    there hold them (Intel SDM vol. 3A, 3.4.5 and 8.2.3); [] when it starts without one (real mode)."""
    if not sregs["cr0"]["value"] & 1:
        return []
    base, limit = sregs["gdt"]["base"], sregs["gdt"]["limit"]
    table = read_phys(base, limit + 1)
    if table is None:
        return []
    used_by: Dict[int, List[str]] = {}
    for name in SEGMENT_REGISTERS:
        if not sregs[name]["unusable"] and sregs[name]["selector"] & ~7:
            used_by.setdefault(sregs[name]["selector"] & ~7, []).append(name)
    entries: List[Dict[str, Any]] = []
    offset = 0
    while offset + 8 <= len(table):
        low = struct.unpack_from("<Q", table, offset)[0]
        entry = decode_descriptor(low)
        size = 8
        if long_mode and not entry["s"] and entry["type"] in _SYSTEM_16_BYTES and offset + 16 <= len(table):
            entry["base"] |= struct.unpack_from("<I", table, offset + 8)[0] << 32
            entry["kind"] = "64-bit " + entry["kind"]
            size = 16
        entry["selector"] = offset
        entry["used_by"] = used_by.get(offset, [])
        entries.append(entry)
        offset += size
    return entries


def decode_descriptor(value: int) -> Dict[str, Any]:
    """One 8-byte segment descriptor: base, limit in bytes (granularity applied), type and flags."""
    limit = value & 0xFFFF | (value >> 48 & 0xF) << 16
    granular = value >> 55 & 1
    entry: Dict[str, Any] = {
        "base": value >> 16 & 0xFFFFFF | (value >> 56 & 0xFF) << 24,
        "limit": limit << 12 | 0xFFF if granular else limit,
        "type": value >> 40 & 0xF, "s": value >> 44 & 1, "dpl": value >> 45 & 3, "present": value >> 47 & 1,
        "avl": value >> 52 & 1, "l": value >> 53 & 1, "db": value >> 54 & 1, "g": granular,
    }
    if value == 0:
        kind = "null"
    elif entry["s"]:
        code = bool(entry["type"] & 8)
        width = "64-bit" if code and entry["l"] else "32-bit" if entry["db"] else "16-bit"
        kind = f"{width} {_CODE_DATA[code]}"
    else:
        kind = _SYSTEM_TYPES.get(entry["type"], f"system type {entry['type']:#x}")
    entry["kind"] = kind
    return entry


def describe_page_tables(setup: BootSetup, read_phys: ReadPhys,
                         fallback: Optional[BootSetup]) -> Optional[Dict[str, Any]]:
    """What vCPU 0's paging maps as boot starts it (None with paging off), walked through the table
    bytes boot writes; with `fallback`, how the tables change on a host without 1 GiB pages."""
    first = setup.vcpus[0]
    sregs = vcpu_sregs(first, reset_sregs())
    if not sregs.cr0 & CR0_PG:
        return None
    long_mode = bool(sregs.efer & EFER_LME)     # the only paging kvmrun sets up; another shows no mappings
    tables = _table_blob(setup, sregs.cr3)
    runs = long_mode_mappings(sregs.cr3, sregs.cr4, sregs.efer, read_phys) if long_mode else []
    described: Dict[str, Any] = {
        "cr3": sregs.cr3, "levels": (5 if sregs.cr4 & CR4_LA57 else 4) if long_mode else None,
        "tables": None if tables is None else {"name": tables.name, "start": tables.addr, "end": tables.end},
        "mappings": [{"start": run.linear, "end": run.linear + run.size, "physical": run.physical,
                      "page_size": run.page_size, "writable": run.writable, "user": run.user,
                      "executable": run.executable} for run in runs],
    }
    if fallback is not None:
        other = _table_blob(fallback, fallback.vcpus[0].cr3)
        if other is not None and tables is not None and (other.addr, other.end) != (tables.addr, tables.end):
            described["without_1g_pages"] = {"start": other.addr, "end": other.end,
                                             "page_size": 2 * layout.MiB}
    return described


def _table_blob(setup: BootSetup, cr3: int):
    return next((blob for blob in setup.blobs if blob.structure and blob.addr <= cr3 < blob.end), None)

