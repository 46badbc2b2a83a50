; The entry of the multiboot (v1) C guests, in the OSDev "Bare Bones" style: the multiboot header,
; a 16 KiB stack, and a call of kernel_main(magic, info). The boot loader enters in 32-bit protected
; mode, paging and interrupts off, EAX = 0x2BADB002 and EBX = the multiboot information; there is no
; stack and the GDTR may be anything, so nothing here reloads a segment register.
bits 32
MBALIGN  equ 1 << 0               ; modules on page boundaries
MEMINFO  equ 1 << 1               ; mem_lower/mem_upper and the memory map, please
MBFLAGS  equ MBALIGN | MEMINFO
MAGIC    equ 0x1BADB002
CHECKSUM equ -(MAGIC + MBFLAGS)

section .multiboot progbits alloc noexec nowrite align=4
align 4
    dd MAGIC
    dd MBFLAGS
    dd CHECKSUM

section .bss
align 16
stack_bottom:
    resb 16384
stack_top:

section .text
extern kernel_main
global _start:function (_start.end - _start)
_start:
    mov esp, stack_top
    cld                           ; the C compiler assumes DF clear; multiboot leaves it undefined
    push ebx                      ; info
    push eax                      ; magic
    call kernel_main
    cli
.hang:
    hlt
    jmp .hang
.end:
