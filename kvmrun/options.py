"""Every boot option, defined once.

`kvmrun boot`'s command-line options, `kvmrun.run`'s keywords and the manifest's keys are all derived
from OPTIONS, so they cannot drift: one parser per option takes what each source gives (a command-line
string, a Python value, a TOML value) and says what is wrong in words that fit every source. The error
names the option the way its source spells it: `--cpus` on the command line, `cpus` in Python, `'cpus'`
in a manifest.
"""
from __future__ import annotations


from . import layout
from .errors import ConfigError
from .sizes import parse_size

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, NamedTuple, Optional, Tuple
else:
    from .named_tuple import NamedTuple

if TYPE_CHECKING:       # the CPU-mode module pulls in the KVM structs: only when a guest boots
    from .boot.cpu_modes import Mode

_ADDRESS_LIMIT = 1 << 64


class OptionError(ConfigError):
    """A bad value for one option. `problem` completes a sentence that starts with the option's name
    ("must be at least 1, not 0"); str() spells the name as Python and manifests do."""

    def __init__(self, option: str, problem: str):
        super().__init__(f"{option} {problem}")
        self.option = option
        self.problem = problem

    def spelled(self, name: str) -> str:
        """The message with the option named as its source spells it."""
        return f"{name} {self.problem}"


class Option(NamedTuple):
    name: str                           # kvmrun.run keyword and manifest key
    flags: Tuple[str, ...]              # on the command line
    parse: Callable[[Any], Any]         # a value from any source -> the value; ValueError(problem)
    help: str
    default: Any = None
    metavar: Optional[str] = None
    switch: bool = False                # a flag without a value on the command line
    multiple: bool = False              # repeatable on the command line; a list elsewhere
    from_text: Optional[Callable[[str], Any]] = None   # command-line text -> a value for `parse`
    # The value of the flag given alone on the command line (`--trace`): it then takes the next word as
    # its value only when it is one (`--trace bios IMAGE`), never the image (`--trace IMAGE`); see
    # takes_next_word. None: the flag always needs a value.
    bare: Optional[str] = None

    @property
    def flag(self) -> str:
        """The long flag, as errors on the command line name it."""
        return self.flags[-1]


def _shown(value) -> str:
    return f"{value:g}" if isinstance(value, float) else repr(value)


def _integer(value, what: str = "an integer", text_too: bool = False) -> int:
    """An int, and with `text_too` also an int written as text (decimal, or hex with 0x)."""
    if isinstance(value, str) and text_too:
        try:
            return int(value.strip(), 0)
        except ValueError:
            raise ValueError(f"must be {what}, not {_shown(value)}") from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"must be {what}, not {_shown(value)}")
    return value


def integer_text(text: str) -> int:
    return _integer(text, text_too=True)


def number_text(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"must be a number, not {_shown(text)}") from None


def parse_memory(value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"must be a size (bytes, or a number with K, M or G), not {_shown(value)}")
    try:
        size = parse_size(value)
    except ValueError:
        raise ValueError(f"must be a size (bytes, or a number with K, M or G), not {_shown(value)}") from None
    if not layout.MIN_MEMORY <= size <= layout.MAX_MEMORY:
        raise ValueError(f"must be between 1M and {layout.MAX_MEMORY >> 30}G, not {size} bytes")
    if size % layout.PAGE_SIZE:
        raise ValueError(f"must be a multiple of 4K, not {size} bytes")
    return size


def parse_cpus(value) -> int:
    cpus = _integer(value)
    if cpus < 1:
        raise ValueError(f"must be at least 1, not {cpus}")
    return cpus


def parse_mode(value) -> Optional["Mode"]:
    from .boot.cpu_modes import Mode
    if value is None or isinstance(value, Mode):
        return value
    try:
        return Mode(value)
    except ValueError:
        choices = ", ".join(repr(m.value) for m in Mode)
        raise ValueError(f"must be one of {choices}, not {_shown(value)}") from None


