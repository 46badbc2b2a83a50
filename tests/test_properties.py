"""Any bytes as an image give a load plan or a LoaderError, never another exception; a plan that
passes the checks lies inside RAM and outside kvmrun's boot structures; planning allocates at most a
few times the image, whatever its headers say. The invariants are the fuzz harness's own
(fuzz/fuzz_loaders.py), so `make fuzz` and these tests hold kvmrun to the same rules."""
import sys

from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import GUESTS, ROOT
from elfimage import Seg, elf

sys.path.insert(0, str(ROOT / "fuzz"))
from fuzz_loaders import check_image, flood_elf  # noqa: E402

VALID = [
    bytes(elf([Seg(0x100000, b"\xf4" * 32), Seg(0x200000, b"data", memsz=0x3000, flags=6)], entry=0x100000)),
    bytes(elf([Seg(0x100000, b"\xf4" * 32)], entry=0x100000, bits=32)),
]


@settings(max_examples=400, deadline=None)
@given(st.binary(min_size=1, max_size=512))
def test_arbitrary_bytes(image):
    check_image(image)


@settings(max_examples=400, deadline=None)
@given(st.binary(min_size=0, max_size=200).map(lambda tail: b"\x7fELF" + tail))
def test_arbitrary_bytes_after_the_elf_magic(image):
    check_image(image)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(VALID), st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1,
                                        max_size=8))
def test_mutated_valid_images(base, mutations):
    image = bytearray(base)
    for position, value in mutations:
        image[position % len(image)] = value
    check_image(bytes(image))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(count=st.integers(32, 1400), size_kib=st.integers(128, 256), offset=st.integers(0, 255),
       spread=st.sampled_from(["same address", "side by side", "4 KiB apart"]), bits=st.sampled_from([32, 64]))
def test_header_floods_plan_in_memory_bounded_by_the_image(count, size_kib, offset, spread, bits):
    """Many PT_LOAD headers each naming (nearly) the whole file: once count x size bytes were copied
    before any check; check_image asserts the peak traced allocation stays within its budget."""
    size = size_kib << 10
    stride = {"same address": 0, "side by side": size, "4 KiB apart": 4096}[spread]
    check_image(flood_elf(count, size, offset, stride, bits))


def test_real_guests_plan_cleanly_under_the_harness_rules():
    """The built guests seed `make fuzz`'s corpus; real images must come out as plans, not errors."""
    for name in ("hello64.elf", "hello32.elf", "abi64.elf", "hello_c.elf", "smp64.elf"):
        assert check_image((GUESTS / name).read_bytes()) is True, name
