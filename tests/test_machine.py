"""The machine in-process (the path `kvmrun boot` and later the Python API share), and its handling of
the KVM binding's own exit decoding. Exits KVM never produces on purpose: tests/test_dispatch.py."""
import threading

import pytest

from conftest import guest
from kvmrun.console import BytesInput, CapturedOutput
from kvmrun.kvm import abi, exits
from kvmrun.machine import BootConfig, boot
from kvmrun.memory import GuestMemory
from kvmrun.outcome import Reason


@pytest.mark.kvm
def test_boot_in_process_captures_serial_and_input():
    out = CapturedOutput()
    outcome = boot(BootConfig(image=guest("echo64.elf")), out, BytesInput(b"in process\n"))
    assert (outcome.reason, outcome.status, bytes(out.data)) == (Reason.HALTED, 0, b"> IN PROCESS\n")


@pytest.mark.kvm
def test_boot_from_a_thread_that_is_not_the_main_one():
    results = {}

    def target():
        out = CapturedOutput()
        results["outcome"] = boot(BootConfig(image=guest("exit64.elf")), out)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(60)
    assert results["outcome"].reason is Reason.EXIT_PORT and results["outcome"].status == 42


@pytest.mark.kvm
def test_a_timeout_from_another_thread_kicks_every_vcpu():
    import time
    results = {}

    def target():
        start = time.monotonic()
        results["outcome"] = boot(BootConfig(image=guest("spin64.elf"), cpus=2, timeout=0.5), CapturedOutput())
        results["elapsed"] = time.monotonic() - start

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(60)
    assert results["outcome"].reason is Reason.TIMEOUT and results["outcome"].status == 124
    assert results["elapsed"] < 10
    assert not [t for t in threading.enumerate() if t.name.startswith("vcpu")]


@pytest.mark.kvm
def test_fault_outcome_carries_the_report():
    out = CapturedOutput()
    outcome = boot(BootConfig(image=guest("triple64.elf")), out)
    assert outcome.reason is Reason.FAULT and outcome.status == 1
    assert outcome.fault.exit == "KVM_EXIT_SHUTDOWN (8)" and outcome.fault.code.startswith(b"\x0f\x0b")


def test_vcpu_decoding_refuses_bad_mmio_lengths():
    """decode_exit on a kvm_run whose mmio.len is out of range (the struct alone, no VM)."""
    import mmap as mmap_module

    from kvmrun.kvm.run import KvmRun
    from kvmrun.kvm.vcpu import Vcpu
    vcpu = Vcpu.__new__(Vcpu)
    vcpu._map = mmap_module.mmap(-1, 8192)
    vcpu.kvm_run = abi.kvm_run.from_buffer(vcpu._map)
    vcpu.run_area = KvmRun(vcpu._map)
    for length, expected in ((0, exits.Malformed), (9, exits.Malformed), (4, exits.MmioRead)):
        vcpu.kvm_run.exit.mmio.len = length
        vcpu.kvm_run.exit.mmio.phys_addr = 0xFEE00000
        assert isinstance(vcpu.decode_exit(abi.KvmExit.KVM_EXIT_MMIO), expected)
    del vcpu.kvm_run, vcpu.run_area
    vcpu._map.close()


def test_vcpu_io_block_bounds(tmp_path):
    """The real Vcpu's data-block check over a mapping: inside is used, outside is refused."""
    import mmap as mmap_module

    from kvmrun.kvm.run import KvmRun
    from kvmrun.kvm.vcpu import Vcpu
    vcpu = Vcpu.__new__(Vcpu)
    vcpu._map = mmap_module.mmap(-1, 8192)
    vcpu.map_size = 8192
    vcpu.kvm_run = abi.kvm_run.from_buffer(vcpu._map)
    vcpu.run_area = KvmRun(vcpu._map)
    vcpu.io = vcpu.kvm_run.exit.io
    vcpu.io.data_offset = 4096
    assert vcpu.io_out_data(4096) == bytes(4096)
    assert vcpu.io_out_data(4097) is None
    assert vcpu.io_in_complete(b"\x01\x02") and vcpu._map[4096:4098] == b"\x01\x02"
    vcpu.io.data_offset = 100                        # inside kvm_run's own fields
    assert vcpu.io_out_data(1) is None and not vcpu.io_in_complete(b"\x00")
    vcpu.io.data_offset = 2**64 - 1
    assert vcpu.io_out_data(1) is None
    del vcpu.io, vcpu.kvm_run, vcpu.run_area
    vcpu._map.close()


