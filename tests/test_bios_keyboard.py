"""int 16h and the keyboard behind it (kvmrun/bios/keyboard.py), without KVM: stdin's bytes as the keys
a US PC keyboard types, and each function's registers as Ralf Brown's interrupt list gives them
(AH=00h/01h leave out what an 84-key keyboard did not have: scan codes above 84h and F0h-marked keys;
the grey keys' E0h reads as 00h there, AH=10h/11h keep it)."""
import pytest
from hypothesis import given, settings, strategies as st

from kvmrun.bios.call import BiosCall, Unsupported, WaitForInterrupt
from kvmrun.bios.keyboard import (ASCII_KEYS, SHIFT_TAB, SPECIAL_KEYS, TYPEMATIC_DEFAULT, Key, Keyboard,
                                  KeyboardServices, _KEYPAD)
from kvmrun.memory import GuestMemory

RAM = 0x1000


def keys_of(*pushes: bytes, end: bool = True):
    keyboard = Keyboard()
    for data in pushes:
        keyboard.push(data)
    if end:
        keyboard.end_of_input()
    return drain(keyboard)


def drain(keyboard: Keyboard):
    words = []
    while (key := keyboard.take()) is not None:
        words.append(key.word)
    return words


def int16(keyboard: Keyboard, eax: int, mem=None, **registers) -> BiosCall:
    call = BiosCall(0x16, mem or GuestMemory.for_tests(RAM), eax=eax, **registers)
    KeyboardServices(keyboard).int16(call)
    return call


def loaded(*pushes: bytes) -> Keyboard:
    keyboard = Keyboard()
    for data in pushes:
        keyboard.push(data)
    return keyboard


# --- the US layout (HelpPC's and RBIL's scan code tables) ---------------------------------------------------
LETTER_SCANS = dict(zip("abcdefghijklmnopqrstuvwxyz",
                        (0x1E, 0x30, 0x2E, 0x20, 0x12, 0x21, 0x22, 0x23, 0x17, 0x24, 0x25, 0x26, 0x32,
                         0x31, 0x18, 0x19, 0x10, 0x13, 0x1F, 0x14, 0x16, 0x2F, 0x11, 0x2D, 0x15, 0x2C)))

PUNCTUATION = {
    "1": 0x0231, "2": 0x0332, "3": 0x0433, "4": 0x0534, "5": 0x0635, "6": 0x0736, "7": 0x0837, "8": 0x0938,
    "9": 0x0A39, "0": 0x0B30, "!": 0x0221, "@": 0x0340, "#": 0x0423, "$": 0x0524, "%": 0x0625, "^": 0x075E,
    "&": 0x0826, "*": 0x092A, "(": 0x0A28, ")": 0x0B29, "-": 0x0C2D, "_": 0x0C5F, "=": 0x0D3D, "+": 0x0D2B,
    "[": 0x1A5B, "{": 0x1A7B, "]": 0x1B5D, "}": 0x1B7D, ";": 0x273B, ":": 0x273A, "'": 0x2827, '"': 0x2822,
    "`": 0x2960, "~": 0x297E, "\\": 0x2B5C, "|": 0x2B7C, ",": 0x332C, "<": 0x333C, ".": 0x342E, ">": 0x343E,
    "/": 0x352F, "?": 0x353F, " ": 0x3920,
}


@pytest.mark.parametrize("letter", sorted(LETTER_SCANS))
def test_letters_with_and_without_shift_and_ctrl(letter):
    scan = LETTER_SCANS[letter]
    assert keys_of(letter.encode()) == [scan << 8 | ord(letter)]
    assert keys_of(letter.upper().encode()) == [scan << 8 | ord(letter.upper())]
    if letter not in "hijm":            # Ctrl+H/I/J/M are Backspace, Tab and Enter's bytes
        assert keys_of(bytes([ord(letter) & 0x1F])) == [scan << 8 | (ord(letter) & 0x1F)]


