"""The Python API: boot a guest in-process and get what happened as a Result.

`kvmrun boot` runs through the same machine.boot(), so the CLI and the API cannot disagree on how a
guest ended: Result.status is exactly the status the CLI would exit with.
"""
import re
import time
from dataclasses import dataclass
from typing import Optional, Union

from .boot.cpu_modes import Mode
from .console import BytesInput, CapturedOutput
from .errors import ConfigError
from .layout import DEFAULT_MEMORY
from .machine import BootConfig, boot
from .outcome import Reason
from .sizes import parse_size

SERIAL_TAIL_LINES = 20


@dataclass(frozen=True)
class Result:
    image: str
    status: int                   # what `kvmrun boot` would exit with
    reason: Reason
    serial: bytes                 # everything the guest wrote to COM1
    report: Optional[str]         # the fault report as text, None unless reason is FAULT
    elapsed: float                # seconds, boot to end

    def serial_tail(self, lines: int = SERIAL_TAIL_LINES) -> str:
        text = self.serial.decode("utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def mismatches(self, status: Optional[int] = 0, serial: Union[bytes, str, None] = None) -> list:
        """What differs from the expectation, one sentence each; empty when it all holds."""
        problems = []
        if status is not None and self.status != status:
            problems.append(f"exit status {self.status} ({self.reason.value}), expected {status}")
        if serial is not None:
            pattern = serial.encode() if isinstance(serial, str) else serial
            if not re.search(pattern, self.serial):
                problems.append(f"serial output does not match {serial!r}")
        return problems

    def expect(self, status: Optional[int] = 0, serial: Union[bytes, str, None] = None) -> "Result":
        """Assert the status and that `serial` (a regular expression) is found in the output."""
        problems = self.mismatches(status, serial)
        if problems:
            raise AssertionError(self.explain(problems))
        return self

    def explain(self, problems) -> str:
        parts = [f"guest {self.image}: " + "; ".join(problems)]
        parts.append(f"--- serial output (last {SERIAL_TAIL_LINES} lines) ---\n{self.serial_tail() or '(none)'}")
        if self.report:
            parts.append(f"--- fault report ---\n{self.report.rstrip()}")
        return "\n".join(parts)


def run(image, memory: Union[int, str] = DEFAULT_MEMORY, cpus: int = 1, mode: Union[str, Mode, None] = None,
        timeout: Optional[float] = None, stdin: bytes = b"", load_addr: Optional[int] = None,
        entry: Optional[int] = None, strict_io: bool = False) -> Result:
    """Boot `image` on /dev/kvm and wait for it to end. Options mirror `kvmrun boot`.

    Raises kvmrun.LoaderError for a bad image, kvmrun.ConfigError for bad options and
    kvmrun.KvmUnavailable without KVM (all kvmrun.KvmrunError)."""
    try:
        size = parse_size(memory)
        cpu_mode = Mode(mode) if mode is not None else None
    except ValueError as err:
        raise ConfigError(f"bad option: {err}") from None
    config = BootConfig(image=str(image), memory=size, cpus=cpus, mode=cpu_mode, load_addr=load_addr,
                        entry=entry, timeout=timeout, strict_io=strict_io)
    output = CapturedOutput()
    start = time.perf_counter()
    outcome = boot(config, output, BytesInput(stdin))
    elapsed = time.perf_counter() - start
    report = outcome.fault.as_text() if outcome.fault is not None else None
    return Result(image=str(image), status=outcome.status, reason=outcome.reason, serial=bytes(output.data),
                  report=report, elapsed=elapsed)
