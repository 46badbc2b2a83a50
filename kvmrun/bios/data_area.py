"""The BIOS data area (segment 40h, 0x400-0x4FF) as kvmrun's BIOS leaves it at boot, and where its
fields are: what a boot sector may read directly, and what the services keep up to date. Offsets
are linear addresses. Pure."""
from __future__ import annotations

import struct
import time

from .. import layout
from ..devices.serial import COM1_BASE

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Optional

BDA = 0x400
BDA_SIZE = 0x100
COM_PORTS = 0x400                 # four words: COM1-COM4 base ports
EBDA_SEGMENT = layout.BDA_EBDA_SEGMENT
EQUIPMENT = 0x410                 # word (int 11h)
BASE_MEMORY_KIB = layout.BDA_BASE_MEMORY_KIB   # word (int 12h)
SHIFT_FLAGS = 0x417               # byte, and 0x418 the second
DISKETTE_STATUS = 0x441
VIDEO_MODE = 0x449
VIDEO_COLUMNS = 0x44A             # word
VIDEO_PAGE_SIZE = 0x44C           # word, bytes
VIDEO_PAGE_START = 0x44E          # word, byte offset of the active page in the buffer
CURSOR_POSITIONS = 0x450          # eight words, one per page: column (low byte), row (high)
CURSOR_SHAPE = 0x460              # word: end line (low byte), start line (high)
ACTIVE_PAGE = 0x462
CRTC_BASE = 0x463                 # word
TICKS = 0x46C                     # dword: ticks since midnight
MIDNIGHT = 0x470                  # byte: the count passed midnight since last read
HARD_DISK_STATUS = 0x474          # the last hard disk operation's status
HARD_DISKS = 0x475                # how many
VIDEO_ROWS_MINUS_1 = 0x484
CHARACTER_HEIGHT = 0x485          # word

COM1 = COM1_BASE                  # the one UART, where the BIOS data area tells guests to find it
TEXT_MODE = 0x03                  # 80x25, 16 colours
COLUMNS, ROWS = 80, 25
PAGE_SIZE = 0x1000                # 80*25*2 rounded up, as a BIOS pages the text buffer
PAGES = 8
DEFAULT_CURSOR_SHAPE = 0x0607     # lines 6-7 of 8x16 cells... as BIOSes set for mode 3 (start 6, end 7)
CRTC_COLOUR = 0x3D4

# Equipment word: x87 present (bit 1), 80x25 colour display (bits 4-5 = 10b), one serial port (bits 9-11).
EQUIPMENT_WORD = (1 << 1) | (0b10 << 4) | (1 << 9)

TICKS_PER_DAY = 0x1800B0          # 18.2065 Hz for a day, as every PC BIOS counts
SECONDS_PER_DAY = 86400


def ticks_since_midnight(now: Optional[float] = None) -> int:
    """The tick count a BIOS reads from the RTC at boot: local time since midnight, in PIT ticks."""
    local = time.localtime(now)
    seconds = local.tm_hour * 3600 + local.tm_min * 60 + local.tm_sec
    return seconds * TICKS_PER_DAY // SECONDS_PER_DAY


def data_area_bytes(ticks: int) -> bytes:
    """The 256 bytes at 0x400 at boot."""
    area = bytearray(BDA_SIZE)

    def put(addr: int, fmt: str, value: int) -> None:
        struct.pack_into(fmt, area, addr - BDA, value)

    put(COM_PORTS, "<H", COM1)
    put(EBDA_SEGMENT, "<H", layout.BASE_MEMORY_END >> 4)
    put(EQUIPMENT, "<H", EQUIPMENT_WORD)
    put(BASE_MEMORY_KIB, "<H", layout.BASE_MEMORY_END >> 10)
    put(VIDEO_MODE, "<B", TEXT_MODE)
    put(VIDEO_COLUMNS, "<H", COLUMNS)
    put(VIDEO_PAGE_SIZE, "<H", PAGE_SIZE)
    put(CURSOR_SHAPE, "<H", DEFAULT_CURSOR_SHAPE)
    put(CRTC_BASE, "<H", CRTC_COLOUR)
    put(TICKS, "<I", ticks % TICKS_PER_DAY)
    put(HARD_DISKS, "<B", 1)
    put(VIDEO_ROWS_MINUS_1, "<B", ROWS - 1)
    put(CHARACTER_HEIGHT, "<H", 16)
    return bytes(area)


def ebda_bytes() -> bytes:
    """The extended BIOS data area's first byte is its size in KiB."""
    return bytes([(layout.EBDA_END - layout.BASE_MEMORY_END) >> 10])
