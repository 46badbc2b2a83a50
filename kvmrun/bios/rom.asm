; kvmrun's BIOS ROM: the 64 KiB at F000:0000, assembled into rom.bin (`make rom`; a test checks that
; rom.bin is what this source assembles to). It holds no services, only what must run in the guest:
; a stub per interrupt vector that traps to kvmrun, where the services are (kvmrun/bios/), the timer
; and IRQ handlers, the start-up code, and the tables guests read. Offsets are fixed (rom.py names
; them), so each block is padded to its place; nasm stops with an error if one outgrows it.
bits 16
org 0

BIOS_PORT       equ 0xF5            ; kvmrun/bios/trap.py: an OUT here from a stub is a BIOS call
BDA             equ 0x40
BDA_TICKS       equ 0x6C            ; dword: timer ticks since midnight
BDA_MIDNIGHT    equ 0x70            ; byte: set when the count wraps at midnight
TICKS_PER_DAY   equ 0x1800B0        ; 18.2065 Hz * 86400 s, as every PC BIOS counts

; 0x0000: vector v's stub at 4*v. kvmrun tells the vector from IP, services the call from the
; caller's registers (and the FLAGS the int pushed, where CF goes), and the IRET returns to the caller.
stubs:
%assign vector 0
%rep 256
        out BIOS_PORT, al
        iret
        nop
%assign vector vector + 1
%endrep

; 0x0400: a service that must wait (int 16h without a key) returns here with the stub's address
; pushed: wait for an interrupt with interrupts on, then make the call again.
        times 0x400 - ($ - $$) db 0
wait_for_interrupt:
        sti
        hlt
        cli
        ret

; 0x0460: IRQs 8-15: end the interrupt at both PICs.
        times 0x460 - ($ - $$) db 0
slave_irq:
        push ax
        mov al, 0x20
        out 0xA0, al
        out 0x20, al
        pop ax
        iret

; 0x0470: vectors a program may hook and a BIOS only returns from (1Bh Ctrl-Break, 1Ch user tick).
        times 0x470 - ($ - $$) db 0
just_return:
        iret

; 0x0480: start-up. The PICs as a BIOS leaves them (IRQ 0-7 at vectors 08h-0Fh, 8-15 at 70h-77h,
; all but the timer, the keyboard and the cascade masked), the PIT's channel 0 at 18.2 Hz, then the
; boot sector with interrupts on. kvmrun set the registers the boot sector gets (DL, SS:SP) and
; this code uses AL only.
        times 0x480 - ($ - $$) db 0
start:
        mov al, 0x11                ; ICW1: edge triggered, cascade, ICW4 follows
        out 0x20, al
        out 0xA0, al
        mov al, 0x08                ; ICW2: vector bases
        out 0x21, al
        mov al, 0x70
        out 0xA1, al
        mov al, 0x04                ; ICW3: the slave on IRQ 2
        out 0x21, al
        mov al, 0x02
        out 0xA1, al
        mov al, 0x01                ; ICW4: 8086 mode
        out 0x21, al
        out 0xA1, al
        mov al, 0xF8                ; OCW1: timer, keyboard, cascade
        out 0x21, al
        mov al, 0xFF
        out 0xA1, al
        mov al, 0x36                ; PIT channel 0, lobyte/hibyte, mode 3, binary
        out 0x43, al
        xor al, al                  ; divisor 65536: 1193182 Hz / 65536 = 18.2 Hz
        out 0x40, al
        out 0x40, al
        sti
        jmp 0x0000:0x7C00

; 0x04C0: the diskette parameter table int 1Eh points at (1.44 MB), which DOS-style boot sectors
; copy and patch.
        times 0x4C0 - ($ - $$) db 0
diskette_parameters:
        db 0xAF, 0x02, 0x25, 0x02, 0x12, 0x1B, 0xFF, 0x6C, 0xF6, 0x0F, 0x08

; An IRQ's vector is also a CPU exception's in real mode (0Dh is #GP, 0Ch #SS): each of IRQ 0-7's
; handlers first asks the master PIC whether its IRQ is in service. If not, an exception (or a
; program's own `int`) brought the CPU here, and the handler goes on to the vector's trap stub, where
; kvmrun names it, rather than ending an interrupt nobody raised and returning to the fault for ever.
%macro IRQ_OR_ELSE 2                ; %1: the IRQ (0-7); %2: where its handling goes on
        push ax
        mov al, 0x0B                ; OCW3: the next read of port 20h gives the in-service register
        out 0x20, al
        in al, 0x20
        mov ah, al
        mov al, 0x0A                ; OCW3: back to the request register, as after initialisation
        out 0x20, al
        test ah, 1 << %1
        pop ax
        jnz %2
%endmacro

; 0x0500: IRQ 0, the PIT's tick at 18.2 Hz: count it in the BIOS data area, wrapping at midnight,
; call the user's int 1Ch, and end the interrupt at the PIC.
        times 0x500 - ($ - $$) db 0
timer_tick:
        IRQ_OR_ELSE 0, .tick
        jmp stubs + 0x08 * 4
.tick:
        push ds
        push ax
        mov ax, BDA
        mov ds, ax
        add word [BDA_TICKS], 1
        adc word [BDA_TICKS + 2], 0
        cmp word [BDA_TICKS + 2], TICKS_PER_DAY >> 16
        jb .counted
        cmp word [BDA_TICKS], TICKS_PER_DAY & 0xFFFF
        jb .counted
        mov word [BDA_TICKS], 0
        mov word [BDA_TICKS + 2], 0
        mov byte [BDA_MIDNIGHT], 1
.counted:
        int 0x1C
        mov al, 0x20                ; non-specific EOI
        out 0x20, al
        pop ax
        pop ds
        iret

; 0x0560 + 0x20 * n: IRQ n (1-7) nobody handles (a key arrived, COM1): end it at the master PIC. An
; IRQ 7 not in service is the PIC's spurious interrupt, which gets no EOI.
%assign irq 1
%rep 7
        times 0x560 + 0x20 * irq - ($ - $$) db 0
        IRQ_OR_ELSE irq, master_eoi_%[irq]
%if irq == 7
        iret
%else
        jmp stubs + (0x08 + irq) * 4
%endif
master_eoi_%[irq]:
        push ax
        mov al, 0x20
        out 0x20, al
        pop ax
        iret
%assign irq irq + 1
%endrep

; 0xFFF0: the reset vector. A jump here resets the machine: kvmrun ends the run as a reset.
        times 0xFFF0 - ($ - $$) db 0
reset_vector:
        out BIOS_PORT, al
        jmp reset_vector
        times 0xFFF5 - ($ - $$) db 0
        db "11/25/26"               ; the BIOS date, where programs look for it
        times 0xFFFE - ($ - $$) db 0
        db 0xFC                     ; the model byte: an AT
        db 0
