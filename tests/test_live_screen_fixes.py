"""The live screen and the host loop on real terminals: a resize redraws the screen for the new size
(SIGWINCH, handled only while the screen is live on a terminal); an 80-column, 25-row terminal shows
the whole screen, column 80 included; a serial line the screen appears in the middle of stays one
line though it holds a tab or colours; and descriptors above 1023 (700 vCPUs) work in the host loop,
the output's writes and `kvmrun test`'s workers."""
import fcntl
import os
import pty
import resource
import signal
import struct
import subprocess
import sys
import termios
import time

import pytest

from conftest import guest
from kvmrun.console import FdOutput
from kvmrun.outcome import Outcome
from kvmrun.runtime.hostloop import HostLoop
from kvmrun.screen import COLUMNS, ROWS, Screen
from kvmrun.screen_view import LiveScreen
from test_screen import Terminal, drive, frame, screen_of

HEADER = "--- screen 80x25 ---"


def full_screen(cursor=None) -> Screen:
    """25 rows of 80 characters, each row's last one a digit, so a cut column 80 shows."""
    rows = [f"row {i:02} ".ljust(COLUMNS - 1, ".") + str(i % 10) for i in range(ROWS)]
    return screen_of(*rows, cursor=cursor)


# --- 80 columns, 25 rows ------------------------------------------------------------------------------

def test_an_80x25_terminal_shows_all_25_rows_of_the_live_screen_at_full_width():
    term, live = Terminal(80, 25), LiveScreen(80, 25)
    screen = full_screen(cursor=(24, 79))
    drive(live, term, b"log\n", screen)
    assert term.visible() == list(screen.lines)   # every row, every column, no header
    assert (term.row, term.col) == (24, 79)                # the guest's cursor, in the last column
    drive(live, term, b"more\n", screen_of("changed", cursor=(0, 7)), b"again\n")
    assert term.lines()[:3] == ["log", "more", "again"]    # serial lines above, nothing garbled
    assert term.visible()[0] == "changed"


class TmuxTerminal(Terminal):
    """As tmux 3.3 with scroll-on-clear (its default): erasing to the end of the screen from the
    top-left corner pushes the screen's rows, up to the last one in use, into the history."""

    def _csi(self, params: str, final: str) -> None:
        if final == "J" and params in ("", "0") and (self.row, self.col) == (0, 0):
            used = [i for i, row in enumerate(self.grid) if "".join(row).strip()]
            if used:
                self.scrolled += self.grid[:used[-1] + 1]
        super()._csi(params, final)


def test_a_region_as_tall_as_the_terminal_is_redrawn_without_leaving_copies_in_tmuxs_history():
    term, live = TmuxTerminal(80, 25), LiveScreen(80, 25)
    first, second = full_screen(cursor=(0, 0)), screen_of("second", cursor=(0, 0))
    drive(live, term, first, b"log\n", second, b"more\n")
    term.feed(live.finish())
    assert term.lines() == ["log", "more", HEADER, "second"]


def test_a_short_terminal_keeps_the_unfinished_line_then_the_screen_then_the_header():
    screen = full_screen(cursor=(24, 0))
    term, live = Terminal(80, 25), LiveScreen(80, 25)
    drive(live, term, screen, b"login: ")
    assert term.visible() == ["login:"] + list(screen.lines[1:])   # the rows around the cursor
    term, live = Terminal(80, 27), LiveScreen(80, 27)
    drive(live, term, b"log\n", screen)
    assert term.visible() == ["log", HEADER] + list(screen.lines)   # room for everything


def test_the_final_screen_keeps_column_80_on_an_80_column_terminal():
    term, live = Terminal(80, 25), LiveScreen(80, 25)
    screen = full_screen()
    drive(live, term, b"done\n", screen)
    term.feed(live.finish())
    assert term.lines() == ["done", HEADER] + list(screen.lines)
    assert term.col == 0 and term.visible()[term.row] == ""        # the prompt on a line of its own
    assert all(len(line) == 80 for line in term.lines()[2:])


# --- the line the screen appears in the middle of -----------------------------------------------------

@pytest.mark.parametrize("start, before, rest, after", [
    (b"name:\tvalue", "name:   value", b" end\n", "name:   value end"),
    (b"\x1b[1mbold\x1b[0m and", "bold and", b" plain\n", "bold and plain"),
    (b"10%\r\x1b[K20%", "20%", b" done\n", "20% done"),
    (b"title\x1b]0;kvmrun\x07:", "title:", b" set\n", "title: set"),
])
def test_a_line_with_tabs_or_colours_the_screen_appears_in_the_middle_of_stays_one_line(start, before, rest,
                                                                                       after):
    term, live = Terminal(60, 40), LiveScreen(60, 40)
    screen = screen_of("S")
    drive(live, term, b"first\n" + start, screen)
    assert term.lines() == ["first", before] + frame(screen, 60)
    drive(live, term, rest)
    assert term.lines() == ["first", after] + frame(screen, 60)


