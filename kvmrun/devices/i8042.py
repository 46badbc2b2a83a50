"""The i8042 keyboard controller, only as far as guests use it to reset the machine.

Status reads say "both buffers empty", so a guest that waits for the input buffer before sending
the pulse-reset command 0xFE gets to send it.
"""
from typing import Callable

DATA_PORT = 0x60
COMMAND_PORT = 0x64
CMD_PULSE_RESET = 0xFE


class I8042:
    def __init__(self, on_reset: Callable[[], None]):
        self._on_reset = on_reset

    def read(self, port: int, size: int) -> int:
        return 0

    def write(self, port: int, size: int, value: int) -> None:
        if port == COMMAND_PORT and value & 0xFF == CMD_PULSE_RESET:
            self._on_reset()
