; The entry of the multiboot2 C guest (barebones2.c): the multiboot2 header (Multiboot2
; Specification 2.0, 3.1) asking for the command line, modules, basic memory information, the memory
; map and the boot loader's name, a 16 KiB stack, and a call of kernel_main(magic, info). The boot
; loader enters in 32-bit protected mode, paging and interrupts off, EAX = 0x36D76289, EBX = the
; boot information; no stack, and the GDTR may be anything.
bits 32
MB2_MAGIC equ 0xE85250D6
MB2_ARCH_I386 equ 0               ; 32-bit protected mode
TAG_END equ 0
TAG_INFORMATION_REQUEST equ 1
TAG_MODULE_ALIGN equ 6            ; modules must be page-aligned

; Information types the request names (the boot information's tag types).
INFO_CMDLINE equ 1
INFO_BOOT_LOADER_NAME equ 2
INFO_MODULE equ 3
INFO_BASIC_MEMINFO equ 4
INFO_MMAP equ 6

section .multiboot2 progbits alloc noexec nowrite align=8
align 8, db 0
header_start:
    dd MB2_MAGIC
    dd MB2_ARCH_I386
    dd header_end - header_start
    dd -(MB2_MAGIC + MB2_ARCH_I386 + (header_end - header_start))
align 8, db 0
request_start:
    dw TAG_INFORMATION_REQUEST
    dw 0                          ; flags bit 0 clear: required, the boot loader must give it
    dd request_end - request_start
    dd INFO_CMDLINE, INFO_MODULE, INFO_BASIC_MEMINFO, INFO_MMAP, INFO_BOOT_LOADER_NAME
request_end:
align 8, db 0
    dw TAG_MODULE_ALIGN
    dw 0
    dd 8
align 8, db 0
    dw TAG_END
    dw 0
    dd 8
header_end:

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
    cld
    push ebx                      ; boot information
    push eax                      ; magic
    call kernel_main
    cli
.hang:
    hlt
    jmp .hang
.end:
