"""The VGA text screen as users see it, on real guests: the final screen after the serial output where
stdout is not a terminal, drawn live in colour on one, chosen with --screen; Result.screen,
expect_screen and JUnit; and nothing extra for a guest that never writes the buffer. Also the exit
port's QEMU rule and the kernel options refused where no kernel could receive them."""
import os
import pty
import struct
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest

import kvmrun
from conftest import guest, run_kvmrun

pytestmark = pytest.mark.kvm

FRAME = b"--- screen 80x25 ---\nHi\n--- end of screen ---\n"


def long_mode_image(tmp_path, name, code: bytes) -> str:
    """A raw long-mode image (kvmrun's ABI, loaded and entered at 1 MiB)."""
    path = tmp_path / name
    path.write_bytes(code)
    return str(path)


def serial_out(text: bytes) -> bytes:
    code = b"\x66\xba\xf8\x03"                     # mov dx, 0x3f8
    for byte in text:
        code += bytes([0xB0, byte, 0xEE])           # mov al, byte; out dx, al
    return code


# mov rdi, 0xB8000; mov dword [rdi], 0x1F691F48 ("Hi", white on blue); serial "ok\n"; hlt
SCREEN_CODE = b"\x48\xbf" + struct.pack("<Q", 0xB8000) + b"\xc7\x07" + struct.pack("<I", 0x1F691F48)


@pytest.fixture
def screen_guest(tmp_path):
    return long_mode_image(tmp_path, "screen.bin", SCREEN_CODE + serial_out(b"ok\n") + b"\xf4")


def test_where_stdout_is_not_a_terminal_the_final_screen_follows_the_serial_output(screen_guest):
    done = run_kvmrun("boot", screen_guest)
    assert (done.returncode, done.stdout, done.stderr) == (0, b"ok\n" + FRAME, b"")


def test_a_screen_after_an_unfinished_serial_line_starts_on_a_line_of_its_own(tmp_path):
    image = long_mode_image(tmp_path, "prompt.bin", serial_out(b"no newline") + SCREEN_CODE + b"\xf4")
    assert run_kvmrun("boot", image).stdout == b"no newline\n" + FRAME


@pytest.mark.parametrize("args, shown", [(("--screen", "off"), b"ok\n"), (("--screen", "text"), b"ok\n" + FRAME)])
def test_screen_off_shows_nothing_and_text_shows_the_final_screen(screen_guest, args, shown):
    done = run_kvmrun("boot", *args, screen_guest)
    assert (done.returncode, done.stdout) == (0, shown)


def test_a_guest_that_never_writes_the_buffer_shows_nothing_extra():
    done = run_kvmrun("boot", guest("hello64.elf"))
    assert done.stdout == b"Hello from long mode!\n"
    assert kvmrun.run(guest("hello64.elf")).screen is None


def test_a_bad_screen_choice_is_a_usage_error(screen_guest):
    done = run_kvmrun("boot", "--screen", "colour", screen_guest)
    assert done.returncode == 2 and b"'colour' is not one of 'auto', 'live', 'text', 'off'" in done.stderr


def _on_a_terminal(*args) -> bytes:
    master, slave = pty.openpty()
    try:
        os.set_blocking(master, False)
        proc = subprocess.Popen([sys.executable, "-m", "kvmrun", "boot", *args], stdin=subprocess.DEVNULL,
                                stdout=slave, stderr=subprocess.PIPE)
        os.close(slave)
        slave = -1
        shown = b""
        ended = False
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                chunk = os.read(master, 65536)
            except BlockingIOError:
                if ended:
                    break
                # Once it has ended, one more read takes what it wrote since the last one.
                ended = proc.poll() is not None
                if not ended:
                    time.sleep(0.01)
                continue
            except OSError:           # EIO: the terminal's last writer has gone
                break
            shown += chunk
        assert proc.wait(timeout=10) == 0, proc.stderr.read() if proc.stderr else None
        return shown
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)


def test_on_a_terminal_the_screen_is_drawn_in_colour_below_the_serial_output(screen_guest):
    shown = _on_a_terminal(screen_guest)
    assert shown.startswith(b"ok\r\n")
    # The header, then "Hi" in bright white (97) on blue (44), as VGA attribute 0x1F asks.
    header = shown.index(b"--- screen 80x25 ---")
    assert shown.index(b"\x1b[0;97;44mHi", header) > header
    assert b"--- end of screen ---" not in shown           # that marker is for logs


