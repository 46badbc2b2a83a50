"""kvmrun's error hierarchy. cli.py maps each class to a one-line message and an exit status."""
from __future__ import annotations

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Optional


class KvmrunError(Exception):
    """Root of every error kvmrun raises on purpose."""


class ConfigError(KvmrunError):
    """A bad option value or combination (status 2)."""


class LoaderError(KvmrunError):
    """The image cannot be loaded: missing, malformed, for another machine, or does not fit (status 2)."""


class GuestMemoryError(KvmrunError):
    """An access outside guest RAM."""


class DeviceError(KvmrunError):
    """A device was driven into a state it cannot handle."""


class KvmError(KvmrunError):
    """An ioctl on /dev/kvm, a VM or a vCPU failed."""

    def __init__(self, ioctl: str, errno: int, message: str):
        super().__init__(f"{ioctl} failed: {message} (errno {errno})")
        self.ioctl = ioctl
        self.errno = errno


class KvmUnavailable(KvmrunError):
    """KVM cannot be used on this host: no /dev/kvm, no permission, wrong API (status 3)."""

    def __init__(self, message: str, errno: Optional[int] = None):
        super().__init__(message)
        self.errno = errno
