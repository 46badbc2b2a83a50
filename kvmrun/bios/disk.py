"""int 13h for a boot disk: drive 80h over the image's bytes, with CHS and EDD (LBA) access.

The disk is the image file mapped into kvmrun, never read into RAM: a private copy-on-write mapping
by default (the guest's writes stay in kvmrun, the file is untouched), a shared one with
--disk-writable (writes reach the file). An image whose size is not a multiple of 512 reads as if
padded with zeros to the next sector.

Geometry is what QEMU's IDE disk and SeaBIOS give the same raw image (QEMU hw/block/hd-geometry.c,
SeaBIOS src/block.c), so CHS code that works there works here:
- physical: from an MBR partition entry's end head/sector when the image has one (QEMU's guess), else
  16 heads, 63 sectors per track, cylinders = sectors // 1008 held within 2..16383. A boot sector of a
  few KiB thus has 2 cylinders of 16 heads of 63 sectors: CHS reads of sectors 2..63 on cylinder 0,
  head 0 address the image's second sector onwards.
- logical (what int 13h AH=02h/03h/08h use): the physical geometry up to 1024 cylinders; beyond it,
  SeaBIOS's LBA translation (63 sectors, 16/32/64/128/255 heads) or, for a partition table with more
  than 16 heads, its "large" translation (halve cylinders, double heads); at most 1024 cylinders.
CHS addresses only sectors 1..63 of the logical heads and cylinders; past the image's end reads fail.

Statuses (Ralf Brown's table 00234, as SeaBIOS returns them), always with CF=1:
- 01h: invalid function or parameter: a drive other than 80h (every function, as SeaBIOS answers a
  missing drive), a sector count of 0 or above 128 (CHS) / above 127 (EDD, the Phoenix limit), CHS
  outside the logical geometry, an EDD block number past the end, a packet or result buffer at DS:SI
  that is not RAM (or not writable RAM for AH=48h), AH=43h write flags other than 00h-02h, AH=16h.
- 04h: sector not found: the transfer runs past the disk's last sector.
- 09h: data boundary error: the transfer buffer is not RAM real mode reaches, or (reading the disk
  into it) overlaps the BIOS area F0000-FFFFF.
- B2h: AH=46h, the disk is not removable.
A failed transfer transfers nothing: AL=0 (AH=02h-04h) or the packet's block count 0 (AH=42h-44h).
The last status is kept in the BIOS data area (0040:0074h for hard disks, 0040:0041h for diskettes).

Answered: 00h 01h 02h 03h 04h 08h 15h 16h 41h 42h 43h 44h 47h 48h, and as SeaBIOS answers a hard
disk, without effect: 09h 0Ch 0Dh 10h 11h 14h (initialize, seek, alternate reset, ready, recalibrate,
diagnostic) 45h 49h (lock, media change: success) 46h (eject: B2h). Any other AH on drive 80h raises
Unsupported (format, read long, El Torito, ...): the run ends naming it instead of a made-up answer.
Pure: the disk is bytes, guest memory goes through the BiosCall.
"""
from __future__ import annotations

import mmap
import os
import stat
import struct

from .. import layout
from ..errors import LoaderError
from . import data_area
from .call import BadBuffer, BiosCall, Unsupported, linear

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Callable, Dict, NamedTuple, Optional, Tuple, Union
else:
    from ..named_tuple import NamedTuple

SECTOR = 512
BOOT_DRIVE = layout.REAL_MODE_BOOT_DRIVE
# 2^32 sectors: what an MBR's 32-bit block numbers reach. The image is mapped, not read, so the cap
# is about address space and mistakes (a whole-disk device given as the image), not host RAM.
MAX_DISK_BYTES = 2 << 40

OK = 0x00
BAD_PARAMETER = 0x01
SECTOR_NOT_FOUND = 0x04
BAD_BUFFER = 0x09
NOT_REMOVABLE = 0xB2

BDA_DISKETTE_STATUS = data_area.DISKETTE_STATUS        # where the last status is kept
BDA_HARD_DISK_STATUS = data_area.HARD_DISK_STATUS

