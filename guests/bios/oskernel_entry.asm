; The kernel's first bytes, at 0x1000 where osboot.asm calls it: into C. kernel_main's return value
; is the run's exit status (port 0xF4).
bits 32
global _start
extern kernel_main
section .text                               ; linked first: _start is at 0x1000
_start:
        call kernel_main
        out 0xF4, al
        cli
        hlt
section .note.GNU-stack noalloc noexec nowrite progbits
