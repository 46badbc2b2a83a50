"""IoBus: routes port IO and MMIO to devices, which see register offsets and an access context.

A device is registered at a base (a port, or a guest-physical address for MMIO) over a range, and
answers `read(offset, size, access)` / `write(offset, size, value, access)` with the offset into its
own range, as its datasheet numbers registers. `access` says who is asking: the vCPU's index and
guest memory, for devices that read or write the guest (a BIOS call's registers, a DMA engine).

Ports and MMIO no device claims read as all ones and ignore writes, as on a PC with nothing decoding
them; in strict mode they raise UnhandledAccess instead, which the machine turns into a guest fault.

One-byte port writes are the hot path: each vCPU gets a table port -> callable(value) (writers_for),
filled as ports are first written, so the vCPU loop makes one call per OUT with no lookups of devices
or offsets.
"""
from __future__ import annotations

import bisect

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from functools import partial
    from typing import Any, Callable, Dict, List, NamedTuple, Optional, Protocol, Tuple
else:
    from _functools import partial      # functools.partial itself, without functools and collections (~3 ms)

    from ..named_tuple import NamedTuple


class Access(NamedTuple):
    """Who makes an access: the vCPU's index, and guest memory (None in tests that need none)."""
    vcpu: int = 0
    mem: Any = None


NO_ACCESS = Access()


if TYPE_CHECKING:                 # a type for mypy, not a class at run time
    class Device(Protocol):
        def read(self, offset: int, size: int, access: Access) -> int: ...
        def write(self, offset: int, size: int, value: int, access: Access) -> None: ...


class DeviceFault(Exception):
    """A device ends the run as a guest fault: what the guest asked cannot be done (a BIOS service
    kvmrun does not provide). `details` are (name, value) rows for the report; `code_at` =
    (linear address, IP, what it is) shows the guest's code there (fault.capture_fault)."""

    def __init__(self, summary: str, details=(), code_at=None):
        super().__init__(summary)
        self.summary = summary
        self.details = tuple(details)
        self.code_at = code_at


class UnhandledAccess(Exception):
    """A port or MMIO access that nothing handles, under --strict-io."""

    def __init__(self, space: str, address: int, size: int, is_write: bool, value: int = 0):
        self.space, self.address, self.size, self.is_write, self.value = space, address, size, is_write, value
        direction = f"write of 0x{value:x} to" if is_write else "read from"
        width = 4 if space == "port" else 8
        super().__init__(f"unhandled {size}-byte {space} {direction} 0x{address:0{width}x}")


def _ignore(value: int) -> None:
    """A write to a port nothing decodes."""


def all_ones(size: int) -> int:
    return (1 << (8 * size)) - 1


class _MmioRange(NamedTuple):
    base: int
    end: int
    device: Device


