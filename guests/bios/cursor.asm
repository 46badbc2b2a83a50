; The cursor and the screen through int 10h: set the cursor (AH=02h) and read it back (AH=03h),
; printing what was read where it now is; a character with an attribute repeated (AH=09h); a window
; scrolled up (AH=06h) and one scrolled down (AH=07h); strings written with AH=13h in its three
; kinds (attribute pairs moving the cursor, one attribute moving it, one attribute leaving it).
; Ends with cli; hlt. tests/test_bios_guests.py asserts the cells, attributes and cursor.
bits 16
org 0x7C00
%include "lib.inc"

%macro AT 2                                 ; cursor to row %1, column %2 of page 0
        mov ah, 0x02
        xor bh, bh
        mov dx, (%1 << 8) | %2
        int 0x10
%endmacro

        AT 5, 10
        mov ah, 0x03                        ; read it back: DH row, DL column, CX shape
        xor bh, bh
        int 0x10
        PRINT "cursor "
        mov ax, dx
        call hex16                          ; "cursor 050A" at row 5, column 10
        PRINT " shape "
        mov ax, cx
        call hex16

        AT 7, 3                             ; five yellow-on-blue X's; the cursor stays at 7,3
        mov ax, 0x0900 | 'X'
        mov bx, 0x001E
        mov cx, 5
        int 0x10

        AT 10, 0                            ; three rows to scroll up ...
        PRINT "AAAA", 13, 10, "BBBB", 13, 10, "CCCC", 13, 10
        AT 14, 0                            ; ... and three to scroll down
        PRINT "DDDD", 13, 10, "EEEE", 13, 10, "FFFF", 13, 10

        mov ax, 0x0601                      ; up one line: rows 10-12, columns 0-1, white on green
        mov bh, 0x2F
        mov cx, (10 << 8) | 0
        mov dx, (12 << 8) | 1
        int 0x10
        mov ax, 0x0701                      ; down one line: rows 14-16, columns 0-3, white on blue
        mov bh, 0x1F
        mov cx, (14 << 8) | 0
        mov dx, (16 << 8) | 3
        int 0x10

        mov ax, 0x1303                      ; pairs of character and attribute, cursor moves: 21,2
        xor bh, bh
        mov cx, 2
        mov dx, (21 << 8) | 0
        mov bp, ok_pairs
        int 0x10
        mov ax, 0x1301                      ; one attribute (yellow on red), cursor moves: 20,11
        mov bx, 0x004E
        mov cx, string_end - string
        mov dx, (20 << 8) | 5
        mov bp, string
        int 0x10
        mov ax, 0x1300                      ; the cursor stays at 20,11
        mov bx, 0x0070
        mov cx, still_end - still
        mov dx, (22 << 8) | 0
        mov bp, still
        int 0x10
        cli
        hlt

ok_pairs:   db 'O', 0x0A, 'K', 0x0C
string:     db "string"
string_end:
still:      db "still"
still_end:
        SIGNATURE
