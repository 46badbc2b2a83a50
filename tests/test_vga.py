"""VGA register logic, without a VM: ports as a guest uses them, through the IoBus."""
from hypothesis import given, settings, strategies as st

from kvmrun.devices import vga as v
from kvmrun.devices.bus import IoBus


class Card:
    """A VgaRegisters on an IoBus, addressed by port number as a guest addresses it."""

    def __init__(self):
        self.regs = v.VgaRegisters()
        self.bus = IoBus(strict=True)
        self.bus.register(v.VGA_PORT_BASE, v.VGA_PORT_COUNT, self.regs)

    def inb(self, port):
        return self.bus.read(port, 1)

    def outb(self, port, value):
        self.bus.write(port, 1, value)

    def crtc(self, index, value=None, base=0x3D4):
        self.outb(base, index)
        if value is not None:
            self.outb(base + 1, value)
        return self.inb(base + 1)

    def attribute(self, index, value=None):
        self.inb(0x3DA)                              # the flip-flop to "index"
        self.outb(0x3C0, index | v.ATTR_PALETTE_SOURCE)
        if value is not None:
            self.outb(0x3C0, value)
        return self.inb(0x3C1)


def test_ports_are_the_vgas():
    assert (v.VGA_PORT_BASE, v.VGA_PORT_BASE + v.VGA_PORT_COUNT - 1) == (0x3B0, 0x3DF)


def test_reset_state_is_what_a_bios_leaves_for_mode_3():
    card = Card()
    assert card.inb(0x3CC) == 0x67                   # misc output: colour, so the CRTC is at 0x3D4
    assert bytes(card.crtc(i) for i in range(25)) == v.MODE3_CRTC
    assert card.crtc(0x0A) == 0x0D and card.crtc(0x0B) == 0x0E and card.crtc(0x09) == 0x4F
    sequencer = []
    for i in range(5):
        card.outb(0x3C4, i)
        sequencer.append(card.inb(0x3C5))
    assert bytes(sequencer) == v.MODE3_SEQUENCER
    graphics = []
    for i in range(9):
        card.outb(0x3CE, i)
        graphics.append(card.inb(0x3CF))
    assert bytes(graphics) == v.MODE3_GRAPHICS
    assert bytes(card.attribute(i) for i in range(21)) == v.MODE3_ATTRIBUTES
    regs = card.regs
    assert (regs.start_address, regs.cursor_offset, regs.cursor_visible, regs.blink_enabled) == (0, 0, True, True)


def test_cursor_location_and_start_address_from_the_crtc():
    card = Card()
    card.crtc(0x0E, 0x01)
    card.crtc(0x0F, 0x23)
    card.crtc(0x0C, 0x00)
    card.crtc(0x0D, 0x50)
    assert (card.regs.cursor_offset, card.regs.start_address) == (0x123, 80)
    assert card.crtc(0x0E) == 0x01 and card.crtc(0x0F) == 0x23


def test_a_16_bit_out_to_the_index_port_writes_index_then_data():
    card = Card()
    card.bus.write(0x3D4, 2, 0x0E | 0x07 << 8)       # outw(0x3D4, 0x070E): cursor high = 7
    card.bus.write(0x3D4, 2, 0x0F | 0xD0 << 8)
    assert card.regs.cursor_offset == 0x07D0
    assert card.inb(0x3D4) == 0x0F                   # the index stays as written
    assert card.bus.read(0x3D4, 2) == 0x0F | 0xD0 << 8


def test_the_crtc_answers_at_0x3b4_only_while_misc_selects_monochrome():
    card = Card()
    assert card.inb(0x3B4) == 0xFF and card.inb(0x3B5) == 0xFF and card.inb(0x3BA) == 0xFF
    card.crtc(0x0F, 0x05, base=0x3B4)                # ignored: the CRTC is at 0x3D4
    assert card.regs.cursor_offset == 0
    card.outb(0x3C2, 0x66)                           # misc bit 0 clear: monochrome addresses
    assert card.inb(0x3CC) == 0x66
    assert card.inb(0x3D4) == 0xFF and card.inb(0x3D5) == 0xFF and card.inb(0x3DA) == 0xFF
    assert card.crtc(0x0F, 0x05, base=0x3B4) == 0x05
    assert card.regs.cursor_offset == 0x05
    assert {card.inb(0x3BA), card.inb(0x3BA)} == {0x00, 0x09}
    card.outb(0x3C2, 0x67)
    assert card.crtc(0x0F) == 0x05                   # one CRTC, two addresses


def test_cursor_visibility_follows_the_shape_registers():
    card = Card()
    card.crtc(0x0A, 0x2D)                            # bit 5: cursor off
    assert not card.regs.cursor_visible
    card.crtc(0x0A, 0x0D)
    assert card.regs.cursor_visible
    card.crtc(0x0A, 0x0F)                            # start below end: no scan line has a cursor
    assert not card.regs.cursor_visible
    card.crtc(0x0A, 0x00)
    card.crtc(0x0B, 0x1F)                            # a block, ending past the cell: drawn to its bottom
    assert card.regs.cursor_visible
    card.crtc(0x0A, 0x10)
    assert not card.regs.cursor_visible              # starts past the cell's last line (15)


def test_protect_bit_makes_crtc_0_to_7_read_only_except_line_compare_bit():
    card = Card()
    assert card.crtc(0x00, 0x12) == 0x5F             # 0x11 bit 7 is set after mode 3
    assert card.crtc(0x07, 0x00) == 0x1F & ~0x10     # only bit 4 of the overflow register
    card.crtc(0x11, 0x0E)
    assert card.crtc(0x00, 0x12) == 0x12
    assert card.crtc(0x07, 0x00) == 0x00


def test_unknown_crtc_sequencer_and_graphics_indices_read_all_ones():
    card = Card()
    assert card.crtc(0x19, 0x42) == 0xFF
    assert card.crtc(0xFF) == 0xFF and card.inb(0x3D4) == 0xFF
    card.outb(0x3C4, 0x07)
    card.outb(0x3C5, 0x00)
    assert (card.inb(0x3C4), card.inb(0x3C5)) == (0x07, 0xFF)
    card.outb(0x3CE, 0x09)
    assert card.inb(0x3CF) == 0xFF
    card.outb(0x3CE, 0x05)
    card.outb(0x3CF, 0x40)
    assert card.inb(0x3CF) == 0x40


def test_input_status_1_toggles_retrace_so_polling_loops_end():
    card = Card()
    reads = [card.inb(0x3DA) for _ in range(4)]
    assert reads == [0x09, 0x00, 0x09, 0x00]
    for _ in range(2):                               # wait for retrace to end, then to start
        polls = 0
        while card.inb(0x3DA) & 0x08:
            polls += 1
        while not card.inb(0x3DA) & 0x08:
            polls += 1
        assert polls <= 2


def test_attribute_controller_flip_flop():
    card = Card()
    card.inb(0x3DA)
    card.outb(0x3C0, 0x10 | 0x20)                    # index: mode control, display on
    assert card.inb(0x3C0) == 0x30                   # reads the index, does not flip
    card.outb(0x3C0, 0x04)                           # data: blinking off
    assert card.inb(0x3C1) == 0x04
    assert not card.regs.blink_enabled
    card.outb(0x3C0, 0x11)                           # the flip-flop is back at "index"
    assert card.inb(0x3C0) == 0x11
    card.outb(0x3C0, 0x3F)                           # overscan
    assert card.attribute(0x11) == 0x3F
    card.outb(0x3C0, 0x00)                           # attribute() wrote the index only: this is 0x11's data
    assert card.attribute(0x11) == 0x00
    card.outb(0x3C1, 0x55)                           # 0x3C1 is read only
    assert card.attribute(0x11) == 0x00


def test_dac_reads_back_what_was_written_six_bits_a_component():
    card = Card()
    assert [card.inb(0x3C9) for _ in range(6)] == [0, 0, 0, 0, 0, 0x2A]   # entries 0 and 1 as a BIOS loads
    card.outb(0x3C8, 0x05)
    for value in (0x3F, 0x41, 0x10, 0x01, 0x02, 0x03):
        card.outb(0x3C9, value)
    assert (card.inb(0x3C8), card.inb(0x3C7)) == (0x07, 0x00)
    card.outb(0x3C7, 0x05)
    assert card.inb(0x3C7) == 0x03
    assert [card.inb(0x3C9) for _ in range(6)] == [0x3F, 0x01, 0x10, 0x01, 0x02, 0x03]
    card.outb(0x3C7, 0x3F)
    assert [card.inb(0x3C9) for _ in range(3)] == [0x3F, 0x3F, 0x3F]
    card.outb(0x3C6, 0x0F)
    assert card.inb(0x3C6) == 0x0F


def test_other_ports_read_all_ones_and_ignore_writes():
    card = Card()
    for port in (0x3B0, 0x3B3, 0x3BC, 0x3BF, 0x3CB, 0x3CD, 0x3D0, 0x3D6, 0x3DB, 0x3DF):
        card.outb(port, 0)
        assert card.inb(port) == 0xFF
    assert card.bus.read(0x3B0, 2) == 0xFFFF and card.bus.read(0x3D0, 4) == 0xFFFFFFFF
    assert card.inb(0x3C2) == 0x00                   # input status 0
    assert card.inb(0x3C3) == 0x01                   # video subsystem enabled
    card.outb(0x3DA, 0x01)                           # feature control, read back at 0x3CA
    assert card.inb(0x3CA) == 0x01


def test_generation_changes_when_what_is_shown_changes():
    card = Card()
    shown = [(0x0E, 0x01), (0x0F, 0x02), (0x0C, 0x03), (0x0D, 0x04), (0x0A, 0x20), (0x0B, 0x0F), (0x09, 0x47)]
    for index, value in shown:
        before = card.regs.generation
        card.crtc(index, value)
        assert card.regs.generation != before, hex(index)
        before = card.regs.generation
        card.crtc(index, value)                      # the same value again: nothing changed
        assert card.regs.generation == before
    before = card.regs.generation
    card.attribute(0x10, 0x04)                       # blinking off: bit 7 is a bright background now
    assert card.regs.generation != before
    before = card.regs.generation
    card.crtc(0x13, 0x30)
    card.outb(0x3C4, 1)
    card.outb(0x3C5, 0x21)
    card.outb(0x3C8, 0)
    card.outb(0x3C9, 0)
    card.attribute(0x00, 0x3F)
    for port in range(0x3B0, 0x3E0):
        card.inb(port)
    assert card.regs.generation == before


def _check_invariants(regs):
    assert (len(regs.crtc), len(regs.sequencer), len(regs.graphics), len(regs.attributes)) == (25, 5, 9, 21)
    assert len(regs.dac) == 768 and all(value <= 0x3F for value in regs.dac)
    for value in (regs.misc, regs.feature, regs.crtc_index, regs.sequencer_index, regs.graphics_index,
                  regs.dac_mask, regs.dac_read_index, regs.dac_write_index):
        assert 0 <= value <= 0xFF
    assert 0 <= regs.attribute_index <= 0x3F and 0 <= regs.dac_component <= 2
    assert 0 <= regs.start_address <= 0xFFFF and 0 <= regs.cursor_offset <= 0xFFFF


accesses = st.lists(st.tuples(st.booleans(), st.integers(0, v.VGA_PORT_COUNT - 1), st.sampled_from([1, 2, 4]),
                              st.integers(0, 0xFFFFFFFF)), max_size=200)


@settings(max_examples=300, deadline=None)
@given(accesses)
def test_any_access_sequence_keeps_the_state_consistent(ops):
    regs = v.VgaRegisters()
    for is_write, offset, size, value in ops:
        if is_write:
            regs.write(offset, size, value & ((1 << 8 * size) - 1))
        else:
            assert 0 <= regs.read(offset, size) < 1 << 8 * size
        _check_invariants(regs)
    _ = regs.cursor_visible, regs.blink_enabled
