"""collections.deque without importing collections (~2 ms of every `kvmrun boot` here, with the
operator, keyword and reprlib modules it pulls in): the same C type, from the module collections
itself takes it from. mypy sees collections.deque."""
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections import deque
else:
    from _collections import deque

__all__ = ["deque"]
