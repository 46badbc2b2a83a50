"""The PC's interrupt controllers as KVM provides them in the kernel, and the interrupt line a
device raises (api.rst: KVM_CREATE_IRQCHIP, KVM_CREATE_PIT2, KVM_IRQ_LINE).

In the order KVM requires:
1. create_interrupt_controllers(kvm, vm), before any vCPU exists: two 8259 PICs (ports 0x20-0x21,
   0xA0-0xA1, ELCR 0x4D0-0x4D1), an IOAPIC at 0xFEC00000 and an 8254 PIT (ports 0x40-0x43, and 0x61
   for channel 2's gate and output). Every vCPU created afterwards has a local APIC at 0xFEE00000.
2. set_up_vcpu(vcpu, ap_start), after the vCPU is created and its sregs set (they carry the APIC
   base MSR, which a set_sregs built from zeroes would clear, disabling the local APIC).

KVM's default routing sends GSI n to PIC input n and IOAPIC pin n for n < 16, and GSIs 16-23 to the
IOAPIC only; the PIT drives GSI 0 (IOAPIC pin 0, where PC firmware would describe an override to
pin 2). A PIC interrupt reaches a vCPU only through its local APIC's LINT0: KVM hands it to a vCPU
whose LVT0 is ExtINT and unmasked, or whose local APIC is hardware-disabled.
"""
from __future__ import annotations

from ..errors import KvmUnavailable
from ..kvm import abi
from ..kvm.abi import Cap, LapicReg, MpState
from ..kvm.system import Kvm
from ..kvm.vcpu import Vcpu
from ..kvm.vm import Vm
from .needs import AP_START_ENTRY, AP_START_SIPI

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Optional

BSP_INDEX = 0                     # KVM's boot vCPU unless KVM_SET_BOOT_CPU_ID says otherwise
IOAPIC_PINS = 24                  # KVM_IOAPIC_NUM_PINS: the GSIs KVM_IRQ_LINE takes

# Local vector table entries (SDM vol. 3A, 11.5.1): the delivery mode in bits 8-10, bit 16 masks.
LVT_MASKED = 1 << 16
LVT_DELIVERY_NMI = 0b100 << 8
LVT_DELIVERY_EXTINT = 0b111 << 8

_NEEDED_CAPS = (Cap.KVM_CAP_IRQCHIP, Cap.KVM_CAP_PIT2, Cap.KVM_CAP_MP_STATE)


def create_interrupt_controllers(kvm: Kvm, vm: Vm) -> None:
    """The PICs, the IOAPIC and the PIT, and from now on a local APIC with each new vCPU. Must come
    before the first create_vcpu. KvmUnavailable naming what this host's KVM lacks."""
    missing = [cap.name for cap in _NEEDED_CAPS if not kvm.check_extension(cap)]
    if missing:
        raise KvmUnavailable(f"the in-kernel interrupt controllers need {', '.join(missing)}, which "
                             "this host's KVM does not offer: run without the irqchip")
    vm.create_irqchip()
    # The dummy speaker makes KVM answer port 0x61 too, so guests that time loops with PIT
    # channel 2 (its gate and output are bits 0 and 5 there) work without a speaker model.
    vm.create_pit2(abi.KVM_PIT_SPEAKER_DUMMY)


def set_up_vcpu(vcpu: Vcpu, ap_start: str) -> None:
    """A vCPU's local APIC and run state under the irqchip, as a PC's firmware leaves them.

    vCPU 0 (the BSP): LVT0 = ExtINT, so the PICs' interrupts reach it, and LVT1 = NMI (QEMU's
    apic_reset, Firecracker's set_lint). KVM sets LVT0 so itself for the BSP (its LINT0_REENABLED
    quirk) but leaves LVT1 masked; both are set here so nothing depends on a quirk.
    The others (APs): KVM creates them UNINITIALIZED. "entry" makes them runnable at the entry
    their registers give; "sipi" leaves them waiting: an INIT then a SIPI from another local APIC
    starts one in real mode at vector * 0x1000 (KVM ignores a SIPI that no INIT preceded)."""
    if vcpu.index == BSP_INDEX:
        lapic = vcpu.get_lapic()
        lapic.set_reg(LapicReg.APIC_LVT0, LVT_DELIVERY_EXTINT)
        lapic.set_reg(LapicReg.APIC_LVT1, LVT_DELIVERY_NMI)
        vcpu.set_lapic(lapic)
    elif ap_start == AP_START_ENTRY:
        vcpu.set_mp_state(MpState.KVM_MP_STATE_RUNNABLE)
    elif ap_start == AP_START_SIPI:
        vcpu.set_mp_state(MpState.KVM_MP_STATE_UNINITIALIZED)
    else:
        raise ValueError(f"ap_start must be {AP_START_ENTRY!r} or {AP_START_SIPI!r}, not {ap_start!r}")


class IrqLine:
    """One interrupt request line (a GSI) as a device drives it: `set(True)` raises it, `set(False)`
    lowers it. Without an irqchip (vm None) it only remembers its level; with one, a change of level
    is one KVM_IRQ_LINE and setting the level it already has costs nothing.

    The PICs' inputs are edge-triggered unless the guest sets ELCR (ISA's rule): a device whose
    interrupt condition persists keeps the line high, and only a fall and a new rise interrupts
    again. Not locked: the caller holds the lock of the device that drives it."""
    __slots__ = ("irq", "level", "_vm")

    def __init__(self, irq: int, vm: Optional[Vm] = None):
        if not 0 <= irq < IOAPIC_PINS:
            raise ValueError(f"IRQ {irq} is not a GSI the in-kernel irqchip has (0-{IOAPIC_PINS - 1})")
        self.irq = irq
        self.level = False
        self._vm = vm

    def set(self, level: bool) -> None:
        if level == self.level:
            return
        self.level = level
        if self._vm is not None:
            self._vm.irq_line(self.irq, level)
