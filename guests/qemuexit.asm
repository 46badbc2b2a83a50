; A multiboot kernel that ends the run the way kvm-unit-tests does under QEMU: a 32-bit `out dx, eax`
; of 0x20 to port 0xF4, QEMU's isa-debug-exit (iosize=4), whose status is (0x20 << 1) | 1 = 65;
; kvmrun's own exit port gives 0x20. Should the write not stop the machine it says so and halts.
bits 32
COM1 equ 0x3F8
EXIT_PORT equ 0xF4
MAGIC equ 0x1BADB002
FLAGS equ 0

section .multiboot progbits alloc noexec nowrite align=4
    dd MAGIC
    dd FLAGS
    dd -(MAGIC + FLAGS)

section .text
global _start
_start:
    mov esp, stack_top            ; multiboot gives no stack
    cld
    mov esi, msg_exit
    call puts
    mov dx, EXIT_PORT
    mov eax, 0x20
    out dx, eax
    mov esi, msg_still
    call puts
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
msg_exit: db "qemuexit: out dx, eax with eax=0x20, dx=0xf4", 10, 0
msg_still: db "qemuexit: still running after the exit port write", 10, 0

section .bss
alignb 16
    resb 4096
stack_top:
