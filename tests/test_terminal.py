"""A terminal on stdin: raw mode while the guest runs, the old mode back on every way out."""
import os
import pty
import select
import subprocess
import sys
import termios
import time

import pytest

from conftest import guest

pytestmark = pytest.mark.kvm


def read_until(fd, wanted, timeout=30):
    data = b""
    deadline = time.monotonic() + timeout
    while wanted not in data and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            data += chunk
    return data


@pytest.fixture
def terminal():
    master, slave = pty.openpty()
    yield master, slave
    os.close(master)
    os.close(slave)


def start(slave, *args):
    return subprocess.Popen([sys.executable, "-m", "kvmrun", "boot", *args], stdin=slave,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_keys_reach_the_guest_one_by_one_and_the_mode_is_restored(terminal):
    master, slave = terminal
    before = termios.tcgetattr(slave)
    proc = start(slave, guest("echo64.elf"))
    try:
        assert read_until(proc.stdout.fileno(), b"> ") == b"> "
        os.write(master, b"ab")                      # no newline: only raw mode delivers these now
        assert read_until(proc.stdout.fileno(), b"AB") == b"AB"
        assert read_until(master, b"ab", timeout=0.5) == b""   # and the terminal did not echo them
        os.write(master, b"\n")
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert out == b"\n" and proc.returncode == 0
    assert termios.tcgetattr(slave) == before


@pytest.mark.parametrize("how, status", [("timeout", 124), ("SIGTERM", 143), ("SIGINT", 130), ("SIGHUP", 129),
                                         ("SIGQUIT", 131), ("fault", 1), ("fault on one vCPU of four", 1),
                                         ("stdout closed", 141)])
def test_mode_is_restored_when_the_run_is_cut_short(terminal, how, status):
    import signal
    master, slave = terminal
    before = termios.tcgetattr(slave)
    if how == "timeout":
        proc = start(slave, "--timeout", "1", guest("spin64.elf"))
    elif how.startswith("SIG"):
        proc = start(slave, guest("spin64.elf"))
        assert read_until(proc.stdout.fileno(), b"spinning\n") == b"spinning\n"
        proc.send_signal(getattr(signal, how))
    elif how == "fault":
        proc = start(slave, guest("triple64.elf"))
    elif how == "stdout closed":
        proc = start(slave, "--timeout", "60", guest("coalesce64.elf"))
        proc.stdout.read(10)
        proc.stdout.close()
    else:
        proc = start(slave, "--cpus", "4", "--timeout", "60", guest("smpstop64.bin"))
    try:
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == status
    assert b"Traceback" not in proc.stderr.read()
    assert termios.tcgetattr(slave) == before


def is_raw(fd):
    return not termios.tcgetattr(fd)[3] & termios.ECHO


@pytest.mark.parametrize("signame, status", [("SIGTERM", 143), ("SIGHUP", 129), ("SIGQUIT", 131), ("SIGINT", 130)])
def test_mode_is_restored_after_a_signal_during_set_up(terminal, signame, status):
    """Setting up 1024 vCPUs takes about half a second, in raw mode already: a signal then ends the
    run with 128+N before the guest runs, and the terminal gets its mode back."""
    import signal
    master, slave = terminal
    before = termios.tcgetattr(slave)
    proc = start(slave, "--cpus", "1024", "--timeout", "30", guest("spin64.elf"))
    try:
        deadline = time.monotonic() + 30
        while not is_raw(slave) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.001)
        proc.send_signal(getattr(signal, signame))
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == status, err.decode()
    assert out == b"" and b"Traceback" not in err
    assert termios.tcgetattr(slave) == before
