"""The i8042 keyboard controller and port 0x92 as OS tutorials program them: the status register, the
controller's commands, the A20 and reset lines, the keyboard's replies, and any sequence of port
accesses keeping the output buffer bounded and the status consistent with it."""
from hypothesis import given, settings, strategies as st

from kvmrun.devices.i8042 import (CONFIG_KEYBOARD_DISABLED, CONFIG_MOUSE_DISABLED, CONFIG_SYSTEM_FLAG,
                                  CONFIG_TRANSLATE, DEFAULT_CONFIG, KEYBOARD_BUFFER, I8042, SystemControlA)

OBF, IBF, SYSTEM_FLAG, COMMAND = 0x01, 0x02, 0x04, 0x08


class Controller:
    """The controller as a guest drives it: `inb`/`outb` on 0x60 and 0x64, resets counted."""

    def __init__(self):
        self.resets = 0
        self.kbd = I8042(self._reset)

    def _reset(self):
        self.resets += 1

    def status(self):
        return self.kbd.command.read(0, 1)

    def command(self, value):
        self.kbd.command.write(0, 1, value)

    def write_data(self, value):
        self.kbd.data.write(0, 1, value)

    def read_data(self):
        return self.kbd.data.read(0, 1)

    def wait_input_empty(self):
        for _ in range(1000):
            if not self.status() & IBF:
                return
        raise AssertionError("input buffer never empties")

    def wait_output_full(self):
        for _ in range(1000):
            if self.status() & OBF:
                return
        raise AssertionError("output buffer never fills")

    def ask(self, command):
        """A command with a one-byte reply, waited for as the OSDev wiki's code waits."""
        self.wait_input_empty()
        self.command(command)
        self.wait_output_full()
        return self.read_data()

    def drain(self):
        received = []
        while self.status() & OBF:
            received.append(self.read_data())
        return received


def test_status_after_boot_says_buffers_empty_and_self_test_passed():
    c = Controller()
    assert c.status() & (OBF | IBF) == 0
    assert c.status() & SYSTEM_FLAG


def test_osdev_a20_sequence_through_the_keyboard_controller_completes():
    # The OSDev wiki's "A20 Line" enable_A20: AD, D0 and read, D1 and write | 2, AE, waiting each step.
    c = Controller()
    c.wait_input_empty()
    c.command(0xAD)
    output_port = c.ask(0xD0)
    assert output_port & 0x03 == 0x03              # reset line high, A20 on
    c.wait_input_empty()
    c.command(0xD1)
    c.wait_input_empty()
    c.write_data(output_port | 2)
    c.wait_input_empty()
    c.command(0xAE)
    c.wait_input_empty()
    assert c.resets == 0
    assert c.ask(0xD0) & 0x02
    assert not c.kbd.config & CONFIG_KEYBOARD_DISABLED


def test_a20_cannot_be_turned_off():
    c = Controller()
    c.command(0xD1)
    c.write_data(0xDD)                             # bit 1 clear: A20 off, bit 0 set: no reset
    assert c.ask(0xD0) & 0x03 == 0x03
    for command in (0xDD, 0xDF):
        c.command(command)
        assert c.ask(0xD0) & 0x02
    assert c.resets == 0
    assert c.status() & OBF == 0                   # 0xDD/0xDF answer nothing


def test_writing_the_output_port_with_the_reset_line_low_resets():
    c = Controller()
    c.command(0xD1)
    c.write_data(0xDE)
    assert c.resets == 1


def test_pulse_commands_reset_only_when_they_pulse_bit_0():
    for command, resets in ((0xFE, 1), (0xF0, 1), (0xFC, 1), (0xFF, 0), (0xF1, 0), (0xFD, 0)):
        c = Controller()
        c.command(command)
        assert c.resets == resets, hex(command)


def test_other_commands_and_data_do_not_reset():
    c = Controller()
    c.write_data(0xFE)
    for command in (0xAD, 0xAE, 0xA7, 0xA8, 0xDD, 0xDF, 0x20, 0xAA, 0xAB):
        c.command(command)
    assert c.resets == 0


