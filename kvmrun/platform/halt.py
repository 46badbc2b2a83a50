"""Telling that every vCPU has stopped for good once KVM handles HLT itself.

Without an in-kernel local APIC, HLT ends KVM_RUN with KVM_EXIT_HLT. With one, KVM keeps a halted
vCPU inside KVM_RUN until an interrupt wakes it, and the VMM sees nothing. Two steps tell:

1. HaltWatch.all_blocking(): every vCPU's "blocking" statistic is 1, i.e. its thread sleeps in
   KVM waiting for an event. One pread per vCPU, no kick: cheap enough to poll every millisecond.
2. confirm_halted(vcpu), on each vCPU's own thread once a kick has brought it out of KVM_RUN.

Blocking alone is not enough. A vCPU blocks in HLT with interrupts enabled too (an idle loop
waiting for its timer or for input), and an AP blocks while it waits for a SIPI that a running vCPU
may yet send. Only these states are final, and only when every vCPU is in one of them: then
nothing in the machine can wake any (kvmrun's devices raise maskable interrupts only):
- HALTED with RFLAGS.IF clear: only an NMI, INIT or SIPI could wake it, and they come from other
  vCPUs (a guest that programs an IOAPIC pin for NMI delivery is the exception kvmrun accepts);
- UNINITIALIZED or INIT_RECEIVED: an AP that was never started.
The statistics are snapshots: a vCPU may wake between two preads, which is why step 2 reads the
state of a vCPU that is held outside KVM_RUN.
"""
from __future__ import annotations

from ..errors import KvmError, KvmUnavailable
from ..kvm.abi import MpState
from ..kvm.vcpu import Vcpu

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import List, Sequence

BLOCKING = "blocking"
RFLAGS_IF = 1 << 9
_NEVER_STARTED = (MpState.KVM_MP_STATE_UNINITIALIZED, MpState.KVM_MP_STATE_INIT_RECEIVED)


class HaltWatch:
    """Every vCPU's "blocking" statistic, ready to read. Holds one stats file per vCPU, each of
    which keeps the VM alive: close() it before the VM."""

    def __init__(self, vcpus: Sequence[Vcpu]):
        self._files: List = []
        try:
            for vcpu in vcpus:
                try:
                    stats = vcpu.stats()
                except KvmError as err:
                    raise KvmUnavailable(f"halt detection under the irqchip reads each vCPU's "
                                         f"statistics, which this host's KVM does not give ({err})") from None
                self._files.append(stats)
                if BLOCKING not in stats:
                    raise KvmUnavailable("this host's KVM has no 'blocking' vCPU statistic (Linux 5.16 "
                                         "added it): halt detection under the irqchip needs it")
            self._blocking = [stats.stat(BLOCKING) for stats in self._files]
        except BaseException:
            self.close()
            raise

    def all_blocking(self) -> bool:
        for stat in self._blocking:
            if not stat.read():
                return False
        return True

    def close(self) -> None:
        for stats in self._files:
            stats.close()
        self._files = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def confirm_halted(vcpu: Vcpu) -> bool:
    """Whether `vcpu` will never run again, provided every vCPU was seen blocking. Call it on the
    vCPU's own thread while it is out of KVM_RUN (elsewhere the register read waits for it)."""
    state = vcpu.get_mp_state()
    if state in _NEVER_STARTED:
        return True
    return state == MpState.KVM_MP_STATE_HALTED and not vcpu.get_regs().rflags & RFLAGS_IF
