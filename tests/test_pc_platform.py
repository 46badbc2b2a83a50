"""The PC platform's pure parts: the memory map every PC boot protocol reports, the memory slots that
keep the VGA text window apart, the exit port's two status rules, and the kernel options."""
import pytest

from kvmrun import layout
from kvmrun.machine import exit_status
from kvmrun.memory import RamLayout
from kvmrun.options import ModuleSpec, OptionError, boot_config, parse_option
from kvmrun.platform.memory_map import (E820_RAM, E820_RESERVED, lower_memory_kib, memory_map,
                                        upper_memory_kib)
from kvmrun.platform.memory_slots import memory_slots
from kvmrun.platform.screen_window import SCREEN_WINDOW

MiB, GiB = 1 << 20, 1 << 30


@pytest.mark.parametrize("size", [1 * MiB, 2 * MiB, 128 * MiB, 3 * GiB, 3 * GiB + 4096, 5 * GiB])
def test_the_memory_map_is_ordered_and_reports_ram_only_where_ram_is(size):
    ram = RamLayout(size)
    entries = memory_map(ram)
    for before, after in zip(entries, entries[1:]):
        assert before.end <= after.addr
    for entry in entries:
        assert entry.size > 0
        if entry.type == E820_RAM:
            assert ram.contains(entry.addr, entry.size)
    reported = sum(entry.size for entry in entries if entry.type == E820_RAM)
    # All RAM except the legacy area between the EBDA and 1 MiB (VGA window, ROMs, BIOS).
    assert reported == size - (layout.HIGH_MEMORY - layout.BASE_MEMORY_END)


def test_the_memory_map_of_128_mib_as_a_pc_reports_it():
    assert [tuple(entry) for entry in memory_map(RamLayout(128 * MiB))] == [
        (0, 0x9FC00, E820_RAM),
        (0x9FC00, 0x400, E820_RESERVED),              # the EBDA's KiB: the MP table
        (0xF0000, 0x10000, E820_RESERVED),            # the BIOS area
        (0x100000, 127 * MiB, E820_RAM),
        (0xFEC00000, 0x1400000, E820_RESERVED),       # IOAPIC, local APICs, KVM's pages
    ]


def test_ram_above_3_gib_is_reported_from_4_gib():
    entries = memory_map(RamLayout(5 * GiB))
    assert entries[-1] == (4 * GiB, 2 * GiB, E820_RAM)
    assert (0x100000, 3 * GiB - MiB, E820_RAM) in entries


def test_mem_lower_and_mem_upper_in_kib():
    assert lower_memory_kib(RamLayout(128 * MiB)) == 639
    assert upper_memory_kib(RamLayout(128 * MiB)) == 127 * 1024
    assert upper_memory_kib(RamLayout(1 * MiB)) == 0
    assert upper_memory_kib(RamLayout(5 * GiB)) == (3 * GiB - MiB) >> 10     # up to the first hole


@pytest.mark.parametrize("size", [1 * MiB, 128 * MiB, 3 * GiB, 5 * GiB])
def test_the_vga_text_window_is_a_logged_slot_of_its_own(size):
    ram = RamLayout(size)
    slots = memory_slots(ram.regions, [SCREEN_WINDOW])
    logged = [slot.region for slot in slots if slot.log_dirty]
    assert [(r.guest_addr, r.size) for r in logged] == [(layout.VGA_TEXT_ADDR, layout.VGA_TEXT_SIZE)]
    # Together the slots are exactly RAM: same guest ranges, same host offsets, nothing twice.
    covered = sorted((slot.region.guest_addr, slot.region.end, slot.region.host_offset) for slot in slots)
    for start, end, offset in covered:
        assert ram.contains(start, end - start)
        assert ram._offset(start, end - start) == offset
    assert sum(end - start for start, end, _ in covered) == size
    for (_, end, _), (start, _, _) in zip(covered, covered[1:]):
        assert end <= start


def test_the_exit_port_status_by_its_rule():
    value, qemu = exit_status(None), exit_status("qemu")
    assert [value(v) for v in (0, 1, 0x20, 0x1FF)] == [0, 1, 0x20, 0xFF]
    assert exit_status("value")(0x134) == 0x34
    # isa-debug-exit: (V << 1) | 1, which the host's exit() cuts to 8 bits.
    assert [qemu(v) for v in (0, 1, 0x20, 0x7F, 0x80, 0xFFFFFFFF)] == [1, 3, 65, 255, 1, 255]


def test_modules_are_file_and_optional_command_line():
    assert parse_option("modules", ["initrd.img", "a.bin=x=1 y", "b="]) == (
        ModuleSpec("initrd.img"), ModuleSpec("a.bin", "x=1 y"), ModuleSpec("b", ""))
    assert parse_option("modules", "one.bin") == (ModuleSpec("one.bin"),)
    assert boot_config("k.elf", {}).modules == ()


def test_a_module_is_shown_as_written_and_opened_where_it_was_found():
    assert ModuleSpec("m.bin").shown == "m.bin"
    found = ModuleSpec("/manifests/m.bin", "x", written="m.bin")
    assert (found.path, found.shown) == ("/manifests/m.bin", "m.bin")
    assert parse_option("modules", [found]) == (found,)


@pytest.mark.parametrize("name, value, problem", [
    ("modules", [""], "modules needs a file name, not an empty text"),
    ("modules", "", "modules needs a file name, not an empty text"),
    ("modules", ["=x"], "modules needs a file name before '=': '=x'"),
    ("modules", [1], "modules must be a list of FILE or FILE=CMDLINE texts, not 1"),
    ("modules", {"a": 1}, "modules must be a list of FILE or FILE=CMDLINE texts, not {'a': 1}"),
    ("cmdline", "a\0b", "cmdline must not contain a NUL character: the kernel reads it as a C string"),
    ("cmdline", 5, "cmdline must be text, not 5"),
    ("cmdline", "c\udcff", "cmdline must be valid UTF-8 text (it is passed to the kernel as UTF-8)"),
    ("exit_code", "qemu2", "exit_code must be 'value' or 'qemu', not 'qemu2'"),
])
def test_kernel_options_refuse_what_no_kernel_could_read(name, value, problem):
    with pytest.raises(OptionError) as err:
        parse_option(name, value)
    assert str(err.value) == problem


def test_a_bios_rom_window_is_a_read_only_slot_beside_the_screens():
    from kvmrun.bios.rom import READ_ONLY_WINDOW
    from kvmrun.platform.memory_slots import KVM_MEM_READONLY
    ram = RamLayout(2 * MiB)
    slots = memory_slots(ram.regions, [READ_ONLY_WINDOW, SCREEN_WINDOW])
    assert [(s.region.guest_addr, s.region.end, s.flags) for s in slots] == [
        (0, layout.VGA_TEXT_ADDR, 0), (layout.VGA_TEXT_ADDR, 0xC0000, 1), (0xC0000, 0xF0000, 0),
        (0xF0000, 0x100000, KVM_MEM_READONLY), (0x100000, 2 * MiB, 0)]
    assert all(s.region.host_offset == s.region.guest_addr for s in slots)
