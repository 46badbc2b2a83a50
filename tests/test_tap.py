"""TAP and KTAP results (`results = "tap" | "ktap"`): the parser on recorded and hostile outputs, the
manifest key, the runner's verdict, and `kvmrun test` on guests of ours printing TAP and KTAP."""
import pickle
import re
import time
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings, strategies as st

from conftest import guest, run_kvmrun
from kvmrun.suite import tap
from kvmrun.suite.manifest import ManifestError, load_manifest
from kvmrun.suite.tap import TestPoint, TestResults, guest_problems, parse_results
from kvmrun.suite.text import failed_points_text


def points(serial, kind="tap"):
    """(name, outcome, directive) of each point, and the problems."""
    results = parse_results(serial.encode() if isinstance(serial, str) else serial, kind)
    return [(p.name, p.outcome, p.directive) for p in results.points], list(results.problems)


def by_name(serial, kind="tap"):
    return {p.name: p for p in parse_results(serial.encode(), kind).points}


# --- TAP 13 and 14 -----------------------------------------------------------------------------------

TAP14_SUBTESTS = """\
TAP version 14
1..2

# Subtest: foo.tap
    1..2
    ok 1
    ok 2 - this passed
ok 1 - foo.tap

# Subtest: bar.tap
    ok 1 - object should be a Bar
    not ok 2 - object.isBar should return true
      ---
      found: false
      wanted: true
      ...
    ok 3 - object can bar bears # TODO
    1..3
not ok 2 - bar.tap
  ---
  fail: 1
  todo: 1
  ...
"""


def test_the_tap14_specifications_subtest_example():
    found, problems = points(TAP14_SUBTESTS)
    assert found == [("foo.tap/1", "passed", ""), ("foo.tap/this passed", "passed", ""),
                     ("bar.tap/object should be a Bar", "passed", ""),
                     ("bar.tap/object.isBar should return true", "failed", ""),
                     ("bar.tap/object can bar bears", "passed", "TODO")]
    assert problems == []
    failed = by_name(TAP14_SUBTESTS)["bar.tap/object.isBar should return true"]
    assert failed.diagnostics == "  ---\n  found: false\n  wanted: true\n  ...", "its YAML block, as printed"
    assert failed.path == ("bar.tap", "object.isBar should return true")


def test_plan_first_or_last_and_unnumbered_points():
    assert points("TAP version 13\nok 1 - a\nnot ok 2 - b\n1..2\n") == \
        ([("a", "passed", ""), ("b", "failed", "")], [])
    assert points("1..3\nok\nnot ok\nok - third\n") == \
        ([("1", "passed", ""), ("2", "failed", ""), ("third", "passed", "")], [])


def test_directives_skip_and_todo_in_any_case_with_their_reasons():
    found, problems = points("TAP version 14\n1..6\nok 1 - a # SKIP no disk\nnot ok 2 - b # skip\n"
                             "not ok 3 - c # TODO not yet\nok 4 - d # todo\nok 5 - e # Skipped: on windows only\n"
                             "ok 6 - f #SkIp case\n")
    assert found == [("a", "skipped", "SKIP no disk"), ("b", "skipped", "SKIP"), ("c", "skipped", "TODO not yet"),
                     ("d", "passed", "TODO"), ("e", "skipped", "SKIP on windows only"), ("f", "skipped", "SKIP case")]
    assert problems == []


def test_a_directive_needs_whitespace_before_its_hash_and_escapes_are_undone():
    found, _ = points("1..4\nok 1 - not skipped: https://example.com/page.html#skip is a url\n"
                      "ok 2 - hello \\# todo\nok 3 - a \\\\ b\nok 4 - n # rcode=0\n")
    assert found == [("not skipped: https://example.com/page.html#skip is a url", "passed", ""),
                     ("hello # todo", "passed", ""), ("a \\ b", "passed", ""), ("n", "passed", "")]
    assert by_name("1..1\nnot ok 1 - n # rcode=1\n")["n"].diagnostics == "# rcode=1", "not a directive: a diagnostic"


def test_a_failures_diagnostics_are_the_lines_after_it_in_tap():
    serial = ("TAP version 13\n1..2\nnot ok 1 - first\n#   Failed test 'first'\n#   at t/x.t line 5.\n"
              "got: 3\nok 2 - second\n# not about 1\n")
    assert by_name(serial)["first"].diagnostics == "#   Failed test 'first'\n#   at t/x.t line 5.\ngot: 3"
    assert by_name(serial)["second"].diagnostics == "", "kept for the points that did not pass"


