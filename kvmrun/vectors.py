"""Names for real-mode interrupt vectors that reached kvmrun's no-BIOS stubs (boot/no_bios.py): CPU
exceptions, PC BIOS services (with the AH functions guests call most) and DOS, and what a guest
without a BIOS can do instead. Only imported when a report needs them."""
from __future__ import annotations

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Dict, Optional, Tuple

EXCEPTIONS = {
    0: "#DE (divide error)", 1: "#DB (debug)", 2: "NMI (non-maskable interrupt)", 3: "#BP (breakpoint)",
    4: "#OF (overflow)", 5: "#BR (bound range exceeded)", 6: "#UD (invalid opcode)", 7: "#NM (device not available)",
    8: "#DF (double fault)", 9: "coprocessor segment overrun", 10: "#TS (invalid TSS)",
    11: "#NP (segment not present)", 12: "#SS (stack fault)", 13: "#GP (general protection)", 14: "#PF (page fault)",
    16: "#MF (x87 error)", 17: "#AC (alignment check)", 18: "#MC (machine check)", 19: "#XM (SIMD exception)",
    20: "#VE (virtualization exception)", 21: "#CP (control protection)",
}

SERIAL_OUTPUT = "write text to COM1 (port 0x3F8) instead: it is kvmrun's stdout"
SERIAL_INPUT = "read COM1 (port 0x3F8; bit 0 of its LSR at 0x3FD says a byte waits) instead: it is kvmrun's stdin"

# vector -> (service, {AH: function}, what to do instead)
SERVICES: Dict[int, Tuple[str, Dict[int, str], Optional[str]]] = {
    0x10: ("BIOS video services", {0x00: "set video mode", 0x01: "set cursor shape", 0x02: "set cursor position",
                                   0x03: "get cursor position", 0x06: "scroll up", 0x07: "scroll down",
                                   0x09: "write character and attribute", 0x0A: "write character",
                                   0x0E: "teletype output", 0x0F: "get video mode", 0x13: "write string"},
           SERIAL_OUTPUT),
    0x11: ("BIOS equipment list", {}, None),
    0x12: ("BIOS conventional memory size", {}, "the RAM size is what --memory says"),
    0x13: ("BIOS disk services", {0x00: "reset disk", 0x02: "read sectors", 0x03: "write sectors",
                                  0x08: "get drive parameters", 0x41: "check extensions", 0x42: "extended read",
                                  0x43: "extended write"},
           "with --mode real there is no disk: the whole image is already in RAM from --load-addr (0x7C00 by "
           "default)"),
    0x14: ("BIOS serial port services", {}, "program COM1's 16550A UART at port 0x3F8 directly"),
    0x15: ("BIOS system services", {0x24: "A20 gate", 0x53: "APM", 0x86: "wait", 0x87: "copy extended memory",
                                    0x88: "extended memory size", 0xC0: "system configuration",
                                    0xE8: "memory map (E820) or memory size"},
           "the RAM size is what --memory says; A20 is always enabled"),
    0x16: ("BIOS keyboard services", {0x00: "read key", 0x01: "check for key", 0x02: "shift flags",
                                      0x10: "read key", 0x11: "check for key"}, SERIAL_INPUT),
    0x17: ("BIOS printer services", {}, None),
    0x18: ("BIOS boot failure (ROM BASIC)", {}, None),
    0x19: ("BIOS bootstrap loader", {}, None),
    0x1A: ("BIOS time and PCI services", {0x00: "read tick count", 0x02: "read RTC time", 0x04: "read RTC date",
                                          0xB1: "PCI BIOS"}, None),
    0x20: ("DOS terminate", {}, "this is a DOS program; kvmrun boots without DOS"),
    0x21: ("DOS services", {0x02: "write character", 0x09: "write string", 0x4C: "exit"},
           "this is a DOS program; kvmrun boots without DOS"),
}

NO_BIOS = ("kvmrun boots without a BIOS: every real-mode interrupt vector leads to a HLT until the guest "
           "sets its own in the interrupt vector table (0x0-0x3FF). A boot sector (0x55 0xAA at offset 510) "
           "booted without --mode gets kvmrun's BIOS services")


def service_and_function(vector: int, ah: int) -> Optional[str]:
    """"BIOS video services: teletype output" for int 0x10 with AH=0x0E, the service alone when the
    function has no name here; None for a vector with no service. For a text that names AH itself."""
    if vector not in SERVICES:
        return None
    service, functions, _ = SERVICES[vector]
    function = functions.get(ah)
    return f"{service}: {function}" if function else service


def service_name(vector: int, ah: int) -> Optional[str]:
    """"BIOS video services, AH=0x0E: teletype output" for int 0x10 with AH=0x0E; None when unknown."""
    if vector not in SERVICES:
        return None
    service, functions, _ = SERVICES[vector]
    if not functions:                     # int 11h, 12h, 18h, 19h: AH selects nothing, so it is not named
        return service
    function = functions.get(ah)
    return f"{service}, AH=0x{ah:02X}" + (f": {function}" if function else "")


def describe(vector: int, how: str, ah: int, where: Optional[str]) -> str:
    """What happened and what to do, for an interrupt that reached kvmrun's no-BIOS stub of `vector`.
    `how` is "int", "int3", "into", "int1" or "exception" (boot/no_bios.UnhandledInterrupt.how);
    `where` the CS:IP of the instruction that raised it, when known."""
    at = f" at {where}" if where else ""
    advice = None
    if how == "int":
        name = service_name(vector, ah)
        what = f"the guest called int 0x{vector:02x}" + (f" ({name})" if name else "")
        advice = SERVICES[vector][2] if vector in SERVICES else None
    elif how in ("int3", "into", "int1"):
        what = f"the guest executed {how}, raising {EXCEPTIONS[vector]}"
    elif vector in EXCEPTIONS:
        what = f"the CPU raised {EXCEPTIONS[vector]}"
        if 8 <= vector <= 15:
            what += f" (or IRQ {vector - 8} arrived: a PC's BIOS puts IRQs 0-7 there)"
    else:
        what = f"interrupt 0x{vector:02x} was taken, without an int instruction before the return address"
    text = f"{what}{at}, but {NO_BIOS}."
    if advice:
        text += f" {advice[0].upper()}{advice[1:]}."
    return text
