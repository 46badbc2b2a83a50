"""The exit port (0xF4, as QEMU's isa-debug-exit): a write stops the machine; the machine turns the
value written (1, 2 or 4 bytes) into the status (machine.exit_status)."""
from __future__ import annotations

from .bus import all_ones

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Callable

EXIT_PORT = 0xF4


class ExitPort:
    def __init__(self, on_exit: Callable[[int], None]):
        self._on_exit = on_exit

    def read(self, offset: int, size: int, access=None) -> int:
        return all_ones(size)

    def write(self, offset: int, size: int, value: int, access=None) -> None:
        self._on_exit(value)
