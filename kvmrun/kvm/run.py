"""KvmRun: a vCPU's kvm_run area, and the one decoder of its exit union.

The area is the mmap of the vCPU file descriptor (kvm_run, then the port IO data page and the
coalesced ring), or any writable buffer of at least sizeof(kvm_run) in tests. Numbers that come from
the guest's access (the IO block's offset, size and count; the MMIO length) are checked against what
api.rst documents and against the buffer before anything is read or written through them: an exit
that breaks those rules decodes to exits.Malformed, an exit kvmrun has no class for to
exits.Unsupported. No view into the buffer is kept, so an mmap can be closed while a KvmRun refers
to it.

exits.py is imported by the first decode(), not here: its classes take time to create on
this host, and a clean boot only ever reads port IO data.
"""
from __future__ import annotations

import ctypes
import struct

from . import abi
from .abi import KvmExit

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Optional

RUN_SIZE = ctypes.sizeof(abi.kvm_run)

_EXIT = abi.kvm_run.exit.offset
_REASON = struct.Struct("<I")
_REASON_AT = abi.kvm_run.exit_reason.offset
_IMMEDIATE_EXIT_AT = abi.kvm_run.immediate_exit.offset
_REQUEST_WINDOW_AT = abi.kvm_run.request_interrupt_window.offset
_READY_AT = abi.kvm_run.ready_for_interrupt_injection.offset
_IF_FLAG_AT = abi.kvm_run.if_flag.offset
_IO = struct.Struct("<BBHIQ")                   # kvm_run_io: direction, size, port, count, data_offset
_MMIO_DATA_AT = _EXIT + abi.kvm_run_mmio.data.offset
_MMIO_DATA_SIZE = abi.kvm_run_mmio.data.size     # 8
_IO_SIZES = (1, 2, 4)

# The hot path's view of an exit, for a loop that reads millions of them: exit_reason, then the io
# member of the exit union with direction and size as one little-endian u16, port, count and
# data_offset: one unpack_from(buffer, FAST_EXIT_AT) per exit (design.md's rule).
FAST_EXIT = struct.Struct("<I20xHHIQ")
FAST_EXIT_AT = _REASON_AT
OUT_1_BYTE = abi.KVM_EXIT_IO_OUT | 1 << 8       # direction and size of a one-byte OUT, as unpacked
assert FAST_EXIT.size == _EXIT + _IO.size - _REASON_AT


def fast_io_data_offset(map_size: int) -> int:
    """Where KVM puts port IO data (one page into kvm_run) when that lies inside a mapping of
    `map_size` bytes; -1 otherwise. A fast path takes exactly this offset and leaves any other to
    decode()'s full bounds check."""
    import mmap
    return mmap.PAGESIZE if RUN_SIZE <= mmap.PAGESIZE < map_size else -1


