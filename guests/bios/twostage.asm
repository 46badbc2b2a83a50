; A two-stage loader. Stage 1 (sector 0) reads stage 2 (sectors 1-2) to 0000:7E00 with int 13h
; AH=02h (CHS), checks for the extensions (AH=41h) and reads part 3 (sectors 3-4) to 0000:8200 with
; AH=42h (LBA), then jumps to stage 2. Stage 2 prints part 3's text and checks its checksum, prints
; the drive parameters (AH=08h), and what a CHS read past the disk's end and one of sector 0 answer
; (CF, AH, AL), and the last status (AH=01h). Status 0 (cli; hlt), or FAILED when a check fails.
; The image is the five sectors. tests/test_bios_guests.py.
bits 16
org 0x7C00
%include "lib.inc"

        mov [drive], dl
        PRINTLN "stage 1: loading stage 2 by CHS"
        mov ax, 0x0202                      ; read 2 sectors
        mov cx, 0x0002                      ; cylinder 0, sector 2
        xor dh, dh                          ; head 0
        mov dl, [drive]
        mov bx, stage2                      ; ES:BX = 0000:7E00
        int 0x13
        jc failed
        mov ah, 0x41                        ; extensions present?
        mov bx, 0x55AA
        mov dl, [drive]
        int 0x13
        jc failed
        cmp bx, 0xAA55
        jne failed
        test cl, 1                          ; packet access (AH=42h)
        jz failed
        mov [edd_version], ah
        mov [edd_support], cx
        mov si, packet
        mov ah, 0x42
        mov dl, [drive]
        int 0x13
        jc failed
        jmp stage2
failed:
        PRINTLN "stage 1 failed"
        EXIT FAILED

packet: db 0x10, 0                          ; the disk address packet: its size
        dw 2                                ; blocks
        dw part3, 0                         ; buffer offset:segment
        dq 3                                ; first block
drive:        db 0
edd_version:  db 0
edd_support:  dw 0
        SIGNATURE

; --- stage 2: sectors 1-2, at 0000:7E00 ------------------------------------------------------------
stage2:
        PRINTLN "stage 2: running at 0000:7E00"
        PRINT "EDD version "
        mov al, [edd_version]
        call hex8
        PRINT " support "
        mov ax, [edd_support]
        call hex16
        call newline

        PRINT "part 3 by LBA: "
        mov si, part3
        call print
        call newline
        xor ax, ax                          ; the byte sum of part 3 but its last word
        mov si, part3
        mov cx, PART3_SIZE - 2
.sum:   add al, [si]
        adc ah, 0
        inc si
        loop .sum
        PRINT "part 3 sum "
        call hex16
        cmp ax, [part3_sum]
        jne .bad
        PRINTLN " ok"

        mov ah, 0x08                        ; drive parameters
        mov dl, [drive]
        xor di, di
        int 0x13
        jc .bad
        PRINT "drive parameters CX="
        mov ax, cx
        call hex16
        PRINT " DX="
        mov ax, dx
        call hex16
        call newline

        PRINT "past the end "
        mov ax, 0x0201                      ; cylinder 0, head 0, sector 10: past the disk's end
        mov cx, 0x000A
        xor dh, dh
        mov dl, [drive]
        mov bx, 0x9000
        int 0x13
        call carry_and_ax
        PRINT "sector 0 "
        mov ax, 0x0201                      ; sector 0: there is none in CHS
        mov cx, 0x0000
        xor dh, dh
        mov dl, [drive]
        mov bx, 0x9000
        int 0x13
        call carry_and_ax
        PRINT "last status "
        mov ah, 0x01                        ; the last operation's status
        mov dl, [drive]
        int 0x13
        call carry_and_ax
        cli
        hlt
.bad:
        PRINTLN " bad"
        EXIT FAILED

; "CF=c AH=xx AL=xx" and a new line.
carry_and_ax:
        push ax
        mov al, '0'
        adc al, 0                           ; the call's CF
        PRINT "CF="
        call putc
        pop ax
        PRINT " AH="
        xchg al, ah
        call hex8
        xchg al, ah
        PRINT " AL="
        call hex8
        jmp newline

        times 0x8200 - 0x7C00 - ($ - $$) db 0

; --- part 3: sectors 3-4, at 0000:8200 -----------------------------------------------------------
PART3_SIZE equ 1024
%define PART3_TEXT "the third part, 1 KiB"
%strlen TEXT_LENGTH PART3_TEXT
part3:
        db PART3_TEXT, 0
%assign sum 0                               ; the checksum, counted as the bytes are emitted
%assign i 1
%rep TEXT_LENGTH
%substr char PART3_TEXT i
%assign sum sum + char
%assign i i + 1
%endrep
%assign i 0
%rep PART3_SIZE - 2 - TEXT_LENGTH - 1
        db (i * 37 + 11) & 0xFF
%assign sum sum + ((i * 37 + 11) & 0xFF)
%assign i i + 1
%endrep
part3_sum:
        dw sum & 0xFFFF
