"""The CMOS RAM and real-time clock (an MC146818 as on a PC): port 0x70 selects a register (bit 7,
NMI disable, is ignored: kvmrun raises no NMI), port 0x71 reads and writes it. Reading 0x70 gives
0xFF: the index register is write-only. A 16-bit access at 0x70 is the index, then the data.

The clock is the host's local time (`now`, injected for tests), its daylight-saving changes included:
- registers 0x00 seconds, 0x02 minutes, 0x04 hours, 0x06 day of week (1 = Sunday), 0x07 day of
  month, 0x08 month, 0x09 year and 0x32 century (the ACPI century register), in BCD unless status B
  bit 2 and in 24-hour form when status B bit 1 (12-hour: hours 1-12, bit 7 = PM). Status B starts
  at 0x02 (BCD, 24-hour) as a PC BIOS leaves it, and is the guest's to change: reads follow it.
- Writing a time or date register moves the guest's clock, kept as an offset from the host's, so it
  goes on ticking from the value written. Values out of a field's range are clamped to it (a day
  past the month's end becomes its last). The day of week is the chip's own counter: it starts at
  the host's, turns with each midnight and changes only when written, not with a written date.
  Status B bit 7 (SET) stops the clock until cleared, as on the chip.
- Status A bit 7 (update in progress) always reads 0: an update is instantaneous here. Status C
  reads 0 and status D 0x80 (valid RAM and time); both are read-only.
- No alarms, periodic or update-ended interrupts: IRQ 8 is never raised; the alarm registers and
  the interrupt-enable bits of status B are kept as written, and do nothing.

The rest of the 128 bytes is storage the guest may overwrite, starting as a BIOS leaves it: 0x0F
shutdown status 0, 0x10 no floppy drives (kvmrun has none), 0x12 no AT hard disk types (disks are
int 13h's), 0x14 the equipment byte (the BIOS data area's equipment word's low byte), 0x15/0x16
base memory (640 KiB), 0x17/0x18 and 0x30/0x31 KiB above 1 MiB (below 4 GiB, at most 0xFFFF),
0x34/0x35 64 KiB blocks from 16 MiB to the 3 GiB gap and 0x5B-0x5D 64 KiB blocks above 4 GiB (as
QEMU's pc.c fills them for SeaBIOS), and the checksum of 0x10-0x2D at 0x2E (high) and 0x2F (low).
"""
from __future__ import annotations

import time

from .. import layout
from ..bios.data_area import EQUIPMENT_WORD

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Callable, List, Optional

CMOS_PORT = 0x70
PORT_COUNT = 2
INDEX_OFFSET = 0
DATA_OFFSET = 1
CMOS_SIZE = 128
INDEX_MASK = CMOS_SIZE - 1            # bit 7 is the NMI mask

SECONDS = 0x00
MINUTES = 0x02
HOURS = 0x04
WEEKDAY = 0x06
DAY = 0x07
MONTH = 0x08
YEAR = 0x09
STATUS_A = 0x0A
STATUS_B = 0x0B
STATUS_C = 0x0C
STATUS_D = 0x0D
SHUTDOWN_STATUS = 0x0F
FLOPPY_TYPES = 0x10
EQUIPMENT = 0x14
BASE_MEMORY = 0x15                    # word, KiB
EXTENDED_MEMORY = 0x17                # word, KiB above 1 MiB
CHECKSUM = 0x2E                       # word, big-endian: sum of 0x10-0x2D
EXTENDED_MEMORY_2 = 0x30              # the same again, as POST found it
CENTURY = 0x32
MEMORY_ABOVE_16M = 0x34               # word, 64 KiB blocks up to the gap below 4 GiB
MEMORY_ABOVE_4G = 0x5B                # three bytes, 64 KiB blocks

STATUS_A_UPDATE_IN_PROGRESS = 0x80
STATUS_A_DEFAULT = 0x26               # 32.768 kHz time base, 1024 Hz rate, as a BIOS sets it
STATUS_B_SET = 0x80                   # the clock stops while set
STATUS_B_UPDATE_INTERRUPT = 0x10      # cleared when SET is set (the datasheet)
STATUS_B_BINARY = 0x04
STATUS_B_24_HOUR = 0x02
STATUS_B_DEFAULT = STATUS_B_24_HOUR
STATUS_D_VALID = 0x80
HOUR_PM = 0x80

TIME_REGISTERS = frozenset((SECONDS, MINUTES, HOURS, WEEKDAY, DAY, MONTH, YEAR, CENTURY))
SECONDS_PER_DAY = 86400


