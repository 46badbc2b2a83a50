; The entry of the PVH guest (pvh.c): the Xen ELF note XEN_ELFNOTE_PHYS32_ENTRY (type 18) gives the
; 32-bit physical entry. A PVH loader enters there in 32-bit protected mode, paging and interrupts
; off, with EBX = the hvm_start_info structure (xen/include/public/arch-x86/hvm/start_info.h) and no
; stack. pvh.ld puts the note in a PT_NOTE program header, where loaders look for it.
bits 32
XEN_ELFNOTE_PHYS32_ENTRY equ 18

%macro ELFNOTE 3                  ; ELFNOTE name, type, descriptor (as Linux's ELFNOTE)
section .note.%1 note alloc noexec nowrite align=4
    dd %%name_end - %%name        ; namesz, the NUL included
    dd %%desc_end - %%desc        ; descsz
    dd %2                         ; type
%%name:
    db %str(%1), 0
%%name_end:
    align 4, db 0
%%desc:
    %3
%%desc_end:
    align 4, db 0
%endmacro

ELFNOTE Xen, XEN_ELFNOTE_PHYS32_ENTRY, dd pvh_start

section .bss
align 16
stack_bottom:
    resb 16384
stack_top:

section .text
extern pvh_main
global pvh_start:function (pvh_start.end - pvh_start)
pvh_start:
    mov esp, stack_top
    cld
    push ebx                      ; hvm_start_info
    call pvh_main
    cli
.hang:
    hlt
    jmp .hang
.end:
