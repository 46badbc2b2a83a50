"""Vcpu: one vCPU file descriptor, its mapped kvm_run, registers, CPUID, LAPIC, MP state and debug
state. Exits are decoded by its KvmRun (run.py)."""
from __future__ import annotations

import fcntl
import mmap
import os

from . import abi
from ._call import ioctl
from .abi import KvmExit
from .ioctl import Ioctl
from .run import KvmRun

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Optional, Sequence

if TYPE_CHECKING:
    from .stats import StatsFile

_KVM_RUN = int(Ioctl.KVM_RUN)


class Vcpu:
    def __init__(self, fd: int, index: int, mmap_size: int):
        self.fd = fd
        self.index = index
        try:
            self._map = mmap.mmap(fd, mmap_size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except OSError:
            os.close(fd)
            raise
        self.map_size = mmap_size
        self.mapping = self._map
        # One ctypes view over the mapping, made once: run() reads exit_reason through it.
        self.kvm_run = abi.kvm_run.from_buffer(self._map)
        # The kvm_run mapping as a KvmRun: exit decoding and the IO/MMIO data, bounds-checked.
        self.run_area = KvmRun(self._map)

    # --- running ---------------------------------------------------------------------------------

    def run(self) -> int:
        """One KVM_RUN; returns kvm_run.exit_reason, or KVM_EXIT_INTR when it came back without an
        exit: a signal cut it short (EINTR), or an AP waiting for SIPI (MP state UNINITIALIZED
        under the in-kernel irqchip) has just accepted INIT or SIPI (EAGAIN). Either way: run again."""
        try:
            fcntl.ioctl(self.fd, _KVM_RUN)   # no argument: the fastest path through CPython
        except (InterruptedError, BlockingIOError):
            return KvmExit.KVM_EXIT_INTR
        return self.kvm_run.exit_reason

    def run_call(self):
        """KVM_RUN as (function, fd, request), for a loop that calls it millions of times: calling
        fcntl.ioctl(fd, request) directly is the fastest path through CPython. It raises
        InterruptedError (a kick) and BlockingIOError (an AP accepted INIT or SIPI): run() says why."""
        return fcntl.ioctl, self.fd, _KVM_RUN

    def request_stop(self) -> None:
        """Make the current or next KVM_RUN return at once (api.rst: KVM_CAP_IMMEDIATE_EXIT)."""
        self.run_area.immediate_exit = True

    def io_out_data(self, length: int) -> Optional[bytes]:
        return self.run_area.io_out_data(length)

    def io_in_complete(self, data: bytes) -> bool:
        """Place the bytes of an IN exit where KVM takes them from on the next KVM_RUN."""
        return self.run_area.io_in_complete(data)

    def decode_exit(self, reason: int):
        """The current exit as one of the named tuples in exits.py (see KvmRun.decode)."""
        return self.run_area.decode(reason)

    def mmio_complete_read(self, data: bytes) -> None:
        """Hand the bytes of an MMIO read back to KVM; they are used on the next KVM_RUN."""
        self.run_area.mmio_complete_read(data)

    # --- state -----------------------------------------------------------------------------------

    def get_regs(self) -> abi.kvm_regs:
        regs = abi.kvm_regs()
        ioctl(self.fd, Ioctl.KVM_GET_REGS, regs)
        return regs

    def set_regs(self, regs: abi.kvm_regs) -> None:
        ioctl(self.fd, Ioctl.KVM_SET_REGS, regs)

    def get_sregs(self) -> abi.kvm_sregs:
        sregs = abi.kvm_sregs()
        ioctl(self.fd, Ioctl.KVM_GET_SREGS, sregs)
        return sregs

    def set_sregs(self, sregs: abi.kvm_sregs) -> None:
        ioctl(self.fd, Ioctl.KVM_SET_SREGS, sregs)

    def set_cpuid(self, entries) -> None:
        buf = abi.cpuid_buffer(len(entries))
        for i, entry in enumerate(entries):
            buf.entries[i] = entry
        ioctl(self.fd, Ioctl.KVM_SET_CPUID2, buf)

    def translate(self, linear: int) -> Optional[int]:
        """Guest linear -> physical address through the vCPU's current paging, None if unmapped."""
        try:
            tr = self.translation(linear)
        except Exception:
            return None
        return tr.physical_address if tr.valid else None

    def translation(self, linear: int) -> abi.kvm_translation:
        """KVM_TRANSLATE's whole answer: physical address, valid, writeable, usermode."""
        tr = abi.kvm_translation(linear_address=linear)
        ioctl(self.fd, Ioctl.KVM_TRANSLATE, tr)
        return tr

    # --- interrupt controller state (in-kernel irqchip) --------------------------------------------

    def get_mp_state(self) -> int:
        """One of abi.MpState (KVM_CAP_MP_STATE): e.g. HALTED while the in-kernel LAPIC holds it in HLT."""
        state = abi.kvm_mp_state()
        ioctl(self.fd, Ioctl.KVM_GET_MP_STATE, state)
        return state.mp_state

    def set_mp_state(self, mp_state: int) -> None:
        """Without an in-kernel irqchip, KVM accepts only KVM_MP_STATE_RUNNABLE."""
        ioctl(self.fd, Ioctl.KVM_SET_MP_STATE, abi.kvm_mp_state(mp_state))

    def get_lapic(self) -> abi.kvm_lapic_state:
        """The local APIC's registers (needs KVM_CREATE_IRQCHIP before this vCPU was created)."""
        state = abi.kvm_lapic_state()
        ioctl(self.fd, Ioctl.KVM_GET_LAPIC, state)
        return state

    def set_lapic(self, state: abi.kvm_lapic_state) -> None:
        ioctl(self.fd, Ioctl.KVM_SET_LAPIC, state)

    def get_vcpu_events(self) -> abi.kvm_vcpu_events:
        """Pending or injected exception, interrupt, NMI, SMI (KVM_CAP_VCPU_EVENTS)."""
        events = abi.kvm_vcpu_events()
        ioctl(self.fd, Ioctl.KVM_GET_VCPU_EVENTS, events)
        return events

    def set_vcpu_events(self, events: abi.kvm_vcpu_events) -> None:
        ioctl(self.fd, Ioctl.KVM_SET_VCPU_EVENTS, events)

    # --- debugging -------------------------------------------------------------------------------

    def set_guest_debug(self, control: int, debugreg: Sequence[int] = ()) -> None:
        """KVM_SET_GUEST_DEBUG (KVM_CAP_SET_GUEST_DEBUG). `control` is KVM_GUESTDBG_* bits (0 turns
        debugging off). With KVM_GUESTDBG_USE_HW_BP, x86 KVM takes breakpoint addresses from
        debugreg[0..3] and their enables from debugreg[7], as DR0-DR3 and DR7. Single steps and
        breakpoints end KVM_RUN with KVM_EXIT_DEBUG (exits.Debug)."""
        if len(debugreg) > 8:
            raise ValueError(f"x86 guest debug has 8 debug registers, not {len(debugreg)}")
        request = abi.kvm_guest_debug(control=control)
        for i, value in enumerate(debugreg):
            request.arch.debugreg[i] = value
        ioctl(self.fd, Ioctl.KVM_SET_GUEST_DEBUG, request)

    def get_debugregs(self) -> abi.kvm_debugregs:
        """The guest's own DR0-DR3, DR6 and DR7 (KVM_CAP_DEBUGREGS)."""
        regs = abi.kvm_debugregs()
        ioctl(self.fd, Ioctl.KVM_GET_DEBUGREGS, regs)
        return regs

    def set_debugregs(self, regs: abi.kvm_debugregs) -> None:
        ioctl(self.fd, Ioctl.KVM_SET_DEBUGREGS, regs)

    def stats(self) -> "StatsFile":
        """This vCPU's binary statistics (KVM_CAP_BINARY_STATS_FD), e.g. "halt_exits", "blocking".
        Close it: it keeps the VM alive."""
        from .stats import StatsFile      # imported when used: start-up time counts
        return StatsFile(ioctl(self.fd, Ioctl.KVM_GET_STATS_FD))

    def close(self) -> None:
        if self.fd < 0:
            return
        # The ctypes views export the mmap's buffer; drop them before closing it.
        del self.kvm_run
        del self.mapping
        self.__dict__.pop("run_area", None)
        self._map.close()
        os.close(self.fd)
        self.fd = -1
