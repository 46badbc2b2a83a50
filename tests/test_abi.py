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
    (abi.kvm_irq_level, 8),
    (abi.kvm_pit_config, 64),
    (abi.kvm_pic_state, 16),
    (abi.kvm_irqchip, 520),
    (abi.kvm_dirty_log, 16),
    (abi.kvm_mp_state, 4),
    (abi.kvm_lapic_state, 1024),
    (abi.kvm_guest_debug_arch, 64),
    (abi.kvm_guest_debug, 72),
    (abi.kvm_debug_exit_arch, 32),
    (abi.kvm_debugregs, 128),
    (abi.kvm_vcpu_events, 64),
    (abi.kvm_stats_header, 24),
    (abi.kvm_stats_desc, 16),
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
    (abi.kvm_irq_level, "level", 4),
    (abi.kvm_pit_config, "pad", 4),
    (abi.kvm_pic_state, "irr", 1),
    (abi.kvm_pic_state, "elcr", 14),
    (abi.kvm_irqchip, "chip", 8),
    (abi.kvm_dirty_log, "dirty_bitmap", 8),
    (abi.kvm_guest_debug, "arch", 8),
    (abi.kvm_debug_exit_arch, "pc", 8),
    (abi.kvm_debug_exit_arch, "dr6", 16),
    (abi.kvm_debug_exit_arch, "dr7", 24),
    (abi.kvm_run_exit, "debug", 0),
    (abi.kvm_debugregs, "dr6", 32),
    (abi.kvm_debugregs, "dr7", 40),
    (abi.kvm_debugregs, "flags", 48),
    (abi.kvm_debugregs, "reserved", 56),
    (abi.kvm_vcpu_events, "interrupt", 8),
    (abi.kvm_vcpu_events, "nmi", 12),
    (abi.kvm_vcpu_events, "sipi_vector", 16),
    (abi.kvm_vcpu_events, "flags", 20),
    (abi.kvm_vcpu_events, "smi", 24),
    (abi.kvm_vcpu_events, "triple_fault", 28),
    (abi.kvm_vcpu_events, "reserved", 29),
    (abi.kvm_vcpu_events, "exception_has_payload", 55),
    (abi.kvm_vcpu_events, "exception_payload", 56),
    (abi.kvm_stats_header, "data_offset", 20),
    (abi.kvm_stats_desc, "exponent", 4),
    (abi.kvm_stats_desc, "size", 6),
    (abi.kvm_stats_desc, "offset", 8),
    (abi.kvm_stats_desc, "bucket_size", 12),
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
    # By hand from <asm-generic/ioctl.h>: dir << 30 | size << 16 | 0xAE << 8 | nr, with _IOW = 1,
    # _IOR = 2, _IOWR = 3 and size = sizeof the struct the header names; the comment gives the
    # value the kernel headers produce (a C program printing them on x86-64).
    (Ioctl.KVM_GET_DIRTY_LOG, 1 << 30 | 16 << 16 | 0xAE42),           # _IOW kvm_dirty_log: 0x4010AE42
    (Ioctl.KVM_SET_IDENTITY_MAP_ADDR, 1 << 30 | 8 << 16 | 0xAE48),    # _IOW __u64: 0x4008AE48
    (Ioctl.KVM_CREATE_IRQCHIP, 0xAE60),                               # _IO
    (Ioctl.KVM_IRQ_LINE, 1 << 30 | 8 << 16 | 0xAE61),                 # _IOW kvm_irq_level: 0x4008AE61
    (Ioctl.KVM_GET_IRQCHIP, 3 << 30 | 520 << 16 | 0xAE62),            # _IOWR kvm_irqchip: 0xC208AE62
    (Ioctl.KVM_IRQ_LINE_STATUS, 3 << 30 | 8 << 16 | 0xAE67),          # _IOWR kvm_irq_level: 0xC008AE67
    (Ioctl.KVM_CREATE_PIT2, 1 << 30 | 64 << 16 | 0xAE77),             # _IOW kvm_pit_config: 0x4040AE77
    (Ioctl.KVM_GET_STATS_FD, 0xAECE),                                 # _IO
    (Ioctl.KVM_GET_LAPIC, 2 << 30 | 1024 << 16 | 0xAE8E),             # _IOR kvm_lapic_state: 0x8400AE8E
    (Ioctl.KVM_SET_LAPIC, 1 << 30 | 1024 << 16 | 0xAE8F),             # _IOW kvm_lapic_state: 0x4400AE8F
    (Ioctl.KVM_GET_MP_STATE, 2 << 30 | 4 << 16 | 0xAE98),             # _IOR kvm_mp_state: 0x8004AE98
    (Ioctl.KVM_SET_MP_STATE, 1 << 30 | 4 << 16 | 0xAE99),             # _IOW kvm_mp_state: 0x4004AE99
    (Ioctl.KVM_SET_GUEST_DEBUG, 1 << 30 | 72 << 16 | 0xAE9B),         # _IOW kvm_guest_debug: 0x4048AE9B
    (Ioctl.KVM_GET_VCPU_EVENTS, 2 << 30 | 64 << 16 | 0xAE9F),         # _IOR kvm_vcpu_events: 0x8040AE9F
    (Ioctl.KVM_SET_VCPU_EVENTS, 1 << 30 | 64 << 16 | 0xAEA0),         # _IOW kvm_vcpu_events: 0x4040AEA0
    (Ioctl.KVM_GET_DEBUGREGS, 2 << 30 | 128 << 16 | 0xAEA1),          # _IOR kvm_debugregs: 0x8080AEA1
    (Ioctl.KVM_SET_DEBUGREGS, 1 << 30 | 128 << 16 | 0xAEA2),          # _IOW kvm_debugregs: 0x4080AEA2
])
def test_ioctl_numbers(ioctl, number):
    assert int(ioctl) == number


