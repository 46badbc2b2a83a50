"""CMOS RAM and the real-time clock on ports 0x70/0x71, as tutorials read the time and date and kernels
the memory size: BCD and binary, 24- and 12-hour, a clock the guest sets that goes on ticking, the
memory registers for several RAM sizes, plain storage, and any access sequence staying valid."""
import time

from hypothesis import given, settings, strategies as st

from kvmrun.bios.data_area import EQUIPMENT_WORD
from kvmrun.devices.cmos import PORT_COUNT, Cmos

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
# 2024-02-29 23:59:58 local time, a Thursday, whatever the host's zone.
LEAP_NIGHT = time.mktime((2024, 2, 29, 23, 59, 58, 0, 0, -1))


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


def make(now=LEAP_NIGHT, ram=128 * MiB):
    clock = Clock(now)
    return clock, Cmos(ram, now=clock)


def read(cmos, register):
    cmos.write(0, 1, register)
    return cmos.read(1, 1)


def write(cmos, register, value):
    cmos.write(0, 1, register)
    cmos.write(1, 1, value)


def time_and_date(cmos):
    """(seconds, minutes, hours, weekday, day, month, year, century) as the registers read."""
    return tuple(read(cmos, r) for r in (0x00, 0x02, 0x04, 0x06, 0x07, 0x08, 0x09, 0x32))


def test_time_and_date_in_bcd_24_hour_by_default():
    clock, cmos = make()
    assert read(cmos, 0x0B) == 0x02
    assert time_and_date(cmos) == (0x58, 0x59, 0x23, 5, 0x29, 0x02, 0x24, 0x20)
    clock.now += 3                                   # past midnight into March, a Friday
    assert time_and_date(cmos) == (0x01, 0x00, 0x00, 6, 0x01, 0x03, 0x24, 0x20)


def test_binary_when_status_b_bit_2():
    _, cmos = make()
    write(cmos, 0x0B, 0x06)
    assert time_and_date(cmos) == (58, 59, 23, 5, 29, 2, 24, 20)


def test_12_hour_hours_with_bit_7_for_pm():
    clock, cmos = make()
    write(cmos, 0x0B, 0x00)                          # BCD, 12-hour
    assert read(cmos, 0x04) == 0x80 | 0x11           # 11 PM
    clock.now += 3
    assert read(cmos, 0x04) == 0x12                  # midnight is 12 AM
    clock.now += 12 * 3600
    assert read(cmos, 0x04) == 0x80 | 0x12           # noon is 12 PM
    write(cmos, 0x0B, 0x04)                          # binary, 12-hour
    assert read(cmos, 0x04) == 0x80 | 12
    clock.now += 3600
    assert read(cmos, 0x04) == 0x80 | 1


def test_written_time_goes_on_ticking_from_the_value_written():
    clock, cmos = make()
    write(cmos, 0x04, 0x10)
    write(cmos, 0x02, 0x30)
    write(cmos, 0x00, 0x00)
    assert time_and_date(cmos)[:3] == (0x00, 0x30, 0x10)
    clock.now += 65
    assert time_and_date(cmos) == (0x05, 0x31, 0x10, 5, 0x29, 0x02, 0x24, 0x20)


def test_written_date_and_12_hour_time():
    _, cmos = make()
    write(cmos, 0x32, 0x19)
    write(cmos, 0x09, 0x99)
    write(cmos, 0x08, 0x12)
    write(cmos, 0x07, 0x31)
    write(cmos, 0x0B, 0x00)
    write(cmos, 0x04, 0x80 | 0x07)                   # 7 PM
    write(cmos, 0x0B, 0x02)
    assert time_and_date(cmos)[2:] == (0x19, 5, 0x31, 0x12, 0x99, 0x19)


def test_date_written_past_the_months_end_is_clamped():
    _, cmos = make()
    write(cmos, 0x07, 0x31)                          # in February 2024
    assert read(cmos, 0x07) == 0x29
    write(cmos, 0x00, 0x99)                          # no such second
    assert read(cmos, 0x00) == 0x59


def test_weekday_is_its_own_counter():
    clock, cmos = make()
    write(cmos, 0x06, 2)
    assert read(cmos, 0x06) == 2
    write(cmos, 0x07, 0x10)                          # a new date leaves it
    assert read(cmos, 0x06) == 2
    clock.now += 86400
    assert read(cmos, 0x06) == 3


def test_set_bit_stops_the_clock_until_cleared():
    clock, cmos = make()
    write(cmos, 0x0B, 0x82)
    clock.now += 100
    assert read(cmos, 0x00) == 0x58
    write(cmos, 0x00, 0x10)
    clock.now += 100
    assert read(cmos, 0x00) == 0x10
    write(cmos, 0x0B, 0x02)
    clock.now += 5
    assert read(cmos, 0x00) == 0x15