def test_configuration_byte_reads_and_writes():
    c = Controller()
    assert c.ask(0x20) == DEFAULT_CONFIG
    c.command(0x60)
    c.write_data(0x47)
    assert c.ask(0x20) == 0x47
    c.command(0x60)
    c.write_data(0x47 & ~CONFIG_SYSTEM_FLAG)
    assert not c.status() & SYSTEM_FLAG            # the command byte's bit 2 is the status's flag
    assert c.ask(0xAA) == 0x55
    assert c.status() & SYSTEM_FLAG


def test_controller_ram_beyond_the_configuration_byte():
    c = Controller()
    c.command(0x65)
    c.write_data(0x99)
    assert c.ask(0x25) == 0x99
    assert c.ask(0x20) == DEFAULT_CONFIG


def test_self_and_port_tests_pass():
    c = Controller()
    assert c.ask(0xAA) == 0x55
    assert c.ask(0xAB) == 0x00
    assert c.ask(0xA9) == 0x00


def test_port_enables_are_kept_in_the_configuration_byte():
    c = Controller()
    c.command(0xAD)
    assert c.ask(0x20) & CONFIG_KEYBOARD_DISABLED
    c.command(0xAE)
    assert not c.ask(0x20) & CONFIG_KEYBOARD_DISABLED
    c.command(0xA8)
    assert not c.ask(0x20) & CONFIG_MOUSE_DISABLED
    c.command(0xA7)
    assert c.ask(0x20) & CONFIG_MOUSE_DISABLED


def test_status_bit_3_says_whether_the_last_write_was_a_command():
    c = Controller()
    c.command(0xAE)
    assert c.status() & COMMAND
    c.write_data(0xF4)
    assert not c.status() & COMMAND


def test_reading_an_empty_output_buffer_gives_the_last_byte_again():
    c = Controller()
    assert c.ask(0xAA) == 0x55
    assert not c.status() & OBF
    assert c.read_data() == 0x55
    assert not c.status() & OBF


def test_keyboard_answers_its_commands():
    c = Controller()
    c.write_data(0xFF)
    assert c.drain() == [0xFA, 0xAA]
    c.write_data(0xF2)
    assert c.drain() == [0xFA, 0xAB, 0x41]         # the controller translates 0x83 (config bit 6)
    for command in (0xF4, 0xF5, 0xF6):
        c.write_data(command)
        assert c.drain() == [0xFA]
    for command, argument in ((0xED, 0x07), (0xF3, 0x20)):
        c.write_data(command)
        assert c.drain() == [0xFA]
        c.write_data(argument)                    # the argument is not taken as a command
        assert c.drain() == [0xFA]
    c.write_data(0xEE)
    assert c.drain() == [0xEE]
    c.write_data(0x01)
    assert c.drain() == [0xFE]
    c.write_data(0xF0)
    c.write_data(0x00)
    assert c.drain() == [0xFA, 0xFA, 0x41]         # scan code set 2, translated


def test_keyboard_identifies_untranslated_without_translation():
    c = Controller()
    c.command(0x60)
    c.write_data(DEFAULT_CONFIG & ~CONFIG_TRANSLATE)
    c.write_data(0xF2)
    assert c.drain() == [0xFA, 0xAB, 0x83]
    c.write_data(0xF0)
    c.write_data(0x00)
    assert c.drain() == [0xFA, 0xFA, 0x02]


def test_disabled_keyboard_holds_its_bytes_and_writing_to_it_enables_it():
    c = Controller()
    c.kbd.push_output(0x1E)
    c.command(0xAD)
    assert not c.status() & OBF
    assert c.ask(0xD0) & 0x03 == 0x03              # the controller's reply is not held back
    c.command(0xAE)
    assert c.drain() == [0x1E]
    c.command(0xAD)
    c.write_data(0xF4)
    assert not c.kbd.config & CONFIG_KEYBOARD_DISABLED
    assert c.drain() == [0xFA]


def test_controller_reply_comes_before_keyboard_bytes():
    c = Controller()
    c.kbd.push_output(0x1E)
    c.command(0x20)
    assert c.drain() == [DEFAULT_CONFIG, 0x1E]


