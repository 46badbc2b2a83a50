; Long-mode hello (built both as ELF64 and as a raw image): print through COM1 with one
; `rep outsb`, then halt, which ends the run with status 0.
bits 64
%include "lib64.inc"
section .text
global _start
_start:
    lea rsi, [rel message]
    mov ecx, message_len
    mov dx, COM1
    rep outsb
    hlt

section .rodata
message: db "Hello from long mode!", 10
message_len equ $ - message
