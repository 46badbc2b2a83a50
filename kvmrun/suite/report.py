"""What `kvmrun test` shows: live progress on a terminal, a line per guest otherwise, then a table
of results and, for each failure, what differed, the serial tail and the fault report."""
from typing import List

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .runner import GuestOutcome


def _verdict(outcome: GuestOutcome) -> str:
    if outcome.passed:
        return "[green]PASS[/]"
    return "[red]ERROR[/]" if outcome.error is not None else "[red]FAIL[/]"


class Progress:
    """A progress bar on a terminal; elsewhere, one plain line as each guest finishes."""

    def __init__(self, console: Console, total: int):
        self.console = console
        self.total = total
        self._bar = None

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
        line = f"{_verdict(outcome)} {escape(outcome.spec.name)} ({outcome.elapsed:.2f} s)"
        if self._bar is None:
            self.console.print(line, highlight=False)
            return
        if not outcome.passed:
            self._bar.console.print(line, highlight=False)
        self._bar.update(self._task, advance=1, description=escape(outcome.spec.name))

    def __exit__(self, *exc):
        if self._bar is not None:
            self._bar.__exit__(*exc)


def show_summary(console: Console, outcomes: List[GuestOutcome], elapsed: float) -> None:
    table = Table(title="kvmrun test results")
    for column in ("guest", "result", "status", "how it ended", "seconds"):
        table.add_column(column, justify="right" if column in ("status", "seconds") else "left")
    for o in outcomes:
        status = str(o.result.status) if o.result is not None else "-"
        ended = o.result.reason.value if o.result is not None else "not booted"
        table.add_row(escape(o.spec.name), _verdict(o), status, ended, f"{o.elapsed:.2f}")
    console.print(table)
    for o in outcomes:
        if o.passed:
            continue
        console.rule(f"[red]{escape(o.spec.name)}[/]")
        if o.error is not None:
            console.print(escape(o.error), highlight=False, soft_wrap=True)
        else:
            console.print(escape(o.result.explain(o.problems)), highlight=False, soft_wrap=True)
    passed = sum(1 for o in outcomes if o.passed)
    console.print(f"{passed} passed, {len(outcomes) - passed} failed in {elapsed:.2f} s", highlight=False)
