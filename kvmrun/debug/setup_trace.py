"""--trace=setup: each KVM call that sets the machine up, with its arguments decoded.

Every ioctl kvmrun makes goes through kvm/_call.ioctl, which calls `_call.tracer` when one is set (and
costs one test of None otherwise). SetupTrace is that tracer from the start of set-up until the vCPUs
are let go; it takes the calls of the thread that installed it only, so another machine set up at the
same time in the same process (kvmrun.run from two threads) is not in this one's trace.
"""
from __future__ import annotations

from ..diagnostics import CR0_FLAGS, CR4_FLAGS, EFER_FLAGS, RFLAGS_FLAGS, decode_flags
from ..kvm import _call, abi
from ..sync import get_ident
from .trace import milliseconds

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Callable, Dict, List, Optional

SEGMENTS = ("cs", "ds", "es", "fs", "gs", "ss", "tr", "ldt")
GENERAL = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")
MEMORY_FLAGS = {0: "LOG_DIRTY_PAGES", 1: "READONLY"}


class SetupTrace:
    def __init__(self, output: Callable[[str], None]):
        self.output = output
        self.start_ns = 0
        self.thread = get_ident()
        self._previous: Optional[Callable[..., None]] = None

    def install(self, start_ns: int) -> None:
        """From now on, this thread's KVM calls, timed from `start_ns` (perf_counter_ns)."""
        self.start_ns = start_ns
        self._previous = _call.tracer
        _call.tracer = self

    def uninstall(self) -> None:
        previous = self._previous
        if _call.tracer is self:
            _call.tracer = previous

    def __call__(self, fd: int, request, arg, result) -> None:
        if get_ident() != self.thread:
            return
        import time
        for line in call_lines(request, arg, result):
            self.output(f"setup: {milliseconds(time.perf_counter_ns() - self.start_ns)} {line}")


def call_lines(request, arg, result) -> List[str]:
    """One ioctl as text: its name, its argument decoded, what it returned (or `failed: why` when
    `result` is the OSError it raised). A call with much to say (KVM_SET_SREGS) takes several lines,
    the first naming it."""
    import os
    name = getattr(request, "name", f"ioctl 0x{int(request):x}")
    decode = _DECODERS.get(name)
    parts = decode(arg, result) if decode is not None else ([_plain(arg, result)])
    first, more = parts[0], parts[1:]
    if isinstance(result, OSError):
        first += f" failed: {os.strerror(result.errno or 0)}"
    head = f"{name} {first}".rstrip()
    return [head] + [f"  {line}" for line in more]


def _returned(result) -> str:
    return f"-> {result}" if isinstance(result, int) and not isinstance(result, bool) else ""


def _plain(arg, result) -> str:
    shown = f"0x{arg:x}" if isinstance(arg, int) and arg else ""
    return " ".join(part for part in (shown, _returned(result) if result else "") if part)


def size_text(size: int) -> str:
    """`128 MiB`, `4 KiB`, `1536 bytes`: whole binary units where they fit."""
    for shift, unit in ((30, "GiB"), (20, "MiB"), (10, "KiB")):
        if size >= 1 << shift and size % (1 << shift) == 0:
            return f"{size >> shift} {unit}"
    return f"{size} bytes"


def memory_region(region: abi.kvm_userspace_memory_region) -> str:
    """`slot 0: guest 0x0-0x7ffffff (128 MiB) at host 0x7f..., flags LOG_DIRTY_PAGES`."""
    end = region.guest_phys_addr + region.memory_size - 1
    flags = decode_flags(region.flags, MEMORY_FLAGS) if region.flags else "none"
    return (f"slot {region.slot}: guest 0x{region.guest_phys_addr:x}-0x{end:x} ({size_text(region.memory_size)}) "
            f"at host 0x{region.userspace_addr:x}, flags {flags}")


def segment(name: str, seg: abi.kvm_segment) -> str:
    """`cs 0008 base 0x0 limit 0xffffffff type 0xb s1 dpl0 p1 db0 l1 g1`, or `unusable`."""
    if seg.unusable:
        return f"{name} {seg.selector:04x} unusable"
    return (f"{name} {seg.selector:04x} base 0x{seg.base:x} limit 0x{seg.limit:x} type 0x{seg.type:x} s{seg.s} "
            f"dpl{seg.dpl} p{seg.present} db{seg.db} l{seg.l} g{seg.g}")


