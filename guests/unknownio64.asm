; Ports and MMIO nobody decodes read as all ones and ignore writes; POST codes go nowhere.
; Exits with status 0 when that holds, 1 when a read gives anything else.
bits 64
%include "lib64.inc"
section .text
global _start
_start:
    mov al, 0x11
    out 0x80, al                  ; POST code
    mov dx, 0x2FD                 ; COM2's LSR: no COM2 here
    in al, dx
    cmp al, 0xFF
    jne .bad
    mov dx, 0x61
    in ax, dx                     ; a 2-byte read of an unknown port
    cmp ax, 0xFFFF
    jne .bad
    mov al, 0x55
    out 0x70, al                  ; ignored write
    mov rdi, 0xFEE00030           ; local APIC version register: no APIC here, so MMIO
    mov eax, [rdi]
    cmp eax, 0xFFFFFFFF
    jne .bad
    mov dword [rdi], 0x1234       ; ignored write
    mov rdi, 0xD0000000           ; inside the RAM gap below 4 GiB
    mov rax, [rdi]
    cmp rax, -1
    jne .bad
    print "unknown io ok", 10
    exit_with 0
.bad:
    print "unknown io gave something else", 10
    exit_with 1
    LIB64
