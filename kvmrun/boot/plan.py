"""LoadPlan: what a loader wants written where. Checked against RAM and kvmrun's own structures
before a byte is written, so a bad image never half-loads."""
from typing import List, NamedTuple, Optional, Sequence, Tuple, Union

from ..errors import LoaderError
from ..memory import GuestMemory, RamLayout, overlap
from .cpu_modes import Mode


class LoadSegment(NamedTuple):
    addr: int                     # guest-physical
    data: Union[bytes, memoryview]  # copied to addr at apply time; a slice of the image, not a copy
    memsz: int                    # bytes [addr + len(data), addr + memsz) are zeroed
    name: str                     # how errors name it: "the image", "segment 1 (PT_LOAD)"

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


class LoadResult(NamedTuple):
    entry: int
    mode: Mode
    ranges: Tuple[Tuple[int, int], ...]


def _span(start: int, end: int) -> str:
    return f"0x{start:x}-0x{end:x}"


def check_plan(plan: LoadPlan, mem: RamLayout, reserved: Sequence[Reserved], mode: Mode) -> None:
    for seg in plan.segments:
        if not mem.contains(seg.addr, seg.memsz):
            raise LoaderError(
                f"{seg.name} ({_span(seg.addr, seg.end)}, {seg.memsz} bytes) does not fit in guest RAM "
                f"({mem.describe()}); give more with --memory")
        for res in reserved:
            if overlap((seg.addr, seg.end), (res.start, res.end)):
                raise LoaderError(
                    f"{seg.name} ({_span(seg.addr, seg.end)}) overlaps kvmrun's {res.what} at "
                    f"{_span(res.start, res.end)}")
    if not mem.contains(plan.entry, 1):
        raise LoaderError(f"entry point 0x{plan.entry:x} lies outside guest RAM ({mem.describe()})")
    limit: Optional[int] = {Mode.REAL: 1 << 20, Mode.PROTECTED: 1 << 32}.get(mode)
    if limit is not None and plan.entry >= limit:
        raise LoaderError(f"entry point 0x{plan.entry:x} cannot be reached in {mode.value} mode "
                          f"(it must lie below 0x{limit:x})")


def apply_plan(plan: LoadPlan, mem: GuestMemory, mode: Mode) -> LoadResult:
    ranges: List[Tuple[int, int]] = []
    for seg in plan.segments:
        mem.write(seg.addr, seg.data)
        if seg.memsz > len(seg.data):
            mem.zero(seg.addr + len(seg.data), seg.memsz - len(seg.data))
        ranges.append((seg.addr, seg.end))
    return LoadResult(entry=plan.entry, mode=mode, ranges=tuple(ranges))
