"""int 11h, 12h, 14h, 15h and 1Ah (bios/system.py, serial_port.py, clock.py) against Ralf Brown's
interrupt list."""
import struct
import time

import pytest
from hypothesis import given, settings, strategies as st

from kvmrun.bios import data_area as bda
from kvmrun.bios.call import BiosCall, Unsupported, WaitForInterrupt
from kvmrun.bios.clock import ClockServices
from kvmrun.devices.cmos import Cmos
from kvmrun.bios.serial_port import SerialServices
from kvmrun.bios.system import SMAP, SystemServices
from kvmrun.devices.serial import Serial16550
from kvmrun.memory import GuestMemory, RamLayout
from kvmrun.platform.memory_map import memory_map

MiB = 1 << 20


def ram(size=128 * MiB):
    mem = GuestMemory.for_tests(2 * MiB)
    mem.write(bda.BDA, bda.data_area_bytes(1234))
    return mem, RamLayout(size)


def test_equipment_and_conventional_memory_come_from_the_data_area():
    mem, layout_ = ram()
    system = SystemServices(layout_)
    call = BiosCall(0x11, mem)
    system.int11(call)
    assert call.ax == bda.EQUIPMENT_WORD and call.ax & 0x30 == 0x20 and (call.ax >> 9) & 7 == 1
    call = BiosCall(0x12, mem)
    system.int12(call)
    assert call.ax == 639


def e820_walk(mem, system, ecx=20):
    entries, ebx = [], 0
    for _ in range(20):
        call = BiosCall(0x15, mem, eax=0xE820, ebx=ebx, ecx=ecx, edx=SMAP, edi=0x1000, es=0x0050)
        system.int15(call)
        assert not call.carry and call.eax == SMAP and call.ecx == 20
        entries.append(struct.unpack("<QQI", mem.read(0x1500, 20)))
        ebx = call.ebx
        if ebx == 0:
            return entries
    raise AssertionError("E820 never ended")


@pytest.mark.parametrize("size", [1 * MiB, 128 * MiB, 5 << 30])
def test_e820_walks_kvmruns_memory_map(size):
    mem, layout_ = ram(size)
    assert e820_walk(mem, SystemServices(layout_)) == [tuple(entry) for entry in memory_map(layout_)]


def test_e820_refuses_a_bad_signature_a_small_buffer_an_unknown_index_and_a_buffer_outside_ram():
    mem, layout_ = ram()
    system = SystemServices(layout_)
    for regs in (dict(edx=0), dict(edx=SMAP, ecx=19), dict(edx=SMAP, ebx=99),
                 dict(edx=SMAP, es=0xF000, edi=0)):
        call = BiosCall(0x15, mem, **{"eax": 0xE820, "ecx": 20, **regs})
        system.int15(call)
        assert call.carry and call.ah == 0x86


def test_extended_memory_sizes():
    mem, layout_ = ram(128 * MiB)
    system = SystemServices(layout_)
    call = BiosCall(0x15, mem, eax=0x8800)
    system.int15(call)
    assert call.ax == 63 * 1024 and not call.carry                # capped at 64 MiB, as SeaBIOS
    call = BiosCall(0x15, mem, eax=0xE801)
    system.int15(call)
    assert call.ax == call.cx == 15 * 1024 and call.bx == call.dx == (112 * MiB) >> 16


def test_a20_is_on_and_cannot_be_turned_off():
    mem, layout_ = ram()
    system = SystemServices(layout_)
    for ax, check in ((0x2401, lambda c: True), (0x2402, lambda c: c.al == 1), (0x2403, lambda c: c.bx == 3)):
        call = BiosCall(0x15, mem, eax=ax)
        call.carry = True
        system.int15(call)
        assert not call.carry and call.ah == 0 and check(call)
    with pytest.raises(Unsupported, match="A20"):
        system.int15(BiosCall(0x15, mem, eax=0x2400))


def test_wait_sleeps_short_waits_and_makes_long_ones_wait_for_interrupts():
    mem, layout_ = ram()
    now = [100.0]
    slept = []
    system = SystemServices(layout_, clock=lambda: now[0], sleep=slept.append)
    call = BiosCall(0x15, mem, eax=0x8600, ecx=0, edx=500)
    system.int15(call)
    assert slept == [0.0005] and not call.carry
    with pytest.raises(WaitForInterrupt):
        system.int15(BiosCall(0x15, mem, eax=0x8600, ecx=0x000F, edx=0x4240))   # 1 s
    now[0] += 0.5
    with pytest.raises(WaitForInterrupt):
        system.int15(BiosCall(0x15, mem, eax=0x8600, ecx=0x000F, edx=0x4240))
    now[0] += 0.6
    call = BiosCall(0x15, mem, eax=0x8600, ecx=0x000F, edx=0x4240)
    system.int15(call)
    assert not call.carry


