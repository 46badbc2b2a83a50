"""The KVM binding's calls on /dev/kvm, without the machine: in-kernel irqchip and PIT, IRQ lines,
MP state, the LAPIC, halt detection through the stats fd, guest debug, debug registers, dirty
logging and read-only slots. Guests are a few real-mode bytes at 0x7C00.

An in-kernel irqchip costs ~3 ms to create and ~16-24 ms to tear down here, so the tests that need
one share a single VM (each with its own vCPU)."""
import errno
import os
import threading
import time

import pytest

from kvmrun.boot.cpu_modes import real_mode_sregs
from kvmrun.errors import KvmError
from kvmrun.kvm import abi, exits
from kvmrun.kvm.abi import Cap, IrqChip, KvmExit, LapicReg, MpState
from kvmrun.kvm.kick import install_kick_handler, kick
from kvmrun.kvm.system import open_kvm
from kvmrun.kvm.vm import Vm, dirty_pages
from kvmrun.memory import GuestMemory

pytestmark = pytest.mark.kvm

ENTRY = 0x7C00
CLI_HLT = b"\xfa\xf4"


@pytest.fixture(scope="module")
def kvm():
    with open_kvm() as kvm:
        yield kvm


def need(kvm, *caps):
    missing = [cap.name for cap in caps if not kvm.check_extension(cap)]
    if missing:
        pytest.skip(f"this host's KVM lacks {', '.join(missing)}")


def real_mode_vcpu(vm, index=0, rax=0):
    vcpu = vm.create_vcpu(index)
    sregs = vcpu.get_sregs()
    real_mode_sregs(sregs, ENTRY)
    vcpu.set_sregs(sregs)
    vcpu.set_regs(abi.kvm_regs(rip=ENTRY, rflags=2, rax=rax))
    return vcpu


@pytest.fixture(scope="module")
def irqchip_vm(kvm):
    """One VM with the in-kernel PICs, IOAPIC and PIT; a `cli; hlt` guest at 0x7C00."""
    need(kvm, Cap.KVM_CAP_IRQCHIP, Cap.KVM_CAP_PIT2)
    with GuestMemory(1 << 20) as mem, Vm(kvm) as vm:
        mem.write(ENTRY, CLI_HLT)
        vm.create_irqchip()
        vm.create_pit2(abi.KVM_PIT_SPEAKER_DUMMY)
        vm.add_memory(0, mem.size, mem.host_address())
        yield vm


@pytest.fixture
def vcpu_of(irqchip_vm):
    """vcpu_of(index) -> a vCPU of the shared irqchip VM, closed after the test. vCPU ids cannot be
    reused in a VM, so each test names its own."""
    created = []

    def make(index):
        created.append(real_mode_vcpu(irqchip_vm, index))
        return created[-1]
    yield make
    for vcpu in created:
        vcpu.close()


@pytest.fixture
def plain_vm(kvm):
    """A VM without an irqchip (cheap to tear down) and 1 MiB of RAM not yet in a slot."""
    with GuestMemory(1 << 20) as mem, Vm(kvm) as vm:
        yield vm, mem


# --- with the in-kernel irqchip ----------------------------------------------------------------------

def test_an_irq_line_raised_and_lowered_reaches_the_pic(irqchip_vm, kvm):
    """IRQ 4 (edge-triggered after reset): the rising edge latches IRR bit 4; lowering the line
    clears the PIC's view of the line level (last_irr) but leaves the latched request."""
    need(kvm, Cap.KVM_CAP_IRQ_INJECT_STATUS)
    before = irqchip_vm.get_irqchip(IrqChip.KVM_IRQCHIP_PIC_MASTER).chip.pic
    assert before.irr & 0x10 == 0 and before.last_irr & 0x10 == 0
    assert irqchip_vm.irq_line_status(4, True) > 0          # the PIC's IMR is clear after reset
    raised = irqchip_vm.get_irqchip(IrqChip.KVM_IRQCHIP_PIC_MASTER).chip.pic
    assert raised.irr & 0x10 and raised.last_irr & 0x10
    irqchip_vm.irq_line(4, False)
    lowered = irqchip_vm.get_irqchip(IrqChip.KVM_IRQCHIP_PIC_MASTER).chip.pic
    assert lowered.last_irr & 0x10 == 0 and lowered.irr & 0x10


