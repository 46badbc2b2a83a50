"""The gdb stub's Target over a running machine: registers and memory of paused vCPUs, breakpoints
in the debug registers, watchpoints, stepping, all-stop.

Everything here runs on the host loop's thread, with every vCPU paused (all-stop), except the
callbacks the runtime makes on a vCPU's own thread (`vcpu_paused`, and the watch check while stepping).

- Registers: read and written on the vCPU's own thread (runtime.on_vcpu); the pc gdb sees is linear,
  CS base + RIP (real mode: CS*16 + IP), so gdb's disassembly and breakpoints use the addresses the
  CPU fetches from.
- Memory: linear addresses through the vCPU's current paging (page_walk.py), page by page, never
  outside guest RAM.
- Breakpoints: gdb's Z0 (software) and Z1 (hardware) take a debug register while one of the four is
  free: that works before paging and where KVM cannot emulate int3 in ring 0; beyond four, Z0 writes
  int3 at the physical address (and memory reads show the guest's own byte) where the host runs int3
  (probe.py), and is refused (gdb says it cannot insert the breakpoint) where it does not. Watchpoints take a debug
  register where the host delivers data breakpoints (probe.py); elsewhere a write watchpoint is served
  by single-stepping while it is set and comparing the watched bytes.
"""
from __future__ import annotations

import os

from ..kvm import abi
from .debug_registers import DebugRegisters
from .page_walk import translate
from .target import StopEvent, Target, TargetError

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Callable, Dict, List, Optional, Tuple

    from ..memory import GuestMemory
    from ..runtime.machine import Machine

INT3 = 0xCC
CR0_PE = 1
EFER_LMA = 1 << 10
GENERAL = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12", "r13",
           "r14", "r15")
SEGMENTS = ("cs", "ss", "ds", "es", "fs", "gs")
CONTROL = ("cr0", "cr2", "cr3", "cr4", "cr8", "efer")
MAX_WATCHED_BYTES = 4096            # single-step watchpoints: what one step's comparison may read
_MASK64 = (1 << 64) - 1


def architecture_of(sregs) -> str:
    if not sregs.cr0 & CR0_PE:
        return "i8086"
    if sregs.efer & EFER_LMA and sregs.cs.l:
        return "i386:x86-64"
    return "i386"


class SteppedWatch:
    """A write watchpoint kept by comparing bytes after each step: its physical pieces and what they
    held when last looked at."""

    def __init__(self, kind: str, address: int, length: int, pieces: List[Tuple[int, int]], mem: "GuestMemory"):
        self.kind = kind
        self.address = address
        self.length = length
        self.pieces = pieces          # (physical address, length), one per page the range touches
        self.mem = mem
        self.seen = self.read()

    def read(self) -> bytes:
        return b"".join(self.mem.read(physical, length) for physical, length in self.pieces)

    def changed(self) -> bool:
        now = self.read()
        if now == self.seen:
            return False
        self.seen = now
        return True


