; Prints the real-mode entry state the ABI promises, then exits through port 0xF4 with 0x16.
%define LOAD_ADDR 0x7C00
bits 16
%include "lib32.inc"
start:
    mov bp, sp
    push edx
    pushfd
    print "cs="
    xor eax, eax
    mov ax, cs
    call print_hex
    print " ds="
    mov ax, ds
    call print_hex
    print " es="
    mov ax, es
    call print_hex
    print " ss="
    mov ax, ss
    call print_hex
    print " sp="
    mov ax, bp
    call print_hex
    print " eflags="
    pop eax
    call print_hex
    print " dl="
    pop eax
    movzx eax, al
    call print_hex
    print 10
    exit_with 0x16
    LIB32