def test_a_second_pit_is_refused_with_the_ioctls_name(irqchip_vm):
    with pytest.raises(KvmError) as caught:
        irqchip_vm.create_pit2()
    assert (caught.value.ioctl, caught.value.errno) == ("KVM_CREATE_PIT2", errno.EEXIST)


def test_mp_state_round_trip(vcpu_of, kvm):
    """Under an in-kernel irqchip an AP (any vCPU but 0) starts waiting for INIT/SIPI."""
    need(kvm, Cap.KVM_CAP_MP_STATE)
    vcpu = vcpu_of(1)
    assert vcpu.get_mp_state() == MpState.KVM_MP_STATE_UNINITIALIZED
    vcpu.set_mp_state(MpState.KVM_MP_STATE_HALTED)
    assert vcpu.get_mp_state() == MpState.KVM_MP_STATE_HALTED
    vcpu.set_mp_state(MpState.KVM_MP_STATE_RUNNABLE)
    assert vcpu.get_mp_state() == MpState.KVM_MP_STATE_RUNNABLE


def test_a_lapic_register_read_modified_written_and_read_back(vcpu_of):
    vcpu = vcpu_of(2)
    lapic = vcpu.get_lapic()
    assert lapic.get_reg(LapicReg.APIC_LVR) & 0xFF in range(0x10, 0x16)   # an integrated APIC's version
    tpr = lapic.get_reg(LapicReg.APIC_TASKPRI)
    lapic.set_reg(LapicReg.APIC_TASKPRI, (tpr & ~0xFF) | 0x30)
    vcpu.set_lapic(lapic)
    assert vcpu.get_lapic().get_reg(LapicReg.APIC_TASKPRI) & 0xFF == 0x30


def test_a_vcpu_halted_in_the_kernel_shows_as_blocking_in_its_stats(vcpu_of, kvm):
    """Under an in-kernel LAPIC, HLT never leaves KVM_RUN: the vCPU's "blocking" stat (one pread)
    is how a VMM sees it, and the kick (immediate_exit + signal) gets it back. (An AP waiting for
    SIPI blocks too: this is the BSP, which starts runnable.)"""
    need(kvm, Cap.KVM_CAP_BINARY_STATS_FD)
    vcpu = vcpu_of(0)
    assert vcpu.get_mp_state() == MpState.KVM_MP_STATE_RUNNABLE
    install_kick_handler()
    with vcpu.stats() as stats:
        if "blocking" not in stats:
            pytest.skip("this host's KVM has no 'blocking' vCPU stat")
        blocking, halt_exits = stats.stat("blocking"), stats.stat("halt_exits")
        assert (blocking.read(), halt_exits.read()) == (0, 0)
        returned = []
        thread = threading.Thread(target=lambda: returned.append(vcpu.run()))
        thread.start()
        deadline = time.monotonic() + 20
        while blocking.read() == 0 and time.monotonic() < deadline and thread.is_alive():
            time.sleep(0.001)
        seen_blocking = blocking.read()
        vcpu.request_stop()
        kick(thread.ident)
        thread.join(10)
        assert seen_blocking == 1 and returned == [KvmExit.KVM_EXIT_INTR]
        assert (blocking.read(), halt_exits.read()) == (0, 1)
    assert vcpu.get_mp_state() == MpState.KVM_MP_STATE_HALTED
    assert vcpu.get_regs().rip == ENTRY + 2


# --- without an irqchip ------------------------------------------------------------------------------

