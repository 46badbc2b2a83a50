"""kvmrun's BIOS ROM and vector table (bios/rom.py, rom.asm), and the trap that turns a stub's OUT
into a service call (bios/trap.py), driven with a vCPU that is only registers."""
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from kvmrun.bios import rom
from kvmrun.bios.call import BiosCall, Unsupported, WaitForInterrupt
from kvmrun.bios.services import Bios
from kvmrun.bios.trap import BiosTrap
from kvmrun.devices.bus import Access, DeviceFault
from kvmrun.kvm import abi
from kvmrun.memory import GuestMemory
from kvmrun.outcome import Reason

ROM_SOURCE = Path(__file__).parent.parent / "kvmrun" / "bios" / "rom.asm"


@pytest.mark.skipif(shutil.which("nasm") is None, reason="nasm assembles the ROM")
def test_rom_bin_is_what_rom_asm_assembles_to(tmp_path):
    out = tmp_path / "rom.bin"
    subprocess.run(["nasm", "-f", "bin", "-o", str(out), str(ROM_SOURCE)], check=True)
    assert out.read_bytes() == rom.rom_bytes(), "rom.bin is stale: run `make rom`"


def test_each_stub_traps_then_returns_and_the_blocks_are_where_rom_py_says():
    code = rom.rom_bytes()
    assert len(code) == rom.ROM_SIZE
    for vector in range(rom.VECTORS):
        at = vector * rom.STUB_SIZE
        assert code[at:at + 4] == bytes([0xE6, rom.BIOS_PORT, 0xCF, 0x90])      # out 0F5h, al; iret; nop
    assert code[rom.WAIT_FOR_INTERRUPT:rom.WAIT_FOR_INTERRUPT + 4] == bytes([0xFB, 0xF4, 0xFA, 0xC3])
    for handler in [rom.TIMER_TICK] + [rom.MASTER_IRQS + rom.IRQ_STRIDE * irq for irq in range(1, 8)]:
        assert code[handler:handler + 5] == bytes([0x50, 0xB0, 0x0B, 0xE6, 0x20])   # ask the PIC's ISR first
    assert code[rom.JUST_RETURN] == 0xCF
    assert code[rom.START:rom.START + 2] == bytes([0xB0, 0x11])                 # ICW1 first
    assert code[rom.RESET_VECTOR:rom.RESET_VECTOR + 2] == bytes([0xE6, rom.BIOS_PORT])
    assert code[0xFFFE] == 0xFC


def test_the_vector_table_points_every_vector_into_the_rom():
    table = struct.unpack("<512H", rom.ivt_bytes())
    entries = {vector: (table[2 * vector], table[2 * vector + 1]) for vector in range(256)}
    assert all(segment == rom.ROM_SEGMENT for _, segment in entries.values())
    assert entries[0x08][0] == rom.TIMER_TICK
    assert entries[0x10][0] == 0x10 * rom.STUB_SIZE
    assert entries[0x13][0] == 0x13 * rom.STUB_SIZE
    assert entries[0x1C][0] == rom.JUST_RETURN
    assert entries[0x1E][0] == rom.DISKETTE_PARAMETERS
    assert [entries[v][0] for v in range(0x09, 0x10)] == [rom.MASTER_IRQS + rom.IRQ_STRIDE * irq
                                                           for irq in range(1, 8)]
    assert {entries[v][0] for v in range(0x70, 0x78)} == {rom.SLAVE_IRQ}
    assert entries[0x21][0] == 0x21 * rom.STUB_SIZE


def test_stub_vector_is_told_from_ip_past_the_out_or_on_it():
    """Past it when KVM emulated the OUT (PVM), on it after VT-x's or AMD-V's fast port-IO exit."""
    assert rom.stub_vector(0x13 * 4 + 2) == rom.stub_vector(0x13 * 4) == 0x13
    assert rom.stub_vector(rom.RESET_VECTOR + 2) == rom.stub_vector(rom.RESET_VECTOR) == "reset"
    assert rom.stub_vector(0x13 * 4 + 3) is None and rom.stub_vector(0x13 * 4 + 1) is None
    assert rom.stub_vector(0x7C05) is None


