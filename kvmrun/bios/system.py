"""int 11h, 12h and 15h: what the machine has (equipment, memory, its memory map), the A20 gate, and
waiting. The memory map is platform/memory_map.py's, the one the multiboot and PVH kernels get.
Functions follow Ralf Brown's interrupt list and SeaBIOS where the list leaves a choice. Pure: the RAM
layout and the clock come in."""
from __future__ import annotations

import struct
import time

from .. import layout
from ..memory import RamLayout
from ..platform.memory_map import memory_map
from . import data_area as bda
from .call import BadBuffer, BiosCall, Unsupported, WaitForInterrupt

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Callable, Optional

SMAP = 0x534D4150                   # "SMAP": E820's signature, in EAX and EDX
E820_ENTRY_SIZE = 20                # base, length (64 bits each) and type; no ACPI 3 attributes
EXTENDED_MEMORY_CAP = 64 * layout.MiB   # int 15h AH=88h reports at most 63 MiB above 1 MiB, as SeaBIOS
SIXTEEN_MIB = 16 * layout.MiB
UNSUPPORTED_FUNCTION = 0x86         # AH when a function is not supported (RBIL: "86h unsupported function")
A20_ENABLED = 1
A20_SUPPORT = 0x3                   # the gate is on the keyboard controller and port 92h
SLEEP_IN_PLACE_US = 1000            # waits up to a millisecond are slept through; longer ones wait for ticks


class SystemServices:
    def __init__(self, ram: RamLayout, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.map = memory_map(ram)
        self.low_ram_end = ram.regions[0].end
        self.clock = clock
        self.sleep = sleep
        self._wait_until: Optional[float] = None

    def int11(self, call: BiosCall) -> None:
        call.ax = struct.unpack("<H", call.read_linear(bda.EQUIPMENT, 2))[0]

    def int12(self, call: BiosCall) -> None:
        call.ax = struct.unpack("<H", call.read_linear(bda.BASE_MEMORY_KIB, 2))[0]

    def int15(self, call: BiosCall) -> None:
        if call.ax == 0xE820:
            self._e820(call)
        elif call.ax == 0xE801:
            below_16m = min(self.low_ram_end, SIXTEEN_MIB) - layout.HIGH_MEMORY
            above_16m = max(0, self.low_ram_end - SIXTEEN_MIB)
            call.ax = call.cx = max(below_16m, 0) >> 10
            call.bx = call.dx = min(above_16m >> 16, 0xFFFF)
            call.carry = False
        elif call.ah == 0x88:
            call.ax = max(0, min(self.low_ram_end, EXTENDED_MEMORY_CAP) - layout.HIGH_MEMORY) >> 10
            call.carry = False
        elif call.ah == 0x24:
            self._a20(call)
        elif call.ah == 0x86:
            self._wait(call)
        else:
            raise Unsupported(selector=f"AL={call.al:02X}h" if call.ah in (0xE8, 0x24) else "")

    def _e820(self, call: BiosCall) -> None:
        """One entry per call: EBX=0 starts, the EBX returned continues, 0 after the last."""
        index = call.ebx
        if call.edx != SMAP or call.ecx < E820_ENTRY_SIZE or index >= len(self.map):
            call.fail(UNSUPPORTED_FUNCTION)
            return
        entry = self.map[index]
        try:
            call.write(call.es, call.di, struct.pack("<QQI", entry.addr, entry.size, entry.type))
        except BadBuffer:
            call.fail(UNSUPPORTED_FUNCTION)
            return
        call.eax = SMAP
        call.ecx = E820_ENTRY_SIZE
        call.ebx = index + 1 if index + 1 < len(self.map) else 0
        call.carry = False

    def _a20(self, call: BiosCall) -> None:
        """A20 is always on under KVM: enabling and querying are answered truthfully; disabling, which
        would make addresses wrap at 1 MiB, cannot be done and is refused rather than pretended."""
        if call.al == 0x01:
            call.succeed()
        elif call.al == 0x02:
            call.succeed()
            call.al = A20_ENABLED
        elif call.al == 0x03:
            call.succeed()
            call.bx = A20_SUPPORT
        else:
            raise Unsupported("A20 stays enabled under KVM" if call.al == 0x00 else "", selector=f"AL={call.al:02X}h")

    def _wait(self, call: BiosCall) -> None:
        """AH=86h: wait CX:DX microseconds. Short waits are slept through here; longer ones make the
        caller wait for timer ticks (interrupts on) until the time has passed, so the run's timeout and
        signals still end it."""
        microseconds = call.cx << 16 | call.dx
        now = self.clock()
        if self._wait_until is None:
            if microseconds <= SLEEP_IN_PLACE_US:
                self.sleep(microseconds / 1e6)
                call.succeed()
                return
            self._wait_until = now + microseconds / 1e6
        if now < self._wait_until:
            raise WaitForInterrupt()
        self._wait_until = None
        call.succeed()
