"""From a BootConfig to a checked BootSetup: read the image, find out how it wants to be booted, plan
it, refuse what the options rule out, and check the protocol's setup against RAM. Nothing here opens
/dev/kvm, so a bad image or option is status 2 on any host.

How an image is booted (docs/guest-abi.md, "Which machine"), probed in this order:
1. `--mode` given: kvmrun's own ABI in that mode, whatever the image carries;
2. a multiboot2 header in the first 32 KiB: multiboot2, on the PC platform;
3. a multiboot header in the first 8 KiB: multiboot, on the PC platform;
4. an ELF with a PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY): PVH, on the PC platform;
5. any other ELF: kvmrun's own ABI;
6. a raw image with the boot signature (0x55 0xAA at offset 510): a PC boot disk, on kvmrun's BIOS;
   only its first 32 KiB are read here (enough to rule out 2-4), as a disk need not fit in RAM;
7. any other raw image: kvmrun's own ABI.

The machine plans twice: before /dev/kvm is opened with one_gib_pages=False, then with what the host
offers. 2 MiB pages need the most table pages and the rest is the same, so every range the second
plan reserves or writes lies inside the first's: if the first plan passed its check, the second passes.
"""
from __future__ import annotations

import struct

from ..errors import LoaderError
from ..memory import RamLayout
from ..options import (BootConfig, OptionError, check_config, refuse_boot_disk_options, refuse_kernel_options,
                       refuse_raw_only_options, refuse_smp_in_real_mode)
from ..platform.needs import AP_START_ENTRY, AP_START_SIPI
from .cpu_modes import Mode
from .elf import is_elf
from .image import ModuleError, file_size, plan_image, read_head, read_image
from .plan import check_plan
from .raw import is_boot_sector
from .setup import BootSetup, check_setup

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Callable, NamedTuple, Optional, Tuple
else:
    from ..named_tuple import NamedTuple

KVMRUN_ABI = "kvmrun"
BOOT_DISK = "boot sector"
PROBE_BYTES = 32 * 1024            # the farthest any header is looked for (multiboot2's)
MULTIBOOT_MAGIC, MULTIBOOT2_MAGIC = b"\x02\xb0\xad\x1b", b"\xd6\x50\x52\xe8"    # 0x1BADB002, 0xE85250D6
MULTIBOOT_SEARCH = 8192            # multiboot's header lies in the first 8 KiB (multiboot2's: 32 KiB)


class ImageBoot(NamedTuple):
    """How an image boots: the protocol's name, the mode vCPU 0 starts in, and the protocol's setup
    for the host's page sizes (one_gib_pages -> BootSetup, not yet checked); for kvmrun inspect, the
    image's format and what in it decided the protocol."""
    protocol: str
    mode: Mode
    setup_for: Callable[[bool], BootSetup]
    format: str = ""
    detected: str = ""


class _naming:
    """Loader errors name the file they are about: the one place that puts its path in front. A
    module's errors name the module (boot/modules.py), not the kernel it was given to."""

    def __init__(self, what: str):
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, err, traceback) -> None:
        if isinstance(err, LoaderError) and not isinstance(err, ModuleError):
            raise LoaderError(f"{self.what}: {err}") from None


def plan_boot(config: BootConfig, one_gib_pages: bool) -> Tuple[BootSetup, Mode]:
    """The checked setup that boots `config`, and the mode vCPU 0 starts in. LoaderError (naming the
    image) or ConfigError (OptionError for one option) for what cannot boot. Refusing more vCPUs
    than the host's KVM offers is left to the caller, which knows the host."""
    image_boot = plan_image_for(config)
    return plan_setup(config, image_boot, one_gib_pages), image_boot.mode


def plan_image_for(config: BootConfig) -> ImageBoot:
    """How the image boots, its parts checked against RAM alone; the rules of options.py in the order
    kvmrun has always applied them (so a user sees the same error first)."""
    check_config(config)
    with _naming(config.image):
        if config.mode is None:
            head = read_head(config.image, PROBE_BYTES)
            notes = _boot_disk_notes(head)
            if notes is not None:
                return _boot_disk(config, head, notes)
        image = read_image(config.image, config.memory)
    return plan_image_bytes(config, image)


def plan_image_bytes(config: BootConfig, image: bytes) -> ImageBoot:
    """plan_image_for on the image's bytes, already read (the fuzz harness feeds them here)."""
    with _naming(config.image):
        if config.mode is None:
            signed = not is_elf(image) and is_boot_sector(image)
            try:
                found = _pc_kernel(config, image)
            except LoaderError as err:
                if not signed:
                    raise
                return _boot_disk(config, image, (_unusable_header_note(err),))
            if found is not None:
                return found
            if signed:
                return _boot_disk(config, image)
        if is_elf(image):
            refuse_raw_only_options(config, "an ELF")
        image_plan = plan_image(image, config.mode, config.load_addr, config.entry)
        mode = config.mode or image_plan.default_mode
        check_plan(image_plan, RamLayout(config.memory), mode)
    kind = ("an image for kvmrun's own ABI" if config.mode is None else
            f"an image booted with --mode {mode.value} (kvmrun's own ABI)")
    refuse_kernel_options(config, kind)
    refuse_boot_disk_options(config, kind)
    refuse_smp_in_real_mode(config, mode)
    if config.mode is not None:
        detected = f"--mode {mode.value}: kvmrun's own ABI, whatever headers the image has"
    elif is_elf(image):
        detected = "the ELF magic, without a multiboot2 or multiboot header or a PVH note"
    else:
        detected = "no ELF magic, kernel header or boot signature: a raw image"
    from .protocols import kvmrun_abi       # its structures (page tables, GDT) are not a boot disk's cost
    notes = _late_multiboot_notes(image) if config.mode is None else ()
    return ImageBoot(KVMRUN_ABI, mode, lambda one_gib_pages: _noted(kvmrun_abi.plan(
        image_plan, RamLayout(config.memory), config.cpus, mode, one_gib_pages), notes), image_plan.kind, detected)