class KvmRun:
    __slots__ = ("buffer", "size")

    def __init__(self, buffer):
        size = len(buffer)
        if size < RUN_SIZE:
            raise ValueError(f"a kvm_run area needs at least {RUN_SIZE} bytes, not {size}")
        self.buffer = buffer
        self.size = size

    # --- the header ------------------------------------------------------------------------------

    @property
    def exit_reason(self) -> int:
        return _REASON.unpack_from(self.buffer, _REASON_AT)[0]

    @property
    def immediate_exit(self) -> bool:
        return bool(self.buffer[_IMMEDIATE_EXIT_AT])

    @immediate_exit.setter
    def immediate_exit(self, value: bool) -> None:
        """Set: the current or next KVM_RUN returns at once with EINTR (KVM_CAP_IMMEDIATE_EXIT)."""
        self.buffer[_IMMEDIATE_EXIT_AT] = 1 if value else 0

    @property
    def request_interrupt_window(self) -> bool:
        return bool(self.buffer[_REQUEST_WINDOW_AT])

    @request_interrupt_window.setter
    def request_interrupt_window(self, value: bool) -> None:
        self.buffer[_REQUEST_WINDOW_AT] = 1 if value else 0

    @property
    def ready_for_interrupt_injection(self) -> bool:
        return bool(self.buffer[_READY_AT])

    @property
    def if_flag(self) -> bool:
        return bool(self.buffer[_IF_FLAG_AT])

    # --- port IO and MMIO data -------------------------------------------------------------------

    def io_block(self, length: int) -> Optional[int]:
        """Offset of the current IO exit's data block when `length` bytes from kvm_run.io.data_offset
        lie after struct kvm_run and inside the area; None otherwise (never trusted blindly)."""
        offset = _IO.unpack_from(self.buffer, _EXIT)[4]
        return offset if self._inside(offset, length) else None

    def _inside(self, offset: int, length: int) -> bool:
        return RUN_SIZE <= offset and offset + length <= self.size

    def io_out_data(self, length: int) -> Optional[bytes]:
        offset = self.io_block(length)
        return None if offset is None else bytes(self.buffer[offset:offset + length])

    def io_in_complete(self, data: bytes) -> bool:
        """Place the bytes of an IN exit where KVM takes them from on the next KVM_RUN."""
        offset = self.io_block(len(data))
        if offset is None:
            return False
        self.buffer[offset:offset + len(data)] = data
        return True

    def mmio_complete_read(self, data: bytes) -> None:
        """Hand the bytes of an MMIO read back to KVM (at most 8); used on the next KVM_RUN."""
        data = bytes(data[:_MMIO_DATA_SIZE])
        self.buffer[_MMIO_DATA_AT:_MMIO_DATA_AT + len(data)] = data

    # --- decoding --------------------------------------------------------------------------------

    def decode(self, reason: Optional[int] = None):
        """The current exit as one of the named tuples in exits.py. `reason` defaults to
        kvm_run.exit_reason; pass what the run returned when KVM_RUN ended with EINTR, because KVM
        does not write exit_reason when immediate_exit stopped it."""
        from . import exits
        if reason is None:
            reason = self.exit_reason
        decoder = _DECODERS.get(reason)
        return exits.Unsupported(reason) if decoder is None else decoder(self, reason, exits)

    def _member(self, ctype):
        """A copy of one member of the exit union (a copy: no view outlives the call)."""
        return ctype.from_buffer_copy(self.buffer, _EXIT)

    def _io(self, reason: int, exits):
        direction, size, port, count, data_offset = _IO.unpack_from(self.buffer, _EXIT)
        if size not in _IO_SIZES or count == 0:
            return exits.Malformed(reason, f"KVM reported port IO of {count} x {size} bytes")
        if direction not in (abi.KVM_EXIT_IO_IN, abi.KVM_EXIT_IO_OUT):
            return exits.Malformed(reason, f"KVM reported port IO in direction {direction}")
        length = size * count
        if not self._inside(data_offset, length):
            return exits.Malformed(reason, f"KVM's IO data block ({length} bytes at offset "
                                           f"{data_offset}) lies outside kvm_run")
        if direction == abi.KVM_EXIT_IO_OUT:
            return exits.IoOut(port, size, bytes(self.buffer[data_offset:data_offset + length]))
        return exits.IoIn(port, size, count)

    def _mmio(self, reason: int, exits):
        mmio = self._member(abi.kvm_run_mmio)
        length = mmio.len
        if not 1 <= length <= _MMIO_DATA_SIZE:      # api.rst: data[8]; the length is the guest's access
            return exits.Malformed(reason, f"KVM reported an MMIO access of {length} bytes at "
                                           f"0x{mmio.phys_addr:x}")
        if mmio.is_write:
            return exits.MmioWrite(mmio.phys_addr, bytes(mmio.data[:length]))
        return exits.MmioRead(mmio.phys_addr, length)

    def _debug(self, reason: int, exits):
        arch = self._member(abi.kvm_debug_exit_arch)
        return exits.Debug(arch.exception, arch.pc, arch.dr6, arch.dr7)

    def _exception(self, reason: int, exits):
        ex = self._member(abi.kvm_run_ex)
        return exits.GuestException(ex.exception, ex.error_code)

    def _unknown(self, reason: int, exits):
        return exits.Unknown(self._member(abi.kvm_run_hw).hardware_exit_reason)

    def _fail_entry(self, reason: int, exits):
        fe = self._member(abi.kvm_run_fail_entry)
        return exits.FailEntry(fe.hardware_entry_failure_reason, fe.cpu)

    def _internal_error(self, reason: int, exits):
        internal = self._member(abi.kvm_run_internal)
        return exits.InternalError(internal.suberror, tuple(internal.data[:min(internal.ndata, 16)]))

    def _system_event(self, reason: int, exits):
        event = self._member(abi.kvm_run_system_event)
        return exits.SystemEvent(event.type, tuple(event.data[:min(event.ndata, 16)]))

    def _ioapic_eoi(self, reason: int, exits):
        return exits.IoapicEoi(self._member(abi.kvm_run_eoi).vector)


# Each decoder takes (run, reason, the exits module).
_DECODERS: Dict[int, Callable[[KvmRun, int, Any], object]] = {
    KvmExit.KVM_EXIT_UNKNOWN: KvmRun._unknown,
    KvmExit.KVM_EXIT_EXCEPTION: KvmRun._exception,
    KvmExit.KVM_EXIT_IO: KvmRun._io,
    KvmExit.KVM_EXIT_DEBUG: KvmRun._debug,
    KvmExit.KVM_EXIT_HLT: lambda run, reason, exits: exits.Hlt(),
    KvmExit.KVM_EXIT_MMIO: KvmRun._mmio,
    KvmExit.KVM_EXIT_IRQ_WINDOW_OPEN: lambda run, reason, exits: exits.IrqWindowOpen(),
    KvmExit.KVM_EXIT_SHUTDOWN: lambda run, reason, exits: exits.Shutdown(),
    KvmExit.KVM_EXIT_FAIL_ENTRY: KvmRun._fail_entry,
    KvmExit.KVM_EXIT_INTR: lambda run, reason, exits: exits.Interrupted(),
    KvmExit.KVM_EXIT_INTERNAL_ERROR: KvmRun._internal_error,
    KvmExit.KVM_EXIT_SYSTEM_EVENT: KvmRun._system_event,
    KvmExit.KVM_EXIT_IOAPIC_EOI: KvmRun._ioapic_eoi,
}
