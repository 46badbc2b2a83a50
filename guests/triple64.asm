; A triple fault: #UD with no IDT cannot be delivered, nor can the #GP or #DF that follow.
bits 64
%include "lib64.inc"
section .text
global _start
_start:
    print "about to fault", 10
    ud2
    LIB64
