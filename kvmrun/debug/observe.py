"""--trace and --stats: the vCPU loop that traces and counts exits, and what a run records with it.

The default run never comes here: dispatch.fast_loop stays as it is, and a machine runs this loop
instead only when tracing or statistics are asked for (chosen when its vCPU threads start, design.md).
It handles every exit exactly as the fast loop does (one-byte OUTs through the same per-vCPU writer
tables, so KVM's absorption of busy ports starts after the same number of writes), and around that
measures the time inside KVM_RUN and outside it, counts the exit by reason, port or address, and
vCPU, and writes its trace line.

Each vCPU thread counts into its own VcpuCounts: no lock, no shared dict. Counts are bounded (65,536
ports, MMIO_ADDRESSES addresses, then "other"), and so is the trace's queue (trace.TraceOutput).
"""
from __future__ import annotations

import time

from ..devices.bus import DeviceFault, UnhandledAccess
from ..dispatch import KICKED, handle_exit
from ..kvm import abi
from ..kvm.abi import KvmExit
from ..kvm.run import FAST_EXIT, FAST_EXIT_AT, OUT_1_BYTE, fast_io_data_offset
from ..options import OptionError, traced_kinds
from . import trace as lines

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Callable, Dict, Optional, Tuple

    from ..options import BootConfig
    from .stats import RunStats

_EXIT_IO, _EXIT_INTR, _EXIT_HLT = int(KvmExit.KVM_EXIT_IO), int(KvmExit.KVM_EXIT_INTR), int(KvmExit.KVM_EXIT_HLT)
_MMIO_DATA_AT = abi.kvm_run.exit.offset + abi.kvm_run_mmio.data.offset
OUT = 1 << 16                     # a port key's write bit: ports are 16 bits
WRITE = 1                         # an MMIO key's write bit: (address << 1) | WRITE
MMIO_ADDRESSES = 4096             # distinct MMIO keys counted per vCPU; the rest under OTHER
OTHER = -1


class VcpuCounts:
    """One vCPU's exits, written by its own thread only."""
    __slots__ = ("exits", "reasons", "byte_outs", "ports", "port_bytes", "mmio", "guest_ns", "kvmrun_ns")

    def __init__(self) -> None:
        # One-byte OUTs taken inline (the commonest exit) are counted in byte_outs alone; every other
        # exit in `exits` and `reasons`, and port IO among them in `ports` and `port_bytes` too.
        self.byte_outs: Dict[int, int] = {}       # port -> one-byte OUT exits taken inline
        self.exits = 0
        self.reasons: Dict[int, int] = {}         # KVM's exit reason -> exits
        self.ports: Dict[int, int] = {}           # port | OUT for writes -> exits
        self.port_bytes: Dict[int, int] = {}      # the same keys -> bytes moved
        self.mmio: Dict[int, int] = {}            # (address << 1) | WRITE, or OTHER -> exits
        self.guest_ns = 0                         # inside KVM_RUN: the guest, and KVM handling its exits
        self.kvmrun_ns = 0                        # from an exit until the next KVM_RUN: kvmrun handling it


def _refuse_writing_over_inputs(config: "BootConfig") -> None:
    """--trace-file naming the image, the disk or a module would overwrite what the guest boots from."""
    import os
    assert config.trace_file is not None
    inputs = [config.image, config.disk] + [module.path for module in config.modules]
    for path in inputs:
        try:
            same = path is not None and os.path.samefile(config.trace_file, path)
        except (OSError, ValueError):
            same = False                      # not there yet, or not comparable: not the same file
        if same:
            raise OptionError("trace_file", f"cannot be {config.trace_file}: the guest boots from that file, "
                                            "and the trace would overwrite it")


def observe(config: "BootConfig") -> Optional["Observer"]:
    """The observer a run with --trace, --trace-file or --stats needs; None without them. Opens the
    trace file (an OptionError naming --trace-file when it cannot be written)."""
    kinds = traced_kinds(config)
    if not kinds and not config.stats:
        return None
    output = None
    if kinds:
        if config.trace_file is not None:
            _refuse_writing_over_inputs(config)
            try:
                fd = lines.open_trace_file(config.trace_file)
            except OSError as err:
                raise OptionError("trace_file", f"cannot be written: {config.trace_file}: {err.strerror}") from None
            output = lines.TraceOutput(fd, "the trace file")
        else:
            output = lines.TraceOutput(2, "stderr")
    return Observer(kinds, output, config.stats)


