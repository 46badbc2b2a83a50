; A boot sector that asks the BIOS to print, as boot sectors do: kvmrun has no BIOS, so the report
; names the call (int 0x10, AH=0x0E) instead of running into zeroed memory.
bits 16
org 0x7C00
    mov ah, 0x0E                  ; teletype output
    mov al, 'A'
    int 0x10
    hlt