class FakeVcpu:
    """Registers only, as KVM_GET/SET_(S)REGS give them."""

    def __init__(self, rip, rsp=0x7000, ss=0, es=0, **regs):
        self.regs = abi.kvm_regs(rip=rip, rsp=rsp, rflags=0x2, **regs)
        self.sregs = abi.kvm_sregs()
        self.sregs.cs.selector, self.sregs.cs.base = rom.ROM_SEGMENT, rom.ROM_ADDR
        self.sregs.ss.selector, self.sregs.ss.base = ss, ss << 4
        self.sregs.es.selector, self.sregs.es.base = es, es << 4

    def get_regs(self):
        copy = abi.kvm_regs()
        ctypes_copy(copy, self.regs)
        return copy

    def set_regs(self, regs):
        ctypes_copy(self.regs, regs)

    def get_sregs(self):
        copy = abi.kvm_sregs()
        ctypes_copy(copy, self.sregs)
        return copy

    def set_sregs(self, sregs):
        ctypes_copy(self.sregs, sregs)


def ctypes_copy(dst, src):
    import ctypes
    ctypes.memmove(ctypes.addressof(dst), ctypes.addressof(src), ctypes.sizeof(dst))


def trap_with(services, vcpu, mem, finished=None):
    trap = BiosTrap(Bios(services), mem, (finished if finished is not None else []).append, lambda: b"\xEB\xFE" * 256)
    trap.vcpus = [vcpu]
    return trap


def called_from(mem, vcpu, cs=0x0000, ip=0x7C10, flags=0x0202):
    """The frame `int` pushed: the caller's IP (after the int), CS and FLAGS."""
    mem.write(vcpu.regs.rsp, struct.pack("<HHH", ip, cs, flags))


def test_a_call_reads_the_callers_registers_and_returns_results_and_carry_in_the_saved_flags():
    mem = GuestMemory.for_tests(1 << 20)
    vcpu = FakeVcpu(rip=0x13 * 4 + 2, rax=0x0201, rbx=0x8000, rcx=0x0002, rdx=0x0080, es=0x1000)
    called_from(mem, vcpu, flags=0x0202)
    seen = []

    def service(call):
        seen.append((call.ah, call.al, call.bx, call.cx, call.dl, call.es, call.cs, call.ip))
        call.fail(0x04)

    trap_with({0x13: service}, vcpu, mem).write(0, 1, 0, Access(0, mem))
    assert seen == [(0x02, 0x01, 0x8000, 0x0002, 0x80, 0x1000, 0x0000, 0x7C0E)]
    assert vcpu.regs.rax & 0xFFFF == 0x0401
    ip, cs, flags = struct.unpack("<HHH", mem.read(0x7000, 6))
    assert (ip, cs) == (0x7C10, 0) and flags == 0x0203           # CF set, IF kept
    ok = FakeVcpu(rip=0x13 * 4 + 2, rax=0x0000)
    called_from(mem, ok, flags=0x0203)
    trap_with({0x13: lambda call: call.succeed()}, ok, mem).write(0, 1, 0, Access(0, mem))
    assert struct.unpack("<H", mem.read(0x7004, 2))[0] == 0x0202  # CF cleared


def test_a_call_trapped_with_rip_still_on_the_out_is_served_and_rip_left_for_kvm_to_step():
    mem = GuestMemory.for_tests(1 << 20)
    vcpu = FakeVcpu(rip=0x10 * 4, rax=0x0E41)                   # VT-x: RIP on the OUT during the exit
    called_from(mem, vcpu)
    served = []
    trap_with({0x10: lambda call: served.append(call.al)}, vcpu, mem).write(0, 1, 0, Access(0, mem))
    assert served == [0x41] and vcpu.regs.rip == 0x10 * 4


def test_a_service_that_waits_sends_the_caller_through_the_wait_loop_back_to_the_stub():
    mem = GuestMemory.for_tests(1 << 20)
    vcpu = FakeVcpu(rip=0x16 * 4 + 2, rsp=0x7000)
    called_from(mem, vcpu)

    def no_key(call):
        raise WaitForInterrupt()

    trap_with({0x16: no_key}, vcpu, mem).write(0, 1, 0, Access(0, mem))
    assert vcpu.regs.rip == rom.WAIT_FOR_INTERRUPT and vcpu.regs.rsp == 0x6FFE
    assert struct.unpack("<H", mem.read(0x6FFE, 2))[0] == 0x16 * rom.STUB_SIZE    # its RET goes to the stub


