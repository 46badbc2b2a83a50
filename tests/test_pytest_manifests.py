"""pytest collecting manifests: one item per guest, run by `kvmrun test`'s own core, under plain pytest
and pytest-xdist (local workers, load groups, popen gateways), with -k, -m, -x, --lf and --junitxml."""
import re
import shutil
import sys
import xml.etree.ElementTree as ET

import pytest

from conftest import guest

pytestmark = pytest.mark.kvm

MIXED = '''
[defaults]
timeout = 10

[[guest]]
name = "hello"
image = "hello64.elf"
expect_serial = "^Hello from long mode"
markers = ["smoke"]

[[guest]]
name = "says goodbye"
image = "hello64.elf"
expect_serial = "^Goodbye"

[[guest]]
name = "spins"
image = "spin64.elf"
timeout = 0.3
expect_reason = "timeout"

[[guest]]
name = "triple fault"
image = "triple64.elf"
markers = ["smoke", "faults"]
'''


def lay_out(pytester, manifest=MIXED, name="kvmrun.toml", extra_ini=""):
    for image in ("hello64.elf", "spin64.elf", "triple64.elf"):
        shutil.copy(guest(image), pytester.path / image)
    pytester.makefile(".toml", **{name.removesuffix(".toml"): manifest})
    pytester.makeini(f"[pytest]\nmarkers =\n    smoke: quick ones\n    faults: ends by a fault\n{extra_ini}")


def test_each_guest_is_an_item_named_by_the_guest_in_manifest_order(pytester):
    lay_out(pytester)
    result = pytester.runpytest_inprocess("--collect-only", "-q", "-p", "no:cacheprovider")
    ids = [line for line in result.outlines if "::" in line]
    assert ids == ["kvmrun.toml::hello", "kvmrun.toml::says goodbye", "kvmrun.toml::spins",
                   "kvmrun.toml::triple fault"]
    again = pytester.runpytest_inprocess("--collect-only", "-q", "-p", "no:cacheprovider")
    assert [line for line in again.outlines if "::" in line] == ids       # stable, for xdist's workers


def test_outcomes_and_failure_reports_are_kvmrun_tests(pytester):
    lay_out(pytester)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=2)
    out = result.stdout.str()
    # what differed, with how it ended, and the serial tail: kvmrun test's own failure text
    assert "exit status 0 (halted); serial output does not match '^Goodbye'" in out
    assert "--- serial output (last 20 lines, at most 4096 bytes) ---\nHello from long mode!" in out
    # a fault not expected: the fault report, with the instruction that faulted
    assert re.search(r"guest \S+triple64.elf: exit status 1 \(fault\)", out)
    assert "--- fault report ---" in out and "ud2" in out
    assert "Traceback" not in out and "pytest_manifest.py" not in out     # no traceback into kvmrun
    result.stdout.fnmatch_lines(["FAILED kvmrun.toml::says goodbye - *", "FAILED kvmrun.toml::triple fault - *"])


def test_k_and_m_select_guests_and_x_stops_at_the_first_failure(pytester):
    lay_out(pytester)
    pytester.runpytest_inprocess("-p", "no:cacheprovider", "-k", "spins or hello").assert_outcomes(passed=2)
    pytester.runpytest_inprocess("-p", "no:cacheprovider", "-m", "smoke").assert_outcomes(passed=1, failed=1)
    pytester.runpytest_inprocess("-p", "no:cacheprovider", "-m", "faults").assert_outcomes(failed=1)
    pytester.runpytest_inprocess("-p", "no:cacheprovider", "-x").assert_outcomes(passed=1, failed=1)


def test_lf_reruns_only_the_guests_that_failed(pytester):
    lay_out(pytester)
    pytester.runpytest_inprocess().assert_outcomes(passed=2, failed=2)
    rerun = pytester.runpytest_inprocess("--lf", "-v")
    rerun.assert_outcomes(failed=2)
    rerun.stdout.fnmatch_lines(["*kvmrun.toml::says goodbye FAILED*", "*kvmrun.toml::triple fault FAILED*"])


