"""One frozen dataclass per kind of vCPU exit, decoded from kvm_run.

The vCPU loop decodes port IO straight from kvm_run (it is the hot path); every other exit is turned
into one of these before the machine acts on it.
"""
from dataclasses import dataclass
from typing import Tuple


@dataclass(frozen=True)
class IoOut:
    port: int
    size: int
    data: bytes          # count * size bytes, element after element


@dataclass(frozen=True)
class IoIn:
    port: int
    size: int
    count: int


@dataclass(frozen=True)
class MmioRead:
    address: int
    length: int


@dataclass(frozen=True)
class MmioWrite:
    address: int
    data: bytes


@dataclass(frozen=True)
class Hlt:
    pass


@dataclass(frozen=True)
class Shutdown:
    """Triple fault (or another reason the CPU shut down)."""


@dataclass(frozen=True)
class FailEntry:
    hardware_entry_failure_reason: int
    cpu: int


@dataclass(frozen=True)
class InternalError:
    suberror: int
    data: Tuple[int, ...]


@dataclass(frozen=True)
class SystemEvent:
    type: int
    data: Tuple[int, ...]


@dataclass(frozen=True)
class Interrupted:
    """KVM_RUN returned early: a signal or immediate_exit."""


@dataclass(frozen=True)
class Malformed:
    """An exit whose guest-shaped fields lie outside what api.rst documents; never acted on."""
    reason: int
    why: str


@dataclass(frozen=True)
class Unsupported:
    reason: int
