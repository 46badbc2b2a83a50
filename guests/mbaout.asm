; A multiboot (v1) kernel as a flat binary (nasm -f bin): no ELF, so the header's address fields
; (flags bit 16, the "a.out kludge") say where the file goes, where its data ends, how much zeroed
; bss follows and where to enter. The header is not at the file's start, so a loader must place the
; file by header_addr - load_addr. It checks EAX and that its 8 KiB bss reads as zeros (the loader
; clears it), then halts with interrupts off; a failed check exits with status 13.
bits 32
LOAD_ADDR equ 0x100000
COM1 equ 0x3F8
EXIT_PORT equ 0xF4
FAIL_STATUS equ 13
MAGIC equ 0x1BADB002
FLAGS equ 1 << 16                 ; the address fields are valid
BSS_SIZE equ 8192
org LOAD_ADDR

start:
    jmp entry
align 16, db 0
multiboot_header:
    dd MAGIC
    dd FLAGS
    dd -(MAGIC + FLAGS)
    dd multiboot_header           ; header_addr
    dd LOAD_ADDR                  ; load_addr: the file's first byte
    dd load_end                   ; load_end_addr: text and data end here
    dd bss_end                    ; bss_end_addr: zeroed up to here
    dd entry                      ; entry_addr

entry:
    mov esp, stack_top            ; multiboot gives no stack
    cld
    mov ebx, eax
    mov esi, msg_entry
    call puts
    cmp ebx, 0x2BADB002
    jne .bad_magic
    mov esi, msg_magic
    call puts
    mov edi, bss_start            ; the bss, stack included, must read as zeros (never written yet
    mov ecx, (BSS_SIZE - 256) / 4 ; but for the stack's top, which the calls above used)
    xor eax, eax
    repe scasd
    jne .dirty
    mov esi, msg_bss
    call puts
    cli
    hlt
.bad_magic:
    mov esi, msg_bad_magic
    jmp .fail
.dirty:
    mov esi, msg_dirty
.fail:
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

msg_entry: db "mbaout: flat multiboot kernel at 0x100000", 10, 0
msg_magic: db "magic 0x2badb002 ok", 10, 0
msg_bss: db "bss zeroed", 10, 0
msg_bad_magic: db "FAIL: EAX is not the multiboot magic", 10, 0
msg_dirty: db "FAIL: the bss is not zeroed", 10, 0
; Garbage where the bss begins in the file's view: the loader must not copy past load_end_addr.
load_end:
    times 64 db 0xAA
; The bss: in memory only, from load_end (the 0xAA bytes above lie in it, and must be zeros).
bss_start equ load_end
bss_end equ load_end + BSS_SIZE
stack_top equ bss_end
