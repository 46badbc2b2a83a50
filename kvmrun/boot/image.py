"""Reading an image file and choosing its loader."""
import os
import stat
from typing import Optional

from ..errors import LoaderError
from .cpu_modes import Mode
from .elf import is_elf, plan_elf
from .plan import LoadPlan
from .raw import BOOT_SECTOR_NOTE, looks_like_boot_sector, plan_raw


def read_image(path: str, max_size: int, module: bool = False) -> bytes:
    """The file's bytes; refuses what is not a regular file or cannot be in RAM anyway. The errors do
    not name the file: boot/prepare.py puts its path in front of every loader error. An image may not
    be empty; a module may: GRUB and QEMU load it as a module of no bytes. A module's `max_size` is
    the RAM the modules before it left."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise LoaderError("no such file") from None
    except OSError as err:
        raise LoaderError(err.strerror or str(err)) from None
    if stat.S_ISDIR(info.st_mode):
        raise LoaderError("is a directory, not an image")
    if not stat.S_ISREG(info.st_mode):
        raise LoaderError("not a regular file")
    if info.st_size == 0 and not module:
        raise LoaderError("the image is empty")
    if info.st_size > max_size:
        what, room = ("the module", "the guest RAM left for it") if module else ("the image", "guest RAM")
        raise LoaderError(f"{what} ({info.st_size} bytes) is larger than {room} ({max_size} bytes); "
                          "give more with --memory")
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as err:
        raise LoaderError(err.strerror or str(err)) from None


def plan_image(image: bytes, mode: Optional[Mode], load_addr: Optional[int],
               entry: Optional[int]) -> LoadPlan:
    """ELF images by their magic, anything else as raw (long mode unless told otherwise; a raw image
    that looks like a boot sector gets a note saying how to boot it as one)."""
    if is_elf(image):
        if load_addr is not None or entry is not None:
            raise LoaderError("--load-addr and --entry apply to raw images; an ELF image gives its own")
        return plan_elf(image)
    plan = plan_raw(image, mode or Mode.LONG, load_addr, entry)
    if mode is None and looks_like_boot_sector(image):
        plan = plan._replace(notes=(BOOT_SECTOR_NOTE,))
    return plan
