"""kvmrun boot's stdio as a user meets it: closed and unwritable descriptors, output that shows as it
is written, a stalled stdout reader, and 128 vCPUs starting within --timeout. kvmrun runs as a
separate process, as in a shell."""
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time

import pytest

from conftest import guest

pytestmark = pytest.mark.kvm

KVMRUN = [sys.executable, "-m", "kvmrun", "boot"]


def start(*args, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, shell_redirect=None):
    """kvmrun boot ARGS; `shell_redirect` (e.g. ">&-") is applied by sh before kvmrun starts."""
    command = [*KVMRUN, *map(str, args)]
    if shell_redirect is not None:
        command = ["sh", "-c", f'exec "$@" {shell_redirect}', "sh", *command]
    return subprocess.Popen(command, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE)


def finish(proc, timeout=30):
    """Status and stderr; a kvmrun still running after `timeout` is killed and reported as such."""
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"kvmrun still running after {timeout} s")
    return proc.returncode, err


def read_until(fd, wanted, timeout):
    data = b""
    deadline = time.monotonic() + timeout
    while wanted not in data and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.05)[0]:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            data += chunk
    return data


# --- closed and unwritable descriptors -----------------------------------------------------------

@pytest.mark.parametrize("fd", [0, 1, 2])
def test_no_file_kvmrun_opens_takes_a_closed_standard_descriptor(fd):
    """`kvmrun boot g.elf >&-` used to open /dev/kvm as fd 1 and write the guest's output into it."""
    proc = start("--timeout", "20", guest("spin64.elf"), stdout=subprocess.DEVNULL, shell_redirect=f"{fd}>&-")
    try:
        fds = f"/proc/{proc.pid}/fd"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:             # until kvmrun has opened /dev/kvm
            links = {}
            for name in os.listdir(fds):
                try:
                    links[int(name)] = os.readlink(f"{fds}/{name}")
                except OSError:
                    pass
            if "/dev/kvm" in links.values():
                break
            time.sleep(0.01)
        assert links.get(fd) == "/dev/null", links
    finally:
        proc.terminate()
        finish(proc)


@pytest.mark.parametrize("redirect", [">&-", "<&-", "2>&-"])
def test_a_closed_standard_descriptor_keeps_the_guests_status(redirect):
    for image, status in (("hello64.elf", 0), ("exit64.elf", 42)):
        proc = start(guest(image), stdin=None, shell_redirect=redirect)
        code, err = finish(proc)
        assert (code, err) == (status, b""), err.decode()


def test_a_write_error_on_stdout_is_one_line_and_stops_the_guest():
    """`>/dev/full`: the guest is stopped as for a gone reader, status 2 (not 1: the guest did
    nothing wrong), one line naming the error, no traceback."""
    for image in ("hello64.elf", "spin64.elf"):               # spin64 would never end by itself
        with open("/dev/full", "wb") as full:
            code, err = finish(start(guest(image), stdout=full))
        assert code == 2
        assert err == b"kvmrun: error: cannot write the guest's output to stdout: No space left on device; " \
                      b"stopped the guest\n"


# --- output shows as it is written ---------------------------------------------------------------

def test_output_without_a_newline_shows_at_once_on_a_terminal():
    master, slave = pty.openpty()
    try:
        started = time.monotonic()
        proc = start("--timeout", "30", guest("booting64.elf"), stdout=slave)
        try:
            shown = read_until(master, b"Booting kernel... ", timeout=10)
            elapsed = time.monotonic() - started
            assert shown == b"Booting kernel... " and proc.poll() is None
        finally:
            proc.send_signal(signal.SIGTERM)
            code, err = finish(proc)
        assert elapsed < 5 and code == 143, err.decode()
    finally:
        os.close(master)
        os.close(slave)


def test_output_without_a_newline_shows_on_a_pipe_once_the_guest_stops_printing():
    started = time.monotonic()
    proc = start("--timeout", "30", guest("booting64.elf"))
    try:
        shown = read_until(proc.stdout.fileno(), b"Booting kernel... ", timeout=10)
        elapsed = time.monotonic() - started
        assert shown == b"Booting kernel... " and proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        code, err = finish(proc)
    assert elapsed < 5 and code == 143, err.decode()


# --- a stalled stdout reader -----------------------------------------------------------------------

@pytest.mark.parametrize("args", [["flood64.elf"], ["--cpus", "2", "flood_small64.elf"]],
                         ids=["one vCPU", "two vCPUs"])
def test_a_stalled_reader_does_not_defeat_the_timeout(args):
    """`kvmrun boot flood.elf --timeout 2 | (sleep 30; cat)`: the guest may wait for the reader,
    kvmrun's timeout may not."""
    *options, image = args
    started = time.monotonic()
    proc = start("--timeout", "2", *options, guest(image))     # stdout is a pipe nobody reads
    try:
        code = proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        code = None
    finally:
        proc.kill()
        err = proc.stderr.read()
    assert code == 124 and time.monotonic() - started < 10, err.decode()
    assert b"Traceback" not in err


def wait_until_full(pipe, timeout=20):
    """Until the pipe nobody reads stays filled (more than half of it, unchanged for 0.1 s): kvmrun is
    running the guest, whose output waits for the reader. A fixed sleep could end before kvmrun had
    even set up its signal handling on a slow host."""
    import fcntl
    import struct
    import termios
    size = fcntl.fcntl(pipe, fcntl.F_GETPIPE_SZ)
    deadline = time.monotonic() + timeout
    held = before = 0
    while held <= size // 2 or held != before:
        assert time.monotonic() < deadline, f"the pipe holds {held} of {size} bytes after {timeout} s"
        time.sleep(0.1)
        before, held = held, struct.unpack("i", fcntl.ioctl(pipe, termios.FIONREAD, b"\0" * 4))[0]


@pytest.mark.parametrize("signame, status", [("SIGTERM", 143), ("SIGINT", 130)])
def test_signals_end_a_run_whose_reader_stalled(signame, status):
    proc = start("--cpus", "2", guest("flood64.elf"))
    try:
        wait_until_full(proc.stdout)                           # the guest runs, its reader has stalled
        proc.send_signal(getattr(signal, signame))
        code = proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        code = None
    finally:
        proc.kill()
        err = proc.stderr.read()
    assert code == status and b"Traceback" not in err, err.decode()


# --- start-up is part of the run -------------------------------------------------------------------

def test_the_timeout_counts_from_the_start_with_128_vcpus():
    """Each of 128 vCPU threads used to start while the others spun: --timeout 2 took 9-12 s."""
    started = time.monotonic()
    code, err = finish(start("--cpus", "128", "--timeout", "2", guest("spin64.elf"), stdout=subprocess.DEVNULL))
    elapsed = time.monotonic() - started
    assert code == 124, err.decode()
    assert elapsed < 6


def test_a_kvm_call_that_fails_during_set_up_names_the_call():
    """Under a descriptor limit KVM_CREATE_VCPU fails: that call is named, status 2, not 'no KVM' (3)."""
    import resource

    def few_descriptors():
        resource.setrlimit(resource.RLIMIT_NOFILE, (40, 40))

    proc = subprocess.Popen([*KVMRUN, "--cpus", "64", guest("smp64.elf")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, preexec_fn=few_descriptors)
    code, err = finish(proc)
    assert code == 2
    # Each vCPU takes two descriptors, its fd and mmap's duplicate of it: either call may be the one
    assert re.fullmatch(rb"kvmrun: error: (KVM_CREATE_VCPU|mapping vCPU \d+'s kvm_run) failed: "
                        rb"Too many open files \(errno 24\)\n", err), err
