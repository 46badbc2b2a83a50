"""The i8042 keyboard controller (ports 0x60 and 0x64) and the fast A20 gate (port 0x92), as far as
OS tutorials and boot loaders program them: the status register, the controller's commands, the
output port's A20 and reset lines, and a PS/2 keyboard that answers its commands.

References: the IBM AT Technical Reference's 8042 chapter, the OSDev wiki's "8042 PS/2 Controller",
"PS/2 Keyboard" and "A20 Line" (and QEMU's hw/input/pckbd.c where they are silent).

- Status (0x64 read): bit 0 output buffer full, bit 1 input buffer full (always 0: every write is
  taken at once), bit 2 system flag (command byte bit 2: set, as after the BIOS's self test), bit 3
  whether the last write was a command (0x64) or data (0x60), bit 4 keyboard not inhibited (1),
  bit 5 the next byte is the mouse's (after command 0xD3 only). Timeout and parity bits stay 0.
- Output buffer (0x60 read): a controller reply (one byte: a newer reply replaces an unread one, as
  the 8042 overwrites its output register) comes first, then the keyboard's bytes (a bounded queue,
  held back while the keyboard port is disabled). Reading it empty gives the last byte again.
- Commands (0x64 write): 0x20-0x3F read and 0x60-0x7F write the controller's 32 bytes of RAM (byte
  0 is the command byte); 0xA7/0xA8 disable/enable the mouse port; 0xA9, 0xAB port tests and 0xAA
  self test (passed); 0xAD/0xAE disable/enable the keyboard port; 0xC0 read input port; 0xD0/0xD1
  read/write output port; 0xD2/0xD3 write the keyboard's/mouse's output buffer; 0xD4 write to the
  mouse; 0xDD/0xDF A20 off/on; 0xE0 read test inputs; 0xF0-0xFF pulse output port bits 0-3 low.
  Others are ignored. A command cancels one still waiting for its data byte, as on the 8042.
- A20 is always on: KVM gives no way to wrap addresses at 1 MiB. The output port and port 0x92
  accept A20 off and keep reporting it on; the BIOS's int 15h 2400h says the same.
- Reset: the output port's bit 0 (the CPU's reset line) pulsed or written low, or port 0x92 bit 0
  set, calls `on_reset`, which ends the run as a reset (status 0).
- Data (0x60 write) that no command waits for goes to the keyboard, which re-enables the keyboard
  port (the 8042 must clock it out). The keyboard answers 0xFF reset (0xFA, 0xAA), 0xF2 identify
  (0xFA, 0xAB, 0x83 -- 0x41 while the controller translates, command byte bit 6, as the 8042 turns
  it into scan code set 1), 0xEE echo, 0xF0 scan code set (and its get), 0xED LEDs and 0xF3
  typematic rate (each with its data byte), 0xF4/0xF5/0xF6 with 0xFA, and anything else with 0xFE
  (resend). No mouse is attached: bytes written to it (0xD4) are dropped, nothing answers.

Keys reach guests through int 16h (kvmrun's BIOS) only, for now: no scan codes come through here and
no IRQ 1 or IRQ 12 is raised, whatever the command byte says. `I8042.push_output` is where a key
source would put its bytes (the keyboard's side of the output buffer).
"""
from __future__ import annotations

from ..fifo import deque

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Callable, Deque, Optional

DATA_PORT = 0x60
COMMAND_PORT = 0x64
SYSTEM_CONTROL_A_PORT = 0x92

# Status register bits.
STATUS_OUTPUT_FULL = 0x01
STATUS_INPUT_FULL = 0x02
STATUS_SYSTEM_FLAG = 0x04
STATUS_COMMAND = 0x08
STATUS_NOT_INHIBITED = 0x10
STATUS_MOUSE_OUTPUT = 0x20

# Command byte (controller RAM byte 0) bits.
CONFIG_KEYBOARD_IRQ = 0x01
CONFIG_MOUSE_IRQ = 0x02
CONFIG_SYSTEM_FLAG = 0x04
CONFIG_KEYBOARD_DISABLED = 0x10
CONFIG_MOUSE_DISABLED = 0x20
CONFIG_TRANSLATE = 0x40
# As a PC BIOS leaves it: keyboard interrupt on, self test passed, mouse port off, translation on.
DEFAULT_CONFIG = CONFIG_KEYBOARD_IRQ | CONFIG_SYSTEM_FLAG | CONFIG_MOUSE_DISABLED | CONFIG_TRANSLATE

# Output port bits.
OUTPUT_RESET = 0x01               # the CPU's reset line, active low
OUTPUT_A20 = 0x02
OUTPUT_KEPT = 0xCC                # the ports' clock and data lines: stored as written
DEFAULT_OUTPUT_PORT = OUTPUT_KEPT | OUTPUT_A20 | OUTPUT_RESET      # lines released, A20 on

# Controller commands.
CMD_READ_RAM = 0x20               # 0x20-0x3F: RAM byte (command & 0x1F)
CMD_WRITE_RAM = 0x60              # 0x60-0x7F
CMD_MOUSE_DISABLE = 0xA7
CMD_MOUSE_ENABLE = 0xA8
CMD_MOUSE_TEST = 0xA9
CMD_SELF_TEST = 0xAA
CMD_KEYBOARD_TEST = 0xAB
CMD_KEYBOARD_DISABLE = 0xAD
CMD_KEYBOARD_ENABLE = 0xAE
CMD_READ_INPUT_PORT = 0xC0
CMD_READ_OUTPUT_PORT = 0xD0
CMD_WRITE_OUTPUT_PORT = 0xD1
CMD_WRITE_KEYBOARD_OUTPUT = 0xD2
CMD_WRITE_MOUSE_OUTPUT = 0xD3
CMD_WRITE_MOUSE = 0xD4
CMD_A20_OFF = 0xDD
CMD_A20_ON = 0xDF
CMD_READ_TEST_INPUTS = 0xE0
CMD_PULSE_FIRST = 0xF0            # 0xF0-0xFF: pulse output port bits 0-3 low where the command's are 0
CMD_PULSE_RESET = 0xFE

SELF_TEST_PASSED = 0x55
PORT_TEST_PASSED = 0x00
INPUT_PORT = 0x80                 # keyboard not inhibited (the key lock), as QEMU reports it

# The keyboard's commands and replies.
KBD_SET_LEDS = 0xED
KBD_ECHO = 0xEE
KBD_SCAN_CODE_SET = 0xF0
KBD_IDENTIFY = 0xF2
KBD_TYPEMATIC = 0xF3
KBD_ENABLE = 0xF4
KBD_DISABLE = 0xF5
KBD_DEFAULTS = 0xF6
KBD_RESET = 0xFF
KBD_ACK = 0xFA
KBD_RESEND = 0xFE
KBD_SELF_TEST_PASSED = 0xAA
KBD_ID = (0xAB, 0x83)
KBD_ID_TRANSLATED = (0xAB, 0x41)
# "Get scan code set" replies, untranslated and as the 8042 translates them (QEMU's values).
SCAN_SET_REPLY = {1: 0x01, 2: 0x02, 3: 0x03}
SCAN_SET_REPLY_TRANSLATED = {1: 0x43, 2: 0x41, 3: 0x3F}

KEYBOARD_BUFFER = 16              # bytes a PS/2 keyboard holds; more are lost (overrun)
RAM_SIZE = 32


class I8042:
    """The controller; `data` and `command` are its two ports (0x60 and 0x64, not a range: 0x61 is
    the PC's system control port B, not the keyboard controller's). The caller serialises calls."""

    def __init__(self, on_reset: Callable[[], None]):
        self._on_reset = on_reset
        self.data = _Port(self, is_command=False)
        self.command = _Port(self, is_command=True)
        self.ram = bytearray(RAM_SIZE)
        self.ram[0] = DEFAULT_CONFIG
        self.output_port = DEFAULT_OUTPUT_PORT
        self.last_was_command = False
        self._reply: Optional[int] = None            # the controller's unread reply
        self._reply_from_mouse = False
        self._keyboard: Deque[int] = deque()
        self._last_read = 0
        self._awaiting: Optional[int] = None         # the command whose data byte comes next
        self.keyboard = Ps2Keyboard(self)

    # --- what the guest sees -------------------------------------------------------------------------

    @property
    def config(self) -> int:
        return self.ram[0]

    def _keyboard_byte_ready(self) -> bool:
        return bool(self._keyboard) and not self.ram[0] & CONFIG_KEYBOARD_DISABLED

    def output_full(self) -> bool:
        return self._reply is not None or self._keyboard_byte_ready()

    def status(self) -> int:
        status = STATUS_NOT_INHIBITED | (self.ram[0] & CONFIG_SYSTEM_FLAG)
        if self.output_full():
            status |= STATUS_OUTPUT_FULL
            if self._reply is not None and self._reply_from_mouse:
                status |= STATUS_MOUSE_OUTPUT
        if self.last_was_command:
            status |= STATUS_COMMAND
        return status

    def read_output(self) -> int:
        if self._reply is not None:
            self._last_read, self._reply = self._reply, None
        elif self._keyboard_byte_ready():
            self._last_read = self._keyboard.popleft()
        return self._last_read

    def push_output(self, byte: int) -> bool:
        """A byte from the keyboard (as the guest will read it) joins the output buffer; False when
        the keyboard's buffer is full and the byte is lost."""
        if len(self._keyboard) >= KEYBOARD_BUFFER:
            return False
        self._keyboard.append(byte & 0xFF)
        return True

    def drop_keyboard_output(self) -> None:
        """The keyboard's unread bytes are gone (it was reset)."""
        self._keyboard.clear()

    def pending_output(self) -> int:
        """Bytes waiting in the output buffer, the disabled keyboard's included."""
        return len(self._keyboard) + (self._reply is not None)

    # --- ports ---------------------------------------------------------------------------------------

    def port_read(self, is_command: bool) -> int:
        return self.status() if is_command else self.read_output()

    def port_write(self, is_command: bool, value: int) -> None:
        value &= 0xFF
        self.last_was_command = is_command
        if is_command:
            self._awaiting = None
            self._run_command(value)
        elif self._awaiting is not None:
            command, self._awaiting = self._awaiting, None
            self._command_data(command, value)
        else:
            self.ram[0] &= ~CONFIG_KEYBOARD_DISABLED      # clocking the byte out enables the port
            self.keyboard.receive(value)

    # --- the controller ------------------------------------------------------------------------------

    def _reply_with(self, value: int, from_mouse: bool = False) -> None:
        self._reply, self._reply_from_mouse = value & 0xFF, from_mouse

    def _run_command(self, command: int) -> None:
        if CMD_READ_RAM <= command < CMD_READ_RAM + RAM_SIZE:
            self._reply_with(self.ram[command - CMD_READ_RAM])
        elif CMD_WRITE_RAM <= command < CMD_WRITE_RAM + RAM_SIZE or command in _TAKES_DATA:
            self._awaiting = command
        elif command == CMD_MOUSE_DISABLE:
            self.ram[0] |= CONFIG_MOUSE_DISABLED
        elif command == CMD_MOUSE_ENABLE:
            self.ram[0] &= ~CONFIG_MOUSE_DISABLED
        elif command in (CMD_MOUSE_TEST, CMD_KEYBOARD_TEST):
            self._reply_with(PORT_TEST_PASSED)
        elif command == CMD_SELF_TEST:
            self.ram[0] |= CONFIG_SYSTEM_FLAG
            self._reply_with(SELF_TEST_PASSED)
        elif command == CMD_KEYBOARD_DISABLE:
            self.ram[0] |= CONFIG_KEYBOARD_DISABLED
        elif command == CMD_KEYBOARD_ENABLE:
            self.ram[0] &= ~CONFIG_KEYBOARD_DISABLED
        elif command == CMD_READ_INPUT_PORT:
            self._reply_with(INPUT_PORT)
        elif command == CMD_READ_OUTPUT_PORT:
            self._reply_with(self.output_port)
        elif command == CMD_READ_TEST_INPUTS:
            self._reply_with(0)
        elif command >= CMD_PULSE_FIRST and not command & OUTPUT_RESET:
            self._on_reset()
        # 0xDD/0xDF (A20 stays on), other pulses and unknown commands change nothing.

    def _command_data(self, command: int, value: int) -> None:
        if CMD_WRITE_RAM <= command < CMD_WRITE_RAM + RAM_SIZE:
            self.ram[command - CMD_WRITE_RAM] = value
        elif command == CMD_WRITE_OUTPUT_PORT:
            self.output_port = (value & OUTPUT_KEPT) | OUTPUT_A20 | OUTPUT_RESET
            if not value & OUTPUT_RESET:
                self._on_reset()
        elif command == CMD_WRITE_KEYBOARD_OUTPUT:
            self._reply_with(value)
        elif command == CMD_WRITE_MOUSE_OUTPUT:
            self._reply_with(value, from_mouse=True)
        # CMD_WRITE_MOUSE: no mouse is attached.


