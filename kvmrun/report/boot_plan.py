"""`kvmrun inspect` for people: the boot plan (boot/describe.py's plain data) as rich tables."""
from __future__ import annotations

import io

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional, Tuple

SHOWN_VCPUS = 4            # columns of registers; the rest are in --json
_PROTOCOLS = {"kvmrun": "kvmrun's own ABI", "boot sector": "a PC boot disk, on kvmrun's BIOS"}


def plan_text(plan: Dict[str, Any], width: int = 100, color: bool = False) -> str:
    """The plan as text `width` columns wide; with `color`, with the terminal's colours."""
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=color, color_system="standard" if color else None,
                      highlight=False)
    console.print(render_plan(plan))
    return out.getvalue()


def render_plan(plan: Dict[str, Any]) -> Group:
    sections: List[Tuple[str, Any]] = [_summary(plan), _segments(plan), _structures(plan)]
    if plan["gdt"]:
        sections.append(_gdt(plan["gdt"]))
    if plan["page_tables"] is not None:
        sections.append(_page_tables(plan["page_tables"]))
    sections.append(_vcpus(plan["vcpus"]))
    sections.append(_devices(plan["devices"]))
    if plan["memory_map"]:
        sections.append(_memory_map(plan["memory_map"]))
    parts: List[Any] = []
    for title, table in sections:
        parts += [Text(title, style="bold"), table, Text("")]
    if len(plan["vcpus"]) > SHOWN_VCPUS:
        parts.append(Text(f"{len(plan['vcpus']) - SHOWN_VCPUS} more vCPUs: --json lists every one."))
    for note in plan["notes"]:
        parts.append(Text(f"note: {note}"))
    return Group(*parts)


def hex_(value: Optional[int]) -> str:
    return "-" if value is None else f"0x{value:x}"


def span(start: int, end: int) -> str:
    """[start, end) as its first and last byte, as kvmrun's errors give ranges."""
    return f"0x{start:x}-0x{end - 1:x}" if end > start else f"0x{start:x} (empty)"