def test_junit_carries_the_guests_with_status_ended_and_serial(pytester):
    lay_out(pytester)
    pytester.runpytest_inprocess("-p", "no:cacheprovider", "--junitxml=report.xml",
                                 "-o", "junit_logging=system-out")
    cases = {case.get("name"): case for case in ET.parse(pytester.path / "report.xml").iter("testcase")}
    assert set(cases) == {"hello", "says goodbye", "spins", "triple fault"}
    assert all(case.get("classname") == "kvmrun.toml" for case in cases.values())

    def properties(name):
        return {p.get("name"): p.get("value") for p in cases[name].iter("property")}
    assert properties("hello") == {"status": "0", "ended": "halted"}
    assert properties("spins") == {"status": "124", "ended": "timeout"}
    assert properties("triple fault") == {"status": "1", "ended": "fault"}
    assert "Hello from long mode!" in cases["hello"].find("system-out").text
    failure = cases["says goodbye"].find("failure")
    assert "serial output does not match '^Goodbye'" in failure.get("message")
    assert cases["hello"].find("failure") is None and cases["spins"].find("failure") is None


def test_xdist_spreads_the_guests_with_the_same_outcomes(pytester):
    lay_out(pytester)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", timeout=120)
    result.assert_outcomes(passed=2, failed=2)
    assert "serial output does not match '^Goodbye'" in result.stdout.str()
    result.stdout.fnmatch_lines(["*2 workers*"])


WORKER_OF_EACH = '''
def pytest_runtest_logreport(report):
    if report.when == "call" and hasattr(report, "node"):      # in the controller: which worker sent it
        with open("workers.txt", "a") as out:
            out.write(f"{report.nodeid.split('@')[0]} {report.node.gateway.id}\\n")
'''


def grouped(count):
    return "".join(f'[[guest]]\nname = "shares a disk {i}"\nimage = "hello64.elf"\ngroup = "disk"\n\n'
                   f'[[guest]]\nname = "alone {i}"\nimage = "hello64.elf"\n\n' for i in range(count))


def test_loadgroup_keeps_a_group_on_one_worker(pytester):
    lay_out(pytester, grouped(10))
    pytester.makeconftest(WORKER_OF_EACH)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "--dist", "loadgroup", timeout=120)
    result.assert_outcomes(passed=20)
    ran_on = dict(line.rsplit(" ", 1) for line in (pytester.path / "workers.txt").read_text().splitlines())
    assert len(ran_on) == 20 and set(ran_on.values()) == {"gw0", "gw1"}       # both workers ran guests
    assert len({ran_on[f"kvmrun.toml::shares a disk {i}"] for i in range(10)}) == 1


def test_popen_gateways_run_guests_as_remote_hosts_would(pytester):
    """--tx is how xdist reaches other hosts (ssh=...); a popen gateway with its own interpreter takes
    the same path here: the worker collects the manifest itself and sends back plain reports."""
    lay_out(pytester)
    host = pytester.path / "elsewhere"                # the remote host's checkout: the same layout
    host.mkdir()
    for name in ("kvmrun.toml", "tox.ini", "hello64.elf", "spin64.elf", "triple64.elf"):
        shutil.move(pytester.path / name, host / name)
    shutil.copy(host / "kvmrun.toml", pytester.path / "kvmrun.toml")     # only the manifest here
    shutil.copy(host / "tox.ini", pytester.path / "tox.ini")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--dist", "load",
                                           "--tx", f"2*popen//chdir={host}//python={sys.executable}", timeout=120)
    result.assert_outcomes(passed=2, failed=2)
    out = result.stdout.str()
    assert "exit status 1 (fault)" in out and f"guest {host}/triple64.elf" in out      # ran on the worker's side


def test_names_are_ids_a_terminal_shows_and_never_obeys(pytester):
    lay_out(pytester, '[[guest]]\nname = "red \\u001b[31m"\nimage = "hello64.elf"\nexpect_serial = "nope"\n')
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    assert "\x1b" not in result.stdout.str()
    result.stdout.fnmatch_lines([r"FAILED kvmrun.toml::red \x1b[[]31m - *"])


def test_a_bad_manifest_is_a_one_line_collection_error(pytester):
    lay_out(pytester, '[[guest]]\nname = "x"\nimage = "hello64.elf"\ncpus = 0\n')
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*kvmrun.toml: guest 'x': 'cpus' must be at least 1, not 0*"])
    assert "Traceback" not in result.stdout.str() and "load_manifest" not in result.stdout.str()


