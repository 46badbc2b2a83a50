"""The CPUID table each vCPU gets: what KVM supports on this host, with the vCPU's own APIC ID."""
from __future__ import annotations

from ..kvm import abi

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import List, Sequence

LEAF_FEATURES = 0x1
LEAF_EXTENDED_TOPOLOGY = 0xB
LEAF_V2_EXTENDED_TOPOLOGY = 0x1F


def cpuid_for_vcpu(supported: Sequence[abi.kvm_cpuid_entry2], apic_id: int) -> List[abi.kvm_cpuid_entry2]:
    entries = []
    for original in supported:
        entry = abi.kvm_cpuid_entry2.from_buffer_copy(original)
        if entry.function == LEAF_FEATURES:
            entry.ebx = (entry.ebx & 0x00FFFFFF) | ((apic_id & 0xFF) << 24)    # initial APIC ID
        elif entry.function in (LEAF_EXTENDED_TOPOLOGY, LEAF_V2_EXTENDED_TOPOLOGY):
            entry.edx = apic_id                                                  # x2APIC ID
        entries.append(entry)
    return entries