def test_screen_text_on_a_terminal_is_the_plain_final_screen(screen_guest):
    shown = _on_a_terminal("--screen", "text", screen_guest)
    assert shown == (b"ok\n" + FRAME).replace(b"\n", b"\r\n")


def test_result_screen_holds_the_text_the_cells_and_their_attributes(screen_guest):
    result = kvmrun.run(screen_guest)
    assert result.serial == b"ok\n"
    screen = result.screen
    assert screen is not None and screen.text == "Hi"
    assert screen.cells[0][:3] == (("H", 0x1F), ("i", 0x1F), (" ", 0))
    assert (screen.columns, screen.rows) == (80, 25)
    result.expect(serial=b"ok", screen=r"^Hi$")
    with pytest.raises(AssertionError) as failure:
        result.expect(screen="Bye")
    message = str(failure.value)
    assert "the screen does not match 'Bye'" in message and "--- screen 80x25 ---\nHi" in message


def test_expect_screen_on_a_guest_that_never_wrote_the_screen_says_so():
    result = kvmrun.run(guest("hello64.elf"))
    assert result.mismatches(screen="Hello") == [
        "the guest never wrote to the screen, expected it to match 'Hello'"]


def test_manifests_match_expect_screen_and_junit_carries_the_screen(tmp_path, screen_guest):
    manifest = tmp_path / "kvmrun.toml"
    manifest.write_text(f'''
[[guest]]
name = "screen-hi"
image = "{screen_guest}"
expect_screen = "^Hi"

[[guest]]
name = "screen-bye"
image = "{screen_guest}"
expect_screen = "Bye"
''')
    junit = tmp_path / "report.xml"
    done = run_kvmrun("test", manifest, "--junit-xml", junit, "--jobs", "1")
    assert done.returncode == 1, done.stderr
    assert b"the screen does not match 'Bye'" in done.stdout
    cases = {case.get("name"): case for case in ET.parse(junit).getroot().iter("testcase")}
    assert cases["screen-hi"].find("failure") is None
    assert cases["screen-bye"].find("failure") is not None
    assert cases["screen-hi"].find("system-out").text == "ok\n\n" + FRAME.decode().rstrip("\n")


def test_a_bad_expect_screen_is_a_manifest_error(tmp_path, screen_guest):
    manifest = tmp_path / "kvmrun.toml"
    manifest.write_text(f'[[guest]]\nname = "g"\nimage = "{screen_guest}"\nexpect_screen = "(unclosed"\n')
    done = run_kvmrun("test", manifest)
    assert done.returncode == 2
    assert b"'expect_screen' is not a regular expression: missing ), unterminated subpattern" in done.stderr


# --- the exit port's two rules ------------------------------------------------------------------------

@pytest.mark.parametrize("args, status", [((), 0x20), (("--exit-code", "value"), 0x20),
                                          (("--exit-code", "qemu"), 0x41)])
def test_exit_code_qemu_gives_isa_debug_exit_statuses(tmp_path, args, status):
    image = long_mode_image(tmp_path, "exit.bin", b"\xb8\x20\x00\x00\x00\xe7\xf4")   # mov eax, 0x20; out 0xf4, eax
    done = run_kvmrun("boot", *args, image)
    assert (done.returncode, done.stderr) == (status, b"")
    assert kvmrun.run(image, exit_code=args[1] if args else None).status == status


# --- kernel options where no kernel can receive them --------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (("--cmdline", "x"), "kvmrun: error: --cmdline applies to multiboot, multiboot2 and PVH kernels; an image "
                         "for kvmrun's own ABI has no way to receive a command line"),
    (("--module", "m.bin"), "kvmrun: error: --module applies to multiboot, multiboot2 and PVH kernels; an image "
                            "for kvmrun's own ABI has no way to receive modules"),
    (("--exit-code", "qemu2"), "kvmrun: error: --exit-code must be 'value' or 'qemu', not 'qemu2'"),
])
def test_kernel_options_on_an_image_for_kvmruns_abi_are_refused(args, message):
    done = run_kvmrun("boot", *args, guest("hello64.elf"))
    assert (done.returncode, done.stdout, done.stderr.decode()) == (2, b"", message + "\n")
