"""Real guests on /dev/kvm, run through the CLI as users run it: stdout bytes, stderr, exit status.
Each test names the row of docs/guest-abi.md it covers."""
import re

import pytest

from conftest import guest, run_kvmrun

pytestmark = pytest.mark.kvm


def ok(result, stdout):
    assert result.stderr == b"", result.stderr.decode()
    assert result.stdout == stdout
    assert result.returncode == 0


def fields(text):
    return dict(re.findall(r"(\w+)=(\S+)", text))


# --- images and modes ---------------------------------------------------------------------------

def test_elf64_boots_in_long_mode():
    ok(run_kvmrun("boot", guest("hello64.elf")), b"Hello from long mode!\n")


def test_elf32_boots_in_protected_mode():
    ok(run_kvmrun("boot", guest("hello32.elf")), b"Hello from protected mode!\n")


def test_raw_image_defaults_to_long_mode_at_1mib():
    ok(run_kvmrun("boot", guest("hello64.bin")), b"Hello from long mode!\n")


def test_raw_image_at_another_load_address_starts_there():
    ok(run_kvmrun("boot", "--mode", "long", "--load-addr", "0x300000", guest("hello64.bin")),
       b"Hello from long mode!\n")


def test_raw_image_in_protected_mode():
    ok(run_kvmrun("boot", "--mode", "protected", guest("hello32.bin")), b"Hello from protected mode!\n")


def test_boot_sector_in_real_mode():
    ok(run_kvmrun("boot", "--mode", "real", guest("hello16.bin")), b"Hello from real mode!\n")


def test_c_guest_gets_its_arguments_from_the_entry_registers():
    ok(run_kvmrun("boot", "--memory", "32M", guest("hello_c.elf")),
       b"Hello from C: vCPU 0 of 1, 32768 KiB of RAM\n")


def test_multi_segment_elf_with_data_and_large_bss():
    ok(run_kvmrun("boot", guest("multiseg64.elf")), b"data segment says hi\ncounter=0x2a\nbss=zero\n")


# --- CPU state at entry -------------------------------------------------------------------------

def test_long_mode_entry_state():
    result = run_kvmrun("boot", "--memory", "64M", guest("abi64.elf"))
    assert result.returncode == 0, result.stderr
    f = fields(result.stdout.decode())
    assert (f["rdi"], f["rsi"], f["rdx"], f["rsp"], f["rflags"]) == ("0x0", "0x1", "0x10000", "0x4000000", "0x2")
    assert (f["cr0"], f["cr4"], f["efer"]) == ("0x80010033", "0x620", "0x500")
    assert int(f["cr3"], 16) < 0x100000
    assert (f["cs"], f["ds"], f["ss"], f["tr"], f["apic"]) == ("0x8", "0x10", "0x10", "0x20", "0x0")


def test_ram_above_3gib_continues_at_4gib_and_is_mapped():
    result = run_kvmrun("boot", "--memory", "5G", guest("abi64.elf"))
    assert result.returncode == 0, result.stderr
    f = fields(result.stdout.decode())
    assert (f["rdx"], f["rsp"], f["high"]) == (hex(5 << 20), hex(6 << 30), "ok")


def test_protected_mode_entry_state():
    result = run_kvmrun("boot", "--memory", "16M", guest("abi32.elf"))
    assert result.returncode == 0, result.stderr
    f = fields(result.stdout.decode())
    assert (f["edi"], f["esi"], f["edx"], f["esp"], f["eflags"]) == ("0x0", "0x1", "0x4000", "0x1000000", "0x2")
    assert (f["cr0"], f["cr4"]) == ("0x11", "0x0")
    assert (f["cs"], f["ds"], f["ss"], f["tr"], f["apic"]) == ("0x18", "0x10", "0x10", "0x20", "0x0")


