"""The machine: guest RAM, vCPU threads, devices, and the run loop that ties them together.

`boot(config, output, input)` is the single path from a BootConfig to an Outcome; the CLI, the Python
API and `kvmrun test` only choose where the serial line goes and how the Outcome is shown.
"""
import contextlib
import ctypes
import errno
import fcntl
import mmap
import os
import signal
import struct
import threading
import time
from typing import Callable, Dict, List, Optional

from . import layout
from .boot.cpu_modes import EntryState, Mode, entry_regs, initial_sregs
from .boot.cpuid import cpuid_for_vcpu
from .boot.elf import is_elf
from .boot.image import plan_image, read_image
from .boot.plan import LoadPlan, apply_plan, check_plan
from .boot.structures import plan_boot_structures, write_boot_structures
from .devices import exit_port, i8042, serial
from .devices.bus import IgnoredPort, IoBus, UnhandledAccess
from .errors import KvmError, LoaderError
from .interrupts import ENDING_SIGNALS, Interrupted, SignalRoute, ending_signals
from .kvm import abi
from .kvm.abi import Cap, KvmExit
from .kvm.coalesced import CoalescedRing
from .kvm.ioctl import Ioctl
from .kvm.kick import install_kick_handler, kick
from .kvm.system import open_kvm
from .kvm.vcpu import Vcpu
from .kvm.vm import Vm
from .memory import GuestMemory, RamLayout
from .options import BootConfig, check_config, refuse_more_cpus_than, refuse_raw_only_options, \
    refuse_smp_in_real_mode
from .outcome import Outcome, Reason

POST_PORT = 0x80
# Exits to one port before KVM is asked to absorb that port's writes. Absorbing is cheap to set up
# but makes tearing the VM down ~15 ms slower on this host (measured), while each absorbed exit saves
# a few µs: worth it for a guest that prints kilobytes, not for one that prints a line.
ABSORB_AFTER_EXITS = 4096
_TICK_SECONDS = 0.05                # how often output that waits (in the coalesced ring, in a buffer) is shown
_KVM_RUN = int(Ioctl.KVM_RUN)
# exit_reason at offset 8 of kvm_run, then (from offset 32) the io member of the exit union:
# direction and size as one little-endian u16, port, count, data_offset.
_EXIT_HEAD = struct.Struct("<I20xHHIQ")
_OUT_1_BYTE = abi.KVM_EXIT_IO_OUT | 1 << 8    # direction OUT, size 1
_EXIT_REASON_OFFSET = abi.kvm_run.exit_reason.offset
_RUN_HEADER_END = abi.kvm_run.exit.offset + ctypes.sizeof(abi.kvm_run_exit)
_EXIT_IO, _EXIT_INTR, _EXIT_HLT = int(KvmExit.KVM_EXIT_IO), int(KvmExit.KVM_EXIT_INTR), int(KvmExit.KVM_EXIT_HLT)


@contextlib.contextmanager
def _about(image: str):
    """Loader errors name the image they are about."""
    try:
        yield
    except LoaderError as err:
        raise LoaderError(f"{image}: {err}") from None


def prepare_image(config: BootConfig) -> "tuple[LoadPlan, Mode]":
    """Read and plan the image, before KVM is touched: bad images are status 2 even without KVM.
    The plan is checked against RAM here, and against kvmrun's boot structures once they are known."""
    check_config(config)
    image = read_image(config.image, config.memory)
    if is_elf(image):
        refuse_raw_only_options(config, "ELF")
    with _about(config.image):
        plan = plan_image(image, config.mode, config.load_addr, config.entry)
        mode = config.mode or plan.default_mode
        check_plan(plan, RamLayout(config.memory), (), mode)
    refuse_smp_in_real_mode(config, mode)
    return plan, mode


