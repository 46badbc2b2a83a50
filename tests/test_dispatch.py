"""Exit dispatch over a bytearray: what each exit does to the devices and which action it returns.
No KVM: the exits are written at <linux/kvm.h>'s offsets into a KvmRun's buffer."""
import struct
import threading

import pytest

from kvmrun.devices.bus import IoBus
from kvmrun.dispatch import HALT, ExitContext, Pause, handle_exit
from kvmrun.kvm.abi import InternalSuberror, KvmExit, SystemEventType
from kvmrun.kvm.run import KvmRun
from kvmrun.outcome import Outcome, Reason

from test_kvm_run import EXIT, PAGE, area, io_exit, mmio_exit


class Recorder:
    """A device on ports 0x100-0x101 that records writes and answers reads with 0x5A."""

    def __init__(self):
        self.writes = []

    def read(self, offset, size, access):
        return 0x5A5A5A5A & ((1 << 8 * size) - 1)

    def write(self, offset, size, value, access):
        self.writes.append((0x100 + offset, size, value))


def context(buf, strict=False):
    bus = IoBus(strict=strict)
    device = Recorder()
    bus.register(0x100, 2, device)
    faults = []

    def fault(reason, summary, details=(), at_rip=False, **capture):
        faults.append((reason, summary, details, at_rip, capture))
        return Outcome(Reason.FAULT, 1)

    return ExitContext(KvmRun(buf), bus, threading.Lock(), fault), device, faults


def dispatch(buf, strict=False):
    ctx, device, faults = context(buf, strict)
    reason = struct.unpack_from("<I", buf, 8)[0]
    return handle_exit(ctx, reason, ctx.run.decode(reason)), device, faults


def test_a_string_out_reaches_the_device_element_by_element():
    buf = io_exit(1, 2, 0x100, 2)
    buf[PAGE:PAGE + 4] = b"\x01\x02\x03\x04"
    action, device, _ = dispatch(buf)
    assert action is None and device.writes == [(0x100, 2, 0x0201), (0x100, 2, 0x0403)]


def test_an_in_is_answered_in_the_io_block():
    buf = io_exit(0, 1, 0x101, 3)
    action, _, _ = dispatch(buf)
    assert action is None and buf[PAGE:PAGE + 3] == b"ZZZ"


def test_an_unclaimed_port_reads_all_ones_and_is_a_fault_under_strict_io():
    buf = io_exit(0, 2, 0x300, 1)
    assert dispatch(buf)[0] is None and buf[PAGE:PAGE + 2] == b"\xff\xff"
    action, _, faults = dispatch(io_exit(0, 2, 0x300, 1), strict=True)
    assert action.reason is Reason.FAULT
    assert faults[0][1] == "--strict-io: unhandled 2-byte port read from 0x0300" and faults[0][3] is True


def test_mmio_reads_complete_into_kvm_run_and_writes_are_ignored():
    buf = mmio_exit(0xFEB00000, b"\0" * 8, 4, 0)
    assert dispatch(buf)[0] is None and buf[EXIT + 8:EXIT + 12] == b"\xff" * 4
    assert dispatch(mmio_exit(0xFEB00000, b"abcd\0\0\0\0", 4, 1))[0] is None


def test_malformed_exits_are_faults_at_rip():
    action, _, faults = dispatch(io_exit(1, 3, 0x100, 1))
    assert action.reason is Reason.FAULT
    assert faults == [(KvmExit.KVM_EXIT_IO, "KVM reported port IO of 1 x 3 bytes", (), True, {})]


def test_hlt_intr_and_debug():
    assert dispatch(area(KvmExit.KVM_EXIT_HLT))[0] is HALT
    assert dispatch(area(KvmExit.KVM_EXIT_INTR))[0] is None
    buf = area(KvmExit.KVM_EXIT_DEBUG)
    struct.pack_into("<IIQQQ", buf, EXIT, 1, 0, 0x1000, 1 << 14, 0)     # DR6.BS: a single step
    assert dispatch(buf)[0] == Pause("step", 1 << 14)
    struct.pack_into("<IIQQQ", buf, EXIT, 1, 0, 0x1000, 1, 0)           # DR6.B0: breakpoint 0
    assert dispatch(buf)[0] == Pause("breakpoint", 1)
    # A breakpoint met while single-stepping: the breakpoint is what the debugger hears of
    struct.pack_into("<IIQQQ", buf, EXIT, 1, 0, 0x1000, (1 << 14) | 2, 0)
    assert dispatch(buf)[0] == Pause("breakpoint", (1 << 14) | 2)


