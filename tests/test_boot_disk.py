"""Which images boot as PC boot disks on kvmrun's BIOS (boot/prepare.py, rule 6), the setup they get
(boot/protocols/bios.py), and the options that go with them. Pure, but for the last tests, which boot."""
import struct

import pytest

from conftest import run_kvmrun
from kvmrun.bios import data_area, rom
from kvmrun.boot.cpu_modes import Mode
from kvmrun.boot.prepare import BOOT_DISK, KVMRUN_ABI, plan_boot, plan_image_bytes, plan_image_for
from kvmrun.errors import LoaderError
from kvmrun.options import BootConfig, OptionError

SIGNED = b"\xFA\xF4" + bytes(508) + b"\x55\xAA"        # cli; hlt, signed


def write(tmp_path, data, name="boot.img"):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_a_raw_image_with_the_signature_and_no_mode_is_a_boot_disk(tmp_path):
    assert plan_image_for(BootConfig(write(tmp_path, SIGNED))).protocol == BOOT_DISK
    assert plan_image_for(BootConfig(write(tmp_path, SIGNED + bytes(4096)))).protocol == BOOT_DISK


@pytest.mark.parametrize("image, mode", [
    (SIGNED, Mode.REAL),                                  # --mode: kvmrun's own ABI, whatever the image
    (SIGNED[:510] + b"\x55\xAB", None),                   # no signature
    (SIGNED[:511], None),                                 # shorter than a sector
])
def test_other_raw_images_keep_kvmruns_abi(tmp_path, image, mode):
    assert plan_image_for(BootConfig(write(tmp_path, image), mode=mode)).protocol == KVMRUN_ABI


def test_a_multiboot_kernel_that_also_carries_the_signature_is_a_multiboot_kernel(tmp_path):
    header = struct.pack("<III", 0x1BADB002, 0x10000, (-(0x1BADB002 + 0x10000)) & 0xFFFFFFFF)
    address_fields = struct.pack("<IIIII", 0x100000, 0x100000, 0, 0, 0x100000 + 0x200)
    image = bytearray(SIGNED)
    image[0x100:0x100 + 32] = header + address_fields
    assert plan_image_for(BootConfig(write(tmp_path, bytes(image)))).protocol == "multiboot"
    assert plan_image_bytes(BootConfig("x"), bytes(image)).protocol == "multiboot"


def test_an_os_image_with_an_unusable_kernel_header_behind_its_boot_sector_boots_as_a_disk(tmp_path):
    """Boot sector + kernel in one file (the tutorials' os-image): a multiboot header without address
    fields in a file that is not ELF could not be booted as a kernel, so the disk boots, with a note."""
    header = struct.pack("<III", 0x1BADB002, 0, (-0x1BADB002) & 0xFFFFFFFF)        # no flag 16
    image = SIGNED + bytes(0x1000) + header + bytes(64)
    for planned in (plan_image_for(BootConfig(write(tmp_path, image))), plan_image_bytes(BootConfig("x"), image)):
        assert planned.protocol == BOOT_DISK
        notes = planned.setup_for(True).notes
        assert len(notes) == 1 and "flags bit 16" in notes[0] and "boots as a boot disk" in notes[0]
        assert "--mode" not in notes[0]
    with pytest.raises(LoaderError, match="flags bit 16"):                          # unsigned: refused as before
        plan_image_for(BootConfig(write(tmp_path, bytes(512) + image[512:], "kernel.bin")))


def test_a_disk_larger_than_ram_boots_only_its_first_sector_is_read(tmp_path):
    path = tmp_path / "big.img"
    with open(path, "wb") as f:
        f.write(SIGNED)
        f.truncate(64 << 20)                                              # 64 MiB, sparse
    setup, mode = plan_boot(BootConfig(str(path), memory=2 << 20), one_gib_pages=True)
    assert mode is Mode.REAL
    assert [blob.data for blob in setup.blobs if blob.name == "boot sector"] == [SIGNED]


def test_the_setup_is_a_pc_as_a_bios_leaves_it(tmp_path):
    setup, _ = plan_boot(BootConfig(write(tmp_path, SIGNED), cpus=2), one_gib_pages=True)
    blobs = {blob.name: blob for blob in setup.blobs}
    assert blobs["boot sector"].addr == 0x7C00 and bytes(blobs["boot sector"].data) == SIGNED
    assert blobs["interrupt vector table"].data == rom.ivt_bytes()
    assert blobs["BIOS ROM"].addr == 0xF0000 and blobs["BIOS ROM"].data == rom.rom_bytes()
    bda = blobs["BIOS data area"].data
    assert struct.unpack_from("<H", bda, data_area.BASE_MEMORY_KIB - 0x400)[0] == 639
    assert struct.unpack_from("<H", bda, data_area.COM_PORTS - 0x400)[0] == 0x3F8
    assert blobs["text screen"].data[:4] == b"\x20\x07\x20\x07"
    boot, ap = setup.vcpus
    assert (boot.mode, boot.entry, boot.runnable) == (Mode.REAL, 0xF0000 + rom.START, True)
    assert boot.regs == {"rdx": 0x80, "rsp": 0x7C00}
    assert not ap.runnable
    assert setup.needs.irqchip and setup.needs.bios and setup.needs.ap_start == "sipi"