def parse_address(value) -> Optional[int]:
    if value is None:
        return None
    address = _integer(value, "an address (decimal, or hex with 0x)", text_too=True)
    if not 0 <= address < _ADDRESS_LIMIT:
        raise ValueError(f"must be an address between 0 and 2**64-1, not {_shown(value)}")
    return address


def parse_timeout(value) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"must be a number of seconds, not {_shown(value)}")
    seconds = float(value)
    # inf would never end, nan compares false with everything: neither is a time limit.
    if not 0 < seconds < float("inf"):
        raise ValueError(f"must be a positive, finite number of seconds, not {_shown(value)}")
    return seconds


def parse_on_off(value) -> Optional[bool]:
    if value is None or isinstance(value, bool):
        return value
    if value in ("on", "off"):
        return value == "on"
    raise ValueError(f"must be 'on' or 'off' (or a bool), not {_shown(value)}")


def parse_ap_start(value) -> Optional[str]:
    if value is None or value in ("entry", "sipi"):
        return value
    raise ValueError(f"must be 'entry' or 'sipi', not {_shown(value)}")


def parse_cmdline(value) -> Optional[str]:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"must be text, not {_shown(value)}")
    if "\0" in value:
        raise ValueError("must not contain a NUL character: the kernel reads it as a C string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid UTF-8 text (it is passed to the kernel as UTF-8)") from None
    return value


class ModuleSpec(NamedTuple):
    """A module as the user names it: `FILE[=CMDLINE]`."""
    path: str                            # where kvmrun opens it
    cmdline: Optional[str] = None
    written: Optional[str] = None        # the path as the user wrote it, when kvmrun opens it elsewhere (a
                                         # manifest's, found from the manifest's folder); None: `path`

    @property
    def shown(self) -> str:
        """The path as the kernel's module string and kvmrun's messages give it: as the user wrote it."""
        return self.path if self.written is None else self.written


def _module(value) -> ModuleSpec:
    if isinstance(value, ModuleSpec):
        return value
    if not isinstance(value, str):
        raise ValueError(f"must be a list of FILE or FILE=CMDLINE texts, not {_shown(value)}")
    path, equals, cmdline = value.partition("=")
    if not value:
        raise ValueError("needs a file name, not an empty text")
    if not path:
        raise ValueError(f"needs a file name before '=': {_shown(value)}")
    if "\0" in value:
        raise ValueError("must not contain a NUL character: the kernel reads module strings as C strings")
    return ModuleSpec(path, cmdline if equals else None)


def parse_modules(value) -> Tuple[ModuleSpec, ...]:
    if value is None:
        return ()
    if isinstance(value, (str, ModuleSpec)):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"must be a list of FILE or FILE=CMDLINE texts, not {_shown(value)}")
    return tuple(_module(item) for item in value)


EXIT_CODE_CHOICES = ("value", "qemu")


def parse_exit_code(value) -> Optional[str]:
    if value is None or value in EXIT_CODE_CHOICES:
        return value
    raise ValueError(f"must be 'value' or 'qemu', not {_shown(value)}")


def parse_file_name(value) -> Optional[str]:
    """A file kvmrun opens later (--disk, --trace-file): a non-empty name without NUL."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"must be a file name, not {_shown(value)}")
    if not value:
        raise ValueError("needs a file name, not an empty text")
    if "\0" in value:
        raise ValueError("must not contain a NUL character")
    return value


def parse_gdb(value) -> Optional[Tuple[str, int]]:
    """`PORT` (localhost) or `HOST:PORT` -> (host, port); port 0 lets the system choose one."""
    if value is None or isinstance(value, tuple) and len(value) == 2:
        return value if value is None else (_gdb_host(value[0]), _gdb_port(value[1]))
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"must be PORT or HOST:PORT, not {_shown(value)}")
    host, colon, port = str(value).rpartition(":")
    return _gdb_host(host if colon else ""), _gdb_port(port)


def _gdb_host(host) -> str:
    if not isinstance(host, str) or any(char.isspace() or char == "\0" for char in host):
        raise ValueError(f"must name a host without spaces, not {_shown(host)}")
    # Localhost unless a host is given: a gdb stub is full control of the guest.
    return host.strip("[]") or "127.0.0.1"


def _gdb_port(port) -> int:
    try:
        number = int(port) if not isinstance(port, bool) else -1
    except (TypeError, ValueError):
        raise ValueError(f"must be PORT or HOST:PORT with a port number, not {_shown(port)}") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"must have a port from 0 to 65535, not {number}")
    return number


def parse_until(value) -> Optional[str]:
    """A symbol of the ELF image, or an address (0x...): checked against the image once it is read."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = hex(value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be a symbol or an address, not {_shown(value)}")
    if "\0" in value or any(char.isspace() for char in value):
        raise ValueError(f"must be a symbol or an address without spaces, not {_shown(value)}")
    return value


