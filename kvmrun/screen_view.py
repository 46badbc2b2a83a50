"""Showing the VGA screen: as plain text after the run (CI logs), and live on a terminal below the
serial output while the guest runs.

The live view (LiveScreen) keeps a region at the bottom of the terminal: the serial output's unfinished
last line, a header, then the screen's rows. Serial output goes above it: the region is erased, the
completed lines are written as the guest sent them, and the region is drawn again. It only works if
the number of terminal rows the region takes is known exactly: the region is never taller than the
terminal, and it is drawn with auto-wrap off (DECAWM), so a row as wide as the terminal takes one row
and never scrolls it. Where the terminal is short, the unfinished line comes first, then as many of
the screen's rows as fit, then the header; on 80x25 a screen alone shows whole.

Colours: VGA attributes become ANSI SGR codes. With blinking on (the BIOS default), attribute bit 7
is not shown (a blinking log is unreadable) and the background is bits 4-6; when the guest turned
blinking off, bit 7 selects a bright background, as on the VGA.
"""
from __future__ import annotations

import unicodedata

from .memo import memoized
from .screen import Screen

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import List, Optional, Tuple
    from re import Pattern


@memoized(64)
def _compiled(pattern: str) -> Pattern[str]:
    """A regular expression compiled when the live view first needs it: a screen shown as text after
    the run does not import `re` (~3 ms of start-up here)."""
    import re
    return re.compile(pattern)

# VGA colour numbers (black, blue, green, cyan, red, magenta, brown, light grey) -> ANSI's (black, red,
# green, yellow, blue, magenta, cyan, white).
VGA_TO_ANSI = (0, 4, 2, 6, 1, 5, 3, 7)
RESET = "\x1b[0m"
NO_WRAP, WRAP = "\x1b[?7l", "\x1b[?7h"   # auto-wrap (DECAWM) off while rows are drawn, and on again
TAIL_LIMIT = 4096          # an unfinished serial line longer than this is written out, continued below


def plain(screen: Screen) -> str:
    """The screen as text between two marker lines, for logs; "" when no character shows."""
    if screen.blank:
        return ""
    return f"{_header(screen)}\n{screen.text}\n--- end of screen ---\n"


def _header(screen: Screen) -> str:
    return f"--- screen {screen.columns}x{screen.rows} ---"


def _header_row(screen: Screen, width: int) -> str:
    return RESET + _header(screen)[:max(0, width)]


def sgr(attribute: int, blink: bool = True) -> str:
    """The SGR sequence that shows a VGA attribute's colours."""
    foreground = attribute & 0x0F
    background = attribute >> 4 & (0x07 if blink else 0x0F)
    fg = (30 if foreground < 8 else 90) + VGA_TO_ANSI[foreground & 7]
    bg = (40 if background < 8 else 100) + VGA_TO_ANSI[background & 7]
    return f"\x1b[0;{fg};{bg}m"


def ansi_rows(screen: Screen, width: int) -> List[str]:
    """Each row of the screen in colour, at most `width` cells (cut on the right), ending in a reset."""
    width = max(0, min(width, screen.columns))
    rows = []
    for row in screen.cells:
        parts = []
        current = -1
        for char, attribute in row[:width]:
            if attribute != current:
                parts.append(sgr(attribute, screen.blink))
                current = attribute
            parts.append(char)
        rows.append("".join(parts) + RESET if parts else "")
    return rows


# --- the live view ---------------------------------------------------------------------------------

_ESCAPE = r"\x1b(?:\[[0-?]*[ -/]*[@-~]?|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[ -/]*[0-~]?)"


