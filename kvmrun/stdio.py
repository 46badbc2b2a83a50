"""kvmrun boot's standard streams.

Descriptors 0, 1 and 2 are kept for stdin, stdout and stderr: where one is closed (`kvmrun boot g.elf
>&-`), /dev/null is opened onto it before kvmrun opens anything else, or /dev/kvm or a vCPU would
become "stdout" and get the guest's output written into it.

The guest's output goes to a description of stdout that kvmrun opens for itself, non-blocking, where
stdout is a pipe or a terminal: a stalled reader then keeps the guest waiting but never kvmrun's
control (the timeout, signals), and the O_NONBLOCK flag stays off the description kvmrun shares with
its stderr and its shell.
"""
from __future__ import annotations

import os
import stat

from .console import FdOutput, StdinPump

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import FrozenSet, Optional

STANDARD_FDS = (0, 1, 2)


def fill_closed_standard_fds() -> FrozenSet[int]:
    """Open /dev/null onto each closed one of 0, 1 and 2; returns those that were closed."""
    closed = set()
    for fd in STANDARD_FDS:
        try:
            os.fstat(fd)
        except OSError:
            closed.add(fd)
    for fd in sorted(closed):
        null = os.open(os.devnull, os.O_RDWR)
        if null != fd:
            os.dup2(null, fd)
            os.close(null)
    return frozenset(closed)


def guest_output(fd: int) -> FdOutput:
    """The guest's serial output to fd; on a description of kvmrun's own where writes could block."""
    private = _nonblocking_writer(fd)
    if private is None:
        return FdOutput(fd)
    return FdOutput(private, interactive=os.isatty(fd), owns_fd=True)


def guest_input(fd: int, output: FdOutput) -> Optional[StdinPump]:
    """Serial input from fd, read by the host loop, or None where fd cannot be read."""
    try:
        os.fstat(fd)
    except OSError:
        return None
    return StdinPump(fd)


def _nonblocking_writer(fd: int) -> Optional[int]:
    """A new non-blocking, write-only open file of the pipe or terminal on fd (through /proc, so
    the same pipe or tty), or None where fd is something else or cannot be opened again (a socket,
    a terminal owned by another user): its writes then wait for room first (FdOutput)."""
    try:
        info = os.fstat(fd)
        if not (stat.S_ISFIFO(info.st_mode) or os.isatty(fd)):
            return None                   # files and devices never keep a writer waiting
        private = os.open(f"/proc/self/fd/{fd}",
                          os.O_WRONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        return None
    again = os.fstat(private)
    if (again.st_dev, again.st_ino) != (info.st_dev, info.st_ino):
        os.close(private)
        return None
    return private