def test_digits_and_punctuation_as_a_us_keyboard_types_them():
    assert {ch: keys_of(ch.encode()) for ch in PUNCTUATION} == {ch: [word] for ch, word in PUNCTUATION.items()}


@pytest.mark.parametrize("data, words", [
    (b"\r", [0x1C0D]), (b"\n", [0x1C0D]), (b"\r\n", [0x1C0D]), (b"\n\n", [0x1C0D, 0x1C0D]),
    (b"\r\r", [0x1C0D, 0x1C0D]), (b"\n\r", [0x1C0D, 0x1C0D]), (b"a\r\nb\n", [0x1E61, 0x1C0D, 0x3062, 0x1C0D]),
    (b"\x7f", [0x0E08]), (b"\x08", [0x0E08]), (b"\t", [0x0F09]), (b"\x1b", [0x011B]),
    (b"\x00", [0x0300]), (b"\x03", [0x2E03]), (b"\x1c", [0x2B1C]), (b"\x1d", [0x1B1D]), (b"\x1e", [0x071E]),
    (b"\x1f", [0x0C1F]),
])
def test_enter_backspace_tab_escape_and_control_characters(data, words):
    assert keys_of(data) == words


def test_the_lf_of_a_crlf_split_across_pushes_is_still_one_enter():
    assert keys_of(b"a\r", b"\nb") == [0x1E61, 0x1C0D, 0x3062]


def test_every_ascii_character_is_one_key():
    for byte in range(0x80):
        assert len(keys_of(bytes([byte]))) == 1, hex(byte)


# --- escape sequences (xterm, VT, the Linux console) -------------------------------------------------------
SEQUENCES = {
    b"\x1b[A": 0x48E0, b"\x1b[B": 0x50E0, b"\x1b[C": 0x4DE0, b"\x1b[D": 0x4BE0,
    b"\x1bOA": 0x48E0, b"\x1bOB": 0x50E0, b"\x1bOC": 0x4DE0, b"\x1bOD": 0x4BE0,
    b"\x1b[H": 0x47E0, b"\x1b[F": 0x4FE0, b"\x1bOH": 0x47E0, b"\x1bOF": 0x4FE0,
    b"\x1b[1~": 0x47E0, b"\x1b[4~": 0x4FE0, b"\x1b[7~": 0x47E0, b"\x1b[8~": 0x4FE0,
    b"\x1b[5~": 0x49E0, b"\x1b[6~": 0x51E0, b"\x1b[2~": 0x52E0, b"\x1b[3~": 0x53E0,
    b"\x1bOP": 0x3B00, b"\x1bOQ": 0x3C00, b"\x1bOR": 0x3D00, b"\x1bOS": 0x3E00,
    b"\x1b[11~": 0x3B00, b"\x1b[12~": 0x3C00, b"\x1b[13~": 0x3D00, b"\x1b[14~": 0x3E00,
    b"\x1b[15~": 0x3F00, b"\x1b[17~": 0x4000, b"\x1b[18~": 0x4100, b"\x1b[19~": 0x4200,
    b"\x1b[20~": 0x4300, b"\x1b[21~": 0x4400, b"\x1b[23~": 0x8500, b"\x1b[24~": 0x8600,
    b"\x1b[[A": 0x3B00, b"\x1b[[E": 0x3F00,
    b"\x1b[Z": 0x0F00,
    # xterm's modifiers: 2 Shift, 3 Alt, 5 Ctrl; Alt before Ctrl before Shift when held together
    b"\x1b[1;5C": 0x74E0, b"\x1b[1;5D": 0x73E0, b"\x1b[1;5A": 0x8DE0, b"\x1b[1;5B": 0x91E0,
    b"\x1b[1;3A": 0x9800, b"\x1b[1;3B": 0xA000, b"\x1b[1;2A": 0x48E0, b"\x1b[1;6D": 0x73E0,
    b"\x1b[1;7D": 0x9B00, b"\x1b[1;9A": 0x9800, b"\x1b[1;5H": 0x77E0, b"\x1b[1;5F": 0x75E0,
    b"\x1b[5;5~": 0x84E0, b"\x1b[6;5~": 0x76E0, b"\x1b[2;5~": 0x92E0, b"\x1b[3;5~": 0x93E0,
    b"\x1b[3;3~": 0xA300, b"\x1b[1;2P": 0x5400, b"\x1b[1;5P": 0x5E00, b"\x1b[1;3P": 0x6800,
    b"\x1bO2P": 0x5400, b"\x1b[15;2~": 0x5800, b"\x1b[15;5~": 0x6200, b"\x1b[21;3~": 0x7100,
    b"\x1b[23;2~": 0x8700, b"\x1b[24;5~": 0x8A00, b"\x1b[24;3~": 0x8C00,
    # the keypad in application mode
    b"\x1bOM": 0xE00D, b"\x1bOo": 0xE02F, b"\x1bOj": 0x372A, b"\x1bOk": 0x4E2B, b"\x1bOm": 0x4A2D,
    b"\x1bOn": 0x532E, b"\x1bOp": 0x5230, b"\x1bOt": 0x4B34, b"\x1bOy": 0x4939,
}


@pytest.mark.parametrize("sequence", sorted(SEQUENCES))
def test_escape_sequences_are_their_keys(sequence):
    assert keys_of(sequence) == [SEQUENCES[sequence]]


@pytest.mark.parametrize("sequence", sorted(SEQUENCES))
def test_a_sequence_split_across_pushes_is_one_key(sequence):
    for cut in range(1, len(sequence)):
        assert keys_of(sequence[:cut], sequence[cut:], end=False) == [SEQUENCES[sequence]], cut


def test_sequences_between_text():
    assert keys_of(b"a\x1b[Ab\x1bOPc") == [0x1E61, 0x48E0, 0x3062, 0x3B00, 0x2E63]


@pytest.mark.parametrize("data, words", [
    (b"\x1b[200~hi\x1b[201~", [0x2368, 0x1769]),          # bracketed paste: its marks are no keys
    (b"\x1b[I\x1b[O", []),                                  # focus reports
    (b"\x1b[<0;12;7M", []),                                 # an SGR mouse report
    (b"\x1b[99~", []), (b"\x1b[1;5X", []), (b"\x1b[ q", []), (b"\x1bOX", []), (b"\x1b[[Z", []),
])
def test_sequences_for_no_pc_key_give_nothing(data, words):
    assert keys_of(data) == words


@pytest.mark.parametrize("data, words", [
    (b"\x1bx", [0x011B, 0x2D78]),                           # Alt+x as terminals send it: Esc, x
    (b"\x1b\x1b", [0x011B, 0x011B]),
    (b"\x1b\x1b[A", [0x011B, 0x48E0]),
    (b"\x1b[\x01", [0x011B, 0x1A5B, 0x1E01]),               # not a sequence: Esc, then typed as usual
    (b"\x1b[" + b"1" * 40 + b"~", [0x011B, 0x1A5B] + [0x0231] * 40 + [0x297E]),
])
def test_an_esc_that_starts_no_sequence_is_the_esc_key(data, words):
    assert keys_of(data) == words


def test_a_lone_esc_is_the_esc_key_when_the_guest_asks_and_nothing_else_came():
    keyboard = loaded(b"\x1b")
    assert len(keyboard) == 0 and keyboard.buffered()
    assert keyboard.take() == Key(0x01, 0x1B)


def test_an_esc_behind_queued_keys_waits_for_the_next_push():
    keyboard = loaded(b"x\x1b")
    assert keyboard.take() == Key(0x2D, 0x78)
    keyboard.push(b"[A")
    assert drain(keyboard) == [0x48E0]


def test_a_cut_sequence_the_guest_asks_for_is_taken_as_typed():
    keyboard = loaded(b"\x1b[1")
    assert drain(keyboard) == [0x011B, 0x1A5B, 0x0231]


