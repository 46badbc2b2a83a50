"""Fault reports: a snapshot of the failing vCPU (pure data) and its rendering with rich.

rich and capstone (the disassembler) are imported only when a report is rendered, so a clean boot
never pays for them.
"""
import os
from dataclasses import dataclass, field
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

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
CODE_BYTES = 32                    # at RIP: enough for a few instructions (one is at most 15 bytes)
CODE_BYTES_PER_LINE = 16
LISTED_INSTRUCTIONS = 5
RFLAGS_VM = 1 << 17
CR0_PE = 1 << 0
EFER_LMA = 1 << 10


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
    l: int                        # noqa: E741 (kvm_segment.l: the CPU calls it L)
    g: int
    unusable: int

    def attributes(self) -> str:
        if self.unusable:
            return "unusable"
        flags = [f"type={self.type:x}", f"dpl={self.dpl}"]
        flags += [name for name, on in (("P", self.present), ("S", self.s), ("L", self.l),
                                         ("DB", self.db), ("G", self.g)) if on]
        return " ".join(flags)


# --- instructions ---------------------------------------------------------------------------------

PAGE_SIZE = 4096


def read_code(mem, linear: int, translate: Optional[Callable[[int], Optional[int]]] = None,
              length: int = CODE_BYTES) -> Tuple[Optional[int], bytes]:
    """(physical address, bytes) of up to `length` bytes of code from `linear`: as many as guest RAM
    holds there, so code a few bytes before the end of RAM, or of the RAM below the 3 GiB gap, still
    shows. With paging (`translate`: linear -> physical, None if unmapped) each page is translated on
    its own, since the next page need not follow in physical memory. (None, b"") when not even the
    first byte is in RAM."""
    first: Optional[int] = None
    code = b""
    while len(code) < length:
        address = linear + len(code)
        physical = translate(address) if translate is not None else address
        if physical is None:
            break
        room = min(length - len(code), PAGE_SIZE - address % PAGE_SIZE, _ram_left(mem, physical))
        if room <= 0:
            break
        code += mem.read(physical, room)
        if first is None:
            first = physical
    return first, code


def _ram_left(mem, physical: int) -> int:
    """Bytes of guest RAM from `physical` to the end of its region; 0 outside RAM."""
    for region in mem.regions:
        if region.guest_addr <= physical < region.end:
            return region.end - physical
    return 0


def disassemble(code: bytes, address: int, bits: int, limit: int = LISTED_INSTRUCTIONS,
                detail: bool = False) -> list:
    """Up to `limit` capstone instructions decoded from `code` as if it sat at `address`, in 16-,
    32- or 64-bit code; decoding stops at the first byte sequence that is no instruction. Empty when
    capstone cannot be imported: a report without disassembly is still a report."""
    try:
        import capstone                    # only when a report is rendered
    except ImportError:
        return []
    mode = {16: capstone.CS_MODE_16, 32: capstone.CS_MODE_32, 64: capstone.CS_MODE_64}[bits]
    decoder = capstone.Cs(capstone.CS_ARCH_X86, mode)
    decoder.detail = detail
    listed = []
    for insn in decoder.disasm(code, address):
        listed.append(insn)
        if len(listed) == limit:
            break
    return listed


def instruction_text(insn) -> str:
    return f"{insn.mnemonic} {insn.op_str}".strip()


def emulation_instruction_bytes(data: Tuple[int, ...]) -> Optional[bytes]:
    """The instruction bytes KVM hands back with KVM_INTERNAL_ERROR_EMULATION, when it does: data[0]
    holds the flags, and with KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES (bit 0) data[1..2]
    hold insn_size (one byte) and then up to 15 bytes (api.rst, kvm_run.emulation_failure)."""
    if len(data) < 3 or not data[0] & 1:
        return None
    raw = data[1].to_bytes(8, "little") + data[2].to_bytes(8, "little")
    size = min(raw[0], 15)
    return raw[1:1 + size] or None


