"""A run's debugging, wired into the machine: `--gdb` (the stub) and `--until` (a breakpoint that
ends the run). machine.py plans one before /dev/kvm is opened (so a bad symbol or a port in use is a
one-line error, status 2), attaches it once the runtime exists and tells it how the run ended.

--gdb: every vCPU is paused before its first instruction (the timeout's clock stands still while
paused); the host loop accepts gdb's connection and serves its packets; a vCPU that stops (step,
breakpoint) wakes the host loop, which reports the stop once every vCPU is paused (all-stop).
--until: one debug-register breakpoint on every vCPU; the first vCPU to reach it ends the run with
reason "breakpoint", status 0 and its registers.
"""
from __future__ import annotations

import sys

from ..errors import ConfigError

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    import socket
    from typing import Callable, Dict, Optional, Tuple

    from ..memory import GuestMemory
    from ..options import BootConfig
    from ..outcome import Outcome
    from ..runtime.hostloop import HostLoop
    from ..runtime.machine import Machine
    from .kvm_target import KvmTarget
    from .server import GdbServer


def check_debugging(config: "BootConfig") -> Optional[int]:
    """What boot refuses about --gdb and --until, checked without opening anything (manifests and
    `kvmrun inspect` check it too): --until's address, None without it."""
    if config.gdb is not None and config.until is not None:
        raise ConfigError("--until and --gdb cannot be combined: with gdb attached, use its `break` and "
                          "`continue` (or `until`)")
    if config.until is None:
        return None
    from .symbols import resolve_until
    return resolve_until(config.until, config.image)


def plan_debugging(config: "BootConfig", note: Optional[Callable[[str], None]]):
    """What the run's debugging needs, checked and prepared before the machine is: None, a GdbPlan
    or an UntilPlan."""
    until_address = check_debugging(config)
    if config.gdb is not None:
        return GdbPlan(open_listener(*config.gdb), note)
    if config.until is not None:
        assert until_address is not None
        return UntilPlan(config.until, until_address)
    return None


def open_listener(host: str, port: int) -> "socket.socket":
    import socket
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        return socket.create_server((host, port), family=family, backlog=1)
    except OSError as err:
        raise ConfigError(f"--gdb {host}:{port}: cannot listen there: {err.strerror or err}") from None
    except (ValueError, UnicodeError) as err:      # a host name the resolver cannot even take
        raise ConfigError(f"--gdb {host}:{port}: {err}") from None


class UntilPlan:
    def __init__(self, written: str, address: int):
        self.written = written
        self.address = address

    def close(self) -> None:
        pass

    def attach(self, runtime: "Machine", mem: "GuestMemory", host: "HostLoop") -> None:
        from ..kvm import abi
        from .debug_registers import DebugRegisters
        breakpoint = DebugRegisters()
        breakpoint.add("execute", self.address, 1)
        runtime.set_guest_debug(abi.KVM_GUESTDBG_ENABLE | abi.KVM_GUESTDBG_USE_HW_BP, breakpoint.debugreg())

        def reached(thread) -> None:            # on the vCPU's own thread: its registers are at hand
            from ..fault import capture_fault
            from ..outcome import Outcome
            where = self.written if self.written.startswith("0x") else f"{self.written} (0x{self.address:x})"
            report = capture_fault(thread.vcpu, mem, "KVM_EXIT_DEBUG", f"reached {where}", kind="breakpoint")
            runtime.finish(Outcome.breakpoint(report))

        runtime.on_pause = reached

    def finished(self, outcome: Optional["Outcome"]) -> None:
        pass


class GdbPlan:
    def __init__(self, listener: "socket.socket", note: Optional[Callable[[str], None]]):
        self.listener = listener
        self.note = note
        self.server: Optional["GdbServer"] = None
        self.target: Optional["KvmTarget"] = None

    @property
    def address(self) -> Tuple[str, int]:
        host, port = self.listener.getsockname()[:2]
        return host, port

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
        self.listener.close()

    def attach(self, runtime: "Machine", mem: "GuestMemory", host: "HostLoop") -> None:
        from .kvm_target import KvmTarget
        from .server import GdbServer
        self.runtime = runtime
        self.host = host
        runtime.pause_all(wait=False, timed=True)      # before the first instruction, once started
        self.target = target = KvmTarget(runtime, mem, lambda event: server.stopped(event))
        self.listener.setblocking(False)               # accepted from the host loop, never waited on
        self.server = server = GdbServer(target, self.listener)
        # A fault with gdb attached stops the guest where it faulted for gdb to see (SIGSEGV); once
        # gdb lets it go on, the run ends with the fault and its report, as without gdb.
        runtime.hold_fault = lambda thread, outcome: (outcome.reason.value == "fault" and server.connected
                                                      and not server.detached and not server.finished)
        self._watched: Dict[int, Callable[[], None]] = {}
        self._watch()
        host.on_wakeup(target.deliver_stop)
        address, port = self.address
        shown = f"[{address}]" if ":" in address else address
        message = f"waiting for gdb on {shown}:{port}: in gdb, `target remote {shown}:{port}`"
        (self.note or _to_stderr)(message)

    def _watch(self) -> None:
        """Watch what the server reads next: the listener until gdb connects, then the connection;
        and while one gdb is connected, the listener too, to turn another one away."""
        server = self.server
        assert server is not None
        wanted: Dict[int, Callable[[], None]] = {}
        if server.connected and not server.finished:
            wanted[self.listener.fileno()] = server.refuse_others
        fd = server.fileno()
        if fd >= 0:
            wanted[fd] = self._readable
        for fd in self._watched.keys() - wanted.keys():
            self.host.unwatch(fd)
        for fd, work in wanted.items():
            if self._watched.get(fd) != work:
                self.host.watch(fd, work)
        self._watched = wanted

    def _readable(self) -> None:
        # The vCPUs pause by themselves before their first instruction; gdb talks to paused ones.
        assert self.server is not None
        if not self.server.connected and not self.runtime.pause_all(wait=True, timed=True):
            return
        self.server.on_readable()
        self._watch()

    def finished(self, outcome: Optional["Outcome"]) -> None:
        """Tell gdb how the run ended, if it is still there: the guest's own end (halt, exit port,
        reset, --until) as an exit status (W); an end kvmrun made as the signal that says it best (X)."""
        if self.server is None or outcome is None or not self.server.connected:
            return
        import signal
        from ..outcome import STATUS_SIGNAL_BASE, Reason
        signals = {Reason.TIMEOUT: signal.SIGALRM, Reason.FAULT: signal.SIGSEGV, Reason.OUTPUT_CLOSED: signal.SIGPIPE}
        if outcome.reason is Reason.INTERRUPTED:
            self.server.killed(outcome.status - STATUS_SIGNAL_BASE)
        elif outcome.reason in signals:
            self.server.killed(int(signals[outcome.reason]))
        else:
            self.server.exited(outcome.status)


def _to_stderr(message: str) -> None:
    try:
        sys.stderr.write(f"kvmrun: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
