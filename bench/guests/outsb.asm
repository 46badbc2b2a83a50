; SIZE bytes (nasm -DSIZE=...) through COM1 with one `rep outsb`, then HLT.
bits 64
org 0x100000
%ifndef SIZE
  %define SIZE 1048576
%endif
    mov rsi, 0x200000             ; the bytes: whatever RAM holds there (zeros)
    mov rcx, SIZE
    mov dx, 0x3F8
    rep outsb
    hlt
