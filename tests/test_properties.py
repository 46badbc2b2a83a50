"""Any bytes as an image give a load plan or a LoaderError, never another exception; a plan that
passes the checks lies inside RAM and outside kvmrun's boot structures."""
from hypothesis import HealthCheck, given, settings, strategies as st

from kvmrun.boot.cpu_modes import Mode
from kvmrun.boot.image import plan_image
from kvmrun.boot.plan import check_plan
from kvmrun.boot.structures import plan_boot_structures
from kvmrun.errors import LoaderError
from kvmrun.memory import RamLayout, overlap

from elfimage import Seg, elf

RAM = RamLayout(16 << 20)
RESERVED = plan_boot_structures(Mode.LONG, RAM, 1, one_gib_pages=False).reserved

VALID = [
    bytes(elf([Seg(0x100000, b"\xf4" * 32), Seg(0x200000, b"data", memsz=0x3000, flags=6)], entry=0x100000)),
    bytes(elf([Seg(0x100000, b"\xf4" * 32)], entry=0x100000, bits=32)),
]


def plan_and_check(image: bytes, mode=None):
    try:
        plan = plan_image(image, mode, None, None)
        check_plan(plan, RAM, RESERVED, mode or plan.default_mode)
    except LoaderError:
        return
    for seg in plan.segments:
        assert RAM.contains(seg.addr, seg.memsz)
        assert len(seg.data) <= seg.memsz
        assert not any(overlap((seg.addr, seg.end), (r.start, r.end)) for r in RESERVED)
    assert RAM.contains(plan.entry, 1)


@settings(max_examples=400, deadline=None)
@given(st.binary(min_size=1, max_size=512), st.sampled_from([None, Mode.REAL, Mode.PROTECTED, Mode.LONG]))
def test_arbitrary_bytes(image, mode):
    plan_and_check(image, mode)


@settings(max_examples=400, deadline=None)
@given(st.binary(min_size=0, max_size=200).map(lambda tail: b"\x7fELF" + tail))
def test_arbitrary_bytes_after_the_elf_magic(image):
    plan_and_check(image)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(VALID), st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1,
                                        max_size=8))
def test_mutated_valid_images(base, mutations):
    image = bytearray(base)
    for position, value in mutations:
        image[position % len(image)] = value
    plan_and_check(bytes(image))
