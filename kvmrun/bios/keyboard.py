"""int 16h: the keyboard of a boot sector, fed from kvmrun's stdin (a terminal in raw mode or a pipe).

`Keyboard` turns the bytes stdin gives into the keystrokes a PC's keyboard interrupt (int 09h) would
have put in the BIOS's type-ahead buffer: (scan code, ASCII) pairs of a US keyboard, with the grey
cursor keys stored as scan/E0h as an enhanced keyboard's BIOS stores them. `KeyboardServices.int16`
is what the guest calls; it follows Ralf Brown's interrupt list and the IBM BIOS's rule for what the
classic functions (AH=00h/01h) leave out of the enhanced keyboard's keys. Pure: bytes come in, keys go
out; the host loop pushes on its thread while the vCPU's thread takes, so the queue has a lock.

How bytes become keys:
- ASCII characters and control characters: the key that types them (Ctrl+A is 1E01h). Enter is CR or
  LF, and the LF of a CR LF pair is dropped, so text with either line ending gives one Enter a line.
  Backspace is DEL (7Fh, what terminals send) or BS (08h). NUL is Ctrl+2 (0300h), as a BIOS gives it.
- Escape sequences of xterm, VT and the Linux console (ESC [ ... and ESC O ...): the cursor keys, Home,
  End, PgUp, PgDn, Ins, Del, F1-F12, keypad keys in application mode, Shift+Tab; an xterm modifier
  parameter (ESC [ 1;5C is Ctrl+Right) gives the Shift, Ctrl or Alt code the BIOS has for that key.
  A well-formed sequence for no PC key (bracketed paste marks, focus reports) gives nothing.
- An ESC that does not begin a well-formed sequence is the Esc key, and what follows it is typed as
  usual (so Alt+x, which terminals send as ESC x, is Esc then x).
- Other characters (UTF-8): those in code page 437 come as scan code 0 with their CP437 byte, as the
  BIOS gives a character typed with Alt and the keypad; the rest, and bytes that are not UTF-8, give
  nothing.

A sequence cut off at the end of a push (a pipe's read may end anywhere) is kept and completed by the
next push. Without a timer, what decides that a lone ESC at the end of a push is the Esc key is the
guest: when it asks for a key and nothing else is queued, a pending ESC (and whatever followed it)
is taken as typed. A terminal sends a key's whole sequence in one write, and the guest asking means
any rest of a pipe's sequence would have had its time to come. `flush_pending()` does the same at
once, `end_of_input()` at end of file.

Shift flags: a terminal sends characters, not key presses and releases, so no modifier is ever held
between keys. Functions 02h and 12h return the BIOS data area's flags (0040:0017, 0040:0018, and the
right Ctrl/Alt bits of 0040:0096), as a BIOS does, so they agree with a guest reading them directly;
kvmrun never sets a modifier bit there.

End of input: no more keys will come, but int 16h AH=00h/10h still waits (WaitForInterrupt), as a
BIOS waits for a key nobody presses; the run's --timeout bounds it. `Keyboard.exhausted` says when
that wait can never end, so the trap can end the run with a message instead.
"""
from __future__ import annotations

import codecs

from ..fifo import deque
from ..sync import Lock
from . import data_area as bda
from .call import BadBuffer, BiosCall, Unsupported, WaitForInterrupt

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Callable, Deque, Dict, NamedTuple, Optional, Tuple
else:
    from ..named_tuple import NamedTuple

ESC = "\x1b"
MAX_SEQUENCE = 32                   # longer than any key's sequence: a longer "sequence" is an ESC and text
KEYBOARD_FLAGS_3 = 0x496            # BDA: bit 2 right Ctrl held, bit 3 right Alt held (int 16h AH=12h)
TYPEMATIC_DEFAULT = (0x01, 0x0B)    # delay 500 ms, 10.9 characters/s: an AT keyboard's power-on setting


class Key(NamedTuple):
    """A keystroke as int 16h returns it: AH=scan, AL=ascii."""
    scan: int
    ascii: int

    @property
    def word(self) -> int:
        return self.scan << 8 | self.ascii


def _key(word: int) -> Key:
    return Key(word >> 8, word & 0xFF)