class KvmTarget(Target):
    def __init__(self, runtime: "Machine", mem: "GuestMemory", report: Callable[[StopEvent], None]):
        self.runtime = runtime
        self.mem = mem
        self.report = report                     # the server's stopped(), called on the host loop thread
        self.cpu_count = len(runtime.threads)
        self.registers = DebugRegisters()
        self.software: Dict[int, int] = {}       # physical address -> the guest's byte under our int3
        self.watches: List[SteppedWatch] = []
        self.watch_hit: Optional[SteppedWatch] = None
        self._paused: Optional[Tuple[int, str, int]] = None    # the first vCPU's pause since resuming
        self._pending: Optional[StopEvent] = None
        runtime.on_pause = self.vcpu_paused

    # --- stops ------------------------------------------------------------------------------------

    def vcpu_paused(self, thread) -> None:
        """On the vCPU's thread: a step or breakpoint ended; the host loop reports it (deliver_stop)."""
        if self._paused is None:
            self._paused = (thread.index, thread.why or "step", thread.debug_status)

    def deliver_stop(self) -> None:
        """On the host loop, after a wakeup: once every vCPU is paused, tell gdb why they stopped."""
        if self._pending is None and self._paused is not None:
            if not self.runtime.pause_all(wait=True, timed=True):
                return                           # the run ended meanwhile: gdb hears of the exit
            cpu, why, dr6 = self._paused
            self._pending = self._stop_event(cpu, why, dr6)
        if self._pending is not None:
            event, self._pending, self._paused = self._pending, None, None
            self.report(event)

    def _stop_event(self, cpu: int, why: str, dr6: int) -> StopEvent:
        if why == "watchpoint" and self.watch_hit is not None:
            hit, self.watch_hit = self.watch_hit, None
            return StopEvent(cpu, "watchpoint", hit.kind, hit.address)
        slot = self.registers.hit(dr6)
        if slot is not None and slot[0] != "execute":
            return StopEvent(cpu, "watchpoint", slot[0], slot[1])
        if why == "fault":
            return StopEvent(cpu, "fault")
        return StopEvent(cpu, "step" if why == "step" else "breakpoint")

    def interrupt(self) -> None:
        if self.runtime.pause_all(wait=True, timed=True):
            self._pending = StopEvent(self._first_cpu(), "interrupt")
            self._wake()

    def _first_cpu(self) -> int:
        return 0

    def _wake(self) -> None:
        try:
            os.eventfd_write(self.runtime.wakeup, 1)
        except OSError:
            pass

    # --- running ----------------------------------------------------------------------------------

    def resume(self, actions: Dict[int, str]) -> None:
        self._paused = None
        for watch in self.watches:               # gdb may have written the memory meanwhile
            watch.seen = watch.read()
        keep_stepping = self._check_watches if self.watches else None
        actions = {cpu: action for cpu, action in actions.items() if 0 <= cpu < self.cpu_count}
        if "step" in actions.values():
            # gdb's stepi is `vCont;s:N;c`: step N, let the others run. Here a step is emulated and
            # slow, so the others would run far ahead (to the guest's end) before it completes: the
            # step goes alone, as gdb's `set scheduler-locking step` would have it.
            actions = {cpu: action for cpu, action in actions.items() if action == "step"}
        self.runtime.resume_each(actions, keep_stepping=keep_stepping)

    def _check_watches(self, vcpu) -> Optional[str]:
        """After each step of a vCPU that continues under a stepped watchpoint (its own thread)."""
        for watch in self.watches:
            if watch.changed():
                self.watch_hit = watch
                return "watchpoint"
        return None

    def detach(self) -> None:
        for physical, byte in self.software.items():
            self.mem.write(physical, bytes([byte]))
        self.software.clear()
        self.registers.clear()
        self.watches.clear()
        self._apply_debug()
        self._paused = None
        self.runtime.resume_each({cpu: "continue" for cpu in range(self.cpu_count)})

    def kill(self) -> None:
        import signal
        from ..outcome import Outcome
        self.runtime.finish(Outcome.interrupted(signal.SIGKILL))

    # --- registers --------------------------------------------------------------------------------

    def architecture(self, cpu: int) -> str:
        return architecture_of(self._on(cpu, lambda vcpu: vcpu.get_sregs()))

    def read_registers(self, cpu: int) -> Dict[str, int]:
        regs, sregs = self._on(cpu, lambda vcpu: (vcpu.get_regs(), vcpu.get_sregs()))
        values = {name: getattr(regs, name) for name in GENERAL}
        values["rip"] = (sregs.cs.base + regs.rip) & _MASK64
        values["eflags"] = regs.rflags & 0xFFFFFFFF
        values.update((name, getattr(sregs, name).selector) for name in SEGMENTS)
        values["fs_base"], values["gs_base"] = sregs.fs.base, sregs.gs.base
        values.update((name, getattr(sregs, name)) for name in CONTROL)
        return values

    def write_registers(self, cpu: int, values: Dict[str, int]) -> None:
        def write(vcpu) -> None:
            regs, sregs = vcpu.get_regs(), vcpu.get_sregs()
            for name in GENERAL:
                if name in values:
                    setattr(regs, name, values[name] & _MASK64)
            if "rip" in values:
                regs.rip = (values["rip"] - sregs.cs.base) & _MASK64
            if "eflags" in values:
                regs.rflags = (regs.rflags & ~0xFFFFFFFF) | (values["eflags"] & 0xFFFFFFFF) | 2
            real_mode = not sregs.cr0 & CR0_PE
            for name in SEGMENTS:
                segment = getattr(sregs, name)
                if name in values and real_mode and values[name] != segment.selector:
                    # Real mode: a selector is the base / 16. In protected mode a selector names a
                    # descriptor the guest's GDT holds; kvmrun does not load one for gdb.
                    segment.selector = values[name] & 0xFFFF
                    segment.base = segment.selector << 4
            if "fs_base" in values:
                sregs.fs.base = values["fs_base"] & _MASK64
            if "gs_base" in values:
                sregs.gs.base = values["gs_base"] & _MASK64
            for name in CONTROL:
                if name in values:
                    setattr(sregs, name, values[name] & _MASK64)
            vcpu.set_sregs(sregs)
            vcpu.set_regs(regs)
        try:
            self._on(cpu, write)
        except OSError as err:                  # KVM refused the state (a bad CR0, say)
            raise TargetError(f"KVM refused the registers: {err}", 22) from None

    # --- memory -----------------------------------------------------------------------------------

    def _pieces(self, cpu: int, address: int, length: int) -> List[Tuple[int, int]]:
        """The physical (address, length) pieces of a linear range, through `cpu`'s paging."""
        if length < 0 or address < 0 or address + length > 1 << 64:
            raise TargetError(f"no memory at 0x{address:x} (+{length})")
        sregs = self._on(cpu, lambda vcpu: vcpu.get_sregs())
        read_phys = self._read_phys
        pieces: List[Tuple[int, int]] = []
        while length:
            where = translate(address, sregs.cr0, sregs.cr3, sregs.cr4, sregs.efer, read_phys)
            if where is None:
                raise TargetError(f"0x{address:x} is not mapped")
            chunk = min(length, where.page_size - address % where.page_size)
            if not self.mem.contains(where.physical, chunk):
                raise TargetError(f"0x{address:x} maps to 0x{where.physical:x}, outside guest RAM")
            pieces.append((where.physical, chunk))
            address, length = address + chunk, length - chunk
        return pieces

    def _read_phys(self, physical: int, size: int) -> Optional[bytes]:
        return self.mem.read(physical, size) if self.mem.contains(physical, size) else None

    def read_memory(self, cpu: int, address: int, length: int) -> bytes:
        data = bytearray()
        for physical, chunk in self._pieces(cpu, address, length):
            piece = bytearray(self.mem.read(physical, chunk))
            for at, byte in self.software.items():      # gdb sees the guest's bytes, not our int3s
                if physical <= at < physical + chunk:
                    piece[at - physical] = byte
            data += piece
        return bytes(data)

    def write_memory(self, cpu: int, address: int, data: bytes) -> None:
        offset = 0
        for physical, chunk in self._pieces(cpu, address, len(data)):
            piece = bytearray(data[offset:offset + chunk])
            for at in self.software:                     # the guest's byte changes; our int3 stays
                if physical <= at < physical + chunk:
                    self.software[at] = piece[at - physical]
                    piece[at - physical] = INT3
            self.mem.write(physical, bytes(piece))
            offset += chunk

    # --- breakpoints ------------------------------------------------------------------------------

    def set_breakpoint(self, kind: str, address: int, length: int) -> bool:
        if kind in ("software", "hardware"):
            if self.registers.add("execute", address, 1):
                self._apply_debug()
                return True
            from .probe import host_runs_software_breakpoints
            if kind == "hardware" or not host_runs_software_breakpoints():
                return False                     # an int3 here would end the guest's run, not stop it
            return self._insert_int3(address)
        if kind not in ("write", "read", "access"):
            raise NotImplementedError(kind)
        from .probe import host_delivers_data_breakpoints
        if host_delivers_data_breakpoints():
            if not self.registers.add(kind, address, length):
                return False
            self._apply_debug()
            return True
        if kind != "write":
            return False                         # a read cannot be seen by comparing bytes
        watched = sum(watch.length for watch in self.watches)
        if length <= 0 or watched + length > MAX_WATCHED_BYTES:
            return False
        try:
            pieces = self._pieces(self._first_cpu(), address, length)
        except TargetError:
            return False
        self.watches.append(SteppedWatch(kind, address, length, pieces, self.mem))
        return True

    def remove_breakpoint(self, kind: str, address: int, length: int) -> bool:
        if kind in ("software", "hardware"):
            if self.registers.remove("execute", address, 1):
                self._apply_debug()
                return True
            return kind == "software" and self._remove_int3(address)
        for watch in self.watches:
            if (watch.kind, watch.address, watch.length) == (kind, address, length):
                self.watches.remove(watch)
                return True
        if self.registers.remove(kind, address, length):
            self._apply_debug()
            return True
        return False

    def _physical_byte(self, address: int) -> Optional[int]:
        """Where the byte at linear `address` lies in RAM, through vCPU 0's paging; None if nowhere."""
        try:
            (physical, _), = self._pieces(self._first_cpu(), address, 1)
        except TargetError:
            return None
        return physical

    def _insert_int3(self, address: int) -> bool:
        physical = self._physical_byte(address)
        if physical is None:
            return False
        if physical not in self.software:
            self.software[physical] = self.mem.read(physical, 1)[0]
            self.mem.write(physical, bytes([INT3]))
            self._apply_debug()
        return True

    def _remove_int3(self, address: int) -> bool:
        physical = self._physical_byte(address)
        byte = None if physical is None else self.software.pop(physical, None)
        if physical is None or byte is None:
            return False
        self.mem.write(physical, bytes([byte]))
        self._apply_debug()
        return True

    def _apply_debug(self) -> None:
        control = 0
        if self.registers.used:
            control |= abi.KVM_GUESTDBG_ENABLE | abi.KVM_GUESTDBG_USE_HW_BP
        if self.software:
            control |= abi.KVM_GUESTDBG_ENABLE | abi.KVM_GUESTDBG_USE_SW_BP
        self.runtime.set_guest_debug(control, self.registers.debugreg() if control else ())

    def _on(self, cpu: int, fn):
        if not 0 <= cpu < self.cpu_count:
            raise TargetError(f"no vCPU {cpu}", 3)    # ESRCH
        try:
            return self.runtime.on_vcpu(cpu, fn)
        except RuntimeError as err:             # the vCPU is not paused (the run ended)
            raise TargetError(str(err), 16) from None     # EBUSY