def test_an_unsupported_function_is_a_fault_naming_the_interrupt_function_and_caller():
    mem = GuestMemory.for_tests(1 << 20)
    vcpu = FakeVcpu(rip=0x10 * 4 + 2, rax=0x4F02)
    called_from(mem, vcpu, cs=0x07C0, ip=0x0023)

    def video(call):
        raise Unsupported("no VESA")

    with pytest.raises(DeviceFault) as fault:
        trap_with({0x10: video}, vcpu, mem).write(0, 1, 0, Access(0, mem))
    assert "int 10h AH=4Fh (BIOS video services) at 07C0:0021" in fault.value.summary
    assert "AH=0x4F" not in fault.value.summary                  # AH is named once
    assert "no VESA" in fault.value.summary
    assert fault.value.code_at == (0x7C00 + 0x21, 0x21, "07C0:0021, the call")


def test_an_interrupt_without_a_service_is_named_as_what_it_was():
    mem = GuestMemory.for_tests(1 << 20)
    mem.write(0x7C20, bytes([0xCD, 0x21]))                          # int 21h at 0000:7C20
    vcpu = FakeVcpu(rip=0x21 * 4 + 2, rax=0x0900)
    called_from(mem, vcpu, ip=0x7C22)
    with pytest.raises(DeviceFault) as fault:
        trap_with({}, vcpu, mem).write(0, 1, 0, Access(0, mem))
    assert fault.value.summary.startswith("the guest called int 21h (DOS services, AH=0x09: write string) at 0000:7C20")
    divide = FakeVcpu(rip=0 * 4 + 2)
    mem.write(0x7C30, bytes([0xF7, 0xF1]))                          # div cx
    called_from(mem, divide, ip=0x7C30)
    with pytest.raises(DeviceFault) as fault:
        trap_with({}, divide, mem).write(0, 1, 0, Access(0, mem))
    assert "#DE (divide error) at 0000:7C30" in fault.value.summary


def test_the_reset_vector_resets_and_an_out_from_elsewhere_is_ignored():
    mem = GuestMemory.for_tests(1 << 20)
    finished = []
    trap_with({}, FakeVcpu(rip=rom.RESET_VECTOR + 2), mem, finished).write(0, 1, 0, Access(0, mem))
    assert [outcome.reason for outcome in finished] == [Reason.RESET]
    stray = FakeVcpu(rip=0x7C12)
    stray.sregs.cs.selector, stray.sregs.cs.base = 0, 0
    before = bytes(mem.read(0, 0x10000))
    trap_with({0x13: lambda call: call.fail(1)}, stray, mem).write(0, 1, 0, Access(0, mem))
    assert mem.read(0, 0x10000) == before and stray.regs.rip == 0x7C12


def test_a_stack_outside_ram_is_a_fault_not_a_host_error():
    mem = GuestMemory.for_tests(1 << 20)
    vcpu = FakeVcpu(rip=0x10 * 4 + 2, rsp=0xFFFE, ss=0xFFFF)            # FFFF:FFFE lies past 1 MiB of RAM
    with pytest.raises(DeviceFault, match="stack"):
        trap_with({0x10: lambda call: None}, vcpu, mem).write(0, 1, 0, Access(0, mem))


def test_int_19h_starts_the_boot_sector_again():
    mem = GuestMemory.for_tests(1 << 20)
    vcpu = FakeVcpu(rip=0x19 * 4 + 2, rsp=0x6000, ss=0x0100)
    mem.write(0x1000 + 0x6000, struct.pack("<HHH", 0x7C40, 0, 0x202))           # SS:SP = 0100:6000
    trap = trap_with({}, vcpu, mem)
    trap.write(0, 1, 0, Access(0, mem))
    assert mem.read(0x7C00, 2) == b"\xEB\xFE"
    assert (vcpu.regs.rip, vcpu.regs.rsp, vcpu.regs.rdx & 0xFF) == (0x7C00, 0x7C00, 0x80)
    assert (vcpu.sregs.cs.selector, vcpu.sregs.ss.selector) == (0, 0)


def whole_bios(mem, vcpu, disk_bytes=bytes(4096)):
    """Every service, as platform/bios.py assembles them for a machine."""
    from kvmrun.bios.disk import Disk
    from kvmrun.console import BytesInput
    from kvmrun.devices.cmos import Cmos
    from kvmrun.devices.serial import Serial16550
    from kvmrun.devices.vga import VgaRegisters
    from kvmrun.platform.bios import bios_trap
    trap = bios_trap(mem, Disk.from_bytes(disk_bytes), disk_bytes[:512], VgaRegisters(),
                     Serial16550(lambda byte: None, BytesInput(b"ab\x1b[A")), BytesInput(b"xyz"), Cmos(mem.size),
                     lambda byte: None, lambda outcome: None)
    trap.vcpus = [vcpu]
    return trap


