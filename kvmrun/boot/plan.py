"""LoadPlan: what a loader wants written where. check_plan holds it against RAM alone, before any
option that depends on the mode is judged; the boot protocol turns it into a BootSetup (boot/setup.py),
which is checked against RAM and kvmrun's own structures before a byte is written."""
from __future__ import annotations

from ..errors import LoaderError
from ..memory import RamLayout
from .cpu_modes import Mode

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import NamedTuple, Optional, Tuple, Union
else:
    from ..named_tuple import NamedTuple


class LoadSegment(NamedTuple):
    addr: int                     # guest-physical
    data: Union[bytes, memoryview]  # copied to addr at apply time; a slice of the image, not a copy
    memsz: int                    # bytes [addr + len(data), addr + memsz) are zeroed
    name: str                     # how errors name it: "the image", "segment 1 (PT_LOAD)"
    file_offset: int = 0          # where `data` starts in the image file (kvmrun inspect shows it)
    flags: str = ""               # an ELF segment's p_flags as "R", "W", "X" letters ("R-X"); "" for raw

    @property
    def end(self) -> int:
        return self.addr + self.memsz


class LoadPlan(NamedTuple):
    kind: str                     # "raw", "ELF64", "ELF32"
    default_mode: Mode
    entry: int                    # guest-physical
    segments: Tuple[LoadSegment, ...]
    notes: Tuple[str, ...] = ()   # things the user may want to know about the image: shown, not errors


class Reserved(NamedTuple):
    """A range kvmrun itself writes at boot, which the image must not overlap."""
    start: int
    end: int
    what: str


def span(start: int, end: int) -> str:
    return f"0x{start:x}-0x{end:x}"


ENTRY_LIMITS = {Mode.REAL: 1 << 20, Mode.PROTECTED: 1 << 32}    # where each mode can start executing


def refuse_outside_ram(name: str, addr: int, size: int, mem: RamLayout) -> None:
    if not mem.contains(addr, size):
        raise LoaderError(f"{name} ({span(addr, addr + size)}, {size} bytes) does not fit in guest RAM "
                          f"({mem.describe()}); give more with --memory")


def refuse_unreachable_entry(entry: int, mode: Mode, mem: RamLayout) -> None:
    if not mem.contains(entry, 1):
        raise LoaderError(f"entry point 0x{entry:x} lies outside guest RAM ({mem.describe()})")
    limit: Optional[int] = ENTRY_LIMITS.get(mode)
    if limit is not None and entry >= limit:
        raise LoaderError(f"entry point 0x{entry:x} cannot be reached in {mode.value} mode "
                          f"(it must lie below 0x{limit:x})")


def check_plan(plan: LoadPlan, mem: RamLayout, mode: Mode) -> None:
    """Every segment inside RAM, and the entry in RAM and reachable in `mode`."""
    for seg in plan.segments:
        refuse_outside_ram(seg.name, seg.addr, seg.memsz, mem)
    refuse_unreachable_entry(plan.entry, mode, mem)