@pytest.mark.parametrize("options, option", [
    ({"irqchip": False}, "irqchip"),
    ({"load_addr": 0x7C00}, "load_addr"),
    ({"cmdline": "x"}, "cmdline"),
    ({"ap_start": "entry", "cpus": 2}, "ap_start"),
])
def test_options_a_boot_disk_cannot_take_are_refused_naming_them(tmp_path, options, option):
    with pytest.raises(OptionError) as err:
        plan_boot(BootConfig(write(tmp_path, SIGNED), **options), one_gib_pages=True)
    assert err.value.option == option


@pytest.mark.parametrize("options, option", [
    ({"disk": "d.img"}, "disk"), ({"disk_writable": True}, "disk_writable"), ({"trace": "bios"}, "trace"),
])
def test_bios_options_are_refused_for_images_without_a_bios(tmp_path, options, option):
    with pytest.raises(OptionError, match="boot sectors") as err:
        plan_boot(BootConfig(write(tmp_path, b"\xF4"), **options), one_gib_pages=True)
    assert err.value.option == option


def test_a_missing_disk_is_an_option_error(tmp_path):
    with pytest.raises(OptionError, match="no such file") as err:
        plan_boot(BootConfig(write(tmp_path, SIGNED), disk=str(tmp_path / "nope.img")), one_gib_pages=True)
    assert err.value.option == "disk"


def test_an_empty_image_is_refused_before_probing(tmp_path):
    with pytest.raises(LoaderError, match="empty"):
        plan_image_for(BootConfig(write(tmp_path, b"")))


@pytest.mark.kvm
def test_cli_errors_are_one_line_with_status_2(tmp_path):
    image = write(tmp_path, SIGNED)
    for args, words in (([ "--irqchip", "off", image], "--irqchip off leaves a boot sector's BIOS"),
                        (["--disk", str(tmp_path / "none.img"), image], "no such file"),
                        (["--trace=bogus", image], "--trace must be 'exits', 'setup' or 'bios'"),
                        (["--disk-writable", write(tmp_path, b"\xF4", "raw.bin")], "applies to boot sectors")):
        result = run_kvmrun("boot", *args)
        lines = result.stderr.decode().splitlines()
        assert (result.returncode, len(lines)) == (2, 1), result.stderr
        assert words in lines[0]


@pytest.mark.kvm
def test_the_bios_rom_is_read_only_to_the_guest(tmp_path):
    # mov ax,0F000h; mov ds,ax; mov byte [0],12h; mov al,[0]; out 0F4h,al: the ROM's first byte (E6h) stays
    code = bytes.fromhex("b800f08ed8c606000012a00000e6f4")
    image = write(tmp_path, code + bytes(510 - len(code)) + b"\x55\xAA")
    assert run_kvmrun("boot", image).returncode == 0xE6
    strict = run_kvmrun("boot", "--strict-io", image)
    assert strict.returncode == 1 and b"MMIO write of 0x12 to 0x000f0000" in strict.stderr


def test_the_quick_magic_check_looks_for_the_parsers_own_magic_numbers():
    """prepare.py skips loading the multiboot parsers when neither magic is in the image's head."""
    from kvmrun.boot import multiboot, multiboot2, prepare
    assert prepare.MULTIBOOT_MAGIC == struct.pack("<I", multiboot.MAGIC)
    assert prepare.MULTIBOOT2_MAGIC == struct.pack("<I", multiboot2.MAGIC)


@pytest.mark.kvm
def test_a_cpu_exception_on_an_irq_vector_is_reported_not_taken_for_the_irq(tmp_path):
    """#GP is vector 0Dh, IRQ 5's: the ROM's handler asks the PIC, finds IRQ 5 not in service, and the
    run ends naming the exception instead of returning to the fault for ever."""
    code = bytes.fromhex("a1ffff")                       # mov ax, [0FFFFh]: a word past the segment's end
    image = write(tmp_path, code + bytes(510 - len(code)) + b"\x55\xAA")
    result = run_kvmrun("boot", "--timeout", "10", image)
    report = " ".join(result.stderr.decode().split())
    assert result.returncode == 1, result.stderr.decode()
    assert "the CPU raised #GP (general protection) at 0000:7C00" in report


