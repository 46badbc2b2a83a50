"""gdb remote protocol framing (kvmrun/debug/packets.py): checksums, escaping, acknowledgements and
interrupts between packets, packets split across reads, and hostile streams (bad checksums, packets
longer than the limit, any bytes at all)."""
from hypothesis import given, settings, strategies as st

from kvmrun.debug.packets import (ACK, BAD_CHECKSUM, INTERRUPT, NACK, OVERSIZE, PACKET, Event, PacketReader,
                                  checksum, escape, frame, unescape)

LIMIT = 64


def feed_in_pieces(data: bytes, cuts=(), limit=LIMIT):
    """Events from `data` fed in pieces split at `cuts`, and the most the reader ever held."""
    reader = PacketReader(limit)
    events, most = [], 0
    edges = sorted({0, len(data), *(cut % (len(data) + 1) for cut in cuts)})
    for start, end in zip(edges, edges[1:]):
        events += reader.feed(data[start:end])
        most = max(most, reader.buffered)
    return events, most


def test_frame_appends_the_two_digit_checksum():
    assert frame(b"OK") == b"$OK#9a"
    assert frame(b"") == b"$#00"
    assert checksum(b"qSupported") == 0x37
    assert frame(b"m1000,4") == b"$m1000,4#%02x" % (sum(b"m1000,4") % 256)


def test_a_good_packet_is_delivered_and_a_bad_checksum_is_not():
    events, _ = feed_in_pieces(b"$g#67$g#68$g#6G$g#76")
    assert events == [Event(PACKET, b"g"), Event(BAD_CHECKSUM, b"g"), Event(BAD_CHECKSUM, b"g"),
                      Event(BAD_CHECKSUM, b"g")]


def test_checksum_digits_in_either_case():
    payload = b"vMustReplyEmpty"
    digits = b"%02x" % checksum(payload)
    assert feed_in_pieces(b"$" + payload + b"#" + digits.upper())[0] == [Event(PACKET, payload)]


def test_acks_nacks_and_interrupts_between_packets():
    events, _ = feed_in_pieces(b"+\x03$c#63-+\x03")
    assert [event.kind for event in events] == [ACK, INTERRUPT, PACKET, NACK, ACK, INTERRUPT]


def test_0x03_inside_a_packet_is_data_not_an_interrupt():
    payload = b"X1000,1:\x03"
    events, _ = feed_in_pieces(frame(payload))
    assert events == [Event(PACKET, payload)]


def test_noise_between_packets_is_ignored():
    events, _ = feed_in_pieces(b"garbage\n" + frame(b"?"))
    assert events == [Event(PACKET, b"?")]


def test_a_packet_split_at_every_byte_arrives_once():
    data = frame(b"m1000,40") + b"\x03" + frame(b"qC")
    reader = PacketReader(LIMIT)
    events = []
    for byte in data:
        events += reader.feed(bytes([byte]))
    assert events == [Event(PACKET, b"m1000,40"), Event(INTERRUPT), Event(PACKET, b"qC")]


def test_a_dollar_inside_a_packet_cuts_it_short_and_starts_the_next_one():
    events, _ = feed_in_pieces(b"$m10" + frame(b"g") + b"$ab#" + frame(b"qC"))
    assert events == [Event(BAD_CHECKSUM, b"m10"), Event(PACKET, b"g"), Event(BAD_CHECKSUM, b"ab"),
                      Event(PACKET, b"qC")]


def test_a_packet_at_the_limit_is_kept_and_one_byte_more_is_dropped():
    at_limit, over = b"M" * LIMIT, b"M" * (LIMIT + 1)
    events, most = feed_in_pieces(frame(at_limit) + frame(over) + frame(b"g"), cuts=range(0, 400, 7))
    assert events == [Event(PACKET, at_limit), Event(OVERSIZE), Event(PACKET, b"g")]
    assert most <= LIMIT + 2


def test_an_endless_packet_is_never_buffered():
    reader = PacketReader(LIMIT)
    reader.feed(b"$")
    for _ in range(1000):
        assert reader.feed(b"A" * 4096) == []
        assert reader.buffered == 0          # dropped as soon as it passed the limit
    assert reader.feed(b"#00" + frame(b"g")) == [Event(OVERSIZE), Event(PACKET, b"g")]


def test_escaping_covers_hash_dollar_brace_and_star():
    data = b"a#b$c}d*e"
    escaped = escape(data)
    assert escaped == b"a}\x03b}\x04c}]d}\x0ae"
    assert unescape(escaped) == data
    assert escape(b"plain") == b"plain"


def test_escaped_binary_survives_framing():
    data = bytes(range(256))
    events, _ = feed_in_pieces(frame(b"X0,100:" + escape(data)), limit=1024)
    assert [event.kind for event in events] == [PACKET]
    assert unescape(events[0].payload) == b"X0,100:" + data


def test_a_trailing_lone_escape_is_dropped():
    assert unescape(b"ab}") == b"ab"


# --- properties ---

payloads = st.binary(max_size=80)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600), st.lists(st.integers(0, 600), max_size=12))
def test_any_stream_never_raises_never_overbuffers_and_splits_do_not_matter(data, cuts):
    whole, _ = feed_in_pieces(data)
    pieces, most = feed_in_pieces(data, cuts)
    assert pieces == whole
    assert most <= LIMIT + 2
    for event in whole:
        assert len(event.payload) <= LIMIT


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(payloads, st.sampled_from([b"", b"+", b"-", b"\x03"])), max_size=8),
       st.lists(st.integers(0, 2000), max_size=10))
def test_framed_escaped_payloads_round_trip_through_any_split(messages, cuts):
    stream = b"".join(frame(escape(payload)) + between for payload, between in messages)
    events, _ = feed_in_pieces(stream, cuts, limit=2 * 80)
    expected = []
    for payload, between in messages:
        expected.append((PACKET, payload))
        if between:
            expected.append(({b"+": ACK, b"-": NACK, b"\x03": INTERRUPT}[between], b""))
    assert [(event.kind, unescape(event.payload)) for event in events] == expected


@settings(max_examples=300, deadline=None)
@given(payloads)
def test_escape_leaves_no_framing_bytes_and_round_trips(data):
    escaped = escape(data)
    assert not any(byte in escaped for byte in b"#$*")
    assert unescape(escaped) == data


@settings(max_examples=200, deadline=None)
@given(payloads, st.integers(0, 255))
def test_a_wrong_checksum_is_never_accepted(payload, wrong):
    payload = escape(payload)
    if wrong == checksum(payload):
        wrong ^= 1
    events, _ = feed_in_pieces(b"$" + payload + b"#%02x" % wrong, limit=200)
    assert events == [Event(BAD_CHECKSUM, payload)]