# --- the US layout: which key types each ASCII character --------------------------------------------
def _ascii_keys() -> Dict[str, Key]:
    keys: Dict[str, Key] = {}
    for row, first_scan in (("qwertyuiop", 0x10), ("asdfghjkl", 0x1E), ("zxcvbnm", 0x2C)):
        for n, letter in enumerate(row):
            scan = first_scan + n
            keys[letter] = Key(scan, ord(letter))
            keys[letter.upper()] = Key(scan, ord(letter.upper()))
            keys[chr(ord(letter) & 0x1F)] = Key(scan, ord(letter) & 0x1F)      # Ctrl+letter
    for n, (plain, shifted) in enumerate(zip("1234567890", "!@#$%^&*()")):
        keys[plain], keys[shifted] = Key(0x02 + n, ord(plain)), Key(0x02 + n, ord(shifted))
    for scan, plain, shifted in ((0x0C, "-", "_"), (0x0D, "=", "+"), (0x1A, "[", "{"), (0x1B, "]", "}"),
                                 (0x27, ";", ":"), (0x28, "'", '"'), (0x29, "`", "~"), (0x2B, "\\", "|"),
                                 (0x33, ",", "<"), (0x34, ".", ">"), (0x35, "/", "?")):
        keys[plain], keys[shifted] = Key(scan, ord(plain)), Key(scan, ord(shifted))
    keys.update({
        " ": Key(0x39, 0x20),
        "\r": Key(0x1C, 0x0D), "\n": Key(0x1C, 0x0D),          # Enter: a terminal's CR, a pipe's LF
        "\b": Key(0x0E, 0x08), "\x7f": Key(0x0E, 0x08),        # Backspace: BS, or DEL as terminals send it
        "\t": Key(0x0F, 0x09),
        ESC: Key(0x01, 0x1B),
        "\x00": Key(0x03, 0x00),                               # Ctrl+2 (Ctrl+@)
        "\x1c": Key(0x2B, 0x1C), "\x1d": Key(0x1B, 0x1D),      # Ctrl+\, Ctrl+]
        "\x1e": Key(0x07, 0x1E), "\x1f": Key(0x0C, 0x1F),      # Ctrl+6 (Ctrl+^), Ctrl+- (Ctrl+_)
    })
    return keys


ASCII_KEYS = _ascii_keys()

# Keys a terminal sends as escape sequences: the word int 16h AH=10h returns plain, with Shift, with
# Ctrl and with Alt. The grey cursor keys keep the E0h an enhanced keyboard's BIOS gives them.
NORMAL, SHIFT, CTRL, ALT = range(4)
SPECIAL_KEYS: Dict[str, Tuple[int, int, int, int]] = {
    "home": (0x47E0, 0x47E0, 0x77E0, 0x9700),
    "up": (0x48E0, 0x48E0, 0x8DE0, 0x9800),
    "pgup": (0x49E0, 0x49E0, 0x84E0, 0x9900),
    "left": (0x4BE0, 0x4BE0, 0x73E0, 0x9B00),
    "right": (0x4DE0, 0x4DE0, 0x74E0, 0x9D00),
    "end": (0x4FE0, 0x4FE0, 0x75E0, 0x9F00),
    "down": (0x50E0, 0x50E0, 0x91E0, 0xA000),
    "pgdn": (0x51E0, 0x51E0, 0x76E0, 0xA100),
    "ins": (0x52E0, 0x52E0, 0x92E0, 0xA200),
    "del": (0x53E0, 0x53E0, 0x93E0, 0xA300),
    **{f"f{n}": ((0x3A + n) << 8, (0x53 + n) << 8, (0x5D + n) << 8, (0x67 + n) << 8) for n in range(1, 11)},
    "f11": (0x8500, 0x8700, 0x8900, 0x8B00),
    "f12": (0x8600, 0x8800, 0x8A00, 0x8C00),
}
SHIFT_TAB = Key(0x0F, 0x00)

_CSI_LETTERS = {"A": "up", "B": "down", "C": "right", "D": "left", "H": "home", "F": "end",
                "P": "f1", "Q": "f2", "R": "f3", "S": "f4"}
_CSI_TILDE = {"1": "home", "2": "ins", "3": "del", "4": "end", "5": "pgup", "6": "pgdn", "7": "home", "8": "end",
              "11": "f1", "12": "f2", "13": "f3", "14": "f4", "15": "f5", "17": "f6", "18": "f7", "19": "f8",
              "20": "f9", "21": "f10", "23": "f11", "24": "f12"}
