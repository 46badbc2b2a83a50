"""The VGA text screen, without a VM: reading it from the window (screen.py), and showing it as text
and live on a terminal (screen_view.py), checked through a small terminal emulator."""
import re

import pytest
from hypothesis import given, settings, strategies as st

from kvmrun.devices.vga import VgaRegisters
from kvmrun.screen import COLUMNS, ROWS, Screen, read_screen, screen_from_bytes
from kvmrun.screen_view import TAIL_LIMIT, LiveScreen, ansi_rows, plain, sgr

WINDOW = 0x8000


def window_with(text: bytes, attribute: int = 0x07, at: int = 0) -> bytearray:
    window = bytearray(WINDOW)
    for i, byte in enumerate(text):
        window[2 * (at + i)] = byte
        window[2 * (at + i) + 1] = attribute
    return window


def registers(start=0, cursor=0, cursor_visible=True, blink=True) -> VgaRegisters:
    regs = VgaRegisters()
    regs.crtc[0x0C], regs.crtc[0x0D] = start >> 8, start & 0xFF
    regs.crtc[0x0E], regs.crtc[0x0F] = cursor >> 8, cursor & 0xFF
    if not cursor_visible:
        regs.crtc[0x0A] |= 0x20
    if not blink:
        regs.attributes[0x10] &= ~0x08
    return regs


# --- reading the screen ------------------------------------------------------------------------------

def test_cells_hold_characters_and_attributes():
    screen = read_screen(bytes(window_with(b"Hi", 0x1F)), registers(cursor=2))
    assert (screen.columns, screen.rows) == (80, 25)
    assert len(screen.cells) == 25 and all(len(row) == 80 for row in screen.cells)
    assert screen.cells[0][:3] == (("H", 0x1F), ("i", 0x1F), (" ", 0x00))
    assert screen.text == "Hi"
    assert screen.cursor == (0, 2)


def test_text_strips_trailing_spaces_and_blank_rows_but_keeps_leading_ones():
    window = window_with(b"top   ", at=80)
    window[2 * 240:2 * 243] = b"e\x07\x00\x07n\x07"      # NUL shows as a space
    screen = read_screen(bytes(window), registers())
    assert screen.text == "\ntop\n\ne n"
    assert screen.lines[1] == "top" and len(screen.lines) == 25


def test_code_page_437_with_the_fonts_graphics_for_control_codes():
    screen = read_screen(bytes(window_with(bytes([0x01, 0x03, 0xC9, 0xCD, 0xBB, 0xDB, 0x7F, 0xE1, 0x00, 0x41]))),
                         registers())
    assert screen.text == "☺♥╔═╗█⌂ß A"


def test_an_untouched_buffer_is_blank_and_colours_alone_are_blank():
    assert read_screen(bytes(WINDOW), registers()).blank
    assert read_screen(bytes(window_with(b"    ", 0x1F)), registers()).blank
    assert not read_screen(bytes(window_with(b".")), registers()).blank


def test_the_start_address_scrolls():
    window = window_with(b"line0".ljust(80) + b"line1")
    screen = read_screen(bytes(window), registers(start=80, cursor=85))
    assert screen.text == "line1" and screen.cursor == (0, 5)


def test_cells_wrap_within_the_window():
    cells = WINDOW // 2
    window = window_with(b"end", at=cells - 3)
    window[0:2] = b"S\x07"
    screen = read_screen(bytes(window), registers(start=cells - 3, cursor=1))
    assert screen.lines[0] == "endS"
    assert screen.cursor == (0, 4)                     # cell 1 is the screen's fifth


def test_cursor_hidden_or_off_screen_is_none():
    window = bytes(window_with(b"x"))
    assert read_screen(window, registers(cursor=5, cursor_visible=False)).cursor is None
    assert read_screen(window, registers(cursor=COLUMNS * ROWS)).cursor is None       # 0x7D0: hidden the usual way
    assert read_screen(window, registers(start=80, cursor=79)).cursor is None
    assert read_screen(window, registers(cursor=COLUMNS * ROWS - 1)).cursor == (24, 79)


def test_blink_comes_from_the_attribute_controller():
    window = bytes(window_with(b"x", 0x9F))
    assert read_screen(window, registers()).blink
    assert not read_screen(window, registers(blink=False)).blink


