"""Vm: one KVM virtual machine file descriptor: memory slots, the in-kernel interrupt controllers
and PIT, IRQ lines, dirty logging, statistics, and the vCPUs."""
from __future__ import annotations

import ctypes

from . import abi
from ._call import ioctl
from .ioctl import Ioctl
from .system import Kvm
from .vcpu import Vcpu
from ._fd import FdOwner

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Dict, List

if TYPE_CHECKING:
    from .stats import StatsFile

PAGE_SIZE = 4096                 # x86 KVM's dirty bitmap has one bit per 4 KiB page


class Vm(FdOwner):
    def __init__(self, kvm: Kvm):
        self.kvm = kvm
        self.fd = kvm.create_vm()
        self._vcpu_mmap_size = kvm.vcpu_mmap_size()
        self._next_slot = 0
        self._slot_sizes: Dict[int, int] = {}

    def add_memory(self, guest_phys_addr: int, size: int, host_addr: int, flags: int = 0) -> int:
        """Map host_addr[0:size] at guest_phys_addr; returns the slot number used. `flags`:
        abi.KVM_MEM_LOG_DIRTY_PAGES (see get_dirty_log), abi.KVM_MEM_READONLY (guest writes
        become MMIO exits; KVM_CAP_READONLY_MEM)."""
        region = abi.kvm_userspace_memory_region(
            slot=self._next_slot, flags=flags, guest_phys_addr=guest_phys_addr,
            memory_size=size, userspace_addr=host_addr)
        ioctl(self.fd, Ioctl.KVM_SET_USER_MEMORY_REGION, region)
        self._slot_sizes[region.slot] = size
        self._next_slot += 1
        return region.slot

    def get_dirty_log(self, slot: int) -> bytes:
        """The pages of `slot` written since the last call (or since dirty logging started), as a
        bitmap: bit n of byte n // 8 is the slot's page n. KVM clears the log as it hands it over."""
        pages = self._slot_sizes[slot] // PAGE_SIZE
        bitmap = (ctypes.c_uint64 * ((pages + 63) // 64))()     # KVM writes whole longs
        ioctl(self.fd, Ioctl.KVM_GET_DIRTY_LOG,
              abi.kvm_dirty_log(slot=slot, dirty_bitmap=ctypes.addressof(bitmap)))
        return bytes(bitmap)[:(pages + 7) // 8]

    def set_identity_map_addr(self, addr: int) -> None:
        """Where KVM puts the one-page identity map for real mode on Intel without unrestricted
        guest (KVM_CAP_SET_IDENTITY_MAP_ADDR); before any vCPU is created."""
        ioctl(self.fd, Ioctl.KVM_SET_IDENTITY_MAP_ADDR, ctypes.c_uint64(addr))

    # --- in-kernel interrupt controllers and PIT -------------------------------------------------

    def create_irqchip(self) -> None:
        """Two 8259 PICs, an IOAPIC, and a local APIC for every vCPU created after this
        (KVM_CAP_IRQCHIP). Measured here: ~3 ms to create, ~16 ms more to tear the VM down."""
        ioctl(self.fd, Ioctl.KVM_CREATE_IRQCHIP)

    def create_pit2(self, flags: int = 0) -> None:
        """An in-kernel 8254 PIT on ports 0x40-0x43 (KVM_CAP_PIT2); needs create_irqchip first.
        abi.KVM_PIT_SPEAKER_DUMMY also answers port 0x61 in the kernel."""
        ioctl(self.fd, Ioctl.KVM_CREATE_PIT2, abi.kvm_pit_config(flags=flags))

    def irq_line(self, irq: int, level: bool) -> None:
        """Drive GSI `irq` (PIC 0-15, IOAPIC 0-23) high or low (KVM_IRQ_LINE)."""
        ioctl(self.fd, Ioctl.KVM_IRQ_LINE, abi.kvm_irq_level(irq=irq, level=int(level)))

    def irq_line_status(self, irq: int, level: bool) -> int:
        """KVM_IRQ_LINE, also saying what happened (KVM_CAP_IRQ_INJECT_STATUS): > 0 delivered,
        0 coalesced with one already pending, < 0 masked or not delivered."""
        request = abi.kvm_irq_level(irq=irq, level=int(level))
        ioctl(self.fd, Ioctl.KVM_IRQ_LINE_STATUS, request)
        return request.status

    def get_irqchip(self, chip_id: int) -> abi.kvm_irqchip:
        """The state of one in-kernel chip (abi.IrqChip): `chip.pic` for the PICs."""
        chip = abi.kvm_irqchip(chip_id=chip_id)
        ioctl(self.fd, Ioctl.KVM_GET_IRQCHIP, chip)
        return chip

    def stats(self) -> "StatsFile":
        """This VM's binary statistics (KVM_CAP_BINARY_STATS_FD). Close it: it keeps the VM alive."""
        from .stats import StatsFile      # imported when used: start-up time counts
        return StatsFile(ioctl(self.fd, Ioctl.KVM_GET_STATS_FD))

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


def dirty_pages(bitmap: bytes) -> List[int]:
    """Page numbers whose bit is set in a get_dirty_log bitmap."""
    return [i * 8 + bit for i, byte in enumerate(bitmap) if byte for bit in range(8) if byte >> bit & 1]
