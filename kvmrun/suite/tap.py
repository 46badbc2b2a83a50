"""TAP and KTAP results in a guest's serial output: every test point as a result of its own.

A manifest's `results = "tap"` or `"ktap"` has the guest's serial output read as TAP (versions 13 and
14: testanything.org) or KTAP (the kernel's, Documentation/dev-tools/ktap.rst, as KUnit prints it).
Both share the shape: an optional version line, a plan `1..N` (first or last), result lines
`ok|not ok [N] [- ]description [# DIRECTIVE reason]`, subtests indented below their parent's result
line, `# ` diagnostic lines, YAML blocks `---`/`...` below a result, `Bail out!`. They differ in
where a test's diagnostics are printed (TAP after its result line, KTAP before it), in the directives
they know (KTAP adds XFAIL, TIMEOUT and ERROR) and in numbering (KTAP counts 1, 2, 3...; TAP only
wants each number once and within the plan).

What is reported:
- a test without subtests is a point: passed, failed or skipped (SKIP; TODO and XFAIL that failed);
- a test with subtests is reported through them, its path their prefix; its own result line adds a
  point only when it failed while none of its subtests did (a failure of its own, not theirs);
- what fails the guest as a whole is a problem: no plan, fewer or more points than planned (the
  guest stopped or crashed mid-run), a bail out, numbers reported twice or out of sequence, a
  subtest without its result line, no TAP at all.

Lines before the first version line (boot chatter) are not read; without one, every line is. A version
line behind a kernel's timestamp (`[    0.412345] KTAP version 1`) has the timestamps cut from the
lines after it. Lines that are not TAP count as diagnostics. CRLF and CR end lines as LF does.

Pure, cheap to import, and bounded on any bytes: linear time, at most MAX_BYTES and MAX_LINES read,
MAX_POINTS kept, names, diagnostics and problems cut to their bounds."""
import re
from collections import deque
from dataclasses import dataclass
from typing import Deque, Dict, Iterator, List, Optional, Set, Tuple

KINDS = ("tap", "ktap")
PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"

MAX_BYTES = 8 << 20              # of serial output read for results
MAX_LINES = 200_000              # read after the version line
MAX_POINTS = 10_000              # tests kept (points and their parents)
MAX_DEPTH = 16                   # levels of subtests
MAX_PROBLEMS = 20
NAME_CHARS = 200                 # of a test's name, and of a directive's reason
DIAGNOSTIC_CHARS = 4096          # of one point's diagnostics
ALL_DIAGNOSTIC_CHARS = 1 << 20   # of all points' diagnostics together
LINE_CHARS = 1024                # of one diagnostic line

_BREAK = re.compile(r"\r\n?|\n")
_VERSION_LINE = re.compile(r"K?TAP version \d{1,9}[ \t]*(?=[\r\n]|\Z)")
_VERSION = re.compile(r"K?TAP version \d{1,9}")
_PLAN = re.compile(r"1\.\.(\d{1,12})[ \t]*(?:#[ \t]*(.*))?", re.S)
_RESULT = re.compile(r"(not ok|ok)(?:[ \t]+(\d{1,12})(?=[ \t]|$))?[ \t]*(.*)", re.S)
_SUBTEST = re.compile(r"#[ \t]*Subtest(?::[ \t]*(.*))?", re.S)
_TAP_DIRECTIVE = re.compile(r"(?P<word>skip|todo)\S*(?:[ \t]+(?P<reason>.*))?", re.I | re.S)
_KTAP_DIRECTIVE = re.compile(r"(?:(?P<word>skip|todo)\S*|(?P<other>xfail|timeout|error)(?=[ \t]|$))"
                             r"(?:[ \t]+(?P<reason>.*))?", re.I | re.S)
_TIMESTAMP = re.compile(r"\[[ \t]*\d{1,12}\.\d{1,12}\] ?")     # printk's, on a kernel's console
_ESCAPE = re.compile(r"\\([\\#])")


@dataclass(frozen=True)
class TestPoint:
    __test__ = False                     # not a pytest test class, though its name says Test
    path: Tuple[str, ...]                # names from the outermost test down: ("example", "test_1")
    outcome: str                         # PASSED, FAILED or SKIPPED
    directive: str = ""                  # as printed, keyword in capitals: "SKIP no disk", "TODO", "XFAIL"
    diagnostics: str = ""                # its diagnostic lines and YAML block as printed (bounded); kept
                                         # for points that did not pass

    @property
    def name(self) -> str:
        return "/".join(self.path)


