"""The devices a machine has, as data: what each is, where it answers and why it is there. Pure.

machine.py's _Devices puts exactly bus_devices() on the IO bus (one model per key), so `kvmrun inspect`
lists what `kvmrun boot` builds: both read this one list. machine_devices() adds what is not on
kvmrun's bus but part of the machine all the same: KVM's in-kernel interrupt controllers and PIT
(platform/interrupts.py), kvmrun's BIOS (platform/bios.py) and the memory windows with slots of their own.
"""
from __future__ import annotations

from .. import layout
from ..devices import exit_port, i8042, serial
from ..devices.fw_cfg import FW_CFG_PORT
from ..devices.fw_cfg import PORT_COUNT as FW_CFG_PORT_COUNT
from ..devices.vga import VGA_PORT_BASE, VGA_PORT_COUNT
from ..runtime.absorb import POST_PORT

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import List, NamedTuple, Tuple

    from ..options import BootConfig
    from .needs import PlatformNeeds
else:
    from ..named_tuple import NamedTuple

IO, MMIO, MEMORY = "io", "mmio", "memory"          # ports; device registers in memory; a RAM window
KVMRUN, KVM = "kvmrun", "kvm"                      # whose model answers: kvmrun's (on its IO bus) or KVM's
APIC_PAGE = 0x1000


class Device(NamedTuple):
    key: str               # machine._Devices' name for the model it registers here
    name: str
    space: str             # IO, MMIO or MEMORY
    start: int             # a port, or a guest-physical address
    size: int              # ports, or bytes
    by: str                # KVMRUN or KVM
    why: str

    @property
    def end(self) -> int:
        return self.start + self.size


def bus_devices(config: BootConfig, irqchip: bool) -> Tuple[Device, ...]:
    """What kvmrun's IO bus answers for a machine booted with `config`, in the order it is registered."""
    status = "((V << 1) | 1) & 0xFF, as QEMU's isa-debug-exit" if config.exit_code == "qemu" else "V & 0xFF"
    devices = [
        Device("com1", "COM1 (16550A UART)", IO, serial.COM1_BASE, serial.PORT_COUNT, KVMRUN,
               "the guest's terminal: its output to stdout, stdin to its receiver"
               + (f"; IRQ {serial.COM1_IRQ}" if irqchip else "; no IRQ without the irqchip")),
        Device("exit", "exit port", IO, exit_port.EXIT_PORT, 1, KVMRUN,
               f"a write of V ends the run with status {status}"),
        Device("vga", "VGA registers", IO, VGA_PORT_BASE, VGA_PORT_COUNT, KVMRUN,
               "the text screen's cursor, start address and mode, for showing the screen"),
        Device("fw_cfg", "fw_cfg", IO, FW_CFG_PORT, FW_CFG_PORT_COUNT, KVMRUN,
               f"QEMU's firmware configuration: {config.cpus} vCPU{'s' if config.cpus > 1 else ''}, RAM size, "
               "command line"),
        Device("post", "POST port", IO, POST_PORT, 1, KVMRUN, "POST codes and I/O delays: taken and ignored"),
        Device("i8042_data", "i8042 data", IO, i8042.DATA_PORT, 1, KVMRUN, "the keyboard controller's data port"),
        Device("i8042_command", "i8042 command", IO, i8042.COMMAND_PORT, 1, KVMRUN,
               "the keyboard controller: reset (0xFE), A20 through its output port, self-tests"),
    ]
    if irqchip:          # the PC platform (PC kernels, boot disks)
        from ..devices import cmos      # here: a kvmrun-ABI boot does not pay for importing it
        devices += [
            Device("port92", "system control port A", IO, i8042.SYSTEM_CONTROL_A_PORT, 1, KVMRUN,
                   "fast A20 gate and reset, as on a PC"),
            Device("cmos", "CMOS RAM and clock", IO, cmos.CMOS_PORT, cmos.PORT_COUNT, KVMRUN,
                   "the real-time clock (the host's time) and the CMOS memory size bytes"),
        ]
    return tuple(devices)


def machine_devices(config: BootConfig, needs: PlatformNeeds) -> Tuple[Device, ...]:
    """Every device of the machine `config` boots on with `needs` (the setup's, options applied):
    kvmrun's IO bus, KVM's in-kernel devices under the irqchip, the BIOS of a boot disk, and the RAM
    windows that are memory slots of their own. Ordered by space, then address."""
    devices: List[Device] = list(bus_devices(config, needs.irqchip))
    devices.append(Device("screen", "VGA text buffer", MEMORY, layout.VGA_TEXT_ADDR, layout.VGA_TEXT_SIZE, KVMRUN,
                          "RAM in a dirty-logged slot of its own: the screen is read when it changes"))
    if needs.irqchip:
        from .mptable import IOAPIC_ADDR, LOCAL_APIC_ADDR
        devices += [
            Device("pic_master", "8259 PIC (master)", IO, 0x20, 2, KVM, "IRQs 0-7"),
            Device("pic_slave", "8259 PIC (slave)", IO, 0xA0, 2, KVM, "IRQs 8-15, cascaded on IRQ 2"),
            Device("elcr", "PIC edge/level control", IO, 0x4D0, 2, KVM, "which PIC inputs are level-triggered"),
            Device("pit", "8254 PIT", IO, 0x40, 4, KVM, "the timer: channel 0 on IRQ 0"),
            Device("pit_gate", "PIT channel 2 gate", IO, 0x61, 1, KVM, "channel 2's gate and output (timing loops)"),
            Device("ioapic", "IOAPIC", MMIO, IOAPIC_ADDR, APIC_PAGE, KVM, "24 pins, GSI n on pin n"),
            Device("lapic", "local APIC", MMIO, LOCAL_APIC_ADDR, APIC_PAGE, KVM,
                   f"one per vCPU (APIC ID = index); vCPUs other than 0 "
                   f"{'wait for INIT/SIPI' if needs.ap_start == 'sipi' else 'start at the entry'}"),
        ]
    if needs.bios:
        from ..bios import rom
        devices += [
            Device("bios_trap", "BIOS trap", IO, rom.BIOS_PORT, 1, KVMRUN,
                   "the ROM's interrupt stubs OUT here: kvmrun's BIOS services (int 10h-1Ah)"),
            Device("bios_rom", "BIOS ROM", MEMORY, rom.ROM_ADDR, rom.ROM_SIZE, KVMRUN,
                   "the stubs and start-up code, in a read-only slot where KVM offers read-only memory"),
        ]
    order = {IO: 0, MMIO: 1, MEMORY: 2}
    return tuple(sorted(devices, key=lambda device: (order[device.space], device.start)))
