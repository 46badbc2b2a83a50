; 16550A register semantics as a guest sees them; prints "ok NAME" or "FAIL NAME got X" per check
; and exits through port 0xF4 with the number of failures. Run it with stdin empty.
bits 64
%include "lib64.inc"
THR equ COM1
DLL equ COM1
IER equ COM1 + 1
DLM equ COM1 + 1
IIR equ COM1 + 2
FCR equ COM1 + 2
LCR equ COM1 + 3
MCR equ COM1 + 4
LSR equ COM1 + 5
MSR equ COM1 + 6
SCR equ COM1 + 7

%macro outp 2                     ; outp PORT, VALUE
    mov dx, %1
    mov al, %2
    out dx, al
%endmacro

%macro expect 3                   ; expect "name", PORT, VALUE
    mov dx, %2
    in al, dx
    movzx ebx, al
    expect_reg %1, ebx, %3
%endmacro

%macro expect_reg 3               ; expect_reg "name", REG32, VALUE
    cmp %2, %3
    je %%ok
    mov ebx, %2
    print "FAIL ", %1, " got "
    mov eax, ebx
    call print_hex
    print 10
    inc r15
    jmp %%done
%%ok:
    print "ok ", %1, 10
%%done:
%endmacro

section .text
global _start
_start:
    xor r15, r15
    expect "lcr-default", LCR, 0x03
    expect "mcr-default", MCR, 0x08
    expect "lsr-idle", LSR, 0x60
    expect "iir-none", IIR, 0x01
    expect "msr-connected", MSR, 0xB0
    outp SCR, 0x5A
    expect "scratch-5a", SCR, 0x5A
    outp SCR, 0xA5
    expect "scratch-a5", SCR, 0xA5
    ; With DLAB on, offset 0 is the divisor latch, not THR: nothing may be printed until it is
    ; off again, so the values read are kept in registers and checked afterwards. The same goes
    ; for IIR: printing writes THR, which raises THR-empty again.
    outp IER, 0x05
    outp LCR, 0x83                ; DLAB on: offsets 0 and 1 are the divisor latch
    outp DLL, 0x01
    outp DLM, 0x02
    mov dx, DLL
    in al, dx
    movzx r8d, al
    mov dx, DLM
    in al, dx
    movzx r9d, al
    mov dx, LCR
    in al, dx
    movzx r10d, al
    outp LCR, 0x03                ; DLAB off: IER is back, untouched by the DLM write
    mov dx, IER
    in al, dx
    movzx r11d, al
    outp IER, 0x00
    outp LCR, 0x83
    mov dx, DLL
    in al, dx
    movzx r12d, al
    outp LCR, 0x03
    expect_reg "dll", r8d, 0x01
    expect_reg "dlm", r9d, 0x02
    expect_reg "lcr-dlab", r10d, 0x83
    expect_reg "ier", r11d, 0x05
    expect_reg "dll-kept", r12d, 0x01
    outp FCR, 0x01                ; FIFOs on: IIR bits 7:6 say so
    expect "iir-fifo", IIR, 0xC1
    outp IER, 0x02                ; THR-empty interrupt enabled: pending at once
    mov dx, IIR
    in al, dx
    movzx r8d, al
    in al, dx                     ; reading IIR acknowledged it
    movzx r9d, al
    expect_reg "iir-thre", r8d, 0xC2
    expect_reg "iir-thre-acked", r9d, 0xC1
    outp IER, 0x00
    outp FCR, 0x00
    expect "iir-fifo-off", IIR, 0x01
    ; Loopback sends our own output back to RBR, so nothing is printed until it is off again:
    ; the values are kept in r8-r13 and checked afterwards.
    outp MCR, 0x1B                ; loopback with DTR, RTS, OUT2: CTS, DSR, DCD as before
    mov dx, MSR
    in al, dx
    movzx r8d, al
    outp MCR, 0x10                ; loopback, all outputs low: the inputs drop, deltas set
    mov dx, MSR
    in al, dx
    movzx r9d, al
    in al, dx                     ; reading MSR cleared the deltas
    movzx r10d, al
    outp THR, 'Z'                 ; looped back into RBR instead of going to the host
    mov dx, LSR
    in al, dx
    movzx r11d, al
    mov dx, THR
    in al, dx
    movzx r12d, al
    mov dx, LSR
    in al, dx
    movzx r13d, al
    outp MCR, 0x08
    expect_reg "msr-loop", r8d, 0xB0
    expect_reg "msr-loop-delta", r9d, 0x0B
    expect_reg "msr-delta-cleared", r10d, 0x00
    expect_reg "lsr-loop-data", r11d, 0x61
    expect_reg "rbr-loop", r12d, 'Z'
    expect_reg "lsr-loop-empty", r13d, 0x60
    mov eax, r15d
    out EXIT_PORT, al
    LIB64
