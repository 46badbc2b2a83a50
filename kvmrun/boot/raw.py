"""Raw binary images: the whole file at one address, started at one entry."""
from __future__ import annotations

from .. import layout
from ..errors import LoaderError
from .cpu_modes import Mode
from .plan import LoadPlan, LoadSegment

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Optional

SECTOR_SIZE = 512
BOOT_SIGNATURE_OFFSET = 510
BOOT_SIGNATURE = b"\x55\xAA"


def is_boot_sector(image: bytes) -> bool:
    """A raw image a BIOS would boot: the signature at the end of its first sector."""
    return len(image) >= SECTOR_SIZE and image[BOOT_SIGNATURE_OFFSET:SECTOR_SIZE] == BOOT_SIGNATURE


def near_boot_sector_note(image: bytes) -> Optional[str]:
    """For a raw image booted without --mode that a BIOS would almost have booted: the two classic
    slips that leave a boot sector unsigned, so that it runs in long mode instead (and fails there)."""
    if len(image) >= SECTOR_SIZE and image[BOOT_SIGNATURE_OFFSET:SECTOR_SIZE] == BOOT_SIGNATURE[::-1]:
        return ("the image's first sector ends with 0xAA 0x55, the boot signature reversed (`dw 0x55AA`?): a "
                "boot sector needs bytes 0x55 0xAA (`dw 0xAA55`) to boot on kvmrun's BIOS; it runs as a raw "
                "image in long mode")
    if len(image) == SECTOR_SIZE - 1 and image[BOOT_SIGNATURE_OFFSET] == BOOT_SIGNATURE[0]:
        return ("the image is 511 bytes, one short of a sector, so its boot signature is cut off (0x55 at 510, "
                "no 0xAA at 511): it runs as a raw image in long mode, not as a boot sector")
    return None


def default_load_addr(mode: Mode) -> int:
    return layout.REAL_MODE_LOAD_ADDR if mode is Mode.REAL else layout.DEFAULT_LOAD_ADDR


def plan_raw(image: bytes, mode: Mode, load_addr: Optional[int] = None,
             entry: Optional[int] = None) -> LoadPlan:
    if not image:
        raise LoaderError("the image is empty")
    addr = default_load_addr(mode) if load_addr is None else load_addr
    start = addr if entry is None else entry
    if mode is Mode.REAL and start >= layout.REAL_MODE_LIMIT:
        raise LoaderError(f"real-mode entry 0x{start:x} must lie below 1 MiB")
    segment = LoadSegment(addr=addr, data=image, memsz=len(image), name="the image")
    return LoadPlan(kind="raw", default_mode=mode, entry=start, segments=(segment,))
