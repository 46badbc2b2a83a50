"""Sizes as people write them: '128M', '1G', '65536', '64KiB'. Parsed by hand, not with a regular
expression: `re` would be the only reason a boot imports it (~2.5 ms of start-up here)."""
from . import layout

_SUFFIX = {"": 1, "k": layout.KiB, "m": layout.MiB, "g": layout.GiB, "t": 1 << 40}
_UNITS = ("", "b", "ib")                  # after the suffix letter: 64K, 64KB, 64KiB (any case)


def parse_size(text) -> int:
    """Bytes from an int or a string with an optional K/M/G/T suffix; ValueError otherwise."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    written = str(text)
    body = written.strip().lower()
    digits = body
    while digits and not digits[-1].isdecimal():
        digits = digits[:-1]
    rest = body[len(digits):].lstrip()
    digits = digits.rstrip()
    letter, unit = (rest[:1], rest[1:]) if rest[:1] in ("k", "m", "g", "t") else ("", rest)
    if not digits.isdecimal() or unit not in _UNITS:
        raise ValueError(f"{text!r} is not a size (bytes, or a number with K, M or G)")
    return int(digits) * _SUFFIX[letter]
