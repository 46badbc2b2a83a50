import pytest

from kvmrun.devices.bus import Access, IgnoredPort, IoBus, UnhandledAccess, all_ones
from kvmrun.devices.exit_port import ExitPort
from kvmrun.devices.i8042 import I8042


class Recorder:
    """Sees register offsets and who accessed them; reads answer 0xA0 + the offset."""

    def __init__(self):
        self.writes = []
        self.reads = []

    def read(self, offset, size, access):
        self.reads.append((offset, size, access))
        return 0xA0 + offset

    def write(self, offset, size, value, access):
        self.writes.append((offset, size, value, access))


def test_devices_see_register_offsets_and_who_accessed_them():
    bus, dev = IoBus(), Recorder()
    bus.register(0x3F8, 8, dev)
    vcpu2 = Access(vcpu=2, mem="guest memory")
    assert bus.read(0x3FA, 1, vcpu2) == 0xA2
    bus.write(0x3FF, 1, 7, vcpu2)
    assert dev.reads == [(2, 1, vcpu2)] and dev.writes == [(7, 1, 7, vcpu2)]
    with pytest.raises(ValueError, match="0x3fb is already claimed"):
        bus.register(0x3FB, 1, Recorder())


def test_each_vcpu_has_its_own_one_byte_writers_which_carry_its_access():
    bus, dev = IoBus(), Recorder()
    bus.register(0x10, 2, dev)
    one, two = Access(1), Access(2)
    writers_one, writers_two = bus.writers_for(one), bus.writers_for(two)
    assert not writers_one                         # filled on first use: a boot pays for what it writes
    bus.byte_writer(0x11, one)(5)
    bus.byte_writer(0x10, two)(6)
    bus.byte_writer(0x300, two)(7)                 # unclaimed: ignored, and kept in the table
    assert dev.writes == [(1, 1, 5, one), (0, 1, 6, two)]
    assert set(writers_one) == {0x11} and set(writers_two) == {0x10, 0x300}
    assert writers_two[0x10] is bus.byte_writer(0x10, two)        # made once


def test_a_wrapper_sees_every_vcpus_one_byte_writes_until_taken_away():
    bus, dev = IoBus(), Recorder()
    bus.register(0x80, 1, dev)
    counted = []
    first, second = Access(0), Access(1)
    bus.writers_for(first)
    bus.byte_writer(0x80, first)(0)                # made before the wrapper: replaced by it

    def counting(direct):
        return lambda value: (counted.append(value), direct(value))

    bus.wrap_byte_writers(0x80, counting)
    bus.writers_for(second)                        # tables made after the wrapper get it too
    bus.byte_writer(0x80, first)(1)
    bus.byte_writer(0x80, second)(2)
    bus.wrap_byte_writers(0x80, None)
    bus.byte_writer(0x80, first)(3)
    assert counted == [1, 2] and [w[2] for w in dev.writes] == [0, 1, 2, 3]


def test_mmio_devices_by_range():
    bus, dev = IoBus(strict=True), Recorder()
    bus.register_mmio(0xFEC00000, 0x1000, dev)
    assert bus.mmio_read(0xFEC00010, 4) == (0xA0 + 0x10).to_bytes(4, "little")
    bus.mmio_write(0xFEC00FFC, b"\x01\x02\x03\x04")
    assert dev.writes[-1][:3] == (0xFFC, 4, 0x04030201)
    with pytest.raises(UnhandledAccess):             # straddles the end of the range
        bus.mmio_read(0xFEC00FFE, 4)
    with pytest.raises(UnhandledAccess):
        bus.mmio_read(0xFEBFFFFC, 4)
    with pytest.raises(ValueError, match="overlaps"):
        bus.register_mmio(0xFEC00800, 0x1000, Recorder())


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
    assert [w[:3] for w in dev.writes] == [(0, 1, 97), (0, 1, 98), (0, 1, 99), (0, 2, 0x0201), (0, 2, 0x0403)]


def test_exit_port_reports_the_whole_value_written():
    # The status rule (V & 0xFF, or QEMU's (V<<1)|1) is the machine's: it needs all of V.
    statuses = []
    port = ExitPort(statuses.append)
    port.write(0, 4, 0x1234567B)
    port.write(0, 1, 42)
    assert statuses == [0x1234567B, 42]
    assert port.read(0, 2) == 0xFFFF


def test_i8042_resets_only_on_pulse_reset_command():
    resets = []
    kbd = I8042(lambda: resets.append(True))
    assert kbd.command.read(0, 1) & 0b11 == 0      # both buffers empty
    kbd.data.write(0, 1, 0xFE)
    kbd.command.write(0, 1, 0xAD)
    assert resets == []
    kbd.command.write(0, 1, 0xFE)
    assert resets == [True]


def test_post_port_ignores_writes():
    post = IgnoredPort()
    post.write(0, 1, 0x12)
    assert post.read(0, 1) == all_ones(1)
