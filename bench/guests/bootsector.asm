; A boot sector that prints a line with int 10h teletype and ends through isa-debug-exit: the first
; thing a boot sector tutorial does, booted as a disk by kvmrun's BIOS and by QEMU pc's SeaBIOS alike.
bits 16
org 0x7C00
    cli
    xor ax, ax                    ; a BIOS may jump to 0x07C0:0 or 0:0x7C00: make DS match org
    mov ds, ax
    mov si, message
    cld
.next:
    lodsb
    test al, al
    jz .done
    mov ah, 0x0E                  ; teletype output, page 0 (BH), colour unused in text mode (BL)
    xor bx, bx
    int 0x10
    jmp .next
.done:
    mov al, 0x21                  ; QEMU (and kvmrun --exit-code qemu) exit with (0x21 << 1) | 1 = 67
    out 0xF4, al
    hlt
    jmp .done
message: db "Hello from a boot sector", 13, 10, 0
    times 510 - ($ - $$) db 0
    dw 0xAA55                     ; boot signature
