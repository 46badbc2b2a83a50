"""Manifests as pytest test files: one item per guest, run by the same core as `kvmrun test`.

The plugin (pytest_plugin.py) imports this only when pytest meets a manifest. Each item runs its guest
with kvmrun.suite.runner.run_guest, the function `kvmrun test` runs, so the expectations, the failure
report and the outcome cannot disagree. What an item reports is plain data (strings, numbers): under
pytest-xdist reports cross process boundaries, to a controller that may run on another host."""
import contextlib

import pytest

from .errors import KvmrunError
from .suite.manifest import load_manifest
from .suite.runner import GuestOutcome, run_guest
from .suite.text import failed_point_lines, failure_text, printable, system_out


class PointFailed(Exception):
    """A TAP/KTAP test point that failed, raised only to make its subtest report."""

    def __init__(self, point):
        super().__init__(point.name)
        self.point = point


class GuestFailed(Exception):
    """A guest did not do what its manifest expects; the item's report is the outcome's story."""

    def __init__(self, outcome: GuestOutcome):
        super().__init__(outcome.spec.name)
        self.outcome = outcome


class ManifestFile(pytest.File):
    def collect(self):
        try:
            specs = load_manifest(str(self.path))
        except KvmrunError as err:
            # Shown as the one line `kvmrun test` prints, not as a traceback into kvmrun.
            raise self.CollectError(str(err)) from None
        grouping = bool(getattr(self.config.option, "loadgroup", False))     # set by xdist in its workers
        for spec in specs:
            # xdist's loadgroup scheduler reads a group from the "@group" end of an id. xdist writes it
            # there itself, through a field pytest 9.2 no longer reads (pytest-xdist issue #1386), so a
            # guest's group is put into its name instead, as xdist would have shown it.
            name = printable(spec.name)         # an id a terminal shows, never obeys (as kvmrun test shows it)
            if grouping and spec.group is not None:
                name += f"@{printable(spec.group)}"
            item = GuestItem.from_parent(self, name=name, spec=spec)
            item.add_marker("kvm")
            for marker in spec.markers:
                item.add_marker(marker)
            if spec.group is not None and not grouping:
                item.add_marker(pytest.mark.xdist_group(name=spec.group))
            yield item


class GuestItem(pytest.Item):
    def __init__(self, *, spec, **kwargs):
        super().__init__(**kwargs)
        self.spec = spec

    def runtest(self) -> None:
        outcome = run_guest(self.spec)
        if outcome.points:          # first: a point's report would carry the guest's whole output too
            _report_points(self, outcome.points)
        self.user_properties.extend(_properties(outcome))
        if outcome.result is not None and outcome.result.serial:
            # As "Captured stdout": what pytest shows with -rP and writes to JUnit's system-out (with
            # junit_logging = system-out), bounded as `kvmrun test` bounds it.
            self.add_report_section("call", "stdout", system_out(outcome.result.serial))
        if not outcome.passed:
            raise GuestFailed(outcome)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, GuestFailed):
            return failure_report(excinfo.value.outcome)
        if isinstance(excinfo.value, PointFailed):
            return point_report(excinfo.value.point)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return self.path, None, f"guest {printable(self.spec.name)}"


def failure_report(outcome: GuestOutcome) -> str:
    """What `kvmrun test` prints under a failed guest's rule: why it has no result, or what differed with
    the serial tail, the screen and the fault report."""
    if outcome.error is not None:
        return printable(f"{outcome.ended}: {outcome.error}")
    assert outcome.result is not None
    return failure_text(outcome.result, outcome.problems, outcome.points)


def _report_points(item: GuestItem, points) -> None:
    """Each TAP/KTAP point as a subtest of the guest's item, where pytest has subtests (9.0 and later):
    reported as its `subtests` fixture reports them, so the terminal, -rA and xdist show each point.
    Without them, the item's own failure lists the failed points."""
    try:
        from _pytest.subtests import SubtestContext, SubtestReport
    except ImportError:
        return
    from _pytest.runner import CallInfo

    from .suite.tap import FAILED, SKIPPED
    capture = item.config.pluginmanager.get_plugin("capturemanager")
    for point in points:
        def result(point=point):
            if point.outcome == FAILED:
                raise PointFailed(point)
            if point.outcome == SKIPPED:
                pytest.skip(point.directive or "skipped")
        call = CallInfo.from_call(result, when="call")
        report = SubtestReport._new(item.ihook.pytest_runtest_makereport(item=item, call=call),
                                    SubtestContext(msg=point.name, kwargs={}), captured_output=None,
                                    captured_logs=None)
        # The terminal writes the point's progress letter: to the terminal, not into the item's capture.
        with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
            item.ihook.pytest_runtest_logreport(report=report)


def point_report(point) -> str:
    """A failed point's subtest report: as `kvmrun test` lists it under its guest."""
    return "\n".join(failed_point_lines(point))


def _properties(outcome: GuestOutcome):
    """JUnit's properties on each testcase, as `kvmrun test --junit-xml` writes them."""
    status = str(outcome.result.status) if outcome.result is not None else "-"
    return [("status", status), ("ended", outcome.ended)]
