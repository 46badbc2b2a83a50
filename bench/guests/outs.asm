; COUNT one-byte OUTs to PORT (nasm -DCOUNT=... -DPORT=...), 100 to a loop iteration so that the
; emulated loop costs little next to the exits, then HLT. Every vCPU runs it.
bits 64
org 0x100000
%ifndef COUNT
  %define COUNT 100000
%endif
%ifndef PORT
  %define PORT 0x81
%endif
    mov ecx, COUNT / 100
    xor eax, eax
.loop:
%rep 100
    out PORT, al
%endrep
    dec ecx
    jnz .loop
    hlt
