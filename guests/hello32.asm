; Protected-mode hello (built as ELF32 and as a raw image): print, then halt.
bits 32
%include "lib32.inc"
section .text
global _start
_start:
    print "Hello from protected mode!", 10
    hlt
    LIB32
