; The application processors' start-up code for mbsmp.c. The BSP copies ap_trampoline..
; ap_trampoline_end to AP_TRAMPOLINE (4 KiB-aligned, below 1 MiB) and sends INIT, SIPI with vector
; AP_TRAMPOLINE >> 12. An AP starts here in real mode at CS:IP = 0800:0000, loads its own GDT, enters
; 32-bit protected mode, records its local APIC ID in ap_seen (a bit per ID), counts itself in
; ap_count with a locked increment, and halts with interrupts off for good. It needs no stack.
; Everything inside the copy is addressed as AP_TRAMPOLINE + (label - ap_trampoline).
AP_TRAMPOLINE equ 0x8000
LAPIC_ID equ 0xFEE00020

%define HERE(label) (AP_TRAMPOLINE + (label) - ap_trampoline)

section .bss
global ap_count, ap_seen
alignb 4
ap_count: resd 1
ap_seen: resd 2                   ; a bit per APIC ID, 0-63

section .rodata
global ap_trampoline, ap_trampoline_end
bits 16
ap_trampoline:
    cli
    cld
    xor ax, ax
    mov ds, ax
    lgdt [HERE(gdt_pointer)]
    mov eax, cr0
    or eax, 1                     ; PE
    mov cr0, eax
    jmp dword 0x08:HERE(protected)

bits 32
protected:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov eax, [LAPIC_ID]
    shr eax, 24
    and eax, 63
    lock bts [ap_seen], eax       ; a bit string: IDs 32-63 land in the second dword
    lock inc dword [ap_count]
.halt:
    cli
    hlt
    jmp .halt

align 8
gdt:
    dq 0
    dq 0x00CF9A000000FFFF         ; 0x08: flat 32-bit code
    dq 0x00CF92000000FFFF         ; 0x10: flat data
gdt_pointer:
    dw gdt_pointer - gdt - 1
    dd HERE(gdt)
ap_trampoline_end:
