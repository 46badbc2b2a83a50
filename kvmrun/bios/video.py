"""int 10h: the video services of a VGA BIOS in its 80x25 colour text mode.

The text buffer is guest RAM at 0xB8000 (eight 4 KiB pages), the cursor of each page lives in the
BIOS data area, and the CRTC registers (devices/vga.py) show the active page and its cursor, so a
guest that mixes int 10h with writes of its own to the buffer or the CRTC sees one consistent screen.
Teletype output (AH=0Eh, and AH=13h's string) is also handed to `stream`, byte by byte, so a log keeps
what scrolled away. Functions follow Ralf Brown's interrupt list; graphics modes are not provided.
Pure: RAM and the registers come in.
"""
from __future__ import annotations

import struct

from .. import layout
from . import data_area as bda
from .call import BadBuffer, BiosCall, Unsupported

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Callable, Optional

BLANK_ATTRIBUTE = 0x07             # light grey on black: what mode set and teletype scrolling fill with
BELL, BACKSPACE, LINE_FEED, CARRIAGE_RETURN = 0x07, 0x08, 0x0A, 0x0D
TEXT_MODES = (0x02, 0x03)          # 80x25 (grey and colour: the same on a VGA)
_CLEAR_LATER = 0x80                # mode set: bit 7 keeps the buffer


