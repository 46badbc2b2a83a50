; Prints the CPU state the ABI promises at a protected-mode entry, for the tests to check.
bits 32
%include "lib32.inc"
section .text
global _start
_start:
    mov ebp, esp                  ; keep the entry registers before anything clobbers them
    pushfd
    pop ebx
    push edx
    push esi
    push edi
    print "edi="
    pop eax
    call print_hex
    print " esi="
    pop eax
    call print_hex
    print " edx="
    pop eax
    call print_hex
    print " esp="
    mov eax, ebp
    call print_hex
    print " eflags="
    mov eax, ebx
    call print_hex
    print 10, "cr0="
    mov eax, cr0
    call print_hex
    print " cr4="
    mov eax, cr4
    call print_hex
    print 10, "cs="
    xor eax, eax
    mov ax, cs
    call print_hex
    print " ds="
    mov ax, ds
    call print_hex
    print " ss="
    mov ax, ss
    call print_hex
    print " tr="
    str ax
    call print_hex
    print " apic="
    call print_apic_id
    print 10
    hlt
    LIB32