def test_status_registers():
    _, cmos = make()
    assert read(cmos, 0x0A) & 0x80 == 0              # never an update in progress
    write(cmos, 0x0A, 0xA6)
    assert read(cmos, 0x0A) == 0x26
    assert read(cmos, 0x0C) == 0
    assert read(cmos, 0x0D) == 0x80
    write(cmos, 0x0C, 0xFF)
    write(cmos, 0x0D, 0x00)
    assert (read(cmos, 0x0C), read(cmos, 0x0D)) == (0, 0x80)


def test_equipment_floppies_and_checksum():
    _, cmos = make()
    assert read(cmos, 0x10) == 0
    assert read(cmos, 0x14) == EQUIPMENT_WORD & 0xFF
    checksum = sum(read(cmos, r) for r in range(0x10, 0x2E))
    assert read(cmos, 0x2E) << 8 | read(cmos, 0x2F) == checksum


def memory_registers(ram):
    _, cmos = make(ram=ram)

    def word(register):
        return read(cmos, register) | read(cmos, register + 1) << 8

    above_4g = read(cmos, 0x5B) | read(cmos, 0x5C) << 8 | read(cmos, 0x5D) << 16
    return word(0x15), word(0x17), word(0x30), word(0x34), above_4g


def test_memory_registers():
    assert memory_registers(1 * MiB) == (640, 0, 0, 0, 0)
    assert memory_registers(32 * MiB) == (640, 31 * 1024, 31 * 1024, 16 * MiB // (64 * KiB), 0)
    assert memory_registers(128 * MiB) == (640, 0xFFFF, 0xFFFF, 112 * MiB // (64 * KiB), 0)
    # RAM stops at 3 GiB and goes on at 4 GiB (layout.RAM_GAP_START).
    assert memory_registers(5 * GiB) == (640, 0xFFFF, 0xFFFF, (3 * GiB - 16 * MiB) // (64 * KiB),
                                         2 * GiB // (64 * KiB))


def test_plain_storage_reads_back():
    _, cmos = make()
    for register, value in ((0x0F, 0x0A), (0x0E, 0x01), (0x40, 0x5A), (0x7F, 0xA5), (0x01, 0x30)):
        write(cmos, register, value)
        assert read(cmos, register) == value


def test_index_ignores_the_nmi_bit_and_reads_as_ff():
    _, cmos = make()
    cmos.write(0, 1, 0x80 | 0x0D)
    assert cmos.read(1, 1) == 0x80
    assert cmos.read(0, 1) == 0xFF
    cmos.write(0, 1, 0x80 | 0x40)
    cmos.write(1, 1, 0x77)
    assert read(cmos, 0x40) == 0x77


def test_16_bit_access_is_index_then_data():
    _, cmos = make()
    cmos.write(0, 2, 0x66 << 8 | 0x41)
    assert read(cmos, 0x41) == 0x66
    cmos.write(0, 1, 0x0D)
    assert cmos.read(0, 2) == 0x80 << 8 | 0xFF


def valid_bcd(value):
    return value >> 4 <= 9 and value & 0x0F <= 9


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, PORT_COUNT - 1), st.sampled_from([1, 2]), st.integers(0, 0xFFFF),
                          st.booleans(), st.integers(0, 10 ** 8)), max_size=40))
def test_any_access_sequence_keeps_a_valid_clock(accesses):
    clock, cmos = make()
    for offset, size, value, is_write, elapsed in accesses:
        clock.now += elapsed
        if is_write:
            cmos.write(offset, size, value)
        else:
            assert 0 <= cmos.read(offset, size) < 1 << (8 * size)
    status_b = read(cmos, 0x0B)
    seconds, minutes, hours, weekday, day, month, year, century = time_and_date(cmos)
    write(cmos, 0x0B, 0x06)                      # binary, 24-hour: check the same instant's values
    b_seconds, b_minutes, b_hours, b_weekday, b_day, b_month, b_year, b_century = time_and_date(cmos)
    assert 0 <= b_seconds <= 59 and 0 <= b_minutes <= 59 and 0 <= b_hours <= 23
    assert 1 <= b_weekday <= 7 and 1 <= b_month <= 12 and 0 <= b_year <= 99 and 0 <= b_century <= 99
    assert 1 <= b_day <= 31
    if not status_b & 0x04 and not status_b & 0x80:
        assert all(valid_bcd(v) for v in (seconds, minutes, hours & 0x7F, day, month, year, century))
