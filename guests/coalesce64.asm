; Output heavy enough for kvmrun to let KVM coalesce THR writes, then register traffic whose order
; matters: with DLAB set, a write to offset 0 is the divisor, not output, and reading it back must see
; it. Then 5,000 POST codes (absorbed by an ioeventfd), a last line, and a spin: the line must reach
; stdout while the guest spins, before any timeout.
bits 64
%include "lib64.inc"
LCR equ COM1 + 3
section .text
global _start
_start:
    mov ecx, 5000
    mov dx, COM1
    mov al, '.'
.dots:
    out dx, al                    ; one exit each, until kvmrun hands THR to the coalesced ring
    dec ecx
    jnz .dots
    mov al, 10
    out dx, al
    mov dx, LCR
    mov al, 0x83
    out dx, al                    ; DLAB on
    mov dx, COM1
    mov al, 0x5C
    out dx, al                    ; the divisor latch, not output (coalesced like THR bytes)
    in al, dx                     ; an exit: the ring is drained first, so this reads 0x5C
    mov bl, al
    mov dx, LCR
    mov al, 0x03
    out dx, al                    ; DLAB off
    cmp bl, 0x5C
    jne .bad
    print "divisor ok", 10
    mov ecx, 5000
.post:
    out 0x80, al
    dec ecx
    jnz .post
    print "done", 10
    jmp $
.bad:
    print "divisor lost", 10
    exit_with 1
    LIB64
