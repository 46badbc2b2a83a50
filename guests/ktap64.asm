; KTAP as KUnit prints it, for `results = "ktap"` (tests/test_tap.py): suites as subtests, a failed
; case with its diagnostics before its result line, parameterised cases nested one level deeper
; without a plan, a skipped suite. Halts: status 0.
bits 64
%include "lib64.inc"
section .text
global _start
_start:
    print "KTAP version 1", 10, "1..2", 10
    print "    KTAP version 1", 10, "    # Subtest: example", 10, "    1..3", 10
    print "    ok 1 example_pass", 10
    print "    # example_fail: EXPECTATION FAILED at example.c:42", 10, "    Expected 1 == 2", 10
    print "    not ok 2 example_fail", 10
    print "        KTAP version 1", 10, "        # Subtest: example_params", 10
    print "        ok 1 value 1", 10, "        ok 2 value 2 # SKIP unsupported", 10
    print "    ok 3 example_params", 10
    print "not ok 1 example", 10
    print "    KTAP version 1", 10, "    # Subtest: other", 10, "    1..1", 10
    print "    ok 1 other_case # SKIP no hardware", 10
    print "ok 2 other # SKIP", 10
    hlt
    LIB64
