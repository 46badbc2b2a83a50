"""Binary statistics of a VM or a vCPU (api.rst: KVM_GET_STATS_FD, KVM_CAP_BINARY_STATS_FD).

The file holds a header, an id string, one descriptor per statistic (flags, exponent, size, offset,
name) and a data block of u64 values. The header and descriptors do not change while the file is
open, so they are read once; after that one statistic is one pread of 8 bytes at a known offset —
cheap enough to poll, e.g. a vCPU's "blocking" to see that it sits in HLT under an in-kernel LAPIC.

A stats file holds a reference to its VM: the VM is only torn down once every stats file is closed.
"""
from __future__ import annotations

import ctypes
import errno
import os
import struct

from ..errors import KvmError
from . import abi
from ._fd import FdOwner

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Dict, NamedTuple, Tuple
else:
    from ..named_tuple import NamedTuple

_HEADER_SIZE = ctypes.sizeof(abi.kvm_stats_header)
_DESC_SIZE = ctypes.sizeof(abi.kvm_stats_desc)
_U64 = struct.Struct("<Q")
_MAX_READ = 16 << 20             # far above any real stats file; a header asking more is not KVM's


class StatDescriptor(NamedTuple):      # not a dataclass: importing dataclasses costs ~15 ms of start-up
    name: str
    flags: int
    exponent: int
    size: int            # how many u64 values (1, or a histogram's buckets)
    offset: int          # from the start of the data block
    bucket_size: int

    @property
    def type(self) -> int:
        return self.flags & abi.KVM_STATS_TYPE_MASK

    @property
    def unit(self) -> int:
        return self.flags & abi.KVM_STATS_UNIT_MASK

    @property
    def base(self) -> int:
        return self.flags & abi.KVM_STATS_BASE_MASK


class Stat:
    """One statistic, ready to read: its first (usually only) value is one pread of 8 bytes."""
    __slots__ = ("name", "fd", "at")

    def __init__(self, name: str, fd: int, at: int):
        self.name = name
        self.fd = fd
        self.at = at

    def read(self) -> int:
        return _U64.unpack(os.pread(self.fd, 8, self.at))[0]


class StatsFile(FdOwner):
    """A stats file descriptor (from Vm.stats() or Vcpu.stats()), owned and closed by this object."""

    def __init__(self, fd: int):
        self.fd = fd
        try:
            header = abi.kvm_stats_header.from_buffer_copy(_pread_exact(fd, _HEADER_SIZE, 0))
            self.data_offset = header.data_offset
            self.id = _c_string(_pread_exact(fd, header.name_size, header.id_offset))
            stride = _DESC_SIZE + header.name_size
            block = _pread_exact(fd, stride * header.num_desc, header.desc_offset)
            self.descriptors: Dict[str, StatDescriptor] = {}
            for at in range(0, len(block), stride):
                desc = abi.kvm_stats_desc.from_buffer_copy(block, at)
                name = _c_string(block[at + _DESC_SIZE:at + stride])
                self.descriptors[name] = StatDescriptor(name, desc.flags, desc.exponent, desc.size,
                                                        desc.offset, desc.bucket_size)
        except BaseException:
            self.close()
            raise

    def __contains__(self, name: str) -> bool:
        return name in self.descriptors

    def stat(self, name: str) -> Stat:
        """The statistic `name`, to read as often as needed; KeyError if this KVM has no such stat."""
        return Stat(name, self.fd, self.data_offset + self.descriptors[name].offset)

    def read(self, name: str) -> int:
        return self.stat(name).read()

    def read_all(self) -> Dict[str, Tuple[int, ...]]:
        """Every statistic's values, from one read of the data block."""
        descs = self.descriptors.values()
        end = max((d.offset + 8 * d.size for d in descs), default=0)
        data = _pread_exact(self.fd, end, self.data_offset)
        return {d.name: tuple(v for (v,) in _U64.iter_unpack(data[d.offset:d.offset + 8 * d.size]))
                for d in descs}


def _pread_exact(fd: int, length: int, offset: int) -> bytes:
    if length > _MAX_READ:
        raise KvmError("KVM_GET_STATS_FD", errno.EIO, f"the stats header asks for {length} bytes at {offset}")
    data = b""
    while len(data) < length:
        chunk = os.pread(fd, length - len(data), offset + len(data))
        if not chunk:
            raise KvmError("KVM_GET_STATS_FD", errno.EIO,
                           f"the stats file ends at byte {offset + len(data)}; its header promised "
                           f"{length} bytes at {offset}")
        data += chunk
    return data


def _c_string(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("ascii", "replace")
