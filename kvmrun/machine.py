"""Assembling a machine for a BootConfig and running it: `boot(config, output, input) -> Outcome`.

The single path from options to an outcome; the CLI, the Python API and `kvmrun test` only choose
where the serial line and the screen go and how the Outcome is shown. The steps:
1. plan (boot/prepare.py): image -> boot protocol -> BootSetup, checked before /dev/kvm is opened;
2. the VM: RAM, the setup written into it, the platform the setup needs (platform/), the vCPUs;
3. the devices on the IO bus (a PC's COM1, exit port, i8042, POST port, VGA registers, fw_cfg; on the
   PC platform also the CMOS clock and port 92h), and
   the VGA text window watched through dirty logging (platform/screen_window.py);
4. the run (runtime/): a thread per vCPU, the host loop on this thread for the timeout, stdin,
   output and halt detection;
5. teardown, which the API may hand to a background thread (an in-kernel irqchip takes ~20 ms to tear
   down here: a suite of guests need not wait for it).
"""
from __future__ import annotations

import errno
import time

from . import layout
from .boot.cpuid import cpuid_for_vcpu
from .boot.prepare import plan_image_for, plan_setup
from .boot.setup import BootSetup, apply_setup, vcpu_regs, vcpu_sregs
from .cleanup import Cleanup
from .devices import exit_port, i8042, serial
from .devices.bus import Access, IgnoredPort, IoBus
from .dispatch import ExitContext, fast_loop, halted
from .errors import KvmError
from .fault import FaultCapture, RealModeHalt
from .signals import ENDING_SIGNALS, Interrupted, SignalRoute, ending_signals
from .kvm.abi import Cap
from .kvm.system import open_kvm
from .kvm.vcpu import Vcpu
from .kvm.vm import Vm
from .memory import GuestMemory
from .options import BootConfig, refuse_more_cpus_than
from .outcome import Outcome, Reason
from .runtime.absorb import KernelAbsorption
from .runtime.hostloop import HostLoop
from .runtime.machine import Machine
from .sync import Lock, Thread

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    import queue
    from typing import Callable, List, Optional

TICK_SECONDS = 0.05                 # how often output that waits (in the ring, in a buffer) is shown
# Under the irqchip: how often every vCPU's "blocking" statistic is read (one pread each). Often at
# first, so a short guest's last `cli; hlt` ends the run at once; less often while it keeps running,
# and less still while it idles with interrupts on (each of those checks pauses every vCPU).
HALT_POLL_SECONDS = 0.00025
HALT_POLL_RUNNING_SECONDS = 0.002
HALT_POLL_IDLE_SECONDS = 0.05


def boot(config: BootConfig, output, serial_input=None, handle_signals: bool = False,
         background_teardown: bool = False, on_note: Optional[Callable[[str], None]] = None,
         detach_teardown: bool = False) -> Outcome:
    """Set the machine up for `config`, run it, and say how it ended.

    `config.timeout` counts from the start: setting up and starting 256 vCPU threads is part of the
    run. With `handle_signals` (the CLI; main thread only) SIGINT, SIGTERM, SIGHUP and SIGQUIT end the
    run with 128+N at any point, set-up included (signals.py). `serial_input` is a StdinPump (a
    file descriptor the host loop reads) or anything with ready()/take(). Only KvmrunError escapes: a
    KVM call or host call that fails while setting up is a KvmError naming it."""
    with Cleanup() as handlers:
        route = handlers.enter_context(ending_signals()) if handle_signals else None
        try:
            return _set_up_and_run(config, output, serial_input, route, background_teardown, on_note,
                                   detach_teardown)
        except Interrupted as err:
            return Outcome.interrupted(err.signum)
        finally:
            if route is not None:
                route.record_only()          # tearing down and restoring the terminal go uninterrupted


