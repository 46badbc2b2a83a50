"""The command line. The only module that prints for humans or calls sys.exit."""
import sys

import click

from . import __version__
from .errors import ConfigError, KvmrunError
from .console import SCREEN_AUTO, SCREEN_CHOICES
from .boot_command import fail as _fail
from .boot_command import fileno as _fileno
from .boot_command import fill_standard_fds, run_boot, say
from .boot_command import signal_name as _signal_name
from .boot_command import stdout_failed as _stdout_failed
from .options import OPTIONS
from .outcome import STATUS_USAGE


CLOSED_STANDARD_FDS: "frozenset[int]" = frozenset()     # of 0, 1 and 2, those closed when kvmrun started


class _StdoutFailed(Exception):
    """Help or the version could not be written: the OSError, as something click does not handle."""

    def __init__(self, error: OSError):
        super().__init__(error)
        self.error = error


class _ParsedCommand(click.Command):
    """A command whose --help, when stdout cannot take it, ends as KvmrunGroup.main says."""

    def make_context(self, *args, **kwargs):
        return _parsing(super().make_context, *args, **kwargs)


def _parsing(make_context, *args, **kwargs):
    # Parsing writes nothing but --help and --version, so an OSError here is stdout's: click itself
    # would turn EPIPE into status 1 and anything else into a traceback.
    try:
        return make_context(*args, **kwargs)
    except OSError as err:
        raise _StdoutFailed(err) from None


class _BootCommand(_ParsedCommand):
    """`kvmrun boot`: a flag whose value may be left out (`--trace`) gets its value here as the launcher
    reads it (options.takes_next_word), which click alone cannot: it would take the image for it."""

    def parse_args(self, ctx, args):
        return super().parse_args(ctx, _spell_out_bare_flags(list(args), self.params))


def _spell_out_bare_flags(args, params):
    """`--trace IMAGE` -> `--trace=exits IMAGE`, `--trace bios IMAGE` -> `--trace=bios IMAGE`; the
    values of other options and everything after `--` are left alone."""
    from .options import takes_next_word
    bare = {flag: option for option in OPTIONS if option.bare is not None for flag in option.flags}
    valued = {flag for param in params if isinstance(param, click.Option) and not param.is_flag
              for flag in param.opts} - set(bare)
    spelled: list = []
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg == "--":
            return spelled + args[index - 1:]
        option = bare.get(arg)
        if option is None:
            spelled.append(arg)
            if arg in valued and index < len(args):
                spelled.append(args[index])          # another option's value, whatever it looks like
                index += 1
        elif index < len(args) and takes_next_word(option, args[index]):
            spelled.append(f"{arg}={args[index]}")
            index += 1
        else:
            spelled.append(f"{arg}={option.bare}")
    return spelled


class KvmrunGroup(click.Group):
    """Usage errors as one line, `kvmrun: error: ...`, with status 2 and where to find help."""

    command_class = _ParsedCommand

    def make_context(self, *args, **kwargs):
        return _parsing(super().make_context, *args, **kwargs)

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):  # type: ignore[override]
        global CLOSED_STANDARD_FDS
        # First: no file kvmrun opens (/dev/kvm, a worker's pipe) may become stdin, stdout or stderr.
        CLOSED_STANDARD_FDS = fill_standard_fds()
        args = sys.argv[1:] if args is None else list(args)
        if not args:                 # bare `kvmrun`: its help, as a command group's convention is
            try:
                click.echo(self.get_help(click.Context(self, info_name="kvmrun")))
            except OSError as err:
                sys.exit(_stdout_failed(err))
            sys.exit(0)
        try:
            status = super().main(args, prog_name or "kvmrun", complete_var, standalone_mode=False, **extra)
        except click.UsageError as err:
            where = err.ctx.command_path if err.ctx is not None else "kvmrun"
            click.echo(f"kvmrun: error: {err.format_message()} Try '{where} --help' for help.", err=True)
            sys.exit(STATUS_USAGE)
        except click.Abort:
            sys.exit(130)
        except _StdoutFailed as failed:
            sys.exit(_stdout_failed(failed.error))
        sys.exit(status if isinstance(status, int) else 0)


