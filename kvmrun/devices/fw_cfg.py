"""QEMU's firmware configuration device (fw_cfg, QEMU docs/specs/fw_cfg.rst), its traditional IO-port
interface as on a PC: guests written for QEMU read the vCPU count, RAM size and files from it.

Two ports from 0x510, registered as one device (the spec: the data port is always the selector port
plus one, the two cannot be mapped apart):
- offset 0 (0x510), the selector: a 16-bit write selects an item and rewinds it to its first byte;
- offset 1 (0x511), the data port: each 8-bit read returns the item's next byte, 0 past its end
  (where the offset stops); an item nobody defined reads as 0 throughout.

As QEMU's x86 fw_cfg (hw/nvram/fw_cfg.c, fw_cfg_comb_valid) decodes the two ports: an 8-bit read of
either port is a data read, an 8-bit write of either a data write, which QEMU ignores since 2.4, and
the selector takes only a 16-bit write at 0x510. Every other access (16- or 32-bit reads, 32-bit
writes, a 16-bit write at 0x511) is one QEMU refuses: it changes nothing and reads as 0. Selector bit
14 (the old write channel) is ignored as QEMU does; bit 15 selects architecture-specific items, of
which kvmrun defines none. No DMA interface: FW_CFG_ID says "traditional interface" only, and port
0x514 stays unclaimed.

Items: the signature "QEMU", FW_CFG_ID, RAM size, vCPU counts, optionally the kernel command line,
and the file directory listing the files given (name -> bytes) at selectors from 0x20, in name
order. All are built once; guest accesses only move the selection and its offset.
"""
from __future__ import annotations

import struct

from ..errors import ConfigError
from .bus import NO_ACCESS, Access

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Dict, Mapping, Optional

FW_CFG_PORT = 0x510
PORT_COUNT = 2
SELECTOR_OFFSET = 0
DATA_OFFSET = 1

# Selector keys (QEMU include/standard-headers/linux/qemu_fw_cfg.h).
SIGNATURE = 0x0000
ID = 0x0001
RAM_SIZE = 0x0003
NB_CPUS = 0x0005
MAX_CPUS = 0x000F
CMDLINE_SIZE = 0x0014
CMDLINE_DATA = 0x0015
FILE_DIR = 0x0019
FILE_FIRST = 0x0020
WRITE_CHANNEL = 0x4000
ARCH_LOCAL = 0x8000
ENTRY_MASK = 0x3FFF                        # what is left of a key without bits 14 and 15

FEATURE_TRADITIONAL = 1 << 0               # FW_CFG_ID bit 0; bit 1 (DMA) stays clear
FILE_NAME_SIZE = 56                        # with its NUL: names of 55 bytes at most
MAX_FILES = ENTRY_MASK + 1 - FILE_FIRST    # every generic key from 0x20 up


class FwCfg:
    """fw_cfg on its two ports. State: the items (fixed at construction), the selected key and the
    offset into its item, which never passes the item's end."""

    def __init__(self, cpus: int, max_cpus: int, ram_size: int, files: Optional[Mapping[str, bytes]] = None,
                 cmdline: Optional[str] = None):
        if not 1 <= cpus <= max_cpus <= 0xFFFF:
            raise ValueError(f"fw_cfg's vCPU counts are 16-bit, 1 <= cpus <= max_cpus: not {cpus}, {max_cpus}")
        if not 0 <= ram_size < 1 << 64:
            raise ValueError(f"fw_cfg's RAM size is 64-bit: not {ram_size}")
        items: Dict[int, bytes] = {
            SIGNATURE: b"QEMU",
            ID: struct.pack("<I", FEATURE_TRADITIONAL),
            RAM_SIZE: struct.pack("<Q", ram_size),
            NB_CPUS: struct.pack("<H", cpus),
            MAX_CPUS: struct.pack("<H", max_cpus),
        }
        if cmdline is not None:
            if "\0" in cmdline:
                raise ValueError("fw_cfg's command line is a C string: it cannot hold a NUL")
            string = cmdline.encode() + b"\0"
            items[CMDLINE_SIZE] = struct.pack("<I", len(string))      # QEMU counts the NUL
            items[CMDLINE_DATA] = string
        items[FILE_DIR] = _file_directory(files or {}, items)
        self._items = items
        self.key = SIGNATURE
        self.offset = 0
        self._data = items[SIGNATURE]

    def item(self, key: int) -> bytes:
        """The bytes selecting `key` makes readable (b"" for a key with no item)."""
        return self._items.get(key & (ARCH_LOCAL | ENTRY_MASK), b"")

    def select(self, key: int) -> None:
        self.key = key & 0xFFFF
        self._data = self.item(self.key)
        self.offset = 0

    # --- the bus interface -------------------------------------------------------------------------

    def read(self, offset: int, size: int, access: Access = NO_ACCESS) -> int:
        if size != 1:
            return 0                         # QEMU accepts only byte reads of its ports
        if self.offset >= len(self._data):
            return 0
        value = self._data[self.offset]
        self.offset += 1
        return value

    def write(self, offset: int, size: int, value: int, access: Access = NO_ACCESS) -> None:
        if offset == SELECTOR_OFFSET and size == 2:
            self.select(value)
        # Byte writes are data writes, which QEMU ignores since 2.4 (writes go through DMA only);
        # other widths are refused. Neither changes anything.


def _file_directory(files: Mapping[str, bytes], items: Dict[int, bytes]) -> bytes:
    """FW_CFG_FILE_DIR: a big-endian count, then per file its size, selector, 2 reserved bytes and
    NUL-padded name (64 bytes each); the files go into `items` at their selectors."""
    if len(files) > MAX_FILES:
        raise ConfigError(f"fw_cfg has selectors for {MAX_FILES} files, not {len(files)}")
    entries = []
    for index, name in enumerate(sorted(files)):
        encoded = name.encode()
        if not encoded or b"\0" in encoded or len(encoded) >= FILE_NAME_SIZE:
            raise ConfigError(f"fw_cfg file name {name!r} must be 1 to {FILE_NAME_SIZE - 1} bytes without NUL")
        data = bytes(files[name])
        if len(data) >= 1 << 32:
            raise ConfigError(f"fw_cfg file {name!r} is {len(data)} bytes; an item holds less than 4 GiB")
        key = FILE_FIRST + index
        items[key] = data
        entries.append(struct.pack(">IHH56s", len(data), key, 0, encoded))
    return struct.pack(">I", len(entries)) + b"".join(entries)
