"""Guests that end badly get a report that says why and what to do: the boot-sector note, the
disassembled instruction at RIP, KVM emulation failures, BIOS calls without a BIOS."""
import pytest

from conftest import guest, run_kvmrun

pytestmark = pytest.mark.kvm


def test_a_boot_sector_booted_without_mode_gets_one_note():
    result = run_kvmrun("boot", "--timeout", "5", guest("hello16.bin"))
    notes = [line for line in result.stderr.decode().splitlines() if line.startswith("kvmrun: note:")]
    assert len(notes) == 1
    assert "looks like a PC boot sector" in notes[0] and "use --mode real" in notes[0]


def test_a_boot_sector_booted_in_real_mode_gets_no_note():
    result = run_kvmrun("boot", "--mode", "real", guest("hello16.bin"))
    assert (result.returncode, result.stderr) == (0, b"")
