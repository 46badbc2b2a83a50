"""--irqchip on and --ap-start sipi, end to end: real interrupts from KVM's PIC, IOAPIC, LAPIC and PIT,
COM1's receive interrupt with input from stdin, INIT/SIPI between vCPUs, and runs that end when every
vCPU has halted with interrupts off — which KVM no longer reports once it handles HLT itself."""
import time

import pytest

from conftest import guest, run_kvmrun

pytestmark = pytest.mark.kvm


def test_a_lapic_timer_interrupts_a_long_mode_guest():
    result = run_kvmrun("boot", "--irqchip", "on", "--timeout", "20", guest("lapic_timer64.elf"))
    assert (result.returncode, result.stdout) == (0, b"lapic timer: 0x3 ticks\n"), result.stderr


def test_the_pit_ticks_through_the_pic():
    result = run_kvmrun("boot", "--irqchip", "on", "--timeout", "20", guest("pit_pic64.elf"))
    assert (result.returncode, result.stdout) == (0, b"pit: 0x3 ticks through the PIC\n"), result.stderr


def test_serial_input_raises_com1s_interrupt_for_a_guest_halted_with_interrupts_on():
    """The guest sleeps in `sti; hlt`: only IRQ 4, raised when the host loop pushes stdin's bytes into
    the UART, wakes it. Without the push it would sleep until the timeout."""
    result = run_kvmrun("boot", "--irqchip", "on", "--timeout", "20", guest("uart_irq64.elf"), stdin=b"hi!\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(b"> hi!\n") and b"uart irq: " in result.stdout


def test_vcpu_0_starts_the_others_with_init_and_sipi():
    result = run_kvmrun("boot", "--ap-start", "sipi", "--cpus", "2", "--timeout", "20", guest("sipi64.elf"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"BSP: starting AP 1\nAP 1 started\nBSP: AP 1 is up\n"


@pytest.mark.parametrize("cpus", ["1", "2"])
def test_every_vcpu_halted_with_interrupts_off_ends_the_run_with_0(cpus):
    start = time.monotonic()
    result = run_kvmrun("boot", "--irqchip", "on", "--cpus", cpus, "--timeout", "20", guest("smphlt64.elf"))
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.splitlines()) == [f"vCPU 0x{i} stops".encode() for i in range(int(cpus))]
    assert time.monotonic() - start < 15                 # ended by halt detection, not the timeout


def test_a_guest_halted_with_interrupts_on_waits_for_them_until_the_timeout():
    result = run_kvmrun("boot", "--irqchip", "on", "--timeout", "1", guest("uart_irq64.elf"), stdin=b"")
    assert result.returncode == 124


def test_sipi_without_the_irqchip_is_refused():
    result = run_kvmrun("boot", "--irqchip", "off", "--ap-start", "sipi", "--cpus", "2", guest("sipi64.elf"))
    assert result.returncode == 2
    assert result.stderr.decode().startswith("kvmrun: error: --ap-start 'sipi' needs the irqchip")


def test_the_api_and_manifests_take_the_same_options(tmp_path):
    import kvmrun
    kvmrun.run(guest("lapic_timer64.elf"), irqchip="on", timeout=20).expect(status=0, serial="0x3 ticks")
    kvmrun.run(guest("sipi64.elf"), cpus=2, ap_start="sipi", timeout=20).expect(reason="halted",
                                                                               serial="AP 1 started")
    with pytest.raises(kvmrun.ConfigError, match="^irqchip must be 'on' or 'off' \\(or a bool\\), not 'yes'$"):
        kvmrun.run(guest("lapic_timer64.elf"), irqchip="yes")


@pytest.mark.parametrize("stdin_kind", ["file", "/dev/zero"])
def test_stdin_from_a_file_under_the_irqchip(tmp_path, stdin_kind):
    """A file cannot be watched by the host loop: the UART's queue reads it on demand and the host
    loop reads it ahead for COM1's interrupt. This once deadlocked (the device lock taken twice)."""
    import subprocess
    import sys
    path = tmp_path / "input"
    path.write_bytes(b"hi\n")
    with open(path if stdin_kind == "file" else "/dev/zero", "rb") as stdin:
        result = subprocess.run([sys.executable, "-m", "kvmrun", "boot", "--irqchip", "on", "--timeout", "5",
                                 guest("uart_irq64.elf" if stdin_kind == "file" else "echo64.elf")],
                                stdin=stdin, capture_output=True, timeout=60)
    if stdin_kind == "file":
        assert result.returncode == 0 and result.stdout.startswith(b"> hi\n"), result.stderr
    else:
        assert result.returncode == 124 and result.stdout.startswith(b"> ")     # NULs never end a line
