"""ctypes mirrors of the structs in <linux/kvm.h> (x86), with the kernel's own names.

Layouts are pinned by tests/test_abi.py against the sizes and offsets the kernel headers give.
"""
import ctypes
import struct
from ctypes import c_uint8, c_uint16, c_uint32, c_uint64

from ..memo import memoized

TYPE_CHECKING = False     # mypy checks these classes as the IntEnums they stand in for
if TYPE_CHECKING:
    from enum import IntEnum as IntConstants
else:
    from ..int_constants import IntConstants

KVM_API_VERSION = 12


class KvmExit(IntConstants):
    """kvm_run.exit_reason values (KVM_EXIT_*)."""
    KVM_EXIT_UNKNOWN = 0
    KVM_EXIT_EXCEPTION = 1
    KVM_EXIT_IO = 2
    KVM_EXIT_HYPERCALL = 3
    KVM_EXIT_DEBUG = 4
    KVM_EXIT_HLT = 5
    KVM_EXIT_MMIO = 6
    KVM_EXIT_IRQ_WINDOW_OPEN = 7
    KVM_EXIT_SHUTDOWN = 8
    KVM_EXIT_FAIL_ENTRY = 9
    KVM_EXIT_INTR = 10
    KVM_EXIT_SET_TPR = 11
    KVM_EXIT_TPR_ACCESS = 12
    KVM_EXIT_NMI = 16
    KVM_EXIT_INTERNAL_ERROR = 17
    KVM_EXIT_SYSTEM_EVENT = 24
    KVM_EXIT_IOAPIC_EOI = 26
    KVM_EXIT_HYPERV = 27
    KVM_EXIT_X86_RDMSR = 29
    KVM_EXIT_X86_WRMSR = 30
    KVM_EXIT_DIRTY_RING_FULL = 31
    KVM_EXIT_AP_RESET_HOLD = 32
    KVM_EXIT_X86_BUS_LOCK = 33
    KVM_EXIT_NOTIFY = 37
    KVM_EXIT_MEMORY_FAULT = 39


class InternalSuberror(IntConstants):
    """kvm_run.internal.suberror values (KVM_INTERNAL_ERROR_*)."""
    KVM_INTERNAL_ERROR_EMULATION = 1
    KVM_INTERNAL_ERROR_SIMUL_EX = 2
    KVM_INTERNAL_ERROR_DELIVERY_EV = 3
    KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON = 4


class SystemEventType(IntConstants):
    KVM_SYSTEM_EVENT_SHUTDOWN = 1
    KVM_SYSTEM_EVENT_RESET = 2
    KVM_SYSTEM_EVENT_CRASH = 3
    KVM_SYSTEM_EVENT_WAKEUP = 4
    KVM_SYSTEM_EVENT_SUSPEND = 5
    KVM_SYSTEM_EVENT_SEV_TERM = 6


class Cap(IntConstants):
    """KVM_CHECK_EXTENSION arguments (KVM_CAP_*) that kvmrun asks about."""
    KVM_CAP_IRQCHIP = 0
    KVM_CAP_HLT = 1
    KVM_CAP_USER_MEMORY = 3
    KVM_CAP_SET_TSS_ADDR = 4
    KVM_CAP_EXT_CPUID = 7
    KVM_CAP_NR_VCPUS = 9
    KVM_CAP_NR_MEMSLOTS = 10
    KVM_CAP_MP_STATE = 14
    KVM_CAP_COALESCED_MMIO = 15
    KVM_CAP_SET_GUEST_DEBUG = 23
    KVM_CAP_IRQ_INJECT_STATUS = 26
    KVM_CAP_PIT2 = 33
    KVM_CAP_IOEVENTFD = 36
    KVM_CAP_SET_IDENTITY_MAP_ADDR = 37
    KVM_CAP_VCPU_EVENTS = 41
    KVM_CAP_DEBUGREGS = 50
    KVM_CAP_MAX_VCPUS = 66
    KVM_CAP_READONLY_MEM = 81
    KVM_CAP_IMMEDIATE_EXIT = 136
    KVM_CAP_COALESCED_PIO = 162
    KVM_CAP_BINARY_STATS_FD = 203


KVM_EXIT_IO_IN = 0
KVM_EXIT_IO_OUT = 1