@dataclass(frozen=True)
class TestResults:
    __test__ = False
    points: Tuple[TestPoint, ...]
    problems: Tuple[str, ...]            # what fails the guest as a whole

    @property
    def failed(self) -> Tuple[TestPoint, ...]:
        return tuple(point for point in self.points if point.outcome == FAILED)


def parse_results(serial: bytes, kind: str) -> TestResults:
    """The test points in `serial` (a guest's serial output) read as `kind`, "tap" or "ktap"."""
    if kind not in KINDS:
        raise ValueError(f"results must be one of {', '.join(map(repr, KINDS))}, not {kind!r}")
    text = bytes(serial[:MAX_BYTES]).decode("utf-8", errors="replace")
    parser = _Parser(kind)
    if len(serial) > MAX_BYTES:
        parser.problem(f"serial output longer than {MAX_BYTES >> 20} MiB: only the first {MAX_BYTES >> 20} MiB "
                       "were read for test points")
    parser.run(text)
    return parser.results()


# --- reading ------------------------------------------------------------------------------------------

def _lines(text: str, start: int = 0) -> Iterator[str]:
    """The lines of `text` from `start`, broken at CRLF, CR or LF, one at a time (a flood of newlines
    costs no list)."""
    for match in _BREAK.finditer(text, start):
        yield text[start:match.start()]
        start = match.end()
    if start < len(text):
        yield text[start:]


def _indent(line: str) -> int:
    """The width of the leading whitespace, a tab as 4 spaces (older KUnit indented subtests with one)."""
    lead = line[:len(line) - len(line.lstrip(" \t"))]
    return len(lead) + 3 * lead.count("\t")


def _dedented(line: str, width: int) -> str:
    """`line` without its leading whitespace up to `width` (its level's indentation): shown as printed
    relative to that level."""
    lead = len(line) - len(line.lstrip(" \t"))
    if "\t" not in line[:lead]:
        return line[min(lead, width):]
    cut = used = 0
    while cut < lead and used + (4 if line[cut] == "\t" else 1) <= width:
        used += 4 if line[cut] == "\t" else 1
        cut += 1
    return line[cut:]


def _unescaped(text: str) -> str:
    """TAP14's escapes: `\\#` is a `#` that delimits nothing, `\\\\` a backslash."""
    return _ESCAPE.sub(r"\1", text) if "\\" in text else text


def _bounded(text: str, limit: int = NAME_CHARS) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _split_directive(rest: str) -> Tuple[str, Optional[str]]:
    """A result line's text after its number: the description, and what follows its directive
    delimiter, a `#` at the start or after whitespace (`\\#` and `page#anchor` belong to the description)."""
    at = rest.find("#")
    while at > 0 and not rest[at - 1].isspace():
        at = rest.find("#", at + 1)
    if at < 0:
        return rest, None
    return rest[:at], rest[at + 1:]


class _Notes:
    """One test's diagnostic lines, bounded: KTAP prints them before its result line, so the last
    ones are kept; TAP after, so the first ones."""

    def __init__(self, keep_last: bool):
        self.keep_last = keep_last
        self.lines: Deque[str] = deque()
        self.size = 0
        self.dropped = 0

    def add(self, line: str) -> None:
        line = _bounded(line, LINE_CHARS)
        if self.keep_last:
            self.lines.append(line)
            self.size += len(line) + 1
            while self.size > DIAGNOSTIC_CHARS:
                self.size -= len(self.lines.popleft()) + 1
                self.dropped += 1
        elif self.size + len(line) + 1 <= DIAGNOSTIC_CHARS:
            self.lines.append(line)
            self.size += len(line) + 1
        else:
            self.dropped += 1

    def extend(self, other: "_Notes") -> None:
        self.dropped += other.dropped
        for line in other.lines:
            self.add(line)

    def text(self) -> str:
        if not self.dropped:
            return "\n".join(self.lines)
        note = f"[... {self.dropped} more line{'s' if self.dropped != 1 else ''} not shown ...]"
        return "\n".join([note, *self.lines] if self.keep_last else [*self.lines, note])


