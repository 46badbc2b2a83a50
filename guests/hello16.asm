; A real-mode boot sector: loaded at 0x7C00 with no BIOS behind it, it prints and halts.
%define LOAD_ADDR 0x7C00
bits 16
%include "lib32.inc"
start:
    print "Hello from real mode!", 10
    hlt
    LIB32
    times 510 - ($ - $$) db 0
    dw 0xAA55                     ; boot signature, as a BIOS would want it
