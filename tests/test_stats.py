"""--stats and Result.stats: counting exits by reason, port, device and vCPU, KVM's own statistics and
what it absorbed, the table; and that a run without --trace or --stats keeps the fast loop."""
import io
import pickle
import re

import pytest

import kvmrun
from conftest import guest, run_kvmrun
from kvmrun.debug import observe
from kvmrun.debug.observe import MMIO_ADDRESSES, OTHER, OUT, WRITE, VcpuCounts
from kvmrun.debug.stats import AccessStats, RunStats, run_stats
from kvmrun.devices.bus import IgnoredPort, IoBus
from kvmrun.devices.serial import Serial16550
from kvmrun.kvm import exits
from kvmrun.kvm.abi import KvmExit


class _Absorbed:
    def absorbed(self):
        return {"coalesced ring (COM1)": 7}


def _bus():
    bus = IoBus()
    bus.register(0x3F8, 8, Serial16550(lambda byte: None))
    bus.register(0x80, 1, IgnoredPort())
    bus.register_mmio(0xD0000000, 0x1000, IgnoredPort())
    return bus


def _counts():
    first, second = VcpuCounts(), VcpuCounts()
    first.byte_outs = {0x3F8: 10, 0x81: 2}                   # one-byte OUTs taken inline
    first.exits, first.reasons = 2, {int(KvmExit.KVM_EXIT_IO): 1, int(KvmExit.KVM_EXIT_HLT): 1}
    first.ports, first.port_bytes = {0x3F8 | OUT: 1}, {0x3F8 | OUT: 22}   # a rep outsb of 22 bytes
    first.guest_ns, first.kvmrun_ns = 3_000_000, 1_000_000
    second.exits, second.reasons = 3, {int(KvmExit.KVM_EXIT_IO): 1, int(KvmExit.KVM_EXIT_MMIO): 2}
    second.ports, second.port_bytes = {0x3FD: 1}, {0x3FD: 1}
    second.mmio = {0xD0000010 << 1 | WRITE: 1, OTHER: 1}
    return {0: first, 1: second}


def test_counts_of_every_vcpu_become_one_run_by_reason_port_device_and_vcpu():
    stats = run_stats(_counts(), 5_000_000, [], _bus(), _Absorbed())
    assert stats.exits == 17 and stats.seconds == 0.005
    assert stats.by_reason == {"IO": 14, "MMIO": 2, "HLT": 1}          # most first
    assert stats.exits_to(0x3F8) == 11 and stats.exits_to(0x3FD, "in") == 1 and stats.exits_to(0x3FD) == 0
    assert stats.accesses[0] == AccessStats("port", 0x3F8, "out", "uart", 11, 32)
    assert AccessStats("port", 0x81, "out", "unclaimed", 2, 2) in stats.accesses
    assert AccessStats("mmio", 0xD0000010, "write", "post", 1, 0) in stats.accesses
    assert AccessStats("mmio", -1, "read/write", "other addresses", 1, 0) in stats.accesses
    assert stats.by_device == {"uart": 12, "unclaimed": 2, "post": 1, "other addresses": 1}
    assert [(v.index, v.exits) for v in stats.by_vcpu] == [(0, 14), (1, 3)]
    assert (stats.guest_seconds, stats.kvmrun_seconds) == (0.003, 0.001)
    assert stats.absorbed == {"coalesced ring (COM1)": 7}
    assert stats.kvm == {} and stats.handled_by_kvm == 0       # no vCPUs: no KVM statistics


def test_run_stats_are_frozen_plain_data_that_pickle():
    stats = run_stats(_counts(), 1, [], _bus(), None)
    with pytest.raises(Exception):
        stats.exits = 0                                   # type: ignore[misc]
    assert pickle.loads(pickle.dumps(stats)) == stats     # kvmrun test's workers send results back


def test_mmio_addresses_are_counted_up_to_a_bound_then_as_other():
    counts = VcpuCounts()
    for address in range(MMIO_ADDRESSES + 100):
        observe.Observer._count(counts, exits.MmioRead(address * 8, 4))
    assert len(counts.mmio) == MMIO_ADDRESSES + 1 and counts.mmio[OTHER] == 100


def test_the_table_shows_each_section():
    from rich.console import Console
    from kvmrun.report.stats_table import stats_tables
    stats = run_stats(_counts(), 5_000_000, [], _bus(), _Absorbed())
    text = io.StringIO()
    Console(file=text, width=120).print(stats_tables(stats))
    shown = text.getvalue()
    for words in ("exits to kvmrun", "17", "exits by reason", "exits by port and address", "0x03f8", "uart",
                  "exits by device", "exits by vCPU", "coalesced ring (COM1)", "in the guest", "in kvmrun"):
        assert words in shown, words


# --- real guests ---------------------------------------------------------------------------------------

