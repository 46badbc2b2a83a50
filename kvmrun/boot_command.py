"""`kvmrun boot` itself, and what every command shares for talking to people, without click: the
launcher (launch.py) runs a plainly written `kvmrun boot` straight through here, and click's `boot`
(cli.py) calls the same run_boot, so both read options, report and exit alike."""
from __future__ import annotations

import os
import sys

from .console import SCREEN_AUTO, SCREEN_TEXT
from .errors import KvmrunError, KvmUnavailable
from .options import OPTIONS, OptionError
from .outcome import STATUS_NO_KVM, STATUS_SIGNAL_BASE, STATUS_USAGE, Reason

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Any, Dict, FrozenSet


SAY_WAIT_SECONDS = 2.0


def say(text: str) -> None:
    """One message for people, on stderr. A stderr nobody reads (a full pipe) gets a couple of seconds
    to take it, never more: kvmrun's exit must not wait for a reader that never comes."""
    try:
        sys.stderr.flush()
        fd = sys.stderr.fileno()
    except (OSError, ValueError, AttributeError):   # not a descriptor (a test's capture), or gone
        try:
            sys.stderr.write(text + "\n")
            sys.stderr.flush()
        except (OSError, ValueError):       # stderr gone: nobody is left to tell
            pass
        return
    import select
    data = (text + "\n").encode(errors="backslashreplace")
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    try:
        if poller.poll(SAY_WAIT_SECONDS * 1000):      # room for a page: a line goes without blocking
            os.write(fd, data)
    except OSError:
        pass


def fill_standard_fds() -> FrozenSet[int]:
    """/dev/null onto each of 0, 1 and 2 that is closed, before anything else is opened, and Python's
    streams on them; returns those that were closed."""
    from .stdio import fill_closed_standard_fds
    closed = fill_closed_standard_fds()
    # Python leaves sys.stdout None where fd 1 was closed at start-up: give it a stream on the
    # /dev/null now there, so every command writes to it as to any stdout.
    for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        if fd in closed and getattr(sys, name) is None:
            setattr(sys, name, open(fd, "r" if fd == 0 else "w", closefd=False,
                                    errors="backslashreplace" if fd == 2 else None))
    return closed


def fileno(stream, default: int) -> int:
    """The stream's descriptor; the process's own one where the stream has none (a test runner's)."""
    try:
        return stream.fileno()
    except (AttributeError, ValueError, OSError):
        return default


def signal_name(signum: int) -> str:
    import signal
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def flag(name: str) -> str:
    return next(option.flag for option in OPTIONS if option.name == name)


def fail(err: KvmrunError) -> int:
    """Errors kvmrun expects: one line on stderr; no usable KVM is 3, everything else 2, a KVM call
    that fails while setting up too ("KVM_CREATE_VCPU failed: ..."): KVM is there, it refused this
    machine. An option is named as the command line spells it. Control characters (a guest name or
    a path in a manifest) are shown escaped, never sent to the terminal, and the message is one line."""
    from .suite.text import printable
    message = err.spelled(flag(err.option)) if isinstance(err, OptionError) else str(err)
    say(f"kvmrun: error: {printable(message).replace(chr(10), ' ')}")
    return STATUS_NO_KVM if isinstance(err, KvmUnavailable) else STATUS_USAGE


def stdout_failed(err: OSError) -> int:
    """One line on stderr (none for a reader that went away: 141, as for a guest's output), and
    what is still buffered dropped, so that Python's flush at exit cannot fail a second time."""
    import errno
    import os
    from .outcome import STATUS_OUTPUT_CLOSED
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.close(null)
    except OSError:
        pass
    if err.errno == errno.EPIPE:
        return STATUS_OUTPUT_CLOSED
    say(f"kvmrun: error: cannot write to stdout: {err.strerror}")
    return STATUS_USAGE


def print_note(note: str) -> None:
    """What the loader noticed about the image, before the guest runs."""
    say(f"kvmrun: note: {note}")


def report_fault(fault) -> None:
    from rich.console import Console
    Console(stderr=True, highlight=False).print(fault)


