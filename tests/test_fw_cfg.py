"""fw_cfg's traditional IO-port interface as QEMU decodes it: items read byte by byte through the data
port after a 16-bit select, and no sequence of accesses that breaks it."""
import struct

import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from kvmrun.devices.bus import IoBus
from kvmrun.devices.fw_cfg import FW_CFG_PORT, PORT_COUNT, FwCfg
from kvmrun.errors import ConfigError

SELECTOR, DATA = FW_CFG_PORT, FW_CFG_PORT + 1


def bus_with(device: FwCfg) -> IoBus:
    bus = IoBus(strict=True)
    bus.register(FW_CFG_PORT, PORT_COUNT, device)
    return bus


def read_item(bus: IoBus, key: int, length: int) -> bytes:
    """How firmware reads an item: outw(key, 0x510), then `length` times inb(0x511)."""
    bus.write(SELECTOR, 2, key)
    return bytes(bus.read(DATA, 1) for _ in range(length))


def test_the_ports_qemu_uses_on_a_pc():
    assert (FW_CFG_PORT, PORT_COUNT) == (0x510, 2)


def test_the_well_known_items():
    bus = bus_with(FwCfg(cpus=2, max_cpus=4, ram_size=128 << 20))
    assert read_item(bus, 0x0000, 4) == b"QEMU"
    assert read_item(bus, 0x0001, 4) == bytes([1, 0, 0, 0])                  # traditional, no DMA
    assert read_item(bus, 0x0003, 8) == (128 << 20).to_bytes(8, "little")
    assert read_item(bus, 0x0005, 2) == bytes([2, 0])
    assert read_item(bus, 0x000F, 2) == bytes([4, 0])


def test_the_signature_is_selected_from_the_start():
    bus = bus_with(FwCfg(cpus=1, max_cpus=1, ram_size=1 << 20))
    assert bytes(bus.read(DATA, 1) for _ in range(4)) == b"QEMU"


def test_reading_past_the_end_gives_zeroes_and_selecting_again_rewinds():
    bus = bus_with(FwCfg(cpus=1, max_cpus=1, ram_size=1 << 20))
    assert read_item(bus, 0x0000, 7) == b"QEMU\0\0\0"
    assert read_item(bus, 0x0000, 2) == b"QE"
    assert read_item(bus, 0x0000, 1) == b"Q"


@pytest.mark.parametrize("key", [0x0002, 0x0014, 0x0018, 0x0020, 0x3FFF, 0x8000, 0x8003, 0xFFFF])
def test_an_item_nobody_defined_reads_as_zero(key):
    bus = bus_with(FwCfg(cpus=1, max_cpus=1, ram_size=1 << 20))
    assert read_item(bus, key, 8) == bytes(8)


def test_the_write_channel_bit_is_ignored_and_the_arch_bit_selects_arch_items():
    bus = bus_with(FwCfg(cpus=3, max_cpus=3, ram_size=1 << 20))
    assert read_item(bus, 0x4005, 2) == bytes([3, 0])
    assert read_item(bus, 0x8005, 2) == bytes(2)      # x86's own items: kvmrun has none


def test_the_command_line_items_count_the_nul():
    bus = bus_with(FwCfg(cpus=1, max_cpus=1, ram_size=1 << 20, cmdline="console=ttyS0 quiet"))
    assert read_item(bus, 0x0014, 4) == struct.pack("<I", 20)
    assert read_item(bus, 0x0015, 21) == b"console=ttyS0 quiet\0\0"
    empty = bus_with(FwCfg(cpus=1, max_cpus=1, ram_size=1 << 20, cmdline=""))
    assert read_item(empty, 0x0014, 4) == struct.pack("<I", 1)
    assert read_item(empty, 0x0015, 2) == b"\0\0"


def test_the_file_directory_lists_files_in_name_order_from_selector_0x20():
    files = {"opt/b": b"second", "etc/boot-fail-wait": b"\x05\x00\x00\x00", "opt/a": b""}
    bus = bus_with(FwCfg(cpus=1, max_cpus=1, ram_size=1 << 20, files=files))
    directory = read_item(bus, 0x0019, 4 + 3 * 64)
    assert directory[:4] == b"\x00\x00\x00\x03"                              # count, big-endian
    assert directory[4:68] == (b"\x00\x00\x00\x04" + b"\x00\x20" + b"\x00\x00"
                               + b"etc/boot-fail-wait".ljust(56, b"\0"))
    assert directory[68:132] == b"\x00\x00\x00\x00" + b"\x00\x21" + b"\x00\x00" + b"opt/a".ljust(56, b"\0")
    assert directory[132:196] == b"\x00\x00\x00\x06" + b"\x00\x22" + b"\x00\x00" + b"opt/b".ljust(56, b"\0")
    assert read_item(bus, 0x0020, 4) == b"\x05\x00\x00\x00"
    assert read_item(bus, 0x0022, 7) == b"second\0"


def test_no_files_is_an_empty_directory():
    bus = bus_with(FwCfg(cpus=1, max_cpus=1, ram_size=1 << 20))
    assert read_item(bus, 0x0019, 8) == bytes(8)


def test_the_longest_file_name_keeps_its_nul():
    name = "opt/" + "x" * 51                                                  # 55 bytes
    bus = bus_with(FwCfg(cpus=1, max_cpus=1, ram_size=1 << 20, files={name: b"1"}))
    assert read_item(bus, 0x0019, 68)[12:68] == name.encode() + b"\0"


@pytest.mark.parametrize("name", ["", "opt/" + "x" * 52, "opt/a\0b"])
def test_a_file_name_that_does_not_fit_is_refused(name):
    with pytest.raises(ConfigError, match="must be 1 to 55 bytes without NUL"):
        FwCfg(cpus=1, max_cpus=1, ram_size=1 << 20, files={name: b""})


@pytest.mark.parametrize("cpus, max_cpus, ram_size", [(0, 1, 0), (2, 1, 0), (1, 0x10000, 0), (1, 1, -1),
                                                     (1, 1, 1 << 64)])
def test_counts_that_do_not_fit_their_items_are_bugs(cpus, max_cpus, ram_size):
    with pytest.raises(ValueError):
        FwCfg(cpus=cpus, max_cpus=max_cpus, ram_size=ram_size)


def test_data_writes_are_ignored_and_do_not_advance():
    bus = bus_with(FwCfg(cpus=1, max_cpus=1, ram_size=1 << 20))
    bus.write(SELECTOR, 2, 0x0000)
    bus.write(DATA, 1, ord("X"))
    bus.write(SELECTOR, 1, ord("Y"))                   # a byte write to 0x510 is a data write too
    assert bytes(bus.read(DATA, 1) for _ in range(4)) == b"QEMU"


def test_a_byte_read_of_the_selector_port_reads_data_as_qemu_does():
    bus = bus_with(FwCfg(cpus=1, max_cpus=1, ram_size=1 << 20))
    bus.write(SELECTOR, 2, 0x0000)
    assert [bus.read(SELECTOR, 1), bus.read(DATA, 1)] == [ord("Q"), ord("E")]


@pytest.mark.parametrize("port, size", [(SELECTOR, 2), (SELECTOR, 4), (DATA, 2), (DATA, 4)])
def test_wider_reads_are_refused_reading_zero_and_changing_nothing(port, size):
    bus = bus_with(FwCfg(cpus=1, max_cpus=1, ram_size=1 << 20))
    bus.write(SELECTOR, 2, 0x0000)
    assert bus.read(port, size) == 0
    assert bytes(bus.read(DATA, 1) for _ in range(4)) == b"QEMU"


@pytest.mark.parametrize("port, size", [(SELECTOR, 4), (DATA, 2), (DATA, 4)])
def test_only_a_16_bit_write_of_the_selector_port_selects(port, size):
    bus = bus_with(FwCfg(cpus=1, max_cpus=1, ram_size=1 << 20))
    bus.write(SELECTOR, 2, 0x0000)
    bus.read(DATA, 1)
    bus.write(port, size, 0x0005)
    assert bytes(bus.read(DATA, 1) for _ in range(3)) == b"EMU"


# --- any sequence of accesses -----------------------------------------------------------------------

FILES = {"opt/org.kvmrun/one": b"\x01" * 70, "opt/two": b"2"}
KEYS = st.one_of(st.sampled_from([0, 1, 3, 5, 0xF, 0x14, 0x15, 0x19, 0x20, 0x21, 0x22, 0x4019, 0x8000]),
                 st.integers(0, 0xFFFF))


class AnyAccesses(RuleBasedStateMachine):
    """Random reads and writes of any size at any offset, interleaved with firmware-style reads: none
    raises, none changes an item or adds state, the offset stays inside the item, and a select
    followed by byte reads always yields the item."""

    def __init__(self):
        super().__init__()
        self.device = FwCfg(cpus=2, max_cpus=8, ram_size=3 << 30, files=FILES, cmdline="a b")
        self.items = {key: self.device.item(key) for key in range(0x30)}
        self.attributes = set(vars(self.device))

    @rule(offset=st.integers(0, 3), size=st.sampled_from([0, 1, 2, 3, 4, 8]))
    def read(self, offset, size):
        value = self.device.read(offset, size)
        assert 0 <= value < 1 << 8

    @rule(offset=st.integers(0, 3), size=st.sampled_from([0, 1, 2, 3, 4, 8]), value=st.integers(0, (1 << 64) - 1))
    def write(self, offset, size, value):
        self.device.write(offset, size, value)

    @rule(key=KEYS, extra=st.integers(0, 80))
    def select_and_read(self, key, extra):
        item = self.device.item(key)
        self.device.write(0, 2, key)
        got = bytes(self.device.read(1, 1) for _ in range(len(item) + extra))
        assert got == item + bytes(extra)

    @invariant()
    def consistent(self):
        assert 0 <= self.device.offset <= len(self.device.item(self.device.key))
        assert set(vars(self.device)) == self.attributes
        assert {key: self.device.item(key) for key in range(0x30)} == self.items


TestAnyAccesses = AnyAccesses.TestCase
TestAnyAccesses.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 1), st.sampled_from([1, 2, 4]),
                          st.integers(0, 0xFFFFFFFF)), max_size=60), KEYS)
def test_after_any_accesses_a_select_reads_the_item_from_its_start(accesses, key):
    device = FwCfg(cpus=1, max_cpus=2, ram_size=1 << 20, files=FILES)
    bus = bus_with(device)
    for is_write, offset, size, value in accesses:
        if is_write:
            bus.write(FW_CFG_PORT + offset, size, value)
        else:
            bus.read(FW_CFG_PORT + offset, size)
    item = device.item(key)
    assert read_item(bus, key, len(item) + 2) == item + b"\0\0"