def test_boot_chatter_crlf_cr_and_lines_that_are_not_tap():
    serial = ("SeaBIOS (version 1.16)\r\nok 99 - chatter is not read\r\nTAP version 14\r\n1..2\r\n"
              "some log line\r\nok 1 - a\rnot ok 2 - b\r\nmore log\r\n")
    assert points(serial) == ([("a", "passed", ""), ("b", "failed", "")], [])


def test_a_crash_mid_run_a_missing_plan_and_no_tap_at_all_fail_the_guest():
    assert points("TAP version 14\n1..4\nok 1\nok 2\n")[1] == ["planned 4 test points, 2 reported"]
    assert points("TAP version 14\nok 1\nok 2\n")[1] == ["no plan (1..N): 2 test points reported, none announced"]
    assert points("Hello from long mode!\n")[1] == ["no plan and no test point, nor a version line"]
    assert points("TAP version 14\n")[1] == ["no plan and no test point"]
    assert points(b"")[1] == ["no plan and no test point, nor a version line"]


def test_a_skipped_plan_is_no_failure():
    assert points("TAP version 14\n1..0 # skip no network\n") == ([], [])
    assert points("1..0\nok 1\n")[1] == ["planned 0 test points, 1 reported"]


def test_bail_out_stops_reading_and_fails_the_guest():
    found, problems = points("TAP version 14\n1..573\nnot ok 1 - database handle\n"
                             "Bail out! Couldn't connect to database.\nok 2 - never read\n")
    assert found == [("database handle", "failed", "")]
    assert problems == ["line 4: bailed out: Couldn't connect to database."]
    assert points("1..2\n# Subtest: s\n    ok 1\n    bail out!\n")[1] == ["line 4: bailed out"]


def test_numbers_reported_twice_or_outside_the_plan():
    found, problems = points("TAP version 14\n1..3\nok 1 - a\nok 1 - a\nok 3\n")
    assert [name for name, _, _ in found] == ["a", "a (2)", "3"], "names unique among siblings"
    assert problems == ["line 4: test point 1 reported twice"]
    assert points("1..3\nok 2\nok 3\nok 1\n")[1] == [], "TAP14: any order"
    assert points("1..3\nok 2\nok 4\nok 1\n")[1] == ["test point 4 is outside the plan 1..3"]


def test_a_second_plan_and_points_after_a_final_plan():
    assert points("1..1\nok 1\n1..1\n")[1] == ["line 3: a second plan 1..1"]
    assert points("ok 1\n1..1\nok 2\n")[1] == ["line 3: a test point after the plan 1..1 that followed the points",
                                                "planned 1 test point, 2 reported"]


def test_a_parent_is_a_point_only_when_it_fails_on_its_own():
    serial = "1..2\n    1..1\n    ok 1 - inner\nnot ok 1 - outer\n    1..1\n    not ok 1 - x\nnot ok 2 - both\n"
    assert points(serial)[0] == [("outer/inner", "passed", ""), ("outer", "failed", ""), ("both/x", "failed", "")]


def test_a_subtest_without_its_result_line_and_output_ending_inside_one():
    found, problems = points("TAP version 14\n1..2\n# Subtest: s\n    1..1\n    ok 1 - a\n1..1\n")
    assert found == [("s/a", "passed", "")]
    assert problems == ["line 6: a second plan 1..1", "line 4: subtest 's' has no result line",
                        "planned 2 test points, 0 reported"]
    found, problems = points("TAP version 14\n1..1\n# Subtest: s\n    1..3\n    ok 1 - a\n")
    assert found == [("s/a", "passed", "")]
    assert problems == ["the output ended in subtest 's'", "planned 1 test point, 0 reported"]
    assert points("1..1\n# Subtest: s\n    ok 1\nok 1 - t\n")[1] == ["line 4: subtest 's' ended by the result of 't'"]


# --- KTAP ---------------------------------------------------------------------------------------------

KTAP_RST_EXAMPLE = """\
KTAP version 1
1..1
  KTAP version 1
  1..3
    KTAP version 1
    1..1
    # test_1: initializing test_1
    ok 1 test_1
  ok 1 example_test_1
    KTAP version 1
    1..2
    ok 1 test_1 # SKIP test_1 skipped
    ok 2 test_2
  ok 2 example_test_2
    KTAP version 1
    1..3
    ok 1 test_1
    # test_2: FAIL
    not ok 2 test_2
    ok 3 test_3 # SKIP test_3 skipped
  not ok 3 example_test_3
not ok 1 main_test
"""


