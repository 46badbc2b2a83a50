"""gdb remote serial protocol framing, pure: bytes in, events out; payloads in, bytes out.

A packet is `$payload#cc`, cc the two-hex-digit sum of the payload's bytes mod 256. Outside packets
gdb sends `+`/`-` (acknowledgements) and 0x03 (interrupt). Binary payloads (X packets, qXfer replies)
escape `#`, `$`, `}` and `*` as `}` followed by the byte xor 0x20; gdb never sends run-length encoding
to a stub, so `*` needs no decoding here (and it is never produced here either).

Everything gdb sends is treated as hostile: a packet longer than the reader's limit is dropped while
it arrives (reported as OVERSIZE once it ends) and never buffered beyond the limit.
"""
from __future__ import annotations

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import List, NamedTuple
else:
    from ..named_tuple import NamedTuple

# Event kinds the reader produces.
PACKET = "packet"             # a complete packet with a good checksum: payload is its (still escaped) body
BAD_CHECKSUM = "bad_checksum"  # a complete packet whose checksum does not match (or is not hex)
OVERSIZE = "oversize"         # a packet longer than the limit, dropped
INTERRUPT = "interrupt"       # 0x03 outside a packet: gdb's Ctrl-C
ACK = "ack"                   # '+'
NACK = "nack"                 # '-': gdb asks for the last reply again

_ESCAPE = 0x7D                 # '}'
_NEEDS_ESCAPE = frozenset(b"#$}*")
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")


class Event(NamedTuple):
    kind: str
    payload: bytes = b""


def checksum(payload: bytes) -> int:
    return sum(payload) & 0xFF


def frame(payload: bytes) -> bytes:
    """`$payload#cc`; the payload must already be escaped if it is binary."""
    return b"$" + payload + b"#%02x" % checksum(payload)


def escape(data: bytes) -> bytes:
    """Binary data made safe inside a packet."""
    if not any(byte in _NEEDS_ESCAPE for byte in data):
        return data
    out = bytearray()
    for byte in data:
        if byte in _NEEDS_ESCAPE:
            out += bytes((_ESCAPE, byte ^ 0x20))
        else:
            out.append(byte)
    return bytes(out)


def unescape(data: bytes) -> bytes:
    """The binary data an escaped payload carries. A trailing lone `}` (nothing to escape) is dropped."""
    if _ESCAPE not in data:
        return data
    out = bytearray()
    pending = False
    for byte in data:
        if pending:
            out.append(byte ^ 0x20)
            pending = False
        elif byte == _ESCAPE:
            pending = True
        else:
            out.append(byte)
    return bytes(out)


class PacketReader:
    """Splits what arrives from gdb into events, across reads of any size.

    At most `max_payload` bytes of one packet are kept; a longer packet is discarded as it arrives.
    A `$` where a payload byte or a checksum digit should be starts a new packet: the one before was
    cut short (reported as BAD_CHECKSUM, or OVERSIZE).
    """
    # Where the reader is: between packets, in a payload kept or discarded, in its checksum digits.
    _BETWEEN, _PAYLOAD, _DISCARD, _CHECKSUM, _CHECKSUM_DISCARD = range(5)

    def __init__(self, max_payload: int):
        self.max_payload = max_payload
        self._state = self._BETWEEN
        self._payload = bytearray()
        self._checksum = bytearray()

    @property
    def buffered(self) -> int:
        """Bytes held for an unfinished packet (never more than max_payload + 2)."""
        return len(self._payload) + len(self._checksum)

    def feed(self, data: bytes) -> List[Event]:
        events: List[Event] = []
        position, end = 0, len(data)
        while position < end:
            state = self._state
            if state == self._BETWEEN:
                byte = data[position]
                position += 1
                if byte == 0x24:                     # '$'
                    self._start_packet()
                elif byte == 0x03:
                    events.append(Event(INTERRUPT))
                elif byte == 0x2B:                   # '+'
                    events.append(Event(ACK))
                elif byte == 0x2D:                   # '-'
                    events.append(Event(NACK))
                # anything else between packets is noise gdb does not send: ignored
            elif state == self._PAYLOAD or state == self._DISCARD:
                position = self._take_payload(data, position)
            else:
                byte = data[position]
                position += 1
                if byte == 0x24:                     # '$' instead of a digit: cut short
                    events.append(self._finish_packet())
                    self._start_packet()
                    continue
                self._checksum.append(byte)
                if len(self._checksum) == 2:
                    events.append(self._finish_packet())
        return events

    def _start_packet(self) -> None:
        self._state = self._PAYLOAD
        self._payload.clear()
        self._checksum.clear()

    def _take_payload(self, data: bytes, position: int) -> int:
        """Consume payload bytes up to the next `#` or `$`; returns where to go on."""
        stop = len(data)
        for marker in (b"#", b"$"):
            found = data.find(marker, position, stop)
            if found >= 0:
                stop = found
        if self._state == self._PAYLOAD:
            if stop - position > self.max_payload - len(self._payload):   # too long: stop keeping it
                self._state = self._DISCARD
                self._payload.clear()
            else:
                self._payload += data[position:stop]
        if stop == len(data):
            return stop
        if data[stop] == 0x24:                       # '$': a new packet, the one before was cut short
            self._state = self._CHECKSUM if self._state == self._PAYLOAD else self._CHECKSUM_DISCARD
            return stop                              # the checksum state sees the '$' and reports it
        self._state = self._CHECKSUM if self._state == self._PAYLOAD else self._CHECKSUM_DISCARD
        return stop + 1

    def _finish_packet(self) -> Event:
        discarded = self._state == self._CHECKSUM_DISCARD
        payload, digits = bytes(self._payload), bytes(self._checksum)
        self._state = self._BETWEEN
        self._payload.clear()
        self._checksum.clear()
        if discarded:
            return Event(OVERSIZE)
        if len(digits) != 2 or not all(d in _HEX_DIGITS for d in digits) or int(digits, 16) != checksum(payload):
            return Event(BAD_CHECKSUM, payload)
        return Event(PACKET, payload)