def test_unknown_int15_functions_are_unsupported():
    mem, layout_ = ram()
    with pytest.raises(Unsupported):
        SystemServices(layout_).int15(BiosCall(0x15, mem, eax=0xC000))


def test_tick_count_reads_and_clears_the_midnight_flag_and_can_be_set():
    mem, _ = ram()
    clock = ClockServices(Cmos(2 * MiB))
    mem.write(bda.MIDNIGHT, b"\x01")
    call = BiosCall(0x1A, mem, eax=0)
    clock.int1a(call)
    assert (call.cx << 16 | call.dx) == 1234 and call.al == 1
    clock.int1a(call := BiosCall(0x1A, mem, eax=0))
    assert call.al == 0
    clock.int1a(BiosCall(0x1A, mem, eax=0x0100, ecx=0x0001, edx=0x0002))
    assert struct.unpack("<I", mem.read(bda.TICKS, 4))[0] == 0x10002


def test_rtc_time_and_date_are_the_cmos_clocks_in_bcd():
    mem, _ = ram()
    moment = time.mktime((2026, 11, 25, 23, 45, 12, 0, 0, -1))
    rtc = Cmos(2 * MiB, now=lambda: moment)
    clock = ClockServices(rtc)
    call = BiosCall(0x1A, mem, eax=0x0200)
    clock.int1a(call)
    assert (call.ch, call.cl, call.dh) == (0x23, 0x45, 0x12) and not call.carry
    call = BiosCall(0x1A, mem, eax=0x0400)
    clock.int1a(call)
    assert (call.ch, call.cl, call.dh, call.dl) == (0x20, 0x26, 0x11, 0x25)
    with pytest.raises(Unsupported, match="setting the clock"):
        clock.int1a(BiosCall(0x1A, mem, eax=0x0300))
    rtc.write_register(0x09, 0x31)                        # the guest sets the year through port 71h
    call = BiosCall(0x1A, mem, eax=0x0400)
    clock.int1a(call)
    assert (call.ch, call.cl) == (0x20, 0x31)             # and int 1Ah reads the same clock


def test_ticks_since_midnight_at_boot():
    noon = time.mktime((2026, 11, 25, 12, 0, 0, 0, 0, -1))
    assert bda.ticks_since_midnight(noon) == bda.TICKS_PER_DAY // 2


def test_int14_sends_through_the_uart_and_receives_what_it_has():
    mem, _ = ram()
    sent = []

    class Input:
        data = [ord("k")]

        def ready(self):
            return bool(self.data)

        def take(self):
            return self.data.pop(0) if self.data else None

    serial_port = SerialServices(Serial16550(sent.append, Input()))
    call = BiosCall(0x14, mem, eax=0x00E3)                        # 9600 8N1
    serial_port.int14(call)
    assert call.ah & 0x60 == 0x60                                   # transmitter empty
    call = BiosCall(0x14, mem, eax=0x0141)
    serial_port.int14(call)
    assert sent == [0x41] and not call.ah & 0x80
    call = BiosCall(0x14, mem, eax=0x0200)
    serial_port.int14(call)
    assert call.al == ord("k") and not call.ah & 0x80
    call = BiosCall(0x14, mem, eax=0x0200)
    serial_port.int14(call)
    assert call.ah & 0x80                                           # nothing more: timeout
    call = BiosCall(0x14, mem, eax=0x0141, edx=1)                   # COM2: absent
    serial_port.int14(call)
    assert call.ah == 0x80 and sent == [0x41]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([0x11, 0x12, 0x15, 0x1A]), st.integers(0, 0xFFFFFFFF), st.integers(0, 0xFFFFFFFF),
       st.integers(0, 0xFFFFFFFF), st.integers(0, 0xFFFFFFFF), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))
def test_any_registers_give_an_answer_or_a_documented_refusal_and_write_only_the_callers_buffer(
        vector, eax, ebx, ecx, edx, edi, es):
    mem, layout_ = ram()
    system, clock = SystemServices(layout_, sleep=lambda s: None), ClockServices(Cmos(2 * MiB))
    service = {0x11: system.int11, 0x12: system.int12, 0x15: system.int15, 0x1A: clock.int1a}[vector]
    before = mem.read(0, 2 * MiB)
    try:
        service(BiosCall(vector, mem, eax=eax, ebx=ebx, ecx=ecx, edx=edx, edi=edi, es=es))
    except (Unsupported, WaitForInterrupt):
        pass
    after = mem.read(0, 2 * MiB)
    changed = [i for i in range(0, 2 * MiB, 4096) if before[i:i + 4096] != after[i:i + 4096]]
    buffer = ((es << 4) + edi) // 4096
    assert set(changed) <= {0, buffer, buffer + 1}                   # the data area and the E820 buffer
