"""PC kernels on /dev/kvm: the multiboot, multiboot2 and PVH test guests (guests/barebones.c,
barebones2.c, pvh.c, mb64.asm, mbsmp.c, qemuexit.asm, vgascroll.c) booted as docs/guest-abi.md's
"PC kernels" and "The screen" describe. Each guest prints what it finds (boot information, MP table,
fw_cfg, VGA registers) to COM1 and the screen; these tests hold that against the documents and the
specifications, through kvmrun.run and, where the command line is the point, the CLI."""
import re
import subprocess
import sys

import pytest

import kvmrun
from conftest import ROOT, guest, run_kvmrun

pytestmark = pytest.mark.kvm

MODULE_TEXT = b"kvmrun test module: hello\n"      # guests/module.txt
TIMEOUT = 10
FAIL_STATUS = 13                                   # what a guest exits with when a check of its own fails
MiB, GiB = 1 << 20, 1 << 30

# docs/guest-abi.md, "The memory map", for 128 MiB: (base, length, E820 type).
MAP_128M = [(0x0, 0x9FC00, 1), (0x9FC00, 0x400, 2), (0xF0000, 0x10000, 2), (0x100000, 127 * MiB, 1),
            (0xFEC00000, 0x1400000, 2)]


def boot(name, **options):
    options.setdefault("timeout", TIMEOUT)
    return kvmrun.run(guest(name), **options)


def lines(result):
    return result.serial.decode().splitlines()


def memory_map(result, label="mmap"):
    return [(int(base, 16), int(length, 16), int(kind)) for base, length, kind in
            re.findall(rf"^{label} (0x[0-9a-f]+) \+(0x[0-9a-f]+) type (\d+)$", result.serial.decode(), re.M)]


def modules(result):
    """(start, end, string, first bytes) for each `module N START-END 'STRING' starts 'BYTES'` line."""
    return [(int(start, 16), int(end, 16), string, first) for start, end, string, first in
            re.findall(r"^module \d+ (0x[0-9a-f]+)-(0x[0-9a-f]+) '(.*)' starts '(.*)'$", result.serial.decode(), re.M)]


def field(result, pattern):
    match = re.search(pattern, result.serial.decode(), re.M)
    assert match, f"no line matching {pattern!r} in:\n{result.serial.decode()}"
    return match.group(1)


def wrapped(text, width=80):
    """The rows a serial text takes on the guests' 80-column terminal (it wraps, it does not cut).
    A screen row's trailing spaces are blank cells, which Screen.lines drops, so they go here too:
    where a row breaks depends on the checkout's path length, which the guests print."""
    rows = []
    for line in text.splitlines():
        rows.extend([line[i:i + width].rstrip(" ") for i in range(0, len(line), width)] or [""])
    return rows


def assert_screen_mirrors_serial(result):
    """The guests print every line to both: the screen's rows above the cursor are the serial output's
    last rows, and the cursor waits on the row after the last one, at column 0."""
    screen = result.screen
    assert screen is not None, "the guest wrote to the screen, but Result.screen is None"
    row, column = screen.cursor
    assert column == 0
    assert list(screen.lines[:row]) == wrapped(result.serial.decode())[-row:]
    assert not any(screen.lines[row:])


def module_path():
    return guest("module.txt")


# --- multiboot (v1) ---------------------------------------------------------------------------------

def test_a_multiboot_kernel_gets_the_magic_its_command_line_memory_and_modules():
    kernel, module = guest("barebones.elf"), module_path()
    result = boot("barebones.elf", memory="128M", cmdline="console=ttyS0 quiet",
                  modules=[f"{module}=arg1 arg2", module])
    result.expect(status=0, reason="halted", serial="^magic 0x2badb002 ok$")
    assert f"cmdline '{kernel} console=ttyS0 quiet'" in lines(result)      # QEMU's -kernel/-append form
    assert "mem_lower 639 KiB, mem_upper 130048 KiB" in lines(result)
    assert "boot device 0x80ffffff" in lines(result)                       # drive 0x80, no partition
    assert memory_map(result) == MAP_128M
    assert "boot loader 'kvmrun'" in lines(result)
    # Flags: mem (0), boot device (1), cmdline (2), modules (3), memory map (6), boot loader name (9).
    flags = int(field(result, r"flags (0x[0-9a-f]+)$"), 16)
    assert flags & 0x24F == 0x24F
    (start0, end0, string0, first0), (start1, end1, string1, first1) = modules(result)
    assert (string0, string1) == (f"{module} arg1 arg2", module)
    assert first0 == first1 == "kvmrun test modu"
    assert end0 - start0 == end1 - start1 == len(MODULE_TEXT)
    assert start0 % 4096 == start1 % 4096 == 0 and 0x100000 < start0 < end0 <= start1
    info = int(field(result, r"^info at (0x[0-9a-f]+)"), 16)
    assert info % 4096 == 0 and info >= end1                            # after the modules, page-aligned
    assert "modules: 2" in lines(result) and lines(result)[-1] == "barebones: done"


