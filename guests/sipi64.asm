; vCPU 0 starts vCPU 1 the PC way (run with --cpus 2 --irqchip on --ap-start sipi): it copies a
; real-mode trampoline below 1 MiB, sends INIT, SIPI, SIPI through its local APIC, and waits for
; the flag the AP sets. The AP prints a line in real mode; both end with cli; hlt.
bits 64
%include "lib64.inc"
%include "irq64.inc"
TRAMPOLINE equ 0x70000            ; page-aligned below 1 MiB, above kvmrun's page tables: vector 0x70
ICR_INIT equ 0x4500               ; delivery mode INIT, level assert
ICR_STARTUP equ 0x4600 | (TRAMPOLINE >> 12)
ICR_BUSY equ 1 << 12              ; delivery status: send pending
AP_FLAG equ TRAMPOLINE + (ap_flag - trampoline)
section .text
global _start
_start:
    test rdi, rdi
    jnz started_at_entry
    print "BSP: starting AP 1", 10
    lea rsi, [rel trampoline]
    mov edi, TRAMPOLINE
    mov ecx, trampoline_end - trampoline
    cld
    rep movsb
    mov ebx, LAPIC_BASE
    mov dword [rbx + LAPIC_SPIV], LAPIC_ENABLE | LAPIC_SPURIOUS_VECTOR
    mov eax, ICR_INIT
    call send_ipi_to_1
    mov eax, ICR_STARTUP
    call send_ipi_to_1
    ; The MP specification's second SIPI, only if the AP has not started after the first: a SIPI
    ; that reaches a running AP is latched by KVM and can restart it later (seen here: an AP halted
    ; in `cli; hlt` ran on into memory). Linux and SeaBIOS check for the AP first as well.
    mov ecx, 200000
.first:
    cmp byte [AP_FLAG], 1
    je .wait
    pause
    dec ecx
    jnz .first
    mov eax, ICR_STARTUP
    call send_ipi_to_1
.wait:
    pause
    cmp byte [AP_FLAG], 1
    jne .wait
    print "BSP: AP 1 is up", 10
    cli
    hlt

; eax = ICR low word; rbx = the local APIC
send_ipi_to_1:
    mov dword [rbx + LAPIC_ICR_HIGH], 1 << 24   ; destination: APIC ID 1
    mov [rbx + LAPIC_ICR_LOW], eax
.busy:
    test dword [rbx + LAPIC_ICR_LOW], ICR_BUSY
    jnz .busy
    ret

started_at_entry:                 ; --ap-start entry started every vCPU here
    print "sipi64: vCPU 1 started at the entry; boot it with --ap-start sipi", 10
    exit_with 1
    LIB64

; Copied to TRAMPOLINE and run there by the AP in real mode: CS = 0x7000, IP = 0.
bits 16
trampoline:
    mov ax, cs
    mov ds, ax
    mov si, ap_message - trampoline
    mov dx, COM1
.next:
    lodsb
    test al, al
    jz .done
    out dx, al
    jmp .next
.done:
    mov byte [ap_flag - trampoline], 1
    cli
    hlt
ap_message: db "AP 1 started", 10, 0
ap_flag: db 0
trampoline_end:
