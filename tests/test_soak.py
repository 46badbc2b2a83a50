"""kvmrun.run many times in one process: file descriptors, mappings and threads come back."""
import os
import threading

import pytest

import kvmrun
from conftest import guest

BOOTS = 1000


def open_fds():
    return len(os.listdir("/proc/self/fd"))


def mappings():
    with open("/proc/self/maps") as maps:
        return sum(1 for _ in maps)


@pytest.mark.kvm
def test_a_thousand_boots_leak_nothing():
    image = guest("hello64.elf")
    kvmrun.run(image)                 # first run: imports, caches
    fds, maps, threads = open_fds(), mappings(), threading.active_count()
    for _ in range(BOOTS):
        assert kvmrun.run(image).status == 0
    assert open_fds() == fds
    assert threading.active_count() == threads
    assert mappings() <= maps + 2     # the allocator may keep an arena, not one mapping per boot
