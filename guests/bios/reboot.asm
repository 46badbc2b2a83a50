; int 19h starts the boot sector again, read afresh from the disk, with RAM kept. Each boot counts
; itself in the byte at 0000:0500 (RAM no BIOS uses) and prints "boot N flag F DL D"; the first
; sets `flag` in its copy of the sector and calls int 19h; the second, finding the count at 2 and
; `flag` back at 0 (the sector was reloaded), ends with status 42. tests/test_bios_guests.py.
bits 16
org 0x7C00
%include "lib.inc"

BOOTS equ 0x500
        inc byte [BOOTS]
        PRINT "boot "
        mov al, [BOOTS]
        call hex8
        PRINT " flag "
        mov al, [flag]
        call hex8
        PRINT " DL "
        mov al, dl
        call hex8
        call newline
        cmp byte [BOOTS], 2
        jae .again
        mov byte [flag], 1
        int 0x19
        EXIT FAILED
.again:
        EXIT 42

flag:   db 0
        SIGNATURE
