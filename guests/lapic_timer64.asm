; The local APIC timer, periodic at vector 0x20 (run with --irqchip on): three interrupts, each
; acknowledged with an EOI, then the count and exit status 0.
bits 64
%include "lib64.inc"
%include "irq64.inc"
TIMER_VECTOR equ 0x20
TICKS equ 3
TIMER_COUNT equ 62500             ; 1 ms: KVM's APIC bus runs at 1 GHz, divided by 16 below
section .text
global _start
_start:
    set_gate TIMER_VECTOR, timer_tick
    set_gate LAPIC_SPURIOUS_VECTOR, ignore_interrupt
    call load_idt
    mov ebx, LAPIC_BASE
    mov dword [rbx + LAPIC_SPIV], LAPIC_ENABLE | LAPIC_SPURIOUS_VECTOR
    mov dword [rbx + LAPIC_TDCR], 0x3                     ; divide by 16
    mov dword [rbx + LAPIC_LVTT], LVT_PERIODIC | TIMER_VECTOR
    mov dword [rbx + LAPIC_TMICT], TIMER_COUNT
.wait:
    sti                           ; HLT runs in STI's shadow: no interrupt is lost in between
    hlt
    cli
    cmp dword [rel ticks], TICKS
    jb .wait
    mov dword [rbx + LAPIC_LVTT], LVT_MASKED              ; stop the timer
    mov dword [rbx + LAPIC_TMICT], 0
    print "lapic timer: "
    mov eax, [rel ticks]
    call print_hex
    print " ticks", 10
    exit_with 0

timer_tick:
    push rax
    inc dword [rel ticks]
    mov eax, LAPIC_BASE
    mov dword [rax + LAPIC_EOI], 0
    pop rax
    iretq
    LIB64
    IRQ64

section .bss
ticks: resd 1
