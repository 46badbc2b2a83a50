; TAP 14 on COM1 for `results = "tap"` (tests/test_tap.py): a pass, a failure with a YAML block, a
; SKIP, a TODO (its failure does not count) and a subtest, after a line of boot chatter. Halts: status 0.
bits 64
%include "lib64.inc"
section .text
global _start
_start:
    print "tap64 booting", 10
    print "TAP version 14", 10, "1..5", 10
    print "ok 1 - boots", 10
    print "not ok 2 - adds", 10, "  ---", 10, "  wanted: 4", 10, "  found: 5", 10, "  ...", 10
    print "ok 3 - disk # SKIP no disk", 10
    print "not ok 4 - frobnicates # TODO not written yet", 10
    print "# Subtest: memory", 10, "    1..2", 10, "    ok 1 - low", 10, "    ok 2 - high", 10
    print "ok 5 - memory", 10
    hlt
    LIB64