class _NoNotes(_Notes):
    """Where the lines of a test whose diagnostics are not kept go: nowhere."""

    def add(self, line: str) -> None:
        pass

    def extend(self, other: _Notes) -> None:
        pass


_NO_NOTES = _NoNotes(False)


class _Test:
    """A result line read: a point, or the parent of its subtests' points."""
    __slots__ = ("name", "outcome", "directive", "notes", "diagnostics", "children")

    def __init__(self, name: str, outcome: str, directive: str, children: List["_Test"]):
        self.name, self.outcome, self.directive = name, outcome, directive
        self.children = children
        # Kept for what may be shown: a point that did not pass, a parent that may fail of its own.
        self.notes = _Notes(False) if outcome == FAILED or (outcome == SKIPPED and not children) else _NO_NOTES
        self.diagnostics = ""


class _Frame:
    """One level of tests: the top level or a subtest, at its indentation."""

    def __init__(self, indent: int, name: Optional[str], line: int):
        self.indent = indent
        self.name = name                  # a subtest's name from `# Subtest: name`, if it printed one
        self.line = line                  # where it began
        self.plan: Optional[int] = None
        self.plan_after_points = False
        self.points_after_plan = False
        self.count = 0                    # result lines read at this level
        self.last_number = 0
        self.largest_number = 0
        self.numbers: Set[int] = set()
        self.names: Dict[str, int] = {}
        self.tests: List[_Test] = []
        self.notes = _Notes(True)         # KTAP: lines waiting for the next result line
        self.open: Optional[_Test] = None  # the last result line: its YAML block, and in TAP the lines after it
        self.yaml_may_follow = False      # only comments since that result line
        self.child_name: Optional[str] = None    # from `# Subtest: name` at this level
        self.ended: Optional[Tuple[Optional[str], List[_Test], int]] = None  # a subtest awaiting its result line