@settings(max_examples=400, deadline=None)
@given(vector=st.sampled_from([0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x19, 0x1A, 0x21, 0x00]),
       regs=st.fixed_dictionaries({name: st.integers(0, 0xFFFFFFFF) for name in
                                   ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp")}),
       es=st.integers(0, 0xFFFF), ss=st.integers(0, 0xFFFF), sp=st.integers(0, 0xFFFF))
def test_any_call_to_any_service_ends_in_a_result_a_wait_or_a_fault_and_writes_only_ram(vector, regs, es, ss, sp):
    """BIOS calls are the guest's input: whatever the registers and stack, the trap returns, waits or
    raises DeviceFault (a guest fault), never anything else; guest RAM is the only memory written."""
    mem = GuestMemory.for_tests(1 << 20)          # 1 MiB: buffers run into RAM's end and the ROM
    vcpu = FakeVcpu(rip=vector * rom.STUB_SIZE + 2, rsp=sp, ss=ss, es=es, **regs)
    try:
        whole_bios(mem, vcpu).write(0, 1, 0, Access(0, mem))
    except DeviceFault:
        pass


def test_int_19h_boots_the_disks_sector_0_as_it_is_now():
    mem = GuestMemory.for_tests(1 << 20)
    vcpu = FakeVcpu(rip=0x19 * 4 + 2, rsp=0x6000)
    mem.write(0x6000, struct.pack("<HHH", 0x7C40, 0, 0x202))
    disk = b"\x90" * 510 + b"\x55\xAA" + bytes(512)          # what the guest's int 13h writes left there
    whole_bios(mem, vcpu, disk).write(0, 1, 0, Access(0, mem))
    assert mem.read(0x7C00, 512) == disk[:512] and vcpu.regs.rip == 0x7C00


def test_the_reset_vector_reached_as_ffff_0000_resets_too():
    """`jmp 0FFFFh:0`, the usual reboot idiom, runs the same ROM byte as F000:FFF0."""
    mem = GuestMemory.for_tests(1 << 20)
    finished = []
    vcpu = FakeVcpu(rip=0x0002)
    vcpu.sregs.cs.selector, vcpu.sregs.cs.base = 0xFFFF, 0xFFFF0
    trap_with({}, vcpu, mem, finished).write(0, 1, 0, Access(0, mem))
    assert [outcome.reason for outcome in finished] == [Reason.RESET]
    assert rom.stub_vector(0xFFFF0 + 2 - rom.ROM_ADDR) == "reset"


def test_a_trace_line_shows_32_bit_registers_where_their_top_half_is_used():
    from kvmrun.bios.services import trace_line
    mem = GuestMemory.for_tests(1 << 20)
    call = BiosCall(0x15, mem, eax=0xE820, edx=0x534D4150, cs=0, ip=0x7C85)
    before = {name: getattr(call, name) for name in ("eax", "ebx", "ecx", "edx", "esi", "edi", "es")}
    call.eax = 0x534D4150
    line = trace_line(call, before)
    assert line.startswith("bios: int 15h AH=E8h AX=E820 BX=0000 CX=0000 EDX=534D4150 SI=0000 DI=0000 ES=0000 "
                           "from 0000:7C85 -> EAX=534D4150 CF=0")


def test_a_service_without_functions_is_named_without_ah():
    from kvmrun.vectors import service_name
    assert service_name(0x18, 0x0E) == "BIOS boot failure (ROM BASIC)"
    assert service_name(0x10, 0x0E) == "BIOS video services, AH=0x0E: teletype output"


def test_a_stack_in_the_rom_is_a_fault_and_the_rom_is_not_written():
    """kvmrun's own writes to guest memory bypass KVM's read-only slot: the trap must not write there."""
    mem = GuestMemory.for_tests(1 << 20)
    mem.write(rom.ROM_ADDR, rom.rom_bytes())
    vcpu = FakeVcpu(rip=0x10 * 4 + 2, rsp=0x1000, ss=0xF000)
    with pytest.raises(DeviceFault, match="stack"):
        trap_with({0x10: lambda call: call.fail(1)}, vcpu, mem).write(0, 1, 0, Access(0, mem))
    assert mem.read(rom.ROM_ADDR, rom.ROM_SIZE) == rom.rom_bytes()
