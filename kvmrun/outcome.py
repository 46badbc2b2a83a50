"""How a run ended, and the one place that turns that into kvmrun's exit status."""
from __future__ import annotations

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import NamedTuple, Optional
else:
    from .named_tuple import NamedTuple
if TYPE_CHECKING:                 # mypy checks it as the Enum it stands in for (named_values.py)
    from enum import Enum as NamedValues
else:
    from .named_values import NamedValues

if TYPE_CHECKING:                 # the report's module is imported only when there is a fault
    from .debug.stats import RunStats
    from .diagnostics import FaultReport

STATUS_OK = 0
STATUS_FAULT = 1
STATUS_USAGE = 2
STATUS_NO_KVM = 3
STATUS_TIMEOUT = 124
STATUS_SIGNAL_BASE = 128
STATUS_OUTPUT_CLOSED = STATUS_SIGNAL_BASE + 13     # as if SIGPIPE had ended kvmrun, which shells expect


class Reason(NamedValues):
    """How a run ended. The values are the names in lower case: what manifests' expect_reason and
    Result.expect(reason=...) take, and what reports and JUnit show."""
    HALTED = "halted"             # every vCPU executed HLT
    EXIT_PORT = "exit_port"       # the guest wrote a status to port 0xF4
    RESET = "reset"               # i8042 pulse reset, or a reset system event
    FAULT = "fault"               # triple fault, entry failure, internal error, strict-io violation
    TIMEOUT = "timeout"           # --timeout elapsed
    INTERRUPTED = "interrupted"   # SIGINT, SIGTERM, SIGHUP or SIGQUIT
    OUTPUT_CLOSED = "output_closed"  # stdout's reader went away (`kvmrun boot g.elf | head -c 10`), or
                                     # writing stdout failed (`>/dev/full`; status 2, the CLI says why)
    BREAKPOINT = "breakpoint"     # a vCPU reached --until's symbol or address


# Ends that say nothing about what the guest meant: a run that ended so passes only when it was expected
# by name (a triple-faulting guest must not pass a test that expects status 1 from the exit port).
MUST_BE_EXPECTED = frozenset({Reason.FAULT, Reason.TIMEOUT, Reason.INTERRUPTED, Reason.OUTPUT_CLOSED})


def parse_reason(value) -> Reason:
    """A Reason from itself or its name in any case ("timeout", "EXIT_PORT"); ValueError otherwise."""
    if isinstance(value, Reason):
        return value
    if isinstance(value, str):
        try:
            return Reason(value.lower())
        except ValueError:
            pass
    names = ", ".join(repr(r.value) for r in Reason)
    raise ValueError(f"must be one of {names}, not {value!r}")


class Outcome(NamedTuple):
    reason: Reason
    status: int
    fault: Optional["FaultReport"] = None    # what to show: a fault's report, or the registers at --until
    stats: Optional["RunStats"] = None       # the run's exits, with --stats (debug/stats.py)

    @classmethod
    def halted(cls) -> "Outcome":
        return cls(Reason.HALTED, STATUS_OK)

    @classmethod
    def exit_port(cls, value: int) -> "Outcome":
        return cls(Reason.EXIT_PORT, value & 0xFF)

    @classmethod
    def reset(cls) -> "Outcome":
        return cls(Reason.RESET, STATUS_OK)

    @classmethod
    def guest_fault(cls, report: "FaultReport") -> "Outcome":
        return cls(Reason.FAULT, STATUS_FAULT, report)

    @classmethod
    def breakpoint(cls, report: "FaultReport") -> "Outcome":
        """--until's symbol reached: status 0, with the registers at that point in the report."""
        return cls(Reason.BREAKPOINT, STATUS_OK, report)

    @classmethod
    def timeout(cls) -> "Outcome":
        return cls(Reason.TIMEOUT, STATUS_TIMEOUT)

    @classmethod
    def output_closed(cls) -> "Outcome":
        return cls(Reason.OUTPUT_CLOSED, STATUS_OUTPUT_CLOSED)

    @classmethod
    def output_failed(cls) -> "Outcome":
        """A write error other than a gone reader: not the guest's doing, so not status 1; 2, as
        for `kvmrun test` and `kvmrun info` when stdout cannot be written."""
        return cls(Reason.OUTPUT_CLOSED, STATUS_USAGE)

    @classmethod
    def interrupted(cls, signum: int) -> "Outcome":
        return cls(Reason.INTERRUPTED, STATUS_SIGNAL_BASE + signum)