def test_real_mode_entry_state():
    result = run_kvmrun("boot", "--mode", "real", guest("abi16.bin"))
    assert result.returncode == 0x16, result.stderr
    assert fields(result.stdout.decode()) == {"cs": "0x0", "ds": "0x0", "es": "0x0", "ss": "0x0", "sp": "0x7c00",
                                              "eflags": "0x2", "dl": "0x80"}


def test_every_vcpu_starts_at_the_entry_with_its_own_index_apic_id_and_stack():
    result = run_kvmrun("boot", "--cpus", "4", guest("smp64.elf"))
    assert result.returncode == 0, result.stderr
    lines = sorted(result.stdout.decode().splitlines())
    top = 128 << 20
    assert lines == [f"cpu {hex(i)} of 0x4 apic {hex(i)} stack {hex(top - i * 0x10000)}" for i in range(4)]


def test_more_vcpus_than_kvm_allows_is_a_usage_error():
    result = run_kvmrun("boot", "--cpus", "100000", "--memory", "16G", guest("smp64.elf"))
    assert result.returncode == 2
    assert re.fullmatch(rb"kvmrun: error: --cpus must be at most \d+ on this host's KVM, not 100000\n", result.stderr)


# --- devices ------------------------------------------------------------------------------------

def test_serial_input_from_a_pipe():
    ok(run_kvmrun("boot", guest("echo64.elf"), stdin=b"hello there\n"), b"> HELLO THERE\n")


def test_serial_input_from_a_file(tmp_path):
    import subprocess
    import sys
    text = tmp_path / "input.txt"
    text.write_bytes(b"from a file\n")
    with open(text, "rb") as stdin:
        result = subprocess.run([sys.executable, "-m", "kvmrun", "boot", guest("echo64.elf")], stdin=stdin,
                                capture_output=True, timeout=60)
    ok(result, b"> FROM A FILE\n")


def test_uart_registers_behave_as_a_16550a():
    result = run_kvmrun("boot", guest("uart64.elf"))
    assert b"FAIL" not in result.stdout, result.stdout.decode()
    assert result.stdout.count(b"ok ") == 22
    assert result.returncode == 0


def test_rep_outsb_output_is_byte_exact():
    ok(run_kvmrun("boot", guest("outsb64.elf")), bytes(range(256)) * 16 + b"\nend\n")


@pytest.mark.parametrize("entry, status", [(None, 42), ("0x100040", 0x7B), ("0x100080", 5)])
def test_exit_port_status_is_the_low_byte_of_any_width(entry, status):
    args = ["boot", guest("exit64.bin")] + (["--entry", entry] if entry else [])
    result = run_kvmrun(*args)
    assert (result.returncode, result.stdout, result.stderr) == (status, b"", b"")


def test_elf_exit_port():
    assert run_kvmrun("boot", guest("exit64.elf")).returncode == 42


def test_i8042_reset_ends_with_status_0():
    ok(run_kvmrun("boot", "--timeout", "30", guest("reset64.elf")), b"resetting\n")


def test_unknown_ports_and_mmio_read_all_ones():
    ok(run_kvmrun("boot", guest("unknownio64.elf")), b"unknown io ok\n")


def test_strict_io_makes_an_unknown_port_a_guest_fault():
    result = run_kvmrun("boot", "--strict-io", guest("unknownio64.elf"))
    assert result.returncode == 1
    err = result.stderr.decode()
    assert "KVM_EXIT_IO (2)" in err and "--strict-io: unhandled 1-byte port read from 0x02fd at RIP 0x100008" in err
    assert "RIP" in err


# --- how a run ends -----------------------------------------------------------------------------

def test_triple_fault_report():
    result = run_kvmrun("boot", guest("triple64.elf"))
    assert result.returncode == 1
    assert result.stdout == b"about to fault\n"
    err = result.stderr.decode()
    for needle in ("guest fault on vCPU 0", "KVM_EXIT_SHUTDOWN (8)", "triple fault", "long mode, 64-bit",
                   "[PE|MP|ET|NE|WP|PG]", "[PAE|OSFXSR|OSXMMEXCPT]", "[LME|LMA]", "CS   0008",
                   "TR   0020", "code at RIP", "0f 0b"):
        assert needle in err, needle
    assert "Traceback" not in err


