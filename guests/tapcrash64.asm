; A TAP run that crashes: the plan promises 3 test points, one is reported, then ud2 with no IDT
; triple-faults (tests/test_tap.py). Both the fault and the missing points fail it.
bits 64
%include "lib64.inc"
section .text
global _start
_start:
    print "TAP version 14", 10, "1..3", 10, "ok 1 - first", 10
    ud2
    LIB64
