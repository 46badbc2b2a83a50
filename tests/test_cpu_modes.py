"""GDT entries, TSS, and the sregs/regs each mode starts with, checked against the SDM's rules."""
import struct

from kvmrun import layout
from kvmrun.boot import cpu_modes as cm
from kvmrun.boot.cpu_modes import Mode
from kvmrun.boot.protocols import kvmrun_abi
from kvmrun.boot.raw import plan_raw
from kvmrun.boot.setup import apply_setup, check_setup, vcpu_regs
from kvmrun.kvm import abi
from kvmrun.layout import MiB
from kvmrun.memory import GuestMemory, RamLayout


def descriptors():
    gdt = cm.gdt_bytes()
    return [struct.unpack_from("<Q", gdt, i)[0] for i in range(0, len(gdt), 8)]


def test_gdt_entries_are_the_classic_flat_descriptors():
    null, code64, data, code32, tss_low, tss_high = descriptors()
    assert null == 0
    assert code64 == 0x00AF9B000000FFFF      # L=1, D=0, G=1, present, accessed code
    assert data == 0x00CF93000000FFFF        # B=1, G=1, accessed read/write data
    assert code32 == 0x00CF9B000000FFFF
    assert tss_low == 0x00008B0006000067     # base 0x600, limit 0x67, present busy TSS
    assert tss_high == 0


def test_selectors_index_the_right_descriptors():
    entries = descriptors()
    assert struct.pack("<Q", entries[cm.SEL_CODE64 >> 3]) == cm.CODE64.descriptor()
    assert struct.pack("<Q", entries[cm.SEL_CODE32 >> 3]) == cm.CODE32.descriptor()
    assert struct.pack("<Q", entries[cm.SEL_DATA >> 3]) == cm.DATA.descriptor()
    assert cm.GDT_LIMIT + 1 == len(cm.gdt_bytes())


def test_tss_has_no_io_bitmap():
    tss = cm.tss_bytes()
    assert len(tss) == 104
    assert struct.unpack_from("<H", tss, 102)[0] == 104


def test_descriptor_tables_land_at_their_layout_addresses():
    mem = GuestMemory.for_tests(2 * MiB)
    setup = kvmrun_abi.plan(plan_raw(b"\xf4", Mode.PROTECTED), mem, 1, Mode.PROTECTED, False)
    check_setup(setup, mem)
    apply_setup(setup, mem)
    assert mem.read(layout.GDT_ADDR, cm.GDT_LIMIT + 1) == cm.gdt_bytes()
    assert mem.read(layout.TSS_ADDR, 104) == cm.tss_bytes()


def test_long_mode_sregs_follow_the_sdm():
    sregs = abi.kvm_sregs()
    cm.long_mode_sregs(sregs, cr3=0x1000)
    assert sregs.cr0 == 0x80010033           # PE MP ET NE WP PG
    assert sregs.cr4 == 0x620                # PAE OSFXSR OSXMMEXCPT
    assert sregs.efer == 0x500               # LME LMA
    assert sregs.cr3 == 0x1000
    cs = sregs.cs
    assert (cs.selector, cs.l, cs.db, cs.type, cs.s, cs.present, cs.g) == (0x08, 1, 0, 0xB, 1, 1, 1)
    for seg in (sregs.ds, sregs.es, sregs.fs, sregs.gs, sregs.ss):
        assert (seg.selector, seg.type, seg.present, seg.s, seg.base) == (0x10, 0x3, 1, 1, 0)
    tr = sregs.tr
    assert (tr.selector, tr.type, tr.s, tr.present, tr.base, tr.limit) == (0x20, 0xB, 0, 1, 0x600, 0x67)
    assert sregs.ldt.unusable == 1
    assert (sregs.gdt.base, sregs.gdt.limit) == (0x500, 0x2F)
    assert (sregs.idt.base, sregs.idt.limit) == (0, 0)


def test_protected_mode_sregs():
    sregs = abi.kvm_sregs()
    sregs.efer = 0x500
    cm.protected_mode_sregs(sregs)
    assert sregs.cr0 == 0x11 and sregs.cr4 == 0 and sregs.efer == 0
    assert (sregs.cs.selector, sregs.cs.db, sregs.cs.l, sregs.cs.limit) == (0x18, 1, 0, 0xFFFFFFFF)
    assert sregs.ss.selector == 0x10 and sregs.ss.db == 1
    assert sregs.tr.type == 0xB and sregs.tr.present == 1


def test_real_mode_keeps_reset_state_but_zeroes_segments():
    sregs = abi.kvm_sregs()
    sregs.cr0 = 0x60000010
    sregs.cs.selector, sregs.cs.base, sregs.cs.limit = 0xF000, 0xFFFF0000, 0xFFFF
    sregs.ds.selector, sregs.ds.base = 0x1234, 0x12340
    cm.real_mode_sregs(sregs, 0x7C00)
    assert sregs.cr0 == 0x60000010
    assert (sregs.cs.selector, sregs.cs.base, sregs.cs.limit) == (0, 0, 0xFFFF)
    assert (sregs.ds.selector, sregs.ds.base) == (0, 0)


def test_real_mode_entries_above_64k_use_a_code_segment():
    assert cm.real_mode_code_segment(0x7C00) == (0, 0x7C00)
    assert cm.real_mode_code_segment(0x12345) == (0x1000, 0x2345)
    assert cm.real_mode_code_segment(0xFFFFF) == (0xF000, 0xFFFF)


def abi_regs(mode, cpus, index):
    """vCPU `index`'s general registers as kvmrun's ABI starts it, with 128 MiB of RAM."""
    setup = kvmrun_abi.plan(plan_raw(b"\xf4", mode), RamLayout(128 * MiB), cpus, mode, False)
    return vcpu_regs(setup.vcpus[index])


def test_entry_registers_long_mode():
    regs = abi_regs(Mode.LONG, cpus=4, index=2)
    assert (regs.rip, regs.rdi, regs.rsi, regs.rdx, regs.rsp, regs.rflags) == \
        (0x100000, 2, 4, 131072, 0x7FE0000, 0x2)
    assert regs.rax == regs.rbx == regs.rcx == regs.rbp == regs.r8 == regs.r15 == 0


def test_entry_registers_real_mode():
    regs = abi_regs(Mode.REAL, cpus=1, index=0)
    assert (regs.rip, regs.rsp, regs.rdx, regs.rdi, regs.rsi, regs.rflags) == (0x7C00, 0x7C00, 0x80, 0, 0, 2)


def test_stacks_are_64k_apart_aligned_and_vcpu0_highest():
    tops = cm.stack_tops(128 << 20, 4)
    assert tops == [0x8000000, 0x7FF0000, 0x7FE0000, 0x7FD0000]
    assert all(t % 16 == 0 for t in tops)