def test_the_ktap_documents_example_nested_two_spaces_a_level():
    found, problems = points(KTAP_RST_EXAMPLE, "ktap")
    assert found == [("main_test/example_test_1/test_1", "passed", ""),
                     ("main_test/example_test_2/test_1", "skipped", "SKIP test_1 skipped"),
                     ("main_test/example_test_2/test_2", "passed", ""),
                     ("main_test/example_test_3/test_1", "passed", ""),
                     ("main_test/example_test_3/test_2", "failed", ""),
                     ("main_test/example_test_3/test_3", "skipped", "SKIP test_3 skipped")]
    assert problems == []
    assert by_name(KTAP_RST_EXAMPLE, "ktap")["main_test/example_test_3/test_2"].diagnostics == "# test_2: FAIL", \
        "KTAP: the lines before its result line"


KUNIT = """\
[    0.301000] Run /init as init process
[    0.412345] KTAP version 1
[    0.412346] 1..1
[    0.412347]     KTAP version 1
[    0.412348]     # Subtest: example
[    0.412349]     # module: kunit_example_test
[    0.412350]     1..3
[    0.412351]     # example_simple_test: initializing
[    0.412352]     ok 1 example_simple_test
[    0.412353]     # example_fail_test: EXPECTATION FAILED at lib/kunit/kunit-example-test.c:38
[    0.412354]     Expected 1 + 1 == 3, but
[    0.412355]         1 + 1 == 2 (0x2)
[    0.412356]     not ok 2 example_fail_test
[    0.412357]         KTAP version 1
[    0.412358]         # Subtest: example_params_test
[    0.412359]         ok 1 example value 3 # SKIP unsupported
[    0.412360]         ok 2 example value 2
[    0.412361]     # example_params_test: pass:1 fail:0 skip:1 total:2
[    0.412362]     ok 3 example_params_test
[    0.412363] # example: pass:2 fail:1 skip:0 total:3
[    0.412364] not ok 1 example
[   10.000000] reboot: System halted
"""


def test_kunit_on_a_kernel_console_timestamps_and_parameterised_cases_without_a_plan():
    found, problems = points(KUNIT, "ktap")
    assert found == [("example/example_simple_test", "passed", ""), ("example/example_fail_test", "failed", ""),
                     ("example/example_params_test/example value 3", "skipped", "SKIP unsupported"),
                     ("example/example_params_test/example value 2", "passed", "")]
    assert problems == []
    assert by_name(KUNIT, "ktap")["example/example_fail_test"].diagnostics == (
        "# example_fail_test: EXPECTATION FAILED at lib/kunit/kunit-example-test.c:38\n"
        "Expected 1 + 1 == 3, but\n    1 + 1 == 2 (0x2)")


def test_ktap_directives_xfail_timeout_error():
    found, problems = points("KTAP version 1\n1..4\nok 1 a # XFAIL known bug\nnot ok 2 b # TIMEOUT 30 seconds\n"
                             "not ok 3 c # ERROR no device\nok 4 d # TODO\n", "ktap")
    assert found == [("a", "skipped", "XFAIL known bug"), ("b", "failed", "TIMEOUT 30 seconds"),
                     ("c", "failed", "ERROR no device"), ("d", "passed", "TODO")]
    assert problems == []
    assert points("TAP version 14\n1..1\nok 1 a # XFAIL\n")[0] == [("a", "passed", "")], "TAP does not know XFAIL"


def test_ktap_numbers_count_up_by_one_and_the_version_line_is_required():
    assert points("KTAP version 1\n1..2\nok 2 a\nok 1 b\n", "ktap")[1] == [
        "line 3: test point 2 out of sequence (expected 1)", "line 4: test point 1 out of sequence (expected 2)"]
    assert points("  KTAP version 1\n  1..2\n    KTAP version 1\n    ok 1 x\n    ok 3 y\n  ok 1 s\n  ok 2 t\n",
                  "ktap")[1] == ["line 5 in subtest 'at line 3': test point 3 out of sequence (expected 2)"]
    assert points("1..1\nok 1 a\n", "ktap")[1] == ["no 'KTAP version 1' line before the results"]


# --- hostile output: bounded time, memory and text -----------------------------------------------------

