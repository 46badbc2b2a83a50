"""Vm: one KVM virtual machine file descriptor."""
import os

from . import abi
from ._call import ioctl
from .ioctl import Ioctl
from .system import Kvm
from .vcpu import Vcpu


class Vm:
    def __init__(self, kvm: Kvm):
        self.kvm = kvm
        self.fd = kvm.create_vm()
        self._vcpu_mmap_size = kvm.vcpu_mmap_size()
        self._next_slot = 0

    def add_memory(self, guest_phys_addr: int, size: int, host_addr: int) -> int:
        """Map host_addr[0:size] at guest_phys_addr; returns the slot number used."""
        region = abi.kvm_userspace_memory_region(
            slot=self._next_slot, flags=0, guest_phys_addr=guest_phys_addr,
            memory_size=size, userspace_addr=host_addr)
        ioctl(self.fd, Ioctl.KVM_SET_USER_MEMORY_REGION, region)
        self._next_slot += 1
        return region.slot

    def set_tss_addr(self, addr: int) -> None:
        # fcntl.ioctl passes an int argument as a C int; the kernel truncates the (sign-extended)
        # unsigned long back to the 32-bit address, so send addresses above 2 GiB as their negative twin.
        ioctl(self.fd, Ioctl.KVM_SET_TSS_ADDR, addr - (1 << 32) if addr >= 1 << 31 else addr)

    def coalesce_pio(self, port: int, size: int) -> None:
        """Let KVM keep writes to [port, port+size) in the coalesced ring instead of exiting."""
        zone = abi.kvm_coalesced_mmio_zone(addr=port, size=size, pio=1)
        ioctl(self.fd, Ioctl.KVM_REGISTER_COALESCED_MMIO, zone)

    def ioeventfd_pio(self, port: int, length: int, event_fd: int) -> None:
        """Let KVM turn writes of `length` bytes to `port` into a signal on event_fd, without an exit."""
        request = abi.kvm_ioeventfd(addr=port, len=length, fd=event_fd, flags=abi.KVM_IOEVENTFD_FLAG_PIO)
        ioctl(self.fd, Ioctl.KVM_IOEVENTFD, request)

    def create_vcpu(self, index: int) -> Vcpu:
        fd = ioctl(self.fd, Ioctl.KVM_CREATE_VCPU, index)
        return Vcpu(fd, index, self._vcpu_mmap_size)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
