"""Boot sectors on kvmrun's BIOS: the guests in guests/bios/ (raw PC boot-disk images, booted without
--mode) call int 10h, 13h, 15h, 16h, 19h and 1Ah as boot loaders do, and print what they got through
int 10h's teletype, which kvmrun copies to the serial output. These tests hold that output, the
screen, the disk files and how each run ended against the BIOS's documented answers (Ralf Brown's
interrupt list, docs in kvmrun/bios/) and against kvmrun's own memory map and the host's clock."""
import datetime
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import time

import pytest

import kvmrun
from conftest import guest, run_kvmrun
from kvmrun.memory import RamLayout
from kvmrun.platform.memory_map import memory_map

pytestmark = pytest.mark.kvm

TIMEOUT = 10
FAILED = 13                  # what a guest exits with when a check of its own fails (guests/bios/lib.inc)
SECTOR = 512
MiB, GiB = 1 << 20, 1 << 30
TICK = 86400 / 0x1800B0      # seconds per timer tick, 18.2 Hz


def image(name):
    return guest(f"{name}.img")


def boot(name, **options):
    options.setdefault("timeout", TIMEOUT)
    return kvmrun.run(image(name), **options)


def lines(result):
    return result.serial.decode().splitlines()


def text(result):
    """The serial output as lines end on a terminal (teletype writes CR LF), CRs dropped."""
    return result.serial.decode().replace("\r", "")


def assert_ended(result, reason, status=0):
    assert (result.reason.value, result.status) == (reason, status), result.explain([])


# --- int 10h: text ----------------------------------------------------------------------------------

def test_hello_prints_two_lines_by_teletype_to_the_serial_output_and_the_screen():
    result = boot("hello")
    assert_ended(result, "halted")
    assert result.serial == b"Hello from the boot sector\r\nA second line\r\n"
    assert result.screen.lines[:3] == ("Hello from the boot sector", "A second line", "")
    assert result.screen.cells[0][0] == ("H", 0x07)        # teletype keeps the cleared screen's attribute
    assert result.screen.cursor == (2, 0)


def test_cursor_characters_scrolling_and_strings_land_where_int10_says():
    result = boot("cursor")
    assert_ended(result, "halted")
    screen = result.screen
    # AH=02h put the cursor at row 5, column 10; AH=03h read it back (DX=050Ah) with the shape of
    # mode 3 (start line 6, end line 7), printed from there.
    assert screen.lines[5] == " " * 10 + "cursor 050A shape 0607"
    # AH=09h: five X's, yellow on blue, from 7,3; the next cell untouched.
    assert screen.cells[7][3:9] == (("X", 0x1E),) * 5 + ((" ", 0x07),)
    # AH=06h: rows 10-12, columns 0-1 up one line, the new bottom line white on green; columns 2-3 stay.
    assert screen.lines[10:13] == ("BBAA", "CCBB", "  CC")
    assert screen.cells[12][:3] == ((" ", 0x2F), (" ", 0x2F), ("C", 0x07))
    assert screen.cells[10][:3] == (("B", 0x07), ("B", 0x07), ("A", 0x07))
    # AH=07h: rows 14-16, columns 0-3 down one line, the new top line white on blue; FFFF is gone.
    assert screen.lines[14:18] == ("", "DDDD", "EEEE", "")
    assert screen.cells[14][:5] == ((" ", 0x1F),) * 4 + ((" ", 0x07),)
    # AH=13h: AL=3 character/attribute pairs at 21,0; AL=1 one attribute at 20,5, moving the cursor
    # past it; AL=0 at 22,0, leaving the cursor there.
    assert screen.cells[21][:3] == (("O", 0x0A), ("K", 0x0C), (" ", 0x07))
    assert screen.cells[20][5:11] == tuple((char, 0x4E) for char in "string")
    assert screen.cells[22][:5] == tuple((char, 0x70) for char in "still")
    assert screen.cursor == (20, 11)


# --- int 13h: reading --------------------------------------------------------------------------------

