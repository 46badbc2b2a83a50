; Keyboard echo: int 16h AH=01h first ("status: no key" when ZF=1, else the waiting key, which it
; leaves in the buffer), then AH=00h in a loop: each key's character (or '.' when it is not
; printable) with its scan code and ASCII, "key a scan 1E ascii 61", until 'q'. Status 0 (cli;
; hlt). tests/test_bios_guests.py types at it through a pipe and a terminal.
bits 16
org 0x7C00
%include "lib.inc"

        mov ah, 0x01
        int 0x16
        jz .no_key
        PRINT "status: key "
        call hex16
        call newline
        jmp .read
.no_key:
        PRINTLN "status: no key"
.read:
        xor ah, ah
        int 0x16
        PRINT "key "
        push ax
        cmp al, ' '
        jb .dot
        cmp al, '~'
        jbe .echo
.dot:   mov al, '.'
.echo:  call putc
        pop ax
        PRINT " scan "
        xchg al, ah
        call hex8
        xchg al, ah
        PRINT " ascii "
        call hex8
        call newline
        cmp al, 'q'
        jne .read
        PRINTLN "bye"
        cli
        hlt
        SIGNATURE