@pytest.mark.kvm
def test_a_disk_read_into_the_text_buffer_shows_on_the_screen(tmp_path):
    """The BIOS writes guest RAM from the host, which KVM's dirty log does not see: it tells the screen."""
    import kvmrun
    # mov ax,0B800h; mov es,ax; xor bx,bx; mov ax,0201h; mov cx,0002h; mov dh,0; int 13h; cli; hlt
    code = bytes.fromhex("b800b88ec031dbb80102b90200b600cd13faf4")
    splash = b"".join(bytes([char, 0x1F]) for char in b"Read from the disk") + bytes(512 - 36)
    image = write(tmp_path, code + bytes(510 - len(code)) + b"\x55\xAA" + splash)
    result = kvmrun.run(image, timeout=10)
    assert result.status == 0 and result.screen is not None
    assert result.screen.lines[0] == "Read from the disk" and result.screen.cells[0][0] == ("R", 0x1F)


@pytest.mark.kvm
def test_a_boot_sector_reads_the_cmos_clock_and_the_keyboard_controllers_a20_bit(tmp_path):
    import time
    # mov al,09h; out 70h,al; in al,71h; out 0F4h,al: the year's last two digits, in BCD
    year = bytes.fromhex("b009e670e471e6f4")
    image = write(tmp_path, year + bytes(510 - len(year)) + b"\x55\xAA", "year.img")
    expected = time.localtime().tm_year % 100
    assert run_kvmrun("boot", image).returncode == (expected // 10) << 4 | expected % 10
    # mov al,0D0h; out 64h,al; wait: in al,64h; test al,1; jz wait; in al,60h; and al,2; out 0F4h,al
    a20 = bytes.fromhex("b0d0e664e464a80174fae4602402e6f4")
    image = write(tmp_path, a20 + bytes(510 - len(a20)) + b"\x55\xAA", "a20.img")
    assert run_kvmrun("boot", "--timeout", "10", image).returncode == 2       # the output port's A20 bit


def test_a_usable_kernel_header_in_a_signed_image_longer_than_the_probe_is_a_kernel(tmp_path):
    """The header's address fields are checked against the whole file, not the first 32 KiB read to
    tell a boot disk: a 64 KiB multiboot kernel that also has 55 AA at 510 boots as the kernel."""
    size = 64 * 1024
    fields = struct.pack("<IIIII", 0x100100, 0x100000, 0x100000 + size, 0x100000 + size, 0x100000 + 0x200)
    header = struct.pack("<III", 0x1BADB002, 0x10000, (-(0x1BADB002 + 0x10000)) & 0xFFFFFFFF) + fields
    image = bytearray(size)
    image[0x100:0x100 + len(header)] = header
    image[510:512] = b"\x55\xAA"
    image[0x200] = 0xF4                                                     # hlt at the entry
    assert plan_image_for(BootConfig(write(tmp_path, bytes(image)))).protocol == "multiboot"


@pytest.mark.kvm
def test_a_stalled_stderr_does_not_keep_a_traced_run_past_its_timeout(tmp_path):
    """--trace=bios writes on the vCPU's thread; with nobody reading stderr it must still end at --timeout."""
    import os
    import subprocess
    import sys
    import time
    code = bytes.fromhex("b8410ecd10ebf9")               # again: mov ax,0E41h; int 10h; jmp again
    image = write(tmp_path, code + bytes(510 - len(code)) + b"\x55\xAA")
    unread, stderr = os.pipe()                            # its reader never reads: the pipe fills
    try:
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "kvmrun", "boot", "--trace=bios", "--screen=off",
                               "--timeout", "2", image], stdout=subprocess.DEVNULL, stderr=stderr, timeout=60)
        assert done.returncode == 124 and time.monotonic() - started < 20
    finally:
        os.close(stderr)
        os.close(unread)


def test_the_quick_checks_search_as_far_as_the_parsers_do():
    from kvmrun.boot import multiboot, multiboot2, prepare
    assert prepare.MULTIBOOT_SEARCH == multiboot.SEARCH_LIMIT and prepare.PROBE_BYTES == multiboot2.SEARCH_LIMIT


def test_a_multiboot_header_past_the_first_8_kib_gets_a_note_saying_why_it_was_not_used(tmp_path):
    """A host gcc's build-id note can push a Bare Bones kernel's header to offset 0x2000: kvmrun boots
    it with its own ABI, as GRUB would refuse it, and says what happened and what to do."""
    from kvmrun.boot.prepare import _late_multiboot_notes
    header = struct.pack("<III", 0x1BADB002, 3, -(0x1BADB002 + 3) & 0xFFFFFFFF)
    late = bytearray(0x3000)
    late[0x2000:0x200C] = header
    assert "offset 0x2000, past the first 8 KiB" in _late_multiboot_notes(bytes(late))[0]
    bad_checksum = bytearray(late)
    bad_checksum[0x2008] ^= 1
    assert _late_multiboot_notes(bytes(bad_checksum)) == ()
    unaligned = bytearray(0x3000)
    unaligned[0x2002:0x200E] = header
    assert _late_multiboot_notes(bytes(unaligned)) == ()
