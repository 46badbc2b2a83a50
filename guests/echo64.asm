; Serial input: echoes what arrives on COM1 in upper case until a newline, then halts.
bits 64
%include "lib64.inc"
LSR equ COM1 + 5
section .text
global _start
_start:
    print "> "
.wait:
    mov dx, LSR
    in al, dx
    test al, 1                    ; LSR.DR: a byte waits in RBR
    jz .wait
    mov dx, COM1
    in al, dx
    cmp al, 'a'
    jb .send
    cmp al, 'z'
    ja .send
    sub al, 'a' - 'A'
.send:
    out dx, al
    cmp al, 10
    jne .wait
    hlt
    LIB64