def software_virtualizer(sys_module: str = "/sys/module") -> Optional[str]:
    """The name of the software virtualizer behind /dev/kvm when the host's KVM emulates guest ring 0,
    else None.

    This host's KVM is PVM: its vendor module kvm_pvm is loaded (/sys/module/kvm_pvm), and it runs
    guest ring-0 and real-mode code through KVM's instruction emulator. Nothing else that KVM
    exposes tells it apart: KVM_GET_SUPPORTED_CPUID offers the usual "KVMKVMKVM" hypervisor leaves
    and no PVM leaf, and the capabilities are those of hardware KVM. Only one KVM vendor module can
    own /dev/kvm, so PVM is named only when kvm_intel and kvm_amd are not loaded."""
    def loaded(module: str) -> bool:
        return os.path.isdir(os.path.join(sys_module, module))
    if loaded("kvm_pvm") and not loaded("kvm_intel") and not loaded("kvm_amd"):
        return "PVM"
    return None


class EmulationFailure(NamedTuple):
    """What KVM could not emulate, and whether this host emulates all guest ring-0 code."""
    instruction: bytes            # KVM's own bytes when it gave them, else guest memory at RIP
    from_kvm: bool
    virtualizer: Optional[str]    # software_virtualizer() on the host that ran the guest
    ring0: bool                   # CPL 0 or real mode: what a software virtualizer emulates


# capstone x86 instruction groups (x86_const.X86_GRP_*) that KVM's emulator has no support for,
# and what a guest can do instead; looked up by name so this module need not import capstone.
_VECTOR_GROUPS = ("SSE1", "SSE2", "SSE3", "SSSE3", "SSE41", "SSE42", "SSE4A", "AVX", "AVX2", "AVX512",
                  "MMX", "3DNOW", "FMA", "FMA4", "F16C", "AES", "PCLMUL", "SHA", "XOP")
_ADVICE = {
    "vector": ("SSE/AVX instructions", "keep vector instructions out of ring-0 code: build it with "
               "-mgeneral-regs-only (gcc, clang)"),
    "x87": ("x87 floating point", "keep floating point out of ring-0 code: build it with -mgeneral-regs-only"),
    "int3": ("int3", "use hardware breakpoints (debug registers DR0-DR3) instead of int3"),
    "cmpxchg16b": ("cmpxchg16b", "keep 16-byte atomics out of ring-0 code (gcc, clang: -mno-cx16)"),
    "xsave": ("saving and restoring extended state (fxsave, xsave, xrstor)",
              "leave the FPU/SSE state alone in ring 0 (a guest built with -mgeneral-regs-only has none "
              "to save)"),
    "interrupt": ("software interrupts and iret outside long mode",
                  "call the handler directly, or run the code in long mode, where interrupt delivery works"),
}
_XSAVE = ("fxsave", "fxrstor", "xsave", "xrstor")


def instruction_kind(insn) -> Optional[str]:
    """The _ADVICE key for a capstone instruction (decoded with detail), None for any other one."""
    mnemonic = insn.mnemonic.split()[-1]          # without a rep/lock prefix
    if mnemonic == "int3":
        return "int3"
    if mnemonic == "cmpxchg16b":
        return "cmpxchg16b"
    if mnemonic.startswith(_XSAVE):              # xsaveopt, xrstors, fxsave64 ...
        return "xsave"
    if mnemonic in ("int", "into", "int1", "iret", "iretd"):
        return "interrupt"
    groups = {insn.group_name(g) for g in insn.groups}
    if groups & {g.lower() for g in _VECTOR_GROUPS} or groups & set(_VECTOR_GROUPS):
        return "vector"
    if "fpu" in groups or "FPU" in groups:
        return "x87"
    return None


