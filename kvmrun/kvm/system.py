"""Kvm: the /dev/kvm file descriptor and the questions asked of it."""
from __future__ import annotations

import errno
import os

from ..errors import KvmError, KvmUnavailable
from . import abi
from ._call import ioctl
from .ioctl import Ioctl
from ._fd import FdOwner

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Optional

KVM_DEVICE = "/dev/kvm"

_CPUID_MAX_ENTRIES = 256
_SUPPORTED_CPUID: dict = {}
_CREATE_VM_ATTEMPTS = 5        # KVM_CREATE_VM tries while a signal keeps interrupting it (EINTR)


class Kvm(FdOwner):
    def __init__(self, path: str = KVM_DEVICE):
        self.path = path
        try:
            self.fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            raise KvmUnavailable(
                f"{path} does not exist: this host has no KVM. Load the module (modprobe kvm_intel or "
                "kvm_amd) or, in a VM, enable nested virtualisation.", errno.ENOENT) from None
        except PermissionError:
            raise KvmUnavailable(
                f"no permission to open {path}: add yourself to its group "
                f"(sudo usermod -aG kvm $USER, then log in again) or run as root.", errno.EACCES) from None
        except OSError as err:
            raise KvmUnavailable(f"cannot open {path}: {err.strerror}", err.errno) from None
        try:
            version = ioctl(self.fd, Ioctl.KVM_GET_API_VERSION)
        except KvmError as err:
            self.close()
            raise KvmUnavailable(f"{path} does not answer KVM_GET_API_VERSION: {err}") from None
        if version != abi.KVM_API_VERSION:
            self.close()
            raise KvmUnavailable(
                f"{path} speaks KVM API version {version}; kvmrun needs {abi.KVM_API_VERSION}")
        self.api_version = version

    def check_extension(self, cap: abi.Cap) -> int:
        return ioctl(self.fd, Ioctl.KVM_CHECK_EXTENSION, int(cap))

    def vcpu_mmap_size(self) -> int:
        return ioctl(self.fd, Ioctl.KVM_GET_VCPU_MMAP_SIZE)

    def max_vcpus(self) -> int:
        # api.rst: KVM_CAP_MAX_VCPUS, falling back to KVM_CAP_NR_VCPUS, falling back to 4.
        return (self.check_extension(abi.Cap.KVM_CAP_MAX_VCPUS)
                or self.check_extension(abi.Cap.KVM_CAP_NR_VCPUS) or 4)

    def supported_cpuid(self):
        """KVM_GET_SUPPORTED_CPUID: a list of kvm_cpuid_entry2. The host's answer does not change
        while this process lives, so it is asked once per device path."""
        cached = _SUPPORTED_CPUID.get(self.path)
        if cached is None:
            buf = abi.cpuid_buffer(_CPUID_MAX_ENTRIES)
            ioctl(self.fd, Ioctl.KVM_GET_SUPPORTED_CPUID, buf)
            cached = _SUPPORTED_CPUID[self.path] = [abi.kvm_cpuid_entry2.from_buffer_copy(e)
                                                     for e in buf.entries[:buf.nent]]
        return cached

    def offers_1g_pages(self) -> bool:
        """CPUID 0x80000001 EDX bit 26 (Page1GB) as KVM passes it to guests."""
        for entry in self.supported_cpuid():
            if entry.function == 0x80000001:
                return bool(entry.edx & (1 << 26))
        return False

    def create_vm(self) -> int:
        # A signal pending while the kernel sets the VM up fails the call with EINTR, which the kernel
        # does not restart: a stop and continue (Ctrl-Z, fg) then would fail the run. A handler that
        # means to end the run still does, between the attempts.
        for _ in range(_CREATE_VM_ATTEMPTS - 1):
            try:
                return ioctl(self.fd, Ioctl.KVM_CREATE_VM, 0)
            except KvmError as err:
                if err.errno != errno.EINTR:
                    raise
        return ioctl(self.fd, Ioctl.KVM_CREATE_VM, 0)


def open_kvm(path: Optional[str] = None) -> Kvm:
    return Kvm(path or os.environ.get("KVMRUN_KVM_DEVICE", KVM_DEVICE))
