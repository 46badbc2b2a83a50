"""JUnit XML as GitHub Actions, GitLab and Jenkins read it: one testcase per guest, and one per test
point (`guest/point`) of a guest whose TAP or KTAP output is read (`results`): a failure with its
diagnostics, or skipped with its directive. The guest's own testcase stays, failing for its failed
points and for what fails it as a whole (no plan, a crash mid-run).

Every text in it is bounded (text.py) and passed through xml_text: guests print anything, and names
and paths may hold control characters or bytes that are not UTF-8. The file is written whole or not at
all: a full disk or an interrupted run leaves the previous report as it was."""
import os
import socket
import stat
import tempfile
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from typing import List

from .runner import GuestOutcome
from .tap import TestPoint
from .text import failed_point_heading, failure_message, failure_text, screen_section, system_out, xml_text

__all__ = ["junit_xml", "rename_target", "write_junit", "write_whole", "written_in_place", "xml_text"]


def junit_xml(outcomes: List[GuestOutcome], suite: str, elapsed: float) -> ET.Element:
    points = [point for o in outcomes for point in o.points]
    failures = sum(1 for o in outcomes if not o.passed and o.error is None) + \
        sum(1 for point in points if point.outcome == "failed")
    errors = sum(1 for o in outcomes if o.error is not None)
    skipped = sum(1 for point in points if point.outcome == "skipped")
    counts = {"tests": str(len(outcomes) + len(points)), "failures": str(failures), "errors": str(errors),
              "skipped": str(skipped), "time": f"{elapsed:.3f}"}
    root = ET.Element("testsuites", {"name": "kvmrun", **counts})
    testsuite = ET.SubElement(root, "testsuite", {
        "name": xml_text(suite), "hostname": xml_text(socket.gethostname()),
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"), **counts})
    for outcome in outcomes:
        case = ET.SubElement(testsuite, "testcase", name=xml_text(outcome.spec.name), classname=xml_text(suite),
                             time=f"{outcome.elapsed:.3f}", file=xml_text(outcome.spec.image))
        result = outcome.result
        properties = ET.SubElement(case, "properties")    # how it ended, for passes too
        for name, value in (("status", str(result.status) if result is not None else "-"),
                            ("ended", outcome.ended)):
            ET.SubElement(properties, "property", name=name, value=value)
        stats = result.stats if result is not None else None
        if stats is not None:                 # `stats = true`: the exits, for CI dashboards to plot
            for name, count in (("exits", stats.exits), ("exits_handled_by_kvm", stats.handled_by_kvm)):
                ET.SubElement(properties, "property", name=name, value=str(count))
        if outcome.error is not None:
            message = xml_text(outcome.error)
            ET.SubElement(case, "error", message=message, type="KvmrunError").text = message
        elif not outcome.passed:
            failure = ET.SubElement(case, "failure", message=xml_text(failure_message(result, outcome.problems)),
                                    type="GuestFailure")
            failure.text = xml_text(failure_text(result, outcome.problems, outcome.points))
        if result is not None:
            screen = screen_section(result)
            ET.SubElement(case, "system-out").text = system_out(result.serial) + (
                "\n" + xml_text(screen) if screen else "")
        for point in outcome.points:
            _point_case(testsuite, outcome, point, suite)
    ET.indent(root)
    return root


def _point_case(testsuite: ET.Element, outcome: GuestOutcome, point: TestPoint, suite: str) -> None:
    """A test point's testcase, `guest/point`: its time is its guest's, which it does not know apart."""
    case = ET.SubElement(testsuite, "testcase", name=xml_text(f"{outcome.spec.name}/{point.name}"),
                         classname=xml_text(suite), time="0.000", file=xml_text(outcome.spec.image))
    if point.outcome == "failed":
        message = failed_point_heading(point)
        failure = ET.SubElement(case, "failure", message=xml_text(message), type="TestPointFailure")
        failure.text = xml_text(point.diagnostics or "(no diagnostics)")
    elif point.outcome == "skipped":
        ET.SubElement(case, "skipped", message=xml_text(point.directive))


def write_junit(path: str, outcomes: List[GuestOutcome], suite: str, elapsed: float) -> None:
    data = ET.tostring(junit_xml(outcomes, suite, elapsed), encoding="utf-8", xml_declaration=True)
    write_whole(path, data)


def written_in_place(path: str) -> bool:
    """Whether `path` is something there is no file to replace in: a device, a pipe, /dev/stdout or
    /proc/self/fd/N on a pipe, a process substitution. Those are opened and written as they are; their
    real path may name nothing one could create a file beside (/proc/<pid>/fd/pipe:[N])."""
    try:
        mode = os.stat(path).st_mode            # follows /proc's links to what they stand for
    except OSError:
        return False                            # not there yet: a new file
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def rename_target(path: str) -> str:
    """Where a regular or new file at `path` is renamed into place: through symlinks, so a link to
    the report stays a link."""
    return os.path.realpath(path)


def write_whole(path: str, data: bytes) -> None:
    """`data` as the file at `path`, or OSError and the file as it was: a temporary file in the same
    folder, renamed over it. A device or a pipe (/dev/stdout) is written in place: there is no file
    to replace, and a rename would replace the device node itself."""
    if written_in_place(path):
        with open(path, "wb") as stream:
            stream.write(data)
        return
    target = rename_target(path)
    fd, temporary = tempfile.mkstemp(dir=os.path.dirname(target), prefix=f".{os.path.basename(target)}.",
                                     suffix=".tmp")
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fchmod(fd, 0o666 & ~_umask())     # as open() would have made it, not mkstemp's 0600
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, target)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
