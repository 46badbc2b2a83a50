"""kvmrun.run many times in one process: file descriptors, mappings, threads and memory come back.
The default run does 500 boots; `make soak` does 10,000 (marker `soak`)."""
import os
import threading

import pytest

import kvmrun
from conftest import guest


def open_fds():
    return len(os.listdir("/proc/self/fd"))


def mappings():
    with open("/proc/self/maps") as maps:
        return sum(1 for _ in maps)


def rss_kib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def boots_leak_nothing(boots):
    image = guest("hello64.elf")
    for _ in range(20):               # imports, caches, the allocator's first arenas
        kvmrun.run(image)
    fds, maps, threads, rss = open_fds(), mappings(), threading.active_count(), rss_kib()
    for _ in range(boots):
        assert kvmrun.run(image).status == 0
    assert open_fds() == fds
    assert threading.active_count() == threads
    assert mappings() <= maps + 2     # the allocator may keep an arena, not one mapping per boot
    assert rss_kib() - rss < 4096     # KiB: flat, not growing with the number of boots


@pytest.mark.kvm
def test_500_boots_leak_nothing():
    boots_leak_nothing(500)


@pytest.mark.kvm
@pytest.mark.soak
def test_10000_boots_leak_nothing():
    boots_leak_nothing(10_000)
