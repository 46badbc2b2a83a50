"""--stats and Result.stats: what a run's exits were, as plain data.

Built once after the run from each vCPU's counts (observe.VcpuCounts), KVM's own statistics (the
vCPUs' binary stats files: every exit KVM saw, including those it handled itself) and the writes KVM
absorbed for kvmrun (runtime/absorb.py). report/stats_table.py shows it as a table.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, Tuple

from ..kvm import abi
from ..kvm.abi import KvmExit
from .observe import OTHER, OUT, WRITE
from .trace import device_name, reason_name

if TYPE_CHECKING:
    from .observe import VcpuCounts


@dataclass(frozen=True)
class AccessStats:
    """Exits for one port or MMIO address in one direction."""
    space: str            # "port" or "mmio"
    address: int          # the port, or the guest-physical address; -1: MMIO addresses past the counted ones
    direction: str        # "out" / "in" for ports, "write" / "read" for MMIO
    device: str           # who handles it ("uart", "unclaimed")
    exits: int
    bytes: int            # data moved (a string instruction moves many in one exit); 0 for MMIO


@dataclass(frozen=True)
class VcpuStats:
    index: int
    exits: int
    guest_seconds: float         # inside KVM_RUN: the guest running, and KVM handling what it could
    kvmrun_seconds: float        # outside it: kvmrun handling the exits


@dataclass(frozen=True)
class RunStats:
    exits: int                            # exits that came back to kvmrun, every vCPU
    seconds: float                        # the run: from the vCPUs' start to the end
    guest_seconds: float
    kvmrun_seconds: float
    by_reason: Dict[str, int]             # KVM's exit reason ("IO", "HLT", "MMIO", "INTR") -> exits
    by_device: Dict[str, int]             # port and MMIO exits by the device that handled them
    accesses: Tuple[AccessStats, ...]     # port and MMIO exits by address, most first
    by_vcpu: Tuple[VcpuStats, ...]
    absorbed: Dict[str, int]              # writes KVM took without an exit, for kvmrun ("coalesced ring (COM1)")
    kvm: Dict[str, int]                   # KVM's own cumulative statistics, summed over the vCPUs
                                          # ("exits", "io_exits", "halt_exits"...); empty where it has none

    def exits_to(self, port: int, direction: str = "out") -> int:
        """Exits for `port` in `direction` ("out" or "in")."""
        return sum(a.exits for a in self.accesses
                   if a.space == "port" and a.address == port and a.direction == direction)

    @property
    def handled_by_kvm(self) -> int:
        """Exits KVM saw but handled itself (its `exits` less those kvmrun got); 0 without its statistics."""
        return max(0, self.kvm.get("exits", 0) - self.exits)


def run_stats(counts: Dict[int, "VcpuCounts"], run_ns: int, vcpus, bus, absorption) -> RunStats:
    reasons: Dict[str, int] = {}
    ports: Dict[int, int] = {}
    port_bytes: Dict[int, int] = {}
    mmio: Dict[int, int] = {}
    io = reason_name(int(KvmExit.KVM_EXIT_IO))
    for vcpu_counts in counts.values():
        for port, n in vcpu_counts.byte_outs.items():
            reasons[io] = reasons.get(io, 0) + n
            ports[port | OUT] = ports.get(port | OUT, 0) + n
            port_bytes[port | OUT] = port_bytes.get(port | OUT, 0) + n
        for reason, n in vcpu_counts.reasons.items():
            name = reason_name(reason)
            reasons[name] = reasons.get(name, 0) + n
        for key, n in vcpu_counts.ports.items():
            ports[key] = ports.get(key, 0) + n
            port_bytes[key] = port_bytes.get(key, 0) + vcpu_counts.port_bytes.get(key, 0)
        for key, n in vcpu_counts.mmio.items():
            mmio[key] = mmio.get(key, 0) + n
    accesses = [_port_access(bus, key, n, port_bytes.get(key, 0)) for key, n in ports.items()]
    accesses += [_mmio_access(bus, key, n) for key, n in mmio.items()]
    accesses.sort(key=lambda a: (-a.exits, a.space, a.address, a.direction))
    by_device: Dict[str, int] = {}
    for access in accesses:
        by_device[access.device] = by_device.get(access.device, 0) + access.exits
    per_vcpu = tuple(VcpuStats(index, c.exits + sum(c.byte_outs.values()), c.guest_ns / 1e9, c.kvmrun_ns / 1e9)
                     for index, c in sorted(counts.items()))
    return RunStats(
        exits=sum(v.exits for v in per_vcpu), seconds=run_ns / 1e9,
        guest_seconds=sum(v.guest_seconds for v in per_vcpu), kvmrun_seconds=sum(v.kvmrun_seconds for v in per_vcpu),
        by_reason=dict(sorted(reasons.items(), key=lambda item: -item[1])),
        by_device=dict(sorted(by_device.items(), key=lambda item: -item[1])),
        accesses=tuple(accesses), by_vcpu=per_vcpu,
        absorbed=absorption.absorbed() if absorption is not None else {},
        kvm=kvm_statistics(vcpus))


def _port_access(bus, key: int, exits: int, moved: int) -> AccessStats:
    port = key & 0xFFFF
    claimed = bus.device_at(port)
    return AccessStats("port", port, "out" if key & OUT else "in",
                       device_name(claimed[0]) if claimed is not None else "unclaimed", exits, moved)


def _mmio_access(bus, key: int, exits: int) -> AccessStats:
    if key == OTHER:
        return AccessStats("mmio", -1, "read/write", "other addresses", exits, 0)
    address = key >> 1
    claimed = bus.mmio_device_at(address)
    return AccessStats("mmio", address, "write" if key & WRITE else "read",
                       device_name(claimed[0]) if claimed is not None else "unclaimed", exits, 0)


def kvm_statistics(vcpus) -> Dict[str, int]:
    """KVM's cumulative single-value statistics of every vCPU, summed: what KVM saw of the run,
    including the exits it handled without kvmrun. Empty where KVM has no binary statistics."""
    from ..errors import KvmError
    totals: Dict[str, int] = {}
    for vcpu in vcpus:
        try:
            stats = vcpu.stats()
        except (KvmError, OSError):
            return {}
        with stats:
            wanted = [d.name for d in stats.descriptors.values()
                      if d.size == 1 and d.type == abi.KVM_STATS_TYPE_CUMULATIVE
                      and d.unit == abi.KVM_STATS_UNIT_NONE]
            values = stats.read_all()
        for name in wanted:
            totals[name] = totals.get(name, 0) + values[name][0]
    return totals
