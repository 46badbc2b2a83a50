"""The runtime's state machine with stand-in vCPUs (no KVM): pause, resume, a single step, a function
on a vCPU's thread, stopping while paused, halting, and the host loop's timeout."""
import threading
import time
from collections import deque

import pytest

from kvmrun.dispatch import HALT, KICKED, Pause
from kvmrun.outcome import Outcome, Reason
from kvmrun.runtime.hostloop import HostLoop
from kvmrun.runtime.machine import Machine
from kvmrun.runtime.vcpu_thread import State
from kvmrun.sync import get_ident


class RunArea:
    immediate_exit = False


class StandInVcpu:
    """Runs a script of actions, one per 'KVM_RUN'; between them it 'runs the guest' until kicked.
    A single step (set_guest_debug with SINGLESTEP) makes the next run end with Pause("step")."""

    def __init__(self, index, script=()):
        self.index = index
        self.run_area = RunArea()
        self.script = deque(script)
        self.steps = 0
        self.stepping = False
        self.calls = []

    def request_stop(self):
        self.run_area.immediate_exit = True

    def set_guest_debug(self, control, debugreg=()):
        self.stepping = bool(control & 2)
        self.debugreg = tuple(debugreg)


def stand_in_loop(vcpu, ctx, absorption, shared):
    while True:
        if vcpu.run_area.immediate_exit:
            return KICKED
        if vcpu.stepping:
            vcpu.steps += 1
            return Pause("step")
        if vcpu.script:
            action = vcpu.script.popleft()
            if action is not None:
                return action
        time.sleep(0.0005)


def machine(*scripts):
    vcpus = [StandInVcpu(i, script) for i, script in enumerate(scripts)]
    m = Machine(vcpus, [None] * len(vcpus), loop=stand_in_loop)
    m.start()
    return m, vcpus


def wait_for(predicate, timeout=5.0):
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.001)


def states(m):
    return [t.state for t in m.threads]


def test_every_vcpu_halting_ends_the_run_with_0():
    m, _ = machine([HALT], [None, None, HALT])
    wait_for(lambda: m.done)
    m.stop_and_join()
    assert m.outcome == Outcome.halted()
    assert states(m) == [State.FINISHED, State.FINISHED]


def test_the_first_outcome_wins_and_stops_every_vcpu():
    m, _ = machine([Outcome.exit_port(7)], [])
    wait_for(lambda: m.done)
    m.finish(Outcome.timeout())
    m.stop_and_join()
    assert m.outcome == Outcome.exit_port(7) and states(m) == [State.FINISHED] * 2


def test_pause_run_functions_on_each_vcpus_thread_and_resume():
    m, vcpus = machine([], [])
    try:
        assert m.pause_all()
        assert states(m) == [State.PAUSED, State.PAUSED]
        seen = [m.on_vcpu(i, lambda vcpu: (vcpu.index, get_ident())) for i in range(2)]
        assert seen == [(0, m.threads[0].thread.ident), (1, m.threads[1].thread.ident)]     # each on its own
        m.resume()
        wait_for(lambda: states(m) == [State.RUNNING, State.RUNNING])
    finally:
        m.finish(Outcome.halted())
        m.stop_and_join()


