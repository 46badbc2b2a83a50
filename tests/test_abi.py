"""ctypes layouts and ioctl numbers pinned to what <linux/kvm.h> gives on x86-64."""
import ctypes

import pytest

from kvmrun.kvm import abi
from kvmrun.kvm.ioctl import Ioctl


@pytest.mark.parametrize("struct, size", [
    (abi.kvm_regs, 144),
    (abi.kvm_segment, 24),
    (abi.kvm_dtable, 16),
    (abi.kvm_sregs, 312),
    (abi.kvm_userspace_memory_region, 32),
    (abi.kvm_translation, 24),
    (abi.kvm_cpuid_entry2, 40),
    (abi.kvm_cpuid2, 8),
    (abi.kvm_coalesced_mmio_zone, 16),
    (abi.kvm_ioeventfd, 64),
    (abi.kvm_run_io, 16),
    (abi.kvm_run_exit, 256),
    (abi.kvm_run, 2352),
])
def test_struct_sizes(struct, size):
    assert ctypes.sizeof(struct) == size


@pytest.mark.parametrize("struct, field, offset", [
    (abi.kvm_regs, "rbx", 8),
    (abi.kvm_regs, "rip", 128),
    (abi.kvm_regs, "rflags", 136),
    (abi.kvm_segment, "selector", 12),
    (abi.kvm_segment, "type", 14),
    (abi.kvm_segment, "unusable", 22),
    (abi.kvm_sregs, "tr", 144),
    (abi.kvm_sregs, "gdt", 192),
    (abi.kvm_sregs, "cr0", 224),
    (abi.kvm_sregs, "efer", 264),
    (abi.kvm_sregs, "apic_base", 272),
    (abi.kvm_sregs, "interrupt_bitmap", 280),
    (abi.kvm_run, "immediate_exit", 1),
    (abi.kvm_run, "exit_reason", 8),
    (abi.kvm_run, "cr8", 16),
    (abi.kvm_run, "exit", 32),
    (abi.kvm_run, "kvm_valid_regs", 288),
    (abi.kvm_run, "s", 304),
    (abi.kvm_run_io, "port", 2),
    (abi.kvm_run_io, "count", 4),
    (abi.kvm_run_io, "data_offset", 8),
    (abi.kvm_run_mmio, "data", 8),
    (abi.kvm_run_mmio, "len", 16),
    (abi.kvm_run_mmio, "is_write", 20),
    (abi.kvm_run_internal, "data", 8),
    (abi.kvm_cpuid_entry2, "eax", 12),
    (abi.kvm_cpuid_entry2, "edx", 24),
    (abi.kvm_userspace_memory_region, "userspace_addr", 24),
])
def test_field_offsets(struct, field, offset):
    assert getattr(struct, field).offset == offset


@pytest.mark.parametrize("ioctl, number", [
    (Ioctl.KVM_GET_API_VERSION, 0xAE00),
    (Ioctl.KVM_CREATE_VM, 0xAE01),
    (Ioctl.KVM_CHECK_EXTENSION, 0xAE03),
    (Ioctl.KVM_GET_VCPU_MMAP_SIZE, 0xAE04),
    (Ioctl.KVM_GET_SUPPORTED_CPUID, 0xC008AE05),
    (Ioctl.KVM_CREATE_VCPU, 0xAE41),
    (Ioctl.KVM_SET_USER_MEMORY_REGION, 0x4020AE46),
    (Ioctl.KVM_SET_TSS_ADDR, 0xAE47),
    (Ioctl.KVM_RUN, 0xAE80),
    (Ioctl.KVM_GET_REGS, 0x8090AE81),
    (Ioctl.KVM_SET_REGS, 0x4090AE82),
    (Ioctl.KVM_GET_SREGS, 0x8138AE83),
    (Ioctl.KVM_SET_SREGS, 0x4138AE84),
    (Ioctl.KVM_TRANSLATE, 0xC018AE85),
    (Ioctl.KVM_SET_CPUID2, 0x4008AE90),
    (Ioctl.KVM_REGISTER_COALESCED_MMIO, 0x4010AE67),
    (Ioctl.KVM_IOEVENTFD, 0x4040AE79),
])
def test_ioctl_numbers(ioctl, number):
    assert int(ioctl) == number


def test_cpuid_buffer_holds_entries_after_header():
    buf = abi.cpuid_buffer(3)
    assert buf.nent == 3
    assert ctypes.sizeof(buf) == 8 + 3 * 40
