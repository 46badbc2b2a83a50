"""Fault reports: a snapshot of the failing vCPU (pure data) and its rendering with rich.

rich is imported only when a report is rendered, so a clean boot never pays for it.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from .kvm.abi import InternalSuberror, KvmExit

CR0_FLAGS = {0: "PE", 1: "MP", 2: "EM", 3: "TS", 4: "ET", 5: "NE", 16: "WP", 18: "AM", 29: "NW",
             30: "CD", 31: "PG"}
CR4_FLAGS = {0: "VME", 1: "PVI", 2: "TSD", 3: "DE", 4: "PSE", 5: "PAE", 6: "MCE", 7: "PGE", 8: "PCE",
             9: "OSFXSR", 10: "OSXMMEXCPT", 11: "UMIP", 12: "LA57", 13: "VMXE", 14: "SMXE",
             16: "FSGSBASE", 17: "PCIDE", 18: "OSXSAVE", 20: "SMEP", 21: "SMAP", 22: "PKE", 23: "CET"}
EFER_FLAGS = {0: "SCE", 8: "LME", 10: "LMA", 11: "NXE", 12: "SVME", 14: "FFXSR"}
RFLAGS_FLAGS = {0: "CF", 1: "1", 2: "PF", 4: "AF", 6: "ZF", 7: "SF", 8: "TF", 9: "IF", 10: "DF", 11: "OF",
                14: "NT", 16: "RF", 17: "VM", 18: "AC", 21: "ID"}

GENERAL_REGISTERS = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp",
                     "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip", "rflags")
SEGMENT_REGISTERS = ("cs", "ds", "es", "fs", "gs", "ss", "tr", "ldt")
CODE_BYTES = 16


def decode_flags(value: int, names: Dict[int, str]) -> str:
    """`CR0_FLAGS` style bit names of the set bits, e.g. "PE|ET|PG"; unnamed set bits as bitN."""
    parts = []
    bit = 0
    while value >> bit:
        if value >> bit & 1:
            parts.append(names.get(bit, f"bit{bit}"))
        bit += 1
    return "|".join(parts) or "0"


def exit_reason_name(reason: int) -> str:
    try:
        return f"{KvmExit(reason).name} ({reason})"
    except ValueError:
        return f"unknown exit reason ({reason})"


def internal_suberror_name(suberror: int) -> str:
    try:
        return f"{InternalSuberror(suberror).name} ({suberror})"
    except ValueError:
        return f"unknown suberror ({suberror})"


def entry_failure_name(reason: int) -> str:
    """VMX basic exit reasons of a failed VM entry (SDM vol. 3C, appendix C); SVM's VMEXIT_INVALID."""
    if reason == (1 << 64) - 1:
        return "SVM VMEXIT_INVALID: invalid guest state"
    basic = reason & 0xFFFF
    known = {33: "invalid guest state", 34: "MSR loading", 41: "machine-check event"}
    what = known.get(basic, f"basic exit reason {basic}")
    return f"0x{reason:x}: VM-entry failure, {what}"


@dataclass(frozen=True)
class SegmentState:
    selector: int
    base: int
    limit: int
    type: int
    present: int
    dpl: int
    db: int
    s: int
    l: int
    g: int
    unusable: int

    def attributes(self) -> str:
        if self.unusable:
            return "unusable"
        flags = [f"type={self.type:x}", f"dpl={self.dpl}"]
        flags += [name for name, on in (("P", self.present), ("S", self.s), ("L", self.l),
                                         ("DB", self.db), ("G", self.g)) if on]
        return " ".join(flags)


@dataclass(frozen=True)
class FaultReport:
    vcpu: int
    exit: str                                  # "KVM_EXIT_SHUTDOWN (8)"
    summary: str                               # one line for humans: what happened
    details: Tuple[Tuple[str, str], ...] = ()  # extra facts: suberror, data words, hardware reason
    regs: Dict[str, int] = field(default_factory=dict)
    control: Dict[str, int] = field(default_factory=dict)     # cr0 cr2 cr3 cr4 efer
    segments: Dict[str, SegmentState] = field(default_factory=dict)
    tables: Dict[str, Tuple[int, int]] = field(default_factory=dict)  # gdt/idt: (base, limit)
    code_address: Optional[int] = None         # guest-physical address of the bytes at RIP
    code: bytes = b""

    def cpu_mode(self) -> str:
        cr0, efer = self.control.get("cr0", 0), self.control.get("efer", 0)
        if not cr0 & 1:
            return "real mode"
        if efer & (1 << 10):
            cs = self.segments.get("cs")
            return "long mode, 64-bit" if cs is not None and cs.l else "long mode, compatibility"
        return "protected mode" + (", paging" if cr0 & (1 << 31) else "")

    def as_text(self, width: int = 100) -> str:
        import io
        from rich.console import Console
        out = io.StringIO()
        Console(file=out, width=width, color_system=None, highlight=False).print(self)
        return out.getvalue()

    def __rich__(self):
        return render(self)


def render(report: FaultReport):
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    header = Text.assemble(("guest fault", "bold red"), f" on vCPU {report.vcpu}: ",
                           (report.exit, "bold"), f"\n{report.summary}")
    parts: List = [header]
    if report.details:
        facts = Table.grid(padding=(0, 2))
        for label, value in report.details:
            facts.add_row(Text(label, style="bold"), value)
        parts.append(facts)
    if report.regs:
        parts.append(Text(f"CPU mode: {report.cpu_mode()}", style="bold"))
        names = [n for n in GENERAL_REGISTERS if n != "rflags"]
        parts.append(Text("\n".join(
            "   ".join(f"{n.upper():>3} {report.regs[n]:016x}" for n in names[row:row + 3])
            for row in range(0, len(names), 3))))
        rflags = report.regs["rflags"]
        parts.append(Text(f"RFLAGS {rflags:016x} [{decode_flags(rflags, RFLAGS_FLAGS)}]"))
    if report.control:
        c = report.control
        parts.append(Text("\n".join([
            f"CR0 {c['cr0']:016x} [{decode_flags(c['cr0'], CR0_FLAGS)}]",
            f"CR2 {c['cr2']:016x}   CR3 {c['cr3']:016x}",
            f"CR4 {c['cr4']:016x} [{decode_flags(c['cr4'], CR4_FLAGS)}]",
            f"EFER {c['efer']:016x} [{decode_flags(c['efer'], EFER_FLAGS)}]"])))
    if report.segments:
        seg_table = Table("seg", "selector", "base", "limit", "attributes", box=None, pad_edge=False)
        for name, seg in report.segments.items():
            seg_table.add_row(name.upper(), f"{seg.selector:04x}", f"{seg.base:016x}", f"{seg.limit:08x}",
                              seg.attributes())
        for name, (base, limit) in report.tables.items():
            seg_table.add_row(name.upper(), "", f"{base:016x}", f"{limit:08x}", "")
        parts.append(seg_table)
    if report.code_address is not None and report.code:
        parts.append(Text(f"code at RIP (physical 0x{report.code_address:x}):\n  {report.code.hex(' ')}"))
    elif report.regs:
        parts.append(Text("code at RIP: not in guest RAM"))
    return Panel(Group(*parts), title="kvmrun", border_style="red", expand=False)
