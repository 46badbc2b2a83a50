"""A PC boot disk: its first sector started as a BIOS starts it, on kvmrun's BIOS (kvmrun/bios/).

- sector 0 at 0000:7C00; vCPU 0 in real mode at the ROM's start-up code (F000:0480), which sets up
  the PICs and the PIT and jumps there with interrupts on, DL=80h (the boot drive) and SS:SP=0000:7C00;
- the interrupt vector table pointing into the ROM at F000, the BIOS data area, the EBDA's size byte,
  and the text screen cleared to grey-on-black blanks, as a BIOS leaves them;
- the in-kernel PICs and PIT (the timer tick), other vCPUs waiting for INIT/SIPI.
Pure: builds a BootSetup, for check_setup to judge.
"""
from ... import layout
from ...bios import data_area, rom
from ...memory import RamLayout
from ...platform.needs import AP_START_SIPI, PlatformNeeds
from ..cpu_modes import Mode
from ..plan import Reserved
from ..raw import SECTOR_SIZE
from ..setup import Blob, BootSetup, VcpuStart

BLANK_CELL = b"\x20\x07"

RESERVED = (
    Reserved(0, data_area.BDA + data_area.BDA_SIZE, "real-mode interrupt vector table and BIOS data area"),
    Reserved(layout.BASE_MEMORY_END, layout.EBDA_END, "extended BIOS data area"),
    Reserved(rom.ROM_ADDR, rom.ROM_ADDR + rom.ROM_SIZE, "BIOS ROM"),
)


def plan(boot_sector: bytes, ram: RamLayout, cpus: int, ticks: int) -> BootSetup:
    """`boot_sector` is the disk's first 512 bytes; `ticks` the tick count the BIOS data area starts
    with (data_area.ticks_since_midnight())."""
    blobs = (
        Blob(0, rom.ivt_bytes(), rom.IVT_SIZE, "interrupt vector table", structure=True),
        Blob(data_area.BDA, data_area.data_area_bytes(ticks), data_area.BDA_SIZE, "BIOS data area", structure=True),
        Blob(layout.BASE_MEMORY_END, data_area.ebda_bytes(), layout.EBDA_END - layout.BASE_MEMORY_END,
             "extended BIOS data area", structure=True),
        Blob(layout.VGA_TEXT_ADDR, BLANK_CELL * (layout.VGA_TEXT_SIZE // 2), layout.VGA_TEXT_SIZE,
             "text screen", structure=True),
        Blob(rom.ROM_ADDR, rom.rom_bytes(), rom.ROM_SIZE, "BIOS ROM", structure=True),
        Blob(layout.REAL_MODE_LOAD_ADDR, boot_sector[:SECTOR_SIZE], SECTOR_SIZE, "boot sector", file_offset=0),
    )
    start = rom.ROM_ADDR + rom.START
    vcpus = (VcpuStart(Mode.REAL, start, 0, {"rdx": layout.REAL_MODE_BOOT_DRIVE, "rsp": layout.REAL_MODE_SP}),) + tuple(
        VcpuStart(Mode.REAL, start, 0, {}, runnable=False) for _ in range(cpus - 1))
    return BootSetup(blobs, RESERVED, vcpus, PlatformNeeds(irqchip=True, ap_start=AP_START_SIPI, bios=True))
