"""What this host's KVM can do for a debugger, asked of a throwaway VM the first time it matters.

- Data breakpoints (debug-register watchpoints): real hardware delivers them; a KVM that runs guest
  ring-0 and real-mode code through its instruction emulator (PVM here) never does: the emulator checks
  no data breakpoints. The probe runs `mov byte [0x2000], 1; hlt` in real mode with DR0 watching
  0x2000 for writes and either stops on the write or halts. Without them, the stub single-steps and
  compares the watched bytes instead (kvm_target.py).
- Software breakpoints (int3 with KVM_GUESTDBG_USE_SW_BP): the same emulator cannot run int3 and
  fails the guest. The probe runs `int3; hlt`. Without them, a fifth `break` is refused rather than
  written into the guest as an int3 that would end its run.
"""
from __future__ import annotations

from .debug_registers import DebugRegisters

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Callable, Dict, Sequence

CODE_AT, WATCHED = 0x1000, 0x2000
PROBE_CODE = bytes([0xC6, 0x06, 0x00, 0x20, 0x01,    # mov byte [0x2000], 1
                    0xF4])                           # hlt
INT3_CODE = bytes([0xCC, 0xF4])                      # int3; hlt
# Where a #BP the host gives to the guest instead of to us lands: vector 3 -> 0000:1100, a hlt.
BP_VECTOR_ENTRY, BP_HANDLER = 3 * 4, 0x1100
PROBE_RAM = 0x10000
PROBE_SECONDS = 0.5                                  # a probe that runs longer has its answer: no
_answers: Dict[str, bool] = {}


def host_delivers_data_breakpoints() -> bool:
    """Asked of KVM once per process; False when the probe itself cannot run."""
    return _asked("data", lambda: probe_breakpoint("write", WATCHED))


def host_runs_software_breakpoints() -> bool:
    return _asked("int3", lambda: probe_int3())


def _asked(question: str, probe: Callable[[], bool]) -> bool:
    if question not in _answers:
        try:
            _answers[question] = probe()
        except OSError:                     # KvmError is an OSError too
            _answers[question] = False
    return _answers[question]


def probe_int3() -> bool:
    """Whether `int3` under KVM_GUESTDBG_USE_SW_BP stops the probe's code with a debug exit."""
    from ..kvm import abi
    return _probe_run(INT3_CODE, abi.KVM_GUESTDBG_ENABLE | abi.KVM_GUESTDBG_USE_SW_BP, ())


def probe_breakpoint(kind: str, address: int) -> bool:
    """Whether a debug-register breakpoint of `kind` at `address` stops the probe's code."""
    from ..kvm import abi
    watch = DebugRegisters()
    watch.add(kind, address, 1)
    return _probe_run(PROBE_CODE, abi.KVM_GUESTDBG_ENABLE | abi.KVM_GUESTDBG_USE_HW_BP, watch.debugreg())


def _probe_run(code: bytes, control: int, debugreg: Sequence[int]) -> bool:
    """Run `code` at CODE_AT in real mode under guest debugging: whether it ends in a debug exit."""
    from ..kvm.abi import KvmExit
    from ..kvm.system import open_kvm
    from ..kvm.vm import Vm
    from ..memory import GuestMemory
    import threading
    from ..kvm.kick import install_kick_handler, kick
    with GuestMemory(PROBE_RAM) as ram, open_kvm() as kvm, Vm(kvm) as vm:   # RAM outlives the VM
        ram.write(CODE_AT, code)
        ram.write(BP_VECTOR_ENTRY, BP_HANDLER.to_bytes(2, "little") + bytes(2))
        ram.write(BP_HANDLER, b"\xf4")
        vm.add_memory(0, PROBE_RAM, ram.host_address())
        vcpu = vm.create_vcpu(0)
        try:
            sregs = vcpu.get_sregs()
            sregs.cs.base, sregs.cs.selector = 0, 0
            vcpu.set_sregs(sregs)
            regs = vcpu.get_regs()
            regs.rip, regs.rflags = CODE_AT, 2
            vcpu.set_regs(regs)
            vcpu.set_guest_debug(control, debugreg)
            # A host that loses its way in the probe's code must not hold the debugger up: kicked out.
            install_kick_handler()
            me = threading.get_ident()

            def give_up() -> None:
                vcpu.request_stop()
                kick(me)

            watchdog = threading.Timer(PROBE_SECONDS, give_up)
            watchdog.start()
            try:
                reason = vcpu.run()
            finally:
                watchdog.cancel()
            return reason == KvmExit.KVM_EXIT_DEBUG
        finally:
            vcpu.close()
