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
from ..options import BootConfig, check_config, refuse_raw_only_options, refuse_smp_in_real_mode
from .cpu_modes import Mode
from .elf import is_elf
from .image import plan_image, read_image
from .plan import LoadPlan, check_plan
from .protocols import kvmrun_abi
from .setup import BootSetup, check_setup


@contextlib.contextmanager
def _naming(image: str) -> Iterator[None]:
    """Loader errors name the image they are about."""
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
    image = read_image(config.image, config.memory)
    if is_elf(image):
        refuse_raw_only_options(config, "ELF")
    with _naming(config.image):
        image_plan = plan_image(image, config.mode, config.load_addr, config.entry)
        mode = config.mode or image_plan.default_mode
        check_plan(image_plan, RamLayout(config.memory), (), mode)
    refuse_smp_in_real_mode(config, mode)
    return image_plan, mode


def plan_setup(config: BootConfig, image_plan: LoadPlan, mode: Mode, one_gib_pages: bool) -> BootSetup:
    """The boot protocol's setup for a planned image, checked as a whole. kvmrun's own ABI is the
    only protocol so far; the next ones are chosen here by the facts their loaders find."""
    ram = RamLayout(config.memory)
    with _naming(config.image):
        setup = kvmrun_abi.plan(image_plan, ram, config.cpus, mode, one_gib_pages)
        check_setup(setup, ram)
    return setup
