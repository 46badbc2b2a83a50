"""The Python API: boot a guest in-process and get what happened as a Result.

`kvmrun boot` runs through the same machine.boot(), so the CLI and the API cannot disagree on how a
guest ended: Result.status is exactly the status the CLI would exit with.
"""
import os
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Union

from .console import BytesInput, CapturedOutput
from .machine import boot
from .options import BY_NAME, OPTIONS, boot_config
from .outcome import MUST_BE_EXPECTED, Reason, parse_reason

if TYPE_CHECKING:
    from .debug.stats import RunStats
    from .screen import Screen

SERIAL_TAIL_LINES = 20


class _Default:
    """The type of DEFAULT: an expectation left to its default, which depends on the others."""

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT = _Default()


@dataclass(frozen=True)
class Result:
    image: str
    status: int                   # what `kvmrun boot` would exit with
    reason: Reason
    serial: bytes                 # everything the guest wrote to COM1
    report: Optional[str]         # the fault report as text (or, reason BREAKPOINT, the registers at --until)
    elapsed: float                # seconds, boot to end
    # The VGA text screen at the end (.text, .cells with attributes, .cursor); None when the guest
    # never wrote to it.
    screen: Optional["Screen"] = None
    # With stats=True: the run's exits by reason, port, device and vCPU, time in the guest and in
    # kvmrun, what KVM handled itself (kvmrun.debug.stats.RunStats, frozen); None otherwise.
    stats: Optional["RunStats"] = None

    def serial_tail(self, lines: int = SERIAL_TAIL_LINES) -> str:
        """The last `lines` lines of the output, at most 4 KiB, control characters escaped."""
        from .suite.text import serial_tail
        return serial_tail(self.serial, lines)

    def mismatches(self, status: Union[int, None, _Default] = DEFAULT, serial: Union[bytes, str, None] = None,
                   reason: Union[Reason, str, None] = None, screen: Optional[str] = None) -> list:
        """What differs from the expectation, one sentence each; empty when it all holds.

        `status` None skips the status; by default it is 0, or unchecked when a `reason` is expected.
        A fault or timeout passes only when `reason` names it: status 1 or 124 alone is not enough,
        since a guest may write those values to the exit port too."""
        expected = parse_reason(reason) if reason is not None else None
        if status is not DEFAULT and status is not None and (isinstance(status, bool) or not isinstance(status, int)):
            raise TypeError(f"status must be an int or None, not {type(status).__name__}")
        if status is DEFAULT:
            status = 0 if expected is None else None
        problems = []
        if expected is not None and self.reason is not expected:
            problems.append(f"ended by {self.reason.value} (status {self.status}), expected {expected.value}")
        elif status is not None and self.status != status:
            problems.append(f"exit status {self.status} ({self.reason.value}), expected {status}")
        elif expected is None and self.reason in MUST_BE_EXPECTED:
            problems.append(f"ended by {self.reason.value} (status {self.status}), which passes only when that "
                            f"reason is expected ({self.reason.value!r})")
        if serial is not None and not serial_matches(serial, self.serial):
            problems.append(f"serial output does not match {serial!r}")
        if screen is not None:
            if not isinstance(screen, str):
                raise TypeError(f"screen must be a str (a regular expression), not {type(screen).__name__}")
            if self.screen is None:
                problems.append(f"the guest never wrote to the screen, expected it to match {screen!r}")
            elif re.search(screen, self.screen.text, re.MULTILINE) is None:
                problems.append(f"the screen does not match {screen!r}")
        return problems

    def expect(self, status: Union[int, None, _Default] = DEFAULT, serial: Union[bytes, str, None] = None,
               reason: Union[Reason, str, None] = None, screen: Optional[str] = None) -> "Result":
        """Assert how the guest ended, that `serial` (a regular expression, searched with
        re.MULTILINE so ^ and $ match at every line) is found in its output, and that `screen` (one
        too) is found in the screen's text."""
        problems = self.mismatches(status, serial, reason, screen)
        if problems:
            raise AssertionError(self.explain(problems))
        return self

    def explain(self, problems) -> str:
        """What differed, how the guest ended, its serial tail and fault report: bounded and printable
        (a guest that printed a megabyte on one line, or escape sequences, cannot flood an assertion)."""
        from .suite.text import failure_text
        return failure_text(self, problems)


def run(image, *, stdin: Union[bytes, str] = b"", **options) -> Result:
    """Boot `image` on /dev/kvm and wait for it to end. The keyword options are `kvmrun boot`'s,
    spelled as Python names: {options}.

    Raises kvmrun.LoaderError for a bad image, kvmrun.ConfigError for bad options and
    kvmrun.KvmUnavailable without KVM (all kvmrun.KvmrunError); TypeError for an unknown keyword or a
    `stdin` that is neither bytes nor str (str is sent as UTF-8)."""
    return run_in_suite(image, stdin=stdin, background_teardown=False, **options)


def run_in_suite(image, *, stdin: Union[bytes, str] = b"", background_teardown: bool = True,
                 image_written: Optional[str] = None, **options) -> Result:
    """run(), for a runner of many guests: the VM is torn down on a background thread (one at a
    time, a few behind), so the next guest does not wait the ~20 ms KVM takes to tear an irqchip down.
    `image_written`: the image's path as a manifest writes it, which the guest is told instead."""
    unknown = sorted(set(options) - set(BY_NAME))
    if unknown:
        raise TypeError(f"run() got an unexpected keyword argument {unknown[0]!r}")
    if not isinstance(image, (str, bytes, os.PathLike)):
        raise TypeError(f"image must be a path (str, bytes or os.PathLike), not {type(image).__name__}")
    image = os.fsdecode(image)
    config = boot_config(image, options, image_written)
    output = CapturedOutput()
    start = time.perf_counter()
    outcome = boot(config, output, BytesInput(stdin_bytes(stdin)), background_teardown=background_teardown)
    elapsed = time.perf_counter() - start
    report = outcome.fault.as_text() if outcome.fault is not None else None
    return Result(image=str(image), status=outcome.status, reason=outcome.reason, serial=bytes(output.data),
                  report=report, elapsed=elapsed, screen=output.screen, stats=outcome.stats)


run.__doc__ = (run.__doc__ or "").format(options=", ".join(option.name for option in OPTIONS))


def stdin_bytes(stdin) -> bytes:
    if isinstance(stdin, str):
        return stdin.encode("utf-8", "surrogateescape")     # undecodable bytes (os.fsdecode's) go back
    if isinstance(stdin, (bytes, bytearray, memoryview)):
        return bytes(stdin)
    raise TypeError(f"stdin must be bytes or str, not {type(stdin).__name__}")


def serial_pattern(serial: Union[bytes, str]) -> "re.Pattern[bytes]":
    """`serial` compiled as it is matched: against bytes, str patterns as UTF-8, ^ and $ at every line."""
    return re.compile(serial.encode() if isinstance(serial, str) else serial, re.MULTILINE)


def serial_matches(serial: Union[bytes, str], output: bytes) -> bool:
    return serial_pattern(serial).search(output) is not None
