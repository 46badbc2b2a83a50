"""The BIOS port: where a stub of kvmrun's ROM traps to kvmrun, on the calling vCPU's own thread.

The stub's `out 0F5h, al` leaves IP past it (or on it: rom.stub_vector), which says the vector. The
caller's IP, CS and FLAGS are on the stack where the `int` pushed them: the service's carry (and
int 16h's zero flag) go into that FLAGS, which the stub's IRET restores; the registers go back with
KVM_SET_REGS. A service that must wait gets the ROM's wait loop instead (rom.WAIT_FOR_INTERRUPT),
which calls it again after an interrupt. An OUT to the port from anywhere but a stub is ignored, as
writes to a port nobody claims are.
"""
from __future__ import annotations

import struct

from .. import layout
from ..devices.bus import DeviceFault
from ..outcome import Outcome
from . import rom
from .call import BiosCall, InputEnded, Unsupported, WaitForInterrupt
from .services import REBOOT, Bios, NotAService, trace_line, unsupported_summary

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Callable, Optional

CARRY, ZERO, INTERRUPTS = 1 << 0, 1 << 6, 1 << 9
_REGISTERS = ("eax", "ebx", "ecx", "edx", "esi", "edi", "ebp")
_TRACED = ("eax", "ebx", "ecx", "edx", "esi", "edi", "es")