BOOT_EXAMPLES = """\b
Examples:
  kvmrun boot guest.elf                      ELF64 in long mode, ELF32 in protected mode
  kvmrun boot boot.img                       a boot sector (0x55 0xAA at 510) on kvmrun's BIOS
  kvmrun boot --mode real boot.bin           real mode at 0x7c00 without a BIOS (kvmrun's own ABI)
  kvmrun boot --mode protected k.bin --load-addr 0x100000 --entry 0x100010
  kvmrun boot -m 1G --cpus 4 smp.elf         four vCPUs, 1 GiB of RAM
  kvmrun boot --timeout 5 guest.elf          status 124 if still running after 5 s
  echo hi | kvmrun boot echo.elf             stdin goes to COM1
  kvmrun boot myos.elf --cmdline "debug" --module initrd.img
                                             a multiboot kernel, as GRUB or qemu -kernel boot it
\b
Formats, probed in this order (--mode skips to kvmrun's own ABI):
  multiboot2   a multiboot2 header in the first 32 KiB        EAX=0x36D76289 EBX=boot info
  multiboot    a multiboot header in the first 8 KiB          EAX=0x2BADB002 EBX=multiboot info
  PVH          an ELF with a XEN_ELFNOTE_PHYS32_ENTRY note    EBX=hvm_start_info
  ELF64/ELF32  kvmrun's own ABI, long/protected mode
  boot sector  raw, with 0x55 0xAA at offset 510              sector 0 at 0000:7C00, DL=0x80
  raw          kvmrun's own ABI (long mode unless --mode)
The first three get a PC: 32-bit entry, the other vCPUs waiting for INIT/SIPI, interrupt controllers,
an MP table, fw_cfg. A boot sector gets kvmrun's BIOS services (int 10h-1Ah; one it lacks is a fault
naming it) with the image as its disk. Every image gets COM1, the exit port and the VGA text screen.
\b
Exit status: 0 halted or reset; the value V written to port 0xF4 (V & 0xFF; --exit-code qemu:
(V<<1)|1); 1 guest fault (report on stderr); 2 bad command line or image, stdout not writable, or a
KVM call failed setting up; 3 no usable KVM; 124 timeout (counted from the start);
129/130/131/143 SIGHUP/SIGINT/SIGQUIT/SIGTERM; 141 stdout closed by its reader.
"""


@click.group(cls=KvmrunGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="kvmrun", message="%(prog)s %(version)s")
def main():
    """Boot a guest straight on KVM: no BIOS image, no bootloader. Multiboot, multiboot2 and PVH kernels,
    boot sectors (on kvmrun's own BIOS services), ELF and raw images. COM1 and the VGA screen are the
    terminal, and kvmrun's exit status says how the guest ended."""


def boot_options(command):
    """The boot options as click options, from their one definition in kvmrun.options. Values come
    through as text and are parsed by options.py, so errors read the same everywhere."""
    for option in reversed(OPTIONS):
        if option.switch:
            command = click.option(*option.flags, option.name, is_flag=True, help=option.help)(command)
        elif option.multiple:
            command = click.option(*option.flags, option.name, metavar=option.metavar, help=option.help,
                                   multiple=True)(command)
        else:
            command = click.option(*option.flags, option.name, metavar=option.metavar, help=option.help)(command)
    return command


@main.command(cls=_BootCommand, epilog=BOOT_EXAMPLES)
@click.argument("image")
@boot_options
@click.option("--screen", "screen", type=click.Choice(SCREEN_CHOICES), default=SCREEN_AUTO, show_default=True,
              help="The VGA text screen, once the guest writes to it: live below the serial output while the "
                   "guest runs, or as text after the run; auto is live on a terminal, text elsewhere.")
def boot(image, screen, **values):
    """Boot IMAGE: a multiboot, multiboot2 or PVH kernel, an ELF32 or ELF64 image, a boot sector, or a
    raw binary."""
    return run_boot(image, screen, values, CLOSED_STANDARD_FDS)


INSPECT_EXAMPLES = """\b
Examples:
  kvmrun inspect guest.elf                   format, segments, GDT, page tables, registers, devices
  kvmrun inspect -c 4 myos.elf --module initrd.img
                                             with the options it would boot with
  kvmrun inspect --json boot.img | jq .vcpus[0].regs
\b
Exit status: 0 the plan was shown; 2 bad command line or image (the message `kvmrun boot` gives), or
stdout could not be written; 141 stdout closed by its reader. /dev/kvm is not opened.
"""