def _late_multiboot_notes(image: bytes) -> Tuple[str, ...]:
    """A valid multiboot header just past the first 8 KiB, where nobody looks for one: the kernel was
    meant to be multiboot (a host gcc's build-id note, placed first, pushes it there)."""
    at = image.find(MULTIBOOT_MAGIC, MULTIBOOT_SEARCH, PROBE_BYTES)
    while at >= 0:
        if at % 4 == 0 and len(image) >= at + 12:
            magic, flags, checksum = struct.unpack_from("<III", image, at)
            if (magic + flags + checksum) & 0xFFFFFFFF == 0:
                return (f"a multiboot header at offset 0x{at:x}, past the first 8 KiB where GRUB, QEMU and kvmrun "
                        "look for it: booted with kvmrun's own ABI instead. A build-id note linked in before "
                        "it? Link with -Wl,--build-id=none (an i686-elf cross compiler adds none)",)
        at = image.find(MULTIBOOT_MAGIC, at + 1, PROBE_BYTES)
    return ()


def _noted(setup: BootSetup, notes: Tuple[str, ...]) -> BootSetup:
    return setup._replace(notes=setup.notes + notes) if notes else setup


def _pc_kernel(config: BootConfig, image: bytes):
    """The ImageBoot of a multiboot2, multiboot or PVH kernel, None for any other image. A format's
    parser is imported only when the formats before it were ruled out and the image can be one: its
    magic somewhere in the first bytes, an ELF for PVH (start-up time counts)."""
    ram = RamLayout(config.memory)
    cmdline = config.cmdline or ""
    # What the kernel is told its file is (multiboot's command line starts with it): as the user wrote it.
    name = config.image if config.image_written is None else config.image_written
    header2 = None
    if MULTIBOOT2_MAGIC in image[:PROBE_BYTES]:
        from . import multiboot2
        header2 = multiboot2.probe(image)
    if header2 is not None:
        from .protocols import multiboot2 as multiboot2_protocol
        protocol, plan = "multiboot2", lambda modules: multiboot2_protocol.plan(
            header2, image, name, ram, config.cpus, cmdline, modules)
        detected = f"a multiboot2 header at offset 0x{header2.offset:x} (searched: the first 32 KiB)"
        loaded_by = "its address tag" if header2.address is not None else "its program headers"
    else:
        header = None
        if MULTIBOOT_MAGIC in image[:MULTIBOOT_SEARCH]:
            from . import multiboot
            header = multiboot.probe(image)
        if header is not None:
            from .protocols import multiboot as multiboot_protocol
            protocol, plan = "multiboot", lambda modules: multiboot_protocol.plan(
                header, image, name, ram, config.cpus, cmdline, modules)
            detected = f"a multiboot header at offset 0x{header.offset:x} (searched: the first 8 KiB)"
            loaded_by = "its address fields" if header.address is not None else "its program headers"
        else:
            if not is_elf(image):
                return None
            from . import pvh
            entry = pvh.probe(image)
            if entry is None:
                return None
            from .protocols import pvh as pvh_protocol
            protocol, plan = "PVH", lambda modules: pvh_protocol.plan(
                entry, image, name, ram, config.cpus, cmdline, modules)
            detected = f"an ELF note XEN_ELFNOTE_PHYS32_ENTRY (PVH entry 0x{entry:x})"
            loaded_by = "its program headers"
    refuse_raw_only_options(config, f"a {protocol}")
    refuse_boot_disk_options(config, f"a {protocol} kernel")
    setup = plan(_read_modules(config, plan, ram)) if config.modules else plan(())
    elf_kind = {1: "ELF32", 2: "ELF64"}.get(image[4]) if is_elf(image) and len(image) > 4 else None
    image_format = f"{protocol} kernel, {elf_kind or 'binary'} loaded by {loaded_by}"
    return ImageBoot(protocol, Mode.PROTECTED, lambda one_gib_pages: setup,    # the PC machine has no page tables
                     image_format, detected)


