"""A 16550A UART as pure register logic on port offsets 0-7.

Output goes to an injected writer, input comes from an injected source, and the interrupt line is
reported through a callback, so the whole device is testable without a VM.
"""
from __future__ import annotations

from ..fifo import deque

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Callable, Optional, Protocol

COM1_BASE = 0x3F8
COM1_IRQ = 4
PORT_COUNT = 8

# Register offsets
RBR_THR_DLL = 0
IER_DLM = 1
IIR_FCR = 2
LCR = 3
MCR = 4
LSR = 5
MSR = 6
SCR = 7

IER_RDA = 0x01                    # received data available
IER_THRE = 0x02                   # transmitter holding register empty
IER_RLS = 0x04                    # receiver line status
IER_MS = 0x08                     # modem status
IER_MASK = 0x0F

IIR_NO_INTERRUPT = 0x01
IIR_MODEM_STATUS = 0x00
IIR_THR_EMPTY = 0x02
IIR_RX_DATA = 0x04
IIR_FIFO_ENABLED = 0xC0

FCR_ENABLE_FIFO = 0x01
FCR_CLEAR_RX = 0x02

LCR_DLAB = 0x80

MCR_DTR, MCR_RTS, MCR_OUT1, MCR_OUT2, MCR_LOOP = 0x01, 0x02, 0x04, 0x08, 0x10
MCR_MASK = 0x1F

LSR_DATA_READY = 0x01
LSR_OVERRUN = 0x02
LSR_THR_EMPTY = 0x20
LSR_IDLE = 0x40                   # TEMT: transmitter empty

MSR_DCTS, MSR_DDSR, MSR_TERI, MSR_DDCD = 0x01, 0x02, 0x04, 0x08
MSR_CTS, MSR_DSR, MSR_RI, MSR_DCD = 0x10, 0x20, 0x40, 0x80
MSR_CONNECTED = MSR_DCD | MSR_DSR | MSR_CTS   # what a terminal on the line shows

DEFAULT_DIVISOR = 12              # 9600 baud from the 1.8432 MHz clock
DEFAULT_LCR = 0x03                # 8N1
DEFAULT_MCR = MCR_OUT2
LOOPBACK_FIFO = 16


if TYPE_CHECKING:                 # a type for mypy, not a class at run time
    class SerialInput(Protocol):
        def ready(self) -> bool: ...          # a byte is waiting (LSR.DR)
        def take(self) -> Optional[int]: ...  # the next byte, or None


class NoInput:
    def ready(self) -> bool:
        return False

    def take(self) -> Optional[int]:
        return None

    def ended(self) -> bool:
        """No byte will ever come (the BIOS's keyboard stops a guest waiting for one)."""
        return True


