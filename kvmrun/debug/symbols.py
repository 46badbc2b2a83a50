"""Where `--until` stops: an address as written, or an ELF symbol's value from the image's symbol
tables (.symtab, else .dynsym). pyelftools reads them; it is imported only here, when a symbol is
named (its import costs ~25 ms, which a plain boot never pays)."""
from __future__ import annotations

from ..errors import ConfigError

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Optional

_ADDRESS_LIMIT = 1 << 64


class UntilError(ConfigError):
    """--until names nothing to stop at; `problem` says why, without the option's spelling."""

    def __init__(self, until: str, problem: str):
        super().__init__(f"--until {until}: {problem}")
        self.problem = problem


def address_or_none(text: str) -> Optional[int]:
    """The address `text` writes (0x..., or decimal digits); None when it is a symbol's name."""
    try:
        value = int(text, 0)
    except ValueError:
        return None
    if not 0 <= value < _ADDRESS_LIMIT:
        raise UntilError(text, "not an address (0 to 2^64-1)")
    return value


def resolve_until(until: str, image_path: str) -> int:
    """The linear address `until` names; ConfigError saying why it names none."""
    address = address_or_none(until)
    if address is not None:
        return address
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection
    try:
        with open(image_path, "rb") as stream:
            if stream.read(4) != b"\x7fELF":
                raise UntilError(until, f"{image_path} is not an ELF image, so it has no symbols; "
                                  "give an address (0x...)")
            stream.seek(0)
            elf = ELFFile(stream)
            tables = [section for section in elf.iter_sections() if isinstance(section, SymbolTableSection)]
            tables.sort(key=lambda table: table.name != ".symtab")      # .symtab first: it has them all
            for table in tables:
                for symbol in table.get_symbol_by_name(until) or ():
                    if symbol["st_shndx"] != "SHN_UNDEF":
                        return int(symbol["st_value"])
    except ConfigError:
        raise
    except OSError as err:
        raise UntilError(until, f"cannot read {image_path}: {err.strerror}") from None
    except (ELFError, Exception) as err:       # pyelftools raises errors of many kinds on corrupt tables
        raise UntilError(until, f"cannot read the symbols of {image_path}: {err}") from None
    where = "its symbol table" if tables else "it (it has no symbol table: stripped?)"
    raise UntilError(until, f"no symbol of that name in {image_path}; looked in {where}")
