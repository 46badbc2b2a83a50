"""JUnit XML as GitHub Actions, GitLab and Jenkins read it: one testcase per guest."""
import re
import socket
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from typing import List

from .runner import GuestOutcome

# Characters XML 1.0 cannot carry even escaped; guests print anything.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(data) -> str:
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def junit_tree(outcomes: List[GuestOutcome], suite: str, elapsed: float) -> ET.ElementTree:
    failures = sum(1 for o in outcomes if not o.passed and o.error is None)
    errors = sum(1 for o in outcomes if o.error is not None)
    counts = {"tests": str(len(outcomes)), "failures": str(failures), "errors": str(errors),
              "skipped": "0", "time": f"{elapsed:.3f}"}
    root = ET.Element("testsuites", name="kvmrun", **counts)
    testsuite = ET.SubElement(root, "testsuite", name=suite, hostname=socket.gethostname(),
                              timestamp=datetime.now(timezone.utc).isoformat(timespec="seconds"), **counts)
    for outcome in outcomes:
        case = ET.SubElement(testsuite, "testcase", name=outcome.spec.name, classname=suite,
                             time=f"{outcome.elapsed:.3f}", file=outcome.spec.image)
        if outcome.error is not None:
            ET.SubElement(case, "error", message=xml_text(outcome.error), type="KvmrunError").text = \
                xml_text(outcome.error)
        elif not outcome.passed:
            failure = ET.SubElement(case, "failure", message=xml_text("; ".join(outcome.problems)),
                                    type="GuestFailure")
            failure.text = xml_text(outcome.result.explain(outcome.problems))
        if outcome.result is not None:
            ET.SubElement(case, "system-out").text = xml_text(outcome.result.serial)
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(path: str, outcomes: List[GuestOutcome], suite: str, elapsed: float) -> None:
    junit_tree(outcomes, suite, elapsed).write(path, encoding="utf-8", xml_declaration=True)