@main.command(cls=type(boot), epilog=INSPECT_EXAMPLES)
@click.argument("image")
@boot_options
@click.option("--json", "as_json", is_flag=True, help="Print the plan as one JSON object (for scripts).")
def inspect(image, as_json, **values):
    """Show how IMAGE would boot, without running it: how its format was found, the boot protocol, its
    segments (file -> guest RAM), kvmrun's structures (GDT, page tables, boot information), every vCPU's
    registers at its first instruction, and the machine's devices. The same plan `kvmrun boot` runs."""
    from .boot.describe import describe
    from .boot_command import config_from_command_line
    try:
        plan = describe(config_from_command_line(image, values))
    except KvmrunError as err:
        return _fail(err)
    if as_json:
        import json
        return _print_or_fail(json.dumps(plan, indent=2) + "\n")
    from .report.boot_plan import plan_text
    return _print_or_fail(plan_text(plan, _width(), sys.stdout.isatty()))


TEST_EXAMPLES = """\b
Examples:
  kvmrun test                                 run the guests in ./kvmrun.toml
  kvmrun test ci/guests.toml --jobs 4         four at a time
  kvmrun test --junit-xml report.xml          for CI systems that read JUnit XML
  kvmrun test -k smp                          only guests whose name contains "smp"
\b
Exit status: 0 every guest passed; 1 some failed; 2 bad manifest or options, or stdout could not be
written; 3 no usable KVM; 130/143 SIGINT/SIGTERM (running guests are stopped); 141 stdout closed by
its reader.
"""


@main.command(epilog=TEST_EXAMPLES)
@click.argument("manifest", default="kvmrun.toml")
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="Guests at a time (default: one per core).")
@click.option("--junit-xml", "junit_xml", metavar="FILE", help="Write results as JUnit XML to FILE.")
@click.option("-k", "keyword", metavar="SUBSTRING", help="Only run guests whose name contains SUBSTRING.")
def test(manifest, jobs, junit_xml, keyword):
    """Run the guests listed in MANIFEST (TOML) and check how each ended."""
    import errno
    import time
    from rich.console import Console
    from .kvm.system import open_kvm
    from .outcome import STATUS_OUTPUT_CLOSED, STATUS_SIGNAL_BASE
    from .suite.manifest import load_manifest, refuse_what_this_host_cannot
    from .suite.report import GuardedOutput, Progress, show_summary, tally
    from .suite.runner import Cancelled, SuiteRun, cancel_on_signals, default_jobs
    try:
        specs = load_manifest(manifest)
        if keyword is not None:
            specs = [spec for spec in specs if keyword in spec.name]
            if not specs:
                raise KvmrunError(f"{manifest}: no guest name contains {keyword!r}")
        if junit_xml:
            _check_writable(junit_xml)      # before the run, not after it
        with open_kvm() as kvm:          # no KVM: say so once, not once per guest
            refuse_what_this_host_cannot(manifest, specs, kvm.max_vcpus())
    except KvmrunError as err:
        return _fail(err)
    stdout = GuardedOutput(sys.stdout)       # a failed write is remembered, not raised
    console = Console(file=stdout, highlight=False)  # type: ignore[arg-type]  # write, flush, isatty
    try:
        with cancel_on_signals():
            start = time.perf_counter()
            # Workers first: they are forked, and the progress bar starts a thread.
            with SuiteRun(specs, jobs or default_jobs()) as suite, Progress(console, len(specs)) as progress:
                outcomes = suite.run(progress.done)
            elapsed = time.perf_counter() - start
            show_summary(console, outcomes, elapsed)
            if junit_xml:
                _write_junit(junit_xml, manifest, outcomes, elapsed)
    except Cancelled as cancelled:
        say(f"kvmrun: {_signal_name(cancelled.signum)}: stopped the guests still running")
        return STATUS_SIGNAL_BASE + cancelled.signum
    except KvmrunError as err:
        return _fail(err)
    if stdout.error is not None:
        # Not a guest failure: what happened to stdout, and how the guests did, on stderr.
        click.echo(f"kvmrun: error: cannot write to stdout: {stdout.error.strerror}; {tally(outcomes, elapsed)}",
                   err=True)
        return STATUS_OUTPUT_CLOSED if stdout.error.errno == errno.EPIPE else STATUS_USAGE
    return 0 if all(o.passed for o in outcomes) else 1


