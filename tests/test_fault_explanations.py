"""Guests that end badly get a report that says why and what to do: how a boot sector boots, the
disassembled instruction at RIP, KVM emulation failures, BIOS calls without a BIOS."""
import re

import pytest

from conftest import guest, run_kvmrun
from kvmrun.diagnostics import software_virtualizer

pytestmark = pytest.mark.kvm


def test_a_boot_sector_booted_without_mode_boots_on_kvmruns_bios():
    result = run_kvmrun("boot", "--timeout", "5", guest("hello16.bin"))
    assert (result.returncode, result.stdout, result.stderr) == (0, b"Hello from real mode!\n", b"")


def test_a_boot_sector_booted_in_real_mode_gets_no_note():
    result = run_kvmrun("boot", "--mode", "real", guest("hello16.bin"))
    assert (result.returncode, result.stderr) == (0, b"")


def report_of(result):
    """The fault report on stderr, its panel borders stripped, one string."""
    assert result.returncode == 1, (result.returncode, result.stderr.decode())
    return "\n".join(line.strip("│╭╮╰╯─ ") for line in result.stderr.decode().splitlines())


# --- the instructions at RIP ---------------------------------------------------------------------

def test_a_triple_fault_shows_the_instruction_that_caused_it():
    report = report_of(run_kvmrun("boot", guest("triple64.elf")))
    assert "code at RIP (physical 0x100026, 64-bit code):" in report
    assert re.search(r"^=> 0000000000100026  0f 0b +ud2$", report, re.M), report
    assert re.search(r"^0000000000100028  50 +push rax$", report, re.M)    # and the instructions after it


def test_code_just_before_the_3gib_gap_still_shows(tmp_path):
    """RIP 4 bytes before the end of the RAM below 3 GiB: a 32-byte read would fail there."""
    image = tmp_path / "edge.bin"
    image.write_bytes(b"\x0f\x0b\xeb\xfe")                              # ud2; jmp $
    report = report_of(run_kvmrun("boot", "--memory", "3146752K", "--load-addr", "0xbffffffc", image))
    assert "code at RIP (physical 0xbffffffc, 64-bit code):\n0f 0b eb fe\n" in report
    assert re.search(r"^=> 00000000bffffffc  0f 0b +ud2$", report, re.M), report


# --- KVM emulation failures ----------------------------------------------------------------------

def test_an_sse_instruction_kvm_cannot_emulate_is_named_with_what_to_do():
    """On hardware virtualization the guest runs to its end; where KVM emulates ring 0 (PVM, as on
    the development machine) it ends in an emulation failure, which must be explained."""
    result = run_kvmrun("boot", "--timeout", "20", guest("sse64.elf"))
    if result.returncode == 0:
        assert result.stdout == b"adding with SSE\nSSE ran\n"
        return
    report = report_of(result)
    assert "KVM_EXIT_INTERNAL_ERROR" in report and "KVM_INTERNAL_ERROR_EMULATION" in report
    assert "KVM could not emulate the instruction at RIP 0x" in report
    assert "the instruction: `addps xmm0, xmm1`" in " ".join(report.split())
    if software_virtualizer():
        flat = " ".join(report.split())
        assert f"This host's KVM is {software_virtualizer()}, a software virtualizer" in flat
        assert "What to do: keep vector instructions out of ring-0 code: build it with -mgeneral-regs-only" in flat


# --- real mode without a BIOS --------------------------------------------------------------------

def test_a_bios_call_is_named_instead_of_running_into_empty_vectors():
    report = " ".join(report_of(run_kvmrun("boot", "--mode", "real", "--timeout", "20", guest("int10_16.bin"))).split())
    assert ("the guest called int 0x10 (BIOS video services, AH=0x0E: teletype output) at 0000:7C04, but kvmrun "
            "boots without a BIOS") in report
    assert "Write text to COM1 (port 0x3F8) instead" in report
    assert re.search(r"=> 7c04 cd 10 int 0x10", report), report


def test_an_exception_in_real_mode_is_named():
    report = " ".join(report_of(run_kvmrun("boot", "--mode", "real", "--timeout", "20", guest("divide16.bin"))).split())
    assert "the CPU raised #DE (divide error) at 0000:7C05" in report
    assert re.search(r"=> 7c05 f7 f1 div cx", report), report


def test_a_real_mode_guest_with_its_own_vector_is_unaffected():
    result = run_kvmrun("boot", "--mode", "real", "--timeout", "20", guest("ownivt16.bin"))
    assert (result.returncode, result.stdout, result.stderr) == (0, b"k\n", b"")


def test_code_at_the_very_end_of_ram_shows_what_there_is(tmp_path):
    """A division by zero in the last 2 bytes of 1 MiB of RAM (F000:FFFE): the report shows them."""
    image = tmp_path / "last.bin"
    image.write_bytes(b"\x31\xc9\xf7\xf1")                                  # xor cx, cx; div cx
    report = report_of(run_kvmrun("boot", "--mode", "real", "--memory", "1M", "--load-addr", "0xffffc",
                                  "--timeout", "20", image))
    assert "the CPU raised #DE (divide error) at F000:FFFE" in " ".join(report.split())
    assert "(physical 0xffffe, 16-bit code):\nf7 f1\n" in report
    assert re.search(r"^=> fffe  f7 f1  div cx$", report, re.M), report
