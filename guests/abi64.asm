; Prints the CPU state the ABI promises at a long-mode entry, for the tests to check:
; registers, control registers, EFER, selectors, the APIC ID from CPUID, and RAM above 4 GiB.
bits 64
%include "lib64.inc"
section .text
global _start
_start:
    mov r12, rdi                  ; keep the entry registers before anything clobbers them
    mov r13, rsi
    mov r14, rdx
    mov r15, rsp
    pushfq
    pop rbx
    print "rdi="
    mov rax, r12
    call print_hex
    print " rsi="
    mov rax, r13
    call print_hex
    print " rdx="
    mov rax, r14
    call print_hex
    print " rsp="
    mov rax, r15
    call print_hex
    print " rflags="
    mov rax, rbx
    call print_hex
    print 10, "cr0="
    mov rax, cr0
    call print_hex
    print " cr4="
    mov rax, cr4
    call print_hex
    print " efer="
    mov ecx, 0xC0000080
    rdmsr
    shl rdx, 32
    or rax, rdx
    call print_hex
    print " cr3="
    mov rax, cr3
    call print_hex
    print 10, "cs="
    mov ax, cs
    movzx rax, ax
    call print_hex
    print " ds="
    mov ax, ds
    movzx rax, ax
    call print_hex
    print " ss="
    mov ax, ss
    movzx rax, ax
    call print_hex
    print " tr="
    str ax
    movzx rax, ax
    call print_hex
    print " apic="
    call print_apic_id
    print 10
    ; RAM beyond 3 GiB continues at 4 GiB: when there is any, it is mapped and holds what we write.
    cmp r14, 3 * 1024 * 1024      ; rdx is RAM in KiB
    jbe .done
    mov rdi, 0x100000000
    mov rax, 0x1234567887654321
    mov [rdi], rax
    cmp [rdi], rax
    jne .bad_high
    print "high=ok", 10
    jmp .done
.bad_high:
    print "high=bad", 10
.done:
    hlt
    LIB64
