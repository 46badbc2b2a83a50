; A guest to debug with gdb (kvmrun boot --gdb): symbols to break at, a string to read, a byte that
; sets the exit status (write it from gdb and the status changes), a counter to watch. vCPU 0 calls
; kmain twice, waits until every other vCPU has reached `secondary` (so `--until secondary` cannot lose
; the race with the exit), and exits with `status`; any other vCPU waits in `cli; hlt`.
bits 64
%include "lib64.inc"
section .text
global _start, kmain, bump, finish, secondary
_start:
    test rdi, rdi                 ; the vCPU index (kvmrun's ABI)
    jnz secondary
    lea r15, [rsi - 1]            ; how many others will arrive (RSI: the vCPU count)
    call kmain
    call kmain
finish:
    print "counter "
    mov rax, [rel counter]
    call print_hex
    print 10
wait_for_others:
    cmp [rel arrived], r15
    jb wait_for_others
    mov al, [rel status]
    out EXIT_PORT, al
secondary:
    lock inc qword [rel arrived]
parked:
    cli
    hlt
    jmp parked

kmain:
    print "kmain", 10
bump:
    inc qword [rel counter]       ; the watched write
    ret
    LIB64

section .data
global message, status, counter
message: db "hello from the guest", 0
status: db 7
align 8
counter: dq 0
arrived: dq 0
