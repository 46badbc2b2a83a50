"""The command line. The only module that prints for humans or calls sys.exit."""
import sys

import click

from . import __version__
from .errors import ConfigError, KvmError, KvmrunError, KvmUnavailable
from .outcome import STATUS_NO_KVM, STATUS_USAGE, Reason
from .sizes import parse_size

class SizeType(click.ParamType):
    name = "SIZE"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        try:
            return parse_size(value)
        except ValueError as err:
            self.fail(str(err), param, ctx)


class AddressType(click.ParamType):
    name = "ADDRESS"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        try:
            address = int(value, 0)
        except ValueError:
            self.fail(f"{value!r} is not an address (decimal, or hex with 0x)", param, ctx)
        if address < 0:
            self.fail(f"{value!r} is negative", param, ctx)
        return address


class KvmrunGroup(click.Group):
    """Usage errors as one line, `kvmrun: error: ...`, with status 2."""

    def main(self, args=None, prog_name=None, **extra):
        try:
            status = super().main(args, prog_name, standalone_mode=False, **extra)
        except click.UsageError as err:
            click.echo(f"kvmrun: error: {err.format_message()}", err=True)
            sys.exit(STATUS_USAGE)
        except click.Abort:
            sys.exit(130)
        sys.exit(status if isinstance(status, int) else 0)


BOOT_EXAMPLES = """\b
Examples:
  kvmrun boot guest.elf                      ELF64 in long mode, ELF32 in protected mode
  kvmrun boot --mode real boot.bin           a boot sector at 0x7c00 in real mode
  kvmrun boot --mode protected k.bin --load-addr 0x100000 --entry 0x100010
  kvmrun boot -m 1G --cpus 4 smp.elf         four vCPUs, 1 GiB of RAM
  kvmrun boot --timeout 5 guest.elf          status 124 if still running after 5 s
  echo hi | kvmrun boot echo.elf             stdin goes to COM1
\b
Exit status: 0 halted or reset; the value written to port 0xF4 (& 0xFF); 1 guest fault
(report on stderr); 2 bad command line or image; 3 no usable KVM; 124 timeout; 130/143 SIGINT/SIGTERM;
141 stdout closed by its reader.
"""


@click.group(cls=KvmrunGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kvmrun", message="%(prog)s %(version)s")
def main():
    """Boot a raw or ELF guest straight on KVM: no BIOS, no bootloader. COM1 is the terminal,
    and kvmrun's exit status says how the guest ended."""


@main.command(epilog=BOOT_EXAMPLES)
@click.argument("image")
@click.option("--mode", type=click.Choice(["real", "protected", "long"]),
              help="CPU mode at entry. Default: long for ELF64 and raw images, protected for ELF32.")
@click.option("-m", "--memory", type=SizeType(), default="128M", show_default=True,
              help="Guest RAM, in bytes or with K/M/G.")
@click.option("-c", "--cpus", type=int, default=1, show_default=True,
              help="vCPUs, one host thread each (protected and long mode).")
@click.option("--load-addr", type=AddressType(),
              help="Raw images: where to load (default 0x100000, real mode 0x7c00).")
@click.option("--entry", type=AddressType(), help="Raw images: where to start (default the load address).")
@click.option("--timeout", type=float, metavar="SECONDS", help="Stop the guest after this long (status 124).")
@click.option("--strict-io", is_flag=True, help="Make IO to unknown ports or MMIO a guest fault.")
def boot(image, mode, memory, cpus, load_addr, entry, timeout, strict_io):
    """Boot IMAGE (ELF32, ELF64 or a raw binary)."""
    from .boot.cpu_modes import Mode
    from .console import FdInput, FdOutput
    from .machine import BootConfig, boot as boot_machine
    from .terminal import raw_input_mode

    config = BootConfig(image=image, memory=memory, cpus=cpus, mode=Mode(mode) if mode else None,
                        load_addr=load_addr, entry=entry, timeout=timeout, strict_io=strict_io)
    output = FdOutput(_fileno(sys.stdout, 1))
    stdin_fd = _fileno(sys.stdin, 0)
    serial_input = FdInput(stdin_fd, output) if _usable_fd(stdin_fd) else None
    try:
        with raw_input_mode(stdin_fd):
            outcome = boot_machine(config, output, serial_input, handle_signals=True)
    except KvmrunError as err:
        return _fail(err)
    if outcome.fault is not None:
        _report(outcome.fault)
    elif outcome.reason is Reason.TIMEOUT:
        click.echo(f"kvmrun: the guest was still running after --timeout {timeout:g} s; stopped it", err=True)
    return outcome.status


TEST_EXAMPLES = """\b
Examples:
  kvmrun test                                 run the guests in ./kvmrun.toml
  kvmrun test ci/guests.toml --jobs 4         four at a time
  kvmrun test --junit-xml report.xml          for CI systems that read JUnit XML
  kvmrun test -k smp                          only guests whose name contains "smp"
\b
Exit status: 0 every guest passed; 1 some failed; 2 bad manifest or options; 3 no usable KVM.
"""


@main.command(epilog=TEST_EXAMPLES)
@click.argument("manifest", default="kvmrun.toml")
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="Guests at a time (default: one per core).")
@click.option("--junit-xml", "junit_xml", metavar="FILE", help="Write results as JUnit XML to FILE.")
@click.option("-k", "keyword", metavar="SUBSTRING", help="Only run guests whose name contains SUBSTRING.")
def test(manifest, jobs, junit_xml, keyword):
    """Run the guests listed in MANIFEST (TOML) and check how each ended."""
    import time
    from rich.console import Console
    from .kvm.system import open_kvm
    from .suite.manifest import load_manifest
    from .suite.report import Progress, show_summary
    from .suite.runner import default_jobs, run_suite
    try:
        specs = load_manifest(manifest)
        if keyword is not None:
            specs = [spec for spec in specs if keyword in spec.name]
            if not specs:
                raise KvmrunError(f"{manifest}: no guest name contains {keyword!r}")
        if junit_xml:
            _check_writable(junit_xml)      # before the run, not after it
        open_kvm().close()               # no KVM: say so once, not once per guest
    except KvmrunError as err:
        return _fail(err)
    console = Console(highlight=False)
    start = time.perf_counter()
    try:
        with Progress(console, len(specs)) as progress:
            outcomes = run_suite(specs, jobs or default_jobs(), progress.done)
    except KeyboardInterrupt:
        click.echo("kvmrun: interrupted", err=True)
        return 130
    elapsed = time.perf_counter() - start
    show_summary(console, outcomes, elapsed)
    if junit_xml:
        import os
        from .suite.junit import write_junit       # xml and socket: only when asked for
        try:
            write_junit(junit_xml, outcomes, os.path.splitext(os.path.basename(manifest))[0], elapsed)
        except OSError as err:
            return _fail(ConfigError(f"--junit-xml {junit_xml}: {err.strerror}"))
    return 0 if all(o.passed for o in outcomes) else 1


