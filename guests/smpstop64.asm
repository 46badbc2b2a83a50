; One vCPU ends the run while the others spin: they must be kicked out of KVM_RUN.
; Raw image, two entries: _start (the last vCPU triple-faults) and +0x40 (it writes status 7).
bits 64
%include "lib64.inc"
section .text
global _start
_start:
    lea rax, [rsi - 1]
    cmp rdi, rax
    jne spin
    ud2                           ; no IDT: a triple fault on the last vCPU
align 64
    lea rax, [rsi - 1]
    cmp rdi, rax
    jne spin
    exit_with 7
spin:
    pause
    jmp spin
