"""The VGA's registers, as far as a text-mode guest uses them: where the cursor is and how it looks,
the start address it scrolls with, and the registers guests read to find the adapter.

The text buffer itself (0xB8000) is plain guest RAM that the host reads (screen.py); nothing here
sees it. Registers start with the values a BIOS leaves after setting mode 3 (80x25 colour text), so a
guest booted without a BIOS finds the adapter as it would after one.

The device covers ports 0x3B0-0x3DF. VGA decodes 0x3B0-0x3BB and 0x3C0-0x3DF; 0x3BC-0x3BF (the MDA's
parallel port) read as all ones and ignore writes here, as nothing decodes them. An access of 2 or 4
bytes is that many one-byte accesses to consecutive ports, as an 8-bit device sees it on the bus: a
16-bit OUT to 0x3D4 writes the CRTC index and then the data register (`outw` of index | value << 8).
The caller holds a lock around every call.
"""

VGA_PORT_BASE = 0x3B0
VGA_PORT_COUNT = 0x30

# Port offsets from VGA_PORT_BASE.
CRTC_INDEX_MONO = 0x04            # 0x3B4, 0x3B5: the CRTC while misc bit 0 selects monochrome
CRTC_DATA_MONO = 0x05
STATUS_MONO = 0x0A                # 0x3BA: input status 1 (read), feature control (write), monochrome
ATTR_WRITE = 0x10                 # 0x3C0: attribute index and data, alternating (a flip-flop)
ATTR_READ = 0x11                  # 0x3C1: attribute data, read only
MISC_WRITE = 0x12                 # 0x3C2: misc output (write), input status 0 (read)
SUBSYSTEM_ENABLE = 0x13           # 0x3C3
SEQ_INDEX = 0x14                  # 0x3C4, 0x3C5: sequencer
SEQ_DATA = 0x15
DAC_MASK = 0x16                   # 0x3C6: pixel mask
DAC_READ_INDEX = 0x17             # 0x3C7: read index (write), DAC state (read)
DAC_WRITE_INDEX = 0x18            # 0x3C8
DAC_DATA = 0x19                   # 0x3C9: red, green, blue in turn
FEATURE_READ = 0x1A               # 0x3CA: feature control (read)
MISC_READ = 0x1C                  # 0x3CC: misc output (read)
GC_INDEX = 0x1E                   # 0x3CE, 0x3CF: graphics controller
GC_DATA = 0x1F
CRTC_INDEX_COLOUR = 0x24          # 0x3D4, 0x3D5: the CRTC while misc bit 0 selects colour
CRTC_DATA_COLOUR = 0x25
STATUS_COLOUR = 0x2A              # 0x3DA: input status 1 (read), feature control (write), colour

MISC_COLOUR = 0x01                # misc output bit 0: CRTC and status at 0x3Dx, else at 0x3Bx

# CRTC registers.
CRTC_MAX_SCAN_LINE = 0x09
CRTC_CURSOR_START = 0x0A
CRTC_CURSOR_END = 0x0B
CRTC_START_HIGH = 0x0C
CRTC_START_LOW = 0x0D
CRTC_CURSOR_HIGH = 0x0E
CRTC_CURSOR_LOW = 0x0F
CRTC_VSYNC_END = 0x11
CURSOR_DISABLE = 0x20             # in the cursor start register
CRTC_PROTECT = 0x80               # in vertical sync end: CRTC 0-7 read only (7: all but bit 4)
CRTC_OVERFLOW = 0x07
OVERFLOW_LINE_COMPARE = 0x10      # the one overflow bit protection leaves writable
SCAN_LINE_MASK = 0x1F

# Attribute controller.
ATTR_INDEX_MASK = 0x1F
ATTR_PALETTE_SOURCE = 0x20        # index bit 5: the display uses the palette (clear while a guest loads it)
ATTR_MODE_CONTROL = 0x10
ATTR_BLINK = 0x08                 # in mode control: attribute bit 7 blinks, else it brightens the background

STATUS_RETRACE = 0x09             # input status 1: display disabled (bit 0) and vertical retrace (bit 3)
DAC_STATE_READING = 0x03          # 0x3C7 reads 3 after a read index was set, 0 after a write index

# Mode 3 as a BIOS leaves it.
MODE3_MISC = 0x67
MODE3_SEQUENCER = bytes([0x03, 0x00, 0x03, 0x00, 0x02])
MODE3_CRTC = bytes([0x5F, 0x4F, 0x50, 0x82, 0x55, 0x81, 0xBF, 0x1F,
                    0x00, 0x4F, 0x0D, 0x0E, 0x00, 0x00, 0x00, 0x00,
                    0x9C, 0x8E, 0x8F, 0x28, 0x1F, 0x96, 0xB9, 0xA3,
                    0xFF])
MODE3_GRAPHICS = bytes([0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x0E, 0x00, 0xFF])
MODE3_ATTRIBUTES = bytes([0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07,
                          0x38, 0x39, 0x3A, 0x3B, 0x3C, 0x3D, 0x3E, 0x3F,
                          0x0C, 0x00, 0x0F, 0x08, 0x00])

# The CRTC registers whose value changes what the screen shows (cursor shape and place, start address).
_SHOWN_CRTC = frozenset(range(CRTC_MAX_SCAN_LINE, CRTC_CURSOR_LOW + 1))


def _ega_palette() -> bytearray:
    """The DAC's first 64 entries as a BIOS loads them for mode 3 (6-bit rgbRGB), the rest black."""
    palette = bytearray(256 * 3)
    for i in range(64):
        for component, (high, low) in enumerate(((2, 5), (1, 4), (0, 3))):     # red, green, blue
            palette[i * 3 + component] = 0x2A * (i >> high & 1) + 0x15 * (i >> low & 1)
    return palette


_EGA_PALETTE = bytes(_ega_palette())        # built once: every machine has a VGA


class VgaRegisters:
    """The register state and its bus interface; `start_address`, `cursor_offset`, `cursor_visible`,
    `blink_enabled` and `generation` are what the screen reads."""

    def __init__(self) -> None:
        self.misc = MODE3_MISC
        self.feature = 0
        self.subsystem_enable = 0x01
        self.crtc = bytearray(MODE3_CRTC)
        self.crtc_index = 0
        self.sequencer = bytearray(MODE3_SEQUENCER)
        self.sequencer_index = 0
        self.graphics = bytearray(MODE3_GRAPHICS)
        self.graphics_index = 0
        self.attributes = bytearray(MODE3_ATTRIBUTES)
        self.attribute_index = ATTR_PALETTE_SOURCE     # the display on, as a BIOS leaves it
        self.attribute_data_next = False               # the flip-flop: the next 0x3C0 write is data
        self.dac_mask = 0xFF
        self.dac = bytearray(_EGA_PALETTE)
        self.dac_read_index = 0
        self.dac_write_index = 0
        self.dac_component = 0                         # 0-2: red, green, blue of the current entry
        self.dac_pending = bytearray(3)                # a written entry takes effect with its blue
        self.dac_reading = False
        self.in_retrace = False
        self.generation = 0                            # changes whenever what is shown may have
        self.text_written = False                      # the host wrote the text buffer (BIOS int 10h)

    # --- what the screen shows ---------------------------------------------------------------------

    @property
    def start_address(self) -> int:
        """The cell (not byte) the screen's top-left corner shows."""
        return self.crtc[CRTC_START_HIGH] << 8 | self.crtc[CRTC_START_LOW]

    @property
    def cursor_offset(self) -> int:
        """The cell the cursor is at, counted like start_address (from the buffer's start)."""
        return self.crtc[CRTC_CURSOR_HIGH] << 8 | self.crtc[CRTC_CURSOR_LOW]

    @property
    def cursor_visible(self) -> bool:
        """The cursor is drawn on the scan lines from its start to its end register: none when disabled,
        when start is after end, or when start is below the character cell's last line."""
        start = self.crtc[CRTC_CURSOR_START]
        first, last = start & SCAN_LINE_MASK, self.crtc[CRTC_CURSOR_END] & SCAN_LINE_MASK
        cell_last = self.crtc[CRTC_MAX_SCAN_LINE] & SCAN_LINE_MASK
        return not start & CURSOR_DISABLE and first <= last and first <= cell_last

    @property
    def blink_enabled(self) -> bool:
        """Attribute bit 7 makes a character blink (a BIOS's default); otherwise it selects a bright
        background."""
        return bool(self.attributes[ATTR_MODE_CONTROL] & ATTR_BLINK)

    @property
    def colour(self) -> bool:
        return bool(self.misc & MISC_COLOUR)

    # --- what a BIOS sets (int 10h), as its OUTs to the CRTC would -------------------------------------

    def set_cursor(self, cell: int) -> None:
        self._write_crtc(CRTC_CURSOR_HIGH, cell >> 8 & 0xFF)
        self._write_crtc(CRTC_CURSOR_LOW, cell & 0xFF)

    def set_start_address(self, cell: int) -> None:
        self._write_crtc(CRTC_START_HIGH, cell >> 8 & 0xFF)
        self._write_crtc(CRTC_START_LOW, cell & 0xFF)

    def set_cursor_shape(self, start: int, end: int) -> None:
        self._write_crtc(CRTC_CURSOR_START, start)
        self._write_crtc(CRTC_CURSOR_END, end)

    def host_wrote_text(self) -> None:
        """The BIOS wrote the text buffer from the host: KVM's dirty log does not see such writes."""
        self.text_written = True
        self.generation += 1

    # --- the bus interface -------------------------------------------------------------------------

    def read(self, offset: int, size: int, access=None) -> int:
        value = 0
        for i in range(size):
            value |= self._read_byte(offset + i) << (8 * i)
        return value

    def write(self, offset: int, size: int, value: int, access=None) -> None:
        for i in range(size):
            self._write_byte(offset + i, value >> (8 * i) & 0xFF)

    # --- one port ----------------------------------------------------------------------------------

    def _crtc_ports(self):
        return (CRTC_INDEX_COLOUR, CRTC_DATA_COLOUR, STATUS_COLOUR) if self.colour \
            else (CRTC_INDEX_MONO, CRTC_DATA_MONO, STATUS_MONO)

    def _read_byte(self, offset: int) -> int:
        crtc_index, crtc_data, status = self._crtc_ports()
        if offset == crtc_index:
            return self.crtc_index
        if offset == crtc_data:
            return _at(self.crtc, self.crtc_index)
        if offset == status:
            # Reading status resets the attribute flip-flop. The retrace bits toggle on each read, so
            # a loop waiting for retrace to start, or to end, sees it after one more read.
            self.attribute_data_next = False
            self.in_retrace = not self.in_retrace
            return STATUS_RETRACE if self.in_retrace else 0
        if offset == ATTR_WRITE:
            return self.attribute_index
        if offset == ATTR_READ:
            return _at(self.attributes, self.attribute_index & ATTR_INDEX_MASK)
        if offset == MISC_WRITE:
            return 0                              # input status 0: no switch sense, no interrupt
        if offset == SUBSYSTEM_ENABLE:
            return self.subsystem_enable
        if offset == SEQ_INDEX:
            return self.sequencer_index
        if offset == SEQ_DATA:
            return _at(self.sequencer, self.sequencer_index)
        if offset == DAC_MASK:
            return self.dac_mask
        if offset == DAC_READ_INDEX:
            return DAC_STATE_READING if self.dac_reading else 0
        if offset == DAC_WRITE_INDEX:
            return self.dac_write_index
        if offset == DAC_DATA:
            return self._read_dac()
        if offset == FEATURE_READ:
            return self.feature
        if offset == MISC_READ:
            return self.misc
        if offset == GC_INDEX:
            return self.graphics_index
        if offset == GC_DATA:
            return _at(self.graphics, self.graphics_index)
        return 0xFF                               # nothing decodes it (or the other CRTC address)

    def _write_byte(self, offset: int, value: int) -> None:
        crtc_index, crtc_data, status = self._crtc_ports()
        if offset == crtc_index:
            self.crtc_index = value
        elif offset == crtc_data:
            self._write_crtc(self.crtc_index, value)
        elif offset == status:
            self.feature = value
        elif offset == ATTR_WRITE:
            self._write_attribute(value)
        elif offset == MISC_WRITE:
            self.misc = value
        elif offset == SUBSYSTEM_ENABLE:
            self.subsystem_enable = value & 0x01
        elif offset == SEQ_INDEX:
            self.sequencer_index = value
        elif offset == SEQ_DATA:
            _store(self.sequencer, self.sequencer_index, value)
        elif offset == DAC_MASK:
            self.dac_mask = value
        elif offset == DAC_READ_INDEX:
            self.dac_read_index, self.dac_component, self.dac_reading = value, 0, True
        elif offset == DAC_WRITE_INDEX:
            self.dac_write_index, self.dac_component, self.dac_reading = value, 0, False
        elif offset == DAC_DATA:
            self._write_dac(value)
        elif offset == GC_INDEX:
            self.graphics_index = value
        elif offset == GC_DATA:
            _store(self.graphics, self.graphics_index, value)

    def _write_crtc(self, index: int, value: int) -> None:
        if index >= len(self.crtc):
            return
        if self.crtc[CRTC_VSYNC_END] & CRTC_PROTECT and index <= CRTC_OVERFLOW:
            if index != CRTC_OVERFLOW:
                return
            value = self.crtc[index] & ~OVERFLOW_LINE_COMPARE | value & OVERFLOW_LINE_COMPARE
        if index in _SHOWN_CRTC and self.crtc[index] != value:
            self.generation += 1
        self.crtc[index] = value

    def _write_attribute(self, value: int) -> None:
        if not self.attribute_data_next:
            self.attribute_index = value & (ATTR_INDEX_MASK | ATTR_PALETTE_SOURCE)
        else:
            index = self.attribute_index & ATTR_INDEX_MASK
            if index == ATTR_MODE_CONTROL and (self.attributes[index] ^ value) & ATTR_BLINK:
                self.generation += 1
            _store(self.attributes, index, value)
        self.attribute_data_next = not self.attribute_data_next

    def _read_dac(self) -> int:
        value = self.dac[self.dac_read_index * 3 + self.dac_component]
        self.dac_component += 1
        if self.dac_component == 3:
            self.dac_component = 0
            self.dac_read_index = (self.dac_read_index + 1) & 0xFF
        return value

    def _write_dac(self, value: int) -> None:
        self.dac_pending[self.dac_component] = value & 0x3F     # the DAC has 6 bits a component
        self.dac_component += 1
        if self.dac_component == 3:
            self.dac_component = 0
            self.dac[self.dac_write_index * 3:self.dac_write_index * 3 + 3] = self.dac_pending
            self.dac_write_index = (self.dac_write_index + 1) & 0xFF


def _at(registers: bytearray, index: int) -> int:
    """A register's value; an index past the last register reads as all ones (nothing answers)."""
    return registers[index] if index < len(registers) else 0xFF


def _store(registers: bytearray, index: int, value: int) -> None:
    if index < len(registers):
        registers[index] = value