# What --trace can list, in the order a canonical value names them: every exit (and each BIOS call,
# where the machine has BIOS services), each KVM call setting the machine up, BIOS calls alone.
TRACE_KINDS = ("exits", "setup", "bios")
TRACE_BARE = "exits"                    # `--trace` alone; True in Python and manifests


def parse_trace(value) -> Optional[str]:
    """None, or the kinds asked for as one canonical text: "exits", "setup,bios". Takes a comma-separated
    text, a list of kinds, or a bool (True: as `--trace` alone, False: off)."""
    if value is None or value is False:
        return None
    if value is True:
        return TRACE_BARE
    if isinstance(value, str):
        words = [word.strip() for word in value.split(",")]
    elif isinstance(value, (list, tuple)) and all(isinstance(word, str) for word in value):
        words = [word.strip() for word in value]
    else:
        words = [""]
    if not words or any(word not in TRACE_KINDS for word in words):
        kinds = ", ".join(repr(kind) for kind in TRACE_KINDS[:-1]) + f" or {TRACE_KINDS[-1]!r}"
        raise ValueError(f"must be {kinds}, or several of them separated by commas, not {_shown(value)}")
    return ",".join(kind for kind in TRACE_KINDS if kind in words)


def trace_kinds(trace: Optional[str]) -> Tuple[str, ...]:
    """A parsed --trace value as its kinds: () when tracing is off."""
    return tuple(trace.split(",")) if trace else ()


def traced_kinds(config: "BootConfig") -> Tuple[str, ...]:
    """What a run traces: --trace's kinds; --trace-file without --trace traces as --trace alone."""
    return trace_kinds(config.trace or (TRACE_BARE if config.trace_file else None))


def parse_switch(value) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, not {_shown(value)}")
    return value


