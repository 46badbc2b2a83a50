; The boot sector of a small C kernel, in the way of the os-tutorial (github.com/cfenollosa/
; os-tutorial): loads the kernel from the sectors after it to 0x1000 with int 13h AH=02h, switches
; to 32-bit protected mode with interrupts off and jumps to it. The image is this sector and
; KERNEL_SECTORS sectors of kernel (oskernel_entry.asm and oskernel.c; guests/Makefile).
bits 16
org 0x7C00
%include "lib.inc"

KERNEL_OFFSET equ 0x1000
%ifndef KERNEL_SECTORS
%define KERNEL_SECTORS 8
%endif

        PRINTLN "boot sector: loading the kernel"
        mov ah, 0x02
        mov al, KERNEL_SECTORS
        mov cx, 0x0002                      ; cylinder 0, sector 2
        xor dh, dh                          ; head 0; DL is the boot drive
        mov bx, KERNEL_OFFSET
        int 0x13
        jc .failed
        cmp al, KERNEL_SECTORS
        jne .failed
        PRINTLN "boot sector: entering protected mode"
        ENTER_PROTECTED_MODE protected
.failed:
        PRINTLN "disk error"
        EXIT FAILED

bits 32
protected:
        mov ax, DATA32
        mov ds, ax
        mov es, ax
        mov fs, ax
        mov gs, ax
        mov ss, ax
        mov esp, 0x90000
        call KERNEL_OFFSET
        cli
        hlt

        FLAT_GDT
        SIGNATURE
