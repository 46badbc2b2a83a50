"""The coalesced ring, read from a buffer laid out as KVM lays out the ring page."""
import struct

from kvmrun.kvm.coalesced import CoalescedRing

PAGE = 4096
MAX = (PAGE - 8) // 24


def ring_with(entries, first=0, page=1):
    mapping = bytearray(PAGE * 3)
    base = page * PAGE
    for i, (port, data) in enumerate(entries):
        slot = (first + i) % MAX
        struct.pack_into("<QII8s", mapping, base + 8 + slot * 24, port, len(data), 1, data)
    struct.pack_into("<II", mapping, base, first, (first + len(entries)) % MAX)
    return mapping, CoalescedRing(mapping, page, PAGE)


def test_drains_in_order_and_advances_first():
    mapping, ring = ring_with([(0x3F8, b"a"), (0x3F8, b"b"), (0x80, b"\x12\x34")])
    seen = []
    assert ring.pending()
    ring.drain(lambda port, size, data: seen.append((port, size, bytes(data))))
    assert seen == [(0x3F8, 1, b"a"), (0x3F8, 1, b"b"), (0x80, 2, b"\x12\x34")]
    assert not ring.pending()
    assert struct.unpack_from("<I", mapping, PAGE)[0] == 3


def test_wraps_around_the_end_of_the_page():
    _, ring = ring_with([(0x3F8, bytes([i])) for i in range(5)], first=MAX - 2)
    seen = []
    ring.drain(lambda port, size, data: seen.append(data[0]))
    assert seen == [0, 1, 2, 3, 4]


def test_indices_outside_the_ring_are_not_followed():
    mapping, ring = ring_with([])
    struct.pack_into("<II", mapping, PAGE, 0, MAX + 5)
    ring.drain(lambda *a: (_ for _ in ()).throw(AssertionError("read outside the ring")))


def test_lengths_are_capped_at_the_entry_data():
    mapping, ring = ring_with([(0x3F8, b"x")])
    struct.pack_into("<I", mapping, PAGE + 8 + 8, 4096)      # a length no entry can hold
    seen = []
    ring.drain(lambda port, size, data: seen.append((size, len(data))))
    assert seen == [(8, 8)]
