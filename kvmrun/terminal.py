"""Putting the controlling terminal into raw mode for the guest's serial input, and back.

Keystrokes go to the guest one by one, unechoed and untranslated; ISIG stays on so Ctrl-C still
stops kvmrun (status 130), and output processing stays on so a guest's bare "\\n" starts a new line.
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
    termios.tcsetattr(fd, termios.TCSAFLUSH, mode)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSAFLUSH, saved)
