"""Kicking a vCPU thread out of KVM_RUN from any thread (api.rst, KVM_CAP_IMMEDIATE_EXIT).

The kick is a signal sent to the vCPU's thread after kvm_run.immediate_exit is set. A signal only
interrupts KVM_RUN if it has a handler, and Python sets handlers from the main thread only; so
kvmrun installs a C-level handler itself, once per process, through libc's sigaction. The handler
must do nothing, in a way that is async-signal-safe: it is libc's getpid, which ignores its argument.
A real-time signal keeps out of the way of signals applications use.
"""
import ctypes

from .. import os_signal as signal
from ..sync import Lock

KICK_SIGNAL = signal.SIGRTMIN + 1

_installed = False
_lock = Lock()


class _sigaction(ctypes.Structure):
    # struct sigaction as glibc and musl lay it out on x86-64
    _fields_ = [("sa_handler", ctypes.c_void_p),
                ("sa_mask", ctypes.c_uint64 * 16),
                ("sa_flags", ctypes.c_int),
                ("sa_restorer", ctypes.c_void_p)]


def install_kick_handler() -> None:
    global _installed
    with _lock:
        if _installed:
            return
        libc = ctypes.CDLL(None, use_errno=True)
        action = _sigaction()
        action.sa_handler = ctypes.cast(libc.getpid, ctypes.c_void_p).value
        action.sa_flags = 0           # no SA_RESTART: KVM_RUN must come back with EINTR
        if libc.sigaction(int(KICK_SIGNAL), ctypes.byref(action), None) != 0:
            raise OSError(ctypes.get_errno(), "sigaction for the vCPU kick signal failed")
        _installed = True


def kick(thread_ident: int) -> None:
    signal.pthread_kill(thread_ident, KICK_SIGNAL)
