"""Putting the controlling terminal into raw mode for the guest's serial input, and back.

Keystrokes go to the guest one by one, unechoed and untranslated; ISIG stays on so Ctrl-C and Ctrl-\\
still stop kvmrun (status 130, 131), and output processing stays on so a guest's bare "\\n" starts a
new line. The old mode comes back on every way out, signals during set-up included (signals.py).
Modes change at once (TCSANOW) and unread input is dropped separately: TCSAFLUSH would first wait
for the terminal to take all output, which a stalled terminal never does.
"""
import contextlib
import os
import termios


@contextlib.contextmanager
def raw_input_mode(fd: int):
    if not os.isatty(fd):
        yield
        return
    try:
        saved = termios.tcgetattr(fd)
    except termios.error:
        yield
        return
    mode = termios.tcgetattr(fd)
    iflag, lflag, cc = 0, 3, 6
    mode[iflag] &= ~(termios.BRKINT | termios.ICRNL | termios.INPCK | termios.ISTRIP | termios.IXON)
    mode[lflag] &= ~(termios.ECHO | termios.ICANON | termios.IEXTEN)
    mode[cc][termios.VMIN] = 1
    mode[cc][termios.VTIME] = 0
    try:
        _set(fd, mode)                # inside the try: a signal right after it still restores
        yield
    finally:
        _set(fd, saved)


def _set(fd: int, mode) -> None:
    try:
        termios.tcsetattr(fd, termios.TCSANOW, mode)
        termios.tcflush(fd, termios.TCIFLUSH)
    except termios.error:
        pass                          # the terminal hung up (SIGHUP): nothing left to restore