def test_bad_group_and_markers_keys_are_refused(pytester):
    lay_out(pytester, '[[guest]]\nname = "x"\nimage = "hello64.elf"\nmarkers = ["not a name"]\n')
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*guest 'x': 'markers' must be a list of pytest mark names*"])
    (pytester.path / "kvmrun.toml").write_text('[[guest]]\nname = "x"\nimage = "hello64.elf"\ngroup = 3\n')
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*guest 'x': 'group' must be a non-empty string, not 3*"])


def test_other_manifests_come_from_the_ini_option_or_the_command_line(pytester):
    lay_out(pytester, name="guests.toml", extra_ini="kvmrun_manifests = suites/*.toml\n")
    (pytester.path / "pyproject.toml").write_text("[project]\nname = 'x'\n")        # never a manifest
    assert "guests.toml" not in pytester.runpytest_inprocess("--collect-only", "-q").stdout.str()
    pytester.runpytest_inprocess("-p", "no:cacheprovider", "guests.toml", "-k", "hello").assert_outcomes(passed=1)
    suites = pytester.mkdir("suites")
    shutil.move(pytester.path / "guests.toml", suites / "smoke.toml")
    for image in ("hello64.elf", "spin64.elf", "triple64.elf"):
        shutil.move(pytester.path / image, suites / image)
    collected = pytester.runpytest_inprocess("--collect-only", "-q").stdout.str()
    assert "suites/smoke.toml::hello" in collected and "pyproject" not in collected


def test_without_kvm_the_guests_are_skipped_or_failed_as_the_marker_says(pytester, monkeypatch, tmp_path):
    lay_out(pytester)
    monkeypatch.setenv("KVMRUN_KVM_DEVICE", str(tmp_path / "none"))
    monkeypatch.delenv("KVMRUN_REQUIRE_KVM", raising=False)
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(skipped=4)
    monkeypatch.setenv("KVMRUN_REQUIRE_KVM", "1")
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(errors=4)


TAP_GUESTS = '''
[[guest]]
name = "tap"
image = "tap64.elf"
results = "tap"

[[guest]]
name = "ktap"
image = "ktap64.elf"
results = "ktap"

[[guest]]
name = "crash"
image = "tapcrash64.elf"
results = "tap"
'''


def lay_out_tap(pytester):
    for image in ("tap64.elf", "ktap64.elf", "tapcrash64.elf"):
        shutil.copy(guest(image), pytester.path / image)
    pytester.makefile(".toml", kvmrun=TAP_GUESTS)


def test_a_tap_guest_fails_listing_its_failed_points_and_reports_each_point(pytester):
    lay_out_tap(pytester)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-v")
    out = result.stdout.str()
    assert "1 of 6 test points failed: adds" in out and "--- failed test points (1 of 6) ---" in out
    assert "wanted: 4" in out                                          # the point's YAML diagnostics
    assert "1 of 5 test points failed: example/example_fail" in out    # KTAP, nested
    assert "TAP: planned 3 test points, 1 reported" in out             # the crash mid-run
    if pytest.version_tuple >= (9, 0):         # pytest's own subtests: a line per point
        result.stdout.fnmatch_lines([
            "kvmrun.toml::tap SUBPASSED[[]boots[]]*", "kvmrun.toml::tap SUBFAILED[[]adds[]]*",
            "kvmrun.toml::tap SUBSKIPPED[[]disk[]] (SKIP no disk)*", "kvmrun.toml::tap SUBPASSED[[]memory/high[]]*",
            "kvmrun.toml::tap FAILED*",
            "kvmrun.toml::ktap SUBPASSED[[]example/example_params/value 1[]]*", "kvmrun.toml::ktap FAILED*",
            "kvmrun.toml::crash SUBPASSED[[]first[]]*", "kvmrun.toml::crash FAILED*"])
        assert "Captured stdout call -----\nu\n" not in out     # progress letters stay out of the capture
        # a failed point's own report: as kvmrun test lists it, with its YAML block
        result.stdout.fnmatch_lines(["*guest tap [[]adds[]]*", "not ok adds", "*---", "*wanted: 4"])


def test_tap_points_cross_xdist_workers(pytester):
    lay_out_tap(pytester)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "-q", timeout=120)
    out = result.stdout.str()
    assert "1 of 6 test points failed: adds" in out
    if pytest.version_tuple >= (9, 0):
        assert "5 failed, 4 skipped, 6 subtests passed" in out, out[-3000:]
