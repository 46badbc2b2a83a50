"""Turning a vCPU's state into a FaultReport when a guest ends the run badly.

FaultCapture is what exit dispatch calls to build a fault's Outcome (dispatch.ExitContext.fault):
it reads the vCPU's registers on the vCPU's own thread. RealModeHalt tells a HLT in kvmrun's no-BIOS
stubs (an interrupt vector the guest never set) from a plain HLT. Both import what they need only
when called: a clean boot never builds a report.
"""
from __future__ import annotations

from .memory import GuestMemory
from .outcome import Outcome

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Optional


class FaultCapture:
    def __init__(self, vcpu, mem: GuestMemory):
        self.vcpu = vcpu
        self.mem = mem

    def __call__(self, reason: int, summary: str, details=(), at_rip: bool = False, **capture) -> Outcome:
        from .diagnostics import exit_reason_name
        return Outcome.guest_fault(capture_fault(self.vcpu, self.mem, exit_reason_name(reason), summary, details,
                                                 at_rip, **capture))


class RealModeHalt:
    """A HLT exit's meaning for a vCPU that may run in real mode: HALT, or the guest fault of having
    run into a no-BIOS stub. Looked at once per HLT exit, never per exit."""

    def __init__(self, vcpu, mem: GuestMemory, fault: FaultCapture):
        self.vcpu = vcpu
        self.mem = mem
        self.fault = fault

    def __call__(self):
        from .dispatch import HALT
        outcome = self.unhandled_interrupt()
        return HALT if outcome is None else outcome

    def unhandled_interrupt(self) -> Optional[Outcome]:
        vcpu = self.vcpu
        sregs = vcpu.get_sregs()
        if sregs.cr0 & 1:                       # CR0.PE: not real mode, no stubs
            return None
        from .boot import no_bios
        from .kvm.abi import KvmExit
        regs = vcpu.get_regs()
        vector = no_bios.halted_in_stub(sregs.cs.base, regs.rip, self.mem)
        if vector is None:
            return None
        from .vectors import describe
        found = no_bios.unhandled_interrupt(vector, sregs.ss.base, regs.rsp, regs.rax & 0xFFFF, self.mem)
        where = None if found.linear is None else f"{found.cs:04X}:{found.ip:04X}"
        code_at = None if found.linear is None else (found.linear, found.ip, f"{where}, where it was raised")
        return self.fault(KvmExit.KVM_EXIT_HLT, describe(vector, found.how, found.ax >> 8, where),
                          (("vector", f"0x{vector:02x}, at kvmrun's no-BIOS stub F000:{vector:04X}"),),
                          code_at=code_at)


def capture_fault(vcpu, mem: GuestMemory, exit_name: str, summary: str, details=(), at_rip=False,
                  code_at=None, emulation_data=None, kind: str = "guest fault"):
    """Snapshot the vCPU for a FaultReport; what cannot be read is left out rather than guessed.
    `at_rip` ends the summary with RIP as KVM left it at the exit (on the instruction for an IN; KVM
    may already have stepped past an OUT). `code_at` = (linear address, IP, what it is) shows the
    code there instead of at RIP; `emulation_data` are a KVM_INTERNAL_ERROR_EMULATION's data words."""
    from .diagnostics import GENERAL_REGISTERS, SEGMENT_REGISTERS, EmulationFailure, FaultReport, SegmentState, \
        emulation_instruction_bytes, read_code, software_virtualizer
    try:
        regs_struct = vcpu.get_regs()
        sregs = vcpu.get_sregs()
    except Exception:
        return FaultReport(vcpu=vcpu.index, exit=exit_name, summary=summary, details=tuple(details), kind=kind)
    regs = {name: getattr(regs_struct, name) for name in GENERAL_REGISTERS}
    control = {name: getattr(sregs, name) for name in ("cr0", "cr2", "cr3", "cr4", "efer")}
    segments = {}
    for name in SEGMENT_REGISTERS:
        seg = getattr(sregs, name)
        segments[name] = SegmentState(seg.selector, seg.base, seg.limit, seg.type, seg.present, seg.dpl,
                                      seg.db, seg.s, seg.l, seg.g, seg.unusable)
    tables = {"gdt": (sregs.gdt.base, sregs.gdt.limit), "idt": (sregs.idt.base, sregs.idt.limit)}
    linear, code_ip, code_where = (sregs.cs.base + regs["rip"]) & ((1 << 64) - 1), None, "RIP"
    if code_at is not None:
        linear, code_ip, code_where = code_at
    paged = bool(sregs.cr0 & (1 << 31))
    physical, code = read_code(mem, linear, vcpu.translate if paged else None)
    emulation = None
    if emulation_data is not None:
        kvm_bytes = emulation_instruction_bytes(emulation_data)
        real_mode, vm86 = not sregs.cr0 & 1, regs["rflags"] & (1 << 17)
        ring0 = real_mode or (not vm86 and sregs.cs.selector & 3 == 0)      # CPL 0: CS.RPL in protected mode
        emulation = EmulationFailure(instruction=kvm_bytes if kvm_bytes is not None else code[:15],
                                     from_kvm=kvm_bytes is not None, virtualizer=software_virtualizer(),
                                     ring0=bool(ring0))
    if at_rip:
        summary += f" at RIP 0x{regs['rip']:x}"
    return FaultReport(vcpu=vcpu.index, exit=exit_name, summary=summary, details=tuple(details), regs=regs,
                       control=control, segments=segments, tables=tables, code_address=physical, code=code,
                       code_ip=code_ip, code_where=code_where, emulation=emulation, kind=kind)