def boot(config: BootConfig, output, serial_input=None, handle_signals: bool = False) -> Outcome:
    """Set the machine up for `config`, run it, and say how it ended.

    `config.timeout` counts from the start: setting up and starting 256 vCPU threads is part of the
    run. With `handle_signals` (the CLI; main thread only) SIGINT, SIGTERM, SIGHUP and SIGQUIT end the
    run with 128+N at any point, set-up included (interrupts.py). Only KvmrunError escapes: a KVM call
    or host call that fails while setting up is a KvmError naming it."""
    with contextlib.ExitStack() as handlers:
        route = handlers.enter_context(ending_signals()) if handle_signals else None
        try:
            return _set_up_and_run(config, output, serial_input, route)
        except Interrupted as err:
            return Outcome.interrupted(err.signum)
        finally:
            if route is not None:
                route.record_only()          # tearing down and restoring the terminal go uninterrupted


def _set_up_and_run(config: BootConfig, output, serial_input, route: Optional[SignalRoute]) -> Outcome:
    plan, mode = prepare_image(config)
    deadline = None if config.timeout is None else time.monotonic() + config.timeout
    with contextlib.ExitStack() as stack:
        kvm = stack.enter_context(open_kvm())
        refuse_more_cpus_than(config, kvm.max_vcpus())
        mem = stack.enter_context(GuestMemory(config.memory))
        one_gib = kvm.offers_1g_pages()
        structures = plan_boot_structures(mode, mem, config.cpus, one_gib)
        with _about(config.image):
            check_plan(plan, mem, structures.reserved, mode)
        cr3 = write_boot_structures(mode, mem, one_gib)
        loaded = apply_plan(plan, mem, mode)

        vm = stack.enter_context(Vm(kvm))
        if kvm.check_extension(Cap.KVM_CAP_SET_TSS_ADDR):
            vm.set_tss_addr(layout.KVM_TSS_ADDR)
        host_base = mem.host_address()
        for region in mem.regions:
            vm.add_memory(region.guest_addr, region.size, host_base + region.host_offset)
        absorbers = _absorbers(kvm, vm, stack, config.cpus)
        ring_page = kvm.check_extension(Cap.KVM_CAP_COALESCED_MMIO) if serial.COM1_BASE in absorbers else 0

        cpuid = kvm.supported_cpuid()
        vcpus: List[Vcpu] = []
        for index in range(config.cpus):
            try:
                vcpu = vm.create_vcpu(index)
            except OSError as err:           # mapping its kvm_run (the ioctl itself raises KvmError)
                raise KvmError(f"mapping vCPU {index}'s kvm_run", err.errno or 0, err.strerror or str(err)) from None
            stack.callback(vcpu.close)
            vcpus.append(vcpu)
            vcpu.set_cpuid(cpuid_for_vcpu(cpuid, index))
            sregs = vcpu.get_sregs()             # the reset state, which real mode mostly keeps
            initial_sregs(sregs, mode, loaded.entry, cr3)
            vcpu.set_sregs(sregs)
            state = EntryState(entry=loaded.entry, vcpu_index=index, vcpu_count=config.cpus,
                               ram_kib=config.memory >> 10,
                               stack_top=structures.stack_tops[index] if structures.stack_tops else 0)
            vcpu.set_regs(entry_regs(mode, state))

        machine = Machine(vcpus, mem, output, serial_input, strict_io=config.strict_io, ring_page=ring_page)
        for port, absorb in absorbers.items():
            machine.absorb_after(port, ABSORB_AFTER_EXITS, absorb)
        if route is not None:
            route.target = machine.interrupt
        try:
            return machine.run(deadline)
        finally:
            machine.finish_output(deadline)
            if route is not None:
                route.record_only()


def _absorbers(kvm, vm: Vm, stack: contextlib.ExitStack, cpus: int) -> Dict[int, Callable[[], None]]:
    """Ways to let KVM absorb writes that need no answer, by port, where the host can: POST codes
    through an ioeventfd (they never leave the kernel), THR bytes through the coalesced ring
    (drained in order before any other exit is handled).

    The ring is used with one vCPU only: with four vCPUs writing it at once, this host's KVM handed
    back entries with another vCPU's byte, and once lost a whole ring (170 bytes) — measured with
    guests/flood64.asm. Plain exits never lose a byte."""
    absorbers: Dict[int, Callable[[], None]] = {}
    if kvm.check_extension(Cap.KVM_CAP_IOEVENTFD):
        def absorb_post():
            post_fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
            stack.callback(os.close, post_fd)
            vm.ioeventfd_pio(POST_PORT, 1, post_fd)
        absorbers[POST_PORT] = absorb_post
    if cpus == 1 and kvm.check_extension(Cap.KVM_CAP_COALESCED_PIO) and \
            kvm.check_extension(Cap.KVM_CAP_COALESCED_MMIO):
        absorbers[serial.COM1_BASE] = lambda: vm.coalesce_pio(serial.COM1_BASE, 1)
    return absorbers


