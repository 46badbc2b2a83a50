; Every vCPU prints its index and stops with cli; hlt. Under --irqchip on KVM keeps halted vCPUs to
; itself, so the run ends (status 0) only through kvmrun's halt detection.
bits 64
%include "lib64.inc"
section .text
global _start
_start:
    mov r12, rdi                  ; vCPU index
.lock:
    lock bts qword [rel print_lock], 0
    jc .lock
    print "vCPU "
    mov rax, r12
    call print_hex
    print " stops", 10
    mov qword [rel print_lock], 0
    cli
    hlt
    LIB64

section .data
print_lock: dq 0
