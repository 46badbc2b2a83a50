; Never ends on its own: for --timeout and signal tests.
bits 64
%include "lib64.inc"
section .text
global _start
_start:
    print "spinning", 10
    jmp $
    LIB64
