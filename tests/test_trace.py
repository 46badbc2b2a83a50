"""--trace: how its values are read (launcher, click, Python, manifests), its lines (exits, set-up calls,
BIOS calls), where they go (stderr, --trace-file), and that tracing never holds the guest up."""
import os
import re
import subprocess
import sys
import threading
import time

import pytest

from conftest import guest, run_kvmrun
from kvmrun.debug import setup_trace, trace
from kvmrun.debug.trace import TraceOutput
from kvmrun.devices.bus import IgnoredPort, IoBus
from kvmrun.devices.serial import Serial16550
from kvmrun.kvm import _call, abi
from kvmrun.kvm.abi import KvmExit
from kvmrun.kvm.ioctl import Ioctl
from kvmrun.launch import read_boot_args
from kvmrun.options import BY_NAME, parse_trace

EXIT_LINE = re.compile(r"exit: +(\d+\.\d{3}) ms vcpu (\d+) (\w+)(?: (.*))?")


# --- values ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, parsed", [
    (True, "exits"), (False, None), (None, None), ("exits", "exits"), ("bios", "bios"), ("setup", "setup"),
    ("setup,exits", "exits,setup"), (" bios , setup ", "setup,bios"), (["setup", "exits"], "exits,setup"),
    ("exits,exits", "exits"),
])
def test_trace_values_from_every_source_become_one_canonical_text(value, parsed):
    assert parse_trace(value) == parsed


@pytest.mark.parametrize("value", ["bogus", "", "exits,", "EXITS", 1, ["exits", 2], "all"])
def test_bad_trace_values_say_what_is_accepted(value):
    with pytest.raises(ValueError, match=r"must be 'exits', 'setup' or 'bios', or several of them"):
        parse_trace(value)


@pytest.mark.parametrize("args, trace_value, image", [
    (["--trace", "g.elf"], "exits", "g.elf"),                  # alone, the image after it is not its value
    (["g.elf", "--trace"], "exits", "g.elf"),                  # alone, last
    (["--trace", "bios", "g.img"], "bios", "g.img"),           # a word it takes: its value
    (["--trace", "setup,exits", "g.elf"], "setup,exits", "g.elf"),
    (["--trace=setup", "g.elf"], "setup", "g.elf"),
    (["--trace", "--stats", "g.elf"], "exits", "g.elf"),       # another flag after it
])
def test_the_launcher_and_click_read_trace_alike(args, trace_value, image):
    from kvmrun.cli import boot
    read_image, _, values = read_boot_args(args)
    assert (read_image, values["trace"]) == (image, trace_value)
    ctx = boot.make_context("boot", list(args))
    assert (ctx.params["image"], ctx.params["trace"]) == (image, trace_value)


def test_click_leaves_other_options_values_and_what_follows_double_dash_alone():
    from kvmrun.cli import boot
    ctx = boot.make_context("boot", ["--cmdline", "--trace", "--", "--trace"])
    assert (ctx.params["cmdline"], ctx.params["image"], ctx.params["trace"]) == ("--trace", "--trace", None)


def test_trace_is_an_option_with_a_bare_value_and_the_others_are_not():
    assert BY_NAME["trace"].bare == "exits"
    assert [o.name for o in BY_NAME.values() if o.bare is not None] == ["trace"]


# --- lines -----------------------------------------------------------------------------------------

def test_an_exit_line_says_when_which_vcpu_why_where_what_and_who():
    line = trace.exit_line(1_250_000, 0, KvmExit.KVM_EXIT_IO, trace.port_io("out", 0x3F8, 1, b"H", "uart+0"))
    assert line == "exit:      1.250 ms vcpu 0 IO out port 0x03f8 size 1 data 48 -> uart+0"
    assert trace.exit_line(2_000, 3, KvmExit.KVM_EXIT_HLT) == "exit:      0.002 ms vcpu 3 HLT"


def test_the_traced_loops_one_byte_out_line_is_exit_lines_line():
    before, after = trace.byte_out_texts(2, 0x80, "post+0")
    assert f"exit: {1_250_000 / 1e6:10.3f}{before}{0x41:02x}{after}" == trace.exit_line(
        1_250_000, 2, KvmExit.KVM_EXIT_IO, trace.port_io("out", 0x80, 1, b"A", "post+0"))