def test_an_error_on_the_vcpu_thread_reaches_the_caller_of_on_vcpu():
    m, _ = machine([])
    try:
        m.pause_all()
        with pytest.raises(ZeroDivisionError):
            m.on_vcpu(0, lambda vcpu: 1 // 0)
        with pytest.raises(RuntimeError, match="vCPU 0 is running, not paused"):
            m.resume()
            wait_for(lambda: states(m) == [State.RUNNING])
            m.on_vcpu(0, lambda vcpu: None)
    finally:
        m.finish(Outcome.halted())
        m.stop_and_join()


def test_a_single_step_runs_one_vcpu_while_the_others_stay_paused():
    m, vcpus = machine([], [])
    paused = []
    m.on_pause = lambda thread: paused.append((thread.index, thread.why))
    try:
        m.pause_all()
        m.resume(step=1)
        wait_for(lambda: paused)
        assert paused == [(1, "step")] and vcpus[1].steps == 1 and vcpus[0].steps == 0
        assert states(m) == [State.PAUSED, State.PAUSED] and not vcpus[1].stepping   # single-step is off again
        m.resume(step=1)
        wait_for(lambda: len(paused) == 2)
        assert vcpus[1].steps == 2
    finally:
        m.finish(Outcome.halted())
        m.stop_and_join()


def test_stopping_while_paused_ends_every_thread():
    m, _ = machine([], [], [])
    m.pause_all()
    m.finish(Outcome.interrupted(15))
    m.stop_and_join()
    assert states(m) == [State.FINISHED] * 3 and m.outcome.status == 143


def test_the_host_loop_times_out_but_not_while_paused_on_request():
    m, _ = machine([])
    loop = HostLoop(m)
    try:
        m.pause_all(timed=True)
        start = time.monotonic()
        runner = threading.Thread(target=loop.run, args=(start + 0.05,))
        runner.start()
        time.sleep(0.2)
        assert not m.done                   # paused time does not count
        m.resume()
        runner.join(5)
        assert m.outcome.reason is Reason.TIMEOUT and m.paused_seconds >= 0.15
    finally:
        m.stop_and_join()
        loop.close()
        m.close()


def test_a_deadline_passed_before_the_start_waits_while_paused_on_request():
    """`kvmrun boot --gdb` pauses the machine (timed) before its vCPUs start; the set-up before that may
    take longer than a short --timeout on a slow host, and starting must not end the run then: the
    timeout counts once the guest runs."""
    m = Machine([StandInVcpu(0)], [None], loop=stand_in_loop)
    loop = HostLoop(m)
    try:
        m.pause_all(wait=False, timed=True)
        m.start(time.monotonic() - 1.0)                  # the deadline passed during set-up
        assert not m.done and m.pause_all(timed=True)     # held, not timed out
        m.resume()
        loop.run(time.monotonic() - 1.0)
        assert m.outcome.reason is Reason.TIMEOUT        # once it runs, the deadline counts
    finally:
        m.finish(Outcome.halted())
        m.stop_and_join()
        loop.close()
        m.close()


def test_periodic_work_may_back_off():
    """The interval work returns is the wait before its next call. The run ends at the fifth call, not
    at a deadline, and each wait is held to at least what was asked (less a margin for the moment
    between the loop reading the clock and the work reading it): a thread scheduled late only makes
    a wait longer, so gaps need not grow in order on a busy host."""
    m, _ = machine([])
    loop = HostLoop(m)
    calls = []

    def work():
        calls.append(time.monotonic())
        if len(calls) == 5:
            m.finish(Outcome.halted())
        return 0.02 * len(calls)

    loop.every(0.001, work)
    try:
        loop.run(time.monotonic() + 60)
    finally:
        m.stop_and_join()
        loop.close()
        m.close()
    gaps = [b - a for a, b in zip(calls, calls[1:])]
    assert len(calls) == 5 and m.outcome == Outcome.halted()
    assert all(gap >= 0.015 * asked for asked, gap in enumerate(gaps, 1)), gaps    # 0.02 s, 0.04 s, ... asked


@pytest.mark.parametrize("past_select_limit", [False, True])
def test_the_host_loop_calls_each_readable_descriptors_work_until_unwatched(past_select_limit):
    """A descriptor past select(2)'s limit (FD_SETSIZE, 1024) moves the loop to poll(2), watched ones
    and all; work for a descriptor unwatched by the work before it in the same round is not run."""
    import os
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if past_select_limit and hard < 1100:
        pytest.skip("the descriptor limit is below 1100")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1100) if past_select_limit else soft, hard))
    m, _ = machine([])
    loop = HostLoop(m)
    first, second = os.pipe(), os.pipe()
    high = os.dup2(second[0], 1050) if past_select_limit else second[0]
    seen = []

    def read_first():
        seen.append(os.read(first[0], 10))
        loop.unwatch(high)                  # readable too in this round: its work must not run
        m.finish(Outcome.halted())

    def read_high():
        seen.append(os.read(high, 10))
        os.write(first[1], b"a")            # both readable in the next round, `first` watched first
        os.write(second[1], b"c")

    loop.watch(first[0], read_first)
    loop.watch(high, read_high)
    try:
        os.write(second[1], b"b")
        loop.run(time.monotonic() + 30)
        assert seen == [b"b", b"a"] and m.outcome == Outcome.halted()
    finally:
        m.stop_and_join()
        loop.close()
        m.close()
        for fd in {*first, *second, high}:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.kvm
def test_a_real_vcpu_pauses_steps_one_instruction_and_shows_its_registers():
    """The runtime over a real VM: pause a spinning guest, read RIP on its thread, single-step it
    (KVM_SET_GUEST_DEBUG), and see RIP move by one instruction's length."""
    import contextlib

    from conftest import guest
    from kvmrun import machine as machine_module
    from kvmrun.console import CapturedOutput
    from kvmrun.options import BootConfig

    captured = {}
    real_machine = machine_module.Machine

    class Recording(real_machine):
        def start(self, deadline=None):
            captured["machine"] = self
            super().start(deadline)

    with contextlib.ExitStack() as stack:
        stack.callback(setattr, machine_module, "Machine", real_machine)
        machine_module.Machine = Recording
        result = {}
        out = CapturedOutput()
        runner = threading.Thread(target=lambda: result.update(outcome=machine_module.boot(
            BootConfig(image=guest("spin64.elf"), timeout=30), out)))
        runner.start()
        wait_for(lambda: "machine" in captured and captured["machine"].gate.is_set())
        m = captured["machine"]
        wait_for(lambda: out.data.endswith(b"spinning\n"), timeout=30)   # past its entry: printed, at `jmp $`
        stepped = []
        m.on_pause = lambda thread: stepped.append(thread.why)
        assert m.pause_all(timed=True)
        spin = m.on_vcpu(0, lambda vcpu: vcpu.get_regs().rip)           # at its `jmp $`
        with open(guest("spin64.elf"), "rb") as f:
            from elftools.elf.elffile import ELFFile
            entry = ELFFile(f).header.e_entry

        def back_to_the_entry(vcpu):
            regs = vcpu.get_regs()
            regs.rip = entry
            vcpu.set_regs(regs)

        m.on_vcpu(0, back_to_the_entry)
        m.resume(step=0)
        wait_for(lambda: stepped)
        assert stepped == ["step"]
        rip = m.on_vcpu(0, lambda vcpu: vcpu.get_regs().rip)
        assert entry < rip <= entry + 15 and rip != spin                   # one instruction further
        m.finish(Outcome.exit_port(5))
        runner.join(30)
    assert result["outcome"] == Outcome.exit_port(5)
