"""What a vCPU does with each exit: handle_exit(ctx, exit) -> an action, and the loops that call it.

An action is one of:
- None: run the guest on (the exit was handled);
- an Outcome: the run ends so (exit port, reset, fault, ...);
- HALT: this vCPU executed HLT and KVM gave it back to kvmrun (no in-kernel LAPIC);
- a Pause: this vCPU stops for the debugger (a single step or a breakpoint ended);
- KICKED: another thread wants the vCPU's attention: its mailbox has a request.

fast_loop is the hot path (design.md: one ioctl, one unpack, one call per one-byte OUT, no allocation);
everything but one-byte OUTs, kicks and HLTs goes through the KvmRun decoder and handle_exit, which is
tested over a bytearray.
"""
from __future__ import annotations

from .devices.bus import NO_ACCESS, Access, DeviceFault, IoBus, UnhandledAccess
from .kvm import abi
from .kvm.abi import KvmExit
from .kvm.run import FAST_EXIT, FAST_EXIT_AT, OUT_1_BYTE, fast_io_data_offset
from .outcome import Outcome

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Any, Callable, NamedTuple, Optional
else:
    from .named_tuple import NamedTuple

if TYPE_CHECKING:
    from .kvm.run import KvmRun
    from .runtime.absorb import KernelAbsorption


class Pause(NamedTuple):
    why: str                      # "step", "breakpoint", "watchpoint"
    debug_status: int = 0         # DR6 as the debug exit gave it: which debug register hit


class _Marker:
    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


HALT = _Marker("HALT")
KICKED = _Marker("KICKED")

_EXIT_IO, _EXIT_INTR, _EXIT_HLT = int(KvmExit.KVM_EXIT_IO), int(KvmExit.KVM_EXIT_INTR), int(KvmExit.KVM_EXIT_HLT)


def halted() -> Any:
    """What a HLT exit means unless a vCPU needs more (real mode's no-BIOS stubs): this vCPU halted."""
    return HALT


class ExitContext:
    """What handling one vCPU's exits needs: its KvmRun, the bus, and how to describe a fault.

    `fault(reason, summary, details=(), at_rip=False, **capture)` builds the Outcome of a guest fault
    (it reads the vCPU's registers; a test passes a function that does not). `on_halt()` says what a HLT exit means:
    HALT, or an Outcome (real mode's no-BIOS stubs name the interrupt a guest ran into)."""

    def __init__(self, run: "KvmRun", bus: IoBus, lock, fault: Callable[..., Outcome],
                 on_halt: Callable[[], Any] = halted, access: Access = NO_ACCESS):
        self.run = run
        self.bus = bus
        self.lock = lock
        self.fault = fault
        self.on_halt = on_halt
        self.access = access                    # who the devices see making the access
        self.writers = bus.byte_writers if access is NO_ACCESS else bus.writers_for(access)


def handle_exit(ctx: ExitContext, reason: int, exit) -> Any:
    """The action for one exit: `reason` as KVM_RUN left it, `exit` as KvmRun decoded it."""
    from .kvm import exits
    kind = type(exit)
    try:
        if kind is exits.IoOut:
            with ctx.lock:
                ctx.bus.write_block(exit.port, exit.size, exit.data, ctx.access)
            return None
        if kind is exits.IoIn:
            with ctx.lock:
                data = ctx.bus.read_block(exit.port, exit.size, exit.count, ctx.access)
            if not ctx.run.io_in_complete(data):
                return ctx.fault(reason, "KVM's IO data block lies outside kvm_run", at_rip=True)
            return None
        if kind is exits.MmioRead:
            with ctx.lock:
                ctx.run.mmio_complete_read(ctx.bus.mmio_read(exit.address, exit.length, ctx.access))
            return None
        if kind is exits.MmioWrite:
            with ctx.lock:
                ctx.bus.mmio_write(exit.address, exit.data, ctx.access)
            return None
    except UnhandledAccess as err:
        return ctx.fault(reason, f"--strict-io: {err}", at_rip=True)
    except DeviceFault as err:
        return ctx.fault(reason, err.summary, err.details, code_at=err.code_at)
    if kind is exits.Interrupted or kind is exits.IrqWindowOpen:
        return None
    if kind is exits.Hlt:
        return ctx.on_halt()
    if kind is exits.Debug:
        # A debug register that hit (B0-B3) outranks the single step that may have come with it.
        return Pause("step" if exit.single_step and not exit.dr6 & 0xF else "breakpoint", exit.dr6)
    return _ending(ctx, reason, exit, exits)