def test_a_line_that_wrapped_before_returning_to_its_start_is_not_taken_into_the_region():
    term, live = Terminal(60, 40), LiveScreen(60, 40)
    screen = screen_of("S")
    drive(live, term, b"first\n" + b"x" * 70 + b"\r\x1b[Kshort", screen, b"rest\n")
    assert term.lines() == ["first", "x" * 60, "short", "rest"] + frame(screen, 60)


# --- resizing ------------------------------------------------------------------------------------------

def set_size(fd: int, columns: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))


def read_all(fd: int) -> bytes:
    data = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except (BlockingIOError, OSError):
            return data
        if not chunk:
            return data
        data += chunk


def test_the_output_redraws_the_live_screen_when_the_terminal_is_resized():
    master, slave = pty.openpty()
    try:
        os.set_blocking(master, False)
        set_size(slave, 100, 30)
        output = FdOutput(slave)
        assert output.live_on_terminal()
        term = Terminal(100, 30)
        screen = screen_of("x" * 80, "y")
        output.show_screen(screen)
        term.feed(read_all(master))
        assert term.visible()[:3] == [HEADER, "x" * 80, "y"]
        set_size(slave, 60, 30)
        term.width = 60                                   # a terminal that cuts rows when narrowed
        term.grid = [row[:60] for row in term.grid]
        output.terminal_resized()
        redrawn = read_all(master)
        assert b"x" * 60 + b"\x1b[0m" in redrawn
        term.feed(redrawn)
        assert term.lines() == frame(screen, 60)
    finally:
        os.close(master)
        os.close(slave)


def test_only_a_live_screen_on_a_terminal_follows_its_size():
    r, w = os.pipe()
    try:
        assert not FdOutput(w).live_on_terminal()
    finally:
        os.close(r)
        os.close(w)
    master, slave = pty.openpty()
    try:
        output = FdOutput(slave)
        output.screen_mode = "text"
        assert not output.live_on_terminal()
    finally:
        os.close(master)
        os.close(slave)


class StandInMachine:
    def __init__(self):
        self.wakeup = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        self.done = False
        self.paused_seconds = 0.0
        self.paused_on_request = False

    def finish(self, outcome: Outcome) -> None:
        self.done = True


def test_the_host_loop_runs_a_signals_work_during_the_run_only_and_puts_the_handler_back():
    machine = StandInMachine()
    loop = HostLoop(machine)
    before = signal.getsignal(signal.SIGWINCH)
    seen = []
    loop.on_signal(signal.SIGWINCH, lambda: seen.append(time.monotonic()))

    def resize_then_end():
        if not seen:
            os.kill(os.getpid(), signal.SIGWINCH)
        else:
            machine.done = True

    loop.every(0.01, resize_then_end)
    try:
        assert signal.getsignal(signal.SIGWINCH) == before     # not before the run
        loop.run(time.monotonic() + 5)
    finally:
        loop.close()
        os.close(machine.wakeup)
    assert len(seen) == 1
    assert signal.getsignal(signal.SIGWINCH) == before         # and not after it


def _boot_on_a_terminal(image: str, columns: int, rows: int, *, resize_to=None) -> bytes:
    """kvmrun boot on a pty of its own (its controlling terminal, so the kernel signals a resize):
    waits for the screen, resizes the terminal if asked and waits for the redraw, then presses a key,
    which the guest waits for. Returns everything kvmrun wrote."""
    master, slave = pty.openpty()
    try:
        os.set_blocking(master, False)
        set_size(slave, columns, rows)
        proc = subprocess.Popen([sys.executable, "-m", "kvmrun", "boot", image], stdin=slave, stdout=slave,
                                stderr=subprocess.PIPE, start_new_session=True,
                                preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
        os.close(slave)
        slave = -1
        shown = _read_until(master, b"x" * min(columns, 80))
        if resize_to is not None:
            set_size(master, *resize_to)
            shown += _read_until(master, b"x" * resize_to[0] + b"\x1b[0m", after=len(shown), seen=shown)
        os.write(master, b"q")
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            shown += read_all(master)
            time.sleep(0.01)
        shown += read_all(master)
        assert proc.wait(timeout=10) == 0, proc.stderr.read() if proc.stderr else None
        return shown
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)