def test_single_step_ends_each_instruction_with_a_debug_exit(plain_vm, kvm):
    need(kvm, Cap.KVM_CAP_SET_GUEST_DEBUG, Cap.KVM_CAP_BINARY_STATS_FD)
    vm, mem = plain_vm
    mem.write(ENTRY, b"\x90\x90\xf4")               # nop; nop; hlt
    vm.add_memory(0, mem.size, mem.host_address())
    vcpu = real_mode_vcpu(vm)
    try:
        vcpu.set_guest_debug(abi.KVM_GUESTDBG_ENABLE | abi.KVM_GUESTDBG_SINGLESTEP)
        for pc in (ENTRY + 1, ENTRY + 2):
            reason = vcpu.run()
            step = vcpu.decode_exit(reason)
            assert reason == KvmExit.KVM_EXIT_DEBUG and step.pc == pc and step.single_step
            assert vcpu.get_regs().rip == pc
        vcpu.set_guest_debug(0)
        with vcpu.stats() as stats:
            assert stats.id == f"kvm-{os.getpid()}/vcpu-0"
            halt_exits = stats.stat("halt_exits")
            assert halt_exits.read() == 0
            assert vcpu.decode_exit(vcpu.run()) == exits.Hlt()
            assert halt_exits.read() == 1
    finally:
        vcpu.close()


def test_a_hardware_breakpoint_and_the_debug_registers(plain_vm, kvm):
    need(kvm, Cap.KVM_CAP_SET_GUEST_DEBUG, Cap.KVM_CAP_DEBUGREGS)
    vm, mem = plain_vm
    mem.write(ENTRY, b"\x90\x90\x90\xf4")
    vm.add_memory(0, mem.size, mem.host_address())
    vcpu = real_mode_vcpu(vm)
    try:
        debugreg = [ENTRY + 2, 0, 0, 0, 0, 0, 0, 0x1]   # DR0 = 0x7C02, DR7.L0: break on executing it
        vcpu.set_guest_debug(abi.KVM_GUESTDBG_ENABLE | abi.KVM_GUESTDBG_USE_HW_BP, debugreg)
        hit = vcpu.decode_exit(vcpu.run())
        assert isinstance(hit, exits.Debug) and (hit.exception, hit.pc) == (exits.DB_VECTOR, ENTRY + 2)
        assert hit.dr6 & 0x1 and not hit.single_step          # DR6.B0: breakpoint 0 matched
        vcpu.set_guest_debug(0)

        regs = vcpu.get_debugregs()                       # the guest's own, not the debugger's
        assert list(regs.db) == [0, 0, 0, 0] and regs.dr7 == 0x400
        regs.db[1], regs.dr7 = 0x12345000, 0x400 | 0x4   # DR7.L1
        vcpu.set_debugregs(regs)
        again = vcpu.get_debugregs()
        assert (again.db[1], again.dr7) == (0x12345000, 0x404)
    finally:
        vcpu.close()


def test_dirty_logging_and_a_readonly_slot(plain_vm, kvm):
    need(kvm, Cap.KVM_CAP_READONLY_MEM)
    vm, mem = plain_vm
    mem.write(ENTRY, bytes.fromhex(
        "a20080"        # mov [0x8000], al       RAM: logged as dirty
        "bb0010"        # mov bx, 0x1000
        "8edb"          # mov ds, bx
        "a20000"        # mov [0], al            0x10000: the read-only slot, an MMIO exit
        "f4"))          # hlt
    base = mem.host_address()
    ram = vm.add_memory(0, 0x10000, base, flags=abi.KVM_MEM_LOG_DIRTY_PAGES)
    vm.add_memory(0x10000, 0x1000, base + 0x10000, flags=abi.KVM_MEM_READONLY)
    vcpu = real_mode_vcpu(vm, rax=0x5A)
    try:
        assert dirty_pages(vm.get_dirty_log(ram)) == []
        assert vcpu.decode_exit(vcpu.run()) == exits.MmioWrite(0x10000, b"\x5a")
        assert mem.read(0x10000, 1) == b"\0" and mem.read(0x8000, 1) == b"\x5a"
        assert vcpu.decode_exit(vcpu.run()) == exits.Hlt()
        assert dirty_pages(vm.get_dirty_log(ram)) == [0x8000 >> 12]
        assert dirty_pages(vm.get_dirty_log(ram)) == []           # handing the log over clears it
    finally:
        vcpu.close()


