"""KvmRun over a bytearray: every exit kind decoded, malformed ones refused (no KVM needed).

Exits are written at the offsets <linux/kvm.h> gives (exit_reason at 8, the exit union at 32), not
through kvmrun's own structs, so a layout mistake in the binding shows here too."""
import mmap
import struct

import pytest

from kvmrun.kvm import exits
from kvmrun.kvm.abi import KvmExit
from kvmrun.kvm.run import RUN_SIZE, KvmRun

EXIT = 32                      # the exit union
PAGE = 4096                    # where KVM puts port IO data
AREA = 2 * PAGE


def area(reason: int) -> bytearray:
    buf = bytearray(AREA)
    struct.pack_into("<I", buf, 8, reason)
    return buf


def io_exit(direction: int, size: int, port: int, count: int, data_offset: int = PAGE) -> bytearray:
    buf = area(KvmExit.KVM_EXIT_IO)
    struct.pack_into("<BBHIQ", buf, EXIT, direction, size, port, count, data_offset)
    return buf


def mmio_exit(address: int, data: bytes, length: int, is_write: int) -> bytearray:
    buf = area(KvmExit.KVM_EXIT_MMIO)
    struct.pack_into("<Q8sIB", buf, EXIT, address, data, length, is_write)
    return buf


def decode(buf: bytearray, reason=None):
    return KvmRun(buf).decode(reason)


# --- port IO ---------------------------------------------------------------------------------------

def test_a_one_byte_out():
    buf = io_exit(1, 1, 0x3F8, 1)
    buf[PAGE] = ord("A")
    assert decode(buf) == exits.IoOut(0x3F8, 1, b"A")


def test_string_out_carries_the_whole_block():
    buf = io_exit(1, 2, 0x1F0, 3)
    buf[PAGE:PAGE + 6] = b"abcdef"
    assert decode(buf) == exits.IoOut(0x1F0, 2, b"abcdef")


def test_an_in_and_its_completion():
    buf = io_exit(0, 4, 0xCFC, 2)
    run = KvmRun(buf)
    assert run.decode() == exits.IoIn(0xCFC, 4, 2)
    assert run.io_in_complete(b"12345678") and buf[PAGE:PAGE + 8] == b"12345678"


def test_a_block_that_ends_exactly_at_the_end_of_the_area_is_used():
    buf = io_exit(1, 4, 0x80, 1, data_offset=AREA - 4)
    buf[AREA - 4:] = b"last"
    assert decode(buf) == exits.IoOut(0x80, 4, b"last")


@pytest.mark.parametrize("size, count", [(0, 1), (3, 1), (8, 1), (1, 0)])
def test_io_sizes_and_counts_outside_what_kvm_documents_are_malformed(size, count):
    exit = decode(io_exit(1, size, 0x3F8, count))
    assert exit == exits.Malformed(KvmExit.KVM_EXIT_IO, f"KVM reported port IO of {count} x {size} bytes")


def test_an_io_direction_other_than_in_or_out_is_malformed():
    exit = decode(io_exit(2, 1, 0x3F8, 1))
    assert isinstance(exit, exits.Malformed) and "direction 2" in exit.why


@pytest.mark.parametrize("direction", [0, 1])
@pytest.mark.parametrize("data_offset, size, count", [
    (100, 1, 1),                    # inside kvm_run's own fields
    (RUN_SIZE - 1, 1, 1),           # overlaps the last byte of struct kvm_run
    (AREA - 3, 4, 1),               # runs one byte past the mapping
    (PAGE, 4, 2000),                # a string IO larger than the data page
    (2**64 - 1, 1, 1),              # wraps
])
def test_an_io_data_block_outside_the_area_is_malformed_both_ways(direction, data_offset, size, count):
    buf = io_exit(direction, size, 0x3F8, count, data_offset)
    exit = decode(buf)
    assert isinstance(exit, exits.Malformed) and "IO data block" in exit.why
    assert "lies outside kvm_run" in exit.why and f"at offset {data_offset}" in exit.why
    run = KvmRun(buf)
    assert run.io_out_data(size * count) is None
    assert not run.io_in_complete(bytes(size * count)) and buf[PAGE:] == bytes(AREA - PAGE)


