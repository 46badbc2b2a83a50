"""Real mode without a BIOS: the interrupt vector table kvmrun fills, its HLT stubs, and naming the
interrupt a halted vCPU came through (pure: guest memory is a bytearray)."""
import struct

import pytest

from kvmrun.boot.cpu_modes import Mode
from kvmrun.boot.no_bios import STUBS_ADDR, halted_in_stub, unhandled_interrupt
from kvmrun.boot.protocols import kvmrun_abi
from kvmrun.boot.raw import plan_raw
from kvmrun.boot.setup import apply_setup, check_setup
from kvmrun.errors import LoaderError
from kvmrun.memory import GuestMemory
from kvmrun.vectors import describe, service_name


def real_mode_setup(mem, image=b"\xf4", load_addr=None):
    """kvmrun's ABI in real mode for a raw image, checked: the vector table and the stubs as blobs."""
    setup = kvmrun_abi.plan(plan_raw(image, Mode.REAL, load_addr=load_addr), mem, 1, Mode.REAL, False)
    check_setup(setup, mem)
    return setup


def real_mode_memory():
    """1 MiB of RAM as a real-mode boot leaves it: only the vector table, the stubs and a HLT at 0x7C00."""
    mem = GuestMemory.for_tests(1 << 20)
    apply_setup(real_mode_setup(mem), mem)
    return mem


def test_every_vector_leads_to_its_own_hlt():
    mem = real_mode_memory()
    for vector in (0, 6, 0x10, 0x13, 0xFF):
        offset, segment = struct.unpack("<HH", mem.read(vector * 4, 4))
        assert (segment, offset) == (0xF000, vector)
        assert mem.read((segment << 4) + offset, 1) == b"\xf4"


def test_images_may_not_overlap_the_vector_table_or_the_stubs():
    mem = GuestMemory.for_tests(1 << 20)
    real_mode_setup(mem, b"\xf4" * 512)                                              # a boot sector at 0x7C00
    with pytest.raises(LoaderError, match=r"overlaps kvmrun's real-mode interrupt vector table at 0x0-0x400$"):
        real_mode_setup(mem, b"\xf4" * 16, load_addr=0x3F8)
    with pytest.raises(LoaderError, match=r"overlaps kvmrun's no-BIOS interrupt stubs at 0xf0000-0xf0100$"):
        real_mode_setup(mem, b"\xf4" * 0x10000, load_addr=0xE8000)


def test_a_halt_just_past_a_stub_names_its_vector():
    mem = real_mode_memory()
    assert halted_in_stub(STUBS_ADDR, 0x11, mem) == 0x10
    assert halted_in_stub(STUBS_ADDR, 0x1, mem) == 0
    assert halted_in_stub(STUBS_ADDR, 0x100, mem) == 0xFF
    assert halted_in_stub(0, 0x7C06, mem) is None             # the guest's own HLT
    assert halted_in_stub(STUBS_ADDR, 0x101, mem) is None     # past the stubs
    mem.write(STUBS_ADDR + 0x10, b"\x90")                     # the guest wrote over a stub
    assert halted_in_stub(STUBS_ADDR, 0x11, mem) is None


def frame(mem, sp, ip, cs, flags=0x2):
    mem.write(sp, struct.pack("<HHH", ip, cs, flags))


def test_int_n_is_told_from_an_exception_by_the_bytes_before_the_return_address():
    mem = real_mode_memory()
    mem.write(0x7C02, b"\xcd\x10\xf4")                        # int 0x10 at 0000:7C02, returning to 7C04
    frame(mem, 0x7BFA, 0x7C04, 0)
    found = unhandled_interrupt(0x10, 0, 0x7BFA, 0x0E41, mem)
    assert (found.how, found.cs, found.ip, found.linear, found.ax) == ("int", 0, 0x7C02, 0x7C02, 0x0E41)
    mem.write(0x17C05, b"\xf7\xf1")                           # div cx at 1000:7C05 faults: returns to it
    frame(mem, 0x7BFA, 0x7C05, 0x1000)
    found = unhandled_interrupt(0, 0, 0x7BFA, 1, mem)
    assert (found.how, found.cs, found.ip, found.linear) == ("exception", 0x1000, 0x7C05, 0x17C05)
    mem.write(0x7D00, b"\x90\xcc")                            # int3: one byte
    frame(mem, 0x7BFA, 0x7D02, 0)
    assert unhandled_interrupt(3, 0, 0x7BFA, 0, mem)[:3] == (3, "int3", 0)


def test_an_unreadable_stack_still_names_the_vector():
    found = unhandled_interrupt(6, 0xFFFF0, 0xFFFE, 0, real_mode_memory())
    assert (found.vector, found.how, found.linear) == (6, "exception", None)


def test_bios_services_and_exceptions_are_named_with_what_to_do():
    assert service_name(0x10, 0x0E) == "BIOS video services, AH=0x0E: teletype output"
    assert service_name(0x13, 0x99) == "BIOS disk services, AH=0x99"
    assert service_name(0x80, 0) is None
    text = describe(0x10, "int", 0x0E, "0000:7C02")
    assert text.startswith("the guest called int 0x10 (BIOS video services, AH=0x0E: teletype output) at 0000:7C02, "
                           "but kvmrun boots without a BIOS")
    assert "COM1 (port 0x3F8)" in text
    assert "no disk" in describe(0x13, "int", 0x42, None)
    assert describe(0, "exception", 0, "1000:7C05").startswith("the CPU raised #DE (divide error) at 1000:7C05")
    assert describe(3, "int3", 0, None).startswith("the guest executed int3, raising #BP (breakpoint)")
    assert describe(0x80, "int", 0, None).startswith("the guest called int 0x80, but")