def explain_emulation_failure(failure: EmulationFailure, address: int, bits: int) -> List[str]:
    """Lines naming the instruction KVM could not emulate and, where the host emulates ring 0, why
    and what the guest can do about it."""
    listed = disassemble(failure.instruction, address, bits, limit=1, detail=True)
    source = "as KVM reported them" if failure.from_kvm else "read from guest memory at RIP"
    kind = None
    if listed:
        insn = listed[0]
        lines = [f"the instruction: `{instruction_text(insn)}` (bytes {bytes(insn.bytes).hex(' ')}, {source})"]
        kind = instruction_kind(insn)
    elif failure.instruction:
        lines = [f"the instruction: none decodes from bytes {failure.instruction[:15].hex(' ')} ({source})"]
    else:
        lines = ["the instruction: unknown (KVM gave no bytes, and RIP is not in guest RAM)"]
    if failure.virtualizer and failure.ring0:
        what, advice = _ADVICE.get(kind or "", ("this instruction", "avoid it in ring-0 code"))
        if kind == "interrupt" and bits == 64:     # the advice to move to long mode cannot apply here
            what, advice = "this software interrupt", "call the handler directly"
        lines.append(f"This host's KVM is {failure.virtualizer}, a software virtualizer: it runs guest ring-0 "
                     f"and real-mode code through KVM's instruction emulator, which does not handle {what}. "
                     "Hardware virtualization (Intel VT-x, AMD-V) would run it.")
        lines.append(f"What to do: {advice}.")
    elif failure.virtualizer:
        lines.append(f"This host's KVM is {failure.virtualizer}, a software virtualizer; KVM's instruction "
                     "emulator does not handle this instruction.")
    else:
        lines.append("KVM emulates some instructions itself (those touching MMIO, for one) and does not handle "
                     "this one.")
    return lines


# --- the report ------------------------------------------------------------------------------------

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
    code_ip: Optional[int] = None              # the address code[0] has in the guest; None: RIP
    code_where: str = "RIP"                    # what the code is, when not the bytes at RIP
    emulation: Optional[EmulationFailure] = None   # for KVM_INTERNAL_ERROR_EMULATION
    kind: str = "guest fault"                  # or "breakpoint": --until's stop, the same registers shown

    def code_bits(self) -> int:
        """The code size the vCPU executes in: 16 in real and virtual-8086 mode, 64 in 64-bit mode,
        else CS.D's: 32 or 16 (protected mode and compatibility mode alike)."""
        cr0, efer = self.control.get("cr0", 0), self.control.get("efer", 0)
        cs = self.segments.get("cs")
        if not cr0 & CR0_PE or self.regs.get("rflags", 0) & RFLAGS_VM:
            return 16
        if efer & EFER_LMA and cs is not None and cs.l:
            return 64
        return 32 if cs is not None and cs.db else 16

    def first_code_ip(self) -> int:
        return self.regs.get("rip", 0) if self.code_ip is None else self.code_ip

    def explanation(self) -> List[str]:
        """Lines that say why, beyond the summary (capstone is imported here)."""
        if self.emulation is None:
            return []
        return explain_emulation_failure(self.emulation, self.regs.get("rip", 0), self.code_bits())

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

    fault = report.kind == "guest fault"
    header = Text.assemble((report.kind, "bold red" if fault else "bold green"), f" on vCPU {report.vcpu}: ",
                           (report.exit, "bold"), f"\n{report.summary}")
    parts: List = [header]
    explanation = report.explanation()
    if explanation:
        parts.append(Text("\n".join(explanation)))
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
        parts.append(Text(code_listing(report)))
    elif report.regs:
        parts.append(Text(f"code at {report.code_where}: not in guest RAM"))
    return Panel(Group(*parts), title="kvmrun", border_style="red" if fault else "green", expand=False)


def code_listing(report: FaultReport) -> str:
    """The bytes at RIP (or wherever code_where says), then the instructions they hold in the vCPU's
    code size, each with its address; the first, the one that faulted, marked with =>."""
    code = report.code
    lines = [f"code at {report.code_where} (physical 0x{report.code_address:x}, {report.code_bits()}-bit code):"]
    lines += [f"  {code[i:i + CODE_BYTES_PER_LINE].hex(' ')}" for i in range(0, len(code), CODE_BYTES_PER_LINE)]
    first = report.first_code_ip()
    listed = disassemble(code, first, report.code_bits())
    width = {16: 4, 32: 8, 64: 16}[report.code_bits()]
    column = max((len(insn.bytes) * 3 - 1 for insn in listed), default=0)
    for insn in listed:
        mark = "=>" if insn.address == first else "  "
        code_hex = bytes(insn.bytes).hex(" ")
        lines.append(f"{mark} {insn.address:0{width}x}  {code_hex:<{column}}  {instruction_text(insn)}")
    if not listed:
        lines.append("=> (no instruction decodes from these bytes)")
    return "\n".join(lines)
