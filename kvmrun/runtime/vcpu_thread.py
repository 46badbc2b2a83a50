"""One vCPU on one host thread, as an explicit state machine.

    STARTING -> RUNNING <-> PAUSED
                RUNNING  -> HALTED  (HLT came back to kvmrun; the thread waits, as if paused)
                any      -> FINISHED (the run ended; the thread returns)

Other threads never touch a running vCPU: they post a request to its mailbox and kick it (set
kvm_run.immediate_exit, then signal the thread, so KVM_RUN returns EINTR wherever the thread was).
The mailbox is read only after a kick, so the hot loop pays nothing for it. A paused or halted thread
sleeps on the machine's condition until a request arrives.
"""
from __future__ import annotations

from .. import os_signal as signal
from ..dispatch import HALT, KICKED, Pause
from ..fifo import deque
from ..kvm.kick import kick
from ..outcome import Outcome
from ..sync import Event, Thread, get_ident

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Any, Callable, Deque, Optional

if TYPE_CHECKING:
    from .machine import Machine
if TYPE_CHECKING:                 # mypy checks it as the Enum it stands in for (named_values.py)
    from enum import Enum as NamedValues
else:
    from ..named_values import NamedValues


class State(NamedValues):
    STARTING = "starting"
    RUNNING = "running"
    PAUSED = "paused"
    HALTED = "halted"
    FINISHED = "finished"


class Call:
    """A function to run on the vCPU's own thread while it is out of KVM_RUN (register access:
    KVM_GET_REGS from another thread would wait until the vCPU leaves KVM_RUN by itself)."""

    def __init__(self, fn: Callable[[Any], Any]):
        self.fn = fn
        self.done = Event()
        self.result: Any = None
        self.error: Optional[BaseException] = None

    def run(self, vcpu) -> None:
        try:
            self.result = self.fn(vcpu)
        except BaseException as err:          # handed to the caller, not lost on this thread
            self.error = err
        self.done.set()

    def wait(self) -> Any:
        self.done.wait()
        if self.error is not None:
            raise self.error
        return self.result


PAUSE, FINISH = "pause", "finish"


class Resume:
    """Run on: one instruction (`step`), or stepping instruction by instruction while `keep_stepping`
    says so (a debugger's watchpoint where the host delivers no data breakpoints: `keep_stepping(vcpu)`
    returns None to go on, or the reason to pause with)."""

    def __init__(self, step: bool = False, keep_stepping: Optional[Callable[[Any], Optional[str]]] = None):
        self.step = step or keep_stepping is not None
        self.keep_stepping = keep_stepping