def size(value: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if value >= 1 << shift and value % (1 << shift) == 0:
            return f"{value >> shift} {unit}"
    return f"{value} bytes"


def _table(*columns: str) -> Table:
    table = Table(header_style="bold", box=None, pad_edge=False, show_header=any(columns))
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def _summary(plan: Dict[str, Any]) -> Tuple[str, Table]:
    table = _table("", "")
    image = plan["image"]
    first = plan["vcpus"][0]
    protocol = _PROTOCOLS.get(plan["protocol"], f"a {plan['protocol']} kernel, on kvmrun's PC platform")
    entry = hex_(plan["entry"]) + (f" (CS:IP {first['cs_ip']})" if "cs_ip" in first else "")
    inside = next((seg["name"] for seg in plan["segments"] if seg["start"] <= plan["entry"] < seg["end"]), None)
    inside = inside or next((s["name"] for s in plan["structures"] if s["start"] <= plan["entry"] < s["end"]), None)
    waiting = sum(not vcpu["runnable"] for vcpu in plan["vcpus"])
    cpus = f"{plan['cpus']}" + (f": vCPU 0 runs, {waiting} wait for INIT/SIPI" if waiting else
                                ": all start at the entry" if plan["cpus"] > 1 else "")
    platform = plan["platform"]
    rows = [
        ("image", f"{image['path']} ({image['size']} bytes)"),
        ("format", image["format"]),
        ("detected by", image["detected"]),
        ("boots as", f"{protocol}, {plan['mode']} mode"),
        ("entry", entry + (f" in {inside}" if inside else "")),
        ("memory", f"{size(plan['memory']['size'])}: "
                   + ", ".join(span(r["start"], r["end"]) for r in plan["memory"]["regions"])),
        ("vCPUs", cpus),
        ("irqchip", "on: in-kernel PICs, IOAPIC, local APICs, PIT" if platform["irqchip"] else "off"),
        ("BIOS", "kvmrun's BIOS services" if platform["bios"] else "none"),
    ]
    for row in rows:
        table.add_row(Text(row[0], style="bold"), Text(row[1]))
    return f"kvmrun inspect {image['path']}", table


def _segments(plan: Dict[str, Any]) -> Tuple[str, Table]:
    table = _table("segment", "file bytes", "guest", "zeroed", "flags")
    for seg in plan["segments"]:
        offset = seg["file_offset"]
        file_range = "-" if offset is None or not seg["file_size"] else span(offset, offset + seg["file_size"])
        zeroed = span(seg["data_end"], seg["end"]) if seg["end"] > seg["data_end"] else ""
        table.add_row(seg["name"], file_range, span(seg["start"], seg["data_end"]), zeroed, seg["flags"])
    return "Image segments: file -> guest RAM", table


def _structures(plan: Dict[str, Any]) -> Tuple[str, Table]:
    table = _table("what", "guest", "size", "")
    written = {structure["name"] for structure in plan["structures"]}
    for structure in plan["structures"]:
        table.add_row(structure["name"], span(structure["start"], structure["end"]), size(structure["size"]),
                      "written at boot")
    for res in plan["reserved"]:
        if res["what"] not in written:
            table.add_row(res["what"], span(res["start"], res["end"]), size(res["end"] - res["start"]),
                          "kept free for it")
    return "kvmrun's structures", table


def _gdt(entries: List[Dict[str, Any]]) -> Tuple[str, Table]:
    table = _table("selector", "descriptor", "base", "limit", "type", "dpl", "flags", "loaded in")
    for entry in entries:
        flags = " ".join(name for name in ("present", "l", "db", "g") if entry[name]).replace("present", "P")
        table.add_row(f"0x{entry['selector']:02x}", entry["kind"], hex_(entry["base"]), hex_(entry["limit"]),
                      f"0x{entry['type']:x}", str(entry["dpl"]), flags.upper(), " ".join(entry["used_by"]))
    return "GDT (as vCPU 0's GDTR finds it)", table


def _page_tables(tables: Dict[str, Any]) -> Tuple[str, Any]:
    where = tables["tables"]
    title = (f"Page tables: CR3 {hex_(tables['cr3'])}, {tables['levels']}-level paging"
             + (f", tables at {span(where['start'], where['end'])}" if where else ""))
    table = _table("linear", "physical", "pages", "access")
    for run in tables["mappings"]:
        access = "".join(("R", "W" if run["writable"] else "-", "X" if run["executable"] else "-"))
        access += ", user" if run["user"] else ", supervisor"
        table.add_row(span(run["start"], run["end"]), hex_(run["physical"]), size(run["page_size"]), access)
    other = tables.get("without_1g_pages")
    if other is None:
        return title, table
    return title, Group(table, Text(f"A host without 1 GiB pages gets {size(other['page_size'])} pages: tables at "
                                    f"{span(other['start'], other['end'])}."))


def _segment_text(seg: Dict[str, int]) -> str:
    if seg["unusable"]:
        return f"{seg['selector']:#06x} unusable"
    flags = " ".join(name.upper() for name in ("l", "db", "g") if seg[name])
    return (f"{seg['selector']:#06x} base {hex_(seg['base'])} limit {hex_(seg['limit'])} type {seg['type']:x}"
            f"{' ' + flags if flags else ''}{'' if seg['present'] else ' not present'}")


def _flag_text(value: Dict[str, Any]) -> str:
    return f"{hex_(value['value'])} {'|'.join(value['flags'])}".rstrip()


def _vcpus(vcpus: List[Dict[str, Any]]) -> Tuple[str, Table]:
    shown = vcpus[:SHOWN_VCPUS]
    table = _table("", *(f"vCPU {vcpu['index']}" for vcpu in shown))

    def row(name: str, cell) -> None:
        table.add_row(Text(name, style="bold"), *(Text(cell(vcpu)) for vcpu in shown))

    row("starts", lambda v: f"{v['mode']} mode at {hex_(v['entry'])}" if v["runnable"] else "waits for INIT/SIPI")
    for name in shown[0]["regs"]:
        if name == "rflags":          # bit 1 is always set: not worth a name
            row(name, lambda v: _flag_text({**v["rflags"], "flags": [f for f in v["rflags"]["flags"] if f != "1"]}))
        elif any(vcpu["regs"][name] for vcpu in shown) or name == "rip":
            row(name, lambda v, name=name: hex_(v["regs"][name])
                + (f" ({v['points_to'][name]})" if name in v["points_to"] else ""))
    for name in ("cs", "ds", "es", "fs", "gs", "ss", "tr", "ldt"):
        row(name, lambda v, name=name: _segment_text(v["sregs"][name]))
    for name in ("gdt", "idt"):
        row(name + "r", lambda v, name=name: f"base {hex_(v['sregs'][name]['base'])} limit "
                                             f"{hex_(v['sregs'][name]['limit'])}")
    for name in ("cr0", "cr4", "efer"):
        row(name, lambda v, name=name: _flag_text(v["sregs"][name]))
    row("cr3", lambda v: hex_(v["sregs"]["cr3"]))
    row("apic_base", lambda v: hex_(v["sregs"]["apic_base"]))
    return "vCPUs before their first instruction (what boot sets with KVM_SET_REGS and KVM_SET_SREGS)", table


def _devices(devices: List[Dict[str, Any]]) -> Tuple[str, Table]:
    table = _table("where", "device", "model", "why")
    for device in devices:
        if device["space"] == "io":
            where = (f"port 0x{device['start']:x}" if device["end"] - device["start"] == 1 else
                     f"ports 0x{device['start']:x}-0x{device['end'] - 1:x}")
        else:
            where = f"{'MMIO' if device['space'] == 'mmio' else 'RAM'} {span(device['start'], device['end'])}"
        table.add_row(where, device["name"], "KVM" if device["by"] == "kvm" else "kvmrun", device["why"])
    return "Devices", table


def _memory_map(entries: List[Dict[str, Any]]) -> Tuple[str, Table]:
    table = _table("range", "type")
    for entry in entries:
        table.add_row(span(entry["start"], entry["end"]), entry["type"])
    return "Memory map (E820) the guest is given", table
