; A multiboot kernel that prints a line to the VGA text buffer and ends through isa-debug-exit: the
; first thing an OS tutorial's kernel does, booted by kvmrun and by QEMU's -kernel alike.
bits 32
section .multiboot
align 4
    dd 0x1BADB002                 ; magic
    dd 0                          ; flags
    dd -0x1BADB002                ; checksum
section .text
global _start
_start:
    mov esi, message
    mov edi, 0xB8000
    mov ah, 0x1F                  ; white on blue
.next:
    lodsb
    test al, al
    jz .done
    stosw
    jmp .next
.done:
    mov al, 0x21                  ; QEMU (and kvmrun --exit-code qemu) exit with (0x21 << 1) | 1 = 67
    out 0xF4, al
    cli
    hlt
section .rodata
message: db "Hello from a multiboot kernel on VGA", 0