def test_flush_pending_takes_a_cut_sequence_as_typed_at_once():
    keyboard = loaded(b"\x1b[")
    keyboard.flush_pending()
    assert len(keyboard) == 2
    assert drain(keyboard) == [0x011B, 0x1A5B]


def test_refill_completes_a_cut_sequence_before_the_guest_gives_up_on_it():
    keyboard = loaded(b"\x1b[")
    keyboard.refill = lambda: (keyboard.push(b"A"), True)[1]
    assert keyboard.take() == Key(0x48, 0xE0)


def test_refill_is_asked_only_when_the_buffer_is_empty():
    keyboard = loaded(b"a")
    asked = []
    keyboard.refill = lambda: asked.append(1) or False
    assert keyboard.take() == Key(0x1E, 0x61) and asked == []
    assert keyboard.take() is None and asked == [1]


# --- characters no key types ------------------------------------------------------------------------------
@pytest.mark.parametrize("text, words", [
    ("é", [0x0082]), ("ñ", [0x00A4]), ("£", [0x009C]), ("α", [0x00E0]), ("█", [0x00DB]),
    ("€", []), ("日本", []), ("a€b", [0x1E61, 0x3062]),
])
def test_utf8_characters_come_as_code_page_437_with_scan_code_0(text, words):
    assert keys_of(text.encode()) == words


def test_a_utf8_character_split_across_pushes_is_one_key():
    data = "é".encode()
    assert keys_of(data[:1], data[1:], end=False) == [0x0082]


def test_a_cut_utf8_character_waits_for_its_rest_even_when_the_guest_asks():
    keyboard = loaded("é".encode()[:1])
    assert keyboard.take() is None
    keyboard.push("é".encode()[1:])
    assert keyboard.take() == Key(0x00, 0x82)


@pytest.mark.parametrize("data, words", [
    (b"\xff", []), (b"a\xffb", [0x1E61, 0x3062]), (b"\xc3", []), (b"\xc3a", [0x1E61]), (b"\x80\x80", []),
])
def test_bytes_that_are_not_utf8_give_nothing(data, words):
    assert keys_of(data) == words


# --- the bound, end of input ------------------------------------------------------------------------------
def test_the_queue_is_bounded_and_says_when_to_stop_reading():
    keyboard = Keyboard(capacity=8)
    assert keyboard.room() == 8 and keyboard.wants_input()
    keyboard.push(b"abc\x1b[")
    assert keyboard.room() == 3                 # the cut sequence may still become two keys
    keyboard.push(b"1~de")
    assert len(keyboard) == 6 and keyboard.room() == 2
    keyboard.push(b"fg")
    assert keyboard.full() and not keyboard.wants_input() and keyboard.dropped == 0
    keyboard.push(b"hi")
    assert len(keyboard) == 8 and keyboard.dropped == 2
    keyboard.take()
    assert keyboard.room() == 1 and keyboard.wants_input()


def test_a_cut_utf8_character_takes_no_room_so_its_rest_is_read():
    keyboard = Keyboard(capacity=1)
    keyboard.push(b"\xc3")
    assert keyboard.room() == 1
    keyboard.push(b"\xa9")
    assert keyboard.full() and drain(keyboard) == [0x0082]


def test_the_default_bound_is_4096_keys():
    keyboard = loaded(b"a" * 5000)
    assert len(keyboard) == Keyboard.CAPACITY == 4096 and keyboard.dropped == 5000 - 4096


def test_end_of_input_takes_what_is_pending_then_the_keyboard_is_exhausted():
    keyboard = loaded(b"a\x1b")
    assert not keyboard.ended and keyboard.wants_input()
    keyboard.end_of_input()
    assert keyboard.ended and not keyboard.wants_input() and not keyboard.exhausted
    assert drain(keyboard) == [0x1E61, 0x011B]
    assert keyboard.exhausted


