; The HLT guest for QEMU: a multiboot header (QEMU's -kernel loads it without a boot loader), then a
; write to isa-debug-exit at 0xF4, because QEMU does not end a run on HLT.
bits 32
section .multiboot
align 4
    dd 0x1BADB002                 ; magic
    dd 0                          ; flags
    dd -0x1BADB002                ; checksum
section .text
global _start
_start:
    mov al, 0x21                  ; QEMU exits with (0x21 << 1) | 1 = 67
    out 0xF4, al
    hlt
