; COM1 receive interrupts (run with --irqchip on): IER asks for an interrupt when a byte arrives,
; IRQ 4 is unmasked at the PIC (vector 0x24), and the handler echoes every byte waiting. The vCPU
; sleeps in HLT between interrupts. After a newline (or Enter's CR on a terminal): the number of interrupts, and status 0.
bits 64
%include "lib64.inc"
%include "irq64.inc"
COM1_IRQ equ 4
IER equ COM1 + 1
MCR equ COM1 + 4
LSR equ COM1 + 5
section .text
global _start
_start:
    set_gate PIC_VECTORS + COM1_IRQ, com1_interrupt
    set_gate PIC_VECTORS + 7, ignore_interrupt
    call load_idt
    mov ax, 0xFFFF & ~(1 << COM1_IRQ)
    call pic_init
    mov dx, MCR
    mov al, 0x0B                  ; DTR, RTS, OUT2: OUT2 gates the IRQ line on PC serial cards
    out dx, al
    mov dx, IER
    mov al, 0x01                  ; received data available
    out dx, al
    print "> "
.wait:
    sti
    hlt
    cli
    cmp byte [rel line_done], 0
    je .wait
    mov dx, IER
    xor eax, eax
    out dx, al
    print "uart irq: "
    mov eax, [rel interrupts]
    call print_hex
    print " interrupts", 10
    exit_with 0

com1_interrupt:
    push rax
    push rdx
    inc dword [rel interrupts]
.next:
    mov dx, LSR
    in al, dx
    test al, 1                    ; LSR.DR
    jz .done
    mov dx, COM1
    in al, dx                     ; RBR: taking the byte clears the interrupt condition
    out dx, al
    cmp al, 13                    ; Enter on a terminal in raw mode: a new line on the screen too
    jne .lf
    mov al, 10
    out dx, al
    jmp .line
.lf:
    cmp al, 10
    jne .next
.line:
    mov byte [rel line_done], 1
    jmp .next
.done:
    mov al, PIC_EOI
    out PIC1_CMD, al
    pop rdx
    pop rax
    iretq
    LIB64
    IRQ64

section .bss
interrupts: resd 1
line_done: resb 1
