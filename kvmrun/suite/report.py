"""What `kvmrun test` shows: live progress on a terminal, a line per guest otherwise, then a table
of results and, for each failure, what differed, the serial tail and the fault report.

Names, paths and guest output pass through text.printable and are bounded (text.py): a guest's escape
sequences are shown, not obeyed."""
import os
from typing import Any, List, Optional

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from .runner import GuestOutcome
from .text import failure_text, printable


def _verdict(outcome: GuestOutcome) -> Text:
    if outcome.passed:
        return Text("PASS", style="green")
    return Text("ERROR" if outcome.error is not None else "FAIL", style="red")


_POINT_VERDICTS = {"passed": Text("PASS", style="green"), "failed": Text("FAIL", style="red"),
                   "skipped": Text("SKIP", style="yellow")}
POINT_ROWS = 500          # a guest's test points in the table, besides its failed ones (all shown)


def _shown(text: str, style: str = "") -> Text:
    """Text, not markup: a name or a guest's output is shown as it is, brackets and all."""
    return Text(printable(text), style=style)


class GuardedOutput:
    """stdout for the report, where a failed write is remembered rather than raised: a reader that
    went away (`kvmrun test | head -1`), a full disk or a closed stdout must not end the run nor
    turn into a guest failure. Later writes are dropped; the command reports `error` at the end."""

    def __init__(self, stream):
        self._stream = stream
        self.error: Optional[OSError] = None

    @property
    def encoding(self) -> str:
        return getattr(self._stream, "encoding", None) or "utf-8"

    def isatty(self) -> bool:
        try:
            return self.error is None and self._stream.isatty()
        except (OSError, ValueError):
            return False

    def fileno(self) -> int:
        return self._stream.fileno()

    def write(self, text: str) -> int:
        if self.error is None:
            try:
                self._stream.write(text)
            except OSError as err:
                self._failed(err)
        return len(text)

    def flush(self) -> None:
        if self.error is None:
            try:
                self._stream.flush()
            except OSError as err:
                self._failed(err)

    def _failed(self, err: OSError) -> None:
        self.error = err
        # What is still buffered goes nowhere, so that Python's own flush at exit cannot fail again.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError):
            pass


class Progress:
    """A progress bar on a terminal; elsewhere, one plain line as each guest finishes."""

    def __init__(self, console: Console, total: int):
        self.console = console
        self.total = total
        self._bar: Optional[Any] = None

    def __enter__(self):
        if self.console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, \
                TimeElapsedColumn
            self._bar = Bar(TextColumn("[bold]kvmrun test"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TextColumn("{task.description}"), console=self.console,
                            transient=True)
            self._bar.__enter__()
            self._task = self._bar.add_task("", total=self.total)
        return self

    def done(self, outcome: GuestOutcome) -> None:
        line = Text.assemble(_verdict(outcome), " ", _shown(outcome.spec.name), f" ({outcome.elapsed:.2f} s)")
        if self._bar is None:
            self.console.print(line, highlight=False)
            return
        if not outcome.passed:
            self._bar.console.print(line, highlight=False)
        self._bar.update(self._task, advance=1, description=escape(printable(outcome.spec.name)))

    def __exit__(self, *exc):
        if self._bar is not None:
            self._bar.__exit__(*exc)


def show_summary(console: Console, outcomes: List[GuestOutcome], elapsed: float) -> None:
    table = Table(title="kvmrun test results")
    for column in ("guest", "result", "status", "how it ended", "seconds"):
        table.add_column(column, justify="right" if column in ("status", "seconds") else "left")
    for o in outcomes:
        status = str(o.result.status) if o.result is not None else "-"
        table.add_row(_shown(o.spec.name), _verdict(o), status, o.ended, f"{o.elapsed:.2f}")
        _add_points(table, o)
    console.print(table)
    for o in outcomes:
        if o.passed:
            continue
        console.rule(_shown(o.spec.name, style="red"))
        if o.error is not None:
            console.print(_shown(o.error), highlight=False, soft_wrap=True)
        else:
            console.print(_shown(failure_text(o.result, o.problems, o.points)), highlight=False, soft_wrap=True)
    console.print(tally(outcomes, elapsed), highlight=False)


def _add_points(table: Table, outcome: GuestOutcome) -> None:
    """A row per test point below its guest's (`results`): `guest/point`, PASS, FAIL or SKIP, its
    directive. Past POINT_ROWS, only the failed ones, and a row counting the others."""
    left_out = 0
    for index, point in enumerate(outcome.points):
        if index >= POINT_ROWS and point.outcome != "failed":
            left_out += 1
            continue
        table.add_row(_shown(f"{outcome.spec.name}/{point.name}"), _POINT_VERDICTS[point.outcome].copy(), "",
                      _shown(point.directive), "")
    if left_out:
        table.add_row(_shown(f"{outcome.spec.name}/..."), "", "", f"{left_out} more test points passed or skipped",
                      "")


def tally(outcomes: List[GuestOutcome], elapsed: float) -> str:
    """Guests passed and failed; then, when some guest reports test points (`results`), the points
    passed, failed and skipped across all of them. A guest with a failed point is a failed guest."""
    passed = sum(1 for o in outcomes if o.passed)
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    for o in outcomes:
        for point in o.points:
            counts[point.outcome] += 1
    points = f" (test points: {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped)" \
        if any(o.spec.results or o.points for o in outcomes) else ""
    return f"{passed} passed, {len(outcomes) - passed} failed{points} in {elapsed:.2f} s"
