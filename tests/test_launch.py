"""The launcher's quick reading of `kvmrun boot` (launch.py): what it takes itself and what it leaves to
click, and that both roads end alike; the machine closed after kvmrun has exited; and the modules a
boot does without."""
import os
import subprocess
import sys
import time

import pytest

from conftest import guest, run_kvmrun
from kvmrun.launch import read_boot_args
from kvmrun.machine import wait_until_gone


@pytest.mark.parametrize("args, parsed", [
    (["g.elf"], ("g.elf", "auto", {})),
    (["--cpus", "2", "-m", "64M", "g.elf"], ("g.elf", "auto", {"cpus": "2", "memory": "64M"})),
    (["g.elf", "--timeout=5", "--strict-io"], ("g.elf", "auto", {"timeout": "5", "strict_io": True})),
    (["--module", "a", "--module=b=x y", "k.elf"], ("k.elf", "auto", {"modules": ("a", "b=x y")})),
    (["--cmdline", "-v --quiet", "k.elf"], ("k.elf", "auto", {"cmdline": "-v --quiet"})),
    (["--cmdline=", "k.elf"], ("k.elf", "auto", {"cmdline": ""})),
    (["--screen", "off", "--exit-code", "qemu", "k.elf"], ("k.elf", "off", {"exit_code": "qemu"})),
    (["--cpus", "1", "--cpus", "3", "g.elf"], ("g.elf", "auto", {"cpus": "3"})),   # the last counts
])
def test_plain_boot_command_lines_are_read_without_click(args, parsed):
    assert read_boot_args(args) == parsed


@pytest.mark.parametrize("args", [
    [], ["--help"], ["-h", "g.elf"], ["a.elf", "b.elf"], ["--cpus"], ["g.elf", "--cpus"], ["--cpu", "2", "g.elf"],
    ["--strict-io=yes", "g.elf"], ["--screen", "colour", "g.elf"], ["--", "g.elf"], ["-m64M", "g.elf"],
    ["--unknown", "g.elf"],
])
def test_anything_else_is_left_to_click(args):
    assert read_boot_args(args) is None


@pytest.mark.kvm
@pytest.mark.parametrize("args", [
    ["--cpus", "0"], ["--memory", "1T"], ["--timeout", "-1"], ["--cmdline", "x"], ["--exit-code", "q"],
])
def test_both_roads_give_the_same_error(args):
    quick = run_kvmrun("boot", *args, guest("hello64.elf"))
    # `--` after the options makes the launcher hand the same command line to click.
    through_click = run_kvmrun("boot", *args, "--", guest("hello64.elf"))
    assert quick.returncode == through_click.returncode == 2
    assert quick.stderr == through_click.stderr and quick.stderr.startswith(b"kvmrun: error: ")


@pytest.mark.kvm
def test_both_roads_boot_alike():
    quick = run_kvmrun("boot", "--exit-code", "qemu", guest("qemuexit.elf"))
    through_click = run_kvmrun("boot", "--exit-code", "qemu", "--", guest("qemuexit.elf"))
    assert (quick.returncode, quick.stdout, quick.stderr) == (through_click.returncode, through_click.stdout,
                                                              through_click.stderr)
    assert quick.returncode == 65


def _kvm_vms_of(pid: int) -> int:
    try:
        return sum(os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:kvm-vm" for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


@pytest.mark.kvm
def test_an_irqchip_machine_is_closed_by_a_child_once_kvmrun_has_exited():
    """kvmrun's output ends when kvmrun exits (the child holds no pipe of its caller), and the child
    that tears the machine down is gone shortly after."""
    proc = subprocess.Popen([sys.executable, "-m", "kvmrun", "boot", guest("barebones.elf")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=60)           # returns at EOF: nobody else holds the pipes
    assert proc.returncode == 0, err
    assert b"barebones: done" in out
    image = guest("barebones.elf").encode()

    def holding_a_vm():                               # kvmrun's forked child has kvmrun's command line
        return [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
                if image in _cmdline(pid) and _kvm_vms_of(pid)]
    deadline = time.monotonic() + 10
    while holding_a_vm() and time.monotonic() < deadline:    # until its teardown is done
        time.sleep(0.05)
    assert not holding_a_vm()


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rpartition(")")[2].split()[0]


def test_the_closing_child_waits_until_the_process_has_ended():
    """With a pidfd: not before the process has ended (a zombie, every thread gone), so its teardown
    cannot hold up the process's own release of its address space."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3)"])
    pidfd = os.pidfd_open(proc.pid)
    unused_read, unused_write = os.pipe()
    try:
        wait_until_gone(pidfd, unused_read)
        assert _state(proc.pid) == "Z"
    finally:
        os.close(pidfd)
        os.close(unused_read)
        os.close(unused_write)
        proc.wait()


def test_without_a_pidfd_the_closing_child_waits_for_the_end_of_the_pipe(tmp_path):
    read_end, write_end = os.pipe()
    finished = tmp_path / "finished"
    proc = subprocess.Popen([sys.executable, "-c", f"import time; time.sleep(0.3); open({str(finished)!r}, 'w')"],
                            pass_fds=(write_end,))
    os.close(write_end)                               # the process holds the only writer
    try:
        wait_until_gone(-1, read_end)
        assert finished.exists()                      # written just before it exited, closing its end
    finally:
        os.close(read_end)
        proc.wait()


# Modules whose import alone costs a boot milliseconds here, and what stands in for each on the boot
# path: typing (TYPE_CHECKING), re (compiled when needed), enum (named_values), threading (sync),
# contextlib (cleanup), functools and collections (pulled in by all of those; fifo), signal (os_signal),
# selectors, queue.
HEAVY_MODULES = {"typing", "re", "enum", "threading", "contextlib", "functools", "collections", "signal",
                 "selectors", "queue"}


@pytest.mark.kvm
@pytest.mark.parametrize("args", [["hello64.elf"], ["hello16.bin"], ["--mode", "real", "hello16.bin"],
                                  ["barebones.elf", "--module", "module.txt"], ["barebones2.elf"], ["pvh.elf"],
                                  ["hello.img"], ["vgascroll.elf"]])
def test_booting_imports_none_of_the_heavy_modules(args):
    code = ("import os, sys\n"
            "sys.argv = ['kvmrun', 'boot'] + sys.argv[1:]     # the screen as text after the run\n"
            "exit_now = os._exit\n"
            "def report(status):\n"
            f"    print(sorted({sorted(HEAVY_MODULES)!r} & sys.modules.keys()), status, file=sys.stderr)\n"
            "    exit_now(status)\n"
            "os._exit = report\n"
            "from kvmrun.launch import main\n"
            "main()\n")
    argv = [guest(arg) if "." in arg else arg for arg in args]
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, timeout=60)
    assert done.stderr.decode().splitlines()[-1] == "[] 0", done.stderr.decode()