class VcpuThread:
    def __init__(self, machine: "Machine", index: int, vcpu, ctx, ending_signals=frozenset()):
        self.machine = machine
        self.index = index
        self.vcpu = vcpu
        self.ctx = ctx
        self.state = State.STARTING
        self.why: Optional[str] = None            # why it paused: "request", "step", "breakpoint"
        self.debug_status = 0                     # DR6 of the debug exit it paused on (which breakpoint)
        self.outcome: Optional[Outcome] = None    # what it ended the run with, if it did
        self._mailbox: Deque[Any] = deque()
        self._ident = 0
        self._in_loop = False                     # from starting its loop until it left for good
        self._stepping = False
        self._keep_stepping: Optional[Callable[[Any], Optional[str]]] = None
        self._held: Optional[Outcome] = None     # a fault a debugger is looking at
        self._ending_signals = ending_signals
        self.thread = Thread(target=self._main, name=f"vcpu{index}")

    # --- from other threads (the machine holds its lock) ------------------------------------------

    def post(self, request) -> None:
        """Queue a request and make the vCPU look at its mailbox soon."""
        self._mailbox.append(request)
        self.vcpu.request_stop()                  # KVM_RUN returns at once, now or next time
        if self._in_loop and self._ident != get_ident():
            kick(self._ident)
        self.machine.changed.notify_all()         # a paused or halted thread wakes to read it

    # --- on the vCPU's own thread -----------------------------------------------------------------

    def _main(self) -> None:
        # Signals that end the run belong to the main thread; only the kick may interrupt KVM_RUN here.
        if self._ending_signals:
            signal.pthread_sigmask(signal.SIG_BLOCK, self._ending_signals)
        machine = self.machine
        with machine.changed:
            if machine.ending:
                self._set(State.FINISHED)         # the run ended while this thread started
                return
            self._ident = get_ident()
            self._in_loop = True
        try:
            machine.gate.wait()
            self._run()
        except BaseException as err:              # a kvmrun bug: stop the machine, re-raised by it
            machine.thread_failed(self, err)
        finally:
            with machine.changed:
                self._in_loop = False
                self._set(State.FINISHED)

    def _set(self, state: State) -> None:
        self.state = state
        self.machine.changed.notify_all()

    def _run(self) -> None:
        machine = self.machine
        with machine.changed:
            if self.state is State.STARTING:
                self._set(State.RUNNING)
        while True:
            released: Optional[Outcome] = None
            action: Any
            if self.state is State.RUNNING and self._held is not None:
                action = released = self._held    # resumed after a held fault: it ends the run
                self._held = None
            elif self.state is State.RUNNING:
                action = machine.loop(self.vcpu, self.ctx)
            else:
                action = KICKED
            if action is KICKED:
                if not self._serve_mailbox():
                    return
                continue
            if action is HALT:
                with machine.changed:
                    self._set(State.HALTED)
                machine.vcpu_halted(self)
                continue
            if isinstance(action, Pause):
                if action.why == "step" and self._keep_stepping is not None:
                    verdict = self._keep_stepping(self.vcpu)
                    if verdict is None:
                        continue                  # still stepping, without waking anyone
                    action = Pause(verdict, action.debug_status)
                self._end_step()
                with machine.changed:
                    self.why = action.why
                    self.debug_status = action.debug_status
                    self._set(State.PAUSED)
                machine.vcpu_paused(self)
                continue
            if action is not released and machine.hold_fault is not None and machine.hold_fault(self, action):
                # A debugger is attached: it sees the vCPU as it faulted; resumed, the run ends so.
                self._held = action
                with machine.changed:
                    self.why = "fault"
                    self._set(State.PAUSED)
                machine.vcpu_paused(self)
                continue
            self.outcome = action                 # an Outcome: this vCPU ends the run
            machine.finish(action)

    def _serve_mailbox(self) -> bool:
        """Handle requests until the vCPU may run (True) or the run is over (False). Waits while
        paused or halted."""
        machine = self.machine
        with machine.changed:
            self.vcpu.run_area.immediate_exit = False     # before reading: a later post sets it again
            while True:
                while self._mailbox:
                    request = self._mailbox.popleft()
                    if request == FINISH:
                        return False
                    if request == PAUSE:
                        if self.state is State.RUNNING:
                            self.why = "request"
                            self._set(State.PAUSED)
                    elif isinstance(request, Call):
                        request.run(self.vcpu)
                    elif isinstance(request, Resume):
                        if self.state is not State.FINISHED:
                            self.why = None
                            self.debug_status = 0
                            if request.step:
                                self._begin_step(request.keep_stepping)
                            self._set(State.RUNNING)
                if self.state is State.RUNNING:
                    if self.vcpu.run_area.immediate_exit:    # posted to while serving: look again
                        self.vcpu.run_area.immediate_exit = False
                        continue
                    return True
                machine.changed.wait()

    def _begin_step(self, keep_stepping=None) -> None:
        from ..kvm.abi import KVM_GUESTDBG_ENABLE, KVM_GUESTDBG_SINGLESTEP
        control, debugreg = self.machine.guest_debug
        self.vcpu.set_guest_debug(control | KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP, debugreg)
        self._stepping = True
        self._keep_stepping = keep_stepping

    def _end_step(self) -> None:
        if self._stepping:
            self.vcpu.set_guest_debug(*self.machine.guest_debug)   # the breakpoints stay
            self._stepping = False
            self._keep_stepping = None