def test_a_two_stage_loader_reads_by_chs_and_lba_and_sees_the_disks_answers():
    result = boot("twostage")
    assert_ended(result, "halted")
    disk = open(image("twostage"), "rb").read()
    assert len(disk) == 5 * SECTOR
    part3 = disk[3 * SECTOR:]
    checksum = sum(part3[:-2]) & 0xFFFF
    assert part3[-2:] == checksum.to_bytes(2, "little")
    assert lines(result) == [
        "stage 1: loading stage 2 by CHS",
        "stage 2: running at 0000:7E00",          # in sector 1: AH=02h read it
        "EDD version 30 support 0001",            # AH=41h: EDD 3.0, packet access
        "part 3 by LBA: the third part, 1 KiB",   # in sector 3: AH=42h read it
        f"part 3 sum {checksum:04X} ok",          # and sector 4 with it
        # AH=08h: a disk of 5 sectors is 2 cylinders of 16 heads of 63 sectors (QEMU's IDE geometry);
        # the last cylinder is kept back, so CH=0, CL=63, DH=15 (last head), DL=1 (one hard disk).
        "drive parameters CX=003F DX=0F01",
        "past the end CF=1 AH=04 AL=00",          # sector not found, nothing transferred
        "sector 0 CF=1 AH=01 AL=00",              # CHS sectors count from 1: invalid parameter
        "last status CF=1 AH=01 AL=00",           # AH=01h: the last operation's status
    ]


# --- int 15h: memory ---------------------------------------------------------------------------------

@pytest.mark.parametrize("memory, e801, below_64m", [
    # E801h: AX=CX KiB between 1 and 16 MiB, BX=DX 64 KiB blocks above 16 MiB (below the hole at
    # 3 GiB); 88h: KiB above 1 MiB, at most 63 MiB.
    (32 * MiB, "3C00 0100 3C00 0100", "7C00"),
    (5 * GiB, "3C00 BF00 3C00 BF00", "FC00"),
])
def test_e820_walks_kvmruns_memory_map_and_e801_and_88h_agree(memory, e801, below_64m):
    result = boot("e820", memory=memory)
    assert_ended(result, "halted")
    walked = [(int(base, 16), int(length, 16), int(kind, 16)) for base, length, kind in
              re.findall(r"^e820 ([0-9A-F]{16}) ([0-9A-F]{16}) ([0-9A-F]{2})$", text(result), re.M)]
    assert walked == [(entry.addr, entry.size, entry.type) for entry in memory_map(RamLayout(memory))]
    assert (0x100000, min(memory, 3 * GiB) - MiB, 1) in walked
    assert lines(result)[-2:] == [f"e801 {e801}", f"88 {below_64m}"]


# --- int 16h: the keyboard ---------------------------------------------------------------------------

KEYS = [
    "key a scan 1E ascii 61",
    "key Z scan 2C ascii 5A",
    "key . scan 1C ascii 0D",                     # Enter
    "key . scan 48 ascii 00",                     # Up, as AH=00h gives the grey cursor keys
    "key . scan 4B ascii 00",                     # Left
    "key q scan 10 ascii 71",
    "bye",
]


def test_keys_from_a_pipe_are_read_with_their_scan_codes():
    done = run_kvmrun("boot", "--screen=off", "--timeout", TIMEOUT, image("keyecho"), stdin=b"aZ\r\x1b[A\x1b[Dq")
    assert done.returncode == 0, done.stderr.decode()
    # The piped bytes are there before the guest asks: AH=01h shows the first key and leaves it.
    assert done.stdout.decode().splitlines() == ["status: key 1E61"] + KEYS


@pytest.mark.parametrize("how", ["pipe", "file", "api"])
def test_a_guest_waiting_for_a_key_after_stdin_ended_ends_the_run_saying_so(how, tmp_path):
    """No --timeout: kvmrun must not wait for ever for a key that cannot come."""
    if how == "api":
        result = kvmrun.run(image("keyecho"), stdin=b"ab")
        status, report, out = result.status, result.report, result.serial.decode()
    else:
        source = tmp_path / "keys"
        source.write_bytes(b"ab")
        with open(source, "rb") as f:
            done = subprocess.run([sys.executable, "-m", "kvmrun", "boot", "--screen=off", image("keyecho")],
                                  stdin=f if how == "file" else None, input=None if how == "file" else b"ab",
                                  capture_output=True, timeout=60)
        status, report, out = done.returncode, done.stderr.decode(), done.stdout.decode()
    assert status == 1
    assert "key a scan 1E" in out and "key b scan 30" in out
    assert "waits for a key (int 16h AH=00h" in " ".join(report.split()).replace("│", "")
    assert "stdin has ended" in report


def read_until(fd, marker, timeout):
    data = b""
    deadline = time.monotonic() + timeout
    while marker not in data:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise AssertionError(f"no {marker!r} within {timeout} s; got {data!r}")
        chunk = os.read(fd, 4096)
        if not chunk:
            raise AssertionError(f"output ended before {marker!r}; got {data!r}")
        data += chunk
    return data


def test_keys_typed_at_a_terminal_arrive_as_the_keys_they_are_and_no_key_sets_zf():
    controller, terminal = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "kvmrun", "boot", "--screen=off", "--timeout", str(TIMEOUT),
                             image("keyecho")], stdin=terminal, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.close(terminal)
    try:
        # Nothing typed yet: AH=01h says so with ZF=1.
        first = read_until(proc.stdout.fileno(), b"status: no key\r\n", TIMEOUT)
        for key in (b"a", b"Z", b"\r", b"\x1b[A", b"\x1b[D", b"q"):   # what a terminal sends for each
            os.write(controller, key)
            time.sleep(0.02)
        rest, err = proc.communicate(timeout=TIMEOUT)
    finally:
        proc.kill()
        proc.wait()
        os.close(controller)
    assert proc.returncode == 0, err.decode()
    assert (first + rest).decode().splitlines() == ["status: no key"] + KEYS


# --- int 1Ah and the timer ---------------------------------------------------------------------------

def found(pattern, output):
    match = re.search(pattern, output, re.M)
    assert match, f"no line matching {pattern!r} in:\n{output}"
    return match.groups()


def clock_fields(result):
    output = text(result)
    start, end = (int(value, 16) for value in found(r"^ticks ([0-9A-F]{8}) ([0-9A-F]{8})$", output))
    high, low, midnight = found(r"^1a ticks ([0-9A-F]{4}):([0-9A-F]{4}) ([0-9A-F]{2})$", output)
    clock = found(r"^time (\d\d):(\d\d):(\d\d)$", output)
    date = found(r"^date (\d{4})-(\d\d)-(\d\d)$", output)
    return start, end, int(high + low, 16), int(midnight, 16), tuple(map(int, clock)), tuple(map(int, date))


def test_the_tick_count_advances_while_the_guest_halts_and_the_rtc_is_the_hosts_clock():
    before = datetime.datetime.now()
    result = boot("timer")
    after = datetime.datetime.now()
    assert_ended(result, "halted")
    start, end, int1a_ticks, midnight, clock, date = clock_fields(result)
    assert end - start == 3                      # one tick a wake-up: the loop stops at the third
    assert result.elapsed >= 2 * TICK            # the first may come at once; two more take their time
    assert end <= int1a_ticks <= end + 2 and midnight == 0
    if before.date() == after.date():            # the count starts at the time since midnight
        since_midnight = [(moment - moment.replace(hour=0, minute=0, second=0, microsecond=0)).total_seconds()
                          for moment in (before, after)]
        assert int(since_midnight[0] / TICK) - 19 <= start <= int(since_midnight[1] / TICK) + 1
    assert date in {(moment.year, moment.month, moment.day) for moment in (before, after)}
    hours, minutes, seconds = clock
    guest_time = datetime.datetime(*date, hours, minutes, seconds)
    assert before.replace(microsecond=0) - datetime.timedelta(seconds=1) <= guest_time <= after


# --- protected mode ----------------------------------------------------------------------------------

def test_a_boot_sector_turns_a20_on_and_writes_the_screen_from_protected_mode():
    result = boot("pmode")
    assert_ended(result, "halted")
    assert lines(result) == ["real mode: int 10h prints this", "A20 on", "switching to protected mode"]
    assert result.screen.lines[:4] == ("real mode: int 10h prints this", "A20 on", "switching to protected mode",
                                       "32-bit protected mode")
    assert {attribute for _, attribute in result.screen.cells[3][:21]} == {0x0A}


def test_an_os_tutorial_kernel_in_c_is_loaded_by_its_boot_sector_and_runs_in_protected_mode():
    result = boot("oskernel")
    assert_ended(result, "exit_port", 0)          # kernel_main returned 0: the text read back
    assert lines(result) == ["boot sector: loading the kernel", "boot sector: entering protected mode",
                             "Hello from the kernel"]
    assert result.screen.lines[5] == "Hello from the kernel"
    assert result.screen.cells[5][0] == ("H", 0x1F)


# --- what kvmrun's BIOS does not provide -------------------------------------------------------------

def unboxed(report):
    """The report's text without its frame, lines joined and runs of spaces made one."""
    return " ".join(" ".join(line.strip().strip("│").split()) for line in report.splitlines())


def test_a_service_kvmrun_does_not_provide_is_a_fault_naming_it_and_its_caller():
    code = open(image("unsupported"), "rb").read()
    call = code.index(b"\xb8\x02\x4f\xbb\x18\x41\xcd\x10") + 6      # mov ax, 4F02h; mov bx, 4118h; int 10h
    caller = f"0000:{0x7C00 + call:04X}"
    done = run_kvmrun("boot", "--screen=off", "--timeout", TIMEOUT, image("unsupported"))
    assert done.returncode == 1
    assert done.stdout == b"asking for VESA mode 118h\r\n"
    report = unboxed(done.stderr.decode())
    assert "the guest called int 10h AH=4Fh" in report
    assert f"at {caller}, which kvmrun's BIOS does not provide" in report
    assert f"caller {caller}" in report
    assert f"=> {0x7C00 + call:x} cd 10 int 0x10" in report      # the code listing, at the int
    assert boot("unsupported").reason.value == "fault"


# --- restarting --------------------------------------------------------------------------------------

def test_int19h_reloads_the_boot_sector_and_keeps_ram():
    result = boot("reboot")
    assert_ended(result, "exit_port", 42)
    # The count at 0000:0500 survived; the flag the first boot set in its sector's copy did not.
    assert lines(result) == ["boot 01 flag 00 DL 80", "boot 02 flag 00 DL 80"]


def test_a_jump_to_the_reset_vector_resets():
    result = boot("reset")
    assert_ended(result, "reset")
    assert result.serial == b"jumping to F000:FFF0\r\n"


# --- int 13h: writing --------------------------------------------------------------------------------

ORIGINAL = ["read: original sector 1", "read: original sector 2", "read: original sector 3"]
WRITTEN = ["read: written by CHS (AH=03h)", "read: written by LBA (AH=43h)", "read: original sector 3"]
READ_BACK = ["CHS write read back", "LBA write read back"]


def sector(data, n):
    return data[n * SECTOR:(n + 1) * SECTOR]


def test_writes_stay_in_kvmrun_unless_the_disk_is_writable(tmp_path):
    disk = tmp_path / "disk.img"
    shutil.copyfile(image("diskwrite"), disk)
    original = disk.read_bytes()
    for _ in range(2):                           # the second run reads the sectors as they were
        result = kvmrun.run(str(disk), timeout=TIMEOUT)
        assert_ended(result, "halted")
        assert lines(result) == ORIGINAL + READ_BACK
        assert disk.read_bytes() == original

    result = kvmrun.run(str(disk), timeout=TIMEOUT, disk_writable=True)
    assert_ended(result, "halted")
    assert lines(result) == ORIGINAL + READ_BACK
    written = disk.read_bytes()
    assert len(written) == len(original)
    assert sector(written, 1) == b"written by CHS (AH=03h)".ljust(SECTOR, b"\0")
    assert sector(written, 2) == b"written by LBA (AH=43h)".ljust(SECTOR, b"\0")
    assert sector(written, 0) + sector(written, 3) == sector(original, 0) + sector(original, 3)
    assert lines(kvmrun.run(str(disk), timeout=TIMEOUT)) == WRITTEN + READ_BACK


