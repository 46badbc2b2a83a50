"""Putting the controlling terminal into raw mode for the guest's serial input, and back.

Keystrokes go to the guest one by one, unechoed and untranslated; ISIG stays on so Ctrl-C and Ctrl-\\
still stop kvmrun (status 130, 131), and output processing stays on so a guest's bare "\\n" starts a
new line. The old mode comes back on every way out, signals during set-up included (signals.py).
Modes change at once (TCSANOW) and unread input is dropped separately: TCSAFLUSH would first wait
for the terminal to take all output, which a stalled terminal never does.
"""
import os

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Optional


class raw_input_mode:
    """A context with the terminal at `fd` in raw mode, put back on every way out; nothing where
    `fd` is not a terminal. (A class, not a contextlib.contextmanager: `kvmrun boot` does not import
    contextlib, cleanup.py.)"""

    def __init__(self, fd: int):
        self.fd = fd
        self._saved: Optional[list] = None

    def __enter__(self) -> None:
        fd = self.fd
        if not os.isatty(fd):
            return
        import termios                    # here: where stdin is no terminal (CI), never (~0.4 ms)
        try:
            saved = termios.tcgetattr(fd)
        except termios.error:
            return
        mode = termios.tcgetattr(fd)
        iflag, lflag, cc = 0, 3, 6
        mode[iflag] &= ~(termios.BRKINT | termios.ICRNL | termios.INPCK | termios.ISTRIP | termios.IXON)
        mode[lflag] &= ~(termios.ECHO | termios.ICANON | termios.IEXTEN)
        mode[cc][termios.VMIN] = 1
        mode[cc][termios.VTIME] = 0
        try:
            _set(fd, mode)
        except BaseException:             # a signal during the change (signals.py): put it back now
            _set(fd, saved)
            raise
        self._saved = saved

    def __exit__(self, *exc_info) -> None:
        if self._saved is not None:
            _set(self.fd, self._saved)
            self._saved = None


def _set(fd: int, mode) -> None:
    import termios
    try:
        termios.tcsetattr(fd, termios.TCSANOW, mode)
        termios.tcflush(fd, termios.TCIFLUSH)
    except termios.error:
        pass                          # the terminal hung up (SIGHUP): nothing left to restore
