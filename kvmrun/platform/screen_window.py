"""The VGA text window as the host sees it: plain guest RAM in a memory slot of its own with dirty
logging, so a guest writing the screen costs no exits and a guest that never touches it costs one
KVM_GET_DIRTY_LOG per tick. The host loop asks `ScreenWatch.poll()` what to show.
"""
from __future__ import annotations

from .. import layout
from .memory_slots import KVM_MEM_LOG_DIRTY_PAGES, Window

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Optional

if TYPE_CHECKING:
    from ..screen import Screen


# The window's own slot, logged (platform/memory_slots.py cuts it out of RAM).
SCREEN_WINDOW = Window(layout.VGA_TEXT_ADDR, layout.VGA_TEXT_SIZE, KVM_MEM_LOG_DIRTY_PAGES)


class ScreenWatch:
    """What the screen shows, when it changes. The screen is "touched" once the guest has written to
    the window: before that there is nothing to show (a guest that prints only to COM1 gets nothing
    extra). Afterwards a new Screen is read whenever the window was written or the VGA registers
    changed what is shown (the cursor, the start address). Called on the host loop's thread only."""

    def __init__(self, vm, slot: int, mem, registers, lock):
        self._vm = vm
        self._slot = slot
        self._mem = mem
        self._registers = registers
        self._lock = lock
        self.touched = False
        self._generation = -1
        self.screen: Optional["Screen"] = None

    def poll(self) -> Optional["Screen"]:
        """The screen if it changed since the last call (and has been touched), else None."""
        self.touched = self.touched or self._registers.text_written     # the BIOS's int 10h, from the host
        if any(self._vm.get_dirty_log(self._slot)):
            self.touched = True
        elif not self.touched or self._registers.generation == self._generation:
            return None
        from ..screen import read_screen
        with self._lock:                      # the registers change under vCPU threads
            self._generation = self._registers.generation
            screen = read_screen(self._mem.read(layout.VGA_TEXT_ADDR, layout.VGA_TEXT_SIZE), self._registers)
        if screen == self.screen:
            return None
        self.screen = screen
        return screen

    def final(self) -> Optional["Screen"]:
        """The screen at the end of the run, None when the guest never touched it."""
        self.poll()
        return self.screen
