; The exit port: three entries, each writing a status to port 0xF4 with a different width.
; _start (byte 42); +0x40 (dword 0x1234567B -> status 0x7B); +0x80 (word 0x0305 -> status 5).
bits 64
%include "lib64.inc"
section .text
global _start
_start:
    mov al, 42
    out EXIT_PORT, al
    hlt                           ; not reached: the write ends the run
align 64
    mov eax, 0x1234567B
    out EXIT_PORT, eax
    hlt
align 64
    mov ax, 0x0305
    mov dx, EXIT_PORT
    out dx, ax
    hlt
