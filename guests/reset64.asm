; Resets the machine the PC way: wait for the i8042 input buffer, then send pulse-reset 0xFE.
bits 64
%include "lib64.inc"
section .text
global _start
_start:
    print "resetting", 10
.wait:
    in al, 0x64
    test al, 2
    jnz .wait
    mov al, 0xFE
    out 0x64, al
    jmp $                         ; the reset ends the run; without it, a timeout would
    LIB64
