"""The gdb stub on real guests: `kvmrun boot --gdb` driven by Debian's gdb in batch mode, as a user
drives it, and by raw packets where gdb's batch mode cannot (Ctrl-C while the guest runs, hostile
packets). Every scenario checks what gdb printed and how kvmrun ended."""
import re
import shutil
import socket
import subprocess
import sys
import time

import pytest

from conftest import guest

pytestmark = pytest.mark.kvm

GDB = shutil.which("gdb")
needs_gdb = pytest.mark.skipif(GDB is None, reason="gdb is not installed (.ci/run installs it)")
WAITING = re.compile(rb"waiting for gdb on (\S+):(\d+)")


_STARTED = []


@pytest.fixture(autouse=True)
def no_stub_outlives_its_test():
    """A test that fails before its kvmrun ends would leave it waiting for a gdb that never comes."""
    yield
    while _STARTED:
        process = _STARTED.pop()
        if process.poll() is None:
            process.kill()
            process.wait()


class Stub:
    """`kvmrun boot --gdb 0 ...` in its own process, and the port it listens on."""

    def __init__(self, *args):
        self.process = subprocess.Popen([sys.executable, "-m", "kvmrun", "boot", "--gdb", "0", *map(str, args)],
                                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _STARTED.append(self.process)
        line = self.process.stderr.readline()
        found = WAITING.search(line)
        if found is None:
            self.process.kill()
            raise AssertionError(f"kvmrun did not say where it waits for gdb: {line!r}")
        self.port = int(found.group(2))

    def finish(self, timeout=60):
        """(status, stdout, stderr) once kvmrun has ended."""
        try:
            out, err = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        return self.process.returncode, out, err


def gdb(stub, *commands, file=None, before=(), symbols=None):
    """gdb -batch: `before` runs before connecting (set architecture), then `commands`."""
    argv = [GDB, "-nx", "-batch", "-ex", "set pagination off", "-ex", "set confirm off"]
    for command in before:
        argv += ["-ex", command]
    argv += ["-ex", f"target remote 127.0.0.1:{stub.port}"]
    if symbols is not None:                 # loaded after connecting: the stub's description sets the mode
        argv += ["-ex", f"symbol-file {symbols}"]
    for command in commands:
        argv += ["-ex", command]
    if file is not None:
        argv.append(file)
    done = subprocess.run(argv, capture_output=True, timeout=120, text=True)
    return done.stdout + done.stderr


def symbol_address(image, name):
    from elftools.elf.elffile import ELFFile
    with open(image, "rb") as file:
        return ELFFile(file).get_section_by_name(".symtab").get_symbol_by_name(name)[0]["st_value"]


@needs_gdb
def test_break_read_write_watch_and_step_a_long_mode_guest():
    stub = Stub(guest("gdb64.elf"))
    shown = gdb(stub, "break kmain", "continue", "info registers rip", "x/s &message",
                "set var *(char *)&status = 42", "watch *(long *)&counter", "continue",
                "delete", "stepi", "info registers rip", "continue", file=guest("gdb64.elf"))
    status, out, _ = stub.finish()
    kmain = symbol_address(guest("gdb64.elf"), "kmain")
    assert f"Breakpoint 1, 0x{kmain:016x} in kmain ()" in shown
    assert re.search(rf"rip\s+0x{kmain:x}\s+0x{kmain:x} <kmain>", shown)
    assert '"hello from the guest"' in shown
    assert "Old value = 0\nNew value = 1" in shown          # the watched write, as gdb shows it
    assert "exited with code 052" in shown                 # 42, in gdb's octal
    assert status == 42 and out.endswith(b"counter 0x2\n")  # the write from gdb changed the exit status


@needs_gdb
def test_two_vcpus_are_two_threads():
    stub = Stub("--cpus", "2", guest("gdb64.elf"))
    shown = gdb(stub, "info threads", "thread 2", "info registers rdi", "thread 1", "info registers rdi",
                "detach", file=guest("gdb64.elf"))
    status, out, _ = stub.finish()
    assert "1    Thread 1 (vCPU 0)" in shown and "2    Thread 2 (vCPU 1)" in shown
    assert re.search(r"rdi\s+0x1\s+1", shown) and re.search(r"rdi\s+0x0\s+0", shown)   # each vCPU's index
    assert status == 7 and out.endswith(b"counter 0x2\n")   # detached: the guest ran to its own end


@needs_gdb
def test_kill_ends_the_run_as_killed():
    stub = Stub(guest("gdb64.elf"))
    gdb(stub, "break kmain", "continue", "kill", file=guest("gdb64.elf"))
    status, out, err = stub.finish()
    assert status == 128 + 9 and out == b""
    assert err == b"kvmrun: gdb's kill ended the run\n"


@needs_gdb
def test_real_mode_shows_the_linear_pc_and_16_bit_code():
    stub = Stub("--mode", "real", guest("hello16.bin"))
    shown = gdb(stub, "info registers eip cs", "x/2i $pc", "stepi", "x/2i $pc", "continue")
    status, out, _ = stub.finish()
    assert re.search(r"eip\s+0x7c00", shown)
    assert "=> 0x7c00:\tjmp    0x7c18" in shown            # a 16-bit near jump: 16-bit disassembly
    assert "=> 0x7c18:\tpush   %esi" in shown               # 66 56 in 16-bit code
    assert status == 0 and out == b"Hello from real mode!\n"


@needs_gdb
def test_a_kernel_switching_from_32_to_64_bit_is_debugged_across_the_switch():
    """mb64.elf starts in 32-bit protected mode and switches to long mode. gdb connects with the i386
    layout, stops at the 64-bit code after the switch without losing the connection, then reconnects
    with the amd64 layout and disassembles the same bytes as 64-bit code (without a symbol file, the
    description alone sets gdb's architecture)."""
    stub = Stub(guest("mb64.elf"))
    shown = gdb(stub, "info registers eip eax", "x/i $pc", "hbreak *0x1000d3", "continue",
                "info registers eip", "x/i 0x1000e7", "disconnect", f"target remote 127.0.0.1:{stub.port}",
                "info registers rip", "x/i 0x1000e7", "continue")
    status, out, _ = stub.finish()
    assert re.search(r"eip\s+0x10000c", shown) and re.search(r"eax\s+0x2badb002", shown)
    assert re.search(r"eip\s+0x1000d3", shown)
    assert "0x1000e7:\tdec    %eax" in shown               # 48 8d 35 ... as 32-bit code
    assert re.search(r"rip\s+0x1000d3", shown)
    assert re.search(r"0x1000e7:\tlea\s+0x\w+\(%rip\),%rsi", shown)   # the same bytes as 64-bit code
    assert status == 0 and out.endswith(b"mb64: long mode ok\n")


@needs_gdb
def test_symbols_loaded_after_connecting_follow_the_mode_switch():
    """The README's recipe: connect, then `symbol-file`; break at symbols in 32- and 64-bit code."""
    stub = Stub(guest("mb64.elf"))
    shown = gdb(stub, "x/i $pc", "hbreak long_mode", "continue", "disconnect", f"target remote 127.0.0.1:{stub.port}",
                "break long_mode.halt", "continue", "info registers rip", "continue", symbols=guest("mb64.elf"))
    status, _, _ = stub.finish()
    assert "=> 0x10000c <_start>:\tmov    $0x102000,%esp" in shown
    assert "Breakpoint 1, 0x001000d3 in long_mode ()" in shown          # 32-bit layout: 8 hex digits
    assert "Breakpoint 2, 0x00000000001000fa in long_mode[halt] ()" in shown   # reconnected: 64-bit
    assert status == 0


# --- raw packets: what gdb's batch mode cannot send --------------------------------------------------

def packet(payload: bytes) -> bytes:
    return b"$" + payload + b"#%02x" % (sum(payload) & 0xFF)


class Client:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buffer = b""

    def send(self, payload: bytes) -> None:
        self.sock.sendall(packet(payload))

    def reply(self) -> bytes:
        """The next packet's payload (acks skipped, acknowledged)."""
        while True:
            start = self.buffer.find(b"$")
            end = self.buffer.find(b"#", start)
            if start >= 0 and end >= 0 and len(self.buffer) >= end + 3:
                payload, self.buffer = self.buffer[start + 1:end], self.buffer[end + 3:]
                self.sock.sendall(b"+")
                return payload
            data = self.sock.recv(65536)
            if not data:
                raise EOFError
            self.buffer += data

    def ask(self, payload: bytes) -> bytes:
        self.send(payload)
        return self.reply()


def test_ctrl_c_stops_a_running_guest_where_it_spins_and_kill_ends_it():
    stub = Stub(guest("spin64.elf"))
    client = Client(stub.port)
    assert client.ask(b"?").startswith(b"T05")
    client.send(b"c")
    time.sleep(0.3)
    client.sock.sendall(b"\x03")
    assert client.reply().startswith(b"T02thread:1;")
    pc = client.ask(b"p10")                                  # rip: the guest spins in its loop
    assert len(pc) == 16 and int.from_bytes(bytes.fromhex(pc.decode()), "little") >= 0x100000
    client.send(b"k")                                        # no reply: the run ends
    status, _, _ = stub.finish()
    assert status == 128 + 9


def test_hostile_packets_get_errors_and_the_session_goes_on():
    stub = Stub(guest("gdb64.elf"))
    client = Client(stub.port)
    client.sock.sendall(b"$m100000,4#00")                     # a bad checksum: NAK, nothing done
    assert client.sock.recv(1) == b"-"
    assert client.ask(b"mffffffffffff0000,10").startswith(b"E")   # not mapped
    assert client.ask(b"m100000,ffffffffffff") != b""        # a huge length is capped, not allocated
    assert client.ask(b"p999").startswith(b"E")               # no such register
    assert client.ask(b"Hg99") .startswith(b"E")              # no such thread
    assert client.ask(b"Z0,zz,1").startswith(b"E")            # malformed
    assert client.ask(b"qUnknownThing") == b""
    assert client.ask(b"m100000,3") == b"4885ff"              # test rdi, rdi: the guest's first bytes
    assert client.ask(b"D") == b"OK"
    status, out, _ = stub.finish()
    assert status == 7 and out.endswith(b"counter 0x2\n")


def test_a_second_gdb_is_turned_away_while_one_is_connected_and_taken_once_it_left():
    stub = Stub(guest("gdb64.elf"))
    first = Client(stub.port)
    assert first.ask(b"?").startswith(b"T05")
    second = socket.create_connection(("127.0.0.1", stub.port), timeout=30)
    second.sendall(packet(b"?"))
    try:
        answer = second.recv(100)
    except ConnectionResetError:                              # closed with its packet unread
        answer = b""
    assert answer == b""                                      # closed, unanswered
    second.close()
    assert first.ask(b"m100000,3") == b"4885ff"              # the first goes on undisturbed
    first.sock.close()                                       # it leaves without detaching: the next gdb
    third = Client(stub.port)                                # finds the guest stopped
    assert third.ask(b"?").startswith(b"T05") and third.ask(b"m100000,3") == b"4885ff"
    assert third.ask(b"D") == b"OK"
    status, out, _ = stub.finish()
    assert status == 7 and out.endswith(b"counter 0x2\n")


def test_the_guest_waits_for_gdb_without_timing_out_and_the_timeout_counts_once_it_runs():
    """--timeout stands still while gdb holds the machine, then counts while the guest runs."""
    stub = Stub("--timeout", "0.5", guest("spin64.elf"))
    time.sleep(1.0)                                           # nobody connected yet: no timeout
    client = Client(stub.port)
    assert client.ask(b"?").startswith(b"T05")
    client.send(b"c")
    assert client.reply() == b"X0e"                           # gdb hears of the timeout as SIGALRM
    status, _, err = stub.finish()
    assert status == 124 and b"--timeout" in err


def test_four_breakpoints_take_the_debug_registers_and_a_fifth_is_an_int3_only_where_the_host_runs_one():
    from kvmrun.debug.probe import probe_int3
    stub = Stub(guest("gdb64.elf"))
    client = Client(stub.port)
    for address in (0x100003, 0x100005, 0x10000a, 0x10005e):
        assert client.ask(b"Z0,%x,1" % address) == b"OK"
    fifth = client.ask(b"Z0,100060,1")
    if probe_int3():
        assert fifth == b"OK" and client.ask(b"m100060,1") != b"cc"     # gdb sees the guest's byte
    else:
        assert fifth.startswith(b"E")          # an int3 would end this guest's run: refused
    assert client.ask(b"z0,10005e,1") == b"OK" and client.ask(b"Z1,100060,1") == b"OK"   # freed, reused
    assert client.ask(b"Z1,100070,1").startswith(b"E")                # all four taken again
    client.send(b"k")
    assert stub.finish()[0] == 137


@needs_gdb
def test_a_fault_stops_in_gdb_where_it_happened_and_continuing_ends_the_run_with_it():
    stub = Stub(guest("triple64.elf"))
    shown = gdb(stub, "continue", "x/i $pc", "info registers rip", "continue", symbols=guest("triple64.elf"))
    status, out, err = stub.finish()
    assert "Program received signal SIGSEGV, Segmentation fault." in shown
    assert re.search(r"=> 0x100026 <[^>]+>:\tud2", shown)                # gdb sees the faulting instruction
    assert "Program terminated with signal SIGSEGV" in shown
    assert status == 1 and out == b"about to fault\n" and b"triple fault" in err   # the report, as without gdb


def test_waiting_for_gdb_past_the_deadline_sleeps_rather_than_spins():
    """The timeout stands still while the guest is held, and the host loop sleeps meanwhile: a
    deadline already passed must not turn its wait into a busy loop."""
    import os
    stub = Stub("--timeout", "0.2", guest("spin64.elf"))
    time.sleep(2.0)
    with open(f"/proc/{stub.process.pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    cpu_seconds = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")   # utime + stime
    stub.process.terminate()
    status, _, _ = stub.finish()
    assert cpu_seconds < 0.8 and status == 143