def test_string_io_shows_its_count_and_a_bounded_part_of_its_data():
    text = trace.port_io("out", 0x3F8, 1, bytes(range(40)), "uart+0")
    assert text == ("out port 0x03f8 size 1 count 40 data 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f "
                    "... (40 bytes) -> uart+0")
    assert trace.port_io("in", 0x60, 2, b"\x34\x12", "x+0") == "in port 0x0060 size 2 data 34 12 -> x+0"


def test_mmio_and_other_exits_lines():
    assert trace.mmio("write", 0xFEE000B0, b"\0\0\0\0", "unclaimed") == \
        "write 0xfee000b0 size 4 data 00 00 00 00 -> unclaimed"
    from kvmrun.kvm import exits
    assert trace.other_exit(exits.InternalError(1, (2, 0x30))) == "suberror=1 data=(2,0x30)"
    assert trace.reason_name(12345) == "reason 12345"


def test_the_bus_names_the_device_and_register_a_port_belongs_to():
    bus = IoBus()
    bus.register(0x3F8, 8, Serial16550(lambda byte: None))
    bus.register(0x80, 1, IgnoredPort())
    assert trace.port_owner(bus, 0x3FD) == "uart+5"
    assert trace.port_owner(bus, 0x80) == "post+0"
    assert trace.port_owner(bus, 0x81) == "unclaimed"
    bus.register_mmio(0xD0000000, 0x1000, IgnoredPort())
    assert trace.mmio_owner(bus, 0xD0000010, 4) == "post+0x10"
    assert trace.mmio_owner(bus, 0xE0000000, 4) == "unclaimed"


# --- set-up calls, decoded -----------------------------------------------------------------------------

def test_a_memory_slot_line_gives_its_range_size_host_address_and_flag_names():
    region = abi.kvm_userspace_memory_region(slot=1, flags=abi.KVM_MEM_LOG_DIRTY_PAGES | abi.KVM_MEM_READONLY,
                                             guest_phys_addr=0xB8000, memory_size=0x8000, userspace_addr=0x7F0000)
    assert setup_trace.memory_region(region) == \
        "slot 1: guest 0xb8000-0xbffff (32 KiB) at host 0x7f0000, flags LOG_DIRTY_PAGES|READONLY"
    region = abi.kvm_userspace_memory_region(slot=0, memory_size=64 << 20)
    assert setup_trace.memory_region(region).endswith("guest 0x0-0x3ffffff (64 MiB) at host 0x0, flags none")


def test_sregs_lines_name_the_control_register_and_efer_flags_and_every_segment():
    sregs = abi.kvm_sregs(cr0=0x80000011, cr3=0x1000, cr4=0x20, efer=0x500, apic_base=0xFEE00900)
    sregs.cs.selector, sregs.cs.limit, sregs.cs.type, sregs.cs.l, sregs.cs.present = 8, 0xFFFFFFFF, 0xB, 1, 1
    sregs.ldt.unusable = 1
    first, *segments, tables = setup_trace.sregs_lines(sregs)
    assert first == "cr0 0x80000011 [PE|ET|PG] cr3 0x1000 cr4 0x20 [PAE] efer 0x500 [LME|LMA] apic_base 0xfee00900"
    assert segments[0] == "cs 0008 base 0x0 limit 0xffffffff type 0xb s0 dpl0 p1 db0 l1 g0"
    assert segments[-1] == "ldt 0000 unusable"
    assert [s.split()[0] for s in segments] == list(setup_trace.SEGMENTS)
    assert tables == "gdt base 0x0 limit 0x0, idt base 0x0 limit 0x0"


def test_regs_line_shows_rip_rsp_rflags_names_and_the_registers_set():
    regs = abi.kvm_regs(rip=0x100000, rsp=0x8000000, rflags=0x202, rsi=1)
    assert setup_trace.regs_line(regs) == "rip 0x100000 rsp 0x8000000 rflags 0x202 [1|IF] rsi 0x1"


