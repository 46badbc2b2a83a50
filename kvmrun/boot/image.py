"""Reading an image file and choosing its loader."""
from __future__ import annotations

import os
import stat

from ..errors import LoaderError
from ..options import ModuleSpec
from .cpu_modes import Mode
from .elf import is_elf, plan_elf
from .plan import LoadPlan
from .raw import near_boot_sector_note, plan_raw

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Optional


class ModuleError(LoaderError):
    """A module that cannot be loaded. Its message names the module by its index (from 0, as kernels
    count them) and its path as the user wrote it; `shown`, `file` and `problem` let a manifest file
    the error under its 'modules' key."""

    def __init__(self, index: int, spec: ModuleSpec, problem: str):
        super().__init__(f"module {index} ({spec.shown}): {problem}")
        self.index = index
        self.shown = spec.shown
        self.file = spec.path
        self.problem = problem


def file_size(path: str, what: str) -> int:
    """The size of the regular file at `path`, from stat alone, so that a file that cannot fit is
    refused before a byte of it is read. `what` is what it should be ("an image", "a module")."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise LoaderError("no such file") from None
    except OSError as err:
        raise LoaderError(err.strerror or str(err)) from None
    if stat.S_ISDIR(info.st_mode):
        raise LoaderError(f"is a directory, not {what}")
    if not stat.S_ISREG(info.st_mode):
        raise LoaderError("not a regular file")
    return info.st_size


def read_file(path: str, size: int) -> bytes:
    """The file's `size` bytes, as file_size found them: never more, so a file that grows as it is
    read cannot take more memory than was checked. One more byte is asked for to notice that."""
    try:
        with open(path, "rb") as f:
            data = f.read(size + 1)
    except OSError as err:
        raise LoaderError(err.strerror or str(err)) from None
    if len(data) != size:
        raise LoaderError(f"changed while kvmrun read it: {size} bytes when checked, then "
                          f"{'more' if len(data) > size else len(data)}")
    return data


def read_image(path: str, max_size: int) -> bytes:
    """The image's bytes; refuses what is not a regular file, is empty, or cannot be in RAM anyway.
    The errors do not name the file: boot/prepare.py puts its path in front of every loader error."""
    size = file_size(path, "an image")
    if size == 0:
        raise LoaderError("the image is empty")
    if size > max_size:
        raise LoaderError(f"the image ({size} bytes) is larger than guest RAM ({max_size} bytes); "
                          "give more with --memory")
    return read_file(path, size)


def read_head(path: str, limit: int) -> bytes:
    """The image's first `limit` bytes (all of a smaller one): enough to tell a boot disk, which need
    not fit in RAM, from the formats that are loaded whole. Refuses what read_image refuses but size."""
    size = file_size(path, "an image")
    if size == 0:
        raise LoaderError("the image is empty")
    try:
        with open(path, "rb") as f:
            return f.read(min(size, limit))
    except OSError as err:
        raise LoaderError(err.strerror or str(err)) from None


def plan_image(image: bytes, mode: Optional[Mode], load_addr: Optional[int],
               entry: Optional[int]) -> LoadPlan:
    """ELF images by their magic, anything else as raw (long mode unless told otherwise)."""
    if is_elf(image):
        if load_addr is not None or entry is not None:
            raise LoaderError("--load-addr and --entry apply to raw images; an ELF image gives its own")
        return plan_elf(image)
    plan = plan_raw(image, mode or Mode.LONG, load_addr, entry)
    note = near_boot_sector_note(image) if mode is None else None
    return plan._replace(notes=(note,)) if note else plan
