"""16550A register logic, without a VM."""
from itertools import pairwise

from hypothesis import given, settings, strategies as st

from kvmrun.console import BytesInput
from kvmrun.devices import serial as s


class Line:
    def __init__(self, data=b""):
        self.out = bytearray()
        self.irq = []
        self.uart = s.Serial16550(self.out.append, BytesInput(data), self.irq.append)

    def rd(self, offset):
        return self.uart.read(offset, 1)

    def wr(self, offset, value):
        self.uart.write(offset, 1, value)


def test_reset_values():
    line = Line()
    assert [line.rd(o) for o in range(8)] == [0, 0, 0x01, 0x03, 0x08, 0x60, 0xB0, 0]


def test_thr_bytes_go_out_exactly():
    line = Line()
    for b in b"hi\x00\xff\n":
        line.wr(s.RBR_THR_DLL, b)
    assert bytes(line.out) == b"hi\x00\xff\n"


def test_scratch_register():
    line = Line()
    line.wr(s.SCR, 0x5A)
    assert line.rd(s.SCR) == 0x5A


def test_dlab_switches_offsets_0_and_1_to_the_divisor():
    line = Line()
    line.wr(s.IER_DLM, 0x05)
    line.wr(s.LCR, 0x83)
    line.wr(s.RBR_THR_DLL, 0x01)
    line.wr(s.IER_DLM, 0x02)
    assert (line.rd(0), line.rd(1), line.uart.divisor) == (0x01, 0x02, 0x0201)
    assert line.out == b""                          # a DLL write is not output
    line.wr(s.LCR, 0x03)
    assert line.rd(s.IER_DLM) == 0x05


def test_input_sets_data_ready_and_is_read_from_rbr():
    line = Line(b"ab")
    assert line.rd(s.LSR) == 0x61
    assert line.rd(s.RBR_THR_DLL) == ord("a")
    assert line.rd(s.RBR_THR_DLL) == ord("b")
    assert line.rd(s.LSR) == 0x60
    assert line.rd(s.RBR_THR_DLL) == 0             # nothing left


def test_iir_priorities_fifo_bits_and_thre_acknowledge():
    line = Line(b"x")
    line.wr(s.IIR_FCR, 0x01)
    assert line.rd(s.IIR_FCR) == 0xC1
    line.wr(s.IER_DLM, 0x02)
    assert line.rd(s.IIR_FCR) == 0xC2
    assert line.rd(s.IIR_FCR) == 0xC1              # reading IIR acknowledged THRE
    line.wr(s.RBR_THR_DLL, ord("y"))                # a THR write raises it again
    line.wr(s.IER_DLM, 0x03)
    assert line.rd(s.IIR_FCR) == 0xC4              # received data outranks THRE
    line.rd(s.RBR_THR_DLL)
    assert line.rd(s.IIR_FCR) == 0xC2


def test_irq_line_follows_iir_and_out2():
    line = Line()
    line.wr(s.IER_DLM, 0x02)
    assert line.irq == [True]
    line.rd(s.IIR_FCR)
    assert line.irq == [True, False]
    line.wr(s.MCR, 0x00)                            # OUT2 low gates the line
    line.wr(s.RBR_THR_DLL, ord("z"))
    assert line.irq == [True, False]


def test_loopback_wires_thr_to_rbr_and_mcr_to_msr():
    line = Line()
    line.wr(s.MCR, 0x1B)
    assert line.rd(s.MSR) == 0xB0
    line.wr(s.MCR, 0x10)
    assert line.rd(s.MSR) == 0x0B                  # CTS, DSR, DCD dropped: deltas
    assert line.rd(s.MSR) == 0x00
    line.wr(s.RBR_THR_DLL, ord("Z"))
    assert line.out == b""
    assert line.rd(s.LSR) == 0x61
    assert line.rd(s.RBR_THR_DLL) == ord("Z")


def test_loopback_fifo_overrun_keeps_old_bytes_and_flags_lsr():
    line = Line()
    line.wr(s.MCR, 0x10)
    for b in range(17):
        line.wr(s.RBR_THR_DLL, b)
    assert line.rd(s.LSR) == 0x63                  # DR and OE
    assert line.rd(s.LSR) == 0x61                  # OE cleared by the read
    assert [line.rd(0) for _ in range(16)] == list(range(16))


def test_writes_to_read_only_registers_are_dropped():
    line = Line()
    line.wr(s.LSR, 0x00)
    line.wr(s.MSR, 0x00)
    assert (line.rd(s.LSR), line.rd(s.MSR)) == (0x60, 0xB0)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 7), st.integers(0, 255)), max_size=60),
       st.binary(max_size=8))
def test_any_register_sequence_keeps_the_device_consistent(ops, data):
    line = Line(data)
    for is_write, offset, value in ops:
        if is_write:
            line.wr(offset, value)
        else:
            assert 0 <= line.rd(offset) <= 0xFF
    lsr = line.rd(s.LSR)
    assert lsr & 0x60 == 0x60                       # THR is always empty: output never blocks
    iir = line.rd(s.IIR_FCR)
    assert iir & 0x30 == 0 and iir & 0x0F in (0x01, 0x00, 0x02, 0x04)
    assert all(0 <= b <= 0xFF for b in line.out)
    assert all(a != b for a, b in pairwise(line.irq))   # the line only reports changes
