; Three PT_LOAD segments (code, data, and a 16 MiB .bss) at separate addresses: checks that
; .data arrives with its contents and .bss reads as zero from start to end.
bits 64
%include "lib64.inc"
BSS_SIZE equ 16 * 1024 * 1024
section .text
global _start
_start:
    lea rsi, [rel greeting]
    mov ecx, greeting_len
    call write_bytes
    add qword [rel counter], 1    ; .data is writable
    mov rax, [rel counter]
    print "counter="
    call print_hex
    print 10
    lea rdi, [rel big]            ; .bss: every 4 KiB, first and last byte
    mov rcx, BSS_SIZE / 4096
    xor eax, eax
.scan:
    or al, [rdi]
    or al, [rdi + 4095]
    add rdi, 4096
    dec rcx
    jnz .scan
    test al, al
    jnz .dirty
    print "bss=zero", 10
    hlt
.dirty:
    print "bss=dirty", 10
    hlt
    LIB64

section .data
greeting: db "data segment says hi", 10
greeting_len equ $ - greeting
counter: dq 41

section .bss
alignb 4096
big: resb BSS_SIZE