def test_end_of_input_drops_a_cut_utf8_character():
    keyboard = loaded(b"\xc3")
    keyboard.end_of_input()
    assert keyboard.exhausted and keyboard.room() == keyboard.capacity


def test_an_exhausted_keyboard_still_makes_the_guest_wait():
    keyboard = Keyboard()
    keyboard.end_of_input()
    assert keyboard.exhausted
    with pytest.raises(WaitForInterrupt):
        int16(keyboard, 0x0000)
    assert int16(keyboard, 0x0100).zero_flag is True


# --- int 16h functions ------------------------------------------------------------------------------------
def test_ah00_reads_a_key_and_removes_it():
    keyboard = loaded(b"ab")
    call = int16(keyboard, 0x5A5A_0000, ebx=0x1234, ecx=0x5678, edx=0x9ABC)
    assert call.eax == 0x5A5A_1E61                          # AX only: EAX's high half is the caller's
    assert (call.ebx, call.ecx, call.edx, call.carry, call.zero_flag) == (0x1234, 0x5678, 0x9ABC, False, None)
    assert int16(keyboard, 0x0000).ax == 0x3062
    assert len(keyboard) == 0


@pytest.mark.parametrize("function", [0x00, 0x10])
def test_reading_with_no_key_waits_and_changes_nothing(function):
    keyboard = Keyboard()
    call = BiosCall(0x16, GuestMemory.for_tests(RAM), eax=function << 8 | 0x77)
    with pytest.raises(WaitForInterrupt):
        KeyboardServices(keyboard).int16(call)
    assert call.ax == function << 8 | 0x77


def test_ah00_gives_grey_keys_as_the_classic_bios_does_and_ah10_keeps_e0():
    assert int16(loaded(b"\x1b[A"), 0x0000).ax == 0x4800
    assert int16(loaded(b"\x1b[A"), 0x1000).ax == 0x48E0
    assert int16(loaded(b"\x1b[1;5D"), 0x0000).ax == 0x7300       # Ctrl+Left was on the 84-key keyboard
    assert int16(loaded(b"\x1bOM"), 0x0000).ax == 0x1C0D          # keypad Enter as Enter
    assert int16(loaded(b"\x1bOo"), 0x0000).ax == 0x352F          # keypad / as /
    assert int16(loaded(b"\x1bOM"), 0x1000).ax == 0xE00D


@pytest.mark.parametrize("sequence", [b"\x1b[23~", b"\x1b[24~", b"\x1b[1;5A", b"\x1b[1;3B", b"\x1b[3;5~"])
def test_ah00_discards_keys_the_84_key_keyboard_did_not_have(sequence):
    keyboard = loaded(sequence + b"a")
    assert int16(keyboard, 0x0000).ax == 0x1E61
    keyboard = loaded(sequence)
    with pytest.raises(WaitForInterrupt):
        int16(keyboard, 0x0000)
    assert len(keyboard) == 0


def test_ah10_gives_every_key():
    keyboard = loaded(b"\x1b[23~\x1b[1;5A\x1b[1;3Ba")
    assert [int16(keyboard, 0x1000).ax for _ in range(4)] == [0x8500, 0x8DE0, 0xA000, 0x1E61]


@pytest.mark.parametrize("function", [0x01, 0x11])
def test_status_shows_the_next_key_without_removing_it(function):
    keyboard = loaded(b"a")
    for _ in range(2):
        call = int16(keyboard, function << 8)
        assert (call.ax, call.zero_flag) == (0x1E61, False)
    assert len(keyboard) == 1
    assert int16(keyboard, 0x0000).ax == 0x1E61


@pytest.mark.parametrize("function", [0x01, 0x11])
def test_status_with_no_key_sets_zf_and_leaves_ax(function):
    call = int16(Keyboard(), 0xABCD_0000 | function << 8 | 0x42)
    assert call.zero_flag is True and call.eax == 0xABCD_0000 | function << 8 | 0x42


