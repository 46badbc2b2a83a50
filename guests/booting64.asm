; Prints "Booting kernel... " without a newline, then works forever: the text must show at once,
; not when the run ends (for --timeout, signal and output-timing tests).
bits 64
%include "lib64.inc"
section .text
global _start
_start:
    print "Booting kernel... "
    jmp $
    LIB64
