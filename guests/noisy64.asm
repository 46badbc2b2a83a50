; A guest whose output a report must not show as it is: 256 KiB on one line (64 `rep outsb` of
; 4 KiB), then terminal escape sequences, a carriage return and bytes that are not UTF-8.
bits 64
%include "lib64.inc"
section .text
global _start
_start:
    print "first line", 10
    mov ebx, 64
.block:
    lea rsi, [rel block]
    mov ecx, 4096
    mov dx, COM1
    rep outsb
    dec ebx
    jnz .block
    print 10, 27, "[2J", 27, "]0;title", 7, "cleared", 13, "back", 0xff, 0xfe, 10
    print "last line", 27, "[0m", 10
    hlt
    LIB64

block: times 4096 db 'x'