class Machine:
    """Runs configured vCPUs, one host thread each, until the first of them ends the run."""

    def __init__(self, vcpus: List[Vcpu], mem: GuestMemory, output, serial_input, strict_io: bool,
                 ring_page: int = 0):
        self.vcpus = vcpus
        self.mem = mem
        self._output = output
        output.on_closed = self._output_closed
        # A vCPU waiting for stdout's reader lets go once the run ends (timeout, signal, another vCPU).
        output.stop_waiting = lambda: self._stopping
        # Writes to COM1's THR that KVM coalesced (see boot()); None where the host cannot, and
        # not live until the port has been absorbed.
        self._ring = CoalescedRing(vcpus[0].mapping, ring_page, mmap.PAGESIZE) if ring_page and vcpus else None
        self._ring_live = False
        # Whether another thread may touch devices or output while a vCPU does: more vCPUs, or the
        # main thread's tick() once the ring is live. A lone vCPU skips the lock (a tenth of an exit).
        self._shared = len(vcpus) > 1
        self.bus = IoBus(strict=strict_io)
        self.uart = serial.Serial16550(output.put, serial_input)
        self.bus.register(serial.COM1_BASE, serial.PORT_COUNT, self.uart)
        self.bus.register(exit_port.EXIT_PORT, 1, exit_port.ExitPort(self._on_exit_port))
        self.bus.register(POST_PORT, 1, IgnoredPort())
        keyboard = i8042.I8042(self._on_reset)
        self.bus.register(i8042.DATA_PORT, 1, keyboard)
        self.bus.register(i8042.COMMAND_PORT, 1, keyboard)

        self._io_lock = threading.Lock()       # device state is touched by one vCPU at a time
        self._state_lock = threading.RLock()   # RLock: a signal handler may run inside it
        self._state_changed = threading.Condition(self._state_lock)
        self._done = threading.Event()
        self._go = threading.Event()           # vCPUs enter the guest together, once all threads started
        self._outcome: Optional[Outcome] = None
        self._stopping: bool = False
        self._signalled = False
        self._halted = 0
        # A vCPU thread is running from when it saw the run not ending until it has left the guest
        # for good: finish() kicks exactly these threads, and run() returns once none is left.
        self._running: List[bool] = [False] * len(vcpus)
        self._thread_ids: List[int] = [0] * len(vcpus)
        self._threads: List[threading.Thread] = []
        self._errors: List[BaseException] = []

    # --- ending the run ----------------------------------------------------------------------------

    def finish(self, outcome: Outcome) -> None:
        """The first call decides the outcome and kicks every running vCPU thread out of KVM_RUN.
        immediate_exit stays set, so a vCPU entering KVM_RUN later leaves it at once: one round of
        kicks is enough (not one per vCPU thread that ends, which cost 128 x 128 kicks)."""
        with self._state_lock:
            if self._outcome is None:
                self._outcome = outcome
            if not self._stopping:
                self._stopping = True
                for vcpu in self.vcpus:
                    vcpu.request_stop()
                current = threading.get_ident()
                for index, running in enumerate(self._running):
                    # Only a running thread has a pthread id that is valid to signal.
                    if running and self._thread_ids[index] != current:
                        kick(self._thread_ids[index])
        self._done.set()

    def interrupt(self, signum: int) -> None:
        """A signal (the CLI's handlers): end with 128+signum, and leave output the reader has not
        taken (see finish_output)."""
        self._signalled = True
        self.finish(Outcome.interrupted(signum))

    def _output_closed(self) -> None:
        error = getattr(self._output, "error", None)
        gone = error is None or error.errno == errno.EPIPE
        self.finish(Outcome.output_closed() if gone else Outcome.output_failed())

    def _on_exit_port(self, value: int) -> None:
        self.finish(Outcome.exit_port(value))

    def _on_reset(self) -> None:
        self.finish(Outcome.reset())

    # --- running -----------------------------------------------------------------------------------

    def run(self, deadline: Optional[float] = None) -> Outcome:
        """Run every vCPU on a thread of its own until the run ends, or `deadline` (time.monotonic())
        passes: starting the threads counts toward it."""
        install_kick_handler()
        try:
            self._start_threads(deadline)
            while not self._done.wait(_TICK_SECONDS if deadline is None
                                      else max(0.0, min(_TICK_SECONDS, deadline - time.monotonic()))):
                if deadline is not None and time.monotonic() >= deadline:
                    self.finish(Outcome.timeout())
                    break
                self.tick()
        finally:
            # Also on the way out of an exception (KeyboardInterrupt in an API caller, even while the
            # threads start): no vCPU thread may outlive the run, or its kvm_run mapping and the
            # guest's RAM would be unmapped under it.
            self._stop_and_join()
        if self._errors:
            err = self._errors[0]
            if isinstance(err, OSError):      # a host call in a vCPU thread (absorbing a port)
                raise KvmError("a host call during the run", err.errno or 0, err.strerror or str(err)) from err
            raise err
        assert self._outcome is not None
        return self._outcome

    def _start_threads(self, deadline: Optional[float]) -> None:
        """Each thread waits at the gate until all are started: 128 guests spinning on two cores
        would otherwise starve the threads still starting (12 s for 128 vCPUs, measured)."""
        for index, vcpu in enumerate(self.vcpus):
            if self._stopping:                   # a signal, or the reader of stdout went away
                break
            if deadline is not None and time.monotonic() >= deadline:
                self.finish(Outcome.timeout())
                break
            thread = threading.Thread(target=self._vcpu_thread, args=(index, vcpu), name=f"vcpu{index}",
                                      daemon=True)
            try:
                thread.start()
            except RuntimeError as err:          # "can't start new thread": the host has no more
                raise KvmError(f"starting vCPU {index}'s thread", errno.EAGAIN, str(err)) from None
            self._threads.append(thread)
        self._go.set()

    def _stop_and_join(self) -> None:
        """End the run if it has not ended, and wait until no vCPU thread is running. Another
        KeyboardInterrupt meanwhile does not cut the wait short; it is raised afterwards."""
        pending: Optional[BaseException] = None
        while True:
            try:
                self.finish(Outcome.interrupted(signal.SIGINT))   # decides nothing if the run ended
                self._go.set()
                with self._state_changed:
                    while any(self._running):
                        self._state_changed.wait(_TICK_SECONDS)
                for thread in self._threads:
                    thread.join()                # past their last touch of the VM: a moment
                break
            except BaseException as err:
                pending = pending or err
        if pending is not None:
            raise pending

    def _vcpu_thread(self, index: int, vcpu: Vcpu) -> None:
        # The ending signals belong to the main thread; only the kick may interrupt KVM_RUN here.
        signal.pthread_sigmask(signal.SIG_BLOCK, ENDING_SIGNALS)
        with self._state_lock:
            if self._stopping:
                return                  # the run ended while this thread started: it never enters
            self._running[index] = True
            self._thread_ids[index] = threading.get_ident()
        try:
            self._go.wait()
            try:
                outcome = self._run_vcpu(vcpu)
            except BaseException as err:      # a kvmrun bug: stop the machine and re-raise in run()
                from .diagnostics import FaultReport
                self._errors.append(err)
                outcome = Outcome.guest_fault(FaultReport(vcpu=index, exit="kvmrun error", summary=repr(err)))
            with self._state_lock:
                if outcome is None:
                    self._halted += 1
                    if self._halted < len(self.vcpus):
                        return
                    outcome = Outcome.halted()
            self.finish(outcome)
        finally:
            with self._state_changed:
                self._running[index] = False
                self._state_changed.notify_all()

    def _run_vcpu(self, vcpu: Vcpu) -> Optional[Outcome]:
        """The hot loop. Returns None when the vCPU halted, an Outcome when it ends the run.

        One-byte OUTs, the commonest exit, are handled inline: the exit is read from kvm_run with
        one unpack, the data byte is bounds-checked against the mapping, and one call reaches the
        device. Everything else goes through _port_io or _slow_exit."""
        ioctl, fd, request = fcntl.ioctl, vcpu.fd, _KVM_RUN
        mapping, map_size, head = vcpu.mapping, vcpu.map_size, _EXIT_HEAD.unpack_from
        writers, byte_writer = self.bus.byte_writers, self.bus.byte_writer
        # Bound acquire/release: measured here at a quarter of the cost of `with lock:`.
        acquire, release = self._io_lock.acquire, self._io_lock.release
        exit_io, exit_intr, exit_hlt, out_1_byte = _EXIT_IO, _EXIT_INTR, _EXIT_HLT, _OUT_1_BYTE
        # KVM puts port IO data one page into kvm_run; the fast path takes exactly that offset (inside
        # the mapping) and leaves any other to _port_io's full bounds check.
        fast_offset = mmap.PAGESIZE if _RUN_HEADER_END <= mmap.PAGESIZE < map_size else -1
        while not self._stopping:
            try:
                ioctl(fd, request)
            except InterruptedError:
                continue
            reason, direction_size, port, count, offset = head(mapping, _EXIT_REASON_OFFSET)
            shared = self._shared                   # False for a lone vCPU whose ring is not live
            if shared and self._ring_live:
                self.drain()
            if reason == exit_io:
                if direction_size == out_1_byte and count == 1 and offset == fast_offset:
                    writer = writers.get(port) or byte_writer(port)
                    try:
                        if shared:          # devices and output are shared with other vCPUs and tick()
                            acquire()
                            try:
                                writer(mapping[offset])
                            finally:
                                release()
                        else:
                            writer(mapping[offset])
                    except UnhandledAccess as err:
                        return self._strict_io_fault(vcpu, reason, err)
                    continue
                outcome = self._port_io(vcpu, direction_size & 0xFF, direction_size >> 8, port, count)
                if outcome is not None:
                    return outcome
                continue
            if reason == exit_intr:
                continue
            if reason == exit_hlt:
                return self._on_hlt(vcpu)
            outcome = self._slow_exit(vcpu, reason)
            if outcome is not None:
                return outcome
        return self._outcome          # another vCPU (or the timeout) ended the run

    def _port_io(self, vcpu: Vcpu, direction: int, size: int, port: int, count: int) -> Optional[Outcome]:
        """Port IO of any width and count (string IO), every size and offset checked first."""
        reason = KvmExit.KVM_EXIT_IO
        if size not in (1, 2, 4) or count == 0:
            return self._fault(vcpu, reason, f"KVM reported port IO of {count} x {size} bytes")
        try:
            if direction == abi.KVM_EXIT_IO_OUT:
                data = vcpu.io_out_data(size * count)
                if data is None:
                    return self._fault(vcpu, reason, "KVM's IO data block lies outside kvm_run")
                with self._io_lock:
                    self.bus.write_block(port, size, data)
            else:
                with self._io_lock:
                    data = self.bus.read_block(port, size, count)
                if not vcpu.io_in_complete(data):
                    return self._fault(vcpu, reason, "KVM's IO data block lies outside kvm_run")
        except UnhandledAccess as err:
            return self._strict_io_fault(vcpu, reason, err)
        return None

    def absorb_after(self, port: int, exits: int, absorb: Callable[[], None]) -> None:
        """After `exits` one-byte writes to `port`, call `absorb` (which asks KVM to keep such
        writes in the kernel) and go back to the plain writer."""
        direct = self.bus.byte_writers[port]
        left = exits

        def counting_writer(value: int) -> None:
            nonlocal left
            direct(value)
            left -= 1
            if left == 0:
                absorb()
                self.bus.byte_writers[port] = direct
                if port == serial.COM1_BASE and self._ring is not None:
                    self._shared = self._ring_live = True

        self.bus.byte_writers[port] = counting_writer

    def drain(self) -> None:
        """Hand the writes KVM coalesced to their devices, in order."""
        if self._ring_live and self._ring.pending():
            with self._io_lock:
                self._ring.drain(self.bus.write_block)

    def tick(self) -> None:
        """The main thread, every _TICK_SECONDS while the guest runs: writes KVM coalesced reach
        their device, and output that waits is shown (console.py says when). It never waits: not
        for a vCPU holding the devices (that one drains the ring itself), nor for stdout's reader."""
        ring = self._ring
        if self._ring_live and ring is not None and ring.pending() and self._io_lock.acquire(blocking=False):
            output = self._output
            try:
                output.waits = False
                ring.drain(self.bus.write_block)
            finally:
                output.waits = True
                self._io_lock.release()
        self._output.show_waiting()

    def finish_output(self, deadline: Optional[float]) -> None:
        """After the run: the rest of the guest's output is written. A slow reader is waited for,
        unless the run was cut short (timeout, signal: then it gets what it takes at once), a signal
        comes meanwhile, or the deadline passes; what it has not taken then is dropped."""
        cut_short = self._outcome is None or self._outcome.reason in (Reason.TIMEOUT, Reason.INTERRUPTED)

        def stop_waiting() -> bool:
            return cut_short or self._signalled or (deadline is not None and time.monotonic() >= deadline)

        self._output.stop_waiting = stop_waiting
        self.drain()
        self._output.flush()

    def _slow_exit(self, vcpu: Vcpu, reason: int) -> Optional[Outcome]:
        # Imported here, not at the top: a clean boot never needs them (start-up time counts).
        from .diagnostics import entry_failure_name, internal_suberror_name
        from .kvm import exits
        exit = vcpu.decode_exit(reason)
        if isinstance(exit, exits.MmioRead):
            try:
                with self._io_lock:
                    vcpu.mmio_complete_read(self.bus.mmio_read(exit.address, exit.length))
            except UnhandledAccess as err:
                return self._strict_io_fault(vcpu, reason, err)
            return None
        if isinstance(exit, exits.MmioWrite):
            try:
                with self._io_lock:
                    self.bus.mmio_write(exit.address, exit.data)
            except UnhandledAccess as err:
                return self._strict_io_fault(vcpu, reason, err)
            return None
        if isinstance(exit, exits.Malformed):
            return self._fault(vcpu, reason, exit.why, at_rip=True)
        if isinstance(exit, exits.Shutdown):
            return self._fault(vcpu, reason, "triple fault: an exception could not be delivered, "
                                             "and the CPU shut down")
        if isinstance(exit, exits.FailEntry):
            return self._fault(vcpu, reason, "the CPU refused to enter the guest (invalid guest state)",
                               (("hardware reason", entry_failure_name(exit.hardware_entry_failure_reason)),
                                ("host cpu", str(exit.cpu))))
        if isinstance(exit, exits.InternalError):
            details = [("suberror", internal_suberror_name(exit.suberror))]
            details += [(f"data[{i}]", f"0x{word:x}") for i, word in enumerate(exit.data)]
            if exit.suberror == abi.InternalSuberror.KVM_INTERNAL_ERROR_EMULATION:
                return self._fault(vcpu, reason, "KVM could not emulate the instruction", tuple(details),
                                   at_rip=True, emulation_data=exit.data)
            return self._fault(vcpu, reason, "KVM could not go on with this guest", tuple(details))
        if isinstance(exit, exits.SystemEvent):
            if exit.type == abi.SystemEventType.KVM_SYSTEM_EVENT_RESET:
                return Outcome.reset()
            try:
                name = abi.SystemEventType(exit.type).name
            except ValueError:
                name = f"type {exit.type}"
            return self._fault(vcpu, reason, f"system event {name}")
        return self._fault(vcpu, reason, "kvmrun does not handle this exit")

    def _on_hlt(self, vcpu: Vcpu) -> Optional[Outcome]:
        """HLT ends this vCPU's part of the run (None). In real mode it may instead have halted in
        kvmrun's no-BIOS stubs, reached through an interrupt vector the guest never set: a guest
        fault, explained. Looked at here, once per vCPU, never per exit."""
        sregs = vcpu.get_sregs()
        if sregs.cr0 & 1:                       # CR0.PE: not real mode, no stubs
            return None
        from .boot import no_bios
        regs = vcpu.get_regs()
        vector = no_bios.halted_in_stub(sregs.cs.base, regs.rip, self.mem)
        if vector is None:
            return None
        from .vectors import describe
        found = no_bios.unhandled_interrupt(vector, sregs.ss.base, regs.rsp, regs.rax & 0xFFFF, self.mem)
        where = None if found.linear is None else f"{found.cs:04X}:{found.ip:04X}"
        code_at = None if found.linear is None else (found.linear, found.ip, f"{where}, where it was raised")
        return self._fault(vcpu, KvmExit.KVM_EXIT_HLT, describe(vector, found.how, found.ax >> 8, where),
                           (("vector", f"0x{vector:02x}, at kvmrun's no-BIOS stub F000:{vector:04X}"),),
                           code_at=code_at)

    def _fault(self, vcpu: Vcpu, reason: int, summary: str, details=(), at_rip: bool = False,
               **capture) -> Outcome:
        from .diagnostics import exit_reason_name
        return Outcome.guest_fault(capture_fault(vcpu, self.mem, exit_reason_name(reason), summary, details,
                                                 at_rip, **capture))

    def _strict_io_fault(self, vcpu: Vcpu, reason: int, err: UnhandledAccess) -> Outcome:
        return self._fault(vcpu, reason, f"--strict-io: {err}", at_rip=True)


