"""IoBus: routes port IO to devices through a precomputed port -> device table.

Ports no device claims read as all ones and ignore writes, as on a PC with nothing decoding them;
in strict mode they raise UnhandledAccess instead, which the machine turns into a guest fault.
"""
import functools
from typing import Callable, Dict, Protocol


class PortDevice(Protocol):
    def read(self, port: int, size: int) -> int: ...
    def write(self, port: int, size: int, value: int) -> None: ...


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


class IoBus:
    def __init__(self, strict: bool = False):
        self.strict = strict
        self._ports: Dict[int, PortDevice] = {}
        # port -> callable(value) for one-byte writes, the most common exit: one call, no lookups.
        self.byte_writers: Dict[int, Callable[[int], None]] = {}

    def register(self, first_port: int, count: int, device: PortDevice) -> None:
        for port in range(first_port, first_port + count):
            if port in self._ports:
                raise ValueError(f"port 0x{port:x} is already claimed")
            self._ports[port] = device
            self.byte_writers[port] = functools.partial(device.write, port, 1)

    def byte_writer(self, port: int) -> Callable[[int], None]:
        """The one-byte writer for a port no device claims, made once and kept in byte_writers."""
        writer = self.byte_writers.get(port)
        if writer is None:
            writer = functools.partial(self.write, port, 1) if self.strict else _ignore
            self.byte_writers[port] = writer
        return writer

    def read(self, port: int, size: int) -> int:
        device = self._ports.get(port)
        if device is None:
            if self.strict:
                raise UnhandledAccess("port", port, size, False)
            return all_ones(size)
        return device.read(port, size)

    def write(self, port: int, size: int, value: int) -> None:
        device = self._ports.get(port)
        if device is None:
            if self.strict:
                raise UnhandledAccess("port", port, size, True, value)
            return
        device.write(port, size, value)

    def write_block(self, port: int, size: int, data: bytes) -> None:
        """`rep outs`/`out`: count elements of `size` bytes, all to the same port, in order."""
        device = self._ports.get(port)
        if size == 1 and device is not None:
            write = device.write
            for value in data:
                write(port, 1, value)
            return
        for i in range(0, len(data), size):
            self.write(port, size, int.from_bytes(data[i:i + size], "little"))

    def read_block(self, port: int, size: int, count: int) -> bytes:
        return b"".join(self.read(port, size).to_bytes(size, "little") for _ in range(count))

    def mmio_read(self, address: int, size: int) -> bytes:
        if self.strict:
            raise UnhandledAccess("MMIO", address, size, False)
        return b"\xff" * size

    def mmio_write(self, address: int, data: bytes) -> None:
        if self.strict:
            raise UnhandledAccess("MMIO", address, len(data), True, int.from_bytes(data, "little"))


class IgnoredPort:
    """POST code port 0x80: BIOS-style progress codes, accepted and dropped."""

    def read(self, port: int, size: int) -> int:
        return all_ones(size)

    def write(self, port: int, size: int, value: int) -> None:
        pass