def test_ah01_discards_extended_keys_as_it_looks_and_ah11_does_not():
    keyboard = loaded(b"\x1b[24~a")
    assert int16(keyboard, 0x1100).ax == 0x8600 and len(keyboard) == 2
    call = int16(keyboard, 0x0100)
    assert (call.ax, call.zero_flag, len(keyboard)) == (0x1E61, False, 1)
    keyboard = loaded(b"\x1b[24~")
    assert int16(keyboard, 0x0100).zero_flag is True and len(keyboard) == 0


def test_ah01_gives_grey_keys_with_00_and_ah11_with_e0():
    assert int16(loaded(b"\x1b[5~"), 0x0100).ax == 0x4900
    assert int16(loaded(b"\x1b[5~"), 0x1100).ax == 0x49E0


def test_ah05_stores_a_key_at_the_end_of_the_buffer():
    keyboard = loaded(b"a")
    call = int16(keyboard, 0x05FF, ecx=0x3062)
    assert call.al == 0x00
    assert [int16(keyboard, 0x1000).ax for _ in range(2)] == [0x1E61, 0x3062]


def test_ah05_says_when_the_buffer_is_full():
    keyboard = Keyboard(capacity=2)
    keyboard.push(b"ab")
    call = int16(keyboard, 0x0500, ecx=0x3062)
    assert call.al == 0x01 and len(keyboard) == 2


def test_stored_f0_keys_are_for_ah10_only():
    """The Alt combinations new on the enhanced keyboard are stored with F0h (Alt+Esc: 01F0h)."""
    keyboard = Keyboard()
    int16(keyboard, 0x0500, ecx=0x01F0)
    assert int16(keyboard, 0x1000).ax == 0x0100
    int16(keyboard, 0x0500, ecx=0x01F0)
    int16(keyboard, 0x0500, ecx=0x00F0)                 # scan 0: a character typed with Alt+keypad (240)
    assert int16(keyboard, 0x0000).ax == 0x00F0
    int16(keyboard, 0x0500, ecx=0x00E0)
    assert int16(keyboard, 0x0000).ax == 0x00E0         # and 224 keeps its E0h


def test_ah02_and_ah12_return_the_bios_data_area_flags():
    mem = GuestMemory.for_tests(RAM)
    assert int16(Keyboard(), 0x0200, mem).ax == 0x0200
    assert int16(Keyboard(), 0x1200, mem).ax == 0x0000
    mem.write(0x417, bytes([0x62, 0x45]))               # caps, num lock, left shift; caps key, SysRq, left Ctrl
    mem.write(0x496, bytes([0x1C]))                     # enhanced keyboard, right Alt and Ctrl held
    assert int16(Keyboard(), 0x0200, mem).ax == 0x0262
    assert int16(Keyboard(), 0x1200, mem).ax == 0xCD62  # 0x41 | 0x0C | SysRq as bit 7


def test_shift_flags_are_zero_where_ram_does_not_reach_the_bios_data_area():
    assert int16(Keyboard(), 0x02FF, GuestMemory.for_tests(0x400)).ax == 0x0200
    assert int16(Keyboard(), 0x12FF, GuestMemory.for_tests(0x400)).ax == 0x0000


def test_ah03_typematic_rate_is_accepted_and_remembered():
    keyboard = Keyboard()
    services = KeyboardServices(keyboard)
    mem = GuestMemory.for_tests(RAM)

    def call(eax, ebx=0):
        c = BiosCall(0x16, mem, eax=eax, ebx=ebx)
        services.int16(c)
        return c

    assert call(0x0306, 0xFFFF).bx == TYPEMATIC_DEFAULT[0] << 8 | TYPEMATIC_DEFAULT[1]
    call(0x0305, 0x0210)
    assert call(0x0306).bx == 0x0210
    call(0x0305, 0x0420)                                # out of range: no action
    assert call(0x0306).bx == 0x0210
    for sub in (0x01, 0x02, 0x03, 0x04):
        assert call(0x0300 | sub, 0x1234).bx == 0x1234
    call(0x0300)
    assert call(0x0306).bx == 0x010B
    with pytest.raises(Unsupported) as err:
        call(0x0307)
    assert err.value.selector == "AL=07h"


