; A call kvmrun's BIOS does not provide: int 10h AX=4F02h (VESA: set a graphics mode). The run ends
; as a guest fault (status 1) whose report names the function and the caller; were the call
; answered, the guest would end with FAILED. tests/test_bios_guests.py.
bits 16
org 0x7C00
%include "lib.inc"

        PRINTLN "asking for VESA mode 118h"
        mov ax, 0x4F02
        mov bx, 0x4118                      ; 1024x768, 16M colours, linear frame buffer
vesa_call:
        int 0x10
        PRINTLN "the call returned"
        EXIT FAILED
        SIGNATURE