class BiosTrap:
    """The device on rom.BIOS_PORT. `vcpus[i]` is vCPU i (set once they exist); `finish(outcome)` ends
    the run; `boot_sector()` gives sector 0 again for int 19h; `trace(line)`, when given, is told every
    call and its result; `wrote(address, length)` every write a service makes to guest RAM."""

    def __init__(self, bios: Bios, mem, finish: Callable[[Outcome], None], boot_sector: Callable[[], bytes],
                 trace: Optional[Callable[[str], None]] = None,
                 wrote: Optional[Callable[[int, int], None]] = None):
        self.wrote = wrote                              # (address, length) of each service's write to RAM
        self.bios = bios
        self.mem = mem
        self.finish = finish
        self.boot_sector = boot_sector
        self.trace = trace
        self.vcpus: list = []

    def read(self, offset: int, size: int, access=None) -> int:
        return (1 << (8 * size)) - 1

    def write(self, offset: int, size: int, value: int, access=None) -> None:
        vcpu = self.vcpus[access.vcpu if access is not None else 0]
        sregs = vcpu.get_sregs()
        regs = vcpu.get_regs()
        if sregs.cr0 & 1:
            return                                     # protected mode: not a BIOS call
        # Where in the ROM the OUT was, whatever CS says: FFFF:0000, the usual reboot jump, is F000:FFF0.
        vector = rom.stub_vector(sregs.cs.base + (regs.rip & 0xFFFF) - rom.ROM_ADDR)
        if vector is None:
            return                                     # not a stub: not a BIOS call
        if vector == "reset":
            self.finish(Outcome.reset())
            return
        frame_addr = sregs.ss.base + (regs.rsp & 0xFFFF)
        if not self._stack_holds(frame_addr, 6):
            raise DeviceFault(f"int {vector:02X}h: the caller's stack (SS:SP {sregs.ss.selector:04X}:"
                              f"{regs.rsp & 0xFFFF:04X}) is not writable RAM, so kvmrun cannot return to it")
        ip, cs, flags = struct.unpack("<HHH", self.mem.read(frame_addr, 6))
        call = BiosCall(vector, self.mem, ds=sregs.ds.selector, es=sregs.es.selector, cs=cs, ip=(ip - 2) & 0xFFFF,
                        flags=flags)
        for name in _REGISTERS:
            setattr(call, name, getattr(regs, "r" + name[1:]) & 0xFFFFFFFF)
        call.on_write = self.wrote
        if vector == REBOOT:
            self._reboot(vcpu, regs, sregs)
            return
        before = {name: getattr(call, name) for name in _TRACED} if self.trace else {}
        try:
            self.bios.serve(call)
        except WaitForInterrupt:
            self._wait(vcpu, regs, sregs, vector)
            return
        except Unsupported as err:
            if self.trace:
                self.trace(trace_line(call, before, "not provided"))
            raise DeviceFault(unsupported_summary(call, err), self._details(vector, cs, ip),
                              code_at=self._caller(cs, ip)) from None
        except NotAService:
            raise self._not_a_service(call, regs, sregs) from None
        except InputEnded:
            raise DeviceFault(f"the guest waits for a key (int {vector:02X}h AH={call.ah:02X}h at {call.cs:04X}:"
                              f"{call.ip:04X}), but stdin has ended and every key was read: none can come",
                              self._details(vector, cs, ip), code_at=self._caller(cs, ip)) from None
        if self.trace:
            self.trace(trace_line(call, before))
        for name in _REGISTERS:
            setattr(regs, "r" + name[1:], getattr(call, name))
        vcpu.set_regs(regs)
        if call.es != sregs.es.selector:
            sregs.es.selector, sregs.es.base = call.es, call.es << 4
            vcpu.set_sregs(sregs)
        flags = flags & ~CARRY | (CARRY if call.carry else 0)
        if call.zero_flag is not None:
            flags = flags & ~ZERO | (ZERO if call.zero_flag else 0)
        self.mem.write(frame_addr + 4, struct.pack("<H", flags))

    def _wait(self, vcpu, regs, sregs, vector: int) -> None:
        """Into the ROM's wait loop, with the stub's address pushed for its RET: the call is made again
        after the next interrupt."""
        sp = (regs.rsp - 2) & 0xFFFF
        return_addr = sregs.ss.base + sp
        if not self._stack_holds(return_addr, 2):           # SP 0000: the word wraps to the segment's top
            raise DeviceFault(f"int {vector:02X}h: no room on the caller's stack to wait")
        self.mem.write(return_addr, struct.pack("<H", vector * rom.STUB_SIZE))
        regs.rsp = (regs.rsp & ~0xFFFF) | sp
        regs.rip = rom.WAIT_FOR_INTERRUPT
        vcpu.set_regs(regs)

    def _stack_holds(self, addr: int, length: int) -> bool:
        """Whether the trap may write the caller's stack there: RAM, and not the ROM, which KVM keeps
        read-only for the guest but which kvmrun's own writes would change."""
        return self.mem.contains(addr, length) and not rom.overlaps_rom(addr, length)

    def _reboot(self, vcpu, regs, sregs) -> None:
        """int 19h: sector 0 read again to 0000:7C00 and started as at boot."""
        self.mem.write(layout.REAL_MODE_LOAD_ADDR, self.boot_sector())
        for name in ("cs", "ds", "es", "ss"):
            segment = getattr(sregs, name)
            segment.selector, segment.base = 0, 0
        vcpu.set_sregs(sregs)
        regs.rip, regs.rsp = layout.REAL_MODE_LOAD_ADDR, layout.REAL_MODE_SP
        regs.rdx, regs.rflags = layout.REAL_MODE_BOOT_DRIVE, 0x2 | INTERRUPTS
        vcpu.set_regs(regs)

    def _not_a_service(self, call: BiosCall, regs, sregs) -> DeviceFault:
        """A vector with no service: an exception, or an `int` of a program's own (DOS's int 21h)."""
        from ..boot.no_bios import unhandled_interrupt
        from ..vectors import EXCEPTIONS, service_name
        found = unhandled_interrupt(call.vector, sregs.ss.base, regs.rsp, call.ax, self.mem)
        where = "" if found.linear is None else f" at {found.cs:04X}:{found.ip:04X}"
        if found.how == "int":
            name = service_name(call.vector, call.ah)
            summary = (f"the guest called int {call.vector:02X}h" + (f" ({name})" if name else "") + where +
                       ", which is not a service of kvmrun's BIOS")
        elif found.how in ("int3", "into", "int1"):
            summary = f"the guest executed {found.how}{where}, raising {EXCEPTIONS[call.vector]}, with no handler set"
        elif call.vector in EXCEPTIONS:
            summary = f"the CPU raised {EXCEPTIONS[call.vector]}{where}, and the guest set no handler for it"
        else:
            summary = f"interrupt {call.vector:02X}h was taken{where}, and the guest set no handler for it"
        code_at = None if found.linear is None else (found.linear, found.ip,
                                                     f"{found.cs:04X}:{found.ip:04X}, where it was raised")
        return DeviceFault(summary, (_vector_row(call.vector),), code_at=code_at)

    def _details(self, vector: int, cs: int, ip: int):
        return (_vector_row(vector), ("caller", f"{cs:04X}:{(ip - 2) & 0xFFFF:04X}"))

    def _caller(self, cs: int, ip: int):
        """The `int` instruction (two bytes before the return address), for the report's code listing."""
        at = (ip - 2) & 0xFFFF
        return ((cs << 4) + at, at, f"{cs:04X}:{at:04X}, the call")


def _vector_row(vector: int):
    """The report's row naming the vector and its stub."""
    return ("vector", f"{vector:02X}h, kvmrun's BIOS stub at F000:{vector * rom.STUB_SIZE:04X}")