def _set_up_and_run(config: BootConfig, output, serial_input, route: Optional[SignalRoute],
                    background_teardown: bool, on_note: Optional[Callable[[str], None]],
                    detach_teardown: bool = False) -> Outcome:
    image_boot = plan_image_for(config)
    # Checked before /dev/kvm with the smaller page tables of 1 GiB pages, so an image boots wherever
    # it booted before; planned again below for a host without them.
    setup = plan_setup(config, image_boot, one_gib_pages=True)
    if on_note is not None:
        for note in setup.notes:
            on_note(note)
    deadline = None if config.timeout is None else time.monotonic() + config.timeout
    stack = Cleanup()
    debugging = None
    if config.gdb is not None or config.until is not None:      # before /dev/kvm: a bad symbol is status 2
        from .debug.session import plan_debugging
        debugging = plan_debugging(config, on_note)
        stack.callback(debugging.close)
    observer = None
    try:
        if config.trace or config.trace_file or config.stats:    # exits traced and counted: debug/observe.py
            from .debug.observe import observe
            observer = observe(config)
        kvm = stack.enter_context(open_kvm())
        refuse_more_cpus_than(config, kvm.max_vcpus())
        if not kvm.offers_1g_pages():
            setup = plan_setup(config, image_boot, one_gib_pages=False)
        mem = stack.enter_context(GuestMemory(config.memory))
        apply_setup(setup, mem)
        vm = stack.enter_context(Vm(kvm))
        screen_slot = _add_memory(vm, mem, setup.needs.bios)
        vcpus = _create_vm(kvm, vm, setup, stack)
        return _run(config, setup, kvm, vm, mem, screen_slot, vcpus, output, serial_input, route, deadline, stack,
                    debugging, observer=observer)
    finally:
        if observer is not None:          # here, not with the machine: its teardown may come later, elsewhere
            observer.close()
        if background_teardown:
            TEARDOWN.hand_over(stack.pop_all())
        elif detach_teardown and setup.needs.irqchip:
            close_after_exit(stack.pop_all())
        else:
            stack.close()


def _add_memory(vm: Vm, mem: GuestMemory, read_only_rom: bool) -> int:
    """RAM as memory slots, the VGA text window a logged slot of its own (and a BIOS's ROM a read-only
    one); returns the window's slot."""
    from .platform.memory_slots import memory_slots
    from .platform.screen_window import SCREEN_WINDOW
    windows = [SCREEN_WINDOW]
    if read_only_rom and vm.kvm.check_extension(Cap.KVM_CAP_READONLY_MEM):
        from .bios.rom import READ_ONLY_WINDOW
        windows.append(READ_ONLY_WINDOW)
    host_base = mem.host_address()
    screen_slot = -1
    for region, flags in memory_slots(mem.regions, windows):
        slot = vm.add_memory(region.guest_addr, region.size, host_base + region.host_offset, flags)
        if region.guest_addr == SCREEN_WINDOW.start:
            screen_slot = slot
    return screen_slot


def _create_vm(kvm, vm: Vm, setup: BootSetup, stack: Cleanup) -> List[Vcpu]:
    if kvm.check_extension(Cap.KVM_CAP_SET_TSS_ADDR):
        vm.set_tss_addr(layout.KVM_TSS_ADDR)
    if setup.needs.irqchip:
        from .platform.interrupts import create_interrupt_controllers
        create_interrupt_controllers(kvm, vm)
    cpuid = kvm.supported_cpuid()
    vcpus: List[Vcpu] = []
    for index, start in enumerate(setup.vcpus):
        try:
            vcpu = vm.create_vcpu(index)
        except OSError as err:           # mapping its kvm_run (the ioctl itself raises KvmError)
            raise KvmError(f"mapping vCPU {index}'s kvm_run", err.errno or 0, err.strerror or str(err)) from None
        stack.callback(vcpu.close)
        vcpus.append(vcpu)
        vcpu.set_cpuid(cpuid_for_vcpu(cpuid, index))
        vcpu.set_sregs(vcpu_sregs(start, vcpu.get_sregs()))    # from the reset state: keeps the APIC base
        vcpu.set_regs(vcpu_regs(start))
        if setup.needs.irqchip:
            from .platform.interrupts import set_up_vcpu
            set_up_vcpu(vcpu, setup.needs.ap_start)
    return vcpus


def exit_status(exit_code: Optional[str]) -> Callable[[int], int]:
    """What a write of V to the exit port exits with: V & 0xFF, or (V<<1)|1 as QEMU's isa-debug-exit
    (whose status the host's exit() truncates to 8 bits too)."""
    if exit_code == "qemu":
        return lambda value: ((value << 1) | 1) & 0xFF
    return lambda value: value & 0xFF