def _write_junit(path: str, manifest: str, outcomes, elapsed: float) -> None:
    import os
    from .suite.junit import write_junit       # xml and socket: only when asked for
    try:
        write_junit(path, outcomes, os.path.splitext(os.path.basename(manifest))[0], elapsed)
    except OSError as err:
        raise ConfigError(f"--junit-xml {path}: {err.strerror}") from None


def _check_writable(path: str) -> None:
    """The JUnit file is written beside its name and renamed over it (junit.write_whole), so its
    folder must take new files; a device or a pipe there is written in place."""
    import os
    from .suite.junit import rename_target, written_in_place
    if written_in_place(path):
        writable = os.access(path, os.W_OK)
    else:
        target = rename_target(path)
        folder = os.path.dirname(target)
        writable = not os.path.isdir(target) and os.path.isdir(folder) and os.access(folder, os.W_OK | os.X_OK)
    if not writable:
        raise ConfigError(f"--junit-xml {path}: cannot write a file there")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the facts as one JSON object (for scripts).")
def info(as_json):
    """Show what this host's KVM offers kvmrun."""
    from .kvm.abi import Cap
    from .kvm.system import open_kvm
    try:
        kvm = open_kvm()
    except KvmrunError as err:
        return _fail(err)
    with kvm:
        facts = {
            "api_version": kvm.api_version,
            "max_vcpus": kvm.max_vcpus(),
            "recommended_vcpus": kvm.check_extension(Cap.KVM_CAP_NR_VCPUS),
            "one_gib_pages": bool(kvm.offers_1g_pages()),
            "vcpu_mmap_size": kvm.vcpu_mmap_size(),
            "memory_slots": kvm.check_extension(Cap.KVM_CAP_NR_MEMSLOTS),
            "cpuid_entries": len(kvm.supported_cpuid()),
            "capabilities": {name: kvm.check_extension(Cap[name]) for name in _INFO_CAPABILITIES},
        }
    if as_json:
        import json
        return _print_or_fail(json.dumps(facts, indent=2) + "\n")
    rows = [
        ("KVM API version", str(facts["api_version"])),
        ("max vCPUs", f"{facts['max_vcpus']} (recommended {facts['recommended_vcpus']})"),
        ("1 GiB pages for guests", _yes(facts["one_gib_pages"])),
        ("vCPU mapping size", f"{facts['vcpu_mmap_size']} bytes"),
        ("memory slots", str(facts["memory_slots"])),
        ("CPUID entries supported", str(facts["cpuid_entries"])),
    ]
    for name, value in facts["capabilities"].items():
        rows.append((name, _yes(value) + (f" ({value})" if value > 1 else "")))
    import io
    from rich.console import Console
    from rich.table import Table
    table = Table(title="KVM on this host", show_header=True)
    table.add_column("what")
    table.add_column("value")
    for row in rows:
        table.add_row(*row)
    text = io.StringIO()
    Console(file=text, force_terminal=sys.stdout.isatty(), width=_width()).print(table)
    return _print_or_fail(text.getvalue())


_INFO_CAPABILITIES = ("KVM_CAP_IMMEDIATE_EXIT", "KVM_CAP_SET_TSS_ADDR", "KVM_CAP_USER_MEMORY", "KVM_CAP_EXT_CPUID",
                      "KVM_CAP_COALESCED_MMIO", "KVM_CAP_COALESCED_PIO", "KVM_CAP_IOEVENTFD", "KVM_CAP_IRQCHIP")


def _width() -> int:
    import shutil
    return shutil.get_terminal_size((100, 24)).columns


def _print_or_fail(text: str) -> int:
    """Write `text` to stdout in one go; a stdout that cannot take it is one line on stderr, not a
    traceback: 141 when its reader went away, as for a guest's output, 2 for any other error."""
    import os
    data = text.encode()
    try:
        while data:
            data = data[os.write(_fileno(sys.stdout, 1), data):]
    except OSError as err:
        return _stdout_failed(err)
    return 0


def _yes(value) -> str:
    return "yes" if value else "no"


if __name__ == "__main__":
    main()
