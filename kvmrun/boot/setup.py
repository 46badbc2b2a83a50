"""BootSetup: everything a boot protocol wants done before the first vCPU runs, as data.

Blobs to write (the image's segments, the protocol's own structures), ranges the image must keep out
of, each vCPU's starting state, and what the platform must provide. A setup is checked as a whole
(check_setup) before a byte is written (apply_setup), so a bad image never half-loads. Pure: the
kvm structs are only filled in (vcpu_sregs, vcpu_regs), never sent.
"""
from __future__ import annotations

from itertools import pairwise

from ..errors import LoaderError
from ..kvm import abi
from ..memory import GuestMemory, RamLayout, overlap
from ..platform.needs import AP_START_SIPI, PlatformNeeds, check_needs
from .cpu_modes import RFLAGS_RESERVED, Mode, initial_sregs, real_mode_code_segment
from .plan import Reserved, refuse_outside_ram, refuse_unreachable_entry, span

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Mapping, NamedTuple, Optional, Sequence, Set, Tuple, Union
else:
    from ..named_tuple import NamedTuple

# What a VcpuStart may set in its general registers: kvm_regs' fields except RIP, which the entry gives.
REGISTER_NAMES = frozenset(field[0] for field in abi.kvm_regs._fields_) - {"rip"}
_REGISTER_LIMIT = 1 << 64
# Where an entry can lie for the CPU to reach it without paging; long mode maps all RAM.


class Blob(NamedTuple):
    """Bytes to place in guest RAM: `data` at `addr`, then zeroes up to `size` (an ELF's .bss)."""
    addr: int                       # guest-physical
    data: Union[bytes, memoryview]  # a slice of the image is not copied until it is written
    size: int                       # >= len(data)
    name: str                       # how errors name it: "segment 1 (PT_LOAD)", "the image", "GDT"
    structure: bool = False         # the protocol's own (lies in its reserved ranges); else the guest's
    file_offset: Optional[int] = None   # where `data` starts in the image file; None: not from the image
    flags: str = ""                 # an ELF segment's p_flags ("R-X"), for kvmrun inspect

    @property
    def end(self) -> int:
        return self.addr + self.size


class VcpuStart(NamedTuple):
    """How one vCPU starts: its mode (which gives the segment and control registers), the entry
    (guest-physical, also in real mode, where CS:IP is derived from it), CR3 (0 without paging), its
    general registers by kvm_regs name, RFLAGS 0x2 unless given, and whether it runs at once or
    waits for INIT and SIPI from another vCPU."""
    mode: Mode
    entry: int
    cr3: int
    regs: Mapping[str, int]
    runnable: bool = True


class BootSetup(NamedTuple):
    blobs: Tuple[Blob, ...]                # written in this order
    reserved: Tuple[Reserved, ...]         # no blob of the guest's may overlap these
    vcpus: Tuple[VcpuStart, ...]           # one per vCPU, vCPU 0 first
    needs: PlatformNeeds = PlatformNeeds()
    notes: Tuple[str, ...] = ()            # for the user, shown before the run: not errors


def check_setup(setup: BootSetup, ram: RamLayout) -> None:
    """Refuse a setup that cannot boot, before anything is written.

    LoaderError for what the user can change (the image, --memory), worded as kvmrun always has;
    ConfigError for platform needs no machine can meet; ValueError for a setup that contradicts
    itself (a protocol's bug, not the user's)."""
    for blob in setup.blobs:
        if len(blob.data) > blob.size:
            raise ValueError(f"{blob.name}: {len(blob.data)} bytes of data do not fit in its {blob.size} bytes")
        refuse_outside_ram(blob.name, blob.addr, blob.size, ram)
        if not blob.structure:
            for res in setup.reserved:
                if overlap((blob.addr, blob.end), (res.start, res.end)):
                    raise LoaderError(f"{blob.name} ({span(blob.addr, blob.end)}) overlaps kvmrun's {res.what} at "
                                      f"{span(res.start, res.end)}")
    _refuse_overlapping_blobs(setup.blobs)
    _check_vcpus(setup.vcpus, ram)
    check_needs(setup.needs)
    if setup.needs.ap_start != AP_START_SIPI and not all(start.runnable for start in setup.vcpus):
        raise ValueError("a vCPU waits for INIT/SIPI, but the setup's ap_start is "
                         f"{setup.needs.ap_start!r}, not {AP_START_SIPI!r}")


def _refuse_overlapping_blobs(blobs: Sequence[Blob]) -> None:
    """Two blobs sharing a byte would make the order of writing matter: refused, whoever wrote them.
    Sorted by address, a blob that overlaps any earlier one overlaps the one just before it."""
    ordered = sorted((blob for blob in blobs if blob.size), key=lambda blob: blob.addr)
    for before, after in pairwise(ordered):
        if after.addr < before.end:
            raise LoaderError(f"{before.name} ({span(before.addr, before.end)}) and {after.name} "
                              f"({span(after.addr, after.end)}) overlap")


def _check_vcpus(vcpus: Sequence[VcpuStart], ram: RamLayout) -> None:
    if not vcpus:
        raise ValueError("a boot setup needs at least one vCPU")
    if not vcpus[0].runnable:
        raise ValueError("vCPU 0 must be runnable: no other vCPU could start it")
    checked: Set[Tuple[Mode, int]] = set()
    for index, start in enumerate(vcpus):
        unknown = set(start.regs) - REGISTER_NAMES
        if unknown:
            raise ValueError(f"vCPU {index}: {', '.join(sorted(unknown))} is not a general register a "
                             "setup may set (RIP comes from the entry)")
        for name, value in start.regs.items():
            if not 0 <= value < _REGISTER_LIMIT:
                raise ValueError(f"vCPU {index}: {name}={value:#x} does not fit in 64 bits")
        if not start.runnable or (start.mode, start.entry) in checked:
            continue                   # a waiting vCPU starts where its SIPI says
        checked.add((start.mode, start.entry))
        refuse_unreachable_entry(start.entry, start.mode, ram)


def apply_setup(setup: BootSetup, mem: GuestMemory) -> None:
    """Write every blob, zeroing the rest of each up to its size. Only writes: check_setup comes first."""
    for blob in setup.blobs:
        mem.write(blob.addr, blob.data)
        if blob.size > len(blob.data):
            mem.zero(blob.addr + len(blob.data), blob.size - len(blob.data))


def vcpu_sregs(start: VcpuStart, sregs: abi.kvm_sregs) -> abi.kvm_sregs:
    """`sregs` (KVM's reset state, from KVM_GET_SREGS: real mode keeps most of it) set up for `start`."""
    initial_sregs(sregs, start.mode, start.entry, start.cr3)
    return sregs


def vcpu_regs(start: VcpuStart) -> abi.kvm_regs:
    """The general registers for `start`: its own, RIP at its entry (in real mode the IP that goes with
    the CS vcpu_sregs chooses), every other register 0 and RFLAGS 0x2 (interrupts off)."""
    regs = abi.kvm_regs(rflags=RFLAGS_RESERVED)
    for name, value in start.regs.items():
        setattr(regs, name, value)
    regs.rip = real_mode_code_segment(start.entry)[1] if start.mode is Mode.REAL else start.entry
    return regs
