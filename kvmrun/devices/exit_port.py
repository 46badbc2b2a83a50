"""The exit port (0xF4, as QEMU's isa-debug-exit): a write stops the machine; the machine turns the
value written (1, 2 or 4 bytes) into the status (machine.exit_status)."""
from typing import Callable

from .bus import all_ones

EXIT_PORT = 0xF4


class ExitPort:
    def __init__(self, on_exit: Callable[[int], None]):
        self._on_exit = on_exit

    def read(self, offset: int, size: int, access=None) -> int:
        return all_ones(size)

    def write(self, offset: int, size: int, value: int, access=None) -> None:
        self._on_exit(value)
