; A multiboot (v1) kernel in an ELF64 file, as GRUB loads them: the boot loader takes the load
; addresses from the ELF64 program headers and enters the 32-bit code at e_entry in protected mode
; (EAX = 0x2BADB002). It checks EAX and prints "mb64 ok", then switches to long mode the usual way
; (its own GDT, identity-mapped 2 MiB pages, PAE, EFER.LME, paging) and prints from 64-bit code.
; No interrupts; ends in cli; hlt. A wrong EAX exits with status 13.
bits 32
COM1 equ 0x3F8
EXIT_PORT equ 0xF4
FAIL_STATUS equ 13
MAGIC equ 0x1BADB002
FLAGS equ 0                       ; nothing asked: the ELF headers say where everything goes
EFER equ 0xC0000080
EFER_LME equ 1 << 8
CR4_PAE equ 1 << 5
CR0_PG equ 1 << 31
PAGE_PRESENT_WRITABLE equ 0x3
PAGE_HUGE equ 0x80

section .text
align 4
multiboot_header:                 ; first in .text, so in the file's first 8 KiB
    dd MAGIC
    dd FLAGS
    dd -(MAGIC + FLAGS)

global _start
_start:
    mov esp, stack_top            ; multiboot gives no stack
    cld
    mov ebx, eax                  ; keep the magic
    mov esi, msg_entry
    call puts32
    cmp ebx, 0x2BADB002
    jne bad_magic
    mov esi, msg_ok
    call puts32

    ; PML4[0] -> PDPT, PDPT[0] -> PD, PD[0..3]: 8 MiB identity-mapped in 2 MiB pages.
    mov edi, pml4
    mov ecx, 3 * 4096 / 4
    xor eax, eax
    rep stosd
    mov dword [pml4], pdpt + PAGE_PRESENT_WRITABLE
    mov dword [pdpt], pd + PAGE_PRESENT_WRITABLE
    mov dword [pd], 0x000000 | PAGE_HUGE | PAGE_PRESENT_WRITABLE
    mov dword [pd + 8], 0x200000 | PAGE_HUGE | PAGE_PRESENT_WRITABLE
    mov dword [pd + 16], 0x400000 | PAGE_HUGE | PAGE_PRESENT_WRITABLE
    mov dword [pd + 24], 0x600000 | PAGE_HUGE | PAGE_PRESENT_WRITABLE
    lgdt [gdt_pointer]
    mov eax, cr4
    or eax, CR4_PAE
    mov cr4, eax
    mov eax, pml4
    mov cr3, eax
    mov ecx, EFER
    rdmsr
    or eax, EFER_LME
    wrmsr
    mov eax, cr0
    or eax, CR0_PG
    mov cr0, eax                  ; long mode active, still running 32-bit compatibility code
    jmp 0x08:long_mode

bad_magic:
    mov esi, msg_bad
    call puts32
    mov al, FAIL_STATUS
    out EXIT_PORT, al
    cli
    hlt

; esi = NUL-terminated text
puts32:
    mov dx, COM1
.next:
    lodsb
    test al, al
    jz .done
    out dx, al
    jmp .next
.done:
    ret

bits 64
long_mode:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov rax, cr0
    test eax, CR0_PG
    jz .halt
    lea rsi, [rel msg_long]
    mov dx, COM1
.next:
    lodsb
    test al, al
    jz .halt
    out dx, al
    jmp .next
.halt:
    cli
    hlt
    jmp .halt

section .rodata
msg_entry: db "mb64: ELF64 multiboot kernel, 32-bit entry", 10, 0
msg_ok: db "mb64 ok", 10, 0
msg_bad: db "FAIL: EAX is not the multiboot magic", 10, 0
msg_long: db "mb64: long mode ok", 10, 0
align 8
gdt:
    dq 0
    dq 0x00AF9A000000FFFF         ; 0x08: 64-bit code
    dq 0x00CF92000000FFFF         ; 0x10: flat data
gdt_end:
gdt_pointer:
    dw gdt_end - gdt - 1
    dd gdt

section .bss
alignb 4096
    resb 4096
stack_top:
pml4: resb 4096
pdpt: resb 4096
pd: resb 4096