_TAKES_DATA = frozenset((CMD_WRITE_OUTPUT_PORT, CMD_WRITE_KEYBOARD_OUTPUT, CMD_WRITE_MOUSE_OUTPUT, CMD_WRITE_MOUSE))


class Ps2Keyboard:
    """The keyboard's command interpreter: its replies go to the controller's output buffer."""

    def __init__(self, controller: I8042):
        self._controller = controller
        self.scanning = True              # F4/F5: whether a key source should send scan codes
        self.scan_code_set = 2
        self._awaiting: Optional[int] = None

    def _send(self, *replies: int) -> None:
        for reply in replies:
            self._controller.push_output(reply)

    def receive(self, value: int) -> None:
        if self._awaiting is not None:
            command, self._awaiting = self._awaiting, None
            if command != KBD_SCAN_CODE_SET:            # LEDs, typematic rate: taken, nothing to show
                self._send(KBD_ACK)
            elif value == 0:
                replies = SCAN_SET_REPLY_TRANSLATED if self._controller.config & CONFIG_TRANSLATE else SCAN_SET_REPLY
                self._send(KBD_ACK, replies[self.scan_code_set])
            elif value in SCAN_SET_REPLY:
                self.scan_code_set = value
                self._send(KBD_ACK)
            else:
                self._send(KBD_RESEND)
            return
        if value == KBD_RESET:
            self._controller.drop_keyboard_output()     # a reset empties the keyboard's buffer
            self.scanning, self.scan_code_set = True, 2
            self._send(KBD_ACK, KBD_SELF_TEST_PASSED)
        elif value == KBD_IDENTIFY:
            self._send(KBD_ACK, *(KBD_ID_TRANSLATED if self._controller.config & CONFIG_TRANSLATE else KBD_ID))
        elif value == KBD_ECHO:
            self._send(KBD_ECHO)
        elif value in (KBD_SET_LEDS, KBD_TYPEMATIC, KBD_SCAN_CODE_SET):
            self._awaiting = value
            self._send(KBD_ACK)
        elif value in (KBD_ENABLE, KBD_DISABLE, KBD_DEFAULTS):
            self.scanning = value != KBD_DISABLE
            self._send(KBD_ACK)
        else:
            self._send(KBD_RESEND)


class _Port:
    """One of the controller's ports: a wider access is its first byte here and then ports nothing
    decodes (reads of all ones), as an 8-bit device sees it."""

    def __init__(self, controller: I8042, is_command: bool):
        self._controller = controller
        self._is_command = is_command

    def read(self, offset: int, size: int, access=None) -> int:
        high = (1 << (8 * size)) - 0x100
        return high | self._controller.port_read(self._is_command)

    def write(self, offset: int, size: int, value: int, access=None) -> None:
        self._controller.port_write(self._is_command, value)


class SystemControlA:
    """Port 0x92, System Control Port A (the PS/2 "fast A20" gate): bit 1 is A20, which reads as on
    whatever is written; writing bit 0 set resets the machine (`on_reset`) and it reads back as 0, so
    a guest's read-modify-write of A20 never resets. Other bits (the security lock, the disk
    activity lights) are kept as written."""

    A20 = 0x02
    FAST_RESET = 0x01

    def __init__(self, on_reset: Callable[[], None]):
        self._on_reset = on_reset
        self.value = self.A20

    def read(self, offset: int, size: int, access=None) -> int:
        return (1 << (8 * size)) - 0x100 | self.value

    def write(self, offset: int, size: int, value: int, access=None) -> None:
        self.value = (value & 0xFF & ~self.FAST_RESET) | self.A20
        if value & self.FAST_RESET:
            self._on_reset()
