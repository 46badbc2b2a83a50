"""The benchmarks run in quick mode so they cannot rot (figures are printed, never asserted)."""
import json
import subprocess
import sys

import pytest

from conftest import GUESTS, ROOT


@pytest.mark.kvm
def test_bench_quick_mode_writes_every_figure(tmp_path):
    out = tmp_path / "results.json"
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--json", str(out)],
                            capture_output=True, text=True, timeout=300,
                            env={**__import__("os").environ, "KVMRUN_GUESTS": str(GUESTS)})
    assert result.returncode == 0, result.stderr
    figures = json.loads(out.read_text())
    for key in ("boot_kvmrun_ms", "boot_c_runner_ms", "boot_in_process_ms", "exit_kvmrun_us", "exit_c_runner_us",
                "outsb_kvmrun_mib_s", "exits_per_s_2_vcpus", "rss_kvmrun_mib", "kvmrun_test_guests_per_s_jobs2",
                "exit_traced_us",               # the same exits, --trace to a file
                # the in-kernel irqchip: boot and teardown, the C runner's, and kvmrun test with it
                "irqchip_fg_on_ms", "irqchip_fg_off_ms", "irqchip_run_on_ms", "irqchip_teardown_on_ms",
                "irqchip_teardown_off_ms", "boot_c_runner_irqchip_ms", "teardown_c_runner_irqchip_ms",
                "kvmrun_test_irqchip_guests_per_s_jobs1", "kvmrun_test_irqchip_guests_per_s_jobs2_run_only",
                # a multiboot kernel printing to VGA: whole process and as a suite's guest
                "boot_multiboot_vga_kvmrun_ms", "boot_multiboot_vga_in_suite_ms",
                # a guest suite run three ways: kvmrun test, pytest on the manifest, a process per guest
                "suite_kvmrun_test_guests_per_s", "suite_pytest_plugin_guests_per_s",
                "suite_pytest_process_per_guest_guests_per_s", "suite_pytest_plugin_guests_per_s_steady"):
        assert figures[key]["median"] > 0 and figures[key]["runs"] >= 2, key
    # The halt latency is a difference of two runs and may come out below zero in a noisy quick run.
    assert figures["irqchip_latency_ms"]["runs"] >= 2 and figures["irqchip_run_exit_on_ms"]["median"] > 0
    for row in ("--irqchip on", "teardown", "halt latency", "pytest -n 2 on the same manifest"):
        assert row in result.stdout, row
    assert "kvmrun benchmarks" in result.stdout
