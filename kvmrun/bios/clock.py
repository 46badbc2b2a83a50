"""int 1Ah: the tick count the timer handler keeps in the BIOS data area, and the real-time clock:
the machine's CMOS clock (devices/cmos.py), as a BIOS reads it, so that int 1Ah and ports 70h/71h
agree (setting it through int 1Ah is not provided). Pure: the clock comes in."""
from __future__ import annotations

import struct

from ..devices.cmos import to_bcd
from . import data_area as bda
from .call import BiosCall, Unsupported


class ClockServices:
    def __init__(self, rtc):
        self.rtc = rtc                    # anything with date_and_time(): the machine's Cmos

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
            _, _, _, hour, minute, second = self.rtc.date_and_time()
            call.ch, call.cl, call.dh = to_bcd(hour), to_bcd(minute), to_bcd(second)
            call.dl = 0                       # no daylight-saving flag: the clock is local time as it is
            call.carry = False
        elif function == 0x04:
            year, month, day, _, _, _ = self.rtc.date_and_time()
            call.ch, call.cl = to_bcd(year // 100), to_bcd(year % 100)
            call.dh, call.dl = to_bcd(month), to_bcd(day)
            call.carry = False
        elif function in (0x03, 0x05):
            raise Unsupported("setting the clock through int 1Ah (its CMOS registers can be written)")
        else:
            raise Unsupported()