KVM_MEM_LOG_DIRTY_PAGES = 1 << 0
KVM_MEM_READONLY = 1 << 1

KVM_IOEVENTFD_FLAG_DATAMATCH = 1 << 0
KVM_IOEVENTFD_FLAG_PIO = 1 << 1

KVM_PIT_SPEAKER_DUMMY = 1           # kvm_pit_config.flags: port 0x61 reads without a speaker model


class MpState(IntConstants):
    """kvm_mp_state.mp_state values (KVM_MP_STATE_*); not every one is valid on x86."""
    KVM_MP_STATE_RUNNABLE = 0
    KVM_MP_STATE_UNINITIALIZED = 1
    KVM_MP_STATE_INIT_RECEIVED = 2
    KVM_MP_STATE_HALTED = 3
    KVM_MP_STATE_SIPI_RECEIVED = 4
    KVM_MP_STATE_STOPPED = 5
    KVM_MP_STATE_CHECK_STOP = 6
    KVM_MP_STATE_OPERATING = 7
    KVM_MP_STATE_LOAD = 8
    KVM_MP_STATE_AP_RESET_HOLD = 9
    KVM_MP_STATE_SUSPENDED = 10


class IrqChip:
    """kvm_irqchip.chip_id values (KVM_IRQCHIP_*). Plain ints, like LapicReg: an IntEnum costs
    start-up time and these are never shown by name."""
    KVM_IRQCHIP_PIC_MASTER = 0
    KVM_IRQCHIP_PIC_SLAVE = 1
    KVM_IRQCHIP_IOAPIC = 2


# kvm_guest_debug.control: the generic bits (<linux/kvm.h>) and x86's (<asm/kvm.h>).
KVM_GUESTDBG_ENABLE = 0x00000001
KVM_GUESTDBG_SINGLESTEP = 0x00000002
KVM_GUESTDBG_USE_SW_BP = 0x00010000
KVM_GUESTDBG_USE_HW_BP = 0x00020000
KVM_GUESTDBG_INJECT_DB = 0x00040000
KVM_GUESTDBG_INJECT_BP = 0x00080000
KVM_GUESTDBG_BLOCKIRQ = 0x00100000

# kvm_stats_desc.flags: type, unit and base, four bits each.
KVM_STATS_TYPE_MASK = 0xF << 0
KVM_STATS_TYPE_CUMULATIVE = 0x0 << 0
KVM_STATS_TYPE_INSTANT = 0x1 << 0
KVM_STATS_TYPE_PEAK = 0x2 << 0
KVM_STATS_TYPE_LINEAR_HIST = 0x3 << 0
KVM_STATS_TYPE_LOG_HIST = 0x4 << 0
KVM_STATS_UNIT_MASK = 0xF << 4
KVM_STATS_UNIT_NONE = 0x0 << 4
KVM_STATS_UNIT_BYTES = 0x1 << 4
KVM_STATS_UNIT_SECONDS = 0x2 << 4
KVM_STATS_UNIT_CYCLES = 0x3 << 4
KVM_STATS_UNIT_BOOLEAN = 0x4 << 4
KVM_STATS_BASE_MASK = 0xF << 8
KVM_STATS_BASE_POW10 = 0x0 << 8
KVM_STATS_BASE_POW2 = 0x1 << 8


class kvm_regs(ctypes.Structure):
    _fields_ = [(name, c_uint64) for name in (
        "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp",
        "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip", "rflags")]


class kvm_segment(ctypes.Structure):
    _fields_ = [
        ("base", c_uint64),
        ("limit", c_uint32),
        ("selector", c_uint16),
        ("type", c_uint8),
        ("present", c_uint8),
        ("dpl", c_uint8),
        ("db", c_uint8),
        ("s", c_uint8),
        ("l", c_uint8),
        ("g", c_uint8),
        ("avl", c_uint8),
        ("unusable", c_uint8),
        ("padding", c_uint8),
    ]


class kvm_dtable(ctypes.Structure):
    _fields_ = [("base", c_uint64), ("limit", c_uint16), ("padding", c_uint16 * 3)]


KVM_NR_INTERRUPTS = 256