# --- MMIO ------------------------------------------------------------------------------------------

def test_mmio_read_and_write():
    assert decode(mmio_exit(0xFEE00030, bytes(8), 4, 0)) == exits.MmioRead(0xFEE00030, 4)
    assert decode(mmio_exit(0xFEE000B0, b"\x01\x02\x03\x04\x05\x06\x07\x08", 2, 1)) == \
        exits.MmioWrite(0xFEE000B0, b"\x01\x02")
    assert decode(mmio_exit(0xB8000, b"abcdefgh", 8, 1)) == exits.MmioWrite(0xB8000, b"abcdefgh")


@pytest.mark.parametrize("length", [0, 9, 4096, 2**32 - 1])
def test_mmio_lengths_outside_data8_are_malformed(length):
    exit = decode(mmio_exit(0xFEE00000, bytes(8), length, 1))
    assert exit == exits.Malformed(KvmExit.KVM_EXIT_MMIO,
                                   f"KVM reported an MMIO access of {length} bytes at 0xfee00000")


def test_mmio_read_completion_writes_at_most_eight_bytes_into_mmio_data():
    buf = mmio_exit(0xFEE00030, bytes(8), 4, 0)
    KvmRun(buf).mmio_complete_read(b"0123456789")
    assert buf[EXIT + 8:EXIT + 16] == b"01234567" and buf[EXIT + 16:EXIT + 20] == struct.pack("<I", 4)


# --- exits without data, and with ------------------------------------------------------------------

@pytest.mark.parametrize("reason, expected", [
    (KvmExit.KVM_EXIT_HLT, exits.Hlt()),
    (KvmExit.KVM_EXIT_SHUTDOWN, exits.Shutdown()),
    (KvmExit.KVM_EXIT_IRQ_WINDOW_OPEN, exits.IrqWindowOpen()),
    (KvmExit.KVM_EXIT_INTR, exits.Interrupted()),
])
def test_exits_without_data(reason, expected):
    assert decode(area(reason)) == expected


def test_the_reason_the_run_returned_wins_over_a_stale_exit_reason():
    """KVM does not write exit_reason when immediate_exit stops KVM_RUN: it still says HLT here."""
    assert decode(area(KvmExit.KVM_EXIT_HLT), KvmExit.KVM_EXIT_INTR) == exits.Interrupted()


def test_fail_entry():
    buf = area(KvmExit.KVM_EXIT_FAIL_ENTRY)
    struct.pack_into("<QI", buf, EXIT, 0x80000021, 3)
    assert decode(buf) == exits.FailEntry(0x80000021, 3)


def test_internal_error_keeps_ndata_words():
    buf = area(KvmExit.KVM_EXIT_INTERNAL_ERROR)
    struct.pack_into("<II3Q", buf, EXIT, 1, 2, 0x10, 0x20, 0x30)
    assert decode(buf) == exits.InternalError(1, (0x10, 0x20))


def test_internal_error_with_ndata_past_the_array_keeps_the_sixteen_there_are():
    buf = area(KvmExit.KVM_EXIT_INTERNAL_ERROR)
    struct.pack_into("<II16Q", buf, EXIT, 1, 1000, *range(16))
    assert decode(buf) == exits.InternalError(1, tuple(range(16)))


def test_system_event():
    buf = area(KvmExit.KVM_EXIT_SYSTEM_EVENT)
    struct.pack_into("<IIQ", buf, EXIT, 2, 1, 0x55)
    assert decode(buf) == exits.SystemEvent(2, (0x55,))