class _Parser:
    def __init__(self, kind: str):
        self.kind = kind
        self.ktap = kind == "ktap"
        self.directive = _KTAP_DIRECTIVE if self.ktap else _TAP_DIRECTIVE
        self._problems: List[str] = []
        self._more_problems = 0
        self.kept = 0                     # tests kept, at most MAX_POINTS
        self.diagnostics_left = ALL_DIAGNOSTIC_CHARS
        self.version_seen = False
        self.timestamps = False           # a kernel's `[    0.412345] ` before every line
        self.bailed = False
        self.ended_inside = False
        self.root = _Frame(0, None, 0)
        self.stack = [self.root]
        self.yaml: Optional[Tuple[int, _Test]] = None     # in a YAML block: its indentation, its test
        self.too_deep = False

    def problem(self, text: str) -> None:
        if len(self._problems) < MAX_PROBLEMS:
            self._problems.append(text)
        else:
            self._more_problems += 1

    # --- the lines ---

    def run(self, text: str) -> None:
        number, offset = self._start(text)
        first = number
        for line in _lines(text, offset):
            number += 1
            if number - first > MAX_LINES:
                self.problem(f"more than {MAX_LINES} lines after the version line: the rest were not read for "
                             "test points")
                break
            if self.timestamps:
                stamp = _TIMESTAMP.match(line)
                if stamp is not None:
                    line = line[stamp.end():]
            self.line(number, line)
            if self.bailed:
                break
        self._end()

    def _start(self, text: str) -> Tuple[int, int]:
        """The first version line's number and the offset of the line after it; (0, 0) without one.
        Found with str.find, not line by line: boot chatter before it costs next to nothing."""
        at = text.find("TAP version ")
        while at >= 0:
            begin = at - 1 if at and text[at - 1] == "K" else at
            match = _VERSION_LINE.match(text, begin)
            if match is not None:         # at the end of its line: what stands before it?
                line_start = max(text.rfind("\n", 0, begin), text.rfind("\r", 0, begin)) + 1
                prefix = text[line_start:begin]
                if not prefix.strip() or _TIMESTAMP.fullmatch(prefix):
                    self.version_seen = True
                    self.timestamps = bool(prefix.strip())
                    self.root.indent = 0 if self.timestamps else _indent(prefix)
                    before = text.count("\n", 0, line_start) + text.count("\r", 0, line_start) - \
                        text.count("\r\n", 0, line_start)
                    end = match.end()
                    end += 2 if text.startswith("\r\n", end) else 1
                    return before + 1, end
            at = text.find("TAP version ", at + 1)
        return 0, 0

    def line(self, number: int, line: str) -> None:
        content = line.strip()
        if not content and self.yaml is None:
            return
        indent = _indent(line)
        if self.yaml is not None:
            yaml_indent, test = self.yaml
            if content == "..." or not content or indent >= yaml_indent:
                test.notes.add(_dedented(line, self.stack[-1].indent))
                if content == "...":
                    self.yaml = None
                return
            self.yaml = None              # a line left of the block ends it, even without `...`
        if not content:
            return
        if content[:9].lower() == "bail out!":
            reason = _unescaped(content[9:].strip())
            self.problem(f"line {number}: bailed out" + (f": {_bounded(reason)}" if reason else ""))
            self.bailed = True
            return
        result = _RESULT.fullmatch(content) if content.startswith(("ok", "not ok")) else None
        if result is not None and content[len(result.group(1)):][:1] not in ("", " ", "\t"):
            result = None                 # `okay`, `not okay`: not a result line
        plan = _PLAN.fullmatch(content) if content.startswith("1..") else None
        subtest = _SUBTEST.fullmatch(content) if content.startswith("#") else None
        version = _VERSION.fullmatch(content) if content.startswith(("TAP", "KTAP")) else None
        frame = None
        if result is not None or plan is not None or subtest is not None or version is not None:
            frame = self._frame_at(number, indent)
        if frame is None:                 # not TAP, or nested deeper than MAX_DEPTH
            self._other(line, indent, content)
        elif result is not None:
            self._result(number, frame, result)
        elif plan is not None:
            self._plan(number, frame, int(plan.group(1)))
        elif subtest is not None:
            name = _bounded(subtest.group(1).strip()) if subtest.group(1) else None
            if frame is not self.root and frame.name in (None, name) and not frame.count and frame.plan is None:
                frame.name = name         # KUnit, node: `# Subtest: name` opens the subtest's own lines
            else:
                frame.child_name = name   # TAP14: it stands at the parent's level, before them

    def _other(self, line: str, indent: int, content: str) -> None:
        """A diagnostic or any line that is not TAP: the current test's diagnostics. A YAML block
        begins right below a result line (comments between allowed)."""
        frame = self.stack[-1]
        shown = _dedented(line, frame.indent)
        if content == "---" and frame.open is not None and frame.yaml_may_follow and indent > frame.indent:
            self.yaml = (indent, frame.open)
            frame.open.notes.add(shown)
            return
        if not content.startswith("#"):
            frame.yaml_may_follow = False
        if self.ktap:
            frame.notes.add(shown)
        elif frame.open is not None:
            frame.open.notes.add(shown)

    def _frame_at(self, number: int, indent: int) -> Optional[_Frame]:
        """The level a TAP line at `indent` belongs to: subtests deeper than it end, and a line
        deeper than the current level begins one."""
        indent = max(indent, self.root.indent)
        while len(self.stack) > 1 and indent < self.stack[-1].indent:
            self._close()
        top = self.stack[-1]
        top.yaml_may_follow = False
        if indent <= top.indent:
            return top
        if len(self.stack) >= MAX_DEPTH:
            if not self.too_deep:
                self.too_deep = True
                self.problem(f"line {number}: subtests nested deeper than {MAX_DEPTH} levels: the deeper lines "
                             "were not read as TAP")
            return None
        if top.ended is not None:
            self._orphan(top)
        child = _Frame(indent, top.child_name, number)
        top.child_name = None
        self.stack.append(child)
        return child

    def _plan(self, number: int, frame: _Frame, planned: int) -> None:
        if frame.plan is not None:
            self.problem(f"line {number}{self._in(frame)}: a second plan 1..{planned}")
            return
        frame.plan = planned
        frame.plan_after_points = frame.count > 0

    def _result(self, number: int, frame: _Frame, match: "re.Match[str]") -> None:
        failed = match.group(1) == "not ok"
        description, after = _split_directive(match.group(3))
        description = description.strip()
        if description.startswith("-") and description[1:2] in ("", " ", "\t"):
            description = description[1:].strip()
        description = _bounded(_unescaped(description))
        outcome, directive, comment = (FAILED if failed else PASSED), "", ""
        if after is not None:
            found = self.directive.fullmatch(after.strip())
            if found is None:
                comment = "#" + after     # diagnostic data, not a directive
            else:
                keyword = (found.group("word") or found.groupdict().get("other") or "").upper()
                reason = _bounded(_unescaped((found.group("reason") or "").strip()))
                directive = f"{keyword} {reason}" if reason else keyword
                if keyword in ("SKIP", "XFAIL") or (keyword == "TODO" and failed):
                    outcome = SKIPPED     # TODO and XFAIL failures are expected: they do not fail
                elif keyword in ("TIMEOUT", "ERROR"):
                    outcome = FAILED
        self._number(number, frame, match.group(2))
        children: List[_Test] = []
        if frame.ended is not None:       # the result line of the subtest that just ended
            subtest_name, children, _ = frame.ended
            frame.ended = None
            if subtest_name and description and subtest_name != description:
                self.problem(f"line {number}{self._in(frame)}: subtest {subtest_name!r} ended by the result of "
                             f"{description!r}")
            description = description or subtest_name or ""
        elif frame.child_name is not None:
            description = description or frame.child_name   # `# Subtest: name` over no subtest lines
        frame.child_name = None
        self._finish_open(frame)
        notes, frame.notes = frame.notes, _Notes(True)
        if self.kept >= MAX_POINTS:
            if self.kept == MAX_POINTS:
                self.kept += 1
                self.problem(f"more than {MAX_POINTS} test points: the rest are not reported")
            return
        self.kept += 1
        test = _Test(self._unique(frame, description or str(frame.last_number)), outcome, directive, children)
        if self.ktap and test.notes is not _NO_NOTES:
            test.notes = notes            # the lines before it, the last ones kept
        if comment:
            test.notes.add(comment)
        frame.tests.append(test)
        frame.open = test
        frame.yaml_may_follow = True

    def _number(self, number: int, frame: _Frame, written: Optional[str]) -> None:
        """The result's number checked: KTAP counts 1, 2, 3...; TAP wants each number once (an
        unnumbered result takes the next one: TAP has the harness count)."""
        frame.count += 1
        if frame.plan is not None and frame.plan_after_points and not frame.points_after_plan:
            frame.points_after_plan = True
            self.problem(f"line {number}{self._in(frame)}: a test point after the plan 1..{frame.plan} that "
                         "followed the points")
        value = int(written) if written is not None else frame.last_number + 1
        if self.ktap:
            if value != frame.count:
                self.problem(f"line {number}{self._in(frame)}: test point {value} out of sequence "
                             f"(expected {frame.count})")
        elif value in frame.numbers:
            self.problem(f"line {number}{self._in(frame)}: test point {value} reported twice")
        elif len(frame.numbers) < MAX_POINTS:
            frame.numbers.add(value)
        frame.last_number = value
        frame.largest_number = max(frame.largest_number, value)

    def _unique(self, frame: _Frame, name: str) -> str:
        """`name`, or `name (2)`, `name (3)`...: unique among its siblings."""
        if name not in frame.names:
            frame.names[name] = 1
            return name
        count = frame.names[name]
        while True:
            count += 1
            candidate = f"{name} ({count})"
            if candidate not in frame.names:
                frame.names[name] = count
                frame.names[candidate] = 1
                return candidate

    def _finish_open(self, frame: _Frame) -> None:
        """The lines of the last result line end: its diagnostics are final, within the bound on all."""
        test = frame.open
        if test is None:
            return
        frame.open = None
        self.yaml = None if self.yaml is not None and self.yaml[1] is test else self.yaml
        if test.notes is not _NO_NOTES:
            text = test.notes.text()[:self.diagnostics_left]
            self.diagnostics_left -= len(text)
            test.diagnostics = text
            test.notes = _NO_NOTES

    def _close(self, at_end: bool = False) -> None:
        """The innermost subtest ends: its tests wait for the result line of the test they belong to."""
        where = self._in(self.stack[-1])
        frame = self.stack.pop()
        parent = self.stack[-1]
        self._finish_open(frame)
        if frame.ended is not None:
            self._orphan(frame, quiet=at_end)
        if not at_end:
            self._check_plan(frame, where)
        if self.ktap:
            parent.notes.extend(frame.notes)   # lines after its last result: before the parent's
        if parent.ended is not None:
            self._orphan(parent)
        parent.ended = (frame.name, frame.tests, frame.line)

    def _orphan(self, frame: _Frame, quiet: bool = False) -> None:
        """A subtest ended without the result line that closes it: its tests are still reported, under
        its name or the number that result would have had."""
        assert frame.ended is not None
        name, tests, line = frame.ended
        frame.ended = None
        label = name or str(frame.last_number + 1)
        if not quiet:
            self.problem(f"line {line}: subtest {label!r} has no result line")
        if tests:
            frame.tests.append(_Test(self._unique(frame, label), PASSED, "", tests))

    def _check_plan(self, frame: _Frame, where: str) -> None:
        if frame.plan is None:
            return
        if frame.count != frame.plan:
            self.problem(f"{where.removeprefix(' in ')}{': ' if where else ''}planned {frame.plan} test "
                         f"point{'s' if frame.plan != 1 else ''}, {frame.count} reported")
        elif frame.largest_number > frame.plan:
            self.problem(f"{where.removeprefix(' in ')}{': ' if where else ''}test point {frame.largest_number} "
                         f"is outside the plan 1..{frame.plan}")

    def _in(self, frame: _Frame) -> str:
        """` in subtest 'a/b'` for a frame on the stack, "" for the top level."""
        if frame is self.root:
            return ""
        names = []
        for level in self.stack[1:]:
            names.append(level.name or f"at line {level.line}")
            if level is frame:
                break
        return f" in subtest {'/'.join(names)!r}"

    def _end(self) -> None:
        if len(self.stack) > 1 and not self.bailed:
            self.ended_inside = True
            self.problem(f"the output ended{self._in(self.stack[-1])}")
        while len(self.stack) > 1:
            self._close(at_end=True)
        if self.root.ended is not None:
            self._orphan(self.root, quiet=self.ended_inside or self.bailed)
        self._finish_open(self.root)
        if self.bailed:
            return
        root = self.root
        if root.plan is None:
            if root.count == 0:
                self.problem("no plan and no test point" + ("" if self.version_seen else ", nor a version line"))
            else:
                self.problem(f"no plan (1..N): {root.count} test point{'s' if root.count != 1 else ''} "
                             "reported, none announced")
        else:
            self._check_plan(root, "")
        if self.ktap and not self.version_seen and root.count:
            self.problem("no 'KTAP version 1' line before the results")

    def results(self) -> TestResults:
        points: List[TestPoint] = []
        _flatten(self.root.tests, (), points)
        problems = list(self._problems)
        if self._more_problems:
            problems.append(f"... and {self._more_problems} more problem{'s' if self._more_problems != 1 else ''}")
        return TestResults(tuple(points), tuple(problems))


