; Real mode, divide by zero: #DE goes through kvmrun's interrupt vector table to its no-BIOS stub,
; and the report names the exception and the div that raised it.
bits 16
org 0x7C00
    xor cx, cx
    mov ax, 1
    div cx
    hlt
