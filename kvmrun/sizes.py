"""Sizes as people write them: '128M', '1G', '65536', '64KiB'."""
import re

from . import layout

_SIZE = re.compile(r"^\s*(\d+)\s*([kmgt]?)(i?b)?\s*$", re.IGNORECASE)
_SUFFIX = {"": 1, "k": layout.KiB, "m": layout.MiB, "g": layout.GiB, "t": 1 << 40}


def parse_size(text) -> int:
    """Bytes from an int or a string with an optional K/M/G/T suffix; ValueError otherwise."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    match = _SIZE.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a size (bytes, or a number with K, M or G)")
    return int(match.group(1)) * _SUFFIX[match.group(2).lower()]