def _ending(ctx: ExitContext, reason: int, exit, exits) -> Outcome:
    """Exits that end the run: faults of every kind, and a reset."""
    from .diagnostics import entry_failure_name, internal_suberror_name
    if isinstance(exit, exits.Malformed):
        return ctx.fault(reason, exit.why, at_rip=True)
    if isinstance(exit, exits.Shutdown):
        return ctx.fault(reason, "triple fault: an exception could not be delivered, and the CPU shut down")
    if isinstance(exit, exits.FailEntry):
        return ctx.fault(reason, "the CPU refused to enter the guest (invalid guest state)",
                         (("hardware reason", entry_failure_name(exit.hardware_entry_failure_reason)),
                          ("host cpu", str(exit.cpu))))
    if isinstance(exit, exits.InternalError):
        details = [("suberror", internal_suberror_name(exit.suberror))]
        details += [(f"data[{i}]", f"0x{word:x}") for i, word in enumerate(exit.data)]
        if exit.suberror == abi.InternalSuberror.KVM_INTERNAL_ERROR_EMULATION:
            return ctx.fault(reason, "KVM could not emulate the instruction", tuple(details), at_rip=True,
                             emulation_data=exit.data)
        return ctx.fault(reason, "KVM could not go on with this guest", tuple(details))
    if isinstance(exit, exits.SystemEvent):
        if exit.type == abi.SystemEventType.KVM_SYSTEM_EVENT_RESET:
            return Outcome.reset()
        try:
            name = abi.SystemEventType(exit.type).name
        except ValueError:
            name = f"type {exit.type}"
        return ctx.fault(reason, f"system event {name}")
    return ctx.fault(reason, "kvmrun does not handle this exit")


def fast_loop(vcpu, ctx: ExitContext, absorption: "Optional[KernelAbsorption]", shared: Callable[[], bool]):
    """Run `vcpu` until an exit asks for more than handling it: returns the action.

    One-byte OUTs, the commonest exit, are handled inline: the exit is read from kvm_run with one
    unpack, the data byte is bounds-checked against the mapping, and one call reaches the device.
    `shared()` is read once per call: whether other threads touch devices too (more vCPUs, or the
    host loop draining the coalesced ring), so the device lock must be taken."""
    ioctl, fd, request = vcpu.run_call()
    mapping, head, head_at = vcpu.mapping, FAST_EXIT.unpack_from, FAST_EXIT_AT
    bus = ctx.bus
    writers, byte_writer, access = ctx.writers, bus.byte_writer, ctx.access
    # Bound acquire/release: measured here at a quarter of the cost of `with lock:`.
    acquire, release = ctx.lock.acquire, ctx.lock.release
    exit_io, exit_intr, exit_hlt, out_1_byte = _EXIT_IO, _EXIT_INTR, _EXIT_HLT, OUT_1_BYTE
    fast_offset = fast_io_data_offset(vcpu.map_size)
    locked = shared()
    # Writes KVM coalesced are drained before anything else. Once the ring goes live (this vCPU's own
    # writer asks KVM to absorb COM1), the absorption kicks this vCPU so the loop starts again with
    # `drain` set: a lone vCPU pays one local test per exit for it, no attribute lookups.
    drain = absorption.drain if absorption is not None and absorption.live else None
    while True:
        try:
            ioctl(fd, request)
        except InterruptedError:
            return KICKED
        except BlockingIOError:             # an AP that accepted INIT or SIPI: run it again
            continue
        reason, direction_size, port, count, offset = head(mapping, head_at)
        if drain is not None:
            drain()
        if reason == exit_io and direction_size == out_1_byte and count == 1 and offset == fast_offset:
            writer = writers.get(port) or byte_writer(port, access)
            try:
                if locked:          # devices and output are shared with other vCPUs or the host loop
                    acquire()
                    try:
                        writer(mapping[offset])
                    finally:
                        release()
                else:
                    writer(mapping[offset])
            except UnhandledAccess as err:
                return ctx.fault(reason, f"--strict-io: {err}", at_rip=True)
            except DeviceFault as err:
                return ctx.fault(reason, err.summary, err.details, code_at=err.code_at)
            continue
        if reason == exit_intr:
            continue
        if reason == exit_hlt:
            action = ctx.on_halt()
        else:
            action = handle_exit(ctx, reason, ctx.run.decode(reason))
        if action is not None:
            return action
