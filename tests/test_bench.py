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
    assert len(figures) == 4 and all(f["median_ms"] > 0 and f["runs"] >= 3 for f in figures.values())
    assert "kvmrun benchmarks" in result.stdout