def test_a_window_too_small_is_an_error():
    with pytest.raises(ValueError, match="fewer than 2000 cells"):
        read_screen(bytes(100), registers())


def test_screens_compare_by_value_and_show_their_text():
    a = read_screen(bytes(window_with(b"same")), registers(cursor=4))
    assert a == read_screen(bytes(window_with(b"same")), registers(cursor=4))
    assert a != read_screen(bytes(window_with(b"same")), registers(cursor=3))
    assert a != read_screen(bytes(window_with(b"same", 0x1E)), registers(cursor=4))
    assert repr(a) == "Screen(80x25, cursor=(0, 4), text='same')"
    assert str(a) == "same"
    assert hash(a) == hash(read_screen(bytes(window_with(b"same")), registers(cursor=4)))


# --- plain text and colours --------------------------------------------------------------------------

def test_plain_is_the_text_between_markers_and_nothing_when_blank():
    screen = read_screen(bytes(window_with(b"Hello")), registers())
    assert plain(screen) == "--- screen 80x25 ---\nHello\n--- end of screen ---\n"
    assert plain(read_screen(bytes(WINDOW), registers())) == ""


def test_vga_colours_become_ansi_colours():
    # VGA: black blue green cyan red magenta brown grey; ANSI: black red green yellow blue magenta cyan white
    assert [sgr(colour) for colour in range(8)] == [f"\x1b[0;{30 + ansi};40m" for ansi in (0, 4, 2, 6, 1, 5, 3, 7)]
    assert sgr(0x0E) == "\x1b[0;93;40m"              # yellow: bright brown
    assert sgr(0x4F) == "\x1b[0;97;41m"              # white on red
    assert sgr(0x9F) == "\x1b[0;97;44m"              # blinking: bit 7 not shown
    assert sgr(0x9F, blink=False) == "\x1b[0;97;104m"    # bright background instead


def test_ansi_rows_change_colour_only_where_attributes_do_and_are_cut_to_the_width():
    window = window_with(b"ab", 0x1F)
    window[4:6] = b"c\x4E"
    rows = ansi_rows(read_screen(bytes(window), registers()), 5)
    assert len(rows) == 25
    assert rows[0] == "\x1b[0;97;44mab\x1b[0;93;41mc\x1b[0;30;40m  \x1b[0m"
    assert all(_visible(row) == "     " for row in rows[1:])
    assert ansi_rows(read_screen(bytes(window), registers()), 0)[0] == ""
    assert len(_visible(ansi_rows(read_screen(bytes(window), registers()), 200)[0])) == 80


