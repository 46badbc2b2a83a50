"""The VGA text screen as a value: 80x25 cells of (character, attribute) and the cursor, read from
the text buffer's window and the VGA registers (devices/vga.py). What `Result.screen` holds.
"""
from __future__ import annotations

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import NamedTuple, Optional, Protocol, Tuple
else:
    from .named_tuple import NamedTuple

COLUMNS = 80
ROWS = 25

if TYPE_CHECKING:                 # types for mypy, not names at run time
    Cell = Tuple[str, int]                 # (character, attribute byte)

    class ScreenRegisters(Protocol):
        """What the screen needs from the VGA registers (VgaRegisters has it)."""
        start_address: int                 # the cell shown top left, counted from the window's start
        cursor_offset: int                 # the cell the cursor is at, counted the same way
        cursor_visible: bool
        blink_enabled: bool                # attribute bit 7 blinks, rather than selecting a bright background


# Bytes 0x80-0xFF in code page 437, as bytes(range(0x80, 0x100)).decode("cp437") gives them (a test
# checks): written out, since importing the codec costs a screen's first use ~1 ms of start-up here.
_UPPER_HALF = ("ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌"
               "█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\xa0")


def _code_page_437() -> Tuple[str, ...]:
    """Each byte's character as the VGA's ROM font draws it: code page 437 with its graphic characters
    for the control codes 0x01-0x1F and 0x7F (Python's cp437 codec keeps those as controls); NUL shows
    as a space."""
    controls = " ☺☻♥♦♣♠•◘○◙♂♀♪♫☼►◄↕‼¶§▬↨↑↓→←∟↔▲▼"
    return tuple(controls) + tuple(bytes(range(0x20, 0x7F)).decode("ascii")) + ("⌂",) \
        + tuple(_UPPER_HALF)


CODE_PAGE_437 = _code_page_437()


class Screen(NamedTuple):
    """What the screen shows. `cells[row][column]` is (character, attribute): the character decoded
    from code page 437, the attribute byte as the guest wrote it (foreground bits 0-3, background bits
    4-6, bit 7 blink or bright background as `blink` says). `cursor` is (row, column), None when the
    cursor is hidden or outside the screen."""
    columns: int
    rows: int
    cells: Tuple[Tuple[Cell, ...], ...]
    cursor: Optional[Tuple[int, int]] = None
    blink: bool = True

    @property
    def lines(self) -> Tuple[str, ...]:
        """Each row's characters, trailing spaces stripped."""
        return tuple("".join(char for char, _ in row).rstrip(" ") for row in self.cells)

    @property
    def text(self) -> str:
        """The rows, trailing spaces and trailing blank rows dropped, joined by newlines."""
        lines = list(self.lines)
        while lines and not lines[-1]:
            lines.pop()
        return "\n".join(lines)

    @property
    def blank(self) -> bool:
        """No character shows (colours alone do not count)."""
        return not any(self.lines)

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Screen({self.columns}x{self.rows}, cursor={self.cursor!r}, text={self.text!r})"


def screen_from_bytes(data: bytes, columns: int = COLUMNS, rows: int = ROWS, cursor: Optional[Tuple[int, int]] = None,
                      blink: bool = True) -> Screen:
    """A screen from columns*rows (character, attribute) byte pairs, as the text buffer holds them."""
    chars = [CODE_PAGE_437[byte] for byte in data[0::2]]
    attributes = data[1::2]
    cells = tuple(tuple(zip(chars[row * columns:(row + 1) * columns], attributes[row * columns:(row + 1) * columns]))
                  for row in range(rows))
    return Screen(columns, rows, cells, cursor, blink)


def read_screen(window: bytes, registers: ScreenRegisters) -> Screen:
    """The screen as the VGA shows it: COLUMNS x ROWS cells from the text buffer's window (32 KiB at
    0xB8000, a cell being two bytes) from the CRTC's start address on. Cell addresses wrap within the
    window, so a start address near its end continues from its beginning."""
    window_cells = len(window) // 2
    count = COLUMNS * ROWS
    if window_cells < count:
        raise ValueError(f"a text window of {len(window)} bytes holds fewer than {count} cells")
    start = registers.start_address % window_cells
    end = start + count
    data = window[2 * start:2 * end] if end <= window_cells \
        else window[2 * start:2 * window_cells] + window[:2 * (end - window_cells)]
    cursor = None
    if registers.cursor_visible:
        position = (registers.cursor_offset - registers.start_address) % window_cells
        if position < count:
            cursor = divmod(position, COLUMNS)
    return screen_from_bytes(bytes(data), COLUMNS, ROWS, cursor, registers.blink_enabled)
