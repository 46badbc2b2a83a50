"""The platform's interrupt controllers (kvmrun/platform/) on /dev/kvm, proved by the guests made
for them: a LAPIC timer, PIT ticks through the PIC, UART receive interrupts on IRQ 4, an AP started
by INIT/SIPI, and vCPUs that end in `cli; hlt`, which only halt detection can see under the
irqchip. The pure parts (IrqLine, PlatformNeeds, confirm_halted) are tested with stand-ins first.

The VMs are built the way machine.boot() builds them and run by a small harness of this file's own
(one thread per vCPU, COM1 by hand, the exit port): the product's runtime is another module's job.
An irqchip costs ~3 ms to create and ~20 ms to tear down here, so there is one VM per guest."""
import contextlib
import queue
import threading
import time
from collections import deque
from types import SimpleNamespace

import pytest

from conftest import guest
from kvmrun.boot.cpuid import cpuid_for_vcpu
from kvmrun.boot.prepare import plan_boot
from kvmrun.boot.setup import apply_setup, vcpu_regs, vcpu_sregs
from kvmrun.errors import ConfigError, KvmUnavailable
from kvmrun.kvm import exits
from kvmrun.kvm.abi import Cap, KvmExit, LapicReg, MpState
from kvmrun.kvm.kick import install_kick_handler, kick
from kvmrun.kvm.system import open_kvm
from kvmrun.kvm.vm import Vm
from kvmrun.memory import GuestMemory
from kvmrun.options import BootConfig
from kvmrun.platform.halt import RFLAGS_IF, HaltWatch, confirm_halted
from kvmrun.platform.interrupts import IrqLine, create_interrupt_controllers, set_up_vcpu
from kvmrun.platform.kvm_pages import place_kvm_pages
from kvmrun.platform.needs import PlatformNeeds, check_needs

GUEST_SECONDS = 30                # ring-0 guest code is emulated on this host: generous, never hit
COM1, COM1_IRQ, EXIT_PORT = 0x3F8, 4, 0xF4


# --- pure: no KVM -------------------------------------------------------------------------------

class RecordingVm:
    def __init__(self):
        self.calls = []

    def irq_line(self, irq, level):
        self.calls.append((irq, level))


def test_an_irq_line_costs_a_kvm_call_only_when_its_level_changes():
    vm = RecordingVm()
    line = IrqLine(COM1_IRQ, vm)
    for level in (True, True, False, False, True):
        line.set(level)
    assert vm.calls == [(4, True), (4, False), (4, True)] and line.level


def test_an_irq_line_without_an_irqchip_only_remembers_its_level():
    line = IrqLine(COM1_IRQ)
    line.set(True)
    assert line.level
    with pytest.raises(ValueError, match="IRQ 24 is not a GSI"):
        IrqLine(24)


def test_platform_needs_refuse_sipi_without_the_irqchip():
    check_needs(PlatformNeeds())
    check_needs(PlatformNeeds(irqchip=True, ap_start="sipi"))
    with pytest.raises(ConfigError, match="ap_start 'sipi' needs the irqchip"):
        check_needs(PlatformNeeds(irqchip=False, ap_start="sipi"))
    with pytest.raises(ConfigError, match="ap_start must be one of entry, sipi, not 'init'"):
        check_needs(PlatformNeeds(irqchip=True, ap_start="init"))


def test_a_host_without_the_pit_is_told_what_is_missing():
    class NoPit:
        def check_extension(self, cap):
            return cap != Cap.KVM_CAP_PIT2
    with pytest.raises(KvmUnavailable, match="need KVM_CAP_PIT2, which this host's KVM does not offer"):
        create_interrupt_controllers(NoPit(), None)


@pytest.mark.parametrize("mp_state, rflags, final", [
    (MpState.KVM_MP_STATE_HALTED, 0x2, True),                # cli; hlt
    (MpState.KVM_MP_STATE_HALTED, 0x2 | RFLAGS_IF, False),   # sti; hlt: an interrupt may come
    (MpState.KVM_MP_STATE_UNINITIALIZED, 0x2, True),         # an AP never started
    (MpState.KVM_MP_STATE_INIT_RECEIVED, 0x2, True),         # INIT but no SIPI
    (MpState.KVM_MP_STATE_RUNNABLE, 0x2, False),
])
def test_what_counts_as_halted_for_good(mp_state, rflags, final):
    vcpu = SimpleNamespace(get_mp_state=lambda: mp_state, get_regs=lambda: SimpleNamespace(rflags=rflags))
    assert confirm_halted(vcpu) is final


# --- the harness: a VM as machine.boot() builds it, with the irqchip ---------------------------------