# --- the proleptic Gregorian calendar, for any year (H. Hinnant's days_from_civil) ------------------

def days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01."""
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


def civil_from_days(days: int):
    """(year, month, day) of days since 1970-01-01."""
    days += 719468
    era = days // 146097
    day_of_era = days - era * 146097
    year_of_era = (day_of_era - day_of_era // 1460 + day_of_era // 36524 - day_of_era // 146096) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    shifted_month = (5 * day_of_year + 2) // 153
    day = day_of_year - (153 * shifted_month + 2) // 5 + 1
    month = shifted_month + (3 if shifted_month < 10 else -9)
    return year_of_era + era * 400 + (month <= 2), month, day


def days_in_month(year: int, month: int) -> int:
    following = (year + 1, 1) if month == 12 else (year, month + 1)
    return days_from_civil(*following, 1) - days_from_civil(year, month, 1)


def to_bcd(value: int) -> int:
    return (value // 10) << 4 | value % 10


def from_bcd(value: int) -> int:
    return (value >> 4) * 10 + (value & 0x0F)


def memory_bytes(ram_size: int) -> List[int]:
    """The 128 bytes of CMOS RAM with only the memory sizes filled in, for `ram_size` bytes of RAM."""
    ram = [0] * CMOS_SIZE
    below_4g = min(ram_size, layout.RAM_GAP_START)
    above_4g = max(0, ram_size - layout.RAM_GAP_START)

    def put(register: int, value: int, size: int = 2) -> None:
        for i in range(size):
            ram[register + i] = value >> (8 * i) & 0xFF

    put(BASE_MEMORY, min(below_4g // layout.KiB, 640))
    extended = min(max(0, below_4g - layout.MiB) // layout.KiB, 0xFFFF)
    put(EXTENDED_MEMORY, extended)
    put(EXTENDED_MEMORY_2, extended)
    put(MEMORY_ABOVE_16M, min(max(0, below_4g - 16 * layout.MiB) // (64 * layout.KiB), 0xFFFF))
    put(MEMORY_ABOVE_4G, min(above_4g // (64 * layout.KiB), 0xFFFFFF), size=3)
    return ram


class Cmos:
    """CMOS RAM and clock on ports 0x70-0x71 (register both as one range of PORT_COUNT). The caller
    serialises calls."""

    def __init__(self, ram_size: int, now: Callable[[], float] = time.time):
        self._now = now
        self.index = 0
        self.ram = bytearray(memory_bytes(ram_size))
        self.ram[STATUS_A] = STATUS_A_DEFAULT
        self.ram[STATUS_B] = STATUS_B_DEFAULT
        self.ram[EQUIPMENT] = EQUIPMENT_WORD & 0xFF
        checksum = sum(self.ram[FLOPPY_TYPES:CHECKSUM])
        self.ram[CHECKSUM], self.ram[CHECKSUM + 1] = checksum >> 8 & 0xFF, checksum & 0xFF
        self._offset = 0                      # seconds the guest's clock is ahead of the host's
        self._stopped_at: Optional[int] = None  # the guest's clock while status B's SET bit holds it
        self._weekday_shift = 0

    # --- ports ---------------------------------------------------------------------------------------

    def read(self, offset: int, size: int, access=None) -> int:
        value = 0
        for i in range(size):
            value |= self._read_port(offset + i) << (8 * i)
        return value

    def write(self, offset: int, size: int, value: int, access=None) -> None:
        for i in range(size):
            self._write_port(offset + i, value >> (8 * i) & 0xFF)

    def _read_port(self, offset: int) -> int:
        return self.read_register(self.index) if offset == DATA_OFFSET else 0xFF

    def _write_port(self, offset: int, value: int) -> None:
        if offset == INDEX_OFFSET:
            self.index = value & INDEX_MASK
        elif offset == DATA_OFFSET:
            self.write_register(self.index, value)

    # --- registers -----------------------------------------------------------------------------------

    def read_register(self, register: int) -> int:
        register &= INDEX_MASK
        if register in TIME_REGISTERS:
            return self._read_time(register)
        if register == STATUS_A:
            return self.ram[STATUS_A] & ~STATUS_A_UPDATE_IN_PROGRESS
        if register == STATUS_C:
            return 0
        if register == STATUS_D:
            return STATUS_D_VALID
        return self.ram[register]

    def write_register(self, register: int, value: int) -> None:
        register &= INDEX_MASK
        value &= 0xFF
        if register in TIME_REGISTERS:
            self._write_time(register, value)
        elif register == STATUS_A:
            self.ram[STATUS_A] = value & ~STATUS_A_UPDATE_IN_PROGRESS
        elif register == STATUS_B:
            self._write_status_b(value)
        elif register not in (STATUS_C, STATUS_D):
            self.ram[register] = value

    # --- the clock -----------------------------------------------------------------------------------

    def _host_clock(self) -> int:
        """The host's local date and time as seconds since 1970-01-01 on a calendar without zones."""
        local = time.localtime(self._now())
        days = days_from_civil(local.tm_year, local.tm_mon, local.tm_mday)
        return days * SECONDS_PER_DAY + local.tm_hour * 3600 + local.tm_min * 60 + min(local.tm_sec, 59)

    def guest_clock(self) -> int:
        """The guest's date and time, in _host_clock's terms."""
        if self._stopped_at is not None:
            return self._stopped_at
        return self._host_clock() + self._offset

    def date_and_time(self):
        """(year, month, day, hour, minute, second) as the guest's clock has them now: what the BIOS's
        int 1Ah reads, so that it and ports 70h/71h agree."""
        return self._fields(self.guest_clock())[:6]

    def _set_guest_clock(self, clock: int) -> None:
        if self._stopped_at is not None:
            self._stopped_at = clock
        else:
            self._offset = clock - self._host_clock()

    def _fields(self, clock: int):
        days, seconds = divmod(clock, SECONDS_PER_DAY)
        year, month, day = civil_from_days(days)
        weekday = (days + 4 + self._weekday_shift) % 7 + 1      # 1970-01-01 was a Thursday (5)
        return year, month, day, seconds // 3600, seconds // 60 % 60, seconds % 60, weekday

    def _binary(self) -> bool:
        return bool(self.ram[STATUS_B] & STATUS_B_BINARY)

    def _encode(self, value: int) -> int:
        return value if self._binary() else to_bcd(value)

    def _decode(self, value: int, low: int, high: int) -> int:
        return max(low, min(high, value if self._binary() else from_bcd(value)))

    def _read_time(self, register: int) -> int:
        year, month, day, hour, minute, second, weekday = self._fields(self.guest_clock())
        if register == HOURS and not self.ram[STATUS_B] & STATUS_B_24_HOUR:
            return self._encode(hour % 12 or 12) | (HOUR_PM if hour >= 12 else 0)
        value = {SECONDS: second, MINUTES: minute, HOURS: hour, WEEKDAY: weekday, DAY: day, MONTH: month,
                 YEAR: year % 100, CENTURY: year // 100 % 100}[register]
        return self._encode(value)

    def _write_time(self, register: int, value: int) -> None:
        clock = self.guest_clock()
        year, month, day, hour, minute, second, weekday = self._fields(clock)
        if register == WEEKDAY:
            self._weekday_shift = (self._weekday_shift + self._decode(value, 1, 7) - weekday) % 7
            return
        if register == SECONDS:
            second = self._decode(value, 0, 59)
        elif register == MINUTES:
            minute = self._decode(value, 0, 59)
        elif register == HOURS and not self.ram[STATUS_B] & STATUS_B_24_HOUR:
            hour = self._decode(value & ~HOUR_PM, 1, 12) % 12 + (12 if value & HOUR_PM else 0)
        elif register == HOURS:
            hour = self._decode(value, 0, 23)
        elif register == DAY:
            day = self._decode(value, 1, 31)
        elif register == MONTH:
            month = self._decode(value, 1, 12)
        elif register == YEAR:
            year = year // 100 * 100 + self._decode(value, 0, 99)
        else:
            year = self._decode(value, 0, 99) * 100 + year % 100
        day = min(day, days_in_month(year, month))
        days = days_from_civil(year, month, day)
        # The weekday counter is the chip's own: a new date does not move it (nor does it here).
        self._weekday_shift = (self._weekday_shift + (clock // SECONDS_PER_DAY) - days) % 7
        self._set_guest_clock(days * SECONDS_PER_DAY + hour * 3600 + minute * 60 + second)

    def _write_status_b(self, value: int) -> None:
        if value & STATUS_B_SET:
            value &= ~STATUS_B_UPDATE_INTERRUPT
            if self._stopped_at is None:
                self._stopped_at = self.guest_clock()
        elif self._stopped_at is not None:
            clock, self._stopped_at = self._stopped_at, None
            self._set_guest_clock(clock)
        self.ram[STATUS_B] = value
