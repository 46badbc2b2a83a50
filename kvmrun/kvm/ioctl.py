"""ioctl request numbers, computed the way <asm-generic/ioctl.h> does from ctypes struct sizes.

Each number is declared once, next to the struct it carries, so a wrong struct layout shows up as a
wrong number in the pinned tests.
"""
import ctypes

from . import abi

TYPE_CHECKING = False     # mypy checks these classes as the IntEnums they stand in for
if TYPE_CHECKING:
    from enum import IntEnum as IntConstants
else:
    from ..int_constants import IntConstants

KVMIO = 0xAE

_IOC_NONE, _IOC_WRITE, _IOC_READ = 0, 1, 2


def _ioc(direction: int, nr: int, size: int) -> int:
    return (direction << 30) | (size << 16) | (KVMIO << 8) | nr


def _io(nr: int) -> int:
    return _ioc(_IOC_NONE, nr, 0)


def _ior(nr: int, ctype) -> int:
    return _ioc(_IOC_READ, nr, ctypes.sizeof(ctype))


def _iow(nr: int, ctype) -> int:
    return _ioc(_IOC_WRITE, nr, ctypes.sizeof(ctype))


def _iowr(nr: int, ctype) -> int:
    return _ioc(_IOC_READ | _IOC_WRITE, nr, ctypes.sizeof(ctype))


class Ioctl(IntConstants):
    # /dev/kvm
    KVM_GET_API_VERSION = _io(0x00)
    KVM_CREATE_VM = _io(0x01)
    KVM_CHECK_EXTENSION = _io(0x03)
    KVM_GET_VCPU_MMAP_SIZE = _io(0x04)
    KVM_GET_SUPPORTED_CPUID = _iowr(0x05, abi.kvm_cpuid2)
    # VM
    KVM_CREATE_VCPU = _io(0x41)
    KVM_GET_DIRTY_LOG = _iow(0x42, abi.kvm_dirty_log)
    KVM_SET_USER_MEMORY_REGION = _iow(0x46, abi.kvm_userspace_memory_region)
    KVM_SET_TSS_ADDR = _io(0x47)
    KVM_SET_IDENTITY_MAP_ADDR = _iow(0x48, ctypes.c_uint64)
    KVM_CREATE_IRQCHIP = _io(0x60)
    KVM_IRQ_LINE = _iow(0x61, abi.kvm_irq_level)
    KVM_GET_IRQCHIP = _iowr(0x62, abi.kvm_irqchip)
    KVM_REGISTER_COALESCED_MMIO = _iow(0x67, abi.kvm_coalesced_mmio_zone)
    KVM_IRQ_LINE_STATUS = _iowr(0x67, abi.kvm_irq_level)
    KVM_UNREGISTER_COALESCED_MMIO = _iow(0x68, abi.kvm_coalesced_mmio_zone)
    KVM_CREATE_PIT2 = _iow(0x77, abi.kvm_pit_config)
    KVM_IOEVENTFD = _iow(0x79, abi.kvm_ioeventfd)
    # VM and vCPU
    KVM_GET_STATS_FD = _io(0xCE)
    # vCPU
    KVM_RUN = _io(0x80)
    KVM_GET_REGS = _ior(0x81, abi.kvm_regs)
    KVM_SET_REGS = _iow(0x82, abi.kvm_regs)
    KVM_GET_SREGS = _ior(0x83, abi.kvm_sregs)
    KVM_SET_SREGS = _iow(0x84, abi.kvm_sregs)
    KVM_TRANSLATE = _iowr(0x85, abi.kvm_translation)
    KVM_GET_LAPIC = _ior(0x8E, abi.kvm_lapic_state)
    KVM_SET_LAPIC = _iow(0x8F, abi.kvm_lapic_state)
    KVM_SET_CPUID2 = _iow(0x90, abi.kvm_cpuid2)
    KVM_GET_MP_STATE = _ior(0x98, abi.kvm_mp_state)
    KVM_SET_MP_STATE = _iow(0x99, abi.kvm_mp_state)
    KVM_SET_GUEST_DEBUG = _iow(0x9B, abi.kvm_guest_debug)
    KVM_GET_VCPU_EVENTS = _ior(0x9F, abi.kvm_vcpu_events)
    KVM_SET_VCPU_EVENTS = _iow(0xA0, abi.kvm_vcpu_events)
    KVM_GET_DEBUGREGS = _ior(0xA1, abi.kvm_debugregs)
    KVM_SET_DEBUGREGS = _iow(0xA2, abi.kvm_debugregs)
