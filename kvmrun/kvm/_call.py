"""The one place that turns a failed ioctl into a KvmError carrying the ioctl's name and errno."""
import fcntl
import os

from ..errors import KvmError
from .ioctl import Ioctl


def ioctl(fd: int, request: Ioctl, arg=0):
    """`arg` is an int or a ctypes object; ctypes objects are passed by pointer (fcntl's mutate
    path, which also lifts the 1 KiB limit of the copying path) and see what the kernel wrote."""
    try:
        return fcntl.ioctl(fd, request, arg, True) if not isinstance(arg, int) else fcntl.ioctl(fd, request, arg)
    except OSError as err:
        raise KvmError(request.name, err.errno or 0, os.strerror(err.errno or 0)) from None
