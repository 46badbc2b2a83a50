"""int 1Ah: the tick count the timer handler keeps in the BIOS data area, and the real-time clock,
which is the host's local time (setting it is not provided). Pure: the host clock comes in."""
from __future__ import annotations

import struct
import time

from . import data_area as bda
from .call import BiosCall, Unsupported

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Callable


def bcd(value: int) -> int:
    return (value // 10) << 4 | value % 10


class ClockServices:
    def __init__(self, now: Callable[[], float] = time.time):
        self.now = now

    def int1a(self, call: BiosCall) -> None:
        function = call.ah
        if function == 0x00:
            ticks = struct.unpack("<I", call.read_linear(bda.TICKS, 4))[0]
            call.cx, call.dx = ticks >> 16, ticks & 0xFFFF
            call.al = call.read_linear(bda.MIDNIGHT, 1)[0]
            call.write_linear(bda.MIDNIGHT, b"\0")          # reading it clears it
        elif function == 0x01:
            call.write_linear(bda.TICKS, struct.pack("<I", (call.cx << 16 | call.dx) % bda.TICKS_PER_DAY))
            call.write_linear(bda.MIDNIGHT, b"\0")
        elif function == 0x02:
            local = time.localtime(self.now())
            call.ch, call.cl, call.dh = bcd(local.tm_hour), bcd(local.tm_min), bcd(min(local.tm_sec, 59))
            call.dl = 1 if local.tm_isdst > 0 else 0
            call.carry = False
        elif function == 0x04:
            local = time.localtime(self.now())
            call.ch, call.cl = bcd(local.tm_year // 100), bcd(local.tm_year % 100)
            call.dh, call.dl = bcd(local.tm_mon), bcd(local.tm_mday)
            call.carry = False
        elif function in (0x03, 0x05):
            raise Unsupported("the real-time clock is the host's and cannot be set")
        else:
            raise Unsupported()
