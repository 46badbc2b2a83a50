; Long mode hello: the ABI starts us in 64-bit mode with a stack; print through COM1, then halt.
bits 64
section .text
global _start
_start:
    lea rsi, [rel message]
    mov ecx, message_len
    mov dx, 0x3F8
    rep outsb                 ; one string-IO exit per chunk the CPU hands over
    hlt

section .rodata
message: db "Hello from long mode!", 10
message_len equ $ - message