class kvm_sregs(ctypes.Structure):
    _fields_ = [
        ("cs", kvm_segment), ("ds", kvm_segment), ("es", kvm_segment), ("fs", kvm_segment),
        ("gs", kvm_segment), ("ss", kvm_segment), ("tr", kvm_segment), ("ldt", kvm_segment),
        ("gdt", kvm_dtable), ("idt", kvm_dtable),
        ("cr0", c_uint64), ("cr2", c_uint64), ("cr3", c_uint64), ("cr4", c_uint64),
        ("cr8", c_uint64), ("efer", c_uint64), ("apic_base", c_uint64),
        ("interrupt_bitmap", c_uint64 * ((KVM_NR_INTERRUPTS + 63) // 64)),
    ]


class kvm_userspace_memory_region(ctypes.Structure):
    _fields_ = [
        ("slot", c_uint32),
        ("flags", c_uint32),
        ("guest_phys_addr", c_uint64),
        ("memory_size", c_uint64),
        ("userspace_addr", c_uint64),
    ]


class kvm_translation(ctypes.Structure):
    _fields_ = [
        ("linear_address", c_uint64),
        ("physical_address", c_uint64),
        ("valid", c_uint8),
        ("writeable", c_uint8),
        ("usermode", c_uint8),
        ("pad", c_uint8 * 5),
    ]


class kvm_irq_level(ctypes.Structure):
    """KVM_IRQ_LINE's argument; `irq` shares its place with the `status` KVM_IRQ_LINE_STATUS returns."""
    _fields_ = [("irq", c_uint32), ("level", c_uint32)]

    @property
    def status(self) -> int:
        return ctypes.c_int32(self.irq).value


class kvm_pit_config(ctypes.Structure):
    _fields_ = [("flags", c_uint32), ("pad", c_uint32 * 15)]


class kvm_pic_state(ctypes.Structure):
    _fields_ = [(name, c_uint8) for name in (
        "last_irr", "irr", "imr", "isr", "priority_add", "irq_base", "read_reg_select", "poll",
        "special_mask", "init_state", "auto_eoi", "rotate_on_auto_eoi", "special_fully_nested_mode",
        "init4", "elcr", "elcr_mask")]


class kvm_irqchip_state(ctypes.Union):
    """The `chip` union of kvm_irqchip: the PIC's state, or 512 bytes kept for the IOAPIC's."""
    _fields_ = [("dummy", ctypes.c_char * 512), ("pic", kvm_pic_state)]


class kvm_irqchip(ctypes.Structure):
    _fields_ = [("chip_id", c_uint32), ("pad", c_uint32), ("chip", kvm_irqchip_state)]


class kvm_dirty_log(ctypes.Structure):
    """`dirty_bitmap` is a user-space address (a union with __u64 padding2 in the header)."""
    _fields_ = [("slot", c_uint32), ("padding1", c_uint32), ("dirty_bitmap", c_uint64)]


class kvm_mp_state(ctypes.Structure):
    _fields_ = [("mp_state", c_uint32)]


KVM_APIC_REG_SIZE = 0x400


class LapicReg:
    """Offsets of local APIC registers in the APIC page and in kvm_lapic_state.regs (<asm/apicdef.h>)."""
    APIC_ID = 0x20
    APIC_LVR = 0x30
    APIC_TASKPRI = 0x80
    APIC_PROCPRI = 0xA0
    APIC_EOI = 0xB0
    APIC_LDR = 0xD0
    APIC_DFR = 0xE0
    APIC_SPIV = 0xF0
    APIC_ISR = 0x100
    APIC_TMR = 0x180
    APIC_IRR = 0x200
    APIC_ESR = 0x280
    APIC_ICR = 0x300
    APIC_ICR2 = 0x310
    APIC_LVTT = 0x320
    APIC_LVTTHMR = 0x330
    APIC_LVTPC = 0x340
    APIC_LVT0 = 0x350
    APIC_LVT1 = 0x360
    APIC_LVTERR = 0x370
    APIC_TMICT = 0x380
    APIC_TMCCT = 0x390
    APIC_TDCR = 0x3E0


class kvm_lapic_state(ctypes.Structure):
    """The local APIC's register page as KVM_GET_LAPIC/KVM_SET_LAPIC carry it: each register is a
    32-bit little-endian value at its 16-byte aligned offset."""
    _fields_ = [("regs", c_uint8 * KVM_APIC_REG_SIZE)]    # char[] in the header; bytes, not a C string

    def get_reg(self, offset: int) -> int:
        return _APIC_REG.unpack_from(self.regs, _lapic_reg_at(offset))[0]

    def set_reg(self, offset: int, value: int) -> None:
        if not 0 <= value <= 0xFFFFFFFF:
            raise ValueError(f"APIC register value 0x{value:x} does not fit in 32 bits")
        _APIC_REG.pack_into(self.regs, _lapic_reg_at(offset), value)


_APIC_REG = struct.Struct("<I")


def _lapic_reg_at(offset: int) -> int:
    if not (0 <= offset < KVM_APIC_REG_SIZE and offset % 16 == 0):
        raise ValueError(f"0x{offset:x} is not a local APIC register offset (16-byte aligned, below 0x400)")
    return offset


class kvm_guest_debug_arch(ctypes.Structure):
    _fields_ = [("debugreg", c_uint64 * 8)]


class kvm_guest_debug(ctypes.Structure):
    _fields_ = [("control", c_uint32), ("pad", c_uint32), ("arch", kvm_guest_debug_arch)]


class kvm_debugregs(ctypes.Structure):
    _fields_ = [
        ("db", c_uint64 * 4),
        ("dr6", c_uint64),
        ("dr7", c_uint64),
        ("flags", c_uint64),
        ("reserved", c_uint64 * 9),
    ]


class kvm_vcpu_events_exception(ctypes.Structure):
    _fields_ = [("injected", c_uint8), ("nr", c_uint8), ("has_error_code", c_uint8), ("pending", c_uint8),
                ("error_code", c_uint32)]


class kvm_vcpu_events_interrupt(ctypes.Structure):
    _fields_ = [("injected", c_uint8), ("nr", c_uint8), ("soft", c_uint8), ("shadow", c_uint8)]


class kvm_vcpu_events_nmi(ctypes.Structure):
    _fields_ = [("injected", c_uint8), ("pending", c_uint8), ("masked", c_uint8), ("pad", c_uint8)]


class kvm_vcpu_events_smi(ctypes.Structure):
    _fields_ = [("smm", c_uint8), ("pending", c_uint8), ("smm_inside_nmi", c_uint8), ("latched_init", c_uint8)]


class kvm_vcpu_events_triple_fault(ctypes.Structure):
    _fields_ = [("pending", c_uint8)]


# kvm_vcpu_events.flags: which optional fields KVM_SET_VCPU_EVENTS takes.
KVM_VCPUEVENT_VALID_NMI_PENDING = 0x00000001
KVM_VCPUEVENT_VALID_SIPI_VECTOR = 0x00000002
KVM_VCPUEVENT_VALID_SHADOW = 0x00000004
KVM_VCPUEVENT_VALID_SMM = 0x00000008
KVM_VCPUEVENT_VALID_PAYLOAD = 0x00000010
KVM_VCPUEVENT_VALID_TRIPLE_FAULT = 0x00000020


class kvm_vcpu_events(ctypes.Structure):
    _fields_ = [
        ("exception", kvm_vcpu_events_exception),
        ("interrupt", kvm_vcpu_events_interrupt),
        ("nmi", kvm_vcpu_events_nmi),
        ("sipi_vector", c_uint32),
        ("flags", c_uint32),
        ("smi", kvm_vcpu_events_smi),
        ("triple_fault", kvm_vcpu_events_triple_fault),
        ("reserved", c_uint8 * 26),
        ("exception_has_payload", c_uint8),
        ("exception_payload", c_uint64),
    ]


class kvm_stats_header(ctypes.Structure):
    _fields_ = [(name, c_uint32) for name in (
        "flags", "name_size", "num_desc", "id_offset", "desc_offset", "data_offset")]


class kvm_stats_desc(ctypes.Structure):
    """One descriptor; its NUL-padded name (kvm_stats_header.name_size bytes) follows it in the file."""
    _fields_ = [
        ("flags", c_uint32),
        ("exponent", ctypes.c_int16),
        ("size", c_uint16),
        ("offset", c_uint32),
        ("bucket_size", c_uint32),
    ]


class kvm_cpuid_entry2(ctypes.Structure):
    _fields_ = [
        ("function", c_uint32),
        ("index", c_uint32),
        ("flags", c_uint32),
        ("eax", c_uint32),
        ("ebx", c_uint32),
        ("ecx", c_uint32),
        ("edx", c_uint32),
        ("padding", c_uint32 * 3),
    ]


class kvm_cpuid2(ctypes.Structure):
    """Header only; the entries follow it in memory (see cpuid_buffer)."""
    _fields_ = [("nent", c_uint32), ("padding", c_uint32)]


def cpuid_buffer(entries: int):
    """A kvm_cpuid2 followed by room for `entries` kvm_cpuid_entry2, as one ctypes object."""
    buf = _cpuid2_type(entries)()
    buf.nent = entries
    return buf


@memoized(8)
def _cpuid2_type(entries: int):
    class _kvm_cpuid2_n(ctypes.Structure):
        _fields_ = [("nent", c_uint32), ("padding", c_uint32),
                    ("entries", kvm_cpuid_entry2 * entries)]
    return _kvm_cpuid2_n


class kvm_coalesced_mmio_zone(ctypes.Structure):
    _fields_ = [("addr", c_uint64), ("size", c_uint32), ("pio", c_uint32)]


class kvm_ioeventfd(ctypes.Structure):
    _fields_ = [
        ("datamatch", c_uint64),
        ("addr", c_uint64),
        ("len", c_uint32),
        ("fd", ctypes.c_int32),
        ("flags", c_uint32),
        ("pad", c_uint8 * 36),
    ]


# --- kvm_run and the members of its exit union that kvmrun reads -------------------------------

class kvm_run_io(ctypes.Structure):
    _fields_ = [
        ("direction", c_uint8),
        ("size", c_uint8),
        ("port", c_uint16),
        ("count", c_uint32),
        ("data_offset", c_uint64),
    ]


class kvm_run_mmio(ctypes.Structure):
    _fields_ = [
        ("phys_addr", c_uint64),
        ("data", c_uint8 * 8),
        ("len", c_uint32),
        ("is_write", c_uint8),
    ]


class kvm_run_fail_entry(ctypes.Structure):
    _fields_ = [("hardware_entry_failure_reason", c_uint64), ("cpu", c_uint32)]


class kvm_run_internal(ctypes.Structure):
    _fields_ = [("suberror", c_uint32), ("ndata", c_uint32), ("data", c_uint64 * 16)]


class kvm_run_system_event(ctypes.Structure):
    _fields_ = [("type", c_uint32), ("ndata", c_uint32), ("data", c_uint64 * 16)]


class kvm_run_hw(ctypes.Structure):
    _fields_ = [("hardware_exit_reason", c_uint64)]


class kvm_run_ex(ctypes.Structure):
    _fields_ = [("exception", c_uint32), ("error_code", c_uint32)]


class kvm_debug_exit_arch(ctypes.Structure):
    """x86's part of a KVM_EXIT_DEBUG: the vector (1 #DB, 3 #BP), the linear PC, DR6 and DR7."""
    _fields_ = [("exception", c_uint32), ("pad", c_uint32), ("pc", c_uint64), ("dr6", c_uint64),
                ("dr7", c_uint64)]


class kvm_run_debug(ctypes.Structure):
    _fields_ = [("arch", kvm_debug_exit_arch)]


class kvm_run_eoi(ctypes.Structure):
    _fields_ = [("vector", c_uint8)]


class kvm_run_exit(ctypes.Union):
    _fields_ = [
        ("hw", kvm_run_hw),
        ("fail_entry", kvm_run_fail_entry),
        ("ex", kvm_run_ex),
        ("io", kvm_run_io),
        ("debug", kvm_run_debug),
        ("mmio", kvm_run_mmio),
        ("internal", kvm_run_internal),
        ("system_event", kvm_run_system_event),
        ("eoi", kvm_run_eoi),
        ("padding", ctypes.c_char * 256),
    ]


class kvm_run(ctypes.Structure):
    _fields_ = [
        ("request_interrupt_window", c_uint8),
        ("immediate_exit", c_uint8),
        ("padding1", c_uint8 * 6),
        ("exit_reason", c_uint32),
        ("ready_for_interrupt_injection", c_uint8),
        ("if_flag", c_uint8),
        ("flags", c_uint16),
        ("cr8", c_uint64),
        ("apic_base", c_uint64),
        ("exit", kvm_run_exit),
        ("kvm_valid_regs", c_uint64),
        ("kvm_dirty_regs", c_uint64),
        ("s", ctypes.c_char * 2048),
    ]
