; Every vCPU writes 1 MiB of its own letter ('A' + index) to COM1 as fast as it can, then halts:
; nothing may be lost, and kvmrun's memory must stay flat while it passes through.
bits 64
%include "lib64.inc"
%ifndef FLOOD
  %define FLOOD 1024 * 1024       ; bytes per vCPU; the Makefile also builds a 64 KiB flood_small64
%endif
section .text
global _start
_start:
    lea eax, [rdi + 'A']
    mov ecx, FLOOD
    mov dx, COM1
.next:
    out dx, al
    dec ecx
    jnz .next
    hlt