def test_a_multiboot_command_line_without_cmdline_is_the_kernel_path():
    kernel = guest("barebones.elf")
    result = boot("barebones.elf").expect(status=0, reason="halted")
    assert re.fullmatch(rf"'{re.escape(kernel)} ?'", field(result, r"^cmdline (.*)$"))
    assert re.search(r"^(modules: 0|no modules)$", result.serial.decode(), re.M)


def test_the_multiboot_screen_shows_what_the_kernel_printed_in_its_colours():
    result = boot("barebones.elf", cmdline="on screen").expect(status=0, screen="^barebones: done$")
    assert_screen_mirrors_serial(result)
    assert result.screen.lines[0] == "barebones: multiboot kernel"
    assert result.screen.cells[0][0] == ("b", 0x0A)                     # light green on black
    assert result.screen.cells[1][0] == ("m", 0x07)                     # light grey on black


def test_mode_boots_a_multiboot_kernel_with_kvmruns_own_abi_instead():
    """--mode keeps kvmrun's ABI (docs/guest-abi.md, "Which machine an image gets"): EAX is 0 there,
    which the kernel's own check catches."""
    result = boot("barebones.elf", mode="protected").expect(status=FAIL_STATUS, reason="exit_port")
    assert lines(result)[-1] == "FAIL: EAX is not the multiboot magic: 0x0"


def test_multiboot_memory_above_3_gib_is_reported_from_4_gib():
    result = boot("barebones.elf", memory="5G").expect(status=0, reason="halted")
    assert f"mem_lower 639 KiB, mem_upper {(3 * GiB - MiB) >> 10} KiB" in lines(result)
    assert memory_map(result) == [(0x0, 0x9FC00, 1), (0x9FC00, 0x400, 2), (0xF0000, 0x10000, 2),
                                  (0x100000, 3 * GiB - MiB, 1), (0xFEC00000, 0x1400000, 2), (4 * GiB, 2 * GiB, 1)]


def test_a_flat_multiboot_kernel_is_placed_by_its_headers_address_fields():
    """mbaout.bin has no ELF headers: flags bit 16 and the header's load, load-end, bss-end and entry
    addresses place it; bytes past load_end_addr in the file are not copied, the bss is zeroed."""
    result = boot("mbaout.bin").expect(status=0, reason="halted")
    assert result.serial == b"mbaout: flat multiboot kernel at 0x100000\nmagic 0x2badb002 ok\nbss zeroed\n"


def test_an_empty_module_is_a_module_of_no_bytes(tmp_path):
    empty = tmp_path / "empty.img"
    empty.write_bytes(b"")
    result = boot("barebones.elf", modules=[str(empty), module_path()]).expect(status=0, reason="halted")
    [(start0, end0, string0, first0), (start1, end1, _, _)] = modules(result)
    assert (end0 - start0, string0, first0) == (0, str(empty), "")
    assert end1 - start1 == len(MODULE_TEXT)


def test_the_cli_passes_cmdline_and_repeated_modules_to_a_multiboot_kernel():
    kernel, module = guest("barebones.elf"), module_path()
    result = run_kvmrun("boot", "--screen", "off", "--timeout", TIMEOUT, "--cmdline", "from the shell",
                        "--module", f"{module}=x=1 y", "--module", module, kernel)
    assert (result.returncode, result.stderr) == (0, b"")
    out = result.stdout.decode()
    assert f"cmdline '{kernel} from the shell'\n" in out
    assert f" '{module} x=1 y' starts 'kvmrun test modu'\n" in out         # only the first '=' splits
    assert f" '{module}' starts 'kvmrun test modu'\n" in out
    assert out.endswith("modules: 2\nboot loader 'kvmrun'\nbarebones: done\n")


