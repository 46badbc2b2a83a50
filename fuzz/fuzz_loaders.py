"""Coverage-guided fuzzing of kvmrun's image loaders with atheris (libFuzzer), run by `make fuzz`.

Every input is an image, probed and planned the way `kvmrun boot` does it (multiboot2, multiboot, PVH,
then kvmrun's ABI; one vCPU); the last byte also picks the mode asked for (asking for one skips the
kernel formats, as --mode does). The only acceptable outcomes are a checked setup whose
image lies inside RAM and outside kvmrun's boot structures, or kvmrun's own LoaderError/ConfigError:
anything else is a crash, which libFuzzer keeps.
Either way, planning must stay within a memory budget proportional to the image (measured with
tracemalloc), whatever its headers claim. Inputs whose first byte is 0xC0 or more are also read as the
parameters of a "header flood" ELF (many PT_LOAD headers each naming the whole file), the class of
image that once made kvmrun copy count x size bytes.

  make fuzz                                   60 s, corpus seeded from build/guests
  make fuzz FUZZ_SECONDS=3600                 a longer campaign
"""
import struct
import sys
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kvmrun.boot.cpu_modes import Mode  # noqa: E402
from kvmrun.boot.image import plan_image  # noqa: E402
from kvmrun.boot.prepare import plan_image_bytes, plan_setup  # noqa: E402
from kvmrun.errors import ConfigError, LoaderError  # noqa: E402
from kvmrun.memory import RamLayout, overlap  # noqa: E402
from kvmrun.options import BootConfig  # noqa: E402

RAM = RamLayout(16 << 20)
MODES = (None, Mode.REAL, Mode.PROTECTED, Mode.LONG)

# What planning may allocate: a few times the image, plus what the most program headers kvmrun
# accepts (64 KiB of them: 1170 ELF64 or 2048 ELF32 headers) cost as segments, ~450 bytes each.
MEMORY_PER_IMAGE_BYTE = 3
MEMORY_FIXED = 1 << 20


def memory_budget(image_size: int) -> int:
    return MEMORY_PER_IMAGE_BYTE * image_size + MEMORY_FIXED


def flood_elf(count: int, size: int, offset: int = 1, stride: int = 0, bits: int = 64) -> bytes:
    """An ELF of `size` bytes whose `count` PT_LOAD headers each name the file from `offset` to its
    end, placed `stride` bytes apart from 1 MiB (0: all at the same address, so they overlap)."""
    ehsize, phentsize = (64, 56) if bits == 64 else (52, 32)
    size = max(size, ehsize + count * phentsize, offset + 1)
    filesz, base = size - offset, 0x100000
    if bits == 64:
        header = struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, base, ehsize, 0, 0, ehsize, phentsize, count, 64, 0, 0)
        phdrs = b"".join(struct.pack("<IIQQQQQQ", 1, 5, offset, base + i * stride, base + i * stride, filesz,
                                     filesz, 0x1000) for i in range(count))
    else:
        header = struct.pack("<HHIIIIIHHHHHH", 2, 3, 1, base, ehsize, 0, 0, ehsize, phentsize, count, 40, 0, 0)
        phdrs = b"".join(struct.pack("<IIIIIIII", 1, offset, (base + i * stride) & 0xFFFFFFFF,
                                     (base + i * stride) & 0xFFFFFFFF, filesz, filesz, 5, 0x1000)
                         for i in range(count))
    image = b"\x7fELF" + bytes([2 if bits == 64 else 1, 1, 1]) + bytes(9) + header + phdrs
    return image + bytes(size - len(image))


def flood_from(data: bytes) -> bytes:
    """A header-flood ELF whose shape the fuzzer's bytes choose."""
    raw = data[1:9].ljust(8, b"\0")
    count, size_kib, offset, stride_kib, bits = struct.unpack("<HBBHxB", raw[:7] + raw[7:8])
    return flood_elf(1 + count % 1400, (1 + size_kib % 128) << 10, offset, stride_kib << 10,
                     64 if bits & 1 else 32)


def check_image(data: bytes) -> bool:
    """True when a setup came out (and holds every invariant), False for a LoaderError; raises
    AssertionError or anything else for a bug."""
    if not data:
        return False
    asked = MODES[data[-1] % len(MODES)]
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    config = BootConfig("fuzz-input", memory=RAM.size, mode=asked)
    try:
        setup = plan_setup(config, plan_image_bytes(config, data), one_gib_pages=False)
    except (LoaderError, ConfigError):
        setup = None
    finally:
        peak = tracemalloc.get_traced_memory()[1] - before
        if not tracing:
            tracemalloc.stop()
    assert peak <= memory_budget(len(data)), f"planning a {len(data)}-byte image allocated {peak} bytes"
    if setup is None:
        return False
    image = [blob for blob in setup.blobs if not blob.structure]
    assert image and setup.reserved, setup
    for blob in image:
        assert RAM.contains(blob.addr, blob.size), blob
        assert len(blob.data) <= blob.size, blob
        assert not any(overlap((blob.addr, blob.end), (r.start, r.end)) for r in setup.reserved), blob
    assert all(RAM.contains(start.entry, 1) for start in setup.vcpus)
    return True


def fuzz_one(data: bytes) -> None:
    check_image(data)
    if data and data[0] >= 0xC0:               # a quarter of the inputs: a flood parses up to ~1400 headers
        check_image(flood_from(data))


def _warm_up() -> None:
    """Import the loaders once, so their one-time cost is not counted against
    the first image's memory budget."""
    import kvmrun.boot.protocols.multiboot  # noqa: F401  (with their header parsers)
    import kvmrun.boot.protocols.multiboot2  # noqa: F401
    import kvmrun.boot.protocols.pvh  # noqa: F401
    for bits in (32, 64):
        plan_image(flood_elf(1, 4096, bits=bits), None, None, None)


_warm_up()


def main() -> None:
    import atheris
    atheris.instrument_all()          # coverage feedback from kvmrun's Python code
    atheris.Setup(sys.argv, lambda data: fuzz_one(bytes(data)))
    atheris.Fuzz()


if __name__ == "__main__":
    main()
