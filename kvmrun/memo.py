"""functools.lru_cache as kvmrun uses it, without importing functools (which imports collections:
~3 ms of every `kvmrun boot` here): a function's results kept by its positional arguments, at most
`limit` of them (all dropped when full: the callers ask for a handful of values, over and over)."""
from __future__ import annotations

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, TypeVar
    Function = TypeVar("Function", bound=Callable[..., Any])


def memoized(limit: int) -> Callable[[Function], Function]:
    def wrap(function):
        results: Dict[tuple, Any] = {}

        def memo(*args):
            try:
                return results[args]
            except KeyError:
                pass
            if len(results) >= limit:
                results.clear()
            result = results[args] = function(*args)
            return result
        memo.__name__, memo.__qualname__, memo.__doc__ = function.__name__, function.__qualname__, function.__doc__
        memo.__wrapped__ = function       # type: ignore[attr-defined]
        return memo
    return wrap  # type: ignore[return-value]
