; int 13h writes. Prints the text at the start of sectors 1-3 as read (AH=02h), then writes sector 1
; with AH=03h (CHS) and sector 2 with AH=43h (LBA), reading each back (AH=02h, AH=42h) and comparing.
; Status 0 (cli; hlt), or FAILED when a call fails or a read-back differs. The image is four
; sectors; sectors 1-3 start with "original sector N". tests/test_bios_guests.py runs it on a copy of
; the disk, on a writable one and with --disk.
bits 16
org 0x7C00
%include "lib.inc"

FIRST  equ 0x8000                           ; sectors 1-3 as first read
WRITE  equ 0x9000                           ; what is written
BACK   equ 0x9200                           ; what is read back

        mov [drive], dl
        mov ax, 0x0203                      ; sectors 1-3 (CHS sectors 2-4 of cylinder 0, head 0)
        mov cx, 0x0002
        mov bx, FIRST
        call chs
        mov si, FIRST
        mov cx, 3
.show:  PRINT "read: "
        call print
        call newline
        add si, 512
        loop .show

        mov si, by_chs
        call prepare
        mov ax, 0x0301                      ; write sector 1
        mov cx, 0x0002
        mov bx, WRITE
        call chs
        mov ax, 0x0201                      ; and read it back
        mov bx, BACK
        call chs
        call compare
        PRINTLN "CHS write read back"

        mov si, by_lba
        call prepare
        mov ah, 0x43                        ; write sector 2, no verify
        xor al, al
        mov si, packet
        call edd
        mov word [packet + 4], BACK         ; and read it back
        mov ah, 0x42
        call edd
        call compare
        PRINTLN "LBA write read back"
        cli
        hlt

; chs: AH function, AL count, CX cylinder and sector, head 0, ES:BX; CF means FAILED.
chs:    xor dh, dh
        mov dl, [drive]
        int 0x13
        jc failed
        ret

edd:    mov dl, [drive]
        int 0x13
        jc failed
        ret

; prepare: WRITE = the string at SI, zero-padded to 512 bytes.
prepare:
        mov di, WRITE
        mov cx, 256
        xor ax, ax
        rep stosw
        mov di, WRITE
.copy:  lodsb
        stosb
        test al, al
        jnz .copy
        ret

compare:
        mov si, WRITE
        mov di, BACK
        mov cx, 512
        repe cmpsb
        jne failed
        ret

failed:
        PRINTLN "failed"
        EXIT FAILED

packet: db 0x10, 0
        dw 1                                ; one block
        dw WRITE, 0                           ; buffer
        dq 2                                ; sector 2
drive:  db 0
by_chs: db "written by CHS (AH=03h)", 0
by_lba: db "written by LBA (AH=43h)", 0
        SIGNATURE

        db "original sector 1", 0
        align 512, db 0
        db "original sector 2", 0
        align 512, db 0
        db "original sector 3", 0
        align 512, db 0
