; The smallest guest: halt at once. Raw, long mode, loaded at 1 MiB.
bits 64
org 0x100000
    hlt
