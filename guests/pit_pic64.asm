; The PIT's channel 0 at ~1 kHz through the 8259 PIC, remapped to vector 0x20 (run with
; --irqchip on): three ticks, each acknowledged with an EOI to the PIC, then the count and status 0.
bits 64
%include "lib64.inc"
%include "irq64.inc"
TICKS equ 3
PIT_HZ equ 1193182
PIT_DIVISOR equ PIT_HZ / 1000
section .text
global _start
_start:
    set_gate PIC_VECTORS + 0, pit_tick
    set_gate PIC_VECTORS + 7, ignore_interrupt            ; the master PIC's spurious IRQ 7
    call load_idt
    mov ax, 0xFFFE                ; every line masked but IRQ 0
    call pic_init
    mov al, 0x34                  ; channel 0, low then high byte, mode 2 (rate generator)
    out 0x43, al
    mov al, PIT_DIVISOR & 0xFF
    out 0x40, al
    mov al, PIT_DIVISOR >> 8
    out 0x40, al
.wait:
    sti
    hlt
    cli
    cmp dword [rel ticks], TICKS
    jb .wait
    mov al, 0xFF                  ; mask IRQ 0 again
    out PIC1_DATA, al
    print "pit: "
    mov eax, [rel ticks]
    call print_hex
    print " ticks through the PIC", 10
    exit_with 0

pit_tick:
    push rax
    inc dword [rel ticks]
    mov al, PIC_EOI
    out PIC1_CMD, al
    pop rax
    iretq
    LIB64
    IRQ64

section .bss
ticks: resd 1