# --- multiboot2 -------------------------------------------------------------------------------------

def test_a_multiboot2_kernel_walks_its_boot_information_tags():
    module = module_path()
    result = boot("barebones2.elf", cmdline="console=ttyS0 quiet", modules=[f"{module}=m arg"])
    result.expect(status=0, reason="halted", serial="^magic 0x36d76289 ok$")
    assert "cmdline 'console=ttyS0 quiet'" in lines(result)                 # the text alone, as GRUB
    assert "boot loader 'kvmrun'" in lines(result)
    assert "mem_lower 639 KiB, mem_upper 130048 KiB" in lines(result)
    assert "boot device 0x80 partition 0xffffffff sub-partition 0xffffffff" in lines(result)
    assert "mmap entry_size 24 version 0" in lines(result)
    assert memory_map(result) == MAP_128M
    [(start, end, string, first)] = modules(result)
    assert (string, first, end - start, start % 4096) == (f"{module} m arg", "kvmrun test modu", len(MODULE_TEXT), 0)
    info = int(field(result, r"^info at (0x[0-9a-f]+)"), 16)
    assert info % 8 == 0 and info >= end
    assert re.search(r"^tags: \d+, end tag closes total_size$", result.serial.decode(), re.M)
    assert lines(result)[-2:] == ["modules: 1", "barebones2: done"]
    assert_screen_mirrors_serial(result)
    assert result.screen.cells[0][0] == ("b", 0x0B)                     # light cyan on black


# --- PVH --------------------------------------------------------------------------------------------

def test_a_pvh_kernel_reads_hvm_start_info():
    module = module_path()
    result = boot("pvh.elf", cmdline="console=hvc0", modules=[f"{module}=m arg", module])
    result.expect(status=0, reason="halted", serial="^magic 0x336ec578 ok, version 1, flags 0x0$")
    assert "cmdline 'console=hvc0'" in lines(result)
    assert "rsdp 0x0" in lines(result)                                  # no ACPI tables
    assert memory_map(result, "memmap") == MAP_128M
    assert f"memmap entries: {len(MAP_128M)}" in lines(result)
    found = re.findall(r"^module \d+ (0x[0-9a-f]+) \+(0x[0-9a-f]+) '(.*)' starts '(.*)'$", result.serial.decode(), re.M)
    assert [(size, string, first) for _, size, string, first in found] == [
        (hex(len(MODULE_TEXT)), f"{module} m arg", "kvmrun test modu"),
        (hex(len(MODULE_TEXT)), module, "kvmrun test modu")]
    assert all(int(start, 16) % 4096 == 0 for start, *_ in found)
    start_info = int(field(result, r"^start_info at (0x[0-9a-f]+)$"), 16)
    assert start_info % 4096 == 0 and start_info > int(found[-1][0], 16)
    assert lines(result)[-2:] == ["modules: 2", "pvh: done"]
    assert_screen_mirrors_serial(result)
    assert result.screen.cells[0][0] == ("p", 0x0E)                     # yellow on black


def test_an_elf64_pvh_kernel_with_linuxs_8_byte_entry_note_boots():
    result = boot("pvh64.elf").expect(status=0, reason="halted")
    assert result.serial == b"pvh64: ELF64 PVH kernel, 8-byte entry note\npvh64 ok\n"


# --- an ELF64 multiboot kernel ----------------------------------------------------------------------

def test_an_elf64_multiboot_kernel_enters_its_32_bit_code_and_reaches_long_mode():
    result = boot("mb64.elf").expect(status=0, reason="halted")
    assert result.serial == b"mb64: ELF64 multiboot kernel, 32-bit entry\nmb64 ok\nmb64: long mode ok\n"
    assert result.screen is None                                        # it never wrote to the screen


# --- SMP: fw_cfg, the MP table, INIT/SIPI -----------------------------------------------------------