@pytest.mark.kvm
def test_a_run_without_trace_or_stats_keeps_the_fast_loop_and_one_with_them_does_not(monkeypatch):
    from kvmrun import dispatch, machine
    loops = []
    real = machine.Machine

    def recording(*args, **kwargs):
        loops.append(kwargs.get("loop", dispatch.fast_loop))
        return real(*args, **kwargs)
    monkeypatch.setattr(machine, "Machine", recording)
    plain = kvmrun.run(guest("hello64.elf"))
    counted = kvmrun.run(guest("hello64.elf"), stats=True)
    assert loops[0] is dispatch.fast_loop and plain.stats is None
    assert getattr(loops[1], "__func__", None) is observe.Observer.loop and counted.stats is not None


@pytest.mark.kvm
def test_result_stats_count_one_out_exit_per_byte_printed():
    result = kvmrun.run(guest("hello64.elf"), stats=True)
    assert result.status == 0
    stats = result.stats
    assert isinstance(stats, RunStats)
    # rep outsb: KVM hands kvmrun one exit per byte here, or blocks of bytes; the bytes always add up
    port = next(a for a in stats.accesses if a.address == 0x3F8)
    assert (port.space, port.direction, port.device, port.bytes) == ("port", "out", "uart", len(result.serial))
    assert stats.by_reason["IO"] == port.exits and stats.by_reason["HLT"] == 1
    assert stats.exits == port.exits + 1 == stats.by_vcpu[0].exits
    assert stats.by_device == {"uart": port.exits}
    assert 0 < stats.guest_seconds and 0 < stats.kvmrun_seconds and stats.guest_seconds + stats.kvmrun_seconds \
        <= stats.seconds
    if stats.kvm:                                        # KVM's binary statistics: it saw at least kvmrun's exits
        assert stats.kvm["exits"] >= stats.exits and stats.kvm["halt_exits"] == 1


@pytest.mark.kvm
def test_out_exits_and_what_kvm_absorbed_add_up_to_every_write():
    """5,000 one-byte OUTs to COM1 and to the POST port: kvmrun gets the first 4,096 of each as exits,
    then asks KVM to absorb the rest (coalesced ring, ioeventfd), where KVM offers that."""
    result = kvmrun.run(guest("coalesce64.elf"), stats=True, timeout=2)
    assert result.reason.value == "timeout"                      # the guest spins at its end
    stats = result.stats
    # Every byte of output, and the one divisor write, went to port 0x3F8 through an exit or the ring.
    assert stats.exits_to(0x3F8) + stats.absorbed["coalesced ring (COM1)"] == len(result.serial) + 1
    assert stats.exits_to(0x80) + stats.absorbed["ioeventfd (POST 0x80)"] == 5000
    assert stats.exits_to(0x3F8) >= 4096 and stats.exits_to(0x80) >= 4096
    assert stats.exits_to(0x3F8, "in") == 1                       # reading the divisor back


@pytest.mark.kvm
def test_each_vcpu_is_counted():
    result = kvmrun.run(guest("smp64.elf"), cpus=2, stats=True)
    assert result.status == 0
    assert [v.index for v in result.stats.by_vcpu] == [0, 1]
    assert all(v.exits > 0 for v in result.stats.by_vcpu)
    assert sum(v.exits for v in result.stats.by_vcpu) == result.stats.exits


@pytest.mark.kvm
def test_an_irqchip_kernels_stats_show_what_kvm_handled_itself():
    result = kvmrun.run(guest("barebones.elf"), stats=True)
    assert result.status == 0, result.report
    stats = result.stats
    assert stats.exits_to(0x3FD, "in") > 0 and stats.by_device["uart"] > 0
    if stats.kvm:                 # HLT under the in-kernel LAPIC, the PIT: exits kvmrun never saw
        assert stats.handled_by_kvm == stats.kvm["exits"] - stats.exits > 0


@pytest.mark.kvm
def test_the_cli_prints_the_table_on_stderr_after_the_run_and_keeps_the_status():
    done = run_kvmrun("boot", "--stats", guest("hello64.elf"))
    assert (done.returncode, done.stdout) == (0, b"Hello from long mode!\n")
    text = done.stderr.decode()
    assert text.startswith("kvmrun --stats")
    for words in ("exits to kvmrun", "exits by reason", "exits by port and address", "uart", "exits by vCPU"):
        assert words in text, words
    assert run_kvmrun("boot", "--stats", guest("exit64.elf")).returncode == \
        run_kvmrun("boot", guest("exit64.elf")).returncode


@pytest.mark.kvm
def test_a_manifest_asks_for_stats_and_junit_shows_the_exits(tmp_path):
    manifest = tmp_path / "kvmrun.toml"
    manifest.write_text(f'[[guest]]\nname = "hello"\nimage = "{guest("hello64.elf")}"\nstats = true\n')
    done = run_kvmrun("test", manifest, "--jobs", "1", "--junit-xml", tmp_path / "junit.xml")
    assert done.returncode == 0, done.stdout + done.stderr
    junit = (tmp_path / "junit.xml").read_text()
    exits = re.search(r'<property name="exits" value="(\d+)"', junit)
    assert exits is not None and int(exits.group(1)) >= 2           # its output, and the HLT
    assert re.search(r'<property name="exits_handled_by_kvm" value="\d+"', junit)
