; String IO: 4 KiB (bytes 0..255, sixteen times) in one `rep outsb`, then a marker line.
bits 64
%include "lib64.inc"
section .text
global _start
_start:
    lea rdi, [rel block]          ; fill the block with its own index, mod 256
    xor ecx, ecx
.fill:
    mov [rdi + rcx], cl
    inc ecx
    cmp ecx, 4096
    jne .fill
    lea rsi, [rel block]
    mov ecx, 4096
    mov dx, COM1
    rep outsb
    print 10, "end", 10
    hlt
    LIB64

section .bss
block: resb 4096