def test_newer_controller_reply_replaces_an_unread_one():
    c = Controller()
    c.command(0xAA)
    c.command(0xAB)
    assert c.drain() == [0x00]


def test_keyboard_buffer_is_bounded():
    c = Controller()
    for _ in range(100):
        c.write_data(0xF2)
    assert c.kbd.pending_output() == KEYBOARD_BUFFER
    assert not c.kbd.push_output(0x1E)
    assert len(c.drain()) == KEYBOARD_BUFFER
    c.write_data(0xFF)                             # a reset empties the keyboard first
    assert c.drain() == [0xFA, 0xAA]


def test_command_cancels_one_waiting_for_data():
    c = Controller()
    c.command(0xD1)
    c.command(0xAE)
    c.write_data(0x00)                             # to the keyboard now, not the output port
    assert c.resets == 0
    assert c.drain() == [0xFE]


def test_mouse_writes_are_dropped_and_mouse_output_is_marked():
    c = Controller()
    c.command(0xD4)
    c.write_data(0xFF)
    assert c.drain() == []
    c.command(0xD3)
    c.write_data(0x08)
    assert c.status() & 0x21 == 0x21
    c.command(0xD2)
    c.write_data(0x1C)
    assert c.status() & 0x21 == 0x01
    assert c.drain() == [0x1C]


def test_wide_reads_see_the_unclaimed_next_port_as_all_ones():
    c = Controller()
    assert c.kbd.command.read(0, 2) == 0xFF00 | c.status()


def test_system_control_port_a_keeps_a20_on_and_resets_on_bit_0():
    resets = []
    port = SystemControlA(lambda: resets.append(True))
    assert port.read(0, 1) == 0x02
    port.write(0, 1, 0x00)
    assert port.read(0, 1) & 0x02
    # OSDev's fast A20: in al, 0x92; or al, 2; and al, 0xFE; out 0x92, al.
    port.write(0, 1, (port.read(0, 1) | 2) & 0xFE)
    assert resets == []
    port.write(0, 1, 0x01)
    assert resets == [True]
    assert port.read(0, 1) & 0x03 == 0x02          # bit 0 reads 0: a read-modify-write cannot reset


PORT_ACCESS = st.one_of(
    st.tuples(st.just("read"), st.booleans(), st.just(0)),
    st.tuples(st.just("write"), st.booleans(),
              st.one_of(st.integers(0, 255), st.sampled_from([0x20, 0x60, 0xAA, 0xAD, 0xAE, 0xD0, 0xD1, 0xD2,
                                                               0xD3, 0xD4, 0xF2, 0xF0, 0xED, 0xFF, 0x00]))))


@settings(max_examples=400, deadline=None)
@given(st.lists(PORT_ACCESS, max_size=60))
def test_any_access_sequence_keeps_the_state_bounded_and_the_status_consistent(accesses):
    c = Controller()
    last_read = c.read_data()
    last_was_command = False
    for kind, is_command, value in accesses:
        port = c.kbd.command if is_command else c.kbd.data
        if kind == "write":
            port.write(0, 1, value)
            last_was_command = is_command
        else:
            full = bool(c.status() & OBF)
            pending = c.kbd.pending_output()
            read = port.read(0, 1)
            assert 0 <= read <= 0xFF
            if not is_command:
                # A full buffer gives its next byte; an empty one the last byte again, unchanged.
                assert c.kbd.pending_output() == pending - full
                if not full:
                    assert read == last_read
                last_read = read
        status = c.status()
        assert status & IBF == 0
        assert bool(status & COMMAND) == last_was_command
        assert bool(status & SYSTEM_FLAG) == bool(c.kbd.config & CONFIG_SYSTEM_FLAG)
        assert c.kbd.pending_output() <= KEYBOARD_BUFFER + 1
        if status & OBF == 0:
            assert c.kbd.pending_output() == 0 or c.kbd.config & CONFIG_KEYBOARD_DISABLED
        if c.kbd.pending_output() and not c.kbd.config & CONFIG_KEYBOARD_DISABLED:
            assert status & OBF