class Com1:
    """THR to `output`, RBR from `pending`, LSR, IER; IRQ 4 high while IER asks for received-data
    interrupts and a byte waits. Called under the harness's lock."""

    def __init__(self, line: IrqLine):
        self.line = line
        self.output = bytearray()
        self.pending: deque = deque()
        self.ier = 0

    def update_line(self):
        self.line.set(bool(self.ier & 1 and self.pending))

    def write(self, port, value):
        if port == COM1:
            self.output.append(value)
        elif port == COM1 + 1:
            self.ier = value
            self.update_line()

    def read(self, port):
        if port == COM1:
            value = self.pending.popleft() if self.pending else 0
            self.update_line()
            return value
        if port == COM1 + 5:
            return 0x60 | (1 if self.pending else 0)           # THR empty, idle, data ready
        return 0xFF


class Harness:
    """One thread per vCPU around KVM_RUN. probe() kicks every vCPU out and has each answer
    confirm_halted on its own thread; stop() ends the threads."""

    def __init__(self, vm, vcpus):
        self.vcpus = vcpus
        self.lock = threading.Lock()
        self.com1 = Com1(IrqLine(COM1_IRQ, vm))
        self.status = None
        self.errors = []
        self.ended = threading.Event()
        self._stopping = False
        self._probe = [False] * len(vcpus)
        self._answers: queue.Queue = queue.Queue()
        install_kick_handler()
        self._threads = [threading.Thread(target=self._loop, args=(v,), daemon=True) for v in vcpus]
        for thread in self._threads:
            thread.start()

    @property
    def output(self) -> bytes:
        with self.lock:
            return bytes(self.com1.output)

    def feed(self, data: bytes):
        with self.lock:
            self.com1.pending.extend(data)
            self.com1.update_line()

    def _loop(self, vcpu):
        try:
            while True:
                reason = vcpu.run()
                if reason == KvmExit.KVM_EXIT_INTR:
                    vcpu.run_area.immediate_exit = False
                    if self._stopping:
                        return
                    if self._probe[vcpu.index]:
                        self._probe[vcpu.index] = False
                        self._answers.put(confirm_halted(vcpu))
                    continue
                exit = vcpu.decode_exit(reason)
                if isinstance(exit, exits.IoOut):
                    with self.lock:
                        for value in exit.data[::exit.size]:
                            self.com1.write(exit.port, value)
                    if exit.port == EXIT_PORT:
                        self.status = exit.data[0]
                        self.ended.set()
                        return
                elif isinstance(exit, exits.IoIn):
                    with self.lock:
                        data = bytes(self.com1.read(exit.port) for _ in range(exit.count * exit.size))
                    vcpu.io_in_complete(data)
                else:
                    raise AssertionError(f"vCPU {vcpu.index}: unexpected exit {exit}")
        except BaseException as err:
            self.errors.append(err)
            self.ended.set()

    def _kick_all(self):
        for vcpu, thread in zip(self.vcpus, self._threads):
            if thread.is_alive():
                vcpu.request_stop()
                kick(thread.ident)

    def probe(self):
        """Each vCPU's confirm_halted, read on its own thread; they run on afterwards."""
        for index in range(len(self.vcpus)):
            self._probe[index] = True
        self._kick_all()
        return [self._answers.get(timeout=GUEST_SECONDS) for _ in self.vcpus]

    def stop(self):
        self._stopping = True
        self._kick_all()
        for thread in self._threads:
            thread.join(GUEST_SECONDS)
        if self.errors:
            raise self.errors[0]

    def wait_for(self, condition, what):
        deadline = time.monotonic() + GUEST_SECONDS
        while not condition():
            if self.errors:
                raise self.errors[0]
            if time.monotonic() > deadline:
                pytest.fail(f"no {what} within {GUEST_SECONDS} s; output so far: {self.output!r}")
            time.sleep(0.0005)


@contextlib.contextmanager
def irqchip_machine(name, cpus=1, ap_start="entry", memory=64 << 20):
    """The guest loaded and every vCPU set up as boot() does it (plan_boot's checked setup, written
    and handed to the vCPUs), with the platform's interrupt controllers; yields (vm, vcpus)."""
    config = BootConfig(guest(name), memory=memory, cpus=cpus, irqchip=True, ap_start=ap_start)
    with contextlib.ExitStack() as stack:
        kvm = stack.enter_context(open_kvm())
        setup, _ = plan_boot(config, kvm.offers_1g_pages())
        assert setup.needs == PlatformNeeds(irqchip=True, ap_start=ap_start)
        mem = stack.enter_context(GuestMemory(memory))
        apply_setup(setup, mem)
        vm = stack.enter_context(Vm(kvm))
        place_kvm_pages(kvm, vm)
        create_interrupt_controllers(kvm, vm)
        for region in mem.regions:
            vm.add_memory(region.guest_addr, region.size, mem.host_address() + region.host_offset)
        vcpus = []
        for index, start in enumerate(setup.vcpus):
            vcpu = vm.create_vcpu(index)
            stack.callback(vcpu.close)
            vcpu.set_cpuid(cpuid_for_vcpu(kvm.supported_cpuid(), index))
            vcpu.set_sregs(vcpu_sregs(start, vcpu.get_sregs()))      # from the reset state: keeps the APIC base
            vcpu.set_regs(vcpu_regs(start))
            set_up_vcpu(vcpu, setup.needs.ap_start)
            vcpus.append(vcpu)
        yield vm, vcpus


