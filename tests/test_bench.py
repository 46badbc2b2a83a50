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
                "outsb_kvmrun_mib_s", "exits_per_s_2_vcpus", "rss_kvmrun_mib", "kvmrun_test_guests_per_s_jobs2"):
        assert figures[key]["median"] > 0 and figures[key]["runs"] >= 2, key
    assert "kvmrun benchmarks" in result.stdout