class IoBus:
    def __init__(self, strict: bool = False):
        self.strict = strict
        self._ports: Dict[int, Tuple[Device, int]] = {}       # port -> (device, its base port)
        self._mmio: List[_MmioRange] = []                      # sorted by base, not overlapping
        self._writer_tables: List[Tuple[Access, Dict[int, Callable[[int], None]]]] = []
        self._wrappers: Dict[int, Callable[[Callable[[int], None]], Callable[[int], None]]] = {}
        self.byte_writers = self.writers_for(NO_ACCESS)

    # --- registering --------------------------------------------------------------------------------

    def register(self, first_port: int, count: int, device: Device) -> None:
        for port in range(first_port, first_port + count):
            if port in self._ports:
                raise ValueError(f"port 0x{port:x} is already claimed")
        for port in range(first_port, first_port + count):
            self._ports[port] = (device, first_port)
        for _, table in self._writer_tables:       # made again on their next use
            for port in range(first_port, first_port + count):
                table.pop(port, None)

    def register_mmio(self, base: int, length: int, device: Device) -> None:
        end = base + length
        for other in self._mmio:
            if base < other.end and other.base < end:
                raise ValueError(f"MMIO 0x{base:x}-0x{end:x} overlaps 0x{other.base:x}-0x{other.end:x}")
        bisect.insort(self._mmio, _MmioRange(base, end, device))

    def device_at(self, port: int) -> Optional[Tuple[Device, int]]:
        """The device claiming `port` and the port's offset in its range; None when nothing does
        (what traces and statistics name)."""
        claimed = self._ports.get(port)
        return None if claimed is None else (claimed[0], port - claimed[1])

    def mmio_device_at(self, address: int, size: int = 1) -> Optional[Tuple[Device, int]]:
        found = self._mmio_device(address, size)
        return None if found is None else (found.device, address - found.base)

    # --- the fast path's tables -----------------------------------------------------------------------

    def writers_for(self, access: Access) -> Dict[int, Callable[[int], None]]:
        """A port -> one-byte-writer table for one vCPU, filled on first use (byte_writer): a machine
        claims a hundred ports, a guest writes a few, and a boot should not pay for the rest."""
        table: Dict[int, Callable[[int], None]] = {}
        self._writer_tables.append((access, table))
        return table

    def byte_writer(self, port: int, access: Access = NO_ACCESS) -> Callable[[int], None]:
        """The one-byte writer for `port` in `access`'s table, made once and kept there."""
        for table_access, table in self._writer_tables:
            if table_access is access:
                writer = table.get(port)
                if writer is None:
                    writer = table[port] = self._byte_writer(port, access)
                return writer
        return self._byte_writer(port, access)

    def _byte_writer(self, port: int, access: Access) -> Callable[[int], None]:
        claimed = self._ports.get(port)
        if claimed is not None:
            device, base = claimed
            writer: Callable[[int], None] = partial(device.write, port - base, 1, access=access)
        else:
            writer = partial(self.write, port, 1, access=access) if self.strict else _ignore
        wrapper = self._wrappers.get(port)
        return wrapper(writer) if wrapper is not None else writer

    def wrap_byte_writers(self, port: int, wrapper: Optional[Callable]) -> None:
        """Put `wrapper(direct_writer)` in front of `port`'s one-byte writers in every vCPU's table (None
        takes it away): how kernel absorption counts writes before handing a port to KVM."""
        if wrapper is None:
            self._wrappers.pop(port, None)
        else:
            self._wrappers[port] = wrapper
        for _, table in self._writer_tables:
            table.pop(port, None)

    # --- port IO ------------------------------------------------------------------------------------

    def read(self, port: int, size: int, access: Access = NO_ACCESS) -> int:
        claimed = self._ports.get(port)
        if claimed is None:
            if self.strict:
                raise UnhandledAccess("port", port, size, False)
            return all_ones(size)
        device, base = claimed
        return device.read(port - base, size, access)

    def write(self, port: int, size: int, value: int, access: Access = NO_ACCESS) -> None:
        claimed = self._ports.get(port)
        if claimed is None:
            if self.strict:
                raise UnhandledAccess("port", port, size, True, value)
            return
        device, base = claimed
        device.write(port - base, size, value, access)

    def write_block(self, port: int, size: int, data: bytes, access: Access = NO_ACCESS) -> None:
        """`rep outs`/`out`: count elements of `size` bytes, all to the same port, in order."""
        claimed = self._ports.get(port)
        if size == 1 and claimed is not None:
            device, base = claimed
            write, offset = device.write, port - base
            for value in data:
                write(offset, 1, value, access)
            return
        for i in range(0, len(data), size):
            self.write(port, size, int.from_bytes(data[i:i + size], "little"), access)

    def read_block(self, port: int, size: int, count: int, access: Access = NO_ACCESS) -> bytes:
        return b"".join(self.read(port, size, access).to_bytes(size, "little") for _ in range(count))

    # --- MMIO ---------------------------------------------------------------------------------------

    def _mmio_device(self, address: int, size: int) -> Optional[_MmioRange]:
        index = bisect.bisect_right(self._mmio, (address, 1 << 65)) - 1
        if index >= 0:
            found = self._mmio[index]
            if found.base <= address and address + size <= found.end:
                return found
        return None

    def mmio_read(self, address: int, size: int, access: Access = NO_ACCESS) -> bytes:
        found = self._mmio_device(address, size)
        if found is None:
            if self.strict:
                raise UnhandledAccess("MMIO", address, size, False)
            return b"\xff" * size
        return found.device.read(address - found.base, size, access).to_bytes(size, "little")

    def mmio_write(self, address: int, data: bytes, access: Access = NO_ACCESS) -> None:
        found = self._mmio_device(address, len(data))
        if found is None:
            if self.strict:
                raise UnhandledAccess("MMIO", address, len(data), True, int.from_bytes(data, "little"))
            return
        found.device.write(address - found.base, len(data), int.from_bytes(data, "little"), access)


class IgnoredPort:
    """POST code port 0x80: BIOS-style progress codes, accepted and dropped."""

    def read(self, offset: int, size: int, access: Access = NO_ACCESS) -> int:
        return all_ones(size)

    def write(self, offset: int, size: int, value: int, access: Access = NO_ACCESS) -> None:
        pass