def test_debug_single_step_and_breakpoint():
    buf = area(KvmExit.KVM_EXIT_DEBUG)
    struct.pack_into("<IIQQQ", buf, EXIT, 1, 0, 0x7C01, 0xFFFF4FF0, 0x400)
    step = decode(buf)
    assert step == exits.Debug(exception=1, pc=0x7C01, dr6=0xFFFF4FF0, dr7=0x400) and step.single_step
    struct.pack_into("<IIQQQ", buf, EXIT, 3, 0, 0x100000, 0xFFFF0FF0, 0x400)
    int3 = decode(buf)
    assert int3 == exits.Debug(3, 0x100000, 0xFFFF0FF0, 0x400) and not int3.single_step


def test_exception():
    buf = area(KvmExit.KVM_EXIT_EXCEPTION)
    struct.pack_into("<II", buf, EXIT, 13, 0x18)
    assert decode(buf) == exits.GuestException(13, 0x18)


def test_unknown_carries_the_hardware_exit_reason():
    buf = area(KvmExit.KVM_EXIT_UNKNOWN)
    struct.pack_into("<Q", buf, EXIT, 0x31)
    assert decode(buf) == exits.Unknown(0x31)


def test_ioapic_eoi():
    buf = area(KvmExit.KVM_EXIT_IOAPIC_EOI)
    buf[EXIT] = 0x30
    assert decode(buf) == exits.IoapicEoi(0x30)


@pytest.mark.parametrize("reason", [KvmExit.KVM_EXIT_X86_RDMSR, KvmExit.KVM_EXIT_HYPERCALL, 99, 2**32 - 1])
def test_exits_without_a_dataclass_are_unsupported(reason):
    assert decode(area(reason)) == exits.Unsupported(reason)


# --- the header ------------------------------------------------------------------------------------

def test_header_fields_at_the_kernels_offsets():
    buf = area(KvmExit.KVM_EXIT_HLT)
    run = KvmRun(buf)
    assert run.exit_reason == KvmExit.KVM_EXIT_HLT
    assert not run.immediate_exit
    run.immediate_exit = True
    assert buf[1] == 1 and run.immediate_exit
    run.immediate_exit = False
    assert buf[1] == 0
    run.request_interrupt_window = True
    assert buf[0] == 1 and run.request_interrupt_window
    buf[12], buf[13] = 1, 0                   # ready_for_interrupt_injection, if_flag
    assert run.ready_for_interrupt_injection and not run.if_flag


def test_an_area_smaller_than_kvm_run_is_refused():
    with pytest.raises(ValueError, match="at least 2352 bytes"):
        KvmRun(bytearray(RUN_SIZE - 1))


def test_a_mapping_can_be_closed_while_a_kvm_run_refers_to_it():
    """No view into the buffer is kept (an exported buffer would make mmap.close() fail)."""
    mapping = mmap.mmap(-1, AREA)
    run = KvmRun(mapping)
    mapping[8:12] = struct.pack("<I", KvmExit.KVM_EXIT_MMIO)
    mapping[EXIT + 16:EXIT + 21] = b"\x04\0\0\0\x00"
    assert isinstance(run.decode(), exits.MmioRead)
    mapping.close()


def test_the_binding_imports_neither_the_exit_dataclasses_nor_the_stats_reader_until_used():
    """Start-up time counts: exits.py (~15 ms of dataclasses here) and stats.py load on first use."""
    import subprocess
    import sys
    code = ("import sys, kvmrun.kvm.vm, kvmrun.kvm.run as r; "
            "print('kvmrun.kvm.exits' in sys.modules, 'kvmrun.kvm.stats' in sys.modules); "
            "r.KvmRun(bytearray(4096)).decode(5); print('kvmrun.kvm.exits' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False", "True"]


def test_the_fast_paths_one_unpack_reads_the_kernels_offsets():
    from kvmrun.kvm.run import FAST_EXIT, FAST_EXIT_AT, OUT_1_BYTE, fast_io_data_offset
    buf = io_exit(1, 1, 0x3F8, 1)
    assert FAST_EXIT.unpack_from(buf, FAST_EXIT_AT) == (KvmExit.KVM_EXIT_IO, OUT_1_BYTE, 0x3F8, 1, PAGE)
    assert fast_io_data_offset(3 * PAGE) == PAGE and fast_io_data_offset(PAGE) == -1