def _flatten(tests: List[_Test], prefix: Tuple[str, ...], points: List[TestPoint]) -> bool:
    """Points in the order printed, a parent's after its subtests'; returns whether any failed."""
    any_failed = False
    for test in tests:
        path = prefix + (test.name,)
        if test.children:
            children_failed = _flatten(test.children, path, points)
            any_failed |= children_failed
            if test.outcome != FAILED or children_failed:
                continue                  # reported through its subtests
        points.append(TestPoint(path, test.outcome, test.directive, test.diagnostics))
        any_failed |= test.outcome == FAILED
    return any_failed


FAILED_NAMES_CHARS = 300         # of the failed points' names in the guest's problem


def guest_problems(results: TestResults, kind: str) -> Tuple[str, ...]:
    """What fails the guest whose output these are: one problem naming its failed points
    (`2 of 5 test points failed: a/b, c`), and each of results.problems, saying which format."""
    problems = []
    failed = results.failed
    if failed:
        names: List[str] = []
        length = 0
        for point in failed:
            name = _bounded(point.name)
            if names and length + len(name) > FAILED_NAMES_CHARS:
                break
            names.append(name)
            length += len(name) + 2
        more = f" and {len(failed) - len(names)} more" if len(names) < len(failed) else ""
        problems.append(f"{len(failed)} of {len(results.points)} test points failed: {', '.join(names)}{more}")
    problems.extend(f"{kind.upper()}: {problem}" for problem in results.problems)
    return tuple(problems)