class Serial16550:
    def __init__(self, write_output: Callable[[int], None], serial_input: Optional[SerialInput] = None,
                 set_irq: Callable[[bool], None] = lambda level: None):
        self._write_output = write_output
        self._input = serial_input or NoInput()
        self._set_irq = set_irq
        self.ier = 0
        self.lcr = DEFAULT_LCR
        self.mcr = DEFAULT_MCR
        self.scr = 0
        self.divisor = DEFAULT_DIVISOR
        self.fifo_enabled = False
        self._msr_delta = 0
        self._thr_empty_pending = False
        self._loopback_rx: deque = deque()
        self._overrun = False
        self._irq_level = False

    # --- the bus interface -------------------------------------------------------------------------

    def read(self, offset: int, size: int, access=None) -> int:
        return self.read_register(offset)

    def write(self, offset: int, size: int, value: int, access=None) -> None:
        self.write_register(offset, value & 0xFF)

    # --- registers ---------------------------------------------------------------------------------

    def read_register(self, offset: int) -> int:
        dlab = self.lcr & LCR_DLAB
        if offset == RBR_THR_DLL:
            if dlab:
                return self.divisor & 0xFF
            value = self._take_byte()
            self._update_irq()
            return value
        if offset == IER_DLM:
            return (self.divisor >> 8) if dlab else self.ier
        if offset == IIR_FCR:
            iir = self._iir()
            if (iir & 0x0F) == IIR_THR_EMPTY:
                self._thr_empty_pending = False      # reading IIR acknowledges THRE
                self._update_irq()
            return iir
        if offset == LCR:
            return self.lcr
        if offset == MCR:
            return self.mcr
        if offset == LSR:
            value = LSR_THR_EMPTY | LSR_IDLE | (LSR_DATA_READY if self._data_ready() else 0)
            if self._overrun:
                value |= LSR_OVERRUN
                self._overrun = False                # reading LSR clears the error bits
            return value
        if offset == MSR:
            value = self._modem_status() | self._msr_delta
            self._msr_delta = 0
            self._update_irq()
            return value
        if offset == SCR:
            return self.scr
        return 0xFF

    def write_register(self, offset: int, value: int) -> None:
        dlab = self.lcr & LCR_DLAB
        if offset == RBR_THR_DLL:
            if dlab:
                self.divisor = (self.divisor & 0xFF00) | value
                return
            if self.mcr & MCR_LOOP:
                if len(self._loopback_rx) < LOOPBACK_FIFO:
                    self._loopback_rx.append(value)
                else:
                    self._overrun = True             # a full FIFO loses the new byte, as on a 16550A
            else:
                self._write_output(value)
            # The byte leaves at once: THR is empty again, which is an interrupt if enabled.
            self._thr_empty_pending = True
        elif offset == IER_DLM:
            if dlab:
                self.divisor = (self.divisor & 0x00FF) | (value << 8)
                return
            newly_enabled = value & ~self.ier & IER_THRE
            self.ier = value & IER_MASK
            if newly_enabled:
                self._thr_empty_pending = True
        elif offset == IIR_FCR:
            self.fifo_enabled = bool(value & FCR_ENABLE_FIFO)
            if value & FCR_CLEAR_RX:
                self._loopback_rx.clear()
        elif offset == LCR:
            self.lcr = value
        elif offset == MCR:
            before = self._modem_status()
            self.mcr = value & MCR_MASK
            self._note_modem_change(before, self._modem_status())
        elif offset == SCR:
            self.scr = value
        # LSR and MSR are read-only: writes are dropped.
        self._update_irq()

    def input_arrived(self) -> None:
        """The host pushed input into the source: received-data-available may now interrupt."""
        self._update_irq()

    # --- internals ---------------------------------------------------------------------------------

    def _data_ready(self) -> bool:
        if self.mcr & MCR_LOOP:
            return bool(self._loopback_rx)
        return self._input.ready()

    def _take_byte(self) -> int:
        if self.mcr & MCR_LOOP:
            return self._loopback_rx.popleft() if self._loopback_rx else 0
        byte = self._input.take()
        return 0 if byte is None else byte

    def _modem_status(self) -> int:
        if not self.mcr & MCR_LOOP:
            return MSR_CONNECTED
        # Loopback wires the modem control outputs back to the status inputs.
        status = 0
        if self.mcr & MCR_RTS:
            status |= MSR_CTS
        if self.mcr & MCR_DTR:
            status |= MSR_DSR
        if self.mcr & MCR_OUT1:
            status |= MSR_RI
        if self.mcr & MCR_OUT2:
            status |= MSR_DCD
        return status

    def _note_modem_change(self, before: int, after: int) -> None:
        changed = before ^ after
        if changed & MSR_CTS:
            self._msr_delta |= MSR_DCTS
        if changed & MSR_DSR:
            self._msr_delta |= MSR_DDSR
        if before & MSR_RI and not after & MSR_RI:   # trailing edge of ring indicator
            self._msr_delta |= MSR_TERI
        if changed & MSR_DCD:
            self._msr_delta |= MSR_DDCD

    def _iir(self) -> int:
        fifo = IIR_FIFO_ENABLED if self.fifo_enabled else 0
        if self.ier & IER_RDA and self._data_ready():
            return fifo | IIR_RX_DATA
        if self.ier & IER_THRE and self._thr_empty_pending:
            return fifo | IIR_THR_EMPTY
        if self.ier & IER_MS and self._msr_delta:
            return fifo | IIR_MODEM_STATUS
        return fifo | IIR_NO_INTERRUPT

    def _update_irq(self) -> None:
        if not self.ier and not self._irq_level:
            return                                  # nothing enabled, nothing raised: the common case
        # OUT2 gates the interrupt line on PC serial cards.
        level = not (self._iir() & IIR_NO_INTERRUPT) and bool(self.mcr & MCR_OUT2)
        if level != self._irq_level:
            self._irq_level = level
            self._set_irq(level)
