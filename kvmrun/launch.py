"""kvmrun's entry point. A plainly written `kvmrun boot [OPTIONS] IMAGE` starts the guest without
importing click, which costs about as long here as booting a guest does (~45 ms of start-up); every
other command line — help, the other commands, anything this reading does not take as it is — goes to
click's CLI (cli.py), which gives the same result or the same error for it. Both end in
boot_command.run_boot, and the options come from their one definition (options.py)."""
from __future__ import annotations

import sys

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional, Tuple

SCREEN_FLAG = "--screen"


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["boot"]:
        from . import bundle
        bundle.install()                     # kvmrun boot's modules in one read (bundle.py)
        plain = read_boot_args(args[1:])
        if plain is not None:
            from .boot_command import fill_standard_fds, run_boot
            image, screen, values = plain
            closed = fill_standard_fds()     # first: nothing kvmrun opens may become fd 0, 1 or 2
            status = run_boot(image, screen, values, closed, exiting=True)
            bundle.save_if_stale()
            _exit_now(status)
    from .cli import main as cli_main
    cli_main()


def _exit_now(status: int) -> None:
    """Exit without Python's finalization, which takes ~20 ms here (every module torn down) and has
    nothing left to do: the guest's output is written, the machine closed or handed to a child."""
    import os
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    os._exit(status)


def read_boot_args(args: List[str]) -> Optional[Tuple[str, str, Dict[str, Any]]]:
    """(image, screen, option values as the command line gives them) when `args` are only options
    kvmrun boot knows, each spelled out (`--flag value`, `--flag=value`, `-m value`, switches, `--trace`
    with or without its value) and one image; None for anything else, which click then reads (and
    explains)."""
    from .console import SCREEN_AUTO, SCREEN_CHOICES
    from .options import OPTIONS, takes_next_word
    by_flag = {flag: option for option in OPTIONS for flag in option.flags}
    values: Dict[str, Any] = {}
    screen = SCREEN_AUTO
    image = None
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if not arg.startswith("-") or arg == "-":
            if image is not None:
                return None                      # a second image: click says what is wrong
            image = arg
            continue
        name, equals, value = arg.partition("=")
        if not name.startswith("--"):
            equals, value = "", ""               # short flags only take their value separately
            name = arg
        if name != SCREEN_FLAG and name not in by_flag:
            return None                          # --help, --, an unknown or abbreviated flag
        option = by_flag.get(name)
        if option is not None and option.switch:
            if equals:
                return None
            values[option.name] = True
            continue
        if not equals and option is not None and option.bare is not None:
            if index < len(args) and takes_next_word(option, args[index]):
                value = args[index]              # `--trace bios IMAGE`
                index += 1
            else:
                value = option.bare              # `--trace IMAGE`, `--trace` last
        elif not equals:
            if index >= len(args):
                return None                      # a flag without its value
            value = args[index]
            index += 1
        if option is None:
            if value not in SCREEN_CHOICES:
                return None
            screen = value
        elif option.multiple:
            values[option.name] = values.get(option.name, ()) + (value,)
        else:
            values[option.name] = value          # the last one counts, as with click
    if image is None:
        return None
    return image, screen, values