def test_every_bound_holds_and_is_said():
    many = "TAP version 14\n" + "ok\n" * (tap.MAX_POINTS + 5) + f"1..{tap.MAX_POINTS + 5}\n"
    results = parse_results(many.encode(), "tap")
    assert len(results.points) == tap.MAX_POINTS
    assert results.problems == (f"more than {tap.MAX_POINTS} test points: the rest are not reported",)

    deep = "TAP version 14\n1..1\n" + "".join(" " * (4 * level) + "ok 1\n" for level in range(1, 31))
    results = parse_results(deep.encode(), "tap")
    assert f"line {2 + tap.MAX_DEPTH}: subtests nested deeper than {tap.MAX_DEPTH} levels: the deeper lines were " \
           "not read as TAP" in results.problems
    assert max(len(point.path) for point in results.points) == tap.MAX_DEPTH

    long_name = parse_results(b"1..1\nnot ok 1 " + b"n" * 100_000 + b" # TODO " + b"r" * 100_000 + b"\n", "tap")
    (point,) = long_name.points
    assert len(point.name) == tap.NAME_CHARS and len(point.directive) <= tap.NAME_CHARS + 5

    chatty = b"KTAP version 1\n1..1\n" + b"# a diagnostic line\n" * 100_000 + b"not ok 1 x\n"
    (point,) = parse_results(chatty, "ktap").points
    assert len(point.diagnostics) <= tap.DIAGNOSTIC_CHARS + 60
    assert point.diagnostics.startswith("[... ") and point.diagnostics.endswith("# a diagnostic line"), \
        "KTAP keeps the last lines, the ones nearest the result"

    failing = b"TAP version 14\n" + (b"not ok\n" + b"x" * 900 + b"\n") * 5000 + b"1..5000\n"
    results = parse_results(failing, "tap")
    assert sum(len(p.diagnostics) for p in results.points) <= tap.ALL_DIAGNOSTIC_CHARS

    problems = parse_results(b"TAP version 14\n" + b"ok 1\n" * 100, "ktap").problems
    assert len(problems) == tap.MAX_PROBLEMS + 1 and problems[-1].startswith("... and ")


@pytest.mark.parametrize("serial", [
    b"\n" * (tap.MAX_BYTES + 1),
    b"\r" * tap.MAX_BYTES,
    b"TAP version 14\n" + b"ok\n" * (tap.MAX_BYTES // 3),
    b"ok 1 " + b"a#" * (tap.MAX_BYTES // 2),
    b"ok " + b"1" * tap.MAX_BYTES,
    b" " * tap.MAX_BYTES + b"ok 1",
    b"TAP version 14 " * (tap.MAX_BYTES // 15),
    b"TAP version 14\n" + b"    ok 1\n    1..1\nok 1\n" * (tap.MAX_BYTES // 24),
    b"[ 0.1] KTAP version 1\n" + b"[ 0.1]  \t  not ok 1 x\n  ---\n" * (tap.MAX_BYTES // 32),
], ids=["newlines", "carriage-returns", "results", "hashes", "digits", "spaces", "version-flood", "subtests",
        "timestamps-yaml"])
@pytest.mark.parametrize("kind", ["tap", "ktap"])
def test_hostile_floods_are_read_in_bounded_time(serial, kind):
    start = time.perf_counter()
    results = parse_results(serial, kind)
    assert time.perf_counter() - start < 30       # a few seconds on a slow, shared host; minutes when quadratic
    assert len(results.points) <= tap.MAX_POINTS and len(results.problems) <= tap.MAX_PROBLEMS + 1


def test_over_the_byte_bound_is_a_problem():
    results = parse_results(b"TAP version 14\n1..1\nok 1\n" + b"#" * tap.MAX_BYTES, "tap")
    assert results.problems == (f"serial output longer than {tap.MAX_BYTES >> 20} MiB: only the first "
                                f"{tap.MAX_BYTES >> 20} MiB were read for test points",)
    lines = parse_results(b"TAP version 14\n1..1\n" + b"\n" * tap.MAX_LINES + b"ok 1\n", "tap").problems
    assert lines[0] == f"more than {tap.MAX_LINES} lines after the version line: the rest were not read for test points"


def test_bytes_that_are_not_utf8_and_control_characters():
    found, problems = points(b"TAP version 14\n1..1\nnot ok 1 - caf\xe9 \x1b[2J\n")
    assert found == [("caf\ufffd \x1b[2J", "failed", "")] and problems == []


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="results must be one of 'tap', 'ktap', not 'junit'"):
        parse_results(b"", "junit")


def _check_invariants(results: TestResults):
    assert isinstance(results, TestResults)
    assert len(results.points) <= tap.MAX_POINTS
    assert len({p.path for p in results.points}) == len(results.points), "every point's path is its own"
    for point in results.points:
        assert point.outcome in ("passed", "failed", "skipped")
        assert point.path and all(0 < len(name) <= tap.NAME_CHARS for name in point.path)
        assert len(point.path) <= tap.MAX_DEPTH
        assert len(point.diagnostics) <= tap.DIAGNOSTIC_CHARS + 60
        assert point.outcome != "passed" or point.diagnostics == ""
    assert len(results.problems) <= tap.MAX_PROBLEMS + 1
    assert sum(len(p.diagnostics) for p in results.points) <= tap.ALL_DIAGNOSTIC_CHARS
    assert results.failed == tuple(p for p in results.points if p.outcome == "failed")
    assert pickle.loads(pickle.dumps(results)) == results


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=2048), st.sampled_from(tap.KINDS))
def test_any_bytes_parse_without_error_within_the_bounds(serial, kind):
    _check_invariants(parse_results(serial, kind))


_FRAGMENTS = ["TAP version 14", "TAP version 13", "KTAP version 1", "1..0", "1..1", "1..3", "1..0 # skip why",
              "ok", "not ok", "ok 1", "ok 2 - two", "not ok 3 three # TODO later", "ok 1 x # SKIP", "ok 1 - x",
              "not ok 2 y # TIMEOUT", "ok 1 y # XFAIL", "# Subtest: s", "# Subtest", "# diag", "---", "...",
              "  ---", "  ...", "Bail out!", "bail out! why", "x: 1", "", " ", "\t", "ok 1 \\# h", "ok 1 - ",
              "[    0.1] KTAP version 1", "pragma +strict", "ok 99999999999999 n", "1..99999999999", "ok 1 a#b"]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.sampled_from(_FRAGMENTS)), max_size=60),
       st.sampled_from(["\n", "\r\n", "\r"]), st.sampled_from(tap.KINDS))
