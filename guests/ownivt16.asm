; Real mode with its own handler for int 0x10 in the interrupt vector table: kvmrun's no-BIOS stubs
; stay out of the way, the handler prints, and the guest halts normally (status 0).
bits 16
org 0x7C00
    mov word [0x10 * 4], handler  ; DS is 0: the vector table is at 0x0
    mov word [0x10 * 4 + 2], 0
    int 0x10
    hlt
handler:
    mov dx, 0x3F8
    mov al, 'k'
    out dx, al
    mov al, 10
    out dx, al
    iret
