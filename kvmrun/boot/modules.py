"""A PC kernel's modules (`--module FILE[=CMDLINE]`, a manifest's `modules`): each file's size taken
from stat and held against the room the protocol has for it before a byte is read, then read no
further than that size. A module that does not fit costs neither the time nor the memory of reading
it.

Where the room is: the modules go page-aligned from the page after the kernel (never below 1 MiB:
protocols/pc.modules_start) up to the end of the RAM below 3 GiB. Multiboot's and multiboot2's 32-bit
fields cannot point past 4 GiB, PVH's start info (after the modules) travels in EBX, and the PC has
no RAM from 3 GiB to 4 GiB: so for every protocol that is min(--memory, 3 GiB).
"""
from __future__ import annotations

from .. import layout
from ..errors import LoaderError
from ..memory import RamLayout
from ..options import ModuleSpec
from .image import ModuleError, file_size, read_file
from .protocols.pc import PAGE, Module, align_up

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Sequence, Tuple


def module_sizes(specs: Sequence[ModuleSpec]) -> Tuple[int, ...]:
    """Each module's size, from stat; ModuleError for one that is missing or not a regular file."""
    sizes = []
    for index, spec in enumerate(specs):
        try:
            sizes.append(file_size(spec.path, "a module"))
        except LoaderError as err:
            raise ModuleError(index, spec, str(err)) from None
    return tuple(sizes)


def refuse_what_cannot_fit(specs: Sequence[ModuleSpec], sizes: Sequence[int], start: int, ram: RamLayout) -> None:
    """ModuleError for the first module that, placed page-aligned from `start` after the ones before
    it, would end beyond the RAM below 3 GiB."""
    limit = min(ram.regions[0].end, layout.RAM_GAP_START)
    addr = start
    for index, (spec, size) in enumerate(zip(specs, sizes)):
        if addr + size > limit:
            after = "the kernel and the modules before it" if index else "the kernel"
            room = max(limit - addr, 0)
            if ram.size < layout.RAM_GAP_START and addr + size <= layout.RAM_GAP_START:
                hint = "give more with --memory"
            else:
                hint = "modules must lie below 3 GiB (where the PC's MMIO hole begins), whatever --memory gives"
            raise ModuleError(index, spec, f"its {size} bytes do not fit in the {room} bytes of guest RAM left "
                                           f"after {after} (0x{addr:x}-0x{limit:x}); {hint}")
        addr = align_up(addr + size, PAGE)


def read_modules(specs: Sequence[ModuleSpec], sizes: Sequence[int]) -> Tuple[Module, ...]:
    """The modules' bytes, each read no further than its checked size, with their strings: the path as
    the user wrote it, then a space and the command line when one is given."""
    modules = []
    for index, (spec, size) in enumerate(zip(specs, sizes)):
        try:
            data = read_file(spec.path, size)
        except LoaderError as err:
            raise ModuleError(index, spec, str(err)) from None
        string = spec.shown if spec.cmdline is None else f"{spec.shown} {spec.cmdline}"
        modules.append(Module(spec.shown, data, string))
    return tuple(modules)
