"""BootSetup (boot/setup.py), the kvmrun-ABI protocol (boot/protocols/kvmrun_abi.py) and plan_boot
(boot/prepare.py), pure: guest memory is a bytearray, or a sparse one for RAM above 4 GiB.

What the protocol writes is held byte for byte against guest memory as docs/guest-abi.md describes
it, built here from that description (the GDT's and TSS's bytes, identity-mapped page tables, the
no-BIOS vector table and stubs, the image's segments with .bss zeroed), not from the protocol's code;
its vCPUs against the registers the ABI promises; what it refuses against the words users know."""
import struct

import pytest

from elfimage import Seg, elf
from kvmrun.boot.cpu_modes import Mode
from kvmrun.boot.plan import LoadPlan, LoadSegment, check_plan
from kvmrun.boot.prepare import plan_boot
from kvmrun.boot.protocols import kvmrun_abi
from kvmrun.boot.raw import plan_raw
from kvmrun.boot.setup import Blob, BootSetup, apply_setup, check_setup, vcpu_regs, vcpu_sregs
from kvmrun.errors import ConfigError, LoaderError
from kvmrun.kvm import abi
from kvmrun.layout import GiB, KiB, MiB
from kvmrun.memory import GuestMemory, RamLayout
from kvmrun.options import BootConfig, OptionError
from kvmrun.platform.needs import PlatformNeeds

PAGE = 4096