def _visible(row: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", row)


# --- a terminal to check the live view with ----------------------------------------------------------

class Terminal:
    """Enough of a VT100 for the live view: printable characters with auto-wrap (the pending wrap of
    the last column as xterm has it) and DECAWM to turn it off, CR, LF (with ONLCR, as kvmrun's terminal
    keeps output processing), tab, backspace, cursor up and forward, erase in display and line, SGR
    and OSC (BEL-terminated) ignored; other sequences fail the test."""

    def __init__(self, width: int, height: int):
        self.width, self.height = width, height
        self.grid = [[" "] * width for _ in range(height)]
        self.scrolled: list = []
        self.row = self.col = 0
        self.wrap_pending = False
        self.autowrap = True

    def feed(self, data: bytes) -> None:
        text = data.decode("utf-8")
        i = 0
        while i < len(text):
            char = text[i]
            if text.startswith("\x1b]", i):                 # OSC (a title): shows nothing
                i = text.index("\x07", i) + 1
                continue
            if char == "\x1b":
                match = re.match(r"\x1b\[(\??[0-9;]*)([A-Za-z])", text[i:])
                assert match, f"unexpected sequence {text[i:i + 8]!r}"
                self._csi(match.group(1), match.group(2))
                i += match.end()
                continue
            i += 1
            if char == "\r":
                self.col, self.wrap_pending = 0, False
            elif char == "\n":
                self.col, self.wrap_pending = 0, False
                self._line_feed()
            elif char == "\t":
                self.col, self.wrap_pending = min(self.width - 1, self.col // 8 * 8 + 8), False
            elif char == "\b":
                self.col, self.wrap_pending = max(0, self.col - 1), False
            else:
                assert char >= " ", repr(char)
                self._print(char)

    def _print(self, char: str) -> None:
        if self.wrap_pending:
            self.col, self.wrap_pending = 0, False
            self._line_feed()
        self.grid[self.row][self.col] = char
        if self.col == self.width - 1:
            self.wrap_pending = self.autowrap
        else:
            self.col += 1

    def _line_feed(self) -> None:
        if self.row == self.height - 1:
            self.scrolled.append(self.grid.pop(0))
            self.grid.append([" "] * self.width)
        else:
            self.row += 1

    def _csi(self, params: str, final: str) -> None:
        n = int(params) if params.isdigit() else 0
        if final == "A":
            self.row, self.wrap_pending = max(0, self.row - max(n, 1)), False
        elif final == "C":
            self.col, self.wrap_pending = min(self.width - 1, self.col + max(n, 1)), False
        elif final == "J" and n == 0:
            self.grid[self.row][self.col:] = [" "] * (self.width - self.col)
            for row in range(self.row + 1, self.height):
                self.grid[row] = [" "] * self.width
        elif final == "K" and n == 0:
            self.grid[self.row][self.col:] = [" "] * (self.width - self.col)
        elif params == "?7" and final in "hl":
            self.autowrap = final == "h"
        elif final != "m":
            raise AssertionError(f"unexpected sequence {params}{final}")

    def lines(self) -> list:
        """Everything shown, scrolled-off rows first, trailing spaces and blank rows dropped."""
        lines = ["".join(row).rstrip() for row in self.scrolled + self.grid]
        while lines and not lines[-1]:
            lines.pop()
        return lines

    def visible(self) -> list:
        return ["".join(row).rstrip() for row in self.grid]


def screen_of(*rows: str, cursor=None, attribute=0x07) -> Screen:
    data = bytearray()
    for row in range(ROWS):
        text = rows[row] if row < len(rows) else ""
        for char in text.ljust(COLUMNS).encode("ascii"):
            data += bytes([char, attribute])
    return screen_from_bytes(bytes(data), cursor=cursor)


def frame(screen: Screen, width: int, rows=None) -> list:
    """The frame as the terminal should show it: the header and the screen's rows, cut to the width."""
    lines = ["--- screen 80x25 ---"[:width]] + [line[:width].rstrip() for line in screen.lines]
    lines = lines if rows is None else lines[:rows + 1]
    while not lines[-1]:                               # as Terminal.lines() shows them
        lines.pop()
    return lines


def drive(live: LiveScreen, term: Terminal, *steps) -> None:
    for step in steps:
        term.feed(live.update(step) if isinstance(step, Screen) else live.serial(step))


# --- the live view -----------------------------------------------------------------------------------

def test_until_the_first_update_serial_passes_through_and_finish_adds_nothing():
    live = LiveScreen(80, 30)
    assert live.serial(b"boot\x1b[31mred\npartial") == b"boot\x1b[31mred\npartial"
    assert live.finish() == b""
    assert live.serial(b"more\n") == b"more\n"


def test_serial_lines_go_above_and_the_frame_stays_at_the_bottom():
    term, live = Terminal(60, 40), LiveScreen(60, 40)
    hello = screen_of("Hello, screen")
    drive(live, term, b"one\n", hello, b"two\nthr", b"ee\nfour\n")
    assert term.lines() == ["one", "two", "three", "four"] + frame(hello, 60)
    drive(live, term, b"fi")
    assert term.lines() == ["one", "two", "three", "four", "fi"] + frame(hello, 60)


def test_the_terminal_cursor_is_left_where_the_guests_cursor_is():
    term, live = Terminal(90, 40), LiveScreen(90, 40)
    screen = screen_of("C:\\>", "", cursor=(0, 3))
    drive(live, term, b"log\n", screen)
    top = term.visible().index("--- screen 80x25 ---") + 1
    assert (term.row, term.col) == (top, 3)
    moved = screen_of("C:\\>dir", cursor=(1, 0))
    drive(live, term, moved, b"more log\n")
    assert (term.row, term.col) == (term.visible().index("--- screen 80x25 ---") + 2, 0)
    assert term.lines() == ["log", "more log"] + frame(moved, 90)


def test_an_unchanged_screen_draws_nothing():
    live = LiveScreen(80, 30)
    screen = screen_of("x")
    assert live.update(screen)
    assert live.update(screen_of("x")) == b""


def test_finish_leaves_the_tail_and_the_whole_frame_with_the_prompt_below():
    term, live = Terminal(100, 20), LiveScreen(100, 20)
    screen = screen_of(*[f"row {i}" for i in range(25)], cursor=(3, 3))
    drive(live, term, b"done\nlogin: ", screen)
    term.feed(live.finish())
    assert term.lines() == ["done", "login:"] + frame(screen, 100)      # all 25 rows, though 20 are shown live
    assert term.col == 0 and term.visible()[term.row] == ""
    assert live.finish() == b"" and live.update(screen_of("later")) == b""
    assert live.serial(b"after\n") == b"after\n"


def test_a_line_already_written_before_the_first_update_is_taken_into_the_region():
    term, live = Terminal(60, 40), LiveScreen(60, 40)
    screen = screen_of("S")
    drive(live, term, b"first\nLoading... ", screen, b"done\n")
    assert term.lines() == ["first", "Loading... done"] + frame(screen, 60)


def test_a_long_or_unknown_line_before_the_first_update_is_left_and_the_region_starts_below():
    for tail, shown in ((b"x" * 70, "x" * 70), (b"\x1b[5Cmoved", "     moved")):   # a cursor movement
        term, live = Terminal(60, 40), LiveScreen(60, 40)
        screen = screen_of("S")
        drive(live, term, b"first\n" + tail, screen, b"rest\n")
        assert term.lines() == ["first"] + [shown[i:i + 60] for i in range(0, len(shown), 60)] + ["rest"] \
            + frame(screen, 60), tail


def test_the_unfinished_line_shows_as_a_terminal_would_draw_it():
    screen = screen_of("S")
    for typed, shown in ((b"$ lss\b \b -l", "$ ls -l"), (b"$ abc\b\b\x1b[Kx", "$ ax"),
                         (b"a\tb\x1b[31m!", "a       b!"), (b"50%\r75%", "75%"), ("é 日本".encode(), "é 日本")):
        term, live = Terminal(60, 40), LiveScreen(60, 40)
        drive(live, term, screen, typed)
        assert term.lines() == [shown] + frame(screen, 60)
        drive(live, term, b"\n")                      # completed: the raw bytes went out, drawn the same
        assert term.lines() == [shown] + frame(screen, 60)


def test_an_unfinished_line_wider_than_the_terminal_shows_its_end():
    term, live = Terminal(30, 40), LiveScreen(30, 40)
    screen = screen_of("S")
    drive(live, term, screen, b"progress: " + b"." * 40 + b" 50%")
    assert term.lines()[0] == "." * 26 + " 50%"
    assert all(len(line) <= 30 for line in term.lines())


def test_an_endless_line_is_written_out_once_over_the_limit():
    term, live = Terminal(80, 30), LiveScreen(80, 30)
    screen = screen_of("S")
    drive(live, term, screen, b"." * (TAIL_LIMIT + 1), b"next")
    lines = term.lines()
    assert "".join(lines[:-len(frame(screen, 80)) - 1]) == "." * (TAIL_LIMIT + 1)
    assert lines[-len(frame(screen, 80)) - 1:] == ["next"] + frame(screen, 80)


def test_a_small_terminal_shows_the_rows_around_the_cursor_and_never_wraps():
    term, live = Terminal(40, 12), LiveScreen(40, 12)
    screen = screen_of(*[f"row {i:02} " + "x" * 60 for i in range(20)], cursor=(19, 2))
    drive(live, term, b"a\n", screen, b"b\n")
    visible = term.visible()                           # the screen's rows before the header
    assert [line[:6] for line in visible] == [f"row {i:02}" for i in range(8, 20)]
    assert term.lines()[:2] == ["a", "b"]
    assert all(len(line) <= 40 for line in term.lines())
    assert (term.row, term.col) == (11, 2)
    top = screen_of("top", cursor=(0, 0))
    drive(live, term, top)
    assert term.visible()[0] == "top"


def test_resize_redraws_for_the_new_width():
    term, live = Terminal(60, 40), LiveScreen(60, 40)
    screen = screen_of("x" * 80)
    drive(live, term, b"log\n", screen)
    term.feed(live.resize(50, 40))
    term.width = 50                                    # as a terminal that cuts rows when narrowed
    for row in range(term.height):
        term.grid[row] = term.grid[row][:50]
    assert term.lines() == ["log"] + frame(screen, 50)
    assert LiveScreen(80, 25).resize(60, 20) == b""    # nothing drawn yet


def test_a_tiny_terminal_shows_the_rows_that_fit_and_keeps_the_serial_lines_above():
    term, live = Terminal(20, 2), LiveScreen(20, 2)
    drive(live, term, screen_of("S"), b"one\ntwo\n")
    assert term.lines() == ["one", "two", "S"]
    assert term.visible() == ["S", ""]


texts = st.text(alphabet="abc \n", max_size=90)
screens = st.builds(lambda rows, row, col, visible: screen_of(*rows, cursor=(row, col) if visible else None),
                    st.lists(st.text(alphabet="xyz ", max_size=COLUMNS), max_size=ROWS),
                    st.integers(0, ROWS - 1), st.integers(0, COLUMNS - 1), st.booleans())


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(texts, screens), max_size=30), st.integers(20, 100), st.integers(2, 30))
def test_serial_and_screen_never_garble_each_other(steps, width, height):
    term, live = Terminal(width, height), LiveScreen(width, height)
    lines: list = []                                   # the model: completed serial lines
    tail = ""
    screen = None
    for step in steps:
        if isinstance(step, Screen):
            term.feed(live.update(step))
            if screen is None and tail and len(tail) >= width:
                lines.append(tail)                     # too long to take into the region: left as it is
                tail = ""
            screen = step
        else:
            term.feed(live.serial(step.encode()))
            *done, tail = (tail + step).split("\n")
            lines += done
        shown = term.lines()
        serial = _shown_rows(lines if screen is not None else lines + ([tail] if tail else []), width)
        assert (shown + [""] * len(serial))[:len(serial)] == serial      # the serial output, intact
        if screen is None:
            assert shown == _without_blank_end(serial)
            continue
        assert all(len(row) <= width for row in shown[len(serial):])
        row_of_first, firsts = _region(shown[len(serial):], screen, tail, width, height)
        if screen.cursor is not None and screen.cursor[1] < width and firsts:
            row, column = screen.cursor                # the terminal's cursor is on the guest's
            assert (len(term.scrolled) + term.row, term.col) in \
                [(len(serial) + row_of_first + row - first, column) for first in firsts]
    term.feed(live.finish())
    if screen is not None:
        serial = _shown_rows(lines + ([tail] if tail else []), width)
        assert term.lines() == serial + frame(screen, width)
        assert term.col == 0 and not term.visible()[term.row]


