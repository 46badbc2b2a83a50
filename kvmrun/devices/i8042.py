"""The i8042 keyboard controller, only as far as guests use it to reset the machine.

Status reads say "both buffers empty", so a guest that waits for the input buffer before sending
the pulse-reset command 0xFE gets to send it.
"""
from __future__ import annotations

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Callable

DATA_PORT = 0x60
COMMAND_PORT = 0x64
CMD_PULSE_RESET = 0xFE


class I8042:
    """The controller; `data` and `command` are its two ports (0x60 and 0x64, not a range: 0x61 is
    the PC's system control port, not the keyboard controller's)."""

    def __init__(self, on_reset: Callable[[], None]):
        self._on_reset = on_reset
        self.data = _Port(self, is_command=False)
        self.command = _Port(self, is_command=True)

    def port_read(self, is_command: bool) -> int:
        return 0                          # data: nothing; status: both buffers empty

    def port_write(self, is_command: bool, value: int) -> None:
        if is_command and value & 0xFF == CMD_PULSE_RESET:
            self._on_reset()


class _Port:
    def __init__(self, controller: I8042, is_command: bool):
        self._controller = controller
        self._is_command = is_command

    def read(self, offset: int, size: int, access=None) -> int:
        return self._controller.port_read(self._is_command)

    def write(self, offset: int, size: int, value: int, access=None) -> None:
        self._controller.port_write(self._is_command, value)
