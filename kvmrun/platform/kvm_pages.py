"""The guest-physical pages KVM keeps for itself on Intel hosts, placed in the MMIO gap below
4 GiB where no RAM is, clear of the IOAPIC (0xFEC00000) and local APIC (0xFEE00000) pages.

Without unrestricted guest support, VMX runs real mode as vm86 under a TSS of its own (three
pages, KVM_SET_TSS_ADDR) and protected mode without paging through a one-page identity map
(KVM_SET_IDENTITY_MAP_ADDR). A SIPI starts an AP in real mode, which then switches on the way to
long mode: APs started that way need both.
Both must be set before the first vCPU is created; hosts that do not ask for them ignore them.
"""
from .. import layout
from ..kvm.abi import Cap
from ..kvm.system import Kvm
from ..kvm.vm import Vm


def place_kvm_pages(kvm: Kvm, vm: Vm) -> None:
    if kvm.check_extension(Cap.KVM_CAP_SET_TSS_ADDR):
        vm.set_tss_addr(layout.KVM_TSS_ADDR)
    if kvm.check_extension(Cap.KVM_CAP_SET_IDENTITY_MAP_ADDR):
        vm.set_identity_map_addr(layout.KVM_IDENTITY_MAP_ADDR)