@pytest.mark.parametrize("function", [0x04, 0x06, 0x09, 0x0A, 0x13, 0x14, 0x20, 0x92, 0xA2, 0xFF])
def test_other_functions_are_unsupported(function):
    with pytest.raises(Unsupported):
        int16(loaded(b"a"), function << 8)


# --- properties -------------------------------------------------------------------------------------------
VALID_KEYS = (set(ASCII_KEYS.values()) | {Key(w >> 8, w & 0xFF) for words in SPECIAL_KEYS.values() for w in words}
              | {SHIFT_TAB} | set(_KEYPAD.values()) | {Key(0, byte) for byte in range(0x80, 0x100)})
STREAM_BYTES = st.one_of(st.binary(max_size=200),
                         st.lists(st.sampled_from([b"\x1b", b"[", b"O", b"1", b";", b"5", b"~", b"A", b"P",
                                                   b"\r", b"\n", b"\xc3", b"\xa9", b"\x80", b"a", b"<"]),
                                  max_size=60).map(b"".join))


def chunked(data: bytes, cuts):
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    return [data[a:b] for a, b in zip([0] + points, points + [len(data)])]


@settings(max_examples=400, deadline=None)
@given(STREAM_BYTES, st.lists(st.integers(0, 1000), max_size=10))
def test_any_bytes_in_any_pieces_give_valid_keys_and_the_same_ones(data, cuts):
    whole = keys_of(data)
    assert len(whole) <= len(data)
    assert all(Key(w >> 8, w & 0xFF) in VALID_KEYS for w in whole)
    assert keys_of(*chunked(data, cuts)) == whole


@settings(max_examples=300, deadline=None)
@given(STREAM_BYTES, st.lists(st.integers(0, 1000), max_size=10), st.integers(1, 40))
def test_pushing_at_most_room_bytes_never_drops_a_key(data, cuts, capacity):
    keyboard = Keyboard(capacity=capacity)
    for piece in chunked(data, cuts):
        while piece:
            room = keyboard.room()
            if room == 0:
                assert keyboard.take() is not None          # full: the guest takes one
                continue
            keyboard.push(piece[:room])
            piece = piece[room:]
            assert len(keyboard) <= capacity
    assert keyboard.dropped == 0


REGISTER = st.integers(0, 0xFFFF_FFFF)


@settings(max_examples=600, deadline=None)
@given(STREAM_BYTES, REGISTER, REGISTER, REGISTER, REGISTER, st.sampled_from([0x100, 0x418, RAM]))
def test_int16_with_any_registers_raises_only_unsupported_or_wait(data, eax, ebx, ecx, edx, ram):
    keyboard = loaded(data)
    queued = len(keyboard)
    call = BiosCall(0x16, GuestMemory.for_tests(ram), eax=eax, ebx=ebx, ecx=ecx, edx=edx)
    try:
        KeyboardServices(keyboard).int16(call)
    except (Unsupported, WaitForInterrupt):
        assert (call.eax, call.ebx, call.ecx) == (eax, ebx, ecx)
        return
    function = eax >> 8 & 0xFF
    assert call.eax >> 16 == eax >> 16 and (call.ecx, call.edx) == (ecx, edx) and not call.carry
    assert call.zero_flag is None if function not in (0x01, 0x11) else call.zero_flag in (True, False)
    if function != 0x03:
        assert call.ebx == ebx
    if function in (0x00, 0x10, 0x01, 0x11) and call.zero_flag is not True:
        assert Key(call.ah, call.al) in VALID_KEYS | {Key(call.ah, 0x00)}
    if function == 0x05:
        assert call.al == 0x00 and len(keyboard) == queued + 1
