"""Which service answers which interrupt, and how a call kvmrun cannot answer is named.

`Bios.serve(call)` runs the service for `call.vector`. A vector without one (DOS's int 21h, a CPU
exception, int 18h) and a function a service does not provide (Unsupported) end the run as a guest
fault; `unsupported_summary` words it: the interrupt, AH (and AL or BL where they select), and the
caller's CS:IP. int 19h is the trap's (it restarts the boot sector: CPU state, not registers). Pure."""
from __future__ import annotations

from .call import BiosCall, Unsupported

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Callable, Dict, Optional

REBOOT = 0x19


class NotAService(Exception):
    """The vector has no service: an exception, an IRQ nobody set up, or a program's own interrupt."""


class Bios:
    def __init__(self, services: Dict[int, Callable[[BiosCall], None]]):
        self.services = services

    def serve(self, call: BiosCall) -> None:
        service = self.services.get(call.vector)
        if service is None:
            raise NotAService()
        service(call)


def unsupported_summary(call: BiosCall, err: Unsupported) -> str:
    from ..vectors import service_and_function
    name = service_and_function(call.vector, call.ah)
    function = f"int {call.vector:02X}h AH={call.ah:02X}h" + (f" {err.selector}" if err.selector else "")
    text = f"the guest called {function}" + (f" ({name})" if name else "")
    text += f" at {call.cs:04X}:{call.ip:04X}, which kvmrun's BIOS does not provide"
    return text + (f": {err.why}" if err.why else "")


def trace_line(call: BiosCall, before: Dict[str, int], result: Optional[str] = None) -> str:
    """`bios: int 10h AH=0Eh AX=0E41 BX=0007 ... from 0000:7C05 -> AX=0E41 CF=0`. `before` holds the
    32-bit registers (and ES) as the call found them; a register is shown 32 bits wide where its top
    half is not zero (E820's EAX and EDX hold "SMAP")."""
    registers = " ".join(_register(name, value) for name, value in before.items())
    if result is None:
        changed = [_register(name, getattr(call, name)) for name in before if getattr(call, name) != before[name]]
        result = " ".join(changed + [f"CF={int(call.carry)}"])
    function = f"int {call.vector:02X}h AH={before['eax'] >> 8 & 0xFF:02X}h"
    return f"bios: {function} {registers} from {call.cs:04X}:{call.ip:04X} -> {result}"


def _register(name: str, value: int) -> str:
    if name.startswith("e") and len(name) == 3 and value >> 16:
        return f"{name.upper()}={value:08X}"
    return f"{name.lstrip('e').upper() if len(name) == 3 else name.upper()}={value & 0xFFFF:04X}"