def _check_writable(path: str) -> None:
    import os
    folder = os.path.dirname(path) or "."
    if os.path.isdir(path) or not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise ConfigError(f"--junit-xml {path}: cannot write a file there")


@main.command()
def info():
    """Show what this host's KVM offers kvmrun."""
    from .kvm.abi import Cap
    from .kvm.system import open_kvm
    try:
        kvm = open_kvm()
    except KvmrunError as err:
        return _fail(err)
    with kvm:
        rows = [
            ("KVM API version", str(kvm.api_version)),
            ("max vCPUs", f"{kvm.max_vcpus()} (recommended {kvm.check_extension(Cap.KVM_CAP_NR_VCPUS)})"),
            ("1 GiB pages for guests", _yes(kvm.offers_1g_pages())),
            ("vCPU mapping size", f"{kvm.vcpu_mmap_size()} bytes"),
            ("memory slots", str(kvm.check_extension(Cap.KVM_CAP_NR_MEMSLOTS))),
            ("CPUID entries supported", str(len(kvm.supported_cpuid()))),
        ]
        for cap in (Cap.KVM_CAP_IMMEDIATE_EXIT, Cap.KVM_CAP_SET_TSS_ADDR, Cap.KVM_CAP_USER_MEMORY,
                    Cap.KVM_CAP_EXT_CPUID, Cap.KVM_CAP_COALESCED_MMIO, Cap.KVM_CAP_COALESCED_PIO,
                    Cap.KVM_CAP_IOEVENTFD, Cap.KVM_CAP_IRQCHIP):
            value = kvm.check_extension(cap)
            rows.append((cap.name, _yes(value) + (f" ({value})" if value > 1 else "")))
    from rich.console import Console
    from rich.table import Table
    table = Table(title="KVM on this host", show_header=True)
    table.add_column("what")
    table.add_column("value")
    for row in rows:
        table.add_row(*row)
    Console().print(table)
    return 0


def _yes(value) -> str:
    return "yes" if value else "no"


def _fileno(stream, default: int) -> int:
    """The stream's descriptor; the process's own one where the stream has none (a test runner's)."""
    try:
        return stream.fileno()
    except (AttributeError, ValueError, OSError):
        return default


def _usable_fd(fd: int) -> bool:
    import os
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


def _fail(err: KvmrunError) -> int:
    """Errors kvmrun expects: one line on stderr; KVM's own trouble is 3, everything else 2."""
    click.echo(f"kvmrun: error: {err}", err=True)
    return STATUS_NO_KVM if isinstance(err, (KvmUnavailable, KvmError)) else STATUS_USAGE


def _report(fault) -> None:
    from rich.console import Console
    Console(stderr=True, highlight=False).print(fault)


if __name__ == "__main__":
    main()
