; The memory map as a boot loader asks for it: int 15h EAX=E820h from EBX=0 until EBX comes back 0,
; each entry printed as "e820 BASE LENGTH TYPE" (hex, 64-bit base and length); then AX=E801h
; ("e801 AX BX CX DX") and AH=88h ("88 AX"). Status 0 (cli; hlt), FAILED if E820 says no.
; tests/test_bios_guests.py compares them with kvmrun's memory map.
bits 16
org 0x7C00
%include "lib.inc"

SMAP equ 0x534D4150
        xor ebx, ebx
.next:
        mov eax, 0xE820
        mov ecx, 20
        mov edx, SMAP
        mov di, entry
        int 0x15
        jc .failed
        cmp eax, SMAP
        jne .failed
        PRINT "e820 "
        mov eax, [entry + 4]
        call hex32
        mov eax, [entry]
        call hex32
        call space
        mov eax, [entry + 12]
        call hex32
        mov eax, [entry + 8]
        call hex32
        call space
        mov eax, [entry + 16]
        call hex8
        call newline
        test ebx, ebx
        jnz .next

        mov ax, 0xE801
        int 0x15
        jc .failed
        PRINT "e801 "
        call hex16
        call space
        mov ax, bx
        call hex16
        call space
        mov ax, cx
        call hex16
        call space
        mov ax, dx
        call hex16
        call newline
        mov ah, 0x88
        int 0x15
        jc .failed
        PRINT "88 "
        call hex16
        call newline
        cli
        hlt
.failed:
        PRINTLN "failed"
        EXIT FAILED

entry:  times 20 db 0
        SIGNATURE
