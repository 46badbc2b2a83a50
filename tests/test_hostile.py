"""Guests that push: a serial flood from every vCPU at once."""
import collections
import subprocess
import sys

import pytest

from conftest import guest

pytestmark = pytest.mark.kvm


def flood(image, per_vcpu):
    """Boot `image` on 4 vCPUs under GNU time; returns (stdout, peak RSS in KiB)."""
    result = subprocess.run(["/usr/bin/time", "-f", "%M", sys.executable, "-m", "kvmrun", "boot", "--cpus", "4",
                             "--timeout", "600", image], capture_output=True, timeout=900)
    assert result.returncode == 0, result.stderr.decode()
    counts = collections.Counter(result.stdout)
    assert counts == {ord("A") + i: per_vcpu for i in range(4)}      # not a byte lost, moved or added
    return int(result.stderr.split()[-1])


def baseline_rss_kib():
    result = subprocess.run(["/usr/bin/time", "-f", "%M", sys.executable, "-m", "kvmrun", "boot", "--cpus", "4",
                             guest("smp64.elf")], capture_output=True, timeout=120)
    return int(result.stderr.split()[-1])


def test_four_vcpus_flooding_the_uart_lose_nothing_and_memory_stays_flat():
    rss = flood(guest("flood_small64.elf"), 64 * 1024)
    assert rss - baseline_rss_kib() < 8 * 1024


@pytest.mark.soak
def test_four_vcpus_flooding_1_mib_each():
    rss = flood(guest("flood64.elf"), 1024 * 1024)
    assert rss - baseline_rss_kib() < 8 * 1024
