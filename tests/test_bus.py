import pytest

from kvmrun.devices.bus import IgnoredPort, IoBus, UnhandledAccess, all_ones
from kvmrun.devices.exit_port import ExitPort
from kvmrun.devices.i8042 import I8042


class Recorder:
    def __init__(self):
        self.writes = []

    def read(self, port, size):
        return port & 0xFF

    def write(self, port, size, value):
        self.writes.append((port, size, value))


def test_dispatch_by_port():
    bus, dev = IoBus(), Recorder()
    bus.register(0x3F8, 8, dev)
    assert bus.read(0x3FA, 1) == 0xFA
    bus.write(0x3FF, 1, 7)
    assert dev.writes == [(0x3FF, 1, 7)]
    with pytest.raises(ValueError, match="0x3fb is already claimed"):
        bus.register(0x3FB, 1, Recorder())


def test_unknown_ports_read_all_ones_and_ignore_writes():
    bus = IoBus()
    assert [bus.read(0x1234, n) for n in (1, 2, 4)] == [0xFF, 0xFFFF, 0xFFFFFFFF]
    bus.write(0x1234, 4, 0xDEAD)
    assert bus.read_block(0x1234, 2, 3) == b"\xff" * 6
    assert bus.mmio_read(0xFEE00000, 4) == b"\xff" * 4
    bus.mmio_write(0xFEE00000, b"\x01")


def test_strict_mode_names_the_access():
    bus = IoBus(strict=True)
    with pytest.raises(UnhandledAccess, match="^unhandled 2-byte port read from 0x0061$"):
        bus.read(0x61, 2)
    with pytest.raises(UnhandledAccess, match="^unhandled 1-byte port write of 0x55 to 0x0070$"):
        bus.write(0x70, 1, 0x55)
    with pytest.raises(UnhandledAccess, match="^unhandled 4-byte MMIO read from 0xfee00030$"):
        bus.mmio_read(0xFEE00030, 4)


def test_write_block_sends_each_element_in_order():
    bus, dev = IoBus(), Recorder()
    bus.register(0x10, 1, dev)
    bus.write_block(0x10, 1, b"abc")
    bus.write_block(0x10, 2, b"\x01\x02\x03\x04")
    assert dev.writes == [(0x10, 1, 97), (0x10, 1, 98), (0x10, 1, 99), (0x10, 2, 0x0201), (0x10, 2, 0x0403)]


def test_exit_port_reports_the_low_byte():
    statuses = []
    port = ExitPort(statuses.append)
    port.write(0xF4, 4, 0x1234567B)
    port.write(0xF4, 1, 42)
    assert statuses == [0x7B, 42]
    assert port.read(0xF4, 2) == 0xFFFF


def test_i8042_resets_only_on_pulse_reset_command():
    resets = []
    kbd = I8042(lambda: resets.append(True))
    assert kbd.read(0x64, 1) == 0                  # both buffers empty
    kbd.write(0x60, 1, 0xFE)
    kbd.write(0x64, 1, 0xAD)
    assert resets == []
    kbd.write(0x64, 1, 0xFE)
    assert resets == [True]


def test_post_port_ignores_writes():
    post = IgnoredPort()
    post.write(0x80, 1, 0x12)
    assert post.read(0x80, 1) == all_ones(1)