@pytest.mark.kvm
def test_the_kvm_binding_on_its_own_runs_a_real_mode_hlt():
    """Kvm -> Vm -> Vcpu without the machine: one byte of HLT at 0x7C00 gives KVM_EXIT_HLT."""
    from kvmrun.boot.cpu_modes import real_mode_sregs
    from kvmrun.kvm.system import open_kvm
    from kvmrun.kvm.vm import Vm
    with open_kvm() as kvm, GuestMemory(1 << 20) as mem, Vm(kvm) as vm:
        mem.write(0x7C00, b"\xf4")
        vm.add_memory(0, mem.size, mem.host_address())
        vcpu = vm.create_vcpu(0)
        try:
            sregs = vcpu.get_sregs()
            real_mode_sregs(sregs, 0x7C00)
            vcpu.set_sregs(sregs)
            vcpu.set_regs(abi.kvm_regs(rip=0x7C00, rflags=2))
            assert vcpu.run() == abi.KvmExit.KVM_EXIT_HLT
            assert vcpu.get_regs().rip == 0x7C01
            assert isinstance(vcpu.decode_exit(abi.KvmExit.KVM_EXIT_HLT), exits.Hlt)
        finally:
            vcpu.close()


# --- start-up is part of the run ---------------------------------------------------------------------

def run_script(body):
    """Python code in a process of its own (it sends itself signals), `image` set to spin64.elf."""
    import subprocess
    import sys
    script = f"image = {guest('spin64.elf')!r}\n" + body
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)


SIGNAL_WHILE_THREADS_START = '''
import os, signal
from kvmrun import sync
real_start = sync.Thread.start
made = []

def start(thread):
    if thread.name.startswith("vcpu"):
        made.append(thread)
        if len(made) == 20:                # before the 20th vCPU thread starts
            os.kill(os.getpid(), SIGNAL)
    real_start(thread)

sync.Thread.start = start

def vcpu_threads():
    return [t.name for t in made if t.is_alive()]
'''


@pytest.mark.kvm
def test_a_signal_while_vcpu_threads_start_ends_the_run_with_its_status():
    """The CLI's path: used to be a traceback, pthread_kill() argument 1 must be int, not None."""
    result = run_script(SIGNAL_WHILE_THREADS_START.replace("SIGNAL", "signal.SIGTERM") + '''
from kvmrun.console import CapturedOutput
from kvmrun.machine import BootConfig, boot
outcome = boot(BootConfig(image=image, cpus=64, timeout=60), CapturedOutput(), handle_signals=True)
print(outcome.status, vcpu_threads())
''')
    assert result.stdout == "143 []\n", result.stderr


@pytest.mark.kvm
def test_ctrl_c_while_vcpu_threads_start_leaves_no_thread_behind():
    """kvmrun.run in a caller's program: KeyboardInterrupt reaches the caller, and by then no vCPU
    thread is left to touch the VM's memory."""
    result = run_script(SIGNAL_WHILE_THREADS_START.replace("SIGNAL", "signal.SIGINT") + '''
import kvmrun
try:
    kvmrun.run(image, cpus=64, timeout=60)
except KeyboardInterrupt:
    print("KeyboardInterrupt", vcpu_threads())
''')
    assert result.stdout == "KeyboardInterrupt []\n", result.stderr


@pytest.mark.kvm
def test_starting_the_threads_counts_toward_the_timeout():
    import time
    start = time.monotonic()
    outcome = boot(BootConfig(image=guest("spin64.elf"), cpus=128, timeout=1), CapturedOutput())
    assert outcome.reason is Reason.TIMEOUT and time.monotonic() - start < 5


# --- failing calls during set-up ---------------------------------------------------------------------

@pytest.mark.kvm
def test_a_failing_kvm_call_during_set_up_raises_kvm_error_naming_it():
    result = run_script('''
import resource, kvmrun
resource.setrlimit(resource.RLIMIT_NOFILE, (40, 40))
try:
    kvmrun.run(image, cpus=64, timeout=60)
except kvmrun.KvmError as err:
    print(err)
''')
    # Each vCPU takes two descriptors, its fd and mmap's duplicate of it: either call may be the one
    import re
    assert re.fullmatch(r"(KVM_CREATE_VCPU|mapping vCPU \d+'s kvm_run) failed: Too many open files \(errno 24\)\n",
                        result.stdout), result.stderr


@pytest.mark.kvm
def test_a_host_call_failing_during_set_up_is_a_kvm_error_too(monkeypatch):
    """Mapping a vCPU's kvm_run (mmap, ENOMEM) used to escape as a bare OSError."""
    import errno
    import mmap

    import kvmrun

    class NoVcpuMappings(mmap.mmap):
        def __new__(cls, fileno, *args, **kwargs):
            if fileno != -1:                       # guest RAM is anonymous; a vCPU maps its fd
                raise OSError(errno.ENOMEM, "Cannot allocate memory")
            return super().__new__(cls, fileno, *args, **kwargs)

    monkeypatch.setattr(mmap, "mmap", NoVcpuMappings)
    with pytest.raises(kvmrun.KvmError) as raised:
        kvmrun.run(guest("hello64.elf"))
    assert str(raised.value) == "mapping vCPU 0's kvm_run failed: Cannot allocate memory (errno 12)"