def test_call_lines_name_the_ioctl_and_say_what_it_returned_or_why_it_failed():
    assert setup_trace.call_lines(Ioctl.KVM_CHECK_EXTENSION, int(abi.Cap.KVM_CAP_IRQCHIP), 1) == \
        ["KVM_CHECK_EXTENSION KVM_CAP_IRQCHIP -> 1"]
    assert setup_trace.call_lines(Ioctl.KVM_CREATE_VCPU, 2, OSError(24, "x")) == \
        ["KVM_CREATE_VCPU vcpu 2 failed: Too many open files"]
    assert setup_trace.call_lines(Ioctl.KVM_SET_CPUID2, abi.cpuid_buffer(7), 0) == ["KVM_SET_CPUID2 7 entries"]
    sregs = setup_trace.call_lines(Ioctl.KVM_SET_SREGS, abi.kvm_sregs(cr0=1), 0)
    assert sregs[0].startswith("KVM_SET_SREGS cr0 0x1 [PE]") and sregs[1].startswith("  cs ")


def test_the_setup_tracer_is_off_normally_and_takes_only_its_own_threads_calls():
    assert _call.tracer is None                     # the untraced path: one test of None per call
    seen = []
    tracer = setup_trace.SetupTrace(seen.append)
    tracer.install(time.perf_counter_ns())
    try:
        tracer(3, Ioctl.KVM_CREATE_IRQCHIP, 0, 0)
        other = threading.Thread(target=tracer, args=(3, Ioctl.KVM_CREATE_IRQCHIP, 0, 0))
        other.start()
        other.join()
    finally:
        tracer.uninstall()
    assert _call.tracer is None
    assert len(seen) == 1 and re.fullmatch(r"setup: +\d+\.\d{3} ms KVM_CREATE_IRQCHIP \(PICs, IOAPIC, .*\)", seen[0])


# --- the output: bounded, never waiting during the run ------------------------------------------------

def _read_all(fd):
    data = b""
    while True:
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            return data
        if not chunk:
            return data
        data += chunk


def test_trace_lines_never_wait_for_their_reader_during_the_run_and_are_bounded():
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    try:
        output = TraceOutput(write_end)
        output.BACKLOG, output.BATCH = 50, 10
        started = time.monotonic()
        for n in range(20000):                        # far more than the pipe holds: no call blocks
            output(f"line {n:05d} " + "x" * 100)
        assert time.monotonic() - started < 5
        assert output.dropped > 0 and len(output.lines) <= 50
        taken = _read_all(read_end)
        output.finish(lambda: False)                  # after the run: the rest, then the count
        lines = (taken + _read_all(read_end)).decode().splitlines()
        dropped = 20000 - (len(lines) - 1)
        assert lines[0] == "line 00000 " + "x" * 100
        assert lines[-1] == f"kvmrun: {dropped} trace lines dropped: stderr did not take them"
    finally:
        os.close(read_end)
        os.close(write_end)


def test_a_gone_reader_ends_the_trace_not_the_run():
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        output = TraceOutput(write_end)
        for n in range(1000):
            output(f"line {n}")                        # EPIPE: dropped quietly (SIGPIPE is ignored by Python)
        output.finish(lambda: False)
        assert not output.lines
    finally:
        os.close(write_end)


# --- real guests ---------------------------------------------------------------------------------------

def exit_lines(text):
    return [m.groups() for m in map(EXIT_LINE.fullmatch, text.splitlines()) if m]


@pytest.mark.kvm
def test_every_exit_of_a_guest_is_a_line_naming_its_port_data_and_device():
    done = run_kvmrun("boot", "--trace", guest("hello64.elf"))
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"Hello from long mode!\n"           # the guest's output is untouched
    lines = done.stderr.decode().splitlines()
    parsed = exit_lines(done.stderr.decode())
    assert len(parsed) == len(lines)                           # nothing but exit lines
    outs = [p for p in parsed if p[2] == "IO"]
    # one exit per byte here (rep outsb), or whole blocks with count: the bytes are the output either way
    data = b""
    for _, vcpu, _, what in outs:
        assert vcpu == "0" and what.startswith("out port 0x03f8 size 1 ") and what.endswith(" -> uart+0")
        data += bytes.fromhex(what.split(" data ")[1].split(" ->")[0].split(" ...")[0])
    assert data == done.stdout
    assert parsed[-1][2] == "HLT"
    times = [float(p[0]) for p in parsed]
    assert times == sorted(times) and times[0] > 0


