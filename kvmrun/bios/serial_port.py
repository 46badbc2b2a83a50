"""int 14h: COM1 through the same 16550 UART (devices/serial.py) a guest can program itself, so
both ways of using the port agree. There is no COM2-COM4: they answer as absent ports do (timeout).
Functions 00h-03h follow Ralf Brown's interrupt list. Pure: the UART comes in."""
from ..devices import serial
from .call import BiosCall, Unsupported

TIMEOUT = 0x80                      # AH bit 7: the port did not respond
BAUD_DIVISORS = (1047, 768, 384, 192, 96, 48, 24, 12)   # AL bits 7-5: 110 to 9600 baud


class SerialServices:
    def __init__(self, uart):
        self.uart = uart                    # a Serial16550: read_register / write_register

    def _status(self) -> int:
        return self.uart.read_register(serial.LSR) << 8 | self.uart.read_register(serial.MSR)

    def int14(self, call: BiosCall) -> None:
        function = call.ah
        if function > 0x03:
            raise Unsupported()
        if call.dx != 0:
            call.ah = TIMEOUT               # no such port
            return
        if function == 0x00:
            self._initialise(call.al)
            call.ax = self._status()
        elif function == 0x01:
            self.uart.write_register(serial.RBR_THR_DLL, call.al)
            call.ah = self.uart.read_register(serial.LSR) & 0x7F
        elif function == 0x02:
            if self.uart.read_register(serial.LSR) & serial.LSR_DATA_READY:
                call.al = self.uart.read_register(serial.RBR_THR_DLL)
                call.ah = self.uart.read_register(serial.LSR) & 0x1E     # the error bits only
            else:
                call.ah = TIMEOUT           # nothing arrived: a BIOS would give up after its timeout
        else:
            call.ax = self._status()

    def _initialise(self, params: int) -> None:
        """AL: baud (bits 7-5), parity (4-3), stop bits (2), word length (1-0), as the LCR takes them."""
        divisor = BAUD_DIVISORS[params >> 5]
        line = params & 0x1F
        self.uart.write_register(serial.LCR, serial.LCR_DLAB | line)
        self.uart.write_register(serial.RBR_THR_DLL, divisor & 0xFF)
        self.uart.write_register(serial.IER_DLM, divisor >> 8)
        self.uart.write_register(serial.LCR, line)
