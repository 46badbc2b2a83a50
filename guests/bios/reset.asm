; A reset by jumping to the reset vector, F000:FFF0, as DOS-era programs reboot: the run ends with
; reason reset, status 0. tests/test_bios_guests.py.
bits 16
org 0x7C00
%include "lib.inc"

        PRINTLN "jumping to F000:FFF0"
        jmp 0xF000:0xFFF0
        SIGNATURE
