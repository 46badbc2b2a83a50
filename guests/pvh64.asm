; A PVH kernel as Linux builds one: an ELF64 whose XEN_ELFNOTE_PHYS32_ENTRY descriptor is 8 bytes
; (Linux writes it with _ASM_PTR, a .quad on x86-64), entered in 32-bit protected mode at that
; address with EBX = hvm_start_info. It checks the start info's magic and prints "pvh64 ok" and the
; version, then halts with interrupts off; a wrong magic exits with status 13.
bits 32
COM1 equ 0x3F8
EXIT_PORT equ 0xF4
FAIL_STATUS equ 13
XEN_ELFNOTE_PHYS32_ENTRY equ 18
XEN_HVM_START_MAGIC_VALUE equ 0x336EC578

section .note.Xen note alloc noexec nowrite align=4
    dd 4                          ; namesz: "Xen" and its NUL
    dd 8                          ; descsz: a 64-bit address, as Linux's x86-64 builds write it
    dd XEN_ELFNOTE_PHYS32_ENTRY
    db "Xen", 0
    dq pvh_start

section .text
global pvh_start
pvh_start:
    mov esp, stack_top            ; PVH gives no stack
    cld
    mov esi, msg_entry
    call puts
    cmp dword [ebx], XEN_HVM_START_MAGIC_VALUE
    jne .bad
    mov esi, msg_ok
    call puts
    cli
    hlt
.bad:
    mov esi, msg_bad
    call puts
    mov al, FAIL_STATUS
    out EXIT_PORT, al
    cli
    hlt

; esi = NUL-terminated text
puts:
    push edx
    mov dx, COM1
.next:
    lodsb
    test al, al
    jz .done
    out dx, al
    jmp .next
.done:
    pop edx
    ret

section .rodata
msg_entry: db "pvh64: ELF64 PVH kernel, 8-byte entry note", 10, 0
msg_ok: db "pvh64 ok", 10, 0
msg_bad: db "FAIL: EBX does not point at hvm_start_info's magic", 10, 0

section .bss
alignb 16
    resb 4096
stack_top:
