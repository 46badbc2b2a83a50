"""The binary stats reader over a file laid out as api.rst describes KVM_GET_STATS_FD's (no KVM)."""
import os
import struct

import pytest

from kvmrun.errors import KvmError
from kvmrun.kvm import abi
from kvmrun.kvm.stats import StatsFile

NAME_SIZE = 16
DESCS = [   # flags, exponent, size, offset, bucket_size, name
    (abi.KVM_STATS_TYPE_CUMULATIVE, 0, 1, 0, 0, b"halt_exits"),
    (abi.KVM_STATS_TYPE_INSTANT | abi.KVM_STATS_UNIT_BOOLEAN, 0, 1, 8, 0, b"blocking"),
    (abi.KVM_STATS_TYPE_LOG_HIST | abi.KVM_STATS_UNIT_SECONDS, -9, 3, 16, 0, b"halt_wait_hist"),
]
ID_AT = 24
DESC_AT = ID_AT + NAME_SIZE
DATA_AT = DESC_AT + len(DESCS) * (16 + NAME_SIZE)


def stats_file(tmp_path, values=(7, 1, 1, 2, 3), truncate=None) -> int:
    raw = struct.pack("<6I", 0, NAME_SIZE, len(DESCS), ID_AT, DESC_AT, DATA_AT)
    raw += b"kvm-42/vcpu-0".ljust(NAME_SIZE, b"\0")
    for flags, exponent, size, offset, bucket, name in DESCS:
        raw += struct.pack("<IhHII", flags, exponent, size, offset, bucket) + name.ljust(NAME_SIZE, b"\0")
    raw += struct.pack(f"<{len(values)}Q", *values)
    path = tmp_path / "stats"
    path.write_bytes(raw[:truncate])
    return os.open(path, os.O_RDWR)


def test_header_id_and_descriptors(tmp_path):
    with StatsFile(stats_file(tmp_path)) as stats:
        assert stats.id == "kvm-42/vcpu-0" and stats.data_offset == DATA_AT
        assert list(stats.descriptors) == ["halt_exits", "blocking", "halt_wait_hist"]
        blocking = stats.descriptors["blocking"]
        assert (blocking.type, blocking.unit, blocking.offset) == (abi.KVM_STATS_TYPE_INSTANT,
                                                                  abi.KVM_STATS_UNIT_BOOLEAN, 8)
        hist = stats.descriptors["halt_wait_hist"]
        assert (hist.type, hist.exponent, hist.size) == (abi.KVM_STATS_TYPE_LOG_HIST, -9, 3)
        assert "blocking" in stats and "nope" not in stats


def test_values(tmp_path):
    with StatsFile(stats_file(tmp_path)) as stats:
        assert stats.read("halt_exits") == 7 and stats.read("blocking") == 1
        assert stats.read_all() == {"halt_exits": (7,), "blocking": (1,), "halt_wait_hist": (1, 2, 3)}
        with pytest.raises(KeyError):
            stats.stat("nope")


def test_one_known_stat_is_one_pread_of_eight_bytes_and_sees_new_values(tmp_path, monkeypatch):
    with StatsFile(stats_file(tmp_path)) as stats:
        blocking = stats.stat("blocking")
        os.pwrite(stats.fd, struct.pack("<Q", 0), DATA_AT + 8)
        calls = []
        real_pread = os.pread

        def counting_pread(fd, length, offset):
            calls.append((length, offset))
            return real_pread(fd, length, offset)
        monkeypatch.setattr(os, "pread", counting_pread)
        assert blocking.read() == 0
        assert calls == [(8, DATA_AT + 8)]


def test_a_truncated_file_is_an_error_naming_the_ioctl_and_closes_the_fd(tmp_path):
    fd = stats_file(tmp_path, truncate=DATA_AT - 1)
    with pytest.raises(KvmError, match=r"KVM_GET_STATS_FD failed: the stats file ends at byte \d+"):
        StatsFile(fd)
    with pytest.raises(OSError):
        os.fstat(fd)


def test_close_closes_the_descriptor(tmp_path):
    stats = StatsFile(stats_file(tmp_path))
    fd = stats.fd
    stats.close()
    stats.close()
    assert stats.fd == -1
    with pytest.raises(OSError):
        os.fstat(fd)