@pytest.mark.kvm
def test_a_trace_file_gets_the_lines_and_stderr_stays_empty(tmp_path):
    path = tmp_path / "trace.txt"
    path.write_text("old contents\n")
    done = run_kvmrun("boot", "--trace-file", path, guest("hello64.elf"))      # --trace-file alone traces exits
    assert (done.returncode, done.stderr) == (0, b"")
    text = path.read_text()
    assert "old contents" not in text
    assert len(exit_lines(text)) == len(text.splitlines()) == len(done.stdout) + 1


@pytest.mark.kvm
def test_setup_lines_name_each_kvm_call_with_the_guests_memory_and_cpu_state():
    done = run_kvmrun("boot", "--trace=setup", "-m", "64M", guest("hello64.elf"))
    assert done.returncode == 0, done.stderr
    lines = done.stderr.decode().splitlines()
    assert all(line.startswith("setup: ") for line in lines) and not exit_lines("\n".join(lines))
    calls = [line.split()[3] for line in lines if not line.split()[3].startswith(("cs", "ds", "es", "fs", "gs", "ss",
                                                                                  "tr", "ldt", "gdt"))]
    for name in ("KVM_GET_API_VERSION", "KVM_CREATE_VM", "KVM_SET_USER_MEMORY_REGION", "KVM_CREATE_VCPU",
                 "KVM_SET_CPUID2", "KVM_SET_SREGS", "KVM_SET_REGS"):
        assert name in calls, name
    assert "KVM_RUN" not in calls
    # The memory slots together are the guest's RAM (the VGA window is a slot of its own).
    slots = [re.search(r"guest 0x([0-9a-f]+)-0x([0-9a-f]+) ", line).groups() for line in lines
             if "KVM_SET_USER_MEMORY_REGION" in line]
    assert sum(int(end, 16) - int(start, 16) + 1 for start, end in slots) == 64 << 20
    assert any("flags LOG_DIRTY_PAGES" in line for line in lines)
    set_sregs = next(line for line in lines if "KVM_SET_SREGS" in line)
    assert "[PE|MP|ET|NE|WP|PG]" in set_sregs and "[LME|LMA]" in set_sregs and "[PAE" in set_sregs
    assert re.search(r"KVM_SET_REGS rip 0x100000 rsp 0x[0-9a-f]+ rflags 0x2 \[1\]", done.stderr.decode())
    assert any(re.fullmatch(r"setup: +[\d.]+ ms +cs 0008 base 0x0 limit 0xffffffff type 0xb .* l1 g1", line)
               for line in lines)


@pytest.mark.kvm
def test_setup_lines_of_a_pc_kernel_show_its_interrupt_controllers():
    done = run_kvmrun("boot", "--trace=setup", guest("barebones.elf"))
    assert done.returncode == 0, done.stderr
    text = done.stderr.decode()
    for name in ("KVM_CREATE_IRQCHIP", "KVM_CREATE_PIT2 flags", "KVM_SET_LAPIC"):
        assert name in text, name


@pytest.mark.kvm
def test_an_irqchip_kernels_exits_include_port_reads_with_the_data_read():
    done = run_kvmrun("boot", "--trace=exits", guest("barebones.elf"))
    assert done.returncode == 0, done.stderr
    parsed = exit_lines(done.stderr.decode())
    reads = [what for _, _, reason, what in parsed if reason == "IO" and what.startswith("in port 0x03fd")]
    assert reads and all(what.endswith("-> uart+5") for what in reads)
    assert all(re.search(r"data [0-9a-f]{2} ", what) for what in reads)    # line status as the guest read it


@pytest.mark.kvm
def test_plain_trace_of_a_boot_sector_shows_its_exits_and_each_bios_call():
    done = run_kvmrun("boot", "--screen=off", "--trace", guest("hello.img"))
    assert done.returncode == 0, done.stderr
    lines = done.stderr.decode().splitlines()
    calls = [line for line in lines if line.startswith("bios: int 10h AH=0Eh")]
    text = done.stdout.replace(b"\r\n", b"\n").decode()
    assert len(calls) == len(done.stdout) and text.startswith("Hello")
    # Each call's line follows the exit that made it: the ROM stub's OUT to the BIOS port.
    for index, line in enumerate(lines):
        if line.startswith("bios: "):
            assert re.fullmatch(r"exit: .* IO out port 0x00f5 size 1 data .* -> bios\+0", lines[index - 1])