CHS_MAX_COUNT = 128          # SeaBIOS refuses more (01h); 128 sectors are 64 KiB
EDD_MAX_COUNT = 0x7F         # Phoenix EDD: at most 127 blocks per packet
EDD_VERSION = 0x30           # AH=41h: EDD 3.0 (the 64-bit flat buffer pointer in 18h-byte packets)
EDD_PACKET_ACCESS = 0x0001   # AH=41h CX: AH=42h-44h, 47h, 48h (no removable-media or EDD-config subsets)
EDD_CHS_VALID, EDD_WRITE_VERIFY = 0x0002, 0x0008     # AH=48h information flags
FLAT_POINTER = 0xFFFFFFFF    # FFFF:FFFF at packet offset 4: the buffer is the qword at offset 10h

_MAP_NORESERVE = 0x4000      # <sys/mman.h>: a private map of a large image reserves no swap

_UNPROVIDED = {0x05: "format track", 0x0A: "read long", 0x0B: "write long", 0x4B: "CD-ROM emulation",
               0x4E: "set hardware configuration"}


class DiskImageError(LoaderError, ValueError):
    """The image cannot serve as the boot disk: unreadable, or larger than MAX_DISK_BYTES (status 2)."""


class Geometry(NamedTuple):
    """Cylinders, heads, and sectors per track (numbered from 1)."""
    cylinders: int
    heads: int
    sectors: int

    def holds(self, cylinder: int, head: int, sector: int) -> bool:
        return cylinder < self.cylinders and head < self.heads and 1 <= sector <= self.sectors

    def lba(self, cylinder: int, head: int, sector: int) -> int:
        return (cylinder * self.heads + head) * self.sectors + sector - 1

    def chs(self, lba: int) -> Tuple[int, int, int]:
        cylinder, rest = divmod(lba, self.heads * self.sectors)
        head, sector = divmod(rest, self.sectors)
        return cylinder, head, sector + 1