@pytest.mark.parametrize("cpus", [1, 2, 4, 40])                   # 40: the most the MP table holds
def test_an_smp_kernel_finds_its_cpus_in_fw_cfg_and_the_mp_table_and_starts_them(cpus):
    result = boot("mbsmp.elf", cpus=cpus, memory="128M").expect(status=0, reason="halted")
    out = lines(result)
    assert "fw_cfg signature 'QEMU'" in out
    assert f"fw_cfg: {cpus} CPUs, max {cpus}, RAM 128 MiB" in out
    assert "fw_cfg: ID 0x1, command line of 0 bytes ''" in out            # traditional interface, no DMA
    assert "BDA: EBDA at 0x9fc00, base memory 639 KiB" in out
    assert "MP floating pointer in the EBDA at 0x9fc00, spec 1.4" in out     # the spec's first place
    listed = [line for line in out if line.startswith("cpu: ")]
    assert listed == ["cpu: APIC ID 0 enabled, bootstrap processor"] + [
        f"cpu: APIC ID {i} enabled" for i in range(1, cpus)]
    assert f"ioapic: ID {cpus} at 0xfec00000" in out
    assert "bus 0 'ISA   '" in out
    assert "BSP: APIC ID 0, local APIC version 0x14, software-enabled" in out
    assert [line for line in out if line.startswith("AP with")] == [
        f"AP with APIC ID {i} started" for i in range(1, cpus)]
    assert out[-1] == f"{cpus - 1} APs started"
    assert result.screen.lines[result.screen.cursor[0] - 1] == f"{cpus - 1} APs started"


def test_fw_cfg_carries_the_command_line_with_its_nul():
    result = boot("mbsmp.elf", cmdline="hello fw_cfg").expect(status=0, reason="halted")
    assert "fw_cfg: ID 0x1, command line of 13 bytes 'hello fw_cfg\\x00'" in lines(result)


def test_the_cli_boots_an_smp_kernel_on_4_cpus():
    result = run_kvmrun("boot", "--cpus", "4", "--screen", "off", "--timeout", TIMEOUT, guest("mbsmp.elf"))
    assert (result.returncode, result.stderr) == (0, b"")
    assert result.stdout.endswith(b"AP with APIC ID 3 started\n3 APs started\n")


# --- QEMU's exit convention -------------------------------------------------------------------------

QEMUEXIT_SERIAL = b"qemuexit: out dx, eax with eax=0x20, dx=0xf4\n"


@pytest.mark.parametrize("exit_code, status", [(None, 0x20), ("value", 0x20), ("qemu", (0x20 << 1) | 1)])
def test_a_32_bit_exit_port_write_exits_by_the_chosen_rule(exit_code, status):
    options = {"exit_code": exit_code} if exit_code else {}
    result = boot("qemuexit.elf", **options).expect(status=status, reason="exit_port")
    assert result.serial == QEMUEXIT_SERIAL


@pytest.mark.parametrize("args, status", [((), 0x20), (("--exit-code", "qemu"), 65)])
def test_the_cli_exits_with_the_exit_ports_status(args, status):
    result = run_kvmrun("boot", *args, "--timeout", TIMEOUT, guest("qemuexit.elf"))
    assert (result.returncode, result.stdout, result.stderr) == (status, QEMUEXIT_SERIAL, b"")


# --- the VGA text screen ----------------------------------------------------------------------------

def vgascroll_rows():
    """The final screen vgascroll.c promises: lines 7-30 (line n in colour 1 + n % 15), then done."""
    return [(f"vgascroll: line {n:02d}", 1 + n % 15) for n in range(7, 31)] + [("vgascroll: done", 0x1F)]


def test_the_screen_scrolls_and_shows_the_cursor_where_the_crtc_puts_it():
    result = boot("vgascroll.elf").expect(status=0, reason="halted")
    screen = result.screen
    assert (screen.columns, screen.rows) == (80, 25)
    assert [(line, row[0][1]) for line, row in zip(screen.lines, screen.cells)] == vgascroll_rows()
    assert screen.cursor == (24, 15)
    assert [char for char, _ in screen.cells[24][15:]] == [" "] * 65     # the rest of the row: blank
    assert screen.text == "\n".join(line for line, _ in vgascroll_rows())


def test_the_vga_registers_read_back_as_the_guest_set_them():
    result = boot("vgascroll.elf").expect(status=0, reason="halted")
    out = lines(result)
    assert "cursor row 24 column 15, CRTC reads back 0x78f" in out
    assert "cursor shape, written with 16-bit writes, reads back 14-15" in out
    assert re.search(r"^misc output 0x[0-9a-f]+ \(CRTC at 0x3d4\)$", result.serial.decode(), re.M)
    assert "retrace comes and goes" in out                              # drivers that wait for it go on
    assert out[-3:] == ["row 0 reads 'vgascroll: line 07' attribute 0x8",
                        "row 23 reads 'vgascroll: line 30' attribute 0x1",
                        "row 24 reads 'vgascroll: done' attribute 0x1f"]


