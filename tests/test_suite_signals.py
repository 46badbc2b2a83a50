"""`kvmrun test` stopped from outside: SIGTERM, Ctrl-C (once or twice), a worker killed under it, a
worker that never answers. Each ends promptly, with its status, and leaves no process behind."""
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET

import pytest

from conftest import GUESTS

pytestmark = pytest.mark.kvm

SPINNERS = f'''
[defaults]
timeout = 20

[[guest]]
name = "spin-a"
image = "{GUESTS}/spin64.elf"

[[guest]]
name = "spin-b"
image = "{GUESTS}/spin64.elf"

[[guest]]
name = "spin-c"
image = "{GUESTS}/spin64.elf"
'''


def _stat(pid: str):
    """(ppid, session) of a process, None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return int(fields[1]), int(fields[3])


def in_session(session: int):
    return [int(pid) for pid in os.listdir("/proc") if pid.isdigit() and (_stat(pid) or (0, 0))[1] == session]


def children(parent: int):
    return [int(pid) for pid in os.listdir("/proc") if pid.isdigit() and (_stat(pid) or (0, 0))[0] == parent]


@pytest.fixture
def kvmrun_test(tmp_path):
    """Start `python -m kvmrun test` in a session of its own, as a terminal's foreground job is; the
    whole session is killed at the end, whatever the test found."""
    started = []

    def start(manifest_text, *args):
        manifest = tmp_path / "suite.toml"
        manifest.write_text(manifest_text)
        proc = subprocess.Popen([sys.executable, "-m", "kvmrun", "test", str(manifest), *map(str, args)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        for pid in in_session(proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.kill()
        proc.communicate()


def holds_a_vcpu(pid: int) -> bool:
    """Whether process `pid` has a KVM vCPU open: a guest is booting or running in it."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("anon_inode:kvm-vcpu"):
                return True
        except OSError:
            pass
    return False


def wait_for_guests(proc, workers: int = 0, settle: float = 0.3) -> None:
    """Until guests boot, in `workers` worker processes or, with none, in kvmrun itself (one job), then a
    little longer so they are inside KVM_RUN. kvmrun handles SIGINT and SIGTERM by then: a fixed sleep
    could end before it does on a slow host."""
    def booting() -> bool:
        if workers:
            return sum(holds_a_vcpu(pid) for pid in children(proc.pid)) >= workers
        return holds_a_vcpu(proc.pid)

    deadline = time.monotonic() + 15
    while not booting():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no guest started"
        time.sleep(0.02)
    time.sleep(settle)


def ended_within(proc, seconds: float):
    start = time.monotonic()
    out, err = proc.communicate(timeout=30)
    elapsed = time.monotonic() - start
    assert elapsed < seconds, f"took {elapsed:.1f} s to end"
    return out.decode(), err.decode()


@pytest.mark.parametrize("jobs", ["2", "1"])
def test_sigterm_ends_the_run_at_once_with_143_and_no_worker_left(kvmrun_test, jobs):
    proc = kvmrun_test(SPINNERS, "--jobs", jobs)
    wait_for_guests(proc, workers=2 if jobs == "2" else 0)
    os.kill(proc.pid, signal.SIGTERM)
    out, err = ended_within(proc, 2.0)
    assert proc.returncode == 143, err
    assert err == "kvmrun: SIGTERM: stopped the guests still running\n"
    assert in_session(proc.pid) == []


@pytest.mark.parametrize("jobs", ["2", "1"])
def test_ctrl_c_to_the_process_group_ends_the_run_at_once_with_130(kvmrun_test, jobs):
    proc = kvmrun_test(SPINNERS, "--jobs", jobs)
    wait_for_guests(proc, workers=2 if jobs == "2" else 0)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = ended_within(proc, 2.0)
    assert proc.returncode == 130, err
    assert err == "kvmrun: SIGINT: stopped the guests still running\n"
    assert in_session(proc.pid) == []


@pytest.mark.parametrize("gap", [0.0, 0.001, 0.01, 0.05])
def test_two_ctrl_cs_in_a_row_end_it_just_as_well(kvmrun_test, gap):
    proc = kvmrun_test(SPINNERS, "--jobs", "2")
    wait_for_guests(proc, workers=2)
    os.killpg(proc.pid, signal.SIGINT)
    time.sleep(gap)
    try:
        os.killpg(proc.pid, signal.SIGINT)
    except ProcessLookupError:
        pass                      # it was already gone
    out, err = ended_within(proc, 2.0)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert in_session(proc.pid) == []


