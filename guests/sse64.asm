; An SSE instruction in ring 0. Where KVM emulates ring 0 (PVM) this ends in a KVM internal error,
; which kvmrun's report explains; on hardware virtualization the guest prints and exits with 0.
bits 64
%include "lib64.inc"
section .text
global _start
_start:
    print "adding with SSE", 10
    addps xmm0, xmm1
    print "SSE ran", 10
    exit_with 0
    LIB64