def test_the_cli_writes_the_final_screen_after_the_serial_output():
    result = run_kvmrun("boot", "--timeout", TIMEOUT, guest("vgascroll.elf"))      # stdout is a pipe
    assert (result.returncode, result.stderr) == (0, b"")
    serial, screen = result.stdout.decode().split("--- screen 80x25 ---\n")
    assert serial.startswith("vgascroll: line 01\n") and serial.endswith("attribute 0x1f\n")
    assert screen == "\n".join(line for line, _ in vgascroll_rows()) + "\n--- end of screen ---\n"


def test_the_cli_without_the_screen_writes_the_serial_output_alone():
    shown = run_kvmrun("boot", "--timeout", TIMEOUT, guest("vgascroll.elf"))
    alone = run_kvmrun("boot", "--screen", "off", "--timeout", TIMEOUT, guest("vgascroll.elf"))
    assert (alone.returncode, alone.stderr) == (0, b"")
    assert alone.stdout == shown.stdout.split(b"--- screen 80x25 ---\n")[0]
    assert b"--- screen" not in alone.stdout


# --- manifests --------------------------------------------------------------------------------------

def test_a_manifest_boots_pc_kernels_with_their_options(tmp_path):
    module = module_path()
    manifest = tmp_path / "pc.toml"
    manifest.write_text(f"""
[defaults]
timeout = {TIMEOUT}

[[guest]]
name = "multiboot"
image = "{guest('barebones.elf')}"
cmdline = "from a manifest"
modules = ["{module}=arg"]
expect_serial = "^module 0 0x[0-9a-f]+-0x[0-9a-f]+ '.*module.txt arg' starts 'kvmrun test modu'$"
expect_screen = "^barebones: done$"

[[guest]]
name = "smp"
image = "{guest('mbsmp.elf')}"
cpus = 2
expect_serial = "^1 APs started$"

[[guest]]
name = "qemu-exit"
image = "{guest('qemuexit.elf')}"
exit_code = "qemu"
expect_status = 65

[[guest]]
name = "screen"
image = "{guest('vgascroll.elf')}"
expect_screen = "^vgascroll: line 07\\n(.*\\n)*vgascroll: done$"
""")
    result = subprocess.run([sys.executable, "-m", "kvmrun", "test", str(manifest), "--jobs", "1"],
                            capture_output=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


def test_a_manifest_guest_is_told_its_kernel_and_modules_as_the_manifest_writes_them(tmp_path):
    """What the guest prints must not depend on where the manifest lies: the multiboot command line
    starts with the kernel's path and module strings with theirs, both as written, relative to it."""
    import shutil
    from kvmrun.suite.manifest import load_manifest
    from kvmrun.suite.runner import run_guest
    (tmp_path / "guests").mkdir()
    for name in ("barebones.elf", "pvh.elf", "module.txt"):
        shutil.copy(guest(name), tmp_path / "guests" / name)
    manifest = tmp_path / "pc.toml"
    manifest.write_text(f"""
[defaults]
timeout = {TIMEOUT}
modules = ["guests/module.txt=arg", "guests/module.txt"]
cmdline = "from a manifest"

[[guest]]
name = "multiboot"
image = "guests/barebones.elf"

[[guest]]
name = "pvh"
image = "guests/pvh.elf"
""")
    multiboot, pvh = (run_guest(spec) for spec in load_manifest(str(manifest)))
    for outcome in multiboot, pvh:
        assert outcome.passed, outcome.error or outcome.problems
        assert str(tmp_path) not in outcome.result.serial.decode()
    assert "cmdline 'guests/barebones.elf from a manifest'" in lines(multiboot.result)
    assert [string for _, _, string, _ in modules(multiboot.result)] == ["guests/module.txt arg", "guests/module.txt"]
    assert re.findall(r"^module 0 .* '(.*)' starts", pvh.result.serial.decode(), re.M) == ["guests/module.txt arg"]


def test_a_screen_expectation_that_does_not_hold_fails_naming_the_screen():
    result = boot("vgascroll.elf")
    with pytest.raises(AssertionError, match="screen does not match"):
        result.expect(status=0, screen="^vgascroll: line 01$")            # scrolled off the top
