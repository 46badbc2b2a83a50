"""One frozen dataclass per kind of vCPU exit, decoded from kvm_run by KvmRun.decode (kvm/run.py).

The vCPU loop decodes one-byte port writes straight from kvm_run (it is the hot path); every other
exit is turned into one of these before the machine acts on it.
"""
from dataclasses import dataclass
from typing import Tuple


@dataclass(frozen=True)
class IoOut:
    port: int
    size: int
    data: bytes          # count * size bytes, element after element


@dataclass(frozen=True)
class IoIn:
    port: int
    size: int
    count: int


@dataclass(frozen=True)
class MmioRead:
    address: int
    length: int


@dataclass(frozen=True)
class MmioWrite:
    address: int
    data: bytes


@dataclass(frozen=True)
class Hlt:
    pass


@dataclass(frozen=True)
class Shutdown:
    """Triple fault (or another reason the CPU shut down)."""


@dataclass(frozen=True)
class FailEntry:
    hardware_entry_failure_reason: int
    cpu: int


@dataclass(frozen=True)
class InternalError:
    suberror: int
    data: Tuple[int, ...]


@dataclass(frozen=True)
class SystemEvent:
    type: int
    data: Tuple[int, ...]


@dataclass(frozen=True)
class Debug:
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


@dataclass(frozen=True)
class GuestException:
    """KVM_EXIT_EXCEPTION: an exception KVM intercepted and handed to user space."""
    exception: int
    error_code: int


@dataclass(frozen=True)
class Unknown:
    """KVM_EXIT_UNKNOWN: the hardware exited for a reason KVM itself does not know."""
    hardware_exit_reason: int


@dataclass(frozen=True)
class IrqWindowOpen:
    """The guest can take an interrupt now (asked for with kvm_run.request_interrupt_window)."""


@dataclass(frozen=True)
class IoapicEoi:
    """KVM_EXIT_IOAPIC_EOI (split irqchip): the guest ended a level-triggered interrupt."""
    vector: int


@dataclass(frozen=True)
class Interrupted:
    """KVM_RUN returned early: a signal or immediate_exit."""


@dataclass(frozen=True)
class Malformed:
    """An exit whose guest-shaped fields lie outside what api.rst documents; never acted on."""
    reason: int
    why: str


@dataclass(frozen=True)
class Unsupported:
    """An exit reason kvmrun has no dataclass for: reported, never guessed at."""
    reason: int