class _Devices:
    """A PC's devices as kvmrun's guests see them, on one IO bus: a model for each device that
    platform/devices.py's bus_devices lists, where it says (the list `kvmrun inspect` shows)."""

    def __init__(self, config: BootConfig, vm: Vm, irqchip: bool, output, serial_input, machine_finish):
        from .devices.fw_cfg import FwCfg
        from .devices.vga import VgaRegisters
        from .platform.devices import bus_devices
        self.bus = IoBus(strict=config.strict_io)
        self.lock = Lock()                     # device state is touched by one thread at a time
        set_irq = lambda level: None           # noqa: E731 - no interrupt controller to raise
        if irqchip:
            from .platform.interrupts import IrqLine
            set_irq = IrqLine(serial.COM1_IRQ, vm).set
        self.serial_source = getattr(serial_input, "queue", serial_input)
        self.uart = serial.Serial16550(output.put, self.serial_source, set_irq=set_irq)
        self.vga = VgaRegisters()
        self.rtc = None
        status = exit_status(config.exit_code)
        on_reset = lambda: machine_finish(Outcome.reset())   # noqa: E731
        keyboard = i8042.I8042(on_reset)

        def clock():
            from .devices import cmos
            self.rtc = cmos.Cmos(config.memory)
            return self.rtc

        models = {
            "com1": lambda: self.uart,
            "exit": lambda: exit_port.ExitPort(lambda value: machine_finish(Outcome.exit_port(status(value)))),
            "vga": lambda: self.vga,
            "fw_cfg": lambda: FwCfg(cpus=config.cpus, max_cpus=config.cpus, ram_size=config.memory,
                                    cmdline=config.cmdline),
            "post": IgnoredPort,
            "i8042_data": lambda: keyboard.data,
            "i8042_command": lambda: keyboard.command,
            "port92": lambda: i8042.SystemControlA(on_reset),
            "cmos": clock,
        }
        for device in bus_devices(config, irqchip):
            self.bus.register(device.start, device.size, models[device.key]())

    def input_arrived(self) -> None:
        """New serial input: the UART's interrupt line may rise."""
        with self.lock:
            self.uart.input_arrived()


def _run(config: BootConfig, setup: BootSetup, kvm, vm: Vm, mem: GuestMemory, screen_slot: int, vcpus: List[Vcpu],
         output,
         serial_input, route: Optional[SignalRoute], deadline: Optional[float],
         stack: Cleanup, debugging=None, observer=None) -> Outcome:
    irqchip = setup.needs.irqchip
    runtime: Optional[Machine] = None

    def finish(outcome: Outcome) -> None:       # for the devices, made before the runtime
        assert runtime is not None
        runtime.finish(outcome)

    devices = _Devices(config, vm, irqchip, output, serial_input, finish)
    if setup.needs.bios:
        from .platform.bios import install_bios
        boot_sector = next(blob.data for blob in setup.blobs if blob.name == "boot sector")
        trap = install_bios(devices.bus, config, mem, devices.vga, devices.uart, devices.serial_source,
                            devices.rtc, output.put, finish, bytes(boot_sector), stack,
                            observer.bios_trace if observer is not None else None)
        trap.vcpus = vcpus
    from .platform.screen_window import ScreenWatch
    screen = ScreenWatch(vm, screen_slot, mem, devices.vga, devices.lock)
    absorption = KernelAbsorption(devices.bus, devices.lock, stack, kvm, vm, vcpus, serial.COM1_BASE)
    real_mode = any(start.mode.value == "real" for start in setup.vcpus)
    contexts = []
    for index, vcpu in enumerate(vcpus):
        fault = FaultCapture(vcpu, mem)
        contexts.append(ExitContext(vcpu.run_area, devices.bus, devices.lock, fault,
                                    on_halt=RealModeHalt(vcpu, mem, fault) if real_mode else halted,
                                    access=Access(index, mem)))
    runtime = Machine(vcpus, contexts, absorption, frozenset(ENDING_SIGNALS),
                      loop=observer.loop if observer is not None else fast_loop)
    stack.callback(runtime.close)
    # The host loop touches devices (input, interrupts): with the irqchip, vCPUs always take the lock.
    runtime.shared = runtime.shared or irqchip
    host = HostLoop(runtime)
    stack.callback(host.close)

    signalled = []

    def interrupt(signum: int) -> None:
        signalled.append(signum)
        runtime.finish(Outcome.interrupted(signum))

    def output_closed() -> None:
        error = getattr(output, "error", None)
        gone = error is None or error.errno == errno.EPIPE
        runtime.finish(Outcome.output_closed() if gone else Outcome.output_failed())

    output.on_closed = output_closed
    # A vCPU waiting for stdout's reader lets go once the run ends (timeout, signal, another vCPU).
    output.stop_waiting = lambda: runtime.ending

    def show_output() -> None:
        changed = screen.poll()
        if changed is not None:
            output.show_screen(changed)
        if absorption.live:
            output.waits = False       # the host loop never waits for stdout's reader
            try:
                absorption.drain_if_free()
            finally:
                output.waits = True
        output.show_waiting()

    host.every(TICK_SECONDS, show_output)
    if observer is not None:
        host.every(TICK_SECONDS, observer.flush)
    if irqchip:
        from .platform.halt import HaltWatch
        watch = stack.enter_context(HaltWatch(vcpus))
        host.every(HALT_POLL_SECONDS, HaltDetection(runtime, watch))
    if hasattr(serial_input, "on_readable"):
        _pump_stdin(host, serial_input, devices if irqchip else None)
    if getattr(output, "live_on_terminal", None) and output.live_on_terminal():
        from . import os_signal as signal
        host.on_signal(signal.SIGWINCH, output.terminal_resized)
    if route is not None:
        route.target = interrupt
    if debugging is not None:
        debugging.attach(runtime, mem, host)
    if observer is not None:
        observer.running()
    try:
        runtime.start(deadline)
        host.run(deadline)
    finally:
        # Also on the way out of an exception (KeyboardInterrupt in an API caller): no vCPU thread may
        # outlive the run, or its kvm_run mapping and the guest's RAM would be unmapped under it.
        runtime.stop_and_join()
        _finish_output(output, runtime.outcome, signalled, deadline, absorption, screen)
        if observer is not None:
            observer.finish(output.stop_waiting)  # what the trace's reader did not take during the run
        if debugging is not None:
            debugging.finished(runtime.outcome)
        if route is not None:
            route.record_only()
    if runtime.errors:
        err = runtime.errors[0]
        if isinstance(err, OSError):      # a host call in a vCPU thread (absorbing a port)
            raise KvmError("a host call during the run", err.errno or 0, err.strerror or str(err)) from err
        raise err
    assert runtime.outcome is not None
    if observer is not None and observer.stats_wanted:
        return runtime.outcome._replace(stats=observer.stats(vcpus, devices.bus, absorption))
    return runtime.outcome


