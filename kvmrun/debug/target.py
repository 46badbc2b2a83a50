"""What the gdb stub needs from a machine: the abstract Target the protocol side drives.

The server (server.py) speaks gdb's remote serial protocol and calls only these methods; kvmrun's KVM
target implements them over the runtime's vCPU threads, and the tests implement them over a bytearray.
Every call happens on one thread (the host loop's). All-stop: when one vCPU stops, every vCPU stops.
"""
from __future__ import annotations

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Dict, NamedTuple
else:
    from ..named_tuple import NamedTuple

EFAULT = 14


class TargetError(Exception):
    """A request the target cannot do: memory not mapped, outside RAM, a register it refuses...
    The server answers gdb with `E<errno>` (EFAULT, 14, unless the target says otherwise)."""

    def __init__(self, message: str, errno: int = EFAULT):
        super().__init__(message)
        self.errno = errno


class StopEvent(NamedTuple):
    """Why the machine stopped. Every vCPU is stopped when the target reports one.

    For "breakpoint" the stopped vCPU's pc is the breakpoint's address (gdb is told `swbreak:` or
    `hwbreak:`, so it does not move the pc back over an int3 itself)."""
    cpu: int                   # 0-based vCPU index (gdb thread id = cpu + 1)
    reason: str                # "interrupt" (after interrupt()), "step", "breakpoint", "watchpoint",
                               # "fault" (the vCPU faulted; resumed, the run ends with the fault)
    watch_kind: str = ""       # "write" | "read" | "access" for a watchpoint
    watch_address: int = 0     # the data address that triggered a watchpoint


class Target:
    """The machine as gdb sees it. Methods raise NotImplementedError; kvmrun's KVM target subclasses it.

    Addresses are linear (segment base applied; paging, if on, is the target's to walk with the given
    vCPU's page tables)."""
    cpu_count: int

    def architecture(self, cpu: int) -> str:
        """The vCPU's mode as a gdb architecture: "i8086" (real mode), "i386" (protected mode),
        "i386:x86-64" (long mode)."""
        raise NotImplementedError

    def read_registers(self, cpu: int) -> Dict[str, int]:
        """Canonical 64-bit names -> values: rax rbx rcx rdx rsi rdi rbp rsp r8..r15, rip (the LINEAR pc:
        cs.base + rip), eflags, cs ss ds es fs gs (selectors), fs_base gs_base, cr0 cr2 cr3 cr4 cr8 efer."""
        raise NotImplementedError

    def write_registers(self, cpu: int, values: Dict[str, int]) -> None:
        """The same names as read_registers; only the given registers change ("rip" is linear too)."""
        raise NotImplementedError

    def read_memory(self, cpu: int, address: int, length: int) -> bytes:
        """`length` bytes at a linear address; TargetError if any byte is not readable."""
        raise NotImplementedError

    def write_memory(self, cpu: int, address: int, data: bytes) -> None:
        """Write at a linear address; TargetError if any byte is not writable."""
        raise NotImplementedError

    def set_breakpoint(self, kind: str, address: int, length: int) -> bool:
        """kind: "software" (Z0), "hardware" (Z1), "write" (Z2), "read" (Z3), "access" (Z4).
        False: no free resource (gdb gets an E reply); NotImplementedError: this kind is unsupported
        (gdb gets an empty reply and falls back, e.g. to writing int3 itself)."""
        raise NotImplementedError

    def remove_breakpoint(self, kind: str, address: int, length: int) -> bool:
        """Undo set_breakpoint; False if there was no such breakpoint."""
        raise NotImplementedError

    def resume(self, actions: Dict[int, str]) -> None:
        """{cpu: "continue" | "step"}; vCPUs not named stay stopped. Returns at once: the next stop
        is reported later through GdbServer.stopped()."""
        raise NotImplementedError

    def interrupt(self) -> None:
        """Stop every vCPU (all-stop); reported later as StopEvent(reason="interrupt")."""
        raise NotImplementedError

    def detach(self) -> None:
        """Remove every breakpoint and watchpoint and let every vCPU run on."""
        raise NotImplementedError

    def kill(self) -> None:
        """End the run."""
        raise NotImplementedError