def test_timeout_stops_a_spinning_guest_with_124():
    import time
    start = time.monotonic()
    result = run_kvmrun("boot", "--timeout", "1", guest("spin64.elf"))
    assert result.returncode == 124
    assert result.stdout == b"spinning\n"
    assert b"--timeout 1 s" in result.stderr
    assert time.monotonic() - start < 20


def test_fault_on_one_vcpu_stops_the_others():
    result = run_kvmrun("boot", "--cpus", "4", "--timeout", "60", guest("smpstop64.bin"))
    assert result.returncode == 1
    assert b"guest fault on vCPU 3" in result.stderr


def test_exit_port_on_one_vcpu_stops_the_others():
    result = run_kvmrun("boot", "--cpus", "4", "--timeout", "60", "--entry", "0x100040", guest("smpstop64.bin"))
    assert (result.returncode, result.stderr) == (7, b"")


@pytest.mark.parametrize("signame, status", [("SIGINT", 130), ("SIGTERM", 143)])
def test_signals_end_the_run_with_128_plus_the_signal(signame, status):
    import signal
    import subprocess
    import sys
    proc = subprocess.Popen([sys.executable, "-m", "kvmrun", "boot", guest("spin64.elf")],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == b"spinning\n"
        proc.send_signal(getattr(signal, signame))
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == status
    assert err == f"kvmrun: {signame}: stopped the guest\n".encode()


def test_stderr_tells_the_guests_own_status_from_kvmrun_s():
    """A guest may write 1 or 124 to the exit port: then stderr is empty; kvmrun's own 1 and 124
    always say so there."""
    own = run_kvmrun("boot", "--timeout", "0.5", guest("spin64.elf"))
    assert own.returncode == 124 and own.stderr.startswith(b"kvmrun: the guest was still running")
    fault = run_kvmrun("boot", guest("triple64.elf"))
    assert fault.returncode == 1 and b"guest fault" in fault.stderr
    chosen = run_kvmrun("boot", guest("exit64.elf"))
    assert (chosen.returncode, chosen.stderr) == (42, b"")


def test_info_describes_this_hosts_kvm():
    result = run_kvmrun("info")
    assert result.returncode == 0
    text = result.stdout.decode()
    assert "KVM API version" in text and "12" in text and "KVM_CAP_IMMEDIATE_EXIT" in text


def test_absorbed_output_keeps_its_order_and_shows_while_the_guest_spins():
    """Past 4,096 THR writes KVM coalesces them; register traffic after that must still see them in
    order, and what the guest printed must reach stdout while it spins, long before --timeout."""
    import subprocess
    import sys
    import time
    proc = subprocess.Popen([sys.executable, "-m", "kvmrun", "boot", "--timeout", "30", guest("coalesce64.elf")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        start = time.monotonic()
        lines = [proc.stdout.readline() for _ in range(3)]
        shown_after = time.monotonic() - start
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert lines == [b"." * 5000 + b"\n", b"divisor ok\n", b"done\n"]
    assert shown_after < 20


def test_a_closed_stdout_pipe_ends_the_run_with_141():
    """`kvmrun boot g.elf | head -c 10`: once the reader is gone, the guest is stopped at once."""
    import subprocess
    import sys
    import time
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "kvmrun", "boot", "--timeout", "60", guest("coalesce64.elf")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.read(10) == b"." * 10
    proc.stdout.close()                                      # what head does after its 10 bytes
    err = proc.stderr.read()
    assert proc.wait(timeout=30) == 141
    assert err == b"kvmrun: stdout's reader went away: stopped the guest\n"
    assert time.monotonic() - start < 30
