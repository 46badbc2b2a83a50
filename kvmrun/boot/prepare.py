"""From a BootConfig to a checked BootSetup: read the image, plan it, refuse what the options rule
out, choose the boot protocol, and check the protocol's setup against RAM. Nothing here opens
/dev/kvm, so a bad image or option is status 2 on any host.

The machine plans twice: before /dev/kvm is opened with one_gib_pages=False, then with what the host
offers. 2 MiB pages need the most table pages and the rest is the same, so every range the second
plan reserves or writes lies inside the first's: if the first plan passed its check, the second passes.
"""
import contextlib
from typing import Iterator, Tuple

from ..errors import LoaderError
from ..memory import RamLayout
from ..options import BootConfig, OptionError, check_config, refuse_raw_only_options, refuse_smp_in_real_mode
from ..platform.needs import AP_START_SIPI, PlatformNeeds
from .cpu_modes import Mode
from .elf import is_elf
from .image import plan_image, read_image
from .plan import LoadPlan, check_plan
from .protocols import kvmrun_abi
from .setup import BootSetup, check_setup


@contextlib.contextmanager
def _naming(image: str) -> Iterator[None]:
    """Loader errors name the image they are about: the one place that puts its path in front."""
    try:
        yield
    except LoaderError as err:
        raise LoaderError(f"{image}: {err}") from None


def plan_boot(config: BootConfig, one_gib_pages: bool) -> Tuple[BootSetup, Mode]:
    """The checked setup that boots `config`, and the mode vCPU 0 starts in. LoaderError (naming the
    image) or ConfigError (OptionError for one option) for what cannot boot. Refusing more vCPUs
    than the host's KVM offers is left to the caller, which knows the host."""
    image_plan, mode = plan_image_for(config)
    return plan_setup(config, image_plan, mode, one_gib_pages), mode


def plan_image_for(config: BootConfig) -> Tuple[LoadPlan, Mode]:
    """The image's plan and mode, the image checked against RAM alone; the rules of options.py in the
    order kvmrun has always applied them (so a user sees the same error first)."""
    check_config(config)
    with _naming(config.image):
        image = read_image(config.image, config.memory)
        if is_elf(image):
            refuse_raw_only_options(config, "ELF")
        image_plan = plan_image(image, config.mode, config.load_addr, config.entry)
        mode = config.mode or image_plan.default_mode
        check_plan(image_plan, RamLayout(config.memory), mode)
    refuse_smp_in_real_mode(config, mode)
    return image_plan, mode


def plan_setup(config: BootConfig, image_plan: LoadPlan, mode: Mode, one_gib_pages: bool) -> BootSetup:
    """The boot protocol's setup for a planned image, checked as a whole. kvmrun's own ABI is the
    only protocol so far; the next ones are chosen here by the facts their loaders find."""
    ram = RamLayout(config.memory)
    with _naming(config.image):
        setup = with_options(kvmrun_abi.plan(image_plan, ram, config.cpus, mode, one_gib_pages), config)
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
    if irqchip is False and ap_start == AP_START_SIPI:
        raise OptionError("ap_start", "'sipi' needs the irqchip (INIT and SIPI travel between the in-kernel "
                                      "local APICs): drop irqchip off")
    if (irqchip, ap_start) == tuple(needs):
        return setup
    vcpus = tuple(start._replace(runnable=index == 0 or ap_start != AP_START_SIPI)
                  for index, start in enumerate(setup.vcpus))
    return setup._replace(needs=PlatformNeeds(irqchip=irqchip, ap_start=ap_start), vcpus=vcpus)