def test_workers_die_with_a_killed_runner(kvmrun_test):
    proc = kvmrun_test(SPINNERS, "--jobs", "2")
    wait_for_guests(proc, workers=2)
    os.kill(proc.pid, signal.SIGKILL)       # no chance to clean up: PR_SET_PDEATHSIG does it
    proc.wait()
    deadline = time.monotonic() + 2
    while in_session(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert in_session(proc.pid) == []


KILLED_WORKER = f'''
[defaults]
timeout = 20

[[guest]]
name = "spin-a"
image = "{GUESTS}/spin64.elf"
timeout = 2
expect_reason = "timeout"

[[guest]]
name = "after-a"
image = "{GUESTS}/hello64.elf"
expect_serial = "Hello"

[[guest]]
name = "spin-b"
image = "{GUESTS}/spin64.elf"
timeout = 2
expect_reason = "timeout"

[[guest]]
name = "after-b"
image = "{GUESTS}/hello64.elf"
expect_serial = "Hello"
''' + "".join(f'''
[[guest]]
name = "hello-{i}"
image = "{GUESTS}/hello64.elf"
expect_serial = "Hello"
''' for i in range(12))


def test_a_killed_worker_costs_its_guest_only(kvmrun_test, tmp_path):
    # 16 guests, two workers: batches of two, so each spinner shares its batch with the guest after it.
    junit = tmp_path / "report.xml"
    proc = kvmrun_test(KILLED_WORKER, "--jobs", "2", "--junit-xml", junit)
    wait_for_guests(proc, workers=2)
    os.kill(children(proc.pid)[0], signal.SIGKILL)   # each worker is running a spinner
    out, err = ended_within(proc, 10)
    assert proc.returncode == 1, err
    assert err == ""              # no traceback, no BrokenProcessPool
    assert "15 passed, 1 failed" in out
    (victim,) = [name for name in ("spin-a", "spin-b") if f"ERROR {name}" in out]
    survivor = "spin-b" if victim == "spin-a" else "spin-a"
    assert f"PASS {survivor}" in out and "PASS after-a" in out and "PASS after-b" in out
    assert "the worker process running it died (killed by SIGKILL) before it ended" in out
    # It ran for seconds: the table says how it ended, not that kvmrun refused to boot it.
    (row,) = [line for line in out.splitlines() if line.startswith(f"│ {victim} ")]
    assert "worker died" in row and "not booted" not in out
    suite = ET.parse(junit).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("16", "0", "1")
    (error,) = [case.find("error") for case in suite.findall("testcase") if case.get("name") == victim]
    assert "killed by SIGKILL" in error.get("message")
    (case,) = [case for case in suite.findall("testcase") if case.get("name") == victim]
    assert {p.get("name"): p.get("value") for p in case.iter("property")} == {"status": "-", "ended": "worker died"}
    assert in_session(proc.pid) == []


def test_a_worker_that_never_answers_is_killed_after_its_guests_timeout_and_a_grace(tmp_path):
    # Stopped workers stand for ones stuck anywhere (in the kernel, in a guest without a usable
    # timeout): each guest becomes an error once its timeout and the grace are over, and the run goes on.
    # A worker stops itself as it takes such a guest (workers are forked: they inherit the stand-in), so
    # it is stuck before the guest's own timeout could end it, however slowly this host runs.
    script = textwrap.dedent(f'''
        import os, signal
        from kvmrun.suite import runner
        from kvmrun.suite.manifest import GuestSpec
        runner.WALL_CLOCK_GRACE = 0.5
        runner.DEFAULT_TIMEOUT = 1.0      # the bound for a guest without a timeout of its own
        specs = [GuestSpec("stuck", "{GUESTS}/spin64.elf", {{"timeout": 1.0}}, expect_status=124),
                 GuestSpec("forever", "{GUESTS}/spin64.elf", {{}}, expect_status=124),
                 GuestSpec("hello", "{GUESTS}/hello64.elf", {{"timeout": 5.0}})]
        run_guarded = runner._run_guarded

        def stuck_on_spinners(spec):
            if spec.name != "hello":
                os.kill(os.getpid(), signal.SIGSTOP)
            return run_guarded(spec)

        runner._run_guarded = stuck_on_spinners
        for outcome in runner.run_suite(specs, 2, lambda outcome: None):
            print(outcome.spec.name, outcome.passed, f"{{outcome.elapsed:.2f}}", outcome.ended, "-", outcome.error,
                  flush=True)
    ''')
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=20)
    finally:
        for pid in in_session(proc.pid):
            os.kill(pid, signal.SIGKILL)
        proc.communicate()
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, err.decode()
    stuck, forever, hello = out.decode().splitlines()
    # How long each had run is measured: 1.5 s at the earliest, a little more when this host is slow.
    for line, name, bound in ((stuck, "stuck", "its 1 s timeout"),
                              (forever, "forever", "the default 1 s timeout (it has no usable one: None)")):
        found = re.fullmatch(rf"{name} False (\d+\.\d\d) worker killed - still running (\d+\.\d) s after it "
                             rf"started, past {re.escape(bound)} and a 0\.5 s grace: killed the worker process "
                             rf"running it", line)
        assert found and float(found.group(1)) >= 1.5 and float(found.group(2)) >= 1.5, line
    assert re.fullmatch(r"hello True \d+\.\d\d halted - None", hello), hello
    assert elapsed < 8