@pytest.mark.kvm
def test_bad_trace_options_are_one_line_and_status_2(tmp_path):
    unwritable = tmp_path / "no-such-folder" / "trace.txt"
    for args, words in ((["--trace=bogus"], "--trace must be 'exits', 'setup' or 'bios'"),
                        (["--trace="], "--trace must be"),
                        (["--trace-file", unwritable], f"--trace-file cannot be written: {unwritable}: No such file"),
                        (["--trace-file", tmp_path], "--trace-file cannot be written"),
                        (["--trace=bios"], "applies to boot sectors")):
        for road in ((), ("--",)):                      # the launcher's reading, and click's
            done = run_kvmrun("boot", *args, *road, guest("hello64.elf"))
            lines = done.stderr.decode().splitlines()
            assert (done.returncode, len(lines), done.stdout) == (2, 1, b""), (args, done.stderr)
            assert lines[0].startswith("kvmrun: error: ") and words in lines[0], lines[0]


@pytest.mark.kvm
def test_a_trace_nobody_reads_never_holds_a_guest_making_exits_past_its_timeout(tmp_path):
    """Millions of exits (an endless OUT to an unclaimed port) traced to a pipe whose reader never reads:
    the run still ends at --timeout, and kvmrun says how many lines it dropped only where it could."""
    image = tmp_path / "outs.bin"
    image.write_bytes(bytes.fromhex("e681ebfc"))          # again: out 0x81, al; jmp again
    unread, stderr = os.pipe()
    try:
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "kvmrun", "boot", "--trace", "--timeout", "2", str(image)],
                              stdout=subprocess.DEVNULL, stderr=stderr, timeout=60)
        assert done.returncode == 124 and time.monotonic() - started < 20
    finally:
        os.close(stderr)
        os.close(unread)


@pytest.mark.kvm
def test_tracing_from_python_and_a_file(tmp_path):
    import kvmrun
    path = tmp_path / "t.txt"
    result = kvmrun.run(guest("hello64.elf"), trace=True, trace_file=str(path))
    assert result.status == 0
    assert len(exit_lines(path.read_text())) == len(result.serial) + 1
    result = kvmrun.run(guest("hello64.elf"), trace=["setup"], trace_file=str(path))
    assert "KVM_SET_USER_MEMORY_REGION" in path.read_text() and not exit_lines(path.read_text())
    assert _call.tracer is None                       # set-up tracing ends with the set-up


def test_lines_a_run_cut_short_could_not_deliver_are_counted_on_stderr(capfd):
    """A reader that takes nothing while a run ends by its timeout: the lines left are dropped, and
    stderr says how many (kvmrun's own stderr, not the trace's descriptor, which is full)."""
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    output = TraceOutput(write_end, "the trace file")
    for n in range(20000):                       # more than the pipe holds
        output(f"exit {n:06d} " + "x" * 40)
    output.flush()
    output.finish(lambda: True)                  # cut short: no waiting for the reader
    taken = b""
    while True:
        try:
            os.set_blocking(read_end, False)
            chunk = os.read(read_end, 1 << 20)
        except BlockingIOError:
            break
        if not chunk:
            break
        taken += chunk
    os.close(read_end)
    os.close(write_end)
    delivered = taken.count(b"\n")
    err = capfd.readouterr().err
    found = re.search(r"kvmrun: (\d+) trace lines dropped: the trace file did not take them", err)
    assert found and delivered + int(found.group(1)) in (20000, 20001)   # a line cut mid-way counts in both


def test_a_trace_file_that_fails_says_so():
    result = run_kvmrun("boot", "--trace-file", "/dev/full", guest("hello64.elf"))
    assert result.returncode == 0 and result.stdout == b"Hello from long mode!\n"
    assert re.fullmatch(rb"kvmrun: \d+ trace lines dropped: the trace file: No space left on device\n",
                        result.stderr)


def test_the_trace_file_cannot_be_the_image(tmp_path):
    image = tmp_path / "guest.elf"
    image.write_bytes(open(guest("hello64.elf"), "rb").read())
    before = image.read_bytes()
    result = run_kvmrun("boot", "--trace-file", image, image)
    assert result.returncode == 2 and b"the guest boots from that file" in result.stderr
    assert image.read_bytes() == before