def test_tap_shaped_noise_parses_within_the_bounds(lines, newline, kind):
    text = newline.join(" " * (2 * level) + fragment for level, fragment in lines)
    _check_invariants(parse_results(text.encode(), kind))


# A well-formed run rendered from a tree of tests reads back as exactly those points, with no problem.
_NAMES = st.text(alphabet="abcxyz_019 .:/()", min_size=1, max_size=12).map(str.strip).filter(
    lambda name: name and not name[0].isdigit() and not name.startswith(("-", ".", "(")) and " (" not in name)
_LEAF = st.tuples(st.sampled_from([("ok", "", "passed"), ("not ok", "", "failed"), ("ok", " # SKIP no disk", "skipped"),
                                   ("not ok", " # TODO later", "skipped"), ("ok", " # TODO done", "passed")]))
_TREE = st.recursive(_LEAF, lambda children: st.lists(children, min_size=1, max_size=4).map(tuple), max_leaves=20)


def _render(tree, kind, level, plan_last, names, out, expected, path):
    """Lines for a list of tests at `level`; `expected` gets the points they should read as."""
    pad = "    " * level
    if kind == "ktap":
        out.append(pad + "KTAP version 1")
    if not plan_last:
        out.append(f"{pad}1..{len(tree)}")
    failed_any = False
    for number, (node, name) in enumerate(zip(tree, names), 1):
        if isinstance(node[0], tuple) and isinstance(node[0][0], str) and len(node) == 1:     # a leaf
            result, directive, outcome = node[0]
            if outcome == "failed" and kind == "ktap":
                out.append(f"{pad}# {name}: failed")
            out.append(f"{pad}{result} {number} {'- ' if kind == 'tap' else ''}{name}{directive}")
            if outcome == "failed" and kind == "tap":
                out.append(f"{pad}# {name}: failed")
            expected.append((path + (name,), outcome, directive.removeprefix(" # ")))
            failed_any |= outcome == "failed"
        else:
            if kind == "tap":
                out.append(f"{pad}# Subtest: {name}")
            child_names = [f"{name}{index}" for index in range(len(node))]
            child_failed = _render(node, kind, level + 1, plan_last, child_names, out, expected, path + (name,))
            out.append(f"{pad}{'not ok' if child_failed else 'ok'} {number} {name}")
            failed_any |= child_failed
    if plan_last:
        out.append(f"{pad}1..{len(tree)}")
    return failed_any


@settings(max_examples=300, deadline=None)
@given(st.lists(_TREE, min_size=1, max_size=5), st.lists(_NAMES, min_size=5, max_size=5, unique=True),
       st.sampled_from(tap.KINDS), st.booleans(), st.sampled_from(["\n", "\r\n"]))
def test_well_formed_runs_read_back_as_their_points(tree, names, kind, plan_last, newline):
    lines, expected = ["booting...", "TAP version 14" if kind == "tap" else "KTAP version 1"], []
    plan_last = plan_last and kind == "tap"
    _render_top(tree, kind, plan_last, names, lines, expected)
    results = parse_results(newline.join(lines).encode(), kind)
    assert [(p.path, p.outcome, p.directive) for p in results.points] == expected, "\n".join(lines)
    assert results.problems == ()
    for point in results.failed:
        assert point.diagnostics == f"# {point.path[-1]}: failed"


def _render_top(tree, kind, plan_last, names, lines, expected):
    body: list = []
    _render(tree, kind, 0, plan_last, names, body, expected, ())
    lines += body[1:] if kind == "ktap" else body     # the top level's version line is already there


# --- what the guest's verdict says ----------------------------------------------------------------------

def test_guest_problems_name_the_failed_points_and_the_formats_problems():
    results = TestResults((TestPoint(("a", "b"), "failed"), TestPoint(("c",), "passed"), TestPoint(("d",), "failed")),
                          ("planned 4 test points, 3 reported",))
    assert guest_problems(results, "tap") == ("2 of 3 test points failed: a/b, d",
                                              "TAP: planned 4 test points, 3 reported")
    many = TestResults(tuple(TestPoint((f"test_{i:03}",), "failed") for i in range(100)), ())
    (problem,) = guest_problems(many, "ktap")
    assert problem.startswith("100 of 100 test points failed: test_000, test_001, ") and len(problem) < 400
    assert re.search(r"test_0\d\d and \d+ more$", problem)
    assert guest_problems(TestResults((TestPoint(("a",), "passed"),), ()), "tap") == ()


def test_the_failed_points_text_is_bounded_and_printable():
    point = TestPoint(("suite", "case\x1b[31m"), "failed", "TIMEOUT 30 s", "\n".join(f"line {i}" for i in range(50)))
    text = failed_points_text([point, TestPoint(("ok",), "passed")])
    assert text.splitlines()[:3] == ["--- failed test points (1 of 2) ---", "not ok suite/case\\x1b[31m # TIMEOUT 30 s",
                                     "    line 0"]
    assert text.endswith("    line 11\n    [... 38 more lines not shown ...]")
    many = failed_points_text([TestPoint((f"t{i}",), "failed", "x" * 5000) for i in range(100)])
    assert len(many) < 12_000 and many.endswith("more failed test points not shown ...]")
    assert failed_points_text([TestPoint(("ok",), "passed")]) == ""


# --- the manifest key ---------------------------------------------------------------------------------

def _manifest(tmp_path, text):
    (tmp_path / "g.bin").write_bytes(b"\xf4")
    path = tmp_path / "kvmrun.toml"
    path.write_text(text)
    return str(path)


def test_results_in_a_guest_or_in_defaults(tmp_path):
    path = _manifest(tmp_path, '[defaults]\nresults = "ktap"\n[[guest]]\nname = "a"\nimage = "g.bin"\n'
                               '[[guest]]\nname = "b"\nimage = "g.bin"\nresults = "tap"\n'
                               '[[guest]]\nname = "c"\nimage = "g.bin"\n')
    assert [spec.results for spec in load_manifest(path)] == ["ktap", "tap", "ktap"]
    (spec,) = load_manifest(_manifest(tmp_path, '[[guest]]\nname = "a"\nimage = "g.bin"\n'))
    assert spec.results is None


@pytest.mark.parametrize("value, shown", [('"junit"', "'junit'"), ('"TAP"', "'TAP'"), ("1", "1"), ("true", "True"),
                                          ('["tap"]', "['tap']")])
def test_a_bad_results_value_is_a_one_line_manifest_error(tmp_path, value, shown):
    path = _manifest(tmp_path, f'[[guest]]\nname = "a"\nimage = "g.bin"\nresults = {value}\n')
    with pytest.raises(ManifestError) as err:
        load_manifest(path)
    assert str(err.value) == f"{path}: guest 'a': 'results' must be one of 'tap', 'ktap', not {shown}"
    result = run_kvmrun("test", path)
    assert result.returncode == 2 and result.stderr.decode().count("\n") == 1


# --- kvmrun test on guests printing TAP and KTAP --------------------------------------------------------

def _suite(tmp_path):
    path = tmp_path / "tap.toml"
    path.write_text(f'''
[defaults]
memory = "32M"
timeout = 20

[[guest]]
name = "tap"
image = "{guest("tap64.elf")}"
results = "tap"

[[guest]]
name = "ktap"
image = "{guest("ktap64.elf")}"
results = "ktap"

[[guest]]
name = "crash"
image = "{guest("tapcrash64.elf")}"
results = "tap"

[[guest]]
name = "no-tap"
image = "{guest("hello64.elf")}"
results = "tap"

[[guest]]
name = "plain"
image = "{guest("hello64.elf")}"
''')
    return str(path)


def _rows(out):
    """The results table's rows as (first column, second column)."""
    table = out[out.index("┡"):out.index("└")]
    return [tuple(cell.strip() for cell in line.split("│")[1:3]) for line in table.splitlines() if line.startswith("│")]


@pytest.mark.kvm
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_kvmrun_test_reports_each_point_in_the_table_and_junit(tmp_path, jobs):
    junit = tmp_path / "report.xml"
    result = run_kvmrun("test", _suite(tmp_path), "--jobs", jobs, "--junit-xml", junit, env={"COLUMNS": "200"})
    out = result.stdout.decode()
    assert result.returncode == 1, out + result.stderr.decode()
    assert _rows(out) == [
        ("tap", "FAIL"), ("tap/boots", "PASS"), ("tap/adds", "FAIL"), ("tap/disk", "SKIP"), ("tap/frobnicates", "SKIP"),
        ("tap/memory/low", "PASS"), ("tap/memory/high", "PASS"),
        ("ktap", "FAIL"), ("ktap/example/example_pass", "PASS"), ("ktap/example/example_fail", "FAIL"),
        ("ktap/example/example_params/value 1", "PASS"), ("ktap/example/example_params/value 2", "SKIP"),
        ("ktap/other/other_case", "SKIP"),
        ("crash", "FAIL"), ("crash/first", "PASS"),
        ("no-tap", "FAIL"),
        ("plain", "PASS")]
    assert re.search(r"│ tap/disk +│ SKIP +│ +│ SKIP no disk +│", out)
    assert "exit status 0 (halted); 1 of 6 test points failed: adds" in out
    assert "not ok adds\n      ---\n      wanted: 4\n      found: 5\n      ...\n" in out
    assert "1 of 5 test points failed: example/example_fail" in out
    assert "not ok example/example_fail\n    # example_fail: EXPECTATION FAILED at example.c:42\n" in out
    assert "exit status 1 (fault), expected 0; TAP: planned 3 test points, 1 reported" in out
    assert "exit status 0 (halted); TAP: no plan and no test point, nor a version line" in out
    assert "1 passed, 4 failed (test points: 6 passed, 2 failed, 4 skipped) in " in out

    suite = ET.parse(junit).getroot().find("testsuite")
    assert {name: suite.get(name) for name in ("tests", "failures", "errors", "skipped")} == \
        {"tests": "17", "failures": "6", "errors": "0", "skipped": "4"}
    cases = {case.get("name"): case for case in suite.findall("testcase")}
    assert list(cases)[:8] == ["tap", "tap/boots", "tap/adds", "tap/disk", "tap/frobnicates", "tap/memory/low",
                               "tap/memory/high", "ktap"]
    adds = cases["tap/adds"].find("failure")
    assert (adds.get("message"), adds.get("type"), adds.text) == \
        ("not ok adds", "TestPointFailure", "  ---\n  wanted: 4\n  found: 5\n  ...")
    assert cases["tap/disk"].find("skipped").get("message") == "SKIP no disk"
    assert cases["tap/frobnicates"].find("skipped").get("message") == "TODO not written yet"
    assert cases["tap/boots"].find("failure") is None and cases["tap/boots"].find("skipped") is None
    assert cases["ktap/example/example_fail"].find("failure").text == \
        "# example_fail: EXPECTATION FAILED at example.c:42\nExpected 1 == 2"
    assert cases["crash"].find("failure").get("message") == \
        "exit status 1 (fault), expected 0; TAP: planned 3 test points, 1 reported"
    assert cases["crash/first"].find("failure") is None
    assert "1 of 6 test points failed: adds" in cases["tap"].find("failure").get("message")
    assert cases["plain"].find("failure") is None


@pytest.mark.parametrize("serial, passed, problems", [
    (b"TAP version 14\n1..2\nok 1 - a\nok 2 - b # SKIP\n", True, ()),
    (b"TAP version 14\n1..2\nok 1 - a\nnot ok 2 - b\n", False, ("1 of 2 test points failed: b",)),
    (b"TAP version 14\n1..3\nok 1 - a\n", False, ("TAP: planned 3 test points, 1 reported",)),
])
def test_run_guest_fails_a_guest_for_its_failed_points_and_problems_only(monkeypatch, serial, passed, problems):
    """The runner core `kvmrun test` and the pytest items share, with the guest's run stubbed out."""
    from kvmrun import api
    from kvmrun.outcome import Reason
    from kvmrun.suite.manifest import GuestSpec
    from kvmrun.suite.runner import GuestOutcome, run_guest
    monkeypatch.setattr(api, "run_in_suite", lambda image, **options: api.Result(
        image=image, status=0, reason=Reason.HALTED, serial=serial, report=None, elapsed=0.01))
    outcome = run_guest(GuestSpec(name="g", image="/g.elf", results="tap"))
    assert (outcome.passed, outcome.problems) == (passed, problems)
    assert [p.name for p in outcome.points] == ["a", "b"][:len(outcome.points)]
    assert pickle.loads(pickle.dumps(outcome)) == outcome, "it crosses the workers' pipes"
    plain = run_guest(GuestSpec(name="g", image="/g.elf"))
    assert (plain.passed, plain.points) == (True, ()), "without `results`, the output is not read"
    assert GuestOutcome(plain.spec, True, 0.0).points == ()


def _outcome(points, passed=False):
    from kvmrun import api
    from kvmrun.outcome import Reason
    from kvmrun.suite.manifest import GuestSpec
    from kvmrun.suite.runner import GuestOutcome
    result = api.Result(image="/g.elf", status=0, reason=Reason.HALTED, serial=b"", report=None, elapsed=0.01)
    return GuestOutcome(GuestSpec(name="g\x1b[2J", image="/g.elf", results="ktap"), passed, 0.01, result=result,
                        problems=() if passed else ("x",), points=tuple(points))


def test_the_table_shows_every_failed_point_but_bounds_the_others_and_escapes_names():
    import io
    from rich.console import Console
    from kvmrun.suite.report import POINT_ROWS, show_summary
    many = [TestPoint((f"p{i}",), "failed" if i in (3, POINT_ROWS + 7) else "passed") for i in range(POINT_ROWS + 20)]
    many.append(TestPoint(("s\x07",), "skipped", "SKIP \x1b]0;title\x07"))
    stream = io.StringIO()
    show_summary(Console(file=stream, width=200), [_outcome(many)], 1.0)
    out = stream.getvalue()
    rows = _rows(out)
    assert rows[0] == ("g\\x1b[2J", "FAIL") and rows[1:3] == [("g\\x1b[2J/p0", "PASS"), ("g\\x1b[2J/p1", "PASS")]
    assert (f"g\\x1b[2J/p{POINT_ROWS + 7}", "FAIL") in rows, "a failed point is always shown"
    assert (f"g\\x1b[2J/p{POINT_ROWS + 8}", "PASS") not in rows
    assert len(rows) == 1 + POINT_ROWS + 1 + 1
    assert "20 more test points passed or skipped" in out and "\x1b" not in out and "\x07" not in out
    assert "0 passed, 1 failed (test points: 518 passed, 2 failed, 1 skipped) in 1.00 s" in out


def test_junit_counts_points_and_carries_hostile_names():
    from kvmrun.suite.junit import junit_xml
    points = [TestPoint(("a\x00",), "failed", "ERROR \x1b", "diag \x01"), TestPoint(("b",), "skipped", "SKIP"),
              TestPoint(("c",), "passed")]
    root = ET.fromstring(ET.tostring(junit_xml([_outcome(points), _outcome([], passed=True)], "s", 1.0)))
    suite = root.find("testsuite")
    assert [suite.get(key) for key in ("tests", "failures", "errors", "skipped")] == ["5", "2", "0", "1"]
    cases = suite.findall("testcase")
    assert [case.get("name") for case in cases] == ["g\\x1b[2J", "g\\x1b[2J/a\\x00", "g\\x1b[2J/b",
                                                    "g\\x1b[2J/c", "g\\x1b[2J"]
    failure = cases[1].find("failure")
    assert (failure.get("message"), failure.text) == ("not ok a\\x00 # ERROR \\x1b", "diag \\x01")