def capture_fault(vcpu: Vcpu, mem: GuestMemory, exit_name: str, summary: str, details=(), at_rip=False,
                  code_at=None, emulation_data=None):
    """Snapshot the vCPU for a FaultReport; what cannot be read is left out rather than guessed.
    `at_rip` ends the summary with RIP as KVM left it at the exit (on the instruction for an IN; KVM
    may already have stepped past an OUT). `code_at` = (linear address, IP, what it is) shows the
    code there instead of at RIP; `emulation_data` are a KVM_INTERNAL_ERROR_EMULATION's data words."""
    from .diagnostics import GENERAL_REGISTERS, SEGMENT_REGISTERS, EmulationFailure, FaultReport, SegmentState, \
        emulation_instruction_bytes, read_code, software_virtualizer
    try:
        regs_struct = vcpu.get_regs()
        sregs = vcpu.get_sregs()
    except Exception:
        return FaultReport(vcpu=vcpu.index, exit=exit_name, summary=summary, details=tuple(details))
    regs = {name: getattr(regs_struct, name) for name in GENERAL_REGISTERS}
    control = {name: getattr(sregs, name) for name in ("cr0", "cr2", "cr3", "cr4", "efer")}
    segments = {}
    for name in SEGMENT_REGISTERS:
        seg = getattr(sregs, name)
        segments[name] = SegmentState(seg.selector, seg.base, seg.limit, seg.type, seg.present, seg.dpl,
                                      seg.db, seg.s, seg.l, seg.g, seg.unusable)
    tables = {"gdt": (sregs.gdt.base, sregs.gdt.limit), "idt": (sregs.idt.base, sregs.idt.limit)}
    linear, code_ip, code_where = (sregs.cs.base + regs["rip"]) & ((1 << 64) - 1), None, "RIP"
    if code_at is not None:
        linear, code_ip, code_where = code_at
    paged = bool(sregs.cr0 & (1 << 31))
    physical, code = read_code(mem, linear, vcpu.translate if paged else None)
    emulation = None
    if emulation_data is not None:
        kvm_bytes = emulation_instruction_bytes(emulation_data)
        real_mode, vm86 = not sregs.cr0 & 1, regs["rflags"] & (1 << 17)
        ring0 = real_mode or (not vm86 and sregs.cs.selector & 3 == 0)      # CPL 0: CS.RPL in protected mode
        emulation = EmulationFailure(instruction=kvm_bytes if kvm_bytes is not None else code[:15],
                                     from_kvm=kvm_bytes is not None, virtualizer=software_virtualizer(),
                                     ring0=bool(ring0))
    if at_rip:
        summary += f" at RIP 0x{regs['rip']:x}"
    return FaultReport(vcpu=vcpu.index, exit=exit_name, summary=summary, details=tuple(details), regs=regs,
                       control=control, segments=segments, tables=tables, code_address=physical, code=code,
                       code_ip=code_ip, code_where=code_where, emulation=emulation)
