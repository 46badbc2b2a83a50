"""The signal module's functions and constants without its enums: `_signal`, the C module `signal`
wraps, has them all, with plain ints for signal numbers and handlers. Importing signal builds three
IntEnums and imports enum (with functools and collections): ~3 ms of every `kvmrun boot` here.
mypy checks the names against signal's."""
TYPE_CHECKING = False
if TYPE_CHECKING:
    from signal import *  # noqa: F403
else:
    from _signal import *  # noqa: F403
