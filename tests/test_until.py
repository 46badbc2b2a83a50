"""--until: a run that ends when a vCPU reaches a symbol or an address — from the command line, the
Python API and a manifest — and the one-line errors for what cannot be a breakpoint."""
import shutil

import pytest

import kvmrun
from conftest import guest, run_kvmrun
from kvmrun.debug.symbols import resolve_until
from kvmrun.errors import ConfigError
from kvmrun.outcome import Reason

pytestmark = pytest.mark.kvm


def test_the_cli_stops_at_a_symbol_with_status_0_and_shows_the_registers_there():
    result = run_kvmrun("boot", "--until", "kernel_main", guest("barebones.elf"))
    assert result.returncode == 0
    err = result.stderr.decode()
    assert "breakpoint on vCPU 0" in err and "reached kernel_main (0x100030)" in err
    assert "RIP 0000000000100030" in err and "=> 00100030  55" in err       # and the code there
    assert result.stdout == b""            # stopped on entering kernel_main: it printed nothing yet


def test_the_api_gives_reason_breakpoint_and_an_address_works_too():
    result = kvmrun.run(guest("hello64.elf"), until="0x100010")          # the rep outsb
    assert result.reason is Reason.BREAKPOINT and result.status == 0
    assert result.serial == b"" and "reached 0x100010" in result.report
    assert not result.mismatches(reason="breakpoint")
    reached_first = kvmrun.run(guest("hello64.elf"), until=0x100000)    # the entry itself
    assert reached_first.reason is Reason.BREAKPOINT


def test_every_vcpu_can_reach_it():
    result = kvmrun.run(guest("gdb64.elf"), cpus=2, until="secondary")   # only vCPU 1 goes there first
    assert result.reason is Reason.BREAKPOINT and "on vCPU 1" in result.report


def test_not_reached_ends_as_the_guest_ends_and_says_so():
    result = run_kvmrun("boot", "--until", "0x100005", guest("hello64.elf"))   # inside an instruction
    assert result.returncode == 0 and result.stdout == b"Hello from long mode!\n"
    assert result.stderr == b"kvmrun: --until 0x100005: not reached; the run ended as halted\n"
    api = kvmrun.run(guest("hello64.elf"), until="0x100005")
    assert api.reason is Reason.HALTED and api.mismatches(reason="breakpoint")


def test_a_manifest_expects_the_breakpoint(tmp_path):
    shutil.copy(guest("barebones.elf"), tmp_path / "barebones.elf")
    (tmp_path / "kvmrun.toml").write_text(
        '[[guest]]\nname = "reaches kmain"\nimage = "barebones.elf"\nuntil = "kernel_main"\n'
        'expect_reason = "breakpoint"\n'
        '[[guest]]\nname = "never gets there"\nimage = "barebones.elf"\nuntil = "fail"\n'
        'expect_reason = "breakpoint"\ntimeout = 10\n')
    result = run_kvmrun("test", tmp_path / "kvmrun.toml")
    out = result.stdout.decode()
    assert result.returncode == 1
    assert "reaches kmain" in out and "never gets there" in out
    assert "1 passed" in out and "1 failed" in out


@pytest.mark.parametrize("args, message", [
    (["--until", "no_such_symbol", "barebones.elf"], "--until no_such_symbol: no symbol of that name in"),
    (["--until", "kmain", "--mode", "real", "hello16.bin"], "hello16.bin is not an ELF image, so it has no "
                                                              "symbols; give an address (0x...)"),
    (["--until", "0x1", "--gdb", "0", "hello64.elf"], "--until and --gdb cannot be combined"),
    (["--until", "", "hello64.elf"], "--until must be a symbol or an address"),
    (["--until", "0x1ffffffffffffffff", "hello64.elf"], "not an address"),
])
def test_what_cannot_be_a_breakpoint_is_one_line_and_status_2(args, message):
    args = [guest(arg) if arg.endswith((".elf", ".bin")) else arg for arg in args]
    result = run_kvmrun("boot", *args)
    assert result.returncode == 2
    err = result.stderr.decode()
    assert message in err and err.count("\n") == 1 and err.startswith("kvmrun: error: ")


def test_a_corrupt_symbol_table_is_an_error_not_a_traceback(tmp_path):
    image = bytearray(open(guest("barebones.elf"), "rb").read())
    image[0x20:0x28] = b"\xff" * 8              # e_shoff (ELF32: 0x20): the section table is nowhere
    broken = tmp_path / "broken.elf"
    broken.write_bytes(bytes(image))
    with pytest.raises(ConfigError, match="cannot read the symbols"):
        resolve_until("kernel_main", str(broken))


def test_a_manifest_cannot_ask_for_gdb(tmp_path):
    shutil.copy(guest("hello64.elf"), tmp_path / "hello64.elf")
    (tmp_path / "kvmrun.toml").write_text('[[guest]]\nname = "g"\nimage = "hello64.elf"\ngdb = 1234\n')
    result = run_kvmrun("test", tmp_path / "kvmrun.toml", timeout=30)
    assert result.returncode == 2
    assert "'gdb' is for `kvmrun boot --gdb`" in result.stderr.decode()


def test_a_manifests_until_is_checked_before_any_guest_runs(tmp_path):
    shutil.copy(guest("barebones.elf"), tmp_path / "barebones.elf")
    (tmp_path / "kvmrun.toml").write_text(
        '[[guest]]\nname = "fine"\nimage = "barebones.elf"\n'
        '[[guest]]\nname = "typo"\nimage = "barebones.elf"\nuntil = "kernal_main"\n')
    result = run_kvmrun("test", tmp_path / "kvmrun.toml")
    assert result.returncode == 2 and result.stdout == b""             # nothing ran
    err = result.stderr.decode()
    assert "guest 'typo': 'until' 'kernal_main': no symbol of that name in" in err and err.count("\n") == 1


def test_inspect_refuses_what_boot_refuses_about_until():
    result = run_kvmrun("inspect", "--until", "nosuch", guest("gdb64.elf"))
    assert result.returncode == 2 and b"--until nosuch: no symbol of that name" in result.stderr
    assert run_kvmrun("inspect", "--until", "kmain", guest("gdb64.elf")).returncode == 0
