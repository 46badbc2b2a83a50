"""The one place that turns a failed ioctl into a KvmError carrying the ioctl's name and errno, and
where --trace=setup sees every KVM call (`tracer`)."""
import fcntl
import os

from ..errors import KvmError
from .ioctl import Ioctl

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Any, Callable, Optional

# Told every call as tracer(fd, request, arg, result), `result` the OSError when it failed; None unless
# a run traces its set-up (debug/setup_trace.py). The vCPU loop's KVM_RUN does not come through here.
tracer: "Optional[Callable[[int, Ioctl, Any, Any], None]]" = None


def ioctl(fd: int, request: Ioctl, arg=0):
    """`arg` is an int or a ctypes object; ctypes objects are passed by pointer (fcntl's mutate
    path, which also lifts the 1 KiB limit of the copying path) and see what the kernel wrote."""
    try:
        result = fcntl.ioctl(fd, request, arg, True) if not isinstance(arg, int) else fcntl.ioctl(fd, request, arg)
    except OSError as err:
        if tracer is not None:
            tracer(fd, request, arg, err)
        raise KvmError(request.name, err.errno or 0, os.strerror(err.errno or 0)) from None
    if tracer is not None:
        tracer(fd, request, arg, result)
    return result