def run_to_exit_port(name):
    with irqchip_machine(name) as (vm, vcpus):
        harness = Harness(vm, vcpus)
        harness.wait_for(harness.ended.is_set, "write to the exit port")
        harness.stop()
        return harness.status, harness.output


def run_until_all_halted(harness, watch):
    """What the runtime will do: poll `blocking` (no kick), then confirm on every vCPU's thread."""
    confirmed = []
    def all_halted():
        if not watch.all_blocking():
            return False
        confirmed.append(harness.probe())
        return all(confirmed[-1])
    harness.wait_for(all_halted, "halt of every vCPU")
    harness.stop()
    return confirmed


# --- on /dev/kvm --------------------------------------------------------------------------------------

@pytest.mark.kvm
def test_the_lapic_timer_interrupts_periodically():
    assert run_to_exit_port("lapic_timer64.elf") == (0, b"lapic timer: 0x3 ticks\n")


@pytest.mark.kvm
def test_pit_ticks_reach_the_bsp_through_the_pic():
    assert run_to_exit_port("pit_pic64.elf") == (0, b"pit: 0x3 ticks through the PIC\n")


@pytest.mark.kvm
def test_uart_receive_interrupts_wake_a_vcpu_halted_with_interrupts_on():
    """IRQ 4 raised from another thread wakes the vCPU sleeping in `sti; hlt`, one interrupt per
    byte. While it sleeps it is blocking, yet confirm_halted says no: IF is set."""
    with irqchip_machine("uart_irq64.elf") as (vm, vcpus), HaltWatch(vcpus) as watch:
        harness = Harness(vm, vcpus)
        harness.wait_for(lambda: harness.output == b"> " and watch.all_blocking(), "prompt, then HLT")
        assert harness.probe() == [False]
        for at, byte in enumerate(b"ok\n"):
            harness.feed(bytes([byte]))
            echoed = b"> " + b"ok\n"[:at + 1]
            harness.wait_for(lambda: harness.output.startswith(echoed) and
                             (watch.all_blocking() or harness.ended.is_set()), f"echo of {byte:#x}")
        harness.wait_for(harness.ended.is_set, "write to the exit port")
        harness.stop()
    assert (harness.status, harness.output) == (0, b"> ok\nuart irq: 0x3 interrupts\n")


@pytest.mark.kvm
def test_vcpu_0_starts_an_ap_waiting_for_sipi():
    """The AP sits in KVM_RUN, UNINITIALIZED and blocking, until vCPU 0's INIT and SIPI arrive;
    then KVM_RUN returns EAGAIN once (Vcpu.run: run again) and the AP runs real-mode code."""
    with irqchip_machine("sipi64.elf", cpus=2, ap_start="sipi") as (vm, vcpus), HaltWatch(vcpus) as watch:
        bsp_lapic = vcpus[0].get_lapic()
        assert (bsp_lapic.get_reg(LapicReg.APIC_LVT0), bsp_lapic.get_reg(LapicReg.APIC_LVT1)) == (0x700, 0x400)
        assert [v.get_mp_state() for v in vcpus] == [MpState.KVM_MP_STATE_RUNNABLE,
                                                     MpState.KVM_MP_STATE_UNINITIALIZED]
        harness = Harness(vm, vcpus)
        run_until_all_halted(harness, watch)
        assert [v.get_mp_state() for v in vcpus] == [MpState.KVM_MP_STATE_HALTED] * 2
    assert harness.output == b"BSP: starting AP 1\nAP 1 started\nBSP: AP 1 is up\n"


@pytest.mark.kvm
def test_every_vcpu_in_cli_hlt_is_seen_halted():
    """With ap_start "entry" the APs run from the entry; all end in `cli; hlt`, which KVM keeps to
    itself: the stats say blocking, the MP state and IF confirm it is for good."""
    with irqchip_machine("smphlt64.elf", cpus=2) as (vm, vcpus), HaltWatch(vcpus) as watch:
        harness = Harness(vm, vcpus)
        confirmed = run_until_all_halted(harness, watch)
        assert confirmed[-1] == [True, True]
        assert [v.get_regs().rflags & RFLAGS_IF for v in vcpus] == [0, 0]
    assert sorted(harness.output.splitlines()) == [b"vCPU 0x0 stops", b"vCPU 0x1 stops"]