def _line_shown(tail: bytes) -> str:
    """What an unfinished serial line shows on a terminal, roughly: carriage returns, backspaces, tabs
    and erase-to-end-of-line applied, other escape sequences and controls dropped."""
    text = tail.decode("utf-8", "replace")
    line: List[str] = []
    column = 0
    position = 0
    while position < len(text):
        char = text[position]
        if char == "\x1b":
            match = _compiled(_ESCAPE).match(text, position)
            sequence = match.group() if match else char
            if sequence in ("\x1b[K", "\x1b[0K"):
                del line[column:]
            elif sequence == "\x1b[2K":
                line[:] = " " * len(line)
            position += len(sequence)
            continue
        position += 1
        if char == "\r":
            column = 0
        elif char == "\b":
            column = max(0, column - 1)
        elif char == "\t":
            for _ in range(8 - column % 8):
                column = _put(line, column, " ")
        elif _width(char):
            column = _put(line, column, char)
    return "".join(line)


def _put(line: List[str], column: int, char: str) -> int:
    if column < len(line):
        line[column] = char
    else:
        line.extend(" " * (column - len(line)))
        line.append(char)
    return column + 1


def _width(char: str) -> int:
    """Columns a character takes, erring wide: 0 for controls and combining marks (dropped), 2 for
    wide, full-width and ambiguous ones (some terminals draw those wide)."""
    if unicodedata.category(char)[0] in "CM" or char in "\u2028\u2029":
        return 0
    return 1 if unicodedata.east_asian_width(char) in ("Na", "N", "H") else 2


def _fit(text: str, width: int) -> str:
    """The end of `text` that takes at most `width` columns."""
    used = 0
    start = len(text)
    while start > 0 and used + _width(text[start - 1]) <= width:
        start -= 1
        used += _width(text[start])
    return text[start:]


# Escape sequences that leave the cursor where it is: colours (SGR), erasing in the line, titles (OSC).
_IN_PLACE = r"\x1b\[[0-9;:]*[mK]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"


def _fits_one_row(tail: bytes, width: int) -> bool:
    """Whether a line written as is stayed on one row: the cursor never reached the last column,
    counting every character as wide as it may be drawn. Only what moves the cursor knowably within
    the row is allowed: printable characters, CR, backspace, tab (stops every 8 columns), BEL and
    the sequences above; anything else (a cursor movement, a half-written sequence) may leave it
    anywhere."""
    text = tail.decode("utf-8", "replace")
    column = position = 0
    while position < len(text):
        char = text[position]
        if char == "\x1b":
            match = _compiled(_IN_PLACE).match(text, position)
            if match is None:
                return False
            position = match.end()
            continue
        position += 1
        if char == "\r":
            column = 0
        elif char == "\b":
            column = max(0, column - 1)
        elif char == "\t":
            column = column // 8 * 8 + 8
        elif char == "\x07":
            continue
        elif unicodedata.category(char) == "Cc":
            return False
        else:
            column += _width(char) or 2          # combining marks too: some terminals space them
        if column >= width:
            return False
    return True


def _last_line(tail: bytes, data: bytes) -> bytes:
    cut = data.rfind(b"\n")
    return tail + data if cut < 0 else data[cut + 1:]


