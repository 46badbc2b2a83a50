"""One named tuple per kind of vCPU exit, decoded from kvm_run by KvmRun.decode (kvm/run.py). Not
dataclasses: importing dataclasses costs ~45 ms of start-up here (it pulls in inspect, ast and dis),
which every run whose exits leave the fast path (an exit port written with `out dx, eax`) paid.
Being tuples, exits are told apart by their class (`type(exit) is IoOut`), never by ==.

The vCPU loop decodes one-byte port writes straight from kvm_run (it is the hot path); every other
exit is turned into one of these before the machine acts on it.
"""
from __future__ import annotations

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import NamedTuple, Tuple
else:
    from ..named_tuple import NamedTuple


class IoOut(NamedTuple):
    port: int
    size: int
    data: bytes          # count * size bytes, element after element


class IoIn(NamedTuple):
    port: int
    size: int
    count: int           # type: ignore[assignment]  # shadows tuple.count, which no caller needs


class MmioRead(NamedTuple):
    address: int
    length: int


class MmioWrite(NamedTuple):
    address: int
    data: bytes


class Hlt(NamedTuple):
    """The vCPU executed HLT (without an in-kernel LAPIC)."""


class Shutdown(NamedTuple):
    """Triple fault (or another reason the CPU shut down)."""


class FailEntry(NamedTuple):
    hardware_entry_failure_reason: int
    cpu: int


class InternalError(NamedTuple):
    suberror: int
    data: Tuple[int, ...]


class SystemEvent(NamedTuple):
    type: int
    data: Tuple[int, ...]


class Debug(NamedTuple):
    """KVM_EXIT_DEBUG under KVM_SET_GUEST_DEBUG: a single step, or a software or hardware breakpoint.
    `pc` is the linear address of the next instruction (CS base + RIP)."""
    exception: int       # 1 (#DB: single step, hardware breakpoint) or 3 (#BP: int3)
    pc: int
    dr6: int
    dr7: int

    @property
    def single_step(self) -> bool:
        return self.exception == DB_VECTOR and bool(self.dr6 & DR6_BS)


DB_VECTOR = 1
BP_VECTOR = 3
DR6_BS = 1 << 14         # DR6.BS: the #DB came from single-stepping (RFLAGS.TF or KVM's single step)


class GuestException(NamedTuple):
    """KVM_EXIT_EXCEPTION: an exception KVM intercepted and handed to user space."""
    exception: int
    error_code: int


class Unknown(NamedTuple):
    """KVM_EXIT_UNKNOWN: the hardware exited for a reason KVM itself does not know."""
    hardware_exit_reason: int


class IrqWindowOpen(NamedTuple):
    """The guest can take an interrupt now (asked for with kvm_run.request_interrupt_window)."""


class IoapicEoi(NamedTuple):
    """KVM_EXIT_IOAPIC_EOI (split irqchip): the guest ended a level-triggered interrupt."""
    vector: int


class Interrupted(NamedTuple):
    """KVM_RUN returned early: a signal or immediate_exit."""


class Malformed(NamedTuple):
    """An exit whose guest-shaped fields lie outside what api.rst documents; never acted on."""
    reason: int
    why: str


class Unsupported(NamedTuple):
    """An exit reason kvmrun has no class for: reported, never guessed at."""
    reason: int
