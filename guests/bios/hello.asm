; Hello, world from a boot sector: two lines through int 10h AH=0Eh (teletype), then cli; hlt
; (status 0, halted). tests/test_bios_guests.py.
bits 16
org 0x7C00
%include "lib.inc"
        PRINTLN "Hello from the boot sector"
        PRINTLN "A second line"
        cli
        hlt
        SIGNATURE