class VideoServices:
    def __init__(self, registers=None, stream: Optional[Callable[[int], None]] = None):
        self.registers = registers                 # VgaRegisters, or None in tests that need none
        self.stream = stream or (lambda byte: None)

    # --- the BIOS data area's view of the screen ----------------------------------------------------
    def _word(self, call: BiosCall, addr: int) -> int:
        return struct.unpack("<H", call.read_linear(addr, 2))[0]

    def _put_word(self, call: BiosCall, addr: int, value: int) -> None:
        call.write_linear(addr, struct.pack("<H", value & 0xFFFF))

    def active_page(self, call: BiosCall) -> int:
        return call.read_linear(bda.ACTIVE_PAGE, 1)[0] % bda.PAGES

    def cursor(self, call: BiosCall, page: int):
        """(row, column) of `page`'s cursor, kept inside the screen."""
        column, row = call.read_linear(bda.CURSOR_POSITIONS + 2 * (page % bda.PAGES), 2)
        return min(row, bda.ROWS - 1), min(column, bda.COLUMNS - 1)

    def set_cursor(self, call: BiosCall, page: int, row: int, column: int) -> None:
        page %= bda.PAGES
        call.write_linear(bda.CURSOR_POSITIONS + 2 * page, bytes([column & 0xFF, row & 0xFF]))
        if page == self.active_page(call) and self.registers is not None:
            # Off-screen positions hide the cursor, as on a real CRTC; the cell is counted from the buffer.
            self.registers.set_cursor(page * bda.PAGE_SIZE // 2 + row * bda.COLUMNS + column)

    # --- cells -----------------------------------------------------------------------------------------
    def _cell_addr(self, page: int, row: int, column: int) -> int:
        return layout.VGA_TEXT_ADDR + (page % bda.PAGES) * bda.PAGE_SIZE + 2 * (row * bda.COLUMNS + column)

    def _write_cells(self, call: BiosCall, addr: int, data: bytes) -> None:
        call.write_linear(addr, data)
        if self.registers is not None:
            self.registers.host_wrote_text()

    def _scroll(self, call: BiosCall, page: int, lines: int, attribute: int, top: int, left: int,
                bottom: int, right: int, up: bool) -> None:
        """Move the window's rows by `lines` (0: clear it), filling with blanks of `attribute`."""
        bottom, right = min(bottom, bda.ROWS - 1), min(right, bda.COLUMNS - 1)
        if top > bottom or left > right:
            return
        height, width = bottom - top + 1, right - left + 1
        if lines == 0 or lines > height:
            lines = height
        blank = bytes([0x20, attribute]) * width
        rows = [call.read_linear(self._cell_addr(page, row, left), 2 * width) for row in range(top, bottom + 1)]
        moved = rows[lines:] + [blank] * lines if up else [blank] * lines + rows[:height - lines]
        for offset, row in enumerate(moved):
            if row != rows[offset]:
                self._write_cells(call, self._cell_addr(page, top + offset, left), row)

    def teletype(self, call: BiosCall, page: int, char: int) -> None:
        """One character as AH=0Eh writes it: controls move the cursor, others keep the cell's attribute,
        and a line feed on the last row scrolls the page up."""
        if char not in (BELL, BACKSPACE, LINE_FEED, CARRIAGE_RETURN):
            row, column = self.cursor(call, page)
            self._write_cells(call, self._cell_addr(page, row, column), bytes([char]))
            self._advance(call, page, char)
            return
        self.stream(char)
        row, column = self.cursor(call, page)
        if char == BACKSPACE:
            column = max(column - 1, 0)
        elif char == CARRIAGE_RETURN:
            column = 0
        elif char == LINE_FEED:
            row += 1
        self._place_cursor(call, page, row, column)

    def _advance(self, call: BiosCall, page: int, char: int) -> None:
        """After a character's cell is written: it goes to the stream and the cursor moves on."""
        self.stream(char)
        row, column = self.cursor(call, page)
        column += 1
        if column == bda.COLUMNS:
            column, row = 0, row + 1
        self._place_cursor(call, page, row, column)

    def _place_cursor(self, call: BiosCall, page: int, row: int, column: int) -> None:
        """The cursor at (row, column), the page scrolled up a line when that is the row below the last."""
        if row == bda.ROWS:
            row = bda.ROWS - 1
            self._scroll(call, page, 1, BLANK_ATTRIBUTE, 0, 0, bda.ROWS - 1, bda.COLUMNS - 1, up=True)
        self.set_cursor(call, page, row, column)

    # --- int 10h ---------------------------------------------------------------------------------------
    def int10(self, call: BiosCall) -> None:
        try:
            self._function(call)
        except BadBuffer:
            # Only AH=13h reads a caller's buffer; a string beyond RAM is written as far as it lies in it
            # on a real BIOS. kvmrun writes none of it and returns with CF set, which no caller checks
            # but which a trace shows.
            call.carry = True

    def _function(self, call: BiosCall) -> None:
        function = call.ah
        if function == 0x00:
            self._set_mode(call)
        elif function == 0x01:
            self._put_word(call, bda.CURSOR_SHAPE, call.cx)
            if self.registers is not None:
                self.registers.set_cursor_shape(call.ch, call.cl)
        elif function == 0x02:
            self.set_cursor(call, call.bh, call.dh, call.dl)
        elif function == 0x03:
            row, column = self.cursor(call, call.bh)
            call.dx = row << 8 | column
            call.cx = self._word(call, bda.CURSOR_SHAPE)
        elif function == 0x05:
            self._select_page(call, call.al)
        elif function in (0x06, 0x07):
            self._scroll(call, self.active_page(call), call.al, call.bh, call.ch, call.cl, call.dh, call.dl,
                         up=function == 0x06)
        elif function == 0x08:
            row, column = self.cursor(call, call.bh)
            char, attribute = call.read_linear(self._cell_addr(call.bh, row, column), 2)
            call.ax = attribute << 8 | char
        elif function in (0x09, 0x0A):
            self._write_repeated(call, with_attribute=function == 0x09)
        elif function == 0x0E:
            self.teletype(call, self.active_page(call), call.al)
        elif function == 0x0F:
            call.ah = bda.COLUMNS
            call.al = call.read_linear(bda.VIDEO_MODE, 1)[0]
            call.bh = self.active_page(call)
        elif function == 0x13:
            self._write_string(call)
        elif function == 0x1A and call.al == 0x00:
            call.al = 0x1A                      # supported: BL=active display, BH=alternate
            call.bx = 0x0008                    # VGA with a colour monitor, no alternate
        elif function == 0x12 and call.bl == 0x10:
            call.bx = 0x0003                    # colour, 256 KiB of video memory
            call.cx = 0x0009                    # feature bits 0, switch settings 9 (EGA+ colour)
        else:
            raise Unsupported(self._unsupported_why(call), selector=self._selector(call))

    @staticmethod
    def _selector(call: BiosCall) -> str:
        if call.ah in (0x1A,):
            return f"AL={call.al:02X}h"
        if call.ah == 0x12:
            return f"BL={call.bl:02X}h"
        return ""

    @staticmethod
    def _unsupported_why(call: BiosCall) -> str:
        if call.ah in (0x0B, 0x0C, 0x0D, 0x10, 0x11, 0x4F):
            return "kvmrun's video BIOS has the 80x25 text mode only: no graphics, palettes or fonts"
        return ""

    def _set_mode(self, call: BiosCall) -> None:
        mode = call.al & ~_CLEAR_LATER
        if mode not in TEXT_MODES:
            raise Unsupported(f"mode {mode:02X}h: kvmrun's video BIOS has the 80x25 text modes (02h, 03h) only",
                              selector=f"AL={call.al:02X}h")
        call.write_linear(bda.VIDEO_MODE, bytes([mode]))
        call.write_linear(bda.CURSOR_POSITIONS, bytes(2 * bda.PAGES))
        self._put_word(call, bda.CURSOR_SHAPE, bda.DEFAULT_CURSOR_SHAPE)
        if self.registers is not None:
            self.registers.set_cursor_shape(bda.DEFAULT_CURSOR_SHAPE >> 8, bda.DEFAULT_CURSOR_SHAPE & 0xFF)
        self._select_page(call, 0)
        if not call.al & _CLEAR_LATER:
            blank_buffer = bytes([0x20, BLANK_ATTRIBUTE]) * (bda.PAGES * bda.PAGE_SIZE // 2)
            self._write_cells(call, layout.VGA_TEXT_ADDR, blank_buffer)
        call.al = 0x30                          # what VGA BIOSes return for the text modes

    def _select_page(self, call: BiosCall, page: int) -> None:
        if page >= bda.PAGES:
            return                              # as a BIOS: out of range is ignored
        call.write_linear(bda.ACTIVE_PAGE, bytes([page]))
        self._put_word(call, bda.VIDEO_PAGE_START, page * bda.PAGE_SIZE)
        if self.registers is not None:
            self.registers.set_start_address(page * bda.PAGE_SIZE // 2)
        row, column = self.cursor(call, page)
        self.set_cursor(call, page, row, column)

    def _write_repeated(self, call: BiosCall, with_attribute: bool) -> None:
        """AH=09h/0Ah: CX copies of AL from the cursor on (not moving it), with BL or the cells' own
        attributes, as far as the page goes."""
        page = call.bh
        row, column = self.cursor(call, page)
        count = min(call.cx, bda.ROWS * bda.COLUMNS - (row * bda.COLUMNS + column))
        addr = self._cell_addr(page, row, column)
        if with_attribute:
            self._write_cells(call, addr, bytes([call.al, call.bl]) * count)
            return
        cells = bytearray(call.read_linear(addr, 2 * count))
        cells[0::2] = bytes([call.al]) * count
        self._write_cells(call, addr, bytes(cells))

    def _write_string(self, call: BiosCall) -> None:
        """AH=13h: CX characters from ES:BP at row DH, column DL of page BH. AL bit 1: the string
        alternates characters and attributes (else all get BL); bit 0: the cursor moves past it.
        Written on a copy of the page, read and written back once: CX may be 65535, and the device lock
        is held while a service runs (the run's timeout waits for it)."""
        mode, page, length = call.al, call.bh, call.cx
        if mode > 3:
            raise Unsupported(f"write string mode {mode:02X}h (RBIL defines 00h-03h)", selector=f"AL={mode:02X}h")
        with_attributes = bool(mode & 2)
        data = call.read(call.es, call.bp, length * (2 if with_attributes else 1))
        base = self._cell_addr(page, 0, 0)
        cells = bytearray(call.read_linear(base, 2 * bda.ROWS * bda.COLUMNS))
        original = bytes(cells)
        row, column = min(call.dh, bda.ROWS - 1), min(call.dl, bda.COLUMNS - 1)
        width = 2 * bda.COLUMNS
        for i in range(length):
            char = data[2 * i] if with_attributes else data[i]
            self.stream(char)
            if char == BELL:
                continue
            if char == BACKSPACE:
                column = max(column - 1, 0)
                continue
            if char == CARRIAGE_RETURN:
                column = 0
                continue
            if char == LINE_FEED:
                row += 1
            else:
                at = row * width + 2 * column
                cells[at:at + 2] = bytes([char, data[2 * i + 1] if with_attributes else call.bl])
                column += 1
                if column == bda.COLUMNS:
                    column, row = 0, row + 1
            if row == bda.ROWS:                  # scrolled up a line, as teletype does
                row = bda.ROWS - 1
                cells[:-width] = cells[width:]
                cells[-width:] = bytes([0x20, BLANK_ATTRIBUTE]) * bda.COLUMNS
        if cells != original:
            self._write_cells(call, base, bytes(cells))
        if mode & 1:
            self.set_cursor(call, page, row, column)