def config_from_command_line(image: str, values: Dict[str, Any]):
    """A BootConfig from the command line's option values (text, True for a switch, a tuple of texts for
    a repeatable option): `kvmrun boot` and `kvmrun inspect` read their options alike. OptionError for
    a bad value."""
    from .options import boot_config, parse_option_text
    return boot_config(image, {name: value if isinstance(value, bool) else parse_option_text(name, value)
                               for name, value in values.items() if value not in (None, ())})


def run_boot(image: str, screen: str, values: Dict[str, Any], closed: FrozenSet[int],
             exiting: bool = False) -> int:
    """Boot `image` with the options' command-line values (text, True for a switch, a tuple of texts
    for a repeatable one) and show it as `screen` says; returns the exit status. `closed`: which of
    fds 0-2 were closed when kvmrun started. `exiting`: the process exits right after (the launcher),
    so the machine may be closed by a child after it (machine.close_after_exit); never within a
    process that goes on, such as a test runner calling the CLI."""
    from .signals import Interrupted, ending_signals
    from .machine import boot as boot_machine
    from .stdio import guest_input, guest_output
    from .terminal import raw_input_mode

    try:
        config = config_from_command_line(image, values)
    except OptionError as err:
        return fail(err)
    output = guest_output(fileno(sys.stdout, 1))
    # Trace lines go to stderr as they happen; a live screen redrawn below the output would wipe those
    # written beside an unfinished line. Tracing to stderr, the screen is shown as text after the run instead.
    traces_to_stderr = config.trace is not None and config.trace_file is None
    output.screen_mode = SCREEN_TEXT if screen == SCREEN_AUTO and traces_to_stderr else screen
    stdin_fd = fileno(sys.stdin, 0)
    serial_input = None if 0 in closed else guest_input(stdin_fd, output)
    try:
        with ending_signals(), raw_input_mode(stdin_fd):
            outcome = boot_machine(config, output, serial_input, handle_signals=True, on_note=print_note,
                                   detach_teardown=exiting)
    except Interrupted as err:                  # before the machine was set up
        say(f"kvmrun: {signal_name(err.signum)}: stopped before the guest started")
        return STATUS_SIGNAL_BASE + err.signum
    except KvmrunError as err:
        return fail(err)
    finally:
        output.close()
    status = outcome.status
    error = output.error
    write_failed = error is not None and not isinstance(error, BrokenPipeError)
    if error is not None and write_failed:
        say(f"kvmrun: error: cannot write the guest's output to stdout: {error.strerror}; stopped the guest")
        if outcome.reason not in (Reason.FAULT, Reason.TIMEOUT, Reason.INTERRUPTED):
            status = STATUS_USAGE           # also when the guest had ended: its output was lost
    # Every end kvmrun causes says so on stderr; an end the guest chose (halt, exit port, reset) writes
    # nothing there, which tells a guest's `out 0xF4` of 1 or 124 from kvmrun's own 1 or 124.
    if outcome.fault is not None:
        report_fault(outcome.fault)
    elif outcome.reason is Reason.TIMEOUT:
        assert config.timeout is not None
        say(f"kvmrun: the guest was still running after --timeout {config.timeout:g} s; stopped it")
    elif outcome.reason is Reason.INTERRUPTED:
        signum = outcome.status - STATUS_SIGNAL_BASE
        # SIGKILL never reaches kvmrun itself: 137 is gdb's `kill` (--gdb), which ends the run as it would.
        say("kvmrun: gdb's kill ended the run" if signum == 9 else f"kvmrun: {signal_name(signum)}: stopped the guest")
    elif outcome.reason is Reason.OUTPUT_CLOSED and not write_failed:
        say("kvmrun: stdout's reader went away: stopped the guest")
    if config.until is not None and outcome.reason is not Reason.BREAKPOINT:
        # The status is the guest's own: this line tells "reached it" from "ended before reaching it".
        say(f"kvmrun: --until {config.until}: not reached; the run ended as {outcome.reason.value}")
    if outcome.stats is not None:
        from .report.stats_table import print_stats        # rich: only when asked for
        try:
            print_stats(outcome.stats)
        except (OSError, ValueError):                      # stderr gone: nobody is left to show it to
            pass
    return status