OPTIONS: Tuple[Option, ...] = (
    Option("mode", ("--mode",), parse_mode, metavar="[real|protected|long]",
           help="CPU mode at entry. Default: long for ELF64 and raw images, protected for ELF32."),
    Option("memory", ("-m", "--memory"), parse_memory, default=layout.DEFAULT_MEMORY, metavar="SIZE",
           help="Guest RAM, in bytes or with K/M/G (1M to 64G, a multiple of 4K). [default: 128M]"),
    Option("cpus", ("-c", "--cpus"), parse_cpus, default=1, metavar="N", from_text=integer_text,
           help="vCPUs, one host thread each (not in --mode real). [default: 1]"),
    Option("load_addr", ("--load-addr",), parse_address, metavar="ADDRESS",
           help="Raw images: where to load (default 0x100000, real mode 0x7c00)."),
    Option("entry", ("--entry",), parse_address, metavar="ADDRESS",
           help="Raw images: where to start (default the load address)."),
    Option("timeout", ("--timeout",), parse_timeout, metavar="SECONDS", from_text=number_text,
           help="Stop the guest after this long (status 124)."),
    Option("strict_io", ("--strict-io",), parse_switch, default=False, switch=True,
           help="Make IO to unknown ports or MMIO a guest fault."),
    Option("irqchip", ("--irqchip",), parse_on_off, metavar="[on|off]",
           help="KVM's in-kernel interrupt controllers (PIC, IOAPIC, local APICs) and PIT. Default: off for "
                "kvmrun-ABI images (on with --ap-start sipi)."),
    Option("ap_start", ("--ap-start",), parse_ap_start, metavar="[entry|sipi]",
           help="How vCPUs other than 0 start: at the entry, like vCPU 0 (the default for kvmrun-ABI images), "
                "or waiting for INIT/SIPI from vCPU 0 as on a PC (needs the irqchip)."),
    Option("cmdline", ("--cmdline",), parse_cmdline, metavar="TEXT",
           help="Multiboot, multiboot2 and PVH kernels: the command line (multiboot's starts with the "
                "kernel's file name, as QEMU's -append)."),
    Option("modules", ("--module",), parse_modules, default=(), metavar="FILE[=CMDLINE]", multiple=True,
           help="Multiboot, multiboot2 and PVH kernels: a module loaded after the kernel, page-aligned, with "
                "its own command line. Repeatable."),
    Option("exit_code", ("--exit-code",), parse_exit_code, metavar="[value|qemu]",
           help="What a write of V to port 0xF4 exits with: V & 0xFF (value, the default), or (V<<1)|1 as "
                "QEMU's isa-debug-exit (qemu)."),
    Option("disk", ("--disk",), parse_file_name, metavar="FILE",
           help="Boot sectors: the disk int 13h reads and writes (default: the image itself, from sector 0)."),
    Option("disk_writable", ("--disk-writable",), parse_switch, default=False, switch=True,
           help="Boot sectors: the guest's int 13h writes change the disk's file (default: a private copy)."),
    Option("gdb", ("--gdb",), parse_gdb, metavar="[HOST:]PORT",
           help="Stop every vCPU before the first instruction and wait for gdb on PORT (localhost unless "
                "HOST is given; 0: any free port, printed): `target remote :PORT`."),
    Option("until", ("--until",), parse_until, metavar="SYMBOL|ADDRESS",
           help="End the run when a vCPU reaches this ELF symbol or linear address (status 0, reason "
                "breakpoint, the registers shown)."),
    Option("trace", ("--trace",), parse_trace, metavar="[=exits,setup,bios]", bare=TRACE_BARE,
           help="List on stderr, as they happen: every exit (time, vCPU, reason, port or address, size, "
                "data, device) and, for boot sectors, every BIOS call (--trace alone, or =exits); each KVM "
                "call setting the machine up (=setup); BIOS calls only (=bios). Kinds combine: "
                "--trace=exits,setup."),
    Option("trace_file", ("--trace-file",), parse_file_name, metavar="FILE",
           help="Write the trace to FILE instead of stderr (replaced; --trace alone if no --trace)."),
    Option("stats", ("--stats",), parse_switch, default=False, switch=True,
           help="After the run, a table on stderr: exits by reason, port, device and vCPU, time in the guest "
                "and in kvmrun, and what KVM handled without kvmrun."),
)
BY_NAME: Dict[str, Option] = {option.name: option for option in OPTIONS}


class BootConfig(NamedTuple):
    """A guest and its options, every value already parsed and checked on its own."""
    image: str
    memory: int = layout.DEFAULT_MEMORY
    cpus: int = 1
    mode: Optional["Mode"] = None
    load_addr: Optional[int] = None
    entry: Optional[int] = None
    timeout: Optional[float] = None
    strict_io: bool = False
    irqchip: Optional[bool] = None       # None: as the boot protocol chooses
    ap_start: Optional[str] = None       # None: as the boot protocol chooses
    cmdline: Optional[str] = None
    modules: Tuple[ModuleSpec, ...] = ()
    exit_code: Optional[str] = None      # None: "value"
    disk: Optional[str] = None           # None: the image is the disk
    disk_writable: bool = False
    gdb: Optional[Tuple[str, int]] = None
    until: Optional[str] = None
    trace: Optional[str] = None          # canonical: trace_kinds() splits it
    trace_file: Optional[str] = None
    stats: bool = False
    # The image's path as the user wrote it, when kvmrun opens it elsewhere (a manifest's, found from the
    # manifest's folder): what a multiboot kernel's command line starts with. None: `image`. Not an option.
    image_written: Optional[str] = None


