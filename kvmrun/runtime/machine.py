"""The running machine: its vCPU threads, and what other threads may ask of them.

pause_all / resume (one vCPU for a single step) / on_vcpu (a function on a vCPU's own thread, for
register access) / finish (the first outcome wins). Everything that waits for the vCPUs waits on one
condition, `changed`, notified whenever a thread changes state. The run itself is driven by the host
loop (hostloop.py) on the caller's thread.
"""
from __future__ import annotations

import errno
import os
import time

from ..dispatch import fast_loop
from ..errors import KvmError
from ..kvm.kick import install_kick_handler
from ..outcome import Outcome
from ..sync import Condition, Event, RLock
from .vcpu_thread import FINISH, PAUSE, Call, Resume, State, VcpuThread

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Callable, Dict, List, Optional, Sequence, Tuple

_WAITING = (State.PAUSED, State.HALTED, State.FINISHED)


class Machine:
    def __init__(self, vcpus: Sequence, contexts: Sequence, absorption=None, ending_signals=frozenset(),
                 loop=fast_loop):
        self.vcpus = list(vcpus)
        self.changed = Condition(RLock())   # RLock: a signal handler may finish() inside
        self.gate = Event()           # vCPUs enter the guest together, once all threads started
        self.ending = False
        self.outcome: Optional[Outcome] = None
        self.errors: List[BaseException] = []
        self.paused_seconds = 0.0               # time spent paused on request: not part of the timeout
        self._paused_at: Optional[float] = None
        self.on_pause: Optional[Callable[[VcpuThread], None]] = None   # a vCPU stopped for the debugger
        # KVM_SET_GUEST_DEBUG's (control, debug registers) for every vCPU: breakpoints; a single step
        # adds to it for one vCPU and puts it back after.
        self.guest_debug: Tuple[int, Tuple[int, ...]] = (0, ())
        # hold_fault(thread, outcome) -> True: the vCPU pauses on its fault instead of ending the run
        # (a debugger looks at it first); resumed, it ends the run with that fault.
        self.hold_fault: Optional[Callable[[VcpuThread, Outcome], bool]] = None
        self._absorption = absorption
        self._loop = loop
        self.threads = [VcpuThread(self, index, vcpu, ctx, ending_signals)
                        for index, (vcpu, ctx) in enumerate(zip(vcpus, contexts))]
        # Whether other threads touch devices while a vCPU does: more vCPUs, or the host loop (the
        # coalesced ring's drain, serial input under the irqchip). A lone vCPU skips the device lock
        # otherwise (a tenth of an exit).
        self.shared = len(self.vcpus) > 1
        self.wakeup = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)   # the host loop sleeps on it

    def close(self) -> None:
        if self.wakeup >= 0:
            os.close(self.wakeup)
            self.wakeup = -1

    # --- what a vCPU thread calls -------------------------------------------------------------------

    def loop(self, vcpu, ctx):
        absorption = self._absorption
        return self._loop(vcpu, ctx, absorption, lambda: self.shared or bool(absorption and absorption.live))

    def vcpu_halted(self, halted: VcpuThread) -> None:
        """HLT came back to kvmrun: the run ends with 0 once every vCPU has halted."""
        with self.changed:
            if all(t.state in (State.HALTED, State.FINISHED) for t in self.threads):
                self.finish(Outcome.halted())

    def vcpu_paused(self, paused: VcpuThread) -> None:
        """A vCPU stopped for the debugger (a step or breakpoint ended): all-stop, the others too."""
        self.pause_all(wait=False)
        if self.on_pause is not None:
            self.on_pause(paused)
        self._wake_host_loop()

    def thread_failed(self, thread: VcpuThread, err: BaseException) -> None:
        from ..diagnostics import FaultReport
        self.errors.append(err)
        self.finish(Outcome.guest_fault(FaultReport(vcpu=thread.index, exit="kvmrun error", summary=repr(err))))

    # --- what other threads ask -------------------------------------------------------------------

    def start(self, deadline: Optional[float] = None) -> None:
        """Start every vCPU thread; each waits at the gate until all are started: 128 guests spinning
        on two cores would otherwise starve the threads still starting (12 s for 128 vCPUs, measured).
        Starting counts toward `deadline`, except while paused on request (a debugger holds the
        machine from before its first instruction: the host loop counts the deadline once it runs)."""
        install_kick_handler()
        for thread in self.threads:
            if self.ending:                      # a signal, or the reader of stdout went away
                break
            if deadline is not None and not self.paused_on_request and time.monotonic() >= deadline:
                self.finish(Outcome.timeout())
                break
            try:
                thread.thread.start()
            except RuntimeError as err:          # "can't start new thread": the host has no more
                raise KvmError(f"starting vCPU {thread.index}'s thread", errno.EAGAIN, str(err)) from None
        self.gate.set()

    def finish(self, outcome: Outcome) -> None:
        """The first call decides the outcome; every vCPU thread is told to end."""
        with self.changed:
            if self.outcome is None:
                self.outcome = outcome
            if not self.ending:
                self.ending = True
                for thread in self.threads:
                    thread.post(FINISH)
        self._wake_host_loop()

    @property
    def paused_on_request(self) -> bool:
        """Paused for a debugger: the timeout's clock stands still."""
        return self._paused_at is not None

    @property
    def done(self) -> bool:
        return self.outcome is not None

    def pause_all(self, wait: bool = True, timed: bool = False) -> bool:
        """Stop every running vCPU outside KVM_RUN. With `wait`, return once all are stopped: True, or
        False when the run ended meanwhile. `timed` pauses (a debugger's) do not count toward the
        timeout; the host loop's own short pauses (halt detection) do."""
        with self.changed:
            for thread in self.threads:
                if thread.state in (State.RUNNING, State.STARTING):
                    thread.post(PAUSE)
            if timed and self._paused_at is None:
                self._paused_at = time.monotonic()
            if not wait:
                return True
            while not self.ending and not all(t.state in _WAITING for t in self.threads if t.thread.is_alive()):
                self.changed.wait()
            return not self.ending

    def on_vcpu(self, index: int, fn: Callable):
        """Run fn(vcpu) on vCPU `index`'s own thread, which must be paused or halted; its result."""
        call = Call(fn)
        with self.changed:
            thread = self.threads[index]
            if thread.state not in (State.PAUSED, State.HALTED):
                raise RuntimeError(f"vCPU {index} is {thread.state.value}, not paused")
            thread.post(call)
        return call.wait()

    def set_guest_debug(self, control: int, debugreg: Sequence[int] = ()) -> None:
        """Breakpoints for every vCPU (KVM_SET_GUEST_DEBUG), before the run starts or while every
        vCPU is paused: set on each vCPU's own thread once they run."""
        self.guest_debug = (control, tuple(debugreg))
        for thread in self.threads:
            if thread.state is State.STARTING or not thread.thread.is_alive():
                thread.vcpu.set_guest_debug(control, debugreg)
            else:
                self.on_vcpu(thread.index, lambda vcpu: vcpu.set_guest_debug(control, debugreg))

    def resume_each(self, actions: Dict[int, str], keep_stepping=None) -> None:
        """Let the paused vCPUs named run on: "continue", or "step" one instruction, or with
        `keep_stepping` step on while it returns None (runtime/vcpu_thread.Resume). The others stay
        paused. The timeout's clock runs again once any vCPU continues."""
        with self.changed:
            if self._paused_at is not None and "continue" in actions.values():
                self.paused_seconds += time.monotonic() - self._paused_at
                self._paused_at = None
            for thread in self.threads:
                action = actions.get(thread.index)
                if thread.state is not State.PAUSED or action is None:
                    continue
                if action == "step":
                    thread.post(Resume(step=True))
                elif keep_stepping is not None:
                    thread.post(Resume(keep_stepping=keep_stepping))
                else:
                    thread.post(Resume())

    def resume(self, step: Optional[int] = None) -> None:
        """Let paused vCPUs run on: all of them, or only vCPU `step` for one instruction (it pauses
        again after it; the others stay paused)."""
        with self.changed:
            if self._paused_at is not None and step is None:
                self.paused_seconds += time.monotonic() - self._paused_at
                self._paused_at = None
            for thread in self.threads:
                if thread.state is State.PAUSED and (step is None or thread.index == step):
                    thread.post(Resume(step=step is not None))

    def stop_and_join(self) -> None:
        """End the run if it has not ended (interrupted as by SIGINT, when an exception left the host
        loop) and wait until no vCPU thread is left: none may outlive its VM's memory. Another
        KeyboardInterrupt meanwhile does not cut the wait short; it is raised afterwards."""
        from .. import os_signal as signal
        pending: Optional[BaseException] = None
        while True:
            try:
                self.finish(Outcome.interrupted(signal.SIGINT))   # decides nothing if the run ended
                self.gate.set()
                for thread in self.threads:
                    if thread.thread.ident is not None:
                        thread.thread.join()
                break
            except BaseException as err:
                pending = pending or err
        if pending is not None:
            raise pending

    def _wake_host_loop(self) -> None:
        if self.wakeup >= 0:
            try:
                os.eventfd_write(self.wakeup, 1)
            except OSError:
                pass