_LINUX_F_KEYS = {"A": "f1", "B": "f2", "C": "f3", "D": "f4", "E": "f5"}       # the Linux console's ESC [ [ A
# The keypad in application mode (ESC O): its Enter and / are the enhanced keyboard's, scan E0h.
_KEYPAD = {"M": Key(0xE0, 0x0D), "o": Key(0xE0, 0x2F), "j": Key(0x37, 0x2A), "k": Key(0x4E, 0x2B),
           "m": Key(0x4A, 0x2D), "n": Key(0x53, 0x2E),
           **{chr(ord("p") + n): Key(scan, 0x30 + n)
              for n, scan in enumerate((0x52, 0x4F, 0x50, 0x51, 0x4B, 0x4C, 0x4D, 0x47, 0x48, 0x49))}}


def _column(modifier: str) -> int:
    """xterm's modifier parameter (1 + Shift 1, Alt 2, Ctrl 4, Meta 8) as the BIOS's column; when keys
    are held together the BIOS's order holds: Alt before Ctrl before Shift."""
    if not modifier.isdigit() or len(modifier) > 3 or int(modifier) < 2:
        return NORMAL
    bits = int(modifier) - 1
    return ALT if bits & 0b1010 else CTRL if bits & 0b0100 else SHIFT if bits & 1 else NORMAL


def _special(name: Optional[str], column: int) -> Optional[Key]:
    return None if name is None else _key(SPECIAL_KEYS[name][column])


def _csi_key(body: str, final: str) -> Optional[Key]:
    """ESC [ body final: None for a sequence that is no PC key."""
    if any(ch < "0" for ch in body) or body[:1] in ("<", "=", ">", "?"):
        return None                 # intermediates, private parameters: terminal reports, not keys
    params = body.split(";") if body else []
    column = _column(params[1]) if len(params) > 1 else NORMAL
    if final == "~":
        return _special(_CSI_TILDE.get(params[0] if params else ""), column)
    if final == "Z":
        return SHIFT_TAB
    return _special(_CSI_LETTERS.get(final), column)


def _ss3_key(body: str, final: str) -> Optional[Key]:
    """ESC O body final: application cursor keys, F1-F4, the application keypad."""
    if final in _KEYPAD and not body:
        return _KEYPAD[final]
    name = _CSI_LETTERS.get(final)
    return _special(name, _column(body.split(";")[-1]) if body else NORMAL)


_INCOMPLETE = (0, None)
_LONE_ESC = (1, ASCII_KEYS[ESC])


def _escape(text: str, i: int) -> Tuple[int, Optional[Key]]:
    """What the ESC at text[i] starts: (characters it takes, its key or None), _INCOMPLETE when the
    text ends before that is known, _LONE_ESC when it starts no sequence."""
    end = len(text)
    if i + 1 == end:
        return _INCOMPLETE
    introducer = text[i + 1]
    if introducer not in "[O":
        return _LONE_ESC
    if introducer == "[" and i + 2 < end and text[i + 2] == "[":
        if i + 3 == end:
            return _INCOMPLETE
        final = text[i + 3]
        return (4, _special(_LINUX_F_KEYS.get(final), NORMAL)) if "@" <= final <= "~" else _LONE_ESC
    j = i + 2
    while j < end and " " <= text[j] <= "?" and j - i < MAX_SEQUENCE:     # parameters, intermediates
        j += 1
    if j - i >= MAX_SEQUENCE:
        return _LONE_ESC
    if j == end:
        return _INCOMPLETE
    final = text[j]
    if not "@" <= final <= "~":
        return _LONE_ESC
    body = text[i + 2:j]
    return j + 1 - i, (_csi_key(body, final) if introducer == "[" else _ss3_key(body, final))


def _nothing_more() -> bool:
    return False


