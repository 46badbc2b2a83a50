; `cli; hlt`, or with -DEXIT_PORT the same guest ending through the exit port (0xF4) instead: under
; the in-kernel irqchip KVM keeps HLT to itself, so the difference between the two runs is how long
; kvmrun takes to see that every vCPU has halted with interrupts off. Raw, long mode, at 1 MiB.
bits 64
org 0x100000
    cli
    xor eax, eax
%ifdef EXIT_PORT
    out 0xF4, al
%endif
    hlt