def test_with_disk_int13h_reads_and_writes_that_file_not_the_image(tmp_path):
    boot_image = tmp_path / "boot.img"
    shutil.copyfile(image("diskwrite"), boot_image)
    other = tmp_path / "other.img"
    other.write_bytes(b"".join(f"other disk sector {n}".encode().ljust(SECTOR, b"\0") for n in range(4)))
    boot_bytes, other_bytes = boot_image.read_bytes(), other.read_bytes()

    result = kvmrun.run(str(boot_image), timeout=TIMEOUT, disk=str(other))
    assert_ended(result, "halted")
    assert lines(result) == [f"read: other disk sector {n}" for n in (1, 2, 3)] + READ_BACK
    assert (boot_image.read_bytes(), other.read_bytes()) == (boot_bytes, other_bytes)

    result = kvmrun.run(str(boot_image), timeout=TIMEOUT, disk=str(other), disk_writable=True)
    assert_ended(result, "halted")
    assert boot_image.read_bytes() == boot_bytes
    assert sector(other.read_bytes(), 1).startswith(b"written by CHS (AH=03h)\0")
    assert sector(other.read_bytes(), 2).startswith(b"written by LBA (AH=43h)\0")


# --- --trace bios ------------------------------------------------------------------------------------

def test_trace_lists_every_call_with_registers_caller_and_result():
    done = run_kvmrun("boot", "--screen=off", "--trace=bios", "--timeout", TIMEOUT, image("hello"))
    assert done.returncode == 0, done.stderr.decode()
    text = done.stdout
    assert text == b"Hello from the boot sector\r\nA second line\r\n"
    traced = done.stderr.decode().splitlines()
    assert len(traced) == len(text)              # one teletype call a character
    for line, char in zip(traced, text):
        assert re.fullmatch(rf"bios: int 10h AH=0Eh AX=0E{char:02X} BX=0000 CX=\S+ DX=\S+ SI=\S+ DI=\S+ "
                            r"ES=0000 from 0000:7C[0-9A-F]{2} -> CF=0", line), line


def test_trace_shows_failed_disk_calls_with_their_status():
    done = run_kvmrun("boot", "--screen=off", "--trace=bios", "--timeout", TIMEOUT, image("twostage"))
    assert done.returncode == 0, done.stderr.decode()
    disk_calls = [line for line in done.stderr.decode().splitlines() if "int 13h" in line]
    functions = [re.search(r"AH=(\w\w)h", line).group(1) for line in disk_calls]
    assert functions == ["02", "41", "42", "08", "02", "02", "01"]
    assert disk_calls[2].endswith("-> AX=0002 CF=0")          # AH=42h: AH=0, the packet's 2 blocks
    assert disk_calls[4].endswith("-> AX=0400 CF=1")          # past the end: sector not found
    assert disk_calls[5].endswith("-> AX=0100 CF=1")          # sector 0: invalid parameter


def test_tracing_on_a_terminal_shows_the_screen_as_text_after_the_run_so_no_trace_line_is_wiped():
    controller, terminal = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "kvmrun", "boot", "--trace=bios", "--timeout", str(TIMEOUT),
                             image("hello")], stdin=terminal, stdout=terminal, stderr=terminal)
    os.close(terminal)
    data = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:                  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        data += chunk
    assert proc.wait(timeout=60) == 0
    os.close(controller)
    assert b"\x1b[?7l" not in data                        # no live region was drawn
    assert b"--- screen 80x25 ---" in data and data.count(b"bios: int 10h AH=0Eh") > 10