def test_no_two_ioctls_share_a_number():
    """An IntEnum silently makes a member with an existing value an alias of the first one."""
    assert len(Ioctl.__members__) == len(list(Ioctl))


@pytest.mark.parametrize("cap, number", [
    (abi.Cap.KVM_CAP_IRQCHIP, 0),
    (abi.Cap.KVM_CAP_MP_STATE, 14),
    (abi.Cap.KVM_CAP_SET_GUEST_DEBUG, 23),
    (abi.Cap.KVM_CAP_IRQ_INJECT_STATUS, 26),
    (abi.Cap.KVM_CAP_PIT2, 33),
    (abi.Cap.KVM_CAP_SET_IDENTITY_MAP_ADDR, 37),
    (abi.Cap.KVM_CAP_VCPU_EVENTS, 41),
    (abi.Cap.KVM_CAP_DEBUGREGS, 50),
    (abi.Cap.KVM_CAP_READONLY_MEM, 81),
    (abi.Cap.KVM_CAP_BINARY_STATS_FD, 203),
])
def test_capability_numbers(cap, number):
    assert int(cap) == number


def test_constants_from_the_headers():
    assert (abi.KVM_MEM_LOG_DIRTY_PAGES, abi.KVM_MEM_READONLY, abi.KVM_PIT_SPEAKER_DUMMY) == (1, 2, 1)
    assert (abi.KVM_GUESTDBG_ENABLE, abi.KVM_GUESTDBG_SINGLESTEP) == (1, 2)
    assert (abi.KVM_GUESTDBG_USE_SW_BP, abi.KVM_GUESTDBG_USE_HW_BP) == (0x10000, 0x20000)
    assert (abi.MpState.KVM_MP_STATE_RUNNABLE, abi.MpState.KVM_MP_STATE_UNINITIALIZED,
            abi.MpState.KVM_MP_STATE_HALTED, abi.MpState.KVM_MP_STATE_SIPI_RECEIVED) == (0, 1, 3, 4)
    assert abi.KvmExit.KVM_EXIT_DEBUG == 4 and abi.KvmExit.KVM_EXIT_IOAPIC_EOI == 26


def test_lapic_registers_are_little_endian_words_at_their_offsets():
    state = abi.kvm_lapic_state()
    state.set_reg(abi.LapicReg.APIC_TASKPRI, 0x12345678)
    assert bytes(state.regs[0x80:0x84]) == b"\x78\x56\x34\x12"
    assert state.get_reg(0x80) == 0x12345678 and state.get_reg(0x90) == 0
    state.regs[0x3F0] = 0xAB                     # the last register slot, written as raw bytes
    assert state.get_reg(0x3F0) == 0xAB


@pytest.mark.parametrize("offset", [0x84, -16, 0x400, 0x1000])
def test_lapic_register_offsets_must_name_a_register(offset):
    state = abi.kvm_lapic_state()
    with pytest.raises(ValueError, match="not a local APIC register offset"):
        state.get_reg(offset)
    with pytest.raises(ValueError, match="not a local APIC register offset"):
        state.set_reg(offset, 1)


def test_lapic_register_values_are_32_bits():
    with pytest.raises(ValueError, match="does not fit in 32 bits"):
        abi.kvm_lapic_state().set_reg(0x80, 1 << 32)


def test_irq_level_status_is_signed():
    assert abi.kvm_irq_level(irq=0xFFFFFFFF).status == -1


def test_cpuid_buffer_holds_entries_after_header():
    buf = abi.cpuid_buffer(3)
    assert buf.nent == 3
    assert ctypes.sizeof(buf) == 8 + 3 * 40