def _read_until(master: int, wanted: bytes, after: int = 0, seen: bytes = b"") -> bytes:
    data = b""
    deadline = time.monotonic() + 20
    while wanted not in (seen + data)[after:]:
        assert time.monotonic() < deadline, f"{wanted!r} never came; got {(seen + data)[-400:]!r}"
        data += read_all(master)
        time.sleep(0.01)
    return data


# mov edi, 0xB8000; mov ecx, 80; mov ax, 0x0778; rep stosw ("x" across row 0); mov word [rdi], 0x1F21
# ("!" at row 1); then wait for a byte on COM1 (poll LSR bit 0), read it, hlt.
KEY_WAITER = bytes.fromhex("bf00800b00b95000000066b87807f366ab66c707211f"
                           "66bafd03eca80174fb66baf803ecf4")


@pytest.fixture
def key_waiter(tmp_path):
    path = tmp_path / "keywait.bin"
    path.write_bytes(KEY_WAITER)
    return str(path)


@pytest.mark.kvm
def test_a_resized_terminal_gets_the_live_screen_redrawn_for_its_new_width(key_waiter):
    shown = _boot_on_a_terminal(key_waiter, 100, 30, resize_to=(60, 30))
    term = Terminal(100, 30)
    resized_at = shown.index(b"x" * 80) + 80
    term.feed(shown[:resized_at])
    term.width = 60
    term.grid = [row[:60] for row in term.grid]
    term.feed(shown[resized_at:])
    assert term.lines() == [HEADER, "x" * 60, "!"]            # the final frame, at the new width


@pytest.mark.kvm
def test_on_an_80_column_terminal_the_screen_keeps_column_80(key_waiter):
    shown = _boot_on_a_terminal(key_waiter, 80, 25)
    term = Terminal(80, 25)
    term.feed(shown)
    assert term.lines() == [HEADER, "x" * 80, "!"]


# --- descriptors above 1023 ----------------------------------------------------------------------------

@pytest.fixture
def high_fd():
    """A descriptor number select(2) cannot take; raises the soft limit on open files if needed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1500 and (hard == resource.RLIM_INFINITY or hard >= 1500):
        resource.setrlimit(resource.RLIMIT_NOFILE, (1500, hard))
    elif soft < 1500:
        pytest.skip("this process may not open descriptor 1400")
    yield 1400
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_the_host_loop_watches_descriptors_above_1023(high_fd):
    machine = StandInMachine()
    loop = HostLoop(machine)
    r, w = os.pipe()
    os.dup2(r, high_fd)
    os.close(r)
    read = []
    try:
        loop.watch(high_fd, lambda: read.append(os.read(high_fd, 10)) or setattr(machine, "done", True))
        os.write(w, b"key")
        loop.run(time.monotonic() + 5)
        assert read == [b"key"]
    finally:
        loop.close()
        os.close(high_fd)
        os.close(w)
        os.close(machine.wakeup)


def test_output_to_a_descriptor_above_1023_is_written(high_fd):
    r, w = os.pipe()
    os.dup2(w, high_fd)
    os.close(w)
    try:
        output = FdOutput(high_fd)                       # a blocking pipe: it looks for room first
        for byte in b"hello\n":
            output.put(byte)
        output.flush()
        assert os.read(r, 100) == b"hello\n"
    finally:
        os.close(r)
        os.close(high_fd)


@pytest.mark.kvm
def test_700_vcpus_boot_without_a_traceback(tmp_path):
    image = tmp_path / "hlt.bin"
    image.write_bytes(b"\xf4")
    done = subprocess.run([sys.executable, "-m", "kvmrun", "boot", "--cpus", "700", str(image)],
                          capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")



# Opens 1100 descriptors that survive exec, then runs kvmrun: what kvmrun opens is numbered above 1100.
WITH_MANY_FDS = """
import os, resource, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1500), hard))
for _ in range(1100):
    os.set_inheritable(os.open(os.devnull, os.O_RDONLY), True)
os.execv(sys.executable, [sys.executable, "-m", "kvmrun", *sys.argv[1:]])
"""


@pytest.mark.kvm
def test_kvmrun_test_runs_its_workers_over_descriptors_above_1023(tmp_path):
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < 1500:
        pytest.skip("this process may not open 1500 descriptors")
    manifest = tmp_path / "kvmrun.toml"
    manifest.write_text("".join(f'[[guest]]\nname = "hello{i}"\nimage = "{guest("hello64.elf")}"\n'
                                f'expect_serial = "Hello from long mode"\n\n' for i in range(4)))
    done = subprocess.run([sys.executable, "-c", WITH_MANY_FDS, "test", str(manifest), "--jobs", "2"],
                          capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0 and b"Traceback" not in done.stderr, done.stderr.decode()
    assert b"4 passed" in done.stdout, done.stdout.decode()
