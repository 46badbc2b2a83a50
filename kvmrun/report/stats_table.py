"""--stats: a run's exits as tables on stderr (debug/stats.RunStats)."""
from __future__ import annotations

from typing import TYPE_CHECKING, List

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from ..debug.stats import RunStats

ADDRESSES_SHOWN = 20            # ports and MMIO addresses listed, most exits first; the rest summed
# KVM's statistics worth a row (of the dozens it keeps), in this order, where not zero.
KVM_STATISTICS = ("exits", "io_exits", "mmio_exits", "halt_exits", "irq_exits", "irq_window_exits",
                  "signal_exits", "request_irq_exits", "insn_emulation", "insn_emulation_fail", "hypercalls",
                  "irq_injections", "nmi_injections", "pf_taken", "tlb_flush")


class _Sections:
    """Tables one below the other, each under its title on a line of its own (a rich table's own
    title wraps to the table's width)."""

    def __init__(self) -> None:
        self.parts: List[RenderableType] = []

    def table(self, title: str, *columns: str) -> Table:
        table = Table(show_edge=False, pad_edge=False, show_header=any(columns))
        for index, column in enumerate(columns):
            table.add_column(column, justify="left" if index == 0 else "right")
        if self.parts:
            self.parts.append(Text(""))
        self.parts.append(Text(title, style="bold"))
        self.parts.append(table)
        return table


def _share(part: float, whole: float) -> str:
    return f"{100 * part / whole:.0f}%" if whole > 0 else "-"


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f} ms"


def stats_tables(stats: "RunStats") -> Group:
    sections = _Sections()
    summary = sections.table("kvmrun --stats", "", "")
    summary.add_row("exits to kvmrun", f"{stats.exits:,}")
    if stats.kvm:
        summary.add_row("exits KVM handled itself", f"{stats.handled_by_kvm:,} of the {stats.kvm.get('exits', 0):,} "
                                                    "it counted")
    for how, count in stats.absorbed.items():
        summary.add_row(f"writes KVM absorbed: {how}", f"{count:,}")
    busy = stats.guest_seconds + stats.kvmrun_seconds
    summary.add_row("run (vCPUs started to end)", _ms(stats.seconds))
    summary.add_row("in the guest (in KVM_RUN)", f"{_ms(stats.guest_seconds)} ({_share(stats.guest_seconds, busy)})")
    summary.add_row("in kvmrun (handling exits)", f"{_ms(stats.kvmrun_seconds)} ({_share(stats.kvmrun_seconds, busy)})")
    if stats.exits:
        summary.add_row("in kvmrun per exit", f"{stats.kvmrun_seconds / stats.exits * 1e6:.2f} µs")

    reasons = sections.table("exits by reason", "reason", "exits")
    for reason, count in stats.by_reason.items():
        reasons.add_row(reason, f"{count:,}")

    if stats.accesses:
        accesses = sections.table("exits by port and address", "port / address", "access", "device", "exits", "bytes")
        for access in stats.accesses[:ADDRESSES_SHOWN]:
            where = (f"0x{access.address:04x}" if access.space == "port" else
                     "other" if access.address < 0 else f"0x{access.address:08x}")
            accesses.add_row(where, f"{access.space} {access.direction}", access.device, f"{access.exits:,}",
                             f"{access.bytes:,}" if access.space == "port" else "-")
        rest = stats.accesses[ADDRESSES_SHOWN:]
        if rest:
            accesses.add_row(f"{len(rest)} more", "", "", f"{sum(a.exits for a in rest):,}", "")
        devices = sections.table("exits by device", "device", "exits")
        for device, count in stats.by_device.items():
            devices.add_row(device, f"{count:,}")

    vcpus = sections.table("exits by vCPU", "vCPU", "exits", "in the guest", "in kvmrun")
    for vcpu in stats.by_vcpu:
        vcpus.add_row(str(vcpu.index), f"{vcpu.exits:,}", _ms(vcpu.guest_seconds), _ms(vcpu.kvmrun_seconds))

    shown = [(name, stats.kvm[name]) for name in KVM_STATISTICS if stats.kvm.get(name)]
    if shown:
        kvm = sections.table("KVM's own statistics, every vCPU (its binary stats)", "statistic", "count")
        for name, count in shown:
            kvm.add_row(name, f"{count:,}")
    return Group(*sections.parts)


def print_stats(stats: "RunStats", file=None) -> None:
    """The tables on `file` (stderr by default)."""
    import sys
    from rich.console import Console
    Console(file=file or sys.stderr, highlight=False).print(stats_tables(stats))
