; Into 32-bit protected mode from a boot sector: prints with int 10h, turns A20 on with int 15h
; AX=2401h and checks it is on (FFFF:0510 is not 0000:0500), loads a GDT, switches with interrupts
; off (kvmrun's BIOS is real-mode code) and writes "32-bit protected mode" straight to the text
; buffer at 0xB8000 (row 3, light green), then halts (status 0). tests/test_bios_guests.py.
bits 16
org 0x7C00
%include "lib.inc"

        PRINTLN "real mode: int 10h prints this"
        mov ax, 0x2401                      ; A20 on
        int 0x15
        jc .failed
        mov ax, 0xFFFF                      ; FFFF:0510 is 0x100500: the same byte as 0x500 only
        mov es, ax                          ; if addresses wrap at 1 MiB
        mov byte [0x500], 0x00
        mov byte [es:0x510], 0xA2
        cmp byte [0x500], 0xA2
        je .failed
        PRINTLN "A20 on"
        PRINTLN "switching to protected mode"
        ENTER_PROTECTED_MODE protected
.failed:
        PRINTLN "failed"
        EXIT FAILED

bits 32
protected:
        mov ax, DATA32
        mov ds, ax
        mov es, ax
        mov ss, ax
        mov esp, 0x7C00
        mov esi, message
        mov edi, 0xB8000 + 3 * 160
        mov ah, 0x0A
.copy:  lodsb
        test al, al
        jz .done
        stosw
        jmp .copy
.done:  hlt
        jmp .done

message: db "32-bit protected mode", 0

        FLAT_GDT
        SIGNATURE
