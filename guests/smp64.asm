; Every vCPU prints its index, the vCPU count and its APIC ID under a spinlock, then halts.
bits 64
%include "lib64.inc"
section .text
global _start
_start:
    mov r12, rdi                  ; vCPU index
    mov r13, rsi                  ; vCPU count
.lock:
    lock bts qword [rel print_lock], 0
    jc .lock
    print "cpu "
    mov rax, r12
    call print_hex
    print " of "
    mov rax, r13
    call print_hex
    print " apic "
    call print_apic_id
    print " stack "
    mov rax, rsp
    call print_hex
    print 10
    mov qword [rel print_lock], 0
    hlt
    LIB64

section .data
print_lock: dq 0
