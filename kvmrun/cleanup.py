"""What a machine must close, closed last first: the part of contextlib.ExitStack kvmrun uses
(callback, enter_context, pop_all, close, `with`), without importing contextlib, whose import pulls
in functools and collections (~2 ms of every `kvmrun boot` here).

Closing runs every step even when one fails, then raises the first failure. Contexts are exited
without the exception that may be on its way (kvmrun's contexts close the same either way)."""
from __future__ import annotations

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Any, Callable, List, Tuple


class Cleanup:
    def __init__(self):
        self._steps: List[Tuple[Callable[..., Any], tuple]] = []

    def callback(self, fn: Callable[..., Any], *args) -> Callable[..., Any]:
        self._steps.append((fn, args))
        return fn

    def enter_context(self, context):
        """Enter `context` and exit it when closing; what its __enter__ returned."""
        entered = type(context).__enter__(context)
        self._steps.append((type(context).__exit__, (context, None, None, None)))
        return entered

    def pop_all(self) -> "Cleanup":
        """A new Cleanup that takes over every step; this one is left empty."""
        taken = Cleanup()
        taken._steps, self._steps = self._steps, []
        return taken

    def close(self) -> None:
        failure = None
        while self._steps:
            fn, args = self._steps.pop()
            try:
                fn(*args)
            except BaseException as err:      # the rest still closes; the first failure is raised
                failure = failure or err
        if failure is not None:
            raise failure

    def __enter__(self) -> "Cleanup":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
