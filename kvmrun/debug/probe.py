"""Whether this host's KVM delivers data breakpoints (debug-register watchpoints) as debug exits.

Real hardware does; a KVM that runs guest ring-0 and real-mode code through its instruction emulator
(PVM here) never does: the emulator checks no data breakpoints. Asked once, the first time gdb sets a
watchpoint: a throwaway VM runs `mov byte [0x2000], 1; hlt` in real mode with DR0 watching 0x2000 for
writes, and either stops on the write or halts. Without delivery, the stub single-steps and compares
the watched bytes instead (kvm_target.py).
"""
from __future__ import annotations

from .debug_registers import DebugRegisters

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Optional

CODE_AT, WATCHED = 0x1000, 0x2000
PROBE_CODE = bytes([0xC6, 0x06, 0x00, 0x20, 0x01,    # mov byte [0x2000], 1
                    0xF4])                           # hlt
PROBE_RAM = 0x10000
_delivered: Optional[bool] = None


def host_delivers_data_breakpoints() -> bool:
    """Asked of KVM once per process; False when the probe itself cannot run."""
    global _delivered
    if _delivered is None:
        try:
            _delivered = probe_breakpoint("write", WATCHED)
        except OSError:                     # KvmError is an OSError too
            _delivered = False
    return _delivered


def probe_breakpoint(kind: str, address: int) -> bool:
    """Whether a debug-register breakpoint of `kind` at `address` stops the probe's code."""
    from ..kvm import abi
    from ..kvm.abi import KvmExit
    from ..kvm.system import open_kvm
    from ..kvm.vm import Vm
    from ..memory import GuestMemory
    with GuestMemory(PROBE_RAM) as ram, open_kvm() as kvm, Vm(kvm) as vm:   # RAM outlives the VM
        ram.write(CODE_AT, PROBE_CODE)
        vm.add_memory(0, PROBE_RAM, ram.host_address())
        vcpu = vm.create_vcpu(0)
        try:
            sregs = vcpu.get_sregs()
            sregs.cs.base, sregs.cs.selector = 0, 0
            vcpu.set_sregs(sregs)
            regs = vcpu.get_regs()
            regs.rip, regs.rflags = CODE_AT, 2
            vcpu.set_regs(regs)
            watch = DebugRegisters()
            watch.add(kind, address, 1)
            vcpu.set_guest_debug(abi.KVM_GUESTDBG_ENABLE | abi.KVM_GUESTDBG_USE_HW_BP, watch.debugreg())
            for _ in range(4):                       # an interrupted run or two, then the answer
                reason = vcpu.run()
                if reason == KvmExit.KVM_EXIT_DEBUG:
                    return True
                if reason != KvmExit.KVM_EXIT_INTR:
                    return False
            return False
        finally:
            vcpu.close()