# BootConfig spells the options out for type checkers; this keeps it to exactly OPTIONS' names.
assert set(BootConfig._fields) - {"image", "image_written"} == set(BY_NAME), \
    "BootConfig and OPTIONS name the same options"


def parse_option(name: str, value) -> Any:
    """One option's value from any source; OptionError naming it when the value is wrong."""
    try:
        return BY_NAME[name].parse(value)
    except ValueError as err:
        raise OptionError(name, str(err)) from None


def takes_next_word(option: Option, word: str) -> bool:
    """Whether a flag with a bare value takes `word`, the word after it, as its value: only a word it
    accepts. The launcher and click read a command line by this one rule."""
    try:
        option.parse(option.from_text(word) if option.from_text else word)
    except ValueError:
        return False
    return True


def parse_option_text(name: str, text: str) -> Any:
    """One option's value from the command line's text."""
    option = BY_NAME[name]
    try:
        return option.parse(option.from_text(text) if option.from_text else text)
    except ValueError as err:
        raise OptionError(name, str(err)) from None


def boot_config(image, values: Dict[str, Any], image_written: Optional[str] = None) -> BootConfig:
    """A BootConfig from option values by name (missing ones take their defaults). Unknown names are
    the caller's to refuse: each source has its own way (TypeError, a manifest error, click).
    `image_written`: the image's path as the user wrote it, when `image` is where it was found."""
    parsed = {name: parse_option(name, value) for name, value in values.items()}
    return BootConfig(image=str(image), image_written=image_written, **parsed)


def check_config(config: BootConfig) -> BootConfig:
    """Check a BootConfig built by hand (tests, older callers) the way boot_config checks values."""
    for option in OPTIONS:
        parse_option(option.name, getattr(config, option.name))
    return config


# --- rules that need the image or the host: called once those are known -----------------------------

def refuse_raw_only_options(config: BootConfig, image_kind: str) -> None:
    """`image_kind` with its article: "an ELF", "a multiboot"."""
    for name in ("load_addr", "entry"):
        if getattr(config, name) is not None:
            raise OptionError(name, f"applies to raw images only: {image_kind} image gives its own")


def refuse_kernel_options(config: BootConfig, image_kind: str) -> None:
    """--cmdline and --module reach a kernel only through a boot protocol that carries them."""
    if config.cmdline is not None:
        raise OptionError("cmdline", f"applies to multiboot, multiboot2 and PVH kernels; {image_kind} has no "
                                     "way to receive a command line")
    if config.modules:
        raise OptionError("modules", f"applies to multiboot, multiboot2 and PVH kernels; {image_kind} has no "
                                     "way to receive modules")


def refuse_boot_disk_options(config: BootConfig, image_kind: str) -> None:
    """--disk, --disk-writable and --trace bios reach only the BIOS a boot disk gets."""
    for name, flag_set in (("disk", config.disk is not None), ("disk_writable", config.disk_writable),
                           ("trace", "bios" in trace_kinds(config.trace))):
        if flag_set:
            raise OptionError(name, f"applies to boot sectors (images with the 0x55 0xAA signature, booted "
                                    f"without --mode), which get kvmrun's BIOS; {image_kind} has none")


def refuse_smp_in_real_mode(config: BootConfig, mode: "Mode") -> None:
    if mode.value == "real" and config.cpus > 1:
        raise OptionError("cpus", f"must be 1 in real mode, not {config.cpus}: real mode runs one vCPU; "
                                  "use protected or long mode for SMP")


def refuse_more_cpus_than(config: BootConfig, max_vcpus: int) -> None:
    if config.cpus > max_vcpus:
        raise OptionError("cpus", f"must be at most {max_vcpus} on this host's KVM, not {config.cpus}")