def test_calls_kvm_refuses_name_the_ioctl(plain_vm, kvm):
    """What KVM refuses without an irqchip, or once vCPUs exist, is a KvmError naming the call."""
    need(kvm, Cap.KVM_CAP_SET_IDENTITY_MAP_ADDR)
    vm, mem = plain_vm
    vm.set_identity_map_addr(0xFFFBC000)                 # accepted: no vCPU yet
    vm.add_memory(0, mem.size, mem.host_address())
    vcpu = real_mode_vcpu(vm)
    try:
        calls = [(lambda: vm.set_identity_map_addr(0xFFFBC000), "KVM_SET_IDENTITY_MAP_ADDR"),
                 (lambda: vm.create_pit2(), "KVM_CREATE_PIT2"),
                 (lambda: vm.irq_line(4, True), "KVM_IRQ_LINE"),
                 (lambda: vcpu.get_lapic(), "KVM_GET_LAPIC"),
                 (lambda: vcpu.set_mp_state(MpState.KVM_MP_STATE_HALTED), "KVM_SET_MP_STATE")]
        for call, name in calls:
            with pytest.raises(KvmError, match=f"^{name} failed: "):
                call()
    finally:
        vcpu.close()


def test_creating_a_vm_interrupted_by_a_signal_is_asked_again(kvm, monkeypatch):
    """KVM_CREATE_VM fails with EINTR when a signal is pending, and the kernel does not restart it: a
    stop and continue (Ctrl-Z, then fg) every few ms failed 2 of 300 here. kvmrun asks again, a few
    times; any other error, or EINTR every time, is the KvmError naming the call."""
    from kvmrun.kvm import system
    real, calls, failures = system.ioctl, [], []

    def failing(fd, request, arg=0):
        calls.append(request.name)
        if failures:
            raise KvmError(request.name, failures.pop(0), os.strerror(errno.EINTR))
        return real(fd, request, arg)

    monkeypatch.setattr(system, "ioctl", failing)
    failures[:] = [errno.EINTR, errno.EINTR]
    os.close(kvm.create_vm())
    assert calls == ["KVM_CREATE_VM"] * 3
    calls.clear()
    failures[:] = [errno.ENOMEM]
    with pytest.raises(KvmError) as raised:
        kvm.create_vm()
    assert raised.value.errno == errno.ENOMEM and calls == ["KVM_CREATE_VM"]
    failures[:] = [errno.EINTR] * 100
    with pytest.raises(KvmError, match="^KVM_CREATE_VM failed: Interrupted system call"):
        kvm.create_vm()


def test_vm_stats_and_vcpu_events(plain_vm, kvm):
    need(kvm, Cap.KVM_CAP_BINARY_STATS_FD, Cap.KVM_CAP_VCPU_EVENTS)
    vm, mem = plain_vm
    with vm.stats() as stats:
        assert stats.id == f"kvm-{os.getpid()}"
        values = stats.read_all()
        assert values and all(len(v) == stats.descriptors[name].size for name, v in values.items())
    vcpu = vm.create_vcpu(0)
    try:
        events = vcpu.get_vcpu_events()
        before = bytes(events)
        vcpu.set_vcpu_events(events)
        assert bytes(vcpu.get_vcpu_events()) == before
        tr = vcpu.translation(ENTRY)                       # paging off: linear is physical
        assert (tr.valid, tr.physical_address) == (1, ENTRY)
    finally:
        vcpu.close()
