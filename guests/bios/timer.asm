; Waiting for the timer: reads the tick count in the BIOS data area (0040:006C), halts with
; interrupts on (taking one interrupt a wake-up) until it has gone up by 3, and prints both counts
; ("ticks START END"); then the count from int 1Ah AH=00h ("1a ticks CX:DX AL"), the real-time
; clock's time (AH=02h: "time HH:MM:SS", BCD) and date (AH=04h: "date CCYY-MM-DD"). Status 0
; (cli; hlt), FAILED if the RTC says no. tests/test_bios_guests.py.
bits 16
org 0x7C00
%include "lib.inc"

TICKS_TO_WAIT equ 3
        mov ax, 0x40
        mov es, ax
        mov ebx, [es:0x6C]
.wait:  sti
        hlt                                 ; until the next interrupt: the tick at the latest
        cli                                 ; one interrupt a look, even if ticks queued up
        mov eax, [es:0x6C]
        sub eax, ebx
        cmp eax, TICKS_TO_WAIT
        jb .wait
        mov ecx, [es:0x6C]
        PRINT "ticks "
        mov eax, ebx
        call hex32
        call space
        mov eax, ecx
        call hex32
        call newline

        xor ah, ah
        int 0x1A
        PRINT "1a ticks "
        push ax
        mov ax, cx
        call hex16
        mov al, ':'
        call putc
        mov ax, dx
        call hex16
        call space
        pop ax
        call hex8
        call newline

        mov ah, 0x02
        int 0x1A
        jc .failed
        PRINT "time "
        mov al, ch
        call hex8
        mov al, ':'
        call putc
        mov al, cl
        call hex8
        mov al, ':'
        call putc
        mov al, dh
        call hex8
        call newline

        mov ah, 0x04
        int 0x1A
        jc .failed
        PRINT "date "
        mov ax, cx
        call hex16
        mov al, '-'
        call putc
        mov al, dh
        call hex8
        mov al, '-'
        call putc
        mov al, dl
        call hex8
        call newline
        cli
        hlt
.failed:
        PRINTLN "failed"
        EXIT FAILED
        SIGNATURE