def sregs_lines(sregs: abi.kvm_sregs) -> List[str]:
    """The control registers with their flags' names, EFER, the segments and descriptor tables."""
    return [
        f"cr0 0x{sregs.cr0:x} [{decode_flags(sregs.cr0, CR0_FLAGS)}] cr3 0x{sregs.cr3:x} "
        f"cr4 0x{sregs.cr4:x} [{decode_flags(sregs.cr4, CR4_FLAGS)}] efer 0x{sregs.efer:x} "
        f"[{decode_flags(sregs.efer, EFER_FLAGS)}] apic_base 0x{sregs.apic_base:x}",
        *(segment(name, getattr(sregs, name)) for name in SEGMENTS),
        f"gdt base 0x{sregs.gdt.base:x} limit 0x{sregs.gdt.limit:x}, idt base 0x{sregs.idt.base:x} "
        f"limit 0x{sregs.idt.limit:x}",
    ]


def regs_line(regs: abi.kvm_regs) -> str:
    """RIP, RSP and RFLAGS (with its flags' names), and each other register that is not zero."""
    others = " ".join(f"{name} 0x{getattr(regs, name):x}" for name in GENERAL if getattr(regs, name))
    return (f"rip 0x{regs.rip:x} rsp 0x{regs.rsp:x} rflags 0x{regs.rflags:x} "
            f"[{decode_flags(regs.rflags, RFLAGS_FLAGS)}]" + (f" {others}" if others else ""))


def _name_of(constants, value: int) -> str:
    try:
        return constants(value).name
    except ValueError:
        return str(value)


_DECODERS: Dict[str, Callable[..., List[str]]] = {
    "KVM_GET_API_VERSION": lambda arg, result: [_returned(result)],
    "KVM_CREATE_VM": lambda arg, result: [f"-> fd {result}" if isinstance(result, int) else ""],
    "KVM_CHECK_EXTENSION": lambda arg, result: [f"{_name_of(abi.Cap, arg)} {_returned(result)}"],
    "KVM_GET_VCPU_MMAP_SIZE": lambda arg, result: [_returned(result)],
    "KVM_GET_SUPPORTED_CPUID": lambda arg, result: [f"-> {arg.nent} entries"],
    "KVM_SET_USER_MEMORY_REGION": lambda arg, result: [memory_region(arg)],
    "KVM_SET_TSS_ADDR": lambda arg, result: [f"0x{arg & 0xFFFFFFFF:x}"],
    "KVM_SET_IDENTITY_MAP_ADDR": lambda arg, result: [f"0x{arg.value:x}"],
    "KVM_CREATE_IRQCHIP": lambda arg, result: ["(PICs, IOAPIC, a local APIC per vCPU)"],
    "KVM_CREATE_PIT2": lambda arg, result: [
        "flags " + ("SPEAKER_DUMMY" if arg.flags & abi.KVM_PIT_SPEAKER_DUMMY else f"0x{arg.flags:x}")],
    "KVM_CREATE_VCPU": lambda arg, result: [f"vcpu {arg}" + (f" -> fd {result}" if isinstance(result, int) else "")],
    "KVM_SET_CPUID2": lambda arg, result: [f"{arg.nent} entries"],
    "KVM_SET_SREGS": lambda arg, result: sregs_lines(arg),
    "KVM_GET_SREGS": lambda arg, result: sregs_lines(arg),
    "KVM_SET_REGS": lambda arg, result: [regs_line(arg)],
    "KVM_GET_REGS": lambda arg, result: [regs_line(arg)],
    "KVM_SET_MP_STATE": lambda arg, result: [_name_of(abi.MpState, arg.mp_state)],
    "KVM_GET_MP_STATE": lambda arg, result: [f"-> {_name_of(abi.MpState, arg.mp_state)}"],
    "KVM_SET_LAPIC": lambda arg, result: ["(the local APIC's registers)"],
    "KVM_IRQ_LINE": lambda arg, result: [f"irq {arg.irq} level {arg.level}"],
    "KVM_GET_STATS_FD": lambda arg, result: [f"-> fd {result}" if isinstance(result, int) else ""],
    "KVM_REGISTER_COALESCED_MMIO": lambda arg, result: [
        f"{'port' if arg.pio else 'address'} 0x{arg.addr:x} size {arg.size}"],
    "KVM_IOEVENTFD": lambda arg, result: [
        f"{'port' if arg.flags & abi.KVM_IOEVENTFD_FLAG_PIO else 'address'} 0x{arg.addr:x} size {arg.len} fd {arg.fd}"],
    "KVM_SET_GUEST_DEBUG": lambda arg, result: [f"control 0x{arg.control:x}"],
}
