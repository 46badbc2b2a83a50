"""The debug registers as breakpoints share them (pure), and the probe that asks KVM whether it
delivers data breakpoints (KVM)."""
import pytest

from kvmrun.debug.debug_registers import DebugRegisters
from kvmrun.debug.kvm_target import architecture_of
from kvmrun.debug.probe import CODE_AT, PROBE_CODE, probe_breakpoint


def test_dr7_enables_each_register_with_its_kind_and_length_as_the_sdm_lays_them_out():
    registers = DebugRegisters()
    assert registers.add("execute", 0x100000, 1)
    assert registers.add("write", 0x2000, 4)
    assert registers.add("access", 0x3000, 8)
    assert registers.add("read", 0x4002, 2)
    dr7 = registers.dr7()
    assert dr7 & 0xFF == 0b10101010                            # G0-G3, no local enables
    assert dr7 & (1 << 10) and dr7 & (1 << 9)                  # bit 10 reads as 1; GE as QEMU sets it
    fields = [(dr7 >> (16 + 4 * n)) & 0xF for n in range(4)]
    #          R/W | LEN << 2: execute 00/00, write 01/11 (4), access 11/10 (8), read -> 11/01 (2)
    assert fields == [0b0000, 0b1101, 0b1011, 0b0111]
    assert registers.debugreg()[:4] == (0x100000, 0x2000, 0x3000, 0x4002)
    assert registers.debugreg()[7] == dr7 and len(registers.debugreg()) == 8


def test_four_registers_then_no_more_and_a_removed_one_is_free_again():
    registers = DebugRegisters()
    for n in range(4):
        assert registers.add("execute", 0x1000 + n, 1)
    assert not registers.add("execute", 0x2000, 1) and registers.free() == 0
    assert registers.remove("execute", 0x1002, 1)
    assert not registers.remove("execute", 0x1002, 1)          # already gone
    assert registers.add("write", 0x3000, 8) and registers.slots[2] == ("write", 0x3000, 8)


@pytest.mark.parametrize("address, length", [(0x2001, 4), (0x2004, 8), (0x2000, 3), (0x2000, 16), (0x2000, 0)])
def test_a_data_range_one_register_cannot_watch_is_refused(address, length):
    registers = DebugRegisters()
    assert not registers.add("write", address, length) and registers.used == 0


def test_dr6_names_the_breakpoint_that_hit():
    registers = DebugRegisters()
    registers.add("execute", 0x100000, 1)
    registers.add("write", 0x2000, 1)
    assert registers.hit(0b10) == ("write", 0x2000, 1)
    assert registers.hit(1 << 14) is None                      # BS alone: a single step
    assert registers.hit(0b1000) is None                       # DR3 is not ours


class Segment:
    def __init__(self, l=0):
        self.l = l


class Sregs:
    def __init__(self, cr0, efer, l):
        self.cr0, self.efer, self.cs = cr0, efer, Segment(l)


def test_the_architecture_gdb_is_told_follows_cr0_efer_and_cs():
    assert architecture_of(Sregs(0x10, 0, 0)) == "i8086"
    assert architecture_of(Sregs(0x11, 0, 0)) == "i386"
    assert architecture_of(Sregs(0x80000011, 0x500, 1)) == "i386:x86-64"
    assert architecture_of(Sregs(0x80000011, 0x500, 0)) == "i386"     # compatibility mode: 32-bit code


@pytest.mark.kvm
def test_the_probe_sees_an_execute_breakpoint_so_its_answer_about_data_ones_means_something():
    hlt = CODE_AT + len(PROBE_CODE) - 1
    assert probe_breakpoint("execute", hlt)                    # every KVM delivers these
    assert not probe_breakpoint("execute", 0x3000)             # never executed: the guest halts