class Keyboard:
    """The type-ahead buffer: keys pushed from stdin (or stored by the guest), taken by int 16h.

    Bounded: each byte pushed gives at most one key, so a host that pushes at most `room()` bytes at a
    time never loses one; keys beyond `capacity` are dropped and counted in `dropped`. `refill`, when
    set, is asked for more input when the guest finds the buffer empty (a regular file as stdin, which
    the host loop cannot wait on): it pushes what it reads and says whether anything came."""
    CAPACITY = 4096

    def __init__(self, capacity: int = CAPACITY):
        self.capacity = capacity
        self.dropped = 0
        self.refill: Callable[[], bool] = _nothing_more
        self._keys: Deque[Key] = deque()
        self._pending = ""                  # an escape sequence the last push ended inside
        self._after_cr = False              # the LF of CR LF is not a second Enter
        self._decoder = codecs.getincrementaldecoder("utf-8")("ignore")
        self._ended = False
        self._lock = Lock()

    # --- the host's side -------------------------------------------------------------------------------
    def push(self, data: bytes) -> None:
        """Bytes from stdin, in whatever pieces they came."""
        with self._lock:
            self._translate(self._decoder.decode(bytes(data)), final=False)

    feed = push                             # the name console.StdinPump feeds its queue by

    def flush_pending(self) -> None:
        """An escape sequence left incomplete by the last push is taken as typed now (a lone ESC is the
        Esc key); a character cut inside its UTF-8 bytes stays, as it cannot be a key by itself."""
        with self._lock:
            self._translate("", final=True)

    def end_of_input(self) -> None:
        """stdin's end: what is pending is taken as typed, and no key will come after the queued ones."""
        with self._lock:
            self._translate(self._decoder.decode(b"", final=True), final=True)
            self._ended = True

    def room(self) -> int:
        """How many bytes a push can take without a key being dropped. A cut escape sequence may still
        become a key for each of its characters; a cut UTF-8 character needs no room of its own (with
        the next n bytes it makes at most n characters), and reserving some would stop the reading that
        completes it."""
        return max(0, self.capacity - len(self._keys) - len(self._pending))

    def full(self) -> bool:
        return self.room() == 0

    def wants_input(self) -> bool:
        """Whether the host should read stdin now."""
        return not self._ended and self.room() > 0

    def buffered(self) -> bool:
        return bool(self._keys or self._pending)

    @property
    def ended(self) -> bool:
        return self._ended

    @property
    def exhausted(self) -> bool:
        """stdin has ended and every key was taken: a guest waiting for a key waits forever."""
        return self._ended and not self._keys and not self._pending

    def __len__(self) -> int:
        return len(self._keys)

    # --- the guest's side ------------------------------------------------------------------------------
    def peek(self) -> Optional[Key]:
        """The next key, left in the buffer; None when there is none."""
        return self._next(remove=False)

    def take(self) -> Optional[Key]:
        return self._next(remove=True)

    def store(self, key: Key) -> bool:
        """int 16h AH=05h: a key put at the end of the buffer as if typed; False when it is full."""
        with self._lock:
            if len(self._keys) >= self.capacity:
                return False
            self._keys.append(Key(key.scan & 0xFF, key.ascii & 0xFF))
            return True

    def _next(self, remove: bool) -> Optional[Key]:
        if not self._keys:
            self.refill()                   # outside the lock: it pushes
        with self._lock:
            if not self._keys and self._pending:
                self._translate("", final=True)     # the guest asks and nothing else came: see above
            if not self._keys:
                return None
            return self._keys.popleft() if remove else self._keys[0]

    # --- bytes to keys ---------------------------------------------------------------------------------
    def _translate(self, text: str, final: bool) -> None:
        """Queue the keys `text` types after what was pending (the lock held). `final`: a sequence the
        text ends inside is not waited for."""
        text, self._pending = self._pending + text, ""
        i = 0
        while i < len(text):
            ch = text[i]
            if ch == ESC:
                taken, key = _escape(text, i)
                if taken == 0:
                    if not final:
                        self._pending = text[i:]
                        return
                    taken, key = _LONE_ESC
                i += taken
                self._after_cr = False
                if key is not None:
                    self._add(key)
                continue
            i += 1
            if ch == "\n" and self._after_cr:
                self._after_cr = False
                continue
            self._after_cr = ch == "\r"
            key = ASCII_KEYS.get(ch) or _cp437_key(ch)
            if key is not None:
                self._add(key)

    def _add(self, key: Key) -> None:
        if len(self._keys) >= self.capacity:
            self.dropped += 1
        else:
            self._keys.append(key)


def _cp437_key(ch: str) -> Optional[Key]:
    """A character no key types: code page 437's byte with scan code 0, as Alt+keypad gives it."""
    try:
        byte = ch.encode("cp437")
    except UnicodeEncodeError:
        return None
    return Key(0x00, byte[0]) if byte[0] >= 0x80 else None