def _boot_disk_notes(head: bytes) -> Optional[Tuple[str, ...]]:
    """Rule 6 on an image's first PROBE_BYTES: None unless it has the signature and no format that comes
    before it; else the notes it boots with. A kernel header it also carries but that cannot be used
    (an os-image: boot sector and kernel in one file) does not stop it booting as the disk it is."""
    if is_elf(head) or not is_boot_sector(head):
        return None
    if MULTIBOOT_MAGIC not in head[:MULTIBOOT_SEARCH] and MULTIBOOT2_MAGIC not in head:
        return ()                          # neither header can be there: their parsers need not load
    from . import multiboot, multiboot2
    try:
        if multiboot2.probe(head) is not None or multiboot.probe(head) is not None:
            return None
    except LoaderError as err:
        if len(head) >= PROBE_BYTES:
            return None                    # a header's checks may need the whole file: plan_image_bytes decides
        return (_unusable_header_note(err),)
    return ()


def _unusable_header_note(err: LoaderError) -> str:
    why = str(err).split("; --mode")[0]          # the error's advice is for booting it as a kernel
    return f"the image has a kernel header kvmrun cannot use ({why}), and the boot signature: it boots as a boot disk"


def _boot_disk(config: BootConfig, image: bytes, notes: Tuple[str, ...] = ()) -> ImageBoot:
    """A PC boot disk: its first sector started by kvmrun's BIOS (boot/protocols/bios.py). The disk
    itself (--disk, or the image) is opened when the machine is built; here it is only checked."""
    refuse_raw_only_options(config, "a boot sector")
    refuse_kernel_options(config, "a boot sector")
    if config.irqchip is False:
        raise OptionError("irqchip", "off leaves a boot sector's BIOS without its timer tick (the in-kernel PIC "
                                     "and PIT): drop it, or use --mode real for kvmrun's own real mode")
    if config.ap_start == AP_START_ENTRY and config.cpus > 1:
        raise OptionError("ap_start", "'entry' would start the boot sector on every vCPU at once, on one stack: "
                                      "on a PC the other CPUs wait for INIT/SIPI (drop --ap-start)")
    if config.disk is not None:
        try:
            file_size(config.disk, "a disk image")
        except LoaderError as err:
            raise OptionError("disk", f"{config.disk}: {err}") from None
    from ..bios.data_area import ticks_since_midnight
    from .protocols import bios
    setup = bios.plan(image, RamLayout(config.memory), config.cpus, ticks_since_midnight())._replace(notes=notes)
    detected = ("the boot signature 0x55 0xAA at offset 510" +
                (", and a kernel header kvmrun cannot use" if notes else ", and no kernel header in the first 32 KiB"))
    return ImageBoot(BOOT_DISK, Mode.REAL, lambda one_gib_pages: setup, "boot disk (raw)", detected)


def _read_modules(config: BootConfig, plan: Callable[[tuple], BootSetup], ram: RamLayout):
    """The modules, each refused before it is read when it cannot fit after the kernel: the kernel is
    planned alone first (its own faults come before its modules'), which says where they start."""
    from .modules import module_sizes, read_modules, refuse_what_cannot_fit
    from .protocols.pc import modules_start
    kernel = [blob for blob in plan(()).blobs if not blob.structure]
    sizes = module_sizes(config.modules)
    refuse_what_cannot_fit(config.modules, sizes, modules_start(kernel), ram)
    return read_modules(config.modules, sizes)


def plan_setup(config: BootConfig, image_boot: ImageBoot, one_gib_pages: bool) -> BootSetup:
    """The boot protocol's setup, with the options' platform choices, checked as a whole."""
    ram = RamLayout(config.memory)
    with _naming(config.image):
        setup = with_options(image_boot.setup_for(one_gib_pages), config)
        check_setup(setup, ram)
    return setup


def with_options(setup: BootSetup, config: BootConfig) -> BootSetup:
    """The protocol's platform choices, overridden where the options say otherwise: `ap_start` sipi
    leaves the APs waiting for INIT/SIPI, and turns the irqchip on unless it was turned off."""
    needs = setup.needs
    ap_start = config.ap_start or needs.ap_start
    irqchip = config.irqchip
    if irqchip is None:
        irqchip = needs.irqchip or (config.ap_start == AP_START_SIPI)
    if irqchip is False and ap_start == AP_START_SIPI and config.ap_start is None and len(setup.vcpus) == 1:
        ap_start = AP_START_ENTRY          # one vCPU: none waits for a SIPI, the irqchip may go
    if irqchip is False and ap_start == AP_START_SIPI:
        if config.ap_start is None:           # the protocol's choice, not the user's: say whose
            raise OptionError("irqchip", "off leaves no way to start the other vCPUs of this kernel (they wait "
                                         "for INIT/SIPI, as on a PC): add --ap-start entry, or use one vCPU")
        raise OptionError("ap_start", "'sipi' needs the irqchip (INIT and SIPI travel between the in-kernel "
                                      "local APICs): drop irqchip off")
    if (irqchip, ap_start) == (needs.irqchip, needs.ap_start):
        return setup
    vcpus = tuple(start._replace(runnable=index == 0 or ap_start != AP_START_SIPI)
                  for index, start in enumerate(setup.vcpus))
    return setup._replace(needs=needs._replace(irqchip=irqchip, ap_start=ap_start), vcpus=vcpus)