def _shown_rows(lines: list, width: int) -> list:
    return [chunk.rstrip() for line in lines for chunk in _rows(line, width)]


def _without_blank_end(lines: list) -> list:
    lines = list(lines)
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _region(shown: list, screen: Screen, tail: str, width: int, height: int):
    """Checks the live region: the unfinished line, then as many consecutive screen rows as fit in the
    terminal's height, with the header above them if it fits too. Returns the first screen row's index in
    the region, and which screen rows it may be (blank rows look alike); the cursor's row must be in sight."""
    top = [tail[-width:].rstrip()] if tail else []
    count = min(ROWS, height - len(top))
    if count <= 0:
        assert shown == _without_blank_end(top)
        return 0, []
    rows = [line[:width].rstrip() for line in screen.lines]
    header = ["--- screen 80x25 ---"[:width]] if len(top) + count < height else []
    firsts = [first for first in range(ROWS - count + 1)
              if shown == _without_blank_end(top + header + rows[first:first + count])
              and (screen.cursor is None or first <= screen.cursor[0] < first + count)]
    assert firsts, f"not a region: {shown}"
    return len(top) + len(header), firsts


def _rows(line: str, width: int) -> list:
    return [line[i:i + width] for i in range(0, max(len(line), 1), width)]


def test_the_written_out_upper_half_of_code_page_437_is_pythons():
    from kvmrun import screen
    assert screen._UPPER_HALF == bytes(range(0x80, 0x100)).decode("cp437")
