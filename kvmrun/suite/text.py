"""Guest output made safe to show: bounded in lines and bytes, control characters escaped.

A guest prints anything: a megabyte on one line, escape sequences, bytes that are not UTF-8, and a
manifest's names and paths can hold the same. What `kvmrun test` shows on a terminal or writes into
JUnit XML is bounded, and shown as text, never obeyed by the terminal."""
import re
from typing import Iterable, List, Sequence, Tuple

TAIL_LINES = 20                   # of serial output in a failure's report
TAIL_BYTES = 4096                 # ... and never more bytes than this, however long the lines
SYSTEM_OUT_BYTES = 64 * 1024      # the last this many bytes of serial output go to JUnit's system-out
POINTS_SHOWN = 20                 # failed test points in a failure's report
POINT_LINES = 12                  # of each one's diagnostics
POINT_CHARS = 1024                # ... and never more characters than this
POINTS_CHARS = 8192               # of all of them

# For a terminal: C0 controls but newline and tab, DEL, C1 controls, lone surrogates (undecodable
# bytes of a file name, as os.fsdecode leaves them).
_NOT_PRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
# For XML 1.0: what it cannot carry even as a character reference.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _escaped(match: "re.Match[str]") -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # a byte os.fsdecode could not decode: show that byte
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _decoded(data) -> str:
    return data.decode("utf-8", errors="replace") if isinstance(data, (bytes, bytearray)) else data


def printable(data) -> str:
    """Text for a terminal: control characters and undecodable bytes as \\xNN; CRLF as a newline."""
    return _NOT_PRINTABLE.sub(_escaped, _decoded(data).replace("\r\n", "\n"))


def xml_text(data) -> str:
    """Text XML 1.0 can carry: what it cannot as \\xNN."""
    return _NOT_XML.sub(_escaped, _decoded(data))


def tail(data: bytes, lines: int = TAIL_LINES, limit: int = TAIL_BYTES) -> Tuple[bytes, int]:
    """The last `lines` lines of `data` but at most `limit` bytes of them, and how many bytes came
    before. A final newline ends the last line rather than starting another."""
    end = len(data) - 1 if data.endswith(b"\n") else len(data)
    start = end
    for _ in range(lines):
        start = data.rfind(b"\n", 0, start)
        if start < 0:
            break
    start = max(start + 1, len(data) - limit)
    for _ in range(3):            # not in the middle of a UTF-8 character
        if start < len(data) and data[start] & 0xC0 == 0x80:
            start += 1
    return data[start:], start


def _cut_note(cut: int) -> str:
    return f"[... {cut} earlier byte{'s' if cut != 1 else ''} not shown ...]\n" if cut else ""


def serial_tail(serial: bytes, lines: int = TAIL_LINES, limit: int = TAIL_BYTES) -> str:
    """The end of a guest's serial output for a report, printable, saying how much was left out."""
    shown, cut = tail(serial, lines, limit)
    text = printable(shown)
    return _cut_note(cut) + (text[:-1] if text.endswith("\n") else text)


def system_out(serial: bytes, limit: int = SYSTEM_OUT_BYTES) -> str:
    """The serial output for JUnit's system-out: the last `limit` bytes, as XML can carry them."""
    cut = max(0, len(serial) - limit)
    for _ in range(3):
        if cut < len(serial) and serial[cut] & 0xC0 == 0x80:
            cut += 1
    return xml_text(_cut_note(cut) + serial[cut:].decode("utf-8", errors="replace"))


def screen_section(result) -> str:
    """The guest's final screen as the CI log shows it, "" when it never wrote to it (bounded: 80x25)."""
    if getattr(result, "screen", None) is None:
        return ""
    from ..screen_view import plain
    return plain(result.screen).rstrip("\n")


def how_it_ended(result) -> str:
    """`exit status 1 (fault)`: the status and the reason, as a failure message begins."""
    return f"exit status {result.status} ({result.reason.value})"


def failure_message(result, problems: Iterable[str]) -> str:
    """What differed, always naming how the guest ended; one line, printable."""
    problems = list(problems)
    reason = result.reason.value      # Result.mismatches names it as "(fault)" or "ended by fault"
    if not any(f"({reason})" in problem or problem.startswith(f"ended by {reason} ") for problem in problems):
        problems.insert(0, how_it_ended(result))
    return printable("; ".join(problems))


def failed_points_text(points: Sequence) -> str:
    """The failed test points (tap.TestPoint) with their directives and diagnostics, for a failure's
    report: bounded and printable; "" when none failed."""
    failed = [point for point in points if point.outcome == "failed"]
    if not failed:
        return ""
    parts = [f"--- failed test points ({len(failed)} of {len(points)}) ---"]
    size = 0
    for shown, point in enumerate(failed):
        if shown == POINTS_SHOWN or size > POINTS_CHARS:
            parts.append(f"[... {len(failed) - shown} more failed test points not shown ...]")
            break
        lines = failed_point_lines(point)
        parts.extend(lines)
        size += sum(len(line) + 1 for line in lines)
    return "\n".join(parts)


def failed_point_heading(point) -> str:
    """`not ok name # DIRECTIVE`: a failed point as TAP prints it, unbounded and not yet printable."""
    return f"not ok {point.name}" + (f" # {point.directive}" if point.directive else "")


def failed_point_lines(point) -> List[str]:
    """A failed point's heading and its diagnostics, indented: bounded in lines and characters, printable."""
    lines = [printable(failed_point_heading(point))[:POINT_CHARS]]
    diagnostics = point.diagnostics.split("\n") if point.diagnostics else []
    text = "\n".join(diagnostics[:POINT_LINES])
    cut = len(diagnostics) - POINT_LINES if len(diagnostics) > POINT_LINES else 0
    if len(text) > POINT_CHARS:
        text, cut = text[:POINT_CHARS], cut + text[POINT_CHARS:].count("\n") + 1
    lines += ["    " + line for line in printable(text).split("\n")] if text else []
    if cut:
        lines.append(f"    [... {cut} more line{'s' if cut != 1 else ''} not shown ...]")
    return lines


def failure_text(result, problems: Iterable[str], points: Sequence = ()) -> str:
    """A failure's whole story, bounded and printable: what differed, the failed test points (with
    `results`), the serial tail, the fault report."""
    parts = [f"guest {printable(result.image)}: {failure_message(result, problems)}"]
    failed_points = failed_points_text(points)
    if failed_points:
        parts.append(failed_points)
    parts += [f"--- serial output (last {TAIL_LINES} lines, at most {TAIL_BYTES} bytes) ---",
              serial_tail(result.serial) or "(none)"]
    screen = screen_section(result)
    if screen:
        parts.append(printable(screen))
    if result.report:
        parts.append(f"--- fault report ---\n{printable(result.report.rstrip())}")
    return "\n".join(parts)