class LiveScreen:
    """A terminal compositor: each method returns the bytes to write to the terminal, in the order of
    the calls. Until the first `update` (a guest that never touches the screen) serial output passes
    through unchanged; after `finish` too."""

    def __init__(self, width: int, height: int):
        self.width = width
        self.height = height
        self._screen: Optional[Screen] = None
        self._tail = b""                   # the serial's unfinished last line
        self._drawn_rows = 0               # rows the region takes on the terminal now
        self._cursor_row = 0               # the row of the region the terminal's cursor was left on
        self._finished = False

    def serial(self, data: bytes) -> bytes:
        """Serial output: completed lines written above the region, the unfinished one shown in it."""
        if self._screen is None or self._finished:
            self._tail = _last_line(self._tail, data)[-TAIL_LIMIT:]
            return data
        if not data:
            return b""
        cut = data.rfind(b"\n")
        if cut < 0:
            lines, self._tail = b"", self._tail + data
        else:
            lines, self._tail = self._tail + data[:cut + 1], data[cut + 1:]
        if len(self._tail) > TAIL_LIMIT:   # the terminal wraps it anyway: continued on the next line
            lines, self._tail = lines + self._tail + b"\r\n", b""
        return self._erase() + lines + self._draw()

    def update(self, screen: Screen) -> bytes:
        """A new screen: the region drawn again if it changed (drawn for the first time, on the first)."""
        if self._finished or screen == self._screen:
            return b""
        start = self._erase() if self._screen is not None else self._adopt_tail()
        self._screen = screen
        return start + self._draw()

    def resize(self, width: int, height: int) -> bytes:
        """The terminal's new size: the region erased and drawn again to fit. Best effort: a terminal
        that rewrapped the old rows on shrinking keeps some of them above."""
        erase = self._erase() if not self._finished else b""
        self.width, self.height = width, height
        return erase + self._draw() if self._screen is not None and not self._finished else b""

    def finish(self) -> bytes:
        """The run is over: the unfinished serial line written as the guest sent it, the whole final
        screen below it, and the cursor on the line after, for the shell prompt."""
        if self._finished:
            return b""
        self._finished = True
        if self._screen is None:
            return b""
        out = self._erase()
        if self._tail:
            out += self._tail + b"\r\n"
            self._tail = b""
        rows = [_header_row(self._screen, self.width)] + ansi_rows(self._screen, self.width)
        return out + (NO_WRAP + "\r" + "\r\n".join(rows) + WRAP + "\r\n").encode()

    # --- the region ---------------------------------------------------------------------------------

    def _adopt_tail(self) -> bytes:
        """Before the first draw: an unfinished line already on the terminal is taken into the region
        when it surely takes one row (erased, shown there, written in full once complete); otherwise
        the region starts on the next line."""
        if not self._tail:
            return b""
        if _fits_one_row(self._tail, self.width):
            return b"\r\x1b[K"
        self._tail = b""
        return b"\r\n"

    def _erase(self) -> bytes:
        if not self._drawn_rows:
            return b""
        self._drawn_rows = 0
        up = f"\x1b[{self._cursor_row}A" if self._cursor_row else ""
        # Erasing to the end from the top-left corner would have tmux (scroll-on-clear) push the whole
        # screen into its history, as for a clear: the region's first row is erased on its own, the
        # rest from column 1.
        return f"{up}\r\x1b[K\x1b[C\x1b[J\r".encode()

    def _draw(self) -> bytes:
        screen = self._screen
        if screen is None:
            return b""
        width, budget = self.width, self.height
        rows: List[str] = []
        if self._tail and budget > 0:
            rows.append(RESET + _fit(_line_shown(self._tail), width))
        frame_rows = min(screen.rows, budget - len(rows))
        cursor_at: Optional[Tuple[int, int]] = None
        if frame_rows > 0:
            if len(rows) + frame_rows < budget:  # room for the header too
                rows.append(_header_row(screen, width))
            first = _first_row(screen, frame_rows)
            shown = ansi_rows(screen, width)[first:first + frame_rows]
            if screen.cursor is not None:
                row, column = screen.cursor
                if first <= row < first + len(shown) and column < width:
                    cursor_at = (len(rows) + row - first, column)
            rows += shown
        if not rows:
            return b""
        self._drawn_rows = len(rows)
        out = NO_WRAP + "\r" + "\r\n".join(rows) + WRAP
        self._cursor_row = len(rows) - 1
        if cursor_at is not None:
            row, column = cursor_at
            up = self._cursor_row - row
            out += (f"\x1b[{up}A" if up else "") + "\r" + (f"\x1b[{column}C" if column else "")
            self._cursor_row = row
        return out.encode()


def _first_row(screen: Screen, count: int) -> int:
    """The first of `count` rows to show when not all fit: from the top, unless that leaves out the
    cursor or the last row with text, then the rows ending with whichever is lower; the cursor's row
    always in sight."""
    if count >= screen.rows:
        return 0
    lines = screen.lines
    last = max((i for i, line in enumerate(lines) if line), default=0)
    if screen.cursor is not None:
        last = max(last, screen.cursor[0])
    first = max(0, min(screen.rows - count, last + 1 - count))
    return min(first, screen.cursor[0]) if screen.cursor is not None else first