def test_shutdown_internal_error_and_reset():
    action, _, faults = dispatch(area(KvmExit.KVM_EXIT_SHUTDOWN))
    assert action.reason is Reason.FAULT and faults[0][1].startswith("triple fault")
    buf = area(KvmExit.KVM_EXIT_INTERNAL_ERROR)
    struct.pack_into("<II2Q", buf, EXIT, InternalSuberror.KVM_INTERNAL_ERROR_EMULATION, 2, 0x11, 0x22)
    _, _, faults = dispatch(buf)
    assert faults[0][1] == "KVM could not emulate the instruction"
    assert faults[0][4] == {"emulation_data": (0x11, 0x22)} and faults[0][3] is True
    buf = area(KvmExit.KVM_EXIT_SYSTEM_EVENT)
    struct.pack_into("<IIQ", buf, EXIT, SystemEventType.KVM_SYSTEM_EVENT_RESET, 0, 0)
    assert dispatch(buf)[0] == Outcome.reset()


@pytest.mark.parametrize("reason", [KvmExit.KVM_EXIT_HYPERCALL, 999])
def test_exits_kvmrun_does_not_handle_are_faults_naming_them(reason):
    action, _, faults = dispatch(area(reason))
    assert action.reason is Reason.FAULT and faults[0][:2] == (reason, "kvmrun does not handle this exit")


# --- the fault reports these exits give, with the real FaultCapture over a vCPU without registers ----

class StandInVcpu:
    """A vCPU whose registers cannot be read: the report keeps what the exit says."""
    index = 0

    def get_regs(self):
        raise OSError("no registers here")


def report_of(exit, reason, strict=False):
    from kvmrun.fault import FaultCapture
    from kvmrun.memory import GuestMemory
    bus = IoBus(strict=strict)
    ctx = ExitContext(KvmRun(area(reason)), bus, threading.Lock(),
                      FaultCapture(StandInVcpu(), GuestMemory.for_tests(4096)))
    return handle_exit(ctx, reason, exit)


def test_internal_error_report_shows_suberror_and_data():
    from kvmrun.kvm import exits
    outcome = report_of(exits.InternalError(1, (0x10, 0x20)), KvmExit.KVM_EXIT_INTERNAL_ERROR)
    assert outcome.status == 1
    text = outcome.fault.as_text()
    assert "KVM_EXIT_INTERNAL_ERROR (17)" in text
    assert "KVM_INTERNAL_ERROR_EMULATION (1)" in text and "data[1]" in text and "0x20" in text


def test_fail_entry_report_shows_the_hardware_reason():
    from kvmrun.kvm import exits
    outcome = report_of(exits.FailEntry(0x80000021, 3), KvmExit.KVM_EXIT_FAIL_ENTRY)
    text = outcome.fault.as_text()
    assert "KVM_EXIT_FAIL_ENTRY (9)" in text and "0x80000021: VM-entry failure, invalid guest state" in text


def test_other_system_events_are_faults_naming_them():
    from kvmrun.kvm import exits
    crash = report_of(exits.SystemEvent(3, ()), KvmExit.KVM_EXIT_SYSTEM_EVENT)
    assert crash.status == 1 and "KVM_SYSTEM_EVENT_CRASH" in crash.fault.summary


def test_unknown_exits_are_faults_not_crashes():
    from kvmrun.kvm import exits
    outcome = report_of(exits.Unsupported(99), 99)
    assert outcome.status == 1 and outcome.fault.exit == "unknown exit reason (99)"


def test_strict_mmio_faults_name_the_access():
    from kvmrun.kvm import exits
    outcome = report_of(exits.MmioWrite(0xFEE000B0, b"\0\0\0\0"), KvmExit.KVM_EXIT_MMIO, strict=True)
    assert outcome.status == 1 and "unhandled 4-byte MMIO write of 0x0 to 0xfee000b0" in outcome.fault.summary


@pytest.mark.parametrize("buf, words", [
    (io_exit(1, 3, 0x3F8, 1), "port IO of 1 x 3 bytes"),
    (io_exit(0, 1, 0x3F8, 1, data_offset=100), "IO data block (1 bytes at offset 100) lies outside kvm_run"),
    (mmio_exit(0xFEE00000, b"\0" * 8, 4096, 0), "MMIO access of 4096 bytes"),
])
def test_what_kvm_never_documents_is_a_guest_fault_in_the_report(buf, words):
    reason = struct.unpack_from("<I", buf, 8)[0]
    outcome = report_of(KvmRun(buf).decode(), reason)
    assert outcome.status == 1 and words in outcome.fault.summary


def test_devices_see_which_vcpu_made_the_access_on_both_paths():
    from kvmrun.devices.bus import Access
    seen = []

    class Witness:
        def read(self, offset, size, access):
            seen.append(("read", offset, access.vcpu))
            return 0

        def write(self, offset, size, value, access):
            seen.append(("write", offset, access.vcpu))

    bus = IoBus()
    bus.register(0x500, 4, Witness())
    ctx = ExitContext(KvmRun(io_exit(0, 1, 0x502, 1)), bus, threading.Lock(), None, access=Access(3, None))
    handle_exit(ctx, KvmExit.KVM_EXIT_IO, ctx.run.decode())
    bus.byte_writer(0x503, ctx.access)(0x41)       # the fast path's one-byte writer
    assert seen == [("read", 2, 3), ("write", 3, 3)]
