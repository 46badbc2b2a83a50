"""Every fixed guest-physical address and size kvmrun uses, each with the reason it is there."""

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30
PAGE_SIZE = 4 * KiB

# Guest RAM: from 0 up to 3 GiB, then on from 4 GiB. [3 GiB, 4 GiB) is left for device MMIO
# (local APIC at 0xFEE00000, IO-APIC at 0xFEC00000) as on a PC.
RAM_GAP_START = 3 * GiB
RAM_GAP_END = 4 * GiB

DEFAULT_MEMORY = 128 * MiB
MIN_MEMORY = 1 * MiB
# The identity map needs one 4 KiB page directory per GiB when the host has no 1 GiB pages; 64 GiB
# keeps the page tables well inside low memory. Tiny guests need far less.
MAX_MEMORY = 64 * GiB

# GDT and TSS sit just above the real-mode IVT and BIOS data area (0x0-0x4FF), which guests that
# were written for PCs expect to leave alone.
GDT_ADDR = 0x500
TSS_ADDR = 0x600
TSS_SIZE = 104                    # a 64-bit (and 32-bit) TSS without an IO permission bitmap

# Page tables: PML4, then PDPT(s), then page directories, one 4 KiB page after the other. Only the
# pages a run needs are written and reserved.
PAGE_TABLES_ADDR = 0x1000
PAGE_TABLES_LIMIT = 0x80000       # conventional low memory ends here (EBDA above)

# Each vCPU gets a 64 KiB stack carved from the top of RAM downwards, vCPU 0 highest.
STACK_SIZE = 64 * KiB

# Raw images.
DEFAULT_LOAD_ADDR = 0x100000      # protected and long mode: 1 MiB, where small kernels link
REAL_MODE_LOAD_ADDR = 0x7C00      # where a BIOS puts a boot sector
REAL_MODE_SP = 0x7C00
REAL_MODE_BOOT_DRIVE = 0x80       # DL: "first hard disk", as a BIOS hands over
REAL_MODE_LIMIT = 1 * MiB         # real-mode code can only start below 1 MiB

# Three pages KVM needs for its own real-mode TSS on Intel hosts (KVM_SET_TSS_ADDR), placed in the
# MMIO gap where no RAM is, as other VMMs do.
KVM_TSS_ADDR = 0xFFFBD000
# And the one page KVM needs there for unpaged guest code on the same hosts
# (KVM_SET_IDENTITY_MAP_ADDR): right below the TSS, where KVM would put it by default.
KVM_IDENTITY_MAP_ADDR = 0xFFFBC000

# --- The PC platform (multiboot, multiboot2 and PVH kernels: boot/protocols/pc.py) ---------------
# Conventional memory ends where the EBDA would begin: its last KiB below 640 KiB holds the MP table,
# where the MP specification (1.4, 4) tells kernels to look, as Firecracker puts it.
BASE_MEMORY_END = 0x9FC00
EBDA_END = 0xA0000
MP_TABLE_ADDR = BASE_MEMORY_END
# The BIOS data area words a kernel reads to find the EBDA (0x40E, its segment) and the size of
# conventional memory in KiB (0x413), as MP-table searches since Linux 2.0 do.
BDA_EBDA_SEGMENT = 0x40E
BDA_BASE_MEMORY_KIB = 0x413
# VGA's legacy window: the colour text buffer, 80x25 cells of (character, attribute), of 32 KiB.
VGA_TEXT_ADDR = 0xB8000
VGA_TEXT_SIZE = 0x8000
# The system BIOS's 64 KiB below 1 MiB: reserved in the memory map, as on a PC.
BIOS_AREA = 0xF0000
HIGH_MEMORY = 0x100000            # where "upper memory" (multiboot's mem_upper) begins
# The IOAPIC, the local APICs and KVM's own pages, up to 4 GiB: reserved in the memory map.
DEVICE_AREA = 0xFEC00000