class SparseRam:
    """A backing for GuestMemory that only holds the pages written: 64 GiB of RAM in a few KiB."""

    def __init__(self, size):
        self.size = size
        self.pages = {}

    def __len__(self):
        return self.size

    def __getitem__(self, where):
        out = bytearray()
        for offset in range(where.start, where.stop):
            page = self.pages.get(offset // PAGE)
            out.append(page[offset % PAGE] if page is not None else 0)
        return bytes(out)

    def __setitem__(self, where, data):
        data = memoryview(bytes(data))
        assert len(data) == where.stop - where.start
        offset = where.start
        while len(data):
            page = self.pages.setdefault(offset // PAGE, bytearray(PAGE))
            chunk = min(len(data), PAGE - offset % PAGE)
            page[offset % PAGE:offset % PAGE + chunk] = data[:chunk]
            offset, data = offset + chunk, data[chunk:]

    def contents(self):
        """Page number -> bytes, for every page that is not all zero."""
        return {n: bytes(page) for n, page in self.pages.items() if any(page)}


def memory(size):
    return GuestMemory(size, SparseRam(size))


def image_plan(mode, ram_size):
    """An image for `mode`: a boot sector in real mode; else code, and data with a .bss, clear of the
    largest page tables (64 GiB of 2 MiB pages reach 0x43000), plus a segment above 4 GiB when RAM is."""
    if mode is Mode.REAL:
        return plan_raw(b"\xfa\xf4" * 256, Mode.REAL)
    segments = [LoadSegment(0x50000, b"\xf4" * 16, 16, "segment 0 (PT_LOAD)"),
                LoadSegment(0x60000, b"data" * 300, 0x3000, "segment 1 (PT_LOAD)")]
    if ram_size > 3 * GiB + MiB:
        segments.append(LoadSegment(4 * GiB + 0x1000, b"high", 0x2000, "segment 2 (PT_LOAD)"))
    return LoadPlan("ELF64", mode, 0x50000, tuple(segments))


def stale(mem, plan):
    """Garbage where the structures and the image go, so zeroing and untouched bytes both show."""
    mem.write(0, b"\xa5" * MiB)
    for seg in plan.segments:
        mem.write(seg.addr, b"\x5a" * seg.memsz)


SIZES = [1 * MiB, 128 * MiB, 3 * GiB, 3 * GiB + 4096, 5 * GiB, 64 * GiB]
CASES = [(mode, size, cpus) for mode in Mode for size in SIZES for cpus in ((1,) if mode is Mode.REAL else (1, 4))
         if not (size == 1 * MiB and mode is not Mode.REAL)]       # 1 MiB holds no image at 0x50000-0x63000 + stacks
CASES += [(Mode.LONG, 2 * MiB, 4), (Mode.PROTECTED, 2 * MiB, 4)]


def new_path(mode, size, cpus, one_gib):
    plan = image_plan(mode, size)
    mem = memory(size)
    stale(mem, plan)
    setup = kvmrun_abi.plan(plan, RamLayout(size), cpus, mode, one_gib)
    check_setup(setup, mem)
    apply_setup(setup, mem)
    return mem, setup


# --- guest memory as the ABI describes it, from docs/guest-abi.md and the SDM ------------------------

# null, 64-bit code (L=1), flat data, 32-bit code, then the 16-byte busy TSS descriptor: base 0x600, limit 0x67
GDT = struct.pack("<6Q", 0, 0x00AF9B000000FFFF, 0x00CF93000000FFFF, 0x00CF9B000000FFFF, 0x00008B0006000067, 0)
TSS = bytes(102) + struct.pack("<H", 104)           # 104 bytes, the IO map base past the limit: no bitmap
IVT = b"".join(struct.pack("<HH", vector, 0xF000) for vector in range(256))    # vector n -> F000:n
STUBS = b"\xf4" * 256                                                          # a HLT at each


def identity_map(ram_top, one_gib):
    """The PML4, the PDPTs, and with 2 MiB pages one directory per GiB, page after page: all RAM and
    the first 4 GiB (in whole GiB) mapped to themselves; every entry past those is 0."""
    gibs = max(4, -(-ram_top // GiB))
    pdpts = -(-gibs // 512)
    first_pdpt = 0x2000
    first_pd = first_pdpt + pdpts * PAGE

    def table(entries):
        return struct.pack(f"<{len(entries)}Q", *entries) + bytes(PAGE - 8 * len(entries))
    pages = [table([first_pdpt + p * PAGE | 0x3 for p in range(pdpts)])]
    for p in range(pdpts):
        covered = range(p * 512, min(gibs, p * 512 + 512))
        pages.append(table([g * GiB | 0x83 if one_gib else first_pd + g * PAGE | 0x3 for g in covered]))
    if not one_gib:
        pages += [table([g * GiB + i * 2 * MiB | 0x83 for i in range(512)]) for g in range(gibs)]
    return b"".join(pages)


def described_memory(mode, size, one_gib):
    """Stale bytes as new_path leaves them, then the ABI's structures at their addresses, then each
    segment's bytes and zeroes up to its size."""
    plan = image_plan(mode, size)
    mem = memory(size)
    stale(mem, plan)
    if mode is Mode.REAL:
        mem.write(0, IVT)
        mem.write(0xF0000, STUBS)
    else:
        mem.write(0x500, GDT)
        mem.write(0x600, TSS)
    if mode is Mode.LONG:
        mem.write(0x1000, identity_map(mem.top, one_gib))
    for seg in plan.segments:
        mem.write(seg.addr, bytes(seg.data) + bytes(seg.memsz - len(seg.data)))
    return mem


# --- what lands in memory --------------------------------------------------------------------------

@pytest.mark.parametrize("one_gib", [False, True])
@pytest.mark.parametrize("mode, size, cpus", CASES)
def test_apply_setup_writes_byte_for_byte_what_the_abi_describes(mode, size, cpus, one_gib):
    """Every page that is not all zero, compared whole: a byte written wrong, in the wrong place, or
    not at all (a stale 0xA5 left in a table page, a .bss not zeroed) fails."""
    written, _ = new_path(mode, size, cpus, one_gib)
    assert written._buf.contents() == described_memory(mode, size, one_gib)._buf.contents()


@pytest.mark.parametrize("size", [128 * MiB, 3 * GiB + 4096, 5 * GiB, 64 * GiB])
@pytest.mark.parametrize("one_gib", [False, True])
def test_long_mode_structures_read_back(size, one_gib):
    mem, setup = new_path(Mode.LONG, size, 1, one_gib)
    assert mem.read(0x500, 0x30) == GDT
    assert mem.read(0x600, 104) == TSS
    assert mem.read(0x50000, 16) == b"\xf4" * 16
    assert mem.read(0x60000, 1200) == b"data" * 300
    assert mem.read(0x60000 + 1200, 0x3000 - 1200) == bytes(0x3000 - 1200)       # .bss zeroed
    cr3 = setup.vcpus[0].cr3
    assert cr3 == 0x1000
    # Walked as the CPU walks them: all RAM and the first 4 GiB map to themselves.
    for addr in (0, 0x50000, 3 * GiB - 1, 4 * GiB - 1, mem.top - 1):
        assert walk(mem, cr3, addr) == addr
    tables = next(b for b in setup.blobs if b.name == "page tables")
    reserved = next(r for r in setup.reserved if r.what == "page tables")
    assert (tables.addr, tables.end) == (reserved.start, reserved.end)


def walk(mem, cr3, linear):
    """The physical address the 4-level tables give `linear` (2 MiB or 1 GiB pages)."""
    pml4e = mem.read_u64(cr3 + 8 * (linear >> 39 & 511))
    assert pml4e & 1
    pdpte = mem.read_u64((pml4e & ~0xFFF) + 8 * (linear >> 30 & 511))
    assert pdpte & 1
    if pdpte & 0x80:
        return (pdpte & ~(GiB - 1) & (1 << 52) - 1) | linear & (GiB - 1)
    pde = mem.read_u64((pdpte & ~0xFFF) + 8 * (linear >> 21 & 511))
    assert pde & 1 and pde & 0x80
    return (pde & ~(2 * MiB - 1) & (1 << 52) - 1) | linear & (2 * MiB - 1)


def test_protected_and_real_mode_structures_read_back():
    mem, setup = new_path(Mode.PROTECTED, 128 * MiB, 2, False)
    assert mem.read(0x500, 0x30) == GDT and mem.read(0x600, 104) == TSS
    assert mem.read(0x1000, PAGE) == b"\xa5" * PAGE                  # no page tables without paging
    assert [b.name for b in setup.blobs if b.structure] == ["GDT", "TSS"]
    mem, setup = new_path(Mode.REAL, 1 * MiB, 1, False)
    assert mem.read(0, 1024) == IVT and mem.read(0xF0000, 256) == STUBS
    assert mem.read(0x500, 0x30) == b"\xa5" * 0x30                   # no GDT in real mode
    assert mem.read(0x7C00, 4) == b"\xfa\xf4\xfa\xf4"


STACKS_BELOW_3GIB = (3 * GiB - 4 * 64 * KiB, 3 * GiB, "vCPU stacks")   # 4 KiB above 4 GiB holds none


@pytest.mark.parametrize("mode, reserved", [
    (Mode.REAL, [(0x0, 0x400, "real-mode interrupt vector table"), (0xF0000, 0xF0100, "no-BIOS interrupt stubs")]),
    (Mode.PROTECTED, [(0x500, 0x530, "GDT"), (0x600, 0x668, "TSS"), STACKS_BELOW_3GIB]),
    (Mode.LONG, [(0x500, 0x530, "GDT"), (0x600, 0x668, "TSS"), (0x1000, 0x8000, "page tables"),   # 5 GiB mapped
                 STACKS_BELOW_3GIB]),
])
def test_reserved_ranges_are_the_abis_and_hold_every_structure(mode, reserved):
    ram = RamLayout(3 * GiB + 4096)
    cpus = 1 if mode is Mode.REAL else 4
    setup = kvmrun_abi.plan(image_plan(mode, ram.size), ram, cpus, mode, False)
    assert [tuple(r) for r in setup.reserved] == reserved
    for blob in setup.blobs:
        if blob.structure:
            assert any(r.start <= blob.addr and blob.end <= r.end and r.what == blob.name for r in setup.reserved)
    assert setup.needs == PlatformNeeds(irqchip=False, ap_start="entry")
    assert all(start.runnable for start in setup.vcpus)


# --- the vCPUs' state ------------------------------------------------------------------------------

def stack_top(mode, size, cpus):
    """vCPU 0's stack top (docs/guest-abi.md): the top of RAM, but below 3 GiB in protected mode or
    when less than the stacks need lies above 4 GiB."""
    above_4gib = size - 3 * GiB
    if mode is Mode.LONG and above_4gib >= cpus * 64 * KiB:
        return 4 * GiB + above_4gib
    return min(size, 3 * GiB)


# cr0, cr3, cr4, efer, CS (selector, base, L, D), SS, TR, GDTR (base, limit), the APIC base
APIC_BASE = 0xFEE00900
SREGS = {
    Mode.LONG: (0x80010033, 0x1000, 0x620, 0x500, 0x08, 0, 1, 0, 0x10, 0x20, 0x500, 0x2F, APIC_BASE),
    Mode.PROTECTED: (0x11, 0, 0, 0, 0x18, 0, 0, 1, 0x10, 0x20, 0x500, 0x2F, APIC_BASE),
    Mode.REAL: (0x60000010, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, APIC_BASE),            # the reset state, CS:IP 0:7C00
}


def sregs_fields(s):
    return (s.cr0, s.cr3, s.cr4, s.efer, s.cs.selector, s.cs.base, s.cs.l, s.cs.db, s.ss.selector, s.tr.selector,
            s.gdt.base, s.gdt.limit, s.apic_base)


@pytest.mark.parametrize("one_gib", [False, True])
@pytest.mark.parametrize("mode, size, cpus", CASES)
def test_vcpu_state_is_what_the_abi_promises(mode, size, cpus, one_gib):
    plan = image_plan(mode, size)
    setup = kvmrun_abi.plan(plan, RamLayout(size), cpus, mode, one_gib)
    assert len(setup.vcpus) == cpus
    for index, start in enumerate(setup.vcpus):
        want = abi.kvm_regs(rflags=0x2)                                   # every other register 0
        if mode is Mode.REAL:
            want.rip, want.rsp, want.rdx = 0x7C00, 0x7C00, 0x80
        else:
            want.rip, want.rdi, want.rsi, want.rdx = 0x50000, index, cpus, size >> 10
            want.rsp = stack_top(mode, size, cpus) - index * 64 * KiB
        assert bytes(vcpu_regs(start)) == bytes(want)
        assert sregs_fields(vcpu_sregs(start, reset_sregs())) == SREGS[mode]


def reset_sregs():
    """Roughly what KVM_GET_SREGS gives after reset: CS F000 based at FFFF0000, limits 0xFFFF, APIC base."""
    sregs = abi.kvm_sregs()
    cs = sregs.cs
    cs.selector, cs.base, cs.limit, cs.type, cs.present = 0xF000, 0xFFFF0000, 0xFFFF, 11, 1
    for name in ("ds", "es", "fs", "gs", "ss"):
        seg = getattr(sregs, name)
        seg.limit, seg.type, seg.present = 0xFFFF, 3, 1
    sregs.cr0, sregs.apic_base = 0x60000010, APIC_BASE
    return sregs


def test_the_abi_registers_by_name():
    ram = RamLayout(128 * MiB)
    long = kvmrun_abi.plan(image_plan(Mode.LONG, ram.size), ram, 2, Mode.LONG, False)
    assert [dict(s.regs) for s in long.vcpus] == [
        {"rdi": 0, "rsi": 2, "rdx": 131072, "rsp": 128 * MiB},
        {"rdi": 1, "rsi": 2, "rdx": 131072, "rsp": 128 * MiB - 64 * 1024}]
    real = kvmrun_abi.plan(plan_raw(b"\xf4", Mode.REAL, entry=0x12345), ram, 1, Mode.REAL, False)
    regs = vcpu_regs(real.vcpus[0])
    assert (regs.rip, regs.rsp, regs.rdx, regs.rflags) == (0x2345, 0x7C00, 0x80, 0x2)
    assert real.vcpus[0].cr3 == 0


# --- refusals: the words users have always seen ----------------------------------------------------

def plan_of(*segments, entry=None, mode=Mode.LONG):
    segs = tuple(LoadSegment(addr=a, data=b"x" * min(n, 4), memsz=n, name=f"segment {i} (PT_LOAD)")
                 for i, (a, n) in enumerate(segments))
    return LoadPlan("ELF64", mode, segs[0].addr if entry is None else entry, segs)


REFUSED = [
    # (plan, mode, RAM, cpus, the error)
    (plan_of((0x100000, MiB + 1)), Mode.LONG, 2 * MiB, 1,
     "segment 0 (PT_LOAD) (0x100000-0x200001, 1048577 bytes) does not fit in guest RAM (0x0-0x200000); "
     "give more with --memory"),
    (plan_of((0x100000, 16), (3 * GiB - 8, 16)), Mode.LONG, 4 * GiB, 1,
     "segment 1 (PT_LOAD) (0xbffffff8-0xc0000008, 16 bytes) does not fit in guest RAM "
     "(0x0-0xc0000000, 0x100000000-0x140000000); give more with --memory"),
    (plan_of((0x2FFF, 0x1000)), Mode.LONG, 128 * MiB, 1,
     "segment 0 (PT_LOAD) (0x2fff-0x3fff) overlaps kvmrun's page tables at 0x1000-0x7000"),
    (plan_of((0x7000, 0x1000)), Mode.LONG, 128 * MiB, 1, None),       # starts where the page tables end
    (plan_of((0x100000, 16), (0x520, 1)), Mode.LONG, 128 * MiB, 1,
     "segment 1 (PT_LOAD) (0x520-0x521) overlaps kvmrun's GDT at 0x500-0x530"),
    (plan_of((0x667, 1)), Mode.PROTECTED, 128 * MiB, 1,
     "segment 0 (PT_LOAD) (0x667-0x668) overlaps kvmrun's TSS at 0x600-0x668"),
    (plan_of((0x1000, 0x1000)), Mode.PROTECTED, 128 * MiB, 1, None),      # no page tables without paging
    (plan_of((128 * MiB - 0x20001, 1)), Mode.LONG, 128 * MiB, 2, None),   # ends where the stacks begin
    (plan_of((128 * MiB - 0x20001, 2)), Mode.LONG, 128 * MiB, 2,
     "segment 0 (PT_LOAD) (0x7fdffff-0x7fe0001) overlaps kvmrun's vCPU stacks at 0x7fe0000-0x8000000"),
    (plan_of((3 * GiB - 1, 1)), Mode.LONG, 3 * GiB + 4096, 1,
     "segment 0 (PT_LOAD) (0xbfffffff-0xc0000000) overlaps kvmrun's vCPU stack at 0xbfff0000-0xc0000000"),
    (plan_of((0x3FF, 1), mode=Mode.REAL), Mode.REAL, MiB, 1,
     "segment 0 (PT_LOAD) (0x3ff-0x400) overlaps kvmrun's real-mode interrupt vector table at 0x0-0x400"),
    (plan_of((0xF00FF, 1), mode=Mode.REAL), Mode.REAL, MiB, 1,
     "segment 0 (PT_LOAD) (0xf00ff-0xf0100) overlaps kvmrun's no-BIOS interrupt stubs at 0xf0000-0xf0100"),
    (plan_of((0x100000, 16), entry=0x300000), Mode.LONG, 2 * MiB, 1,
     "entry point 0x300000 lies outside guest RAM (0x0-0x200000)"),
    (plan_of((0x100000, 16), entry=3 * GiB + 16), Mode.LONG, 5 * GiB, 1,
     "entry point 0xc0000010 lies outside guest RAM (0x0-0xc0000000, 0x100000000-0x180000000)"),
    (plan_of((0x100000, 16), (4 * GiB, 16), entry=4 * GiB), Mode.PROTECTED, 5 * GiB, 1,
     "entry point 0x100000000 cannot be reached in protected mode (it must lie below 0x100000000)"),
    (plan_of((0x100000, 16), mode=Mode.REAL), Mode.REAL, 2 * MiB, 1,
     "entry point 0x100000 cannot be reached in real mode (it must lie below 0x100000)"),
]


@pytest.mark.parametrize("plan, mode, size, cpus, message", REFUSED)
def test_check_setup_refuses_in_check_plans_words(plan, mode, size, cpus, message):
    ram = RamLayout(size)
    setup = kvmrun_abi.plan(plan, ram, cpus, mode, False)
    if message is None:
        check_setup(setup, ram)
        return
    with pytest.raises(LoaderError) as new:
        check_setup(setup, ram)
    assert str(new.value) == message
    # check_plan, which holds the image against RAM alone before /dev/kvm, says the same.
    if " overlaps kvmrun's " not in message:
        with pytest.raises(LoaderError) as first:
            check_plan(plan, ram, mode)
        assert str(first.value) == message


def abi_setup(size=2 * MiB, *extra_blobs, **changes):
    ram = RamLayout(size)
    setup = kvmrun_abi.plan(plan_of((0x100000, 0x1000)), ram, 2, Mode.LONG, False)
    return setup._replace(blobs=setup.blobs + extra_blobs, **changes), ram


def test_overlapping_blobs_are_refused_whoever_wrote_them():
    setup, ram = abi_setup(2 * MiB, Blob(0x100FFF, b"x", 2, "module 0"))
    with pytest.raises(LoaderError) as err:
        check_setup(setup, ram)
    assert str(err.value) == "segment 0 (PT_LOAD) (0x100000-0x101000) and module 0 (0x100fff-0x101001) overlap"
    # one inside a larger one, another beyond both
    setup, ram = abi_setup(2 * MiB, Blob(0x102000, b"", 0x10000, "info"), Blob(0x104000, b"", 16, "a"),
                           Blob(0x108000, b"", 16, "b"))
    with pytest.raises(LoaderError, match=r"^info \(0x102000-0x112000\) and a \(0x104000-0x104010\) overlap$"):
        check_setup(setup, ram)
    setup, ram = abi_setup(2 * MiB, Blob(0x101000, b"", 16, "next to it"), Blob(0x101010, b"", 0, "empty"))
    check_setup(setup, ram)                       # touching is not overlapping; empty blobs take no room


def test_a_structure_blob_may_lie_in_reserved_ranges_but_not_on_another_blob():
    setup, ram = abi_setup(2 * MiB, Blob(0x520, b"\0", 1, "boot information", structure=True))
    with pytest.raises(LoaderError, match=r"^GDT \(0x500-0x530\) and boot information \(0x520-0x521\) overlap$"):
        check_setup(setup, ram)
    setup, ram = abi_setup(2 * MiB, Blob(0x7000, b"\0" * 8, 0x1000, "boot information", structure=True))
    check_setup(setup, ram)


def test_a_corrupted_blob_is_refused_before_anything_is_written():
    mem = GuestMemory.for_tests(2 * MiB)
    setup, _ = abi_setup()
    image = setup.blobs[-1]
    for corrupted, error, message in [
        (image._replace(size=len(image.data) - 1), ValueError,
         "segment 0 (PT_LOAD): 4 bytes of data do not fit in its 3 bytes"),
        (image._replace(addr=2 * MiB - 0xFFF), LoaderError,
         "segment 0 (PT_LOAD) (0x1ff001-0x200001, 4096 bytes) does not fit in guest RAM (0x0-0x200000); "
         "give more with --memory"),
        (image._replace(addr=0x6000), LoaderError,
         "segment 0 (PT_LOAD) (0x6000-0x7000) overlaps kvmrun's page tables at 0x1000-0x7000"),
    ]:
        with pytest.raises(error) as err:
            check_setup(setup._replace(blobs=setup.blobs[:-1] + (corrupted,)), mem)
        assert str(err.value) == message
    assert mem.read(0, 2 * MiB) == bytes(2 * MiB)


def test_vcpu_starts_that_contradict_themselves_are_refused():
    setup, ram = abi_setup()
    first, second = setup.vcpus
    cases = [
        ((first._replace(regs={"rip": 5}), second), ValueError,
         "vCPU 0: rip is not a general register a setup may set (RIP comes from the entry)"),
        ((first, second._replace(regs={"eax": 5, "rbx": 1})), ValueError,
         "vCPU 1: eax is not a general register a setup may set (RIP comes from the entry)"),
        ((first._replace(regs={"rbx": 1 << 64}), second), ValueError,
         "vCPU 0: rbx=0x10000000000000000 does not fit in 64 bits"),
        ((first._replace(regs={"rbx": -1}), second), ValueError, "vCPU 0: rbx=-0x1 does not fit in 64 bits"),
        ((first._replace(runnable=False), second), ValueError, "vCPU 0 must be runnable: no other vCPU could start it"),
        ((first, second._replace(runnable=False)), ValueError,
         "a vCPU waits for INIT/SIPI, but the setup's ap_start is 'entry', not 'sipi'"),
        ((), ValueError, "a boot setup needs at least one vCPU"),
    ]
    for vcpus, error, message in cases:
        with pytest.raises(error) as err:
            check_setup(setup._replace(vcpus=vcpus), ram)
        assert str(err.value) == message
    with pytest.raises(ConfigError, match="ap_start 'sipi' needs the irqchip"):
        check_setup(setup._replace(needs=PlatformNeeds(irqchip=False, ap_start="sipi")), ram)
    # An AP that waits for SIPI starts where the SIPI says: its entry is not the setup's to check.
    waiting = second._replace(runnable=False, entry=0xFFFFFFFF)
    check_setup(setup._replace(vcpus=(first, waiting), needs=PlatformNeeds(irqchip=True, ap_start="sipi")), ram)


def test_the_abi_setup_passes_the_loaders_notes_on():
    plan = plan_raw(b"\xf4", Mode.LONG)._replace(notes=("a note",))
    assert kvmrun_abi.plan(plan, RamLayout(2 * MiB), 1, Mode.LONG, False).notes == ("a note",)


# --- plan_boot: from a config, before /dev/kvm -----------------------------------------------------

def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(bytes(data))
    return str(path)


def test_plan_boot_gives_a_checked_setup_and_the_mode(tmp_path):
    path = write(tmp_path, "hlt.elf", elf([Seg(0x100000, b"\xf4")], entry=0x100000, bits=32))
    setup, mode = plan_boot(BootConfig(path, cpus=3), one_gib_pages=False)
    assert mode is Mode.PROTECTED and isinstance(setup, BootSetup)
    assert [s.regs["rdi"] for s in setup.vcpus] == [0, 1, 2] and setup.vcpus[0].entry == 0x100000
    sector = write(tmp_path, "boot.bin", bytes(510) + b"\x55\xaa")
    setup, mode = plan_boot(BootConfig(sector), one_gib_pages=True)       # a boot disk, on kvmrun's BIOS
    assert mode is Mode.REAL and setup.needs.bios and setup.notes == ()
    setup, mode = plan_boot(BootConfig(sector, mode=Mode.REAL), one_gib_pages=True)
    assert mode is Mode.REAL and setup.notes == () and vcpu_regs(setup.vcpus[0]).rip == 0x7C00


def refusal(config, one_gib_pages=False):
    with pytest.raises((LoaderError, ConfigError)) as err:
        plan_boot(config, one_gib_pages)
    return type(err.value), str(err.value)


def test_plan_boot_refuses_what_kvmrun_boot_refuses_in_the_same_words(tmp_path):
    raw = write(tmp_path, "raw.bin", b"\x90" * (2 << 20))
    hlt = write(tmp_path, "hlt.elf", elf([Seg(0x100000, b"\xf4")], entry=0x100000))
    high = write(tmp_path, "high.elf", elf([Seg(0x7FF0000, b"\xf4" * 0x20000)], entry=0x7FF0000))
    missing = str(tmp_path / "nope.bin")
    assert refusal(BootConfig(missing)) == (LoaderError, f"{missing}: no such file")
    assert refusal(BootConfig(raw, memory=MiB)) == (
        LoaderError,
        f"{raw}: the image (2097152 bytes) is larger than guest RAM (1048576 bytes); give more with --memory")
    kind, message = refusal(BootConfig(hlt, load_addr=0x200000))
    assert kind is OptionError and message == "load_addr applies to raw images only: an ELF image gives its own"
    assert refusal(BootConfig(high)) == (
        LoaderError, f"{high}: segment 0 (PT_LOAD) (0x7ff0000-0x8010000, 131072 bytes) does not fit in guest RAM "
                     "(0x0-0x8000000); give more with --memory")
    assert refusal(BootConfig(raw, entry=0x9000000)) == (
        LoaderError, f"{raw}: entry point 0x9000000 lies outside guest RAM (0x0-0x8000000)")
    assert refusal(BootConfig(raw, mode=Mode.REAL, entry=0x100000)) == (
        LoaderError, f"{raw}: real-mode entry 0x100000 must lie below 1 MiB")
    kind, message = refusal(BootConfig(raw, mode=Mode.REAL, cpus=2))
    assert kind is OptionError and message.startswith("cpus must be 1 in real mode, not 2")
    assert refusal(BootConfig(hlt, cpus=0)) == (OptionError, "cpus must be at least 1, not 0")


def test_plan_boot_refuses_in_todays_order(tmp_path):
    """The image against RAM, then the real-mode SMP rule, then the stacks, then kvmrun's structures."""
    high = write(tmp_path, "high.bin", b"\xf4")
    both = BootConfig(high, memory=MiB, mode=Mode.REAL, cpus=2, load_addr=0x100000, entry=0x7C00)
    assert refusal(both)[1].endswith("does not fit in guest RAM (0x0-0x100000); give more with --memory")
    low = write(tmp_path, "low.elf", elf([Seg(0x500, b"\xf4")], entry=0x500))
    kind, message = refusal(BootConfig(low, memory=MiB, cpus=64))
    assert issubclass(kind, ConfigError) and message == (
        "memory must hold 64 vCPU stacks of 64 KiB beside kvmrun's tables, not 1048576 bytes")
    assert refusal(BootConfig(low)) == (
        LoaderError, f"{low}: segment 0 (PT_LOAD) (0x500-0x501) overlaps kvmrun's GDT at 0x500-0x530")


def test_the_first_plan_passing_means_the_second_passes():
    """plan_boot(one_gib_pages=False) before /dev/kvm, then with the host's answer: every range the
    1 GiB plan reserves or writes lies inside the 2 MiB plan's, so an image the first check let
    through is let through again, wherever it lies."""
    for size in (2 * MiB, 128 * MiB, 3 * GiB + 4096, 5 * GiB, 64 * GiB):
        ram = RamLayout(size)
        for cpus in (1, 4):
            conservative = kvmrun_abi.plan(plan_of((0x100000, 16)), ram, cpus, Mode.LONG, False)
            host = kvmrun_abi.plan(plan_of((0x100000, 16)), ram, cpus, Mode.LONG, True)
            for res in host.reserved:
                assert any(r.what == res.what and r.start <= res.start and res.end <= r.end
                           for r in conservative.reserved)
            for blob in host.blobs:
                assert any(b.name == blob.name and b.addr <= blob.addr and blob.end <= b.end
                           for b in conservative.blobs)
            for addr in range(0, 0x50000, 0x800):
                plan = plan_of((addr, 0x800))
                try:
                    check_setup(kvmrun_abi.plan(plan, ram, cpus, Mode.LONG, False), ram)
                except LoaderError:
                    continue
                check_setup(kvmrun_abi.plan(plan, ram, cpus, Mode.LONG, True), ram)

