; A real-mode boot sector that prints to COM1 and halts: with --mode real, loaded at 0x7C00 with no BIOS
; behind it; without, as a boot disk on kvmrun's BIOS, which starts it with interrupts on (hence cli).
%define LOAD_ADDR 0x7C00
bits 16
%include "lib32.inc"
start:
    print "Hello from real mode!", 10
    cli
    hlt
    LIB32
    times 510 - ($ - $$) db 0
    dw 0xAA55                     ; boot signature, as a BIOS would want it