def _pump_stdin(host: HostLoop, pump, devices: Optional[_Devices]) -> None:
    """The host loop reads stdin while the UART's queue has room, and stops watching at EOF. A file
    (not pollable) is read by the UART's queue on demand; under the irqchip the host loop reads it
    ahead too, so a guest waiting for COM1's interrupt gets one."""
    if devices is not None:
        pump.on_input = devices.input_arrived
    if not pump.pollable:
        if devices is not None:
            host.every(TICK_SECONDS, pump.on_readable)
            pump.on_readable()
        return
    watching = [False]

    def update() -> None:
        wanted = pump.wants_input()
        if wanted != watching[0]:
            (host.watch(pump.fd, on_readable) if wanted else host.unwatch(pump.fd))
            watching[0] = wanted

    def on_readable() -> None:
        pump.on_readable()
        update()

    update()
    host.every(TICK_SECONDS, update)


def _finish_output(output, outcome: Optional[Outcome], signalled: list, deadline: Optional[float],
                   absorption: KernelAbsorption, screen) -> None:
    """After the run: the rest of the guest's output is written. A slow reader is waited for, unless
    the run was cut short (timeout, signal: then it gets what it takes at once), a signal comes
    meanwhile, or the deadline passes; what it has not taken then is dropped."""
    cut_short = outcome is None or outcome.reason in (Reason.TIMEOUT, Reason.INTERRUPTED)

    def stop_waiting() -> bool:
        return cut_short or bool(signalled) or (deadline is not None and time.monotonic() >= deadline)

    output.stop_waiting = stop_waiting
    absorption.drain()
    final = screen.final()
    if final is not None:
        output.final_screen(final)
    output.flush()


class HaltDetection:
    """Under the in-kernel irqchip KVM keeps a halted vCPU inside KVM_RUN: the run ends with 0 once
    every vCPU is halted with interrupts off (or never started), confirmed on each vCPU's own thread
    (platform/halt.py). Polled every quarter millisecond at first, every 2 ms while the guest runs on;
    while it idles with interrupts on, the confirmations back off to every 50 ms, so an idle guest is
    not paused hundreds of times a second."""

    def __init__(self, runtime: Machine, watch):
        self.runtime = runtime
        self.watch = watch
        self.interval = HALT_POLL_SECONDS

    def __call__(self) -> Optional[float]:
        from .platform.halt import confirm_halted
        runtime = self.runtime
        if runtime.paused_on_request:           # a debugger holds the machine: nobody is halted
            return HALT_POLL_IDLE_SECONDS
        if not self.watch.all_blocking():
            self.interval = min(self.interval * 2, HALT_POLL_RUNNING_SECONDS)
            return self.interval
        if not runtime.pause_all():
            return None
        halted = False
        try:
            halted = all(runtime.on_vcpu(index, confirm_halted) for index in range(len(runtime.threads)))
        finally:
            if halted:
                runtime.finish(Outcome.halted())
            else:
                runtime.resume()
        self.interval = min(max(self.interval, HALT_POLL_RUNNING_SECONDS) * 2, HALT_POLL_IDLE_SECONDS)
        return self.interval


class _Teardown:
    """Closes finished machines (VM, vCPUs, RAM) on background threads, a bounded backlog behind: the
    caller has its result without waiting for KVM to tear an irqchip down. That wait is the kernel's
    (SRCU grace periods, ~15-20 ms here, little CPU), so several closers overlap it."""
    CLOSERS = 4
    BACKLOG = 8

    def __init__(self):
        self._queue: "Optional[queue.Queue[Cleanup]]" = None   # made on first use: `kvmrun
        self._threads: List[Thread] = []                                   # boot` never imports queue
        self._lock = Lock()

    def hand_over(self, stack: Cleanup) -> None:
        with self._lock:
            if self._queue is None:
                import queue
                self._queue = queue.Queue(self.BACKLOG)
            while len(self._threads) < self.CLOSERS:
                thread = Thread(target=self._close_all, name="kvmrun-teardown")
                thread.start()
                self._threads.append(thread)
        self._queue.put(stack)            # waits when the backlog is full: bounded memory

    def wait(self) -> None:
        """Until every machine handed over is closed (tests, and counting resources)."""
        if self._queue is not None:
            self._queue.join()

    def _close_all(self) -> None:
        assert self._queue is not None
        while True:
            stack = self._queue.get()
            try:
                stack.close()
            except Exception:             # closing a dead VM's descriptors: nothing left to report to
                pass
            finally:
                self._queue.task_done()


TEARDOWN = _Teardown()
_LEFT_OPEN: List[Cleanup] = []


def close_after_exit(stack: Cleanup) -> None:
    """For a process about to exit (`kvmrun boot`): a forked child closes the machine once this
    process has exited, so the ~20 ms KVM takes to tear an irqchip down is not the user's wait.

    The child keeps only the KVM descriptors (and the guest's RAM, shared copy-on-write, never
    written): stdin, stdout and stderr become /dev/null and every other descriptor is closed at once,
    so a shell reading kvmrun's output sees its end when kvmrun exits. It waits for this process to
    be gone, so that its own exit drops the last references and does the teardown; this process never
    closes the machine itself. Where fork fails, the machine is closed here and now.

    Gone means every thread ended and the address space released (a pidfd turns readable), not just
    the descriptors closed (end of file on a pipe only this process writes to, the fallback where
    pidfd_open is missing): KVM's own worker thread leaves last, and its release of the address space
    waited for a teardown started at end of file, so half of all runs still kept their caller ~17 ms."""
    import os
    try:
        ready_read, ready_write = os.pipe()
        this_process = _pidfd_of_self()
        pid = os.fork()
    except OSError:
        stack.close()
        return
    if pid == 0:                              # the child: nothing here may raise or return
        try:
            from . import os_signal as signal
            for signum in ENDING_SIGNALS:
                signal.signal(signum, signal.SIG_IGN)
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            for fd in [int(name) for name in os.listdir("/proc/self/fd")]:   # listed, then closed
                if fd > 2 and fd not in (ready_read, this_process) and not _is_kvm(fd):
                    try:
                        os.close(fd)
                    except OSError:           # the listing's own descriptor, closed by now
                        pass
            wait_until_gone(this_process, ready_read)
        except BaseException:
            pass
        finally:
            os._exit(0)                       # the kernel closes the machine: the last references
    os.close(ready_read)
    if this_process >= 0:
        os.close(this_process)
    _LEFT_OPEN.append(stack)                  # closed by this process's exit, cheaply: the child holds on


def _pidfd_of_self() -> int:
    """A pidfd of this process, or -1 where the kernel (before 5.3) or a sandbox refuses one."""
    import os
    try:
        return os.pidfd_open(os.getpid())
    except (OSError, AttributeError):
        return -1


def wait_until_gone(pidfd: int, pipe_read: int) -> None:
    """Return once the process behind `pidfd` has ended entirely (it polls readable when its last
    thread has exited); with no pidfd (-1), once every writer of the pipe has closed it."""
    import os
    import select
    if pidfd >= 0:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        poller.poll()                     # no timeout: returns readable only (EINTR is retried, PEP 475)
        return
    while os.read(pipe_read, 1):
        pass


def _is_kvm(fd: int) -> bool:
    import os
    try:
        return os.readlink(f"/proc/self/fd/{fd}").startswith("anon_inode:kvm")
    except OSError:
        return False
