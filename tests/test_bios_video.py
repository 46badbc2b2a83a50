"""int 10h (bios/video.py) against Ralf Brown's interrupt list: the text buffer, the BIOS data area
and the CRTC registers agree after every call."""
import struct

import pytest
from hypothesis import given, settings, strategies as st

from kvmrun import layout
from kvmrun.bios import data_area as bda
from kvmrun.bios.call import BiosCall, Unsupported
from kvmrun.bios.video import VideoServices
from kvmrun.devices.vga import VgaRegisters
from kvmrun.memory import GuestMemory
from kvmrun.screen import read_screen

MiB = 1 << 20


def machine():
    mem = GuestMemory.for_tests(MiB)
    mem.write(bda.BDA, bda.data_area_bytes(0))
    mem.write(layout.VGA_TEXT_ADDR, b"\x20\x07" * (layout.VGA_TEXT_SIZE // 2))
    streamed = bytearray()
    video = VideoServices(VgaRegisters(), streamed.append)
    return mem, video, streamed


def int10(video, mem, **regs):
    call = BiosCall(0x10, mem, **regs)
    video.int10(call)
    return call


def screen(mem, video):
    return read_screen(mem.read(layout.VGA_TEXT_ADDR, layout.VGA_TEXT_SIZE), video.registers)


def teletype(video, mem, text):
    for byte in text.encode():
        int10(video, mem, eax=0x0E00 | byte)


def test_teletype_writes_at_the_cursor_keeps_attributes_moves_the_cursor_and_streams_the_text():
    mem, video, streamed = machine()
    mem.write(layout.VGA_TEXT_ADDR + 2 * 1, b"\x20\x1F")             # cell 1 white on blue
    teletype(video, mem, "Hi\r\nok")
    shown = screen(mem, video)
    assert shown.lines[:2] == ("Hi", "ok")
    assert shown.cells[0][1] == ("i", 0x1F)                    # the cell's own attribute
    assert shown.cursor == (1, 2)
    assert mem.read(bda.CURSOR_POSITIONS, 2) == bytes([2, 1])       # column, row
    assert video.registers.cursor_offset == 82
    assert bytes(streamed) == b"Hi\r\nok"
    assert video.registers.text_written


def test_teletype_wraps_at_column_80_and_scrolls_at_the_bottom():
    mem, video, _ = machine()
    teletype(video, mem, "".join(f"line {n}\r\n" for n in range(30)))
    shown = screen(mem, video)
    assert shown.lines[0] == "line 6" and shown.lines[23] == "line 29" and shown.lines[24] == ""
    assert shown.cursor == (24, 0)
    mem2, video2, _ = machine()
    teletype(video2, mem2, "x" * 81)
    assert screen(mem2, video2).lines[:2] == ("x" * 80, "x") and screen(mem2, video2).cursor == (1, 1)


def test_backspace_moves_left_without_erasing_and_bell_does_nothing():
    mem, video, _ = machine()
    teletype(video, mem, "ab\b\a")
    shown = screen(mem, video)
    assert shown.lines[0] == "ab" and shown.cursor == (0, 1)


def test_set_and_get_cursor_per_page():
    mem, video, _ = machine()
    int10(video, mem, eax=0x0200, ebx=0x0000, edx=0x0A05)           # row 10, column 5
    got = int10(video, mem, eax=0x0300, ebx=0x0000)
    assert got.dx == 0x0A05 and got.cx == bda.DEFAULT_CURSOR_SHAPE
    assert video.registers.cursor_offset == 10 * 80 + 5
    int10(video, mem, eax=0x0200, ebx=0x0100, edx=0x0102)           # page 1: not shown
    assert video.registers.cursor_offset == 10 * 80 + 5
    assert int10(video, mem, eax=0x0300, ebx=0x0100).dx == 0x0102


def test_scroll_up_and_down_a_window_with_the_given_attribute():
    mem, video, _ = machine()
    for row in range(5):
        int10(video, mem, eax=0x0200, edx=row << 8)
        teletype(video, mem, f"row{row}")
    int10(video, mem, eax=0x0601, ebx=0x1E00, ecx=0x0000, edx=0x0403)   # rows 0-4, columns 0-3, 1 line up
    shown = screen(mem, video)
    assert [line[:4] for line in shown.lines[:5]] == ["row1", "row2", "row3", "row4", ""]
    assert shown.cells[4][0] == (" ", 0x1E)
    int10(video, mem, eax=0x0700, ebx=0x0700, ecx=0x0000, edx=0x184F)   # AL=0: clear the whole screen
    assert screen(mem, video).blank


def test_write_character_and_attribute_repeats_without_moving_the_cursor():
    mem, video, _ = machine()
    int10(video, mem, eax=0x0200, edx=0x0203)
    int10(video, mem, eax=0x0941, ebx=0x004E, ecx=3)                # AH=09h: 'A' in yellow on red x3
    int10(video, mem, eax=0x0A42, ebx=0x0000, ecx=1)                # AH=0Ah: 'B' keeping the attribute
    shown = screen(mem, video)
    assert shown.lines[2] == "   BAA" and shown.cells[2][3] == ("B", 0x4E)
    assert shown.cursor == (2, 3)
    assert int10(video, mem, eax=0x0800, ebx=0).ax == 0x4E42       # AH=08h reads it back


def test_write_string_with_and_without_attributes_and_cursor_update():
    mem, video, streamed = machine()
    mem.write(0x5000, b"Hello")
    int10(video, mem, eax=0x1301, ebx=0x002F, ecx=5, edx=0x0300, ebp=0x5000, es=0)
    shown = screen(mem, video)
    assert shown.lines[3] == "Hello" and shown.cells[3][0] == ("H", 0x2F) and shown.cursor == (3, 5)
    mem.write(0x5100, b"X\x1CY\x1D")
    int10(video, mem, eax=0x1302, ebx=0, ecx=2, edx=0x0500, ebp=0x0100, es=0x0500)   # mode 2: cursor stays
    shown = screen(mem, video)
    assert shown.lines[5] == "XY" and shown.cells[5][1] == ("Y", 0x1D) and shown.cursor == (3, 5)
    assert bytes(streamed) == b"HelloXY"


def test_write_string_from_beyond_ram_sets_carry_and_writes_nothing():
    mem, video, _ = machine()
    before = mem.read(layout.VGA_TEXT_ADDR, 4000)
    call = int10(video, mem, eax=0x1301, ecx=0x100, ebp=0xFFF0, es=0xFFFF)
    assert call.carry and mem.read(layout.VGA_TEXT_ADDR, 4000) == before


def test_set_mode_3_clears_homes_the_cursor_and_get_mode_reports_it():
    mem, video, _ = machine()
    teletype(video, mem, "junk")
    int10(video, mem, eax=0x0003)
    assert screen(mem, video).blank and screen(mem, video).cursor == (0, 0)
    got = int10(video, mem, eax=0x0F00)
    assert (got.ah, got.al, got.bh) == (80, 3, 0)
    teletype(video, mem, "kept")
    int10(video, mem, eax=0x0083)                                  # bit 7: keep the buffer
    assert screen(mem, video).lines[0] == "kept"


def test_graphics_modes_and_unknown_functions_are_unsupported_not_ignored():
    mem, video, _ = machine()
    with pytest.raises(Unsupported, match="13h") as err:
        int10(video, mem, eax=0x0013)
    assert err.value.selector == "AL=13h"
    with pytest.raises(Unsupported):
        int10(video, mem, eax=0x4F02)
    with pytest.raises(Unsupported):
        int10(video, mem, eax=0x0C00)


def test_select_page_shows_it():
    mem, video, _ = machine()
    int10(video, mem, eax=0x0501)
    assert video.registers.start_address == bda.PAGE_SIZE // 2
    assert mem.read(bda.ACTIVE_PAGE, 1) == b"\x01"
    teletype(video, mem, "p1")
    assert mem.read(layout.VGA_TEXT_ADDR + bda.PAGE_SIZE, 4) == b"p\x07" + b"1\x07"
    assert screen(mem, video).lines[0] == "p1"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 0xFFFFFFFF), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF),
                          st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF)),
                min_size=1, max_size=8))
def test_any_registers_give_an_answer_or_unsupported_and_touch_only_the_screen_and_the_bda(calls):
    mem, video, _ = machine()
    outside = [(0x500, layout.VGA_TEXT_ADDR - 0x500), (layout.VGA_TEXT_ADDR + layout.VGA_TEXT_SIZE, 0x1000)]
    before = [mem.read(addr, size) for addr, size in outside]
    for eax, ebx, ecx, edx, ebp, es in calls:
        try:
            int10(video, mem, eax=eax, ebx=ebx, ecx=ecx, edx=edx, ebp=ebp, es=es)
        except Unsupported:
            pass
    assert [mem.read(addr, size) for addr, size in outside] == before
    assert struct.unpack("<H", mem.read(bda.VIDEO_COLUMNS, 2))[0] == 80


def test_an_empty_string_beyond_ram_is_no_host_error():
    """AH=13h with CX=0 at FFFF:0100 with 1 MiB of RAM: nothing to read, so nothing fails."""
    mem, video, streamed = machine()
    call = int10(video, mem, eax=0x1301, ecx=0, ebp=0x0100, es=0xFFFF)
    assert not call.carry and bytes(streamed) == b""
