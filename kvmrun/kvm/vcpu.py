"""Vcpu: one vCPU file descriptor, its mapped kvm_run, registers, CPUID, and exit decoding."""
import ctypes
import fcntl
import mmap
import os
from typing import Optional

from . import abi
from ._call import ioctl
from .abi import KvmExit
from .ioctl import Ioctl

_KVM_RUN = int(Ioctl.KVM_RUN)
# The IO data block lies after the fixed part of kvm_run (in practice one page in).
_RUN_HEADER_END = abi.kvm_run.exit.offset + ctypes.sizeof(abi.kvm_run_exit)


class Vcpu:
    def __init__(self, fd: int, index: int, mmap_size: int):
        self.fd = fd
        self.index = index
        try:
            self._map = mmap.mmap(fd, mmap_size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except OSError:
            os.close(fd)
            raise
        self.map_size = mmap_size
        self.mapping = self._map
        # One ctypes view over the mapping, made once: the run loop reads fields through it.
        self.kvm_run = abi.kvm_run.from_buffer(self._map)
        self.io = self.kvm_run.exit.io

    # --- running ---------------------------------------------------------------------------------

    def run(self) -> int:
        """One KVM_RUN; returns kvm_run.exit_reason, or KVM_EXIT_INTR when a signal cut it short."""
        try:
            fcntl.ioctl(self.fd, _KVM_RUN)   # no argument: the fastest path through CPython
        except InterruptedError:
            return KvmExit.KVM_EXIT_INTR
        return self.kvm_run.exit_reason

    def request_stop(self) -> None:
        """Make the current or next KVM_RUN return at once (api.rst: KVM_CAP_IMMEDIATE_EXIT)."""
        self.kvm_run.immediate_exit = 1

    def _io_block(self, length: int) -> Optional[int]:
        """Offset of the current IO exit's data block, or None when KVM's data_offset and the
        guest-shaped size*count would reach outside the vCPU mapping (never trusted blindly)."""
        offset = self.io.data_offset
        if offset < _RUN_HEADER_END or offset + length > self.map_size:
            return None
        return offset

    def io_out_data(self, length: int) -> Optional[bytes]:
        offset = self._io_block(length)
        return None if offset is None else self._map[offset:offset + length]

    def io_in_complete(self, data: bytes) -> bool:
        """Place the bytes of an IN exit where KVM takes them from on the next KVM_RUN."""
        offset = self._io_block(len(data))
        if offset is None:
            return False
        self._map[offset:offset + len(data)] = data
        return True

    def decode_exit(self, reason: int):
        """The current exit as one of the dataclasses in exits.py (the run loop decodes port IO
        itself, so this module is imported only when a rarer exit happens)."""
        from . import exits
        run = self.kvm_run
        ex = run.exit
        if reason == KvmExit.KVM_EXIT_IO:
            io = ex.io
            if io.direction == abi.KVM_EXIT_IO_OUT:
                return exits.IoOut(io.port, io.size, self.io_out_data(io.size * io.count) or b"")
            return exits.IoIn(io.port, io.size, io.count)
        if reason == KvmExit.KVM_EXIT_MMIO:
            mmio = ex.mmio
            length = mmio.len
            if not 1 <= length <= 8:        # api.rst: data[8]; the length comes from the guest's access
                return exits.Malformed(reason, f"KVM reported an MMIO access of {length} bytes at "
                                               f"0x{mmio.phys_addr:x}")
            if mmio.is_write:
                return exits.MmioWrite(mmio.phys_addr, bytes(mmio.data[:length]))
            return exits.MmioRead(mmio.phys_addr, length)
        if reason == KvmExit.KVM_EXIT_HLT:
            return exits.Hlt()
        if reason == KvmExit.KVM_EXIT_SHUTDOWN:
            return exits.Shutdown()
        if reason == KvmExit.KVM_EXIT_FAIL_ENTRY:
            fe = ex.fail_entry
            return exits.FailEntry(fe.hardware_entry_failure_reason, fe.cpu)
        if reason == KvmExit.KVM_EXIT_INTERNAL_ERROR:
            internal = ex.internal
            return exits.InternalError(internal.suberror, tuple(internal.data[:min(internal.ndata, 16)]))
        if reason == KvmExit.KVM_EXIT_SYSTEM_EVENT:
            event = ex.system_event
            return exits.SystemEvent(event.type, tuple(event.data[:min(event.ndata, 16)]))
        if reason == KvmExit.KVM_EXIT_INTR:
            return exits.Interrupted()
        return exits.Unsupported(reason)

    def mmio_complete_read(self, data: bytes) -> None:
        """Hand the bytes of an MMIO read back to KVM; they are used on the next KVM_RUN."""
        ctypes.memmove(self.kvm_run.exit.mmio.data, data, min(len(data), 8))

    # --- state -----------------------------------------------------------------------------------

    def get_regs(self) -> abi.kvm_regs:
        regs = abi.kvm_regs()
        ioctl(self.fd, Ioctl.KVM_GET_REGS, regs)
        return regs

    def set_regs(self, regs: abi.kvm_regs) -> None:
        ioctl(self.fd, Ioctl.KVM_SET_REGS, regs)

    def get_sregs(self) -> abi.kvm_sregs:
        sregs = abi.kvm_sregs()
        ioctl(self.fd, Ioctl.KVM_GET_SREGS, sregs)
        return sregs

    def set_sregs(self, sregs: abi.kvm_sregs) -> None:
        ioctl(self.fd, Ioctl.KVM_SET_SREGS, sregs)

    def set_cpuid(self, entries) -> None:
        buf = abi.cpuid_buffer(len(entries))
        for i, entry in enumerate(entries):
            buf.entries[i] = entry
        ioctl(self.fd, Ioctl.KVM_SET_CPUID2, buf)

    def translate(self, linear: int) -> Optional[int]:
        """Guest linear -> physical address through the vCPU's current paging, None if unmapped."""
        tr = abi.kvm_translation(linear_address=linear)
        try:
            ioctl(self.fd, Ioctl.KVM_TRANSLATE, tr)
        except Exception:
            return None
        return tr.physical_address if tr.valid else None

    def close(self) -> None:
        if self.fd < 0:
            return
        # The ctypes views export the mmap's buffer; drop them before closing it.
        del self.io
        del self.kvm_run
        del self.mapping
        self._map.close()
        os.close(self.fd)
        self.fd = -1