def _size_geometry(total: int) -> Geometry:
    """QEMU's guess for a disk without a usable partition table."""
    return Geometry(min(max(total // (16 * 63), 2), 16383), 16, 63)


def _partition_geometry(total: int, boot_sector: bytes) -> Optional[Geometry]:
    """QEMU's guess from the first MBR entry with sectors and an end head: its end head and sector."""
    if len(boot_sector) < SECTOR or boot_sector[510:512] != b"\x55\xaa":
        return None
    for entry in range(0x1BE, 0x1FE, 16):
        end_head, end_sector = boot_sector[entry + 5], boot_sector[entry + 6] & 0x3F
        length = struct.unpack_from("<I", boot_sector, entry + 12)[0]
        if length and end_head and end_sector:
            cylinders = total // ((end_head + 1) * end_sector)
            if 1 <= cylinders <= 16383:
                return Geometry(cylinders, end_head + 1, end_sector)
    return None


def _large_translation(physical: Geometry) -> Geometry:
    cylinders, heads = physical.cylinders, physical.heads
    while cylinders > 1024:
        cylinders, heads = cylinders >> 1, heads << 1
        if heads > 127:
            break
    return Geometry(min(cylinders, 1024), heads, physical.sectors)


def _lba_translation(total: int) -> Geometry:
    if total > 63 * 255 * 1024:
        return Geometry(1024, 255, 63)
    tracks = total // 63
    wanted = tracks // 1024          # heads for 1024 cylinders, rounded up to 16, 32, 64, 128 or 255
    heads = 255 if wanted > 128 else 128 if wanted > 64 else 64 if wanted > 32 else 32 if wanted > 16 else 16
    return Geometry(min(tracks // heads, 1024), heads, 63)


def disk_geometry(total: int, boot_sector: bytes = b"") -> Tuple[Geometry, Geometry]:
    """(physical, logical) geometry of a disk of `total` sectors whose first sector is `boot_sector`,
    as QEMU's IDE disk and SeaBIOS make them."""
    guess = _partition_geometry(total, boot_sector)
    if guess is not None and guess.heads <= 16:
        return guess, guess._replace(cylinders=min(guess.cylinders, 1024))
    physical = _size_geometry(total)
    if physical.cylinders <= 1024:
        return physical, physical
    if guess is not None and physical.cylinders * physical.heads <= 131072:
        return physical, _large_translation(physical)
    return physical, _lba_translation(total)


class Disk:
    """The boot disk's sectors over `image` (a bytearray or an mmap of the file). Writes go into the
    image: into the file for a shared mapping, into kvmrun's copy otherwise."""

    def __init__(self, image: Union[bytearray, mmap.mmap], writable: bool = False):
        if len(image) > MAX_DISK_BYTES:
            raise DiskImageError(_too_large("the disk image", len(image)))
        self._image = image
        self.writable = writable           # whether writes reach a file (informational)
        self.size = len(image)
        self.sectors = -(-self.size // SECTOR)
        self._whole = self.size // SECTOR * SECTOR      # bytes in whole sectors
        # the last partial sector, zero-padded; writes beyond the image's end are kept here only
        self._tail = bytearray(image[self._whole:]).ljust(SECTOR, b"\0") if self.size % SECTOR else None
        self.physical, self.geometry = disk_geometry(self.sectors, bytes(image[:SECTOR]))

    @classmethod
    def from_bytes(cls, data: bytes) -> "Disk":
        """A disk over a copy of `data`."""
        return cls(bytearray(data))

    @classmethod
    def from_file(cls, path: Union[str, os.PathLike], writable: bool = False) -> "Disk":
        """The image at `path`, mapped: shared when `writable` (the guest's writes change the file),
        else private copy-on-write (the file never changes; only written sectors cost memory)."""
        name = os.fspath(path)
        try:
            fd = os.open(name, os.O_RDWR if writable else os.O_RDONLY)
        except OSError as err:
            how = " for writing (--disk-writable)" if writable else ""
            raise DiskImageError(f"cannot open the disk image {name}{how}: {err.strerror}") from None
        try:
            info = os.fstat(fd)
            if stat.S_ISDIR(info.st_mode):
                raise DiskImageError(f"the disk image {name} is a directory")
            size = info.st_size if stat.S_ISREG(info.st_mode) else os.lseek(fd, 0, os.SEEK_END)
            if size > MAX_DISK_BYTES:
                raise DiskImageError(_too_large(f"the disk image {name}", size))
            if size == 0:
                return cls(bytearray(), writable)
            flags = mmap.MAP_SHARED if writable else mmap.MAP_PRIVATE | _MAP_NORESERVE
            image = mmap.mmap(fd, size, flags=flags, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        except OSError as err:
            raise DiskImageError(f"cannot map the disk image {name}: {err.strerror}") from None
        finally:
            os.close(fd)
        return cls(image, writable)

    def read(self, lba: int, count: int) -> bytes:
        """Sectors lba..lba+count-1; beyond the image's end within its last sector, zeros."""
        self._check(lba, count)
        start, end = lba * SECTOR, (lba + count) * SECTOR
        data = bytes(self._image[start:min(end, self._whole)])
        if end > self._whole and self._tail is not None:
            data += self._tail
        return data

    def write(self, lba: int, data: bytes) -> None:
        """Whole sectors from lba. Of the last partial sector, what lies past the image's end is kept
        for later reads but not stored: the file has no room for it."""
        if len(data) % SECTOR:
            raise ValueError("a disk write is whole sectors")
        self._check(lba, len(data) // SECTOR)
        start, end = lba * SECTOR, lba * SECTOR + len(data)
        body_end = min(end, self._whole)
        if body_end > start:
            self._image[start:body_end] = data[:body_end - start]
        if end > self._whole and self._tail is not None:
            self._tail[:] = data[-SECTOR:]
            self._image[self._whole:self.size] = data[-SECTOR:][:self.size - self._whole]

    def _check(self, lba: int, count: int) -> None:
        if lba < 0 or count < 0 or lba + count > self.sectors:
            raise ValueError(f"sectors {lba}+{count} are not on a disk of {self.sectors} sectors")

    def close(self) -> None:
        if isinstance(self._image, mmap.mmap) and not self._image.closed:
            self._image.close()

    def __enter__(self) -> "Disk":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _too_large(what: str, size: int) -> str:
    return (f"{what} is {size / (1 << 40):.1f} TiB ({size} bytes): kvmrun's BIOS disk takes at most "
            f"{MAX_DISK_BYTES >> 40} TiB (2^32 sectors)")


_READ, _WRITE, _VERIFY, _SEEK = "read", "write", "verify", "seek"


class DiskServices:
    """int 13h for one hard disk, `disk`, as drive `drive` (80h: the drive a BIOS boots from)."""

    def __init__(self, disk: Disk, drive: int = BOOT_DRIVE):
        self.disk = disk
        self.drive = drive
        self._functions: Dict[int, Callable[[BiosCall], None]] = {
            0x00: self._no_effect, 0x01: self._last_status,
            0x02: lambda call: self._chs(call, _READ), 0x03: lambda call: self._chs(call, _WRITE),
            0x04: lambda call: self._chs(call, _VERIFY), 0x08: self._parameters, 0x15: self._disk_type,
            0x16: lambda call: self._finish(call, BAD_PARAMETER),     # change line: diskettes only
            0x41: self._extensions_check,
            0x42: lambda call: self._extended(call, _READ), 0x43: lambda call: self._extended(call, _WRITE),
            0x44: lambda call: self._extended(call, _VERIFY), 0x47: lambda call: self._extended(call, _SEEK),
            0x48: self._extended_parameters,
            0x45: self._no_effect, 0x49: self._no_effect,
            0x46: lambda call: self._finish(call, NOT_REMOVABLE),
            **{ah: self._no_effect for ah in (0x09, 0x0C, 0x0D, 0x10, 0x11, 0x14)},
        }

    def int13(self, call: BiosCall) -> None:
        """The service for vector 13h."""
        if call.dl != self.drive:
            self._finish(call, BAD_PARAMETER)
            return
        function = self._functions.get(call.ah)
        if function is None:
            raise Unsupported(_UNPROVIDED.get(call.ah, ""))
        function(call)

    # --- outcomes ------------------------------------------------------------------------------------
    def _finish(self, call: BiosCall, status: int) -> None:
        """AH=status, CF=1 unless 0, and the status kept in the BIOS data area for AH=01h."""
        where = BDA_HARD_DISK_STATUS if call.dl >= 0x80 else BDA_DISKETTE_STATUS
        try:
            call.write_linear(where, bytes([status]))
        except BadBuffer:
            pass                            # RAM too small to hold the data area: nothing to keep
        if status == OK:
            call.succeed()
        else:
            call.fail(status)

    def _no_effect(self, call: BiosCall) -> None:
        self._finish(call, OK)

    def _last_status(self, call: BiosCall) -> None:
        """AH=01h: the previous operation's status, CF=1 if it failed; the kept status is unchanged."""
        try:
            status = call.read_linear(BDA_HARD_DISK_STATUS, 1)[0]
        except BadBuffer:
            status = OK
        call.ah = status
        call.carry = status != OK

    # --- CHS -----------------------------------------------------------------------------------------
    def _chs(self, call: BiosCall, command: str) -> None:
        """AH=02h/03h/04h: AL sectors from cylinder CH (bits 8-9 in CL's bits 6-7), head DH, sector
        CL bits 0-5, to or from ES:BX. AL = sectors transferred (0 on failure)."""
        count, head = call.al, call.dh
        cylinder, sector = call.ch | (call.cl & 0xC0) << 2, call.cl & 0x3F
        geometry = self.disk.geometry
        if not 1 <= count <= CHS_MAX_COUNT or not geometry.holds(cylinder, head, sector):
            status = BAD_PARAMETER
        else:
            lba = geometry.lba(cylinder, head, sector)
            status = self._transfer(call, command, lba, count, linear(call.es, call.bx))
        call.al = count if status == OK else 0
        self._finish(call, status)

    def _transfer(self, call: BiosCall, command: str, lba: int, count: int, buffer: int) -> int:
        """Move `count` sectors from `lba` between the disk and the linear `buffer`: all or nothing."""
        if lba + count > self.disk.sectors:
            return SECTOR_NOT_FOUND
        try:
            if command == _READ:
                call.write_linear(buffer, self.disk.read(lba, count))
            elif command == _WRITE:
                self.disk.write(lba, call.read_linear(buffer, count * SECTOR))
        except BadBuffer:
            return BAD_BUFFER
        return OK

    def _parameters(self, call: BiosCall) -> None:
        """AH=08h: the last cylinder (0-based, one kept back as PC BIOSes do), sectors per track, the
        last head, and the number of hard disks."""
        geometry = self.disk.geometry
        last_cylinder = max(geometry.cylinders - 2, 0)
        self._finish(call, OK)
        call.al = 0
        call.ch = last_cylinder & 0xFF
        call.cl = (last_cylinder >> 2) & 0xC0 | geometry.sectors
        call.dh = geometry.heads - 1
        call.dl = 1

    def _disk_type(self, call: BiosCall) -> None:
        """AH=15h: AH=03h (a hard disk), CF=0, CX:DX the sectors CHS reaches below AH=08h's last
        cylinder (SeaBIOS's count, consistent with AH=08h)."""
        geometry = self.disk.geometry
        sectors = max(geometry.cylinders - 1, 0) * geometry.heads * geometry.sectors
        self._finish(call, OK)
        call.ah = 0x03
        call.cx, call.dx = sectors >> 16, sectors & 0xFFFF

    # --- EDD -----------------------------------------------------------------------------------------
    def _extensions_check(self, call: BiosCall) -> None:
        """AH=41h: BX=AA55h, AH=30h (EDD 3.0), CX bit 0 (packet access), CF=0."""
        self._finish(call, OK)
        call.ah, call.bx, call.cx = EDD_VERSION, 0xAA55, EDD_PACKET_ACCESS

    def _extended(self, call: BiosCall, command: str) -> None:
        """AH=42h/43h/44h/47h with the disk address packet at DS:SI: size (10h, or 18h for the 64-bit
        buffer address used when the one at 4 is FFFF:FFFF), block count (word at 2), buffer (segment:
        offset at 4), first block (qword at 8). A failed transfer sets the block count to 0."""
        packet = linear(call.ds, call.si)
        try:
            header = call.read_linear(packet, 16)
        except BadBuffer:
            self._finish(call, BAD_PARAMETER)
            return
        size, count, pointer, lba = struct.unpack_from("<BxHIQ", header)
        if size < 0x10 or (command == _WRITE and call.al > 2) or lba >= self.disk.sectors:
            status = BAD_PARAMETER
        elif command == _SEEK or count == 0:
            status = OK
        elif count > EDD_MAX_COUNT:
            status = BAD_PARAMETER
        else:
            buffer: Optional[int] = linear(pointer >> 16, pointer)
            if pointer == FLAT_POINTER and size >= 0x18:
                try:
                    buffer = struct.unpack("<Q", call.read_linear(packet + 0x10, 8))[0]
                except BadBuffer:
                    buffer = None
            status = BAD_PARAMETER if buffer is None else self._transfer(call, command, lba, count, buffer)
        if status != OK and command != _SEEK and count:
            try:
                call.write_linear(packet + 2, b"\0\0")
            except BadBuffer:
                pass                        # a packet in the BIOS area: nothing to report back into
        self._finish(call, status)

    def _extended_parameters(self, call: BiosCall) -> None:
        """AH=48h: the result buffer at DS:SI says its size in its first word (at least 1Ah). Returns
        1Ah bytes, or 1Eh (with the configuration pointer FFFF:FFFF: none) when there is room; no EDD
        3.0 device path. Physical geometry, flagged invalid (as SeaBIOS does) beyond 16383 cylinders."""
        try:
            room = struct.unpack("<H", call.read(call.ds, call.si, 2))[0]
        except BadBuffer:
            self._finish(call, BAD_PARAMETER)
            return
        if room < 0x1A:
            self._finish(call, BAD_PARAMETER)
            return
        disk, physical = self.disk, self.disk.physical
        flags, cylinders = EDD_CHS_VALID | EDD_WRITE_VERIFY, physical.cylinders
        if disk.sectors > physical.heads * physical.sectors * 0x3FFF:
            flags, cylinders = EDD_WRITE_VERIFY, 0x3FFF
        result = struct.pack("<HIIIQH", flags, cylinders, physical.heads, physical.sectors, disk.sectors, SECTOR)
        result = struct.pack("<H", 0x1A) + result if room < 0x1E else struct.pack("<H", 0x1E) + result + b"\xff" * 4
        try:
            call.write(call.ds, call.si, result)
        except BadBuffer:
            self._finish(call, BAD_PARAMETER)
            return
        self._finish(call, OK)