class Observer:
    """A run's trace output and exit counts. `loop` is the vCPU loop (runtime.Machine's `loop=`)."""

    def __init__(self, kinds, output: Optional[lines.TraceOutput], stats: bool = False):
        self.kinds = tuple(kinds)
        self.output = output
        self.stats_wanted = stats
        self.counts: Dict[int, VcpuCounts] = {}
        self.trace_exits = output if "exits" in self.kinds else None
        # A BIOS call's own line: with every exit, or on its own (--trace=bios).
        self.bios_trace = output if "exits" in self.kinds or "bios" in self.kinds else None
        self._setup = None
        if output is not None and "setup" in self.kinds:
            from .setup_trace import SetupTrace
            self._setup = SetupTrace(output)
        self.start_ns = time.perf_counter_ns()        # trace times count from here: set-up's too
        self.run_ns = self.start_ns                   # when the vCPUs were let go
        if self._setup is not None:
            self._setup.install(self.start_ns)

    # --- around the run (the machine's thread) ----------------------------------------------------

    def running(self) -> None:
        """The vCPUs are let go: set-up calls are no longer traced, the run's time starts."""
        self._end_setup_trace()
        self.run_ns = time.perf_counter_ns()

    def flush(self) -> None:
        """The host loop's tick: trace lines a vCPU queued are written as far as the reader takes them."""
        if self.output is not None:
            self.output.flush()

    def finish(self, stop_waiting: Callable[[], bool]) -> None:
        """After the run (or a set-up that failed): the rest of the trace, waiting for its reader until
        `stop_waiting()`; a trace file is closed."""
        self._end_setup_trace()
        output = self.output
        if output is not None:
            output.finish(stop_waiting)
            if output.fd > 2:
                import os
                os.close(output.fd)
                output.fd = -1

    def close(self) -> None:
        """However set-up or the run ended: what is left of the trace, without waiting."""
        if self.output is None or self.output.fd >= 0:
            self.finish(lambda: True)

    def _end_setup_trace(self) -> None:
        if self._setup is not None:
            self._setup.uninstall()
            self._setup = None

    def stats(self, vcpus, bus, absorption) -> "RunStats":
        """What the run's exits were, with KVM's own statistics and what it absorbed (after the run,
        the vCPUs still open)."""
        from .stats import run_stats
        return run_stats(self.counts, time.perf_counter_ns() - self.run_ns, vcpus, bus, absorption)

    # --- the vCPU loop (each vCPU's own thread) ---------------------------------------------------

    def loop(self, vcpu, ctx, absorption, shared: Callable[[], bool]):
        """dispatch.fast_loop's contract and handling, traced and counted. One-byte OUTs are counted
        in one dict by port (their reason, size and data are known), and their trace line is made of
        two texts kept per port around the data byte: a few hundred nanoseconds an exit."""
        counts = self.counts.get(vcpu.index)
        if counts is None:
            counts = self.counts[vcpu.index] = VcpuCounts()
        trace = self.trace_exits
        start_ns, index = self.start_ns, vcpu.index
        clock = time.perf_counter_ns
        ioctl, fd, request = vcpu.run_call()
        mapping, head, head_at = vcpu.mapping, FAST_EXIT.unpack_from, FAST_EXIT_AT
        bus = ctx.bus
        writers, byte_writer, access = ctx.writers, bus.byte_writer, ctx.access
        acquire, release = ctx.lock.acquire, ctx.lock.release
        fast_offset = fast_io_data_offset(vcpu.map_size)
        locked = shared()
        drain = absorption.drain if absorption is not None and absorption.live else None
        reasons, byte_outs = counts.reasons, counts.byte_outs
        texts: Dict[int, Tuple[str, str]] = {}      # port -> its one-byte OUT line around the data byte
        guest_ns = kvmrun_ns = 0
        exited = clock()
        try:
            while True:
                entered = clock()
                kvmrun_ns += entered - exited
                try:
                    ioctl(fd, request)
                except InterruptedError:            # a kick: KVM_RUN ended without an exit reason
                    exited = clock()
                    guest_ns += exited - entered
                    counts.exits += 1
                    reasons[_EXIT_INTR] = reasons.get(_EXIT_INTR, 0) + 1
                    if trace is not None:
                        trace(lines.exit_line(exited - start_ns, index, _EXIT_INTR, "(kicked)"))
                    return KICKED
                except BlockingIOError:             # an AP that accepted INIT or SIPI: run it again
                    exited = clock()
                    guest_ns += exited - entered
                    continue
                exited = clock()
                guest_ns += exited - entered
                reason, direction_size, port, count, offset = head(mapping, head_at)
                if drain is not None:
                    drain()
                if reason == _EXIT_IO and direction_size == OUT_1_BYTE and count == 1 and offset == fast_offset:
                    byte_outs[port] = byte_outs.get(port, 0) + 1
                    value = mapping[offset]
                    if trace is not None:
                        text = texts.get(port)
                        if text is None:
                            text = texts[port] = lines.byte_out_texts(index, port, lines.port_owner(bus, port))
                        trace(f"exit: {(exited - start_ns) / 1e6:10.3f}{text[0]}{value:02x}{text[1]}")
                    writer = writers.get(port) or byte_writer(port, access)
                    try:
                        if locked:
                            acquire()
                            try:
                                writer(value)
                            finally:
                                release()
                        else:
                            writer(value)
                    except UnhandledAccess as err:
                        return ctx.fault(reason, f"--strict-io: {err}", at_rip=True)
                    except DeviceFault as err:
                        return ctx.fault(reason, err.summary, err.details, code_at=err.code_at)
                    continue
                counts.exits += 1
                reasons[reason] = reasons.get(reason, 0) + 1
                if reason == _EXIT_INTR:
                    if trace is not None:
                        trace(lines.exit_line(exited - start_ns, index, reason))
                    continue
                if reason == _EXIT_HLT:
                    if trace is not None:
                        trace(lines.exit_line(exited - start_ns, index, reason))
                    action = ctx.on_halt()
                else:
                    exit = ctx.run.decode(reason)
                    self._count(counts, exit)
                    if trace is None:
                        action = handle_exit(ctx, reason, exit)
                    else:
                        action = self._traced(ctx, reason, exit, exited - start_ns, index, trace)
                if action is not None:
                    return action
        finally:
            counts.guest_ns += guest_ns
            counts.kvmrun_ns += kvmrun_ns + clock() - exited

    @staticmethod
    def _count(counts: VcpuCounts, exit) -> None:
        from ..kvm import exits
        kind = type(exit)
        if kind is exits.IoOut or kind is exits.IoIn:
            key = exit.port | OUT if kind is exits.IoOut else exit.port
            moved = len(exit.data) if kind is exits.IoOut else exit.size * exit.count
            counts.ports[key] = counts.ports.get(key, 0) + 1
            counts.port_bytes[key] = counts.port_bytes.get(key, 0) + moved
        elif kind is exits.MmioRead or kind is exits.MmioWrite:
            key = exit.address << 1 | (WRITE if kind is exits.MmioWrite else 0)
            mmio = counts.mmio
            if key not in mmio and len(mmio) >= MMIO_ADDRESSES:
                key = OTHER
            mmio[key] = mmio.get(key, 0) + 1

    @staticmethod
    def _traced(ctx, reason: int, exit, ns: int, index: int, trace) -> object:
        """handle_exit, and the exit's line: before handling it for writes (a BIOS call's own line
        follows its exit's), after it for reads (the line shows what the guest read)."""
        from ..kvm import exits
        kind = type(exit)
        bus = ctx.bus
        if kind is exits.IoOut:
            trace(lines.exit_line(ns, index, reason, lines.port_io("out", exit.port, exit.size, exit.data,
                                                                   lines.port_owner(bus, exit.port))))
            return handle_exit(ctx, reason, exit)
        if kind is exits.MmioWrite:
            trace(lines.exit_line(ns, index, reason, lines.mmio("write", exit.address, exit.data,
                                                                lines.mmio_owner(bus, exit.address, len(exit.data)))))
            return handle_exit(ctx, reason, exit)
        action = handle_exit(ctx, reason, exit)
        if kind is exits.IoIn:
            data = ctx.run.io_out_data(exit.size * exit.count) or b""
            trace(lines.exit_line(ns, index, reason, lines.port_io("in", exit.port, exit.size, data,
                                                                   lines.port_owner(bus, exit.port))))
        elif kind is exits.MmioRead:
            data = bytes(ctx.run.buffer[_MMIO_DATA_AT:_MMIO_DATA_AT + exit.length])
            trace(lines.exit_line(ns, index, reason, lines.mmio("read", exit.address, data,
                                                                lines.mmio_owner(bus, exit.address, exit.length))))
        else:
            trace(lines.exit_line(ns, index, reason, lines.other_exit(exit)))
        return action