# --- what the functions return ---------------------------------------------------------------------------
def standard_word(key: Key) -> Optional[int]:
    """AX for AH=00h/01h, which give only what an 84-key keyboard had (the IBM BIOS's rule): the keypad's
    Enter and / as the main keys, the grey keys' E0h as 00h, and None (discarded) for the keys it did not
    have: scan codes above 84h, and the Alt combinations stored with F0h."""
    scan, ascii = key
    if scan == 0xE0:
        return (0x1C if ascii in (0x0D, 0x0A) else 0x35) << 8 | ascii
    if scan > 0x84 or (ascii == 0xF0 and scan):
        return None
    if ascii == 0xE0 and scan:
        ascii = 0
    return scan << 8 | ascii


def extended_word(key: Key) -> int:
    """AX for AH=10h/11h: every key as stored, but F0h (the new Alt combinations' mark) as 00h."""
    scan, ascii = key
    return scan << 8 | (0 if ascii == 0xF0 and scan else ascii)


class KeyboardServices:
    """int 16h. Functions 00h-03h, 05h and 10h-12h; the others (09h keyboard functionality, 0Ah
    keyboard ID, 13h-FFh) are Unsupported."""

    def __init__(self, keyboard: Keyboard):
        self.keyboard = keyboard
        self.typematic = TYPEMATIC_DEFAULT          # (delay, rate): remembered, the terminal repeats keys

    def int16(self, call: BiosCall) -> None:
        function = call.ah
        if function in (0x00, 0x10):
            self._read(call, extended=function == 0x10)
        elif function in (0x01, 0x11):
            self._status(call, extended=function == 0x11)
        elif function == 0x02:
            call.al = self._shift_flags(call)[0]
        elif function == 0x03:
            self._typematic(call)
        elif function == 0x05:
            call.al = 0x00 if self.keyboard.store(Key(call.ch, call.cl)) else 0x01
        elif function == 0x12:
            flags, flags_2, flags_3 = self._shift_flags(call)
            call.al = flags
            # AH: left Ctrl/Alt and the locks' keys held (0040:0018), right Ctrl/Alt (0040:0096), SysRq.
            call.ah = flags_2 & 0x73 | flags_3 & 0x0C | (flags_2 & 0x04) << 5
        else:
            raise Unsupported(f"keyboard function {function:02X}h is not one of kvmrun's")

    def _read(self, call: BiosCall, extended: bool) -> None:
        """AH=00h/10h: the next key, waiting for one."""
        while True:
            key = self.keyboard.take()
            if key is None:
                raise WaitForInterrupt()
            word = extended_word(key) if extended else standard_word(key)
            if word is not None:
                call.ax = word
                return

    def _status(self, call: BiosCall, extended: bool) -> None:
        """AH=01h/11h: ZF=1 when there is no key; else ZF=0 and AX the next key, left in the buffer.
        Keys AH=01h discards are taken out as it looks, as the IBM BIOS does."""
        while True:
            key = self.keyboard.peek()
            if key is None:
                call.zero_flag = True
                return
            word = extended_word(key) if extended else standard_word(key)
            if word is not None:
                call.ax = word
                call.zero_flag = False
                return
            self.keyboard.take()

    def _typematic(self, call: BiosCall) -> None:
        """AH=03h: repeat rate and delay. The host's terminal repeats keys, so setting them changes
        nothing kvmrun does; AL=06h reports what was last set (or the power-on default)."""
        sub = call.al
        if sub == 0x00:
            self.typematic = TYPEMATIC_DEFAULT
        elif sub == 0x05:
            if call.bh <= 0x03 and call.bl <= 0x1F:     # out of range: no action, as the IBM BIOS
                self.typematic = (call.bh, call.bl)
        elif sub == 0x06:
            call.bh, call.bl = self.typematic
        elif sub > 0x06:
            raise Unsupported(f"typematic subfunction {sub:02X}h does not exist", selector=f"AL={sub:02X}h")

    @staticmethod
    def _shift_flags(call: BiosCall) -> Tuple[int, int, int]:
        """0040:0017, 0040:0018 and 0040:0096; zeros where the guest's RAM does not reach them."""
        try:
            flags = call.read_linear(bda.SHIFT_FLAGS, 2)
            flags_3 = call.read_linear(KEYBOARD_FLAGS_3, 1)
        except BadBuffer:
            return 0, 0, 0
        return flags[0], flags[1], flags_3[0]
