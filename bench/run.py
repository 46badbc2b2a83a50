"""kvmrun's benchmarks, measured side by side in one run: medians of repeated runs, with min and max.
Prints one table and writes bench/results.json. Never asserts: figures are for people to read.

  make bench                        the full run (installs QEMU for the comparison)
  python bench/run.py --quick       tiny sizes and few repetitions: checks the benchmarks still work
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _kvmrun_command():
    """The `kvmrun` command users run (the console script beside this Python), else `python -m kvmrun`,
    which also imports runpy and its importlib machinery (~5 ms more a start here)."""
    script = Path(sys.executable).with_name("kvmrun")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "kvmrun"]


KVMRUN = _kvmrun_command()
# As users run it: with cached bytecode. (Some environments set PYTHONDONTWRITEBYTECODE, which makes
# every start compile kvmrun's modules again, while the packages in the import floor come compiled.)
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


class Figure:
    def __init__(self, samples):
        self.samples = list(samples)

    @property
    def median(self):
        return statistics.median(self.samples)

    def as_dict(self, unit):
        return {"median": self.median, "min": min(self.samples), "max": max(self.samples),
                "runs": len(self.samples), "unit": unit}


def timed(argv, runs, env=None, status=None):
    """Wall-clock seconds of whole processes; stdout is discarded. With `status`, every run must end
    with it: a figure for a guest that did not end as meant would mean nothing."""
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        ended = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env or ENV,
                               check=False).returncode
        samples.append(time.perf_counter() - start)
        if status is not None and ended != status:
            raise SystemExit(f"bench: {' '.join(argv)} ended with {ended}, not {status}: the figure would mean "
                             f"nothing")
    return Figure(samples)


def timed_side_by_side(argvs, runs, status):
    """Milliseconds of commands compared with each other, each run in turn (A B A B ...): a host whose
    speed drifts (a shared machine) slows them alike rather than whichever ran in the slow spell.
    Every run must end with `status`."""
    samples = [[] for _ in argvs]
    for _ in range(runs):
        for argv, taken in zip(argvs, samples):
            start = time.perf_counter()
            ended = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV,
                                   check=False).returncode
            taken.append((time.perf_counter() - start) * 1e3)
            if ended != status:
                raise SystemExit(f"bench: {' '.join(argv)} ended with {ended}, not {status}: the figure would "
                                 f"mean nothing")
    return [Figure(taken) for taken in samples]


def peak_rss_mib(argv, runs):
    """Peak RSS through GNU time: a child forked from this Python process would count Python's own
    pages in its high-water mark, a grandchild forked from `time` does not."""
    samples = []
    for _ in range(runs):
        result = subprocess.run(["/usr/bin/time", "-f", "%M", *argv], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True, env=ENV, check=False)
        samples.append(int(result.stderr.strip().splitlines()[-1]) / 1024)
    return Figure(samples)


def build(build_dir, exits, outsb):
    subprocess.run(["make", "-s", "-B", "-C", str(ROOT / "bench" / "guests"), f"BUILD={build_dir}", f"EXITS={exits}",
                    f"OUTSB={outsb}"], check=True)


def qemu_argv(machine):
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        return None
    argv = [qemu, "-enable-kvm", "-display", "none", "-no-reboot", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]
    if machine == "microvm":
        argv += ["-M", "microvm", "-nodefaults"]
    else:
        argv += ["-serial", "none", "-monitor", "none"]
    return argv


def in_process_boots(image, boots):
    import kvmrun
    kvmrun.run(image)
    samples = []
    for _ in range(boots):
        start = time.perf_counter()
        kvmrun.run(image)
        samples.append(time.perf_counter() - start)
    return Figure(samples)


def suite_boots(image, boots):
    """A PC kernel ending through isa-debug-exit, booted as kvmrun test's workers do: in-process, each
    VM handed to the background closers; the wait for the closers is not a guest's cost."""
    from kvmrun.api import run_in_suite
    from kvmrun.machine import TEARDOWN
    samples = []
    for _ in range(boots + 1):
        start = time.perf_counter()
        result = run_in_suite(image, exit_code="qemu")
        samples.append(time.perf_counter() - start)
        if result.status != 67:
            raise SystemExit(f"{image} ended with {result.status}, not 67: the figure would mean nothing")
        TEARDOWN.wait()
    return Figure(samples[1:])              # the first pays for imports


def timed_teardown(argv, runs):
    """The C runner with the irqchip: its whole process (ms), and KVM's teardown as it reports it."""
    whole, teardown = [], []
    for _ in range(runs):
        start = time.perf_counter()
        result = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV,
                                check=True)
        whole.append((time.perf_counter() - start) * 1e3)
        teardown.append(float(result.stderr.split("teardown ", 1)[1].split()[0]))
    return Figure(whole), Figure(teardown)


def irqchip_runs(halt_image, exit_image, samples):
    """In-process runs of a `cli; hlt` guest with the in-kernel irqchip and without, alternating so
    that drift hits both alike (ms). For each: kvmrun.run as a caller sees it (teardown included);
    the run alone, its teardown handed to kvmrun's background thread, and that teardown (from the
    run's end until the VM's descriptors are closed). With the irqchip also the same guest ending
    through the exit port: what the `cli; hlt` run takes longer is the halt detection's latency."""
    import kvmrun
    from kvmrun.api import run_in_suite
    from kvmrun.machine import TEARDOWN
    figures = {key: [] for key in ("fg_on", "fg_off", "run_on", "run_off", "teardown_on", "teardown_off",
                                   "run_exit_on", "latency")}

    def ran(result):
        if result.status != 0:            # a figure for a guest that did not end as meant means nothing
            raise SystemExit(f"bench: {result.image} ended with status {result.status} ({result.reason.value})")

    def background(image, irqchip):
        TEARDOWN.wait()
        start = time.perf_counter()
        ran(run_in_suite(image, irqchip=irqchip, background_teardown=True))
        end = time.perf_counter()
        TEARDOWN.wait()
        return (end - start) * 1e3, (time.perf_counter() - end) * 1e3

    for sample in range(samples + 1):     # the first round warms up and is not counted
        row = {}
        for irqchip in ("on", "off"):
            start = time.perf_counter()
            ran(kvmrun.run(halt_image, irqchip=irqchip))
            row[f"fg_{irqchip}"] = (time.perf_counter() - start) * 1e3
            row[f"run_{irqchip}"], row[f"teardown_{irqchip}"] = background(halt_image, irqchip)
        row["run_exit_on"] = background(exit_image, "on")[0]
        row["latency"] = row["run_on"] - row["run_exit_on"]
        if sample:
            for key, value in row.items():
                figures[key].append(value)
    return {key: Figure(values) for key, values in figures.items()}


def copies_manifest(image, count, keys=""):
    """A manifest of `count` guests g0, g1, ... booting `image`, each with the TOML `keys` too."""
    return "".join(f'[[guest]]\nname = "g{i}"\nimage = "{image}"\n{keys}\n' for i in range(count))


def suite_throughput(image, guests, jobs, runs, irqchip="off"):
    """kvmrun test on a manifest of `guests` copies of a small guest: guests per second, counted over
    the whole command and over the run itself (without Python's start-up)."""
    with tempfile.TemporaryDirectory() as folder:
        manifest = Path(folder) / "kvmrun.toml"
        manifest.write_text(copies_manifest(image, guests, f'irqchip = "{irqchip}"\n'))
        whole, inner = [], []
        for _ in range(runs):
            start = time.perf_counter()
            result = subprocess.run(KVMRUN + ["test", str(manifest), "--jobs", str(jobs)], capture_output=True,
                                    text=True, env=ENV, check=False)
            whole.append(guests / (time.perf_counter() - start))
            elapsed = float(result.stdout.rsplit(" in ", 1)[1].split()[0])
            inner.append(guests / elapsed)
    return Figure(whole), Figure(inner)


# pytest as a guest-suite venv has it: kvmrun, pytest, pytest-xdist. Hypothesis, in this venv for
# kvmrun's own tests, registers a plugin that costs ~0.3 s of every pytest start: left out.
PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:hypothesispytest"]
PROCESS_PER_GUEST = """import subprocess, sys, pytest
IMAGES = {images!r}

@pytest.mark.parametrize("image", IMAGES)
def test_guest(image):
    assert subprocess.run([sys.executable, "-m", "kvmrun", "boot", image], stdout=subprocess.DEVNULL).returncode == 0
"""


def suite_paths(image, guests, jobs, runs):
    """Guests per second for the three ways to run a suite of `guests` copies of `image`: kvmrun test,
    pytest collecting the same manifest, and pytest with a `kvmrun boot` process per guest. Each over
    the whole command, and without start-up: from the difference to the same command on 2 guests."""
    def argvs(folder, count):
        manifest = folder / f"kvmrun_{count}.toml"
        manifest.write_text(copies_manifest(image, count))
        per_process = folder / f"test_process_per_guest_{count}.py"
        per_process.write_text(PROCESS_PER_GUEST.format(images=[image] * count))
        return {"kvmrun_test": KVMRUN + ["test", str(manifest), "--jobs", str(jobs)],
                "pytest_plugin": PYTEST + ["-n", str(jobs), str(manifest)],
                "pytest_process_per_guest": PYTEST + ["-n", str(jobs), str(per_process)]}

    whole, steady = {}, {}
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        big, small = argvs(folder, guests), argvs(folder, 2)
        # what pytest -n 2 costs before any guest: a run of one empty Python test, kvmrun's plugin off
        empty = folder / "test_empty.py"
        empty.write_text("def test_nothing():\n    pass\n")
        start_up = timed(PYTEST + ["-p", "no:kvmrun", "-n", str(jobs), str(empty)], runs, status=0)
        for path in big:
            # the slow path needs fewer runs to mean something (each is ~10 s)
            count = max(2, runs // 3) if path == "pytest_process_per_guest" else runs
            big_times = timed(big[path], count, status=0).samples
            small_times = timed(small[path], count, status=0).samples
            whole[path] = Figure(guests / t for t in big_times)
            steady[path] = Figure((guests - 2) / max(1e-6, b - s) for b, s in zip(big_times, small_times))
    return whole, steady, start_up


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, few repetitions")
    parser.add_argument("--json", default=str(ROOT / "bench" / "results.json"))
    args = parser.parse_args()
    quick = args.quick
    runs, exits, outsb, boots = (2, 20000, 65536, 20) if quick else (7, 100000, 1 << 20, 300)
    samples = 4 if quick else 100          # of each in-process run with and without the irqchip
    bdir = ROOT / "build" / ("bench-quick" if quick else "bench")
    build(bdir, exits, outsb)
    subprocess.run(KVMRUN + ["--version"], env=ENV, stdout=subprocess.DEVNULL, check=True)   # writes bytecode
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "kvmrun")], env=ENV, check=True)
    runner = str(bdir / "runner")
    g = {name: str(bdir / name) for name in ("hlt.bin", "outs80.bin", "outs81.bin", "outsb.bin",
                                             "hlt_multiboot.elf", "clihlt.bin", "cliexit.bin",
                                             "vga_multiboot.elf", "bootsector.img")}
    results = {}
    rows = []

    def record(key, figure, unit):
        results[key] = figure.as_dict(unit)
        return figure

    # 1. whole-process boot of a HLT guest
    def ms(argv, count=runs):
        return Figure(s * 1e3 for s in timed(argv, count).samples)

    boot_k = record("boot_kvmrun_ms", ms(KVMRUN + ["boot", g["hlt.bin"]]), "ms")
    boot_c = record("boot_c_runner_ms", ms([runner, g["hlt.bin"]]), "ms")
    floor_pass = record("python_pass_ms", ms([sys.executable, "-c", "pass"]), "ms")
    floor_import = record("python_import_floor_ms", ms([sys.executable, "-c", "import click, elftools.elf.elffile"]),
                          "ms")
    qemu = {}
    # QEMU's pc machine runs SeaBIOS through the emulator here (~5 s a boot): not in quick mode.
    for machine, qruns in (("microvm", runs),) if quick else (("microvm", runs), ("pc", 3)):
        argv = qemu_argv(machine)
        if argv is not None:
            qemu[machine] = record(f"boot_qemu_{machine}_ms", Figure(
                s * 1e3 for s in timed(argv + ["-kernel", g["hlt_multiboot.elf"]], qruns).samples), "ms")
    pc = "skipped in quick mode" if quick else _ms(qemu.get("pc"))
    rows.append(("whole-process boot, HLT guest", f"{boot_k.median:.1f} ms",
                 f"C {boot_c.median:.1f} ms; QEMU microvm {_ms(qemu.get('microvm'))}; QEMU pc {pc}",
                 f"≤ import floor + 10 ms = {floor_import.median + 10:.1f} ms "
                 f"(python -c pass {floor_pass.median:.1f} ms)"))

    # 1b. a multiboot kernel that prints to VGA and ends through isa-debug-exit: the PC platform
    # (irqchip, MP table, fw_cfg) and the screen, against QEMU microvm's -kernel on the same image.
    vga_argv = KVMRUN + ["boot", "--exit-code", "qemu", g["vga_multiboot.elf"]]
    status = subprocess.run(vga_argv, stdout=subprocess.DEVNULL, env=ENV).returncode
    if status != 67:
        raise SystemExit(f"the multiboot VGA guest ended with {status}, not 67: the figure would mean nothing")
    micro_argv = qemu_argv("microvm")
    if micro_argv is None:
        vga_k, vga_q = record("boot_multiboot_vga_kvmrun_ms", ms(vga_argv, 3 * runs), "ms"), None
    else:
        vga_k, vga_q = timed_side_by_side([vga_argv, micro_argv + ["-kernel", g["vga_multiboot.elf"]]], 3 * runs,
                                          status=67)
        record("boot_multiboot_vga_kvmrun_ms", vga_k, "ms")
        record("boot_multiboot_vga_qemu_microvm_ms", vga_q, "ms")
    rows.append(("multiboot kernel printing to VGA, whole process", f"{vga_k.median:.1f} ms",
                 f"QEMU microvm {_ms(vga_q)}" + (f" ({vga_q.median / vga_k.median:.1f}x kvmrun)" if vga_q else ""),
                 "faster than QEMU microvm"))
    # The same kernel as a test suite boots it (kvmrun test, the pytest plugin): in-process, the VM
    # closed in the background while the next guest starts.
    vga_suite = record("boot_multiboot_vga_in_suite_ms", Figure(
        s * 1e3 for s in suite_boots(g["vga_multiboot.elf"], 20 if quick else 100).samples), "ms")
    rows.append(("  the same, a guest of a suite (kvmrun.run)", f"{vga_suite.median:.1f} ms",
                 f"QEMU microvm {_ms(vga_q)} a boot" + (f" ({vga_q.median / vga_suite.median:.0f}x kvmrun)"
                                                        if vga_q else ""), "faster than QEMU microvm"))

    # 1c. a boot sector that prints with int 10h teletype and ends through isa-debug-exit, booted as
    # a disk: on kvmrun's BIOS against QEMU pc's SeaBIOS (~5-10 s a boot here, through the emulator:
    # few runs, none in quick mode). Each run's status is checked, QEMU's included.
    disk = g["bootsector.img"]
    bios_argv = KVMRUN + ["boot", "--exit-code", "qemu", disk]
    timed(bios_argv, 1, status=67)          # checked before timing; also warms the BIOS's modules
    bios_k = record("boot_bios_kvmrun_ms", Figure(s * 1e3 for s in timed(bios_argv, runs, status=67).samples),
                    "ms")
    pc_argv = None if quick else qemu_argv("pc")
    bios_q = None if pc_argv is None else record("boot_bios_qemu_pc_ms", Figure(
        s * 1e3 for s in timed(pc_argv + ["-drive", f"file={disk},format=raw,if=ide"], 3, status=67).samples), "ms")
    pc = "skipped in quick mode" if quick else _ms(bios_q)
    rows.append(("boot sector printing with int 10h, whole process", f"{bios_k.median:.1f} ms",
                 f"QEMU pc (SeaBIOS) {pc}" + (f" ({bios_q.median / bios_k.median:.0f}x kvmrun)" if bios_q else ""),
                 "50x faster than QEMU pc + SeaBIOS"))
    bios_suite = record("boot_bios_in_suite_ms", Figure(
        s * 1e3 for s in suite_boots(disk, 20 if quick else 100).samples), "ms")
    rows.append(("  the same, a guest of a suite (kvmrun.run)", f"{bios_suite.median:.1f} ms",
                 f"QEMU pc (SeaBIOS) {pc}" + (f" a boot ({bios_q.median / bios_suite.median:.0f}x kvmrun)"
                                              if bios_q else ""), "50x faster than QEMU pc + SeaBIOS"))

    # 2. in-process boot; the last recorded figure beside it shows what new machinery (the VGA
    # window's dirty-logged slot, its tick) costs a guest that does not use it.
    previous = _previous(args.json, "boot_in_process_ms")
    inproc = record("boot_in_process_ms", Figure(s * 1e3 for s in in_process_boots(g["hlt.bin"], boots).samples), "ms")
    rows.append(("in-process boot (kvmrun.run)", f"{inproc.median:.2f} ms", f"C whole process {boot_c.median:.1f} ms"
                 + (f"; last recorded run {previous:.2f} ms" if previous else ""),
                 f"≤ 2 x C = {2 * boot_c.median:.1f} ms"))

    irqchip_rows_at = len(rows)         # its rows follow in-process boot; measured later (see 2b)

    # 3. cost per port-IO exit. kvmrun and C runs alternate, so that drift in this (shared, virtual)
    # machine's speed hits both alike; the HLT guest's time is subtracted from each.
    hlt_k = timed(KVMRUN + ["boot", g["hlt.bin"]], runs).median
    hlt_c = timed([runner, g["hlt.bin"]], runs).median
    per = {}
    for label, image in (("", "outs81.bin"), ("_post", "outs80.bin")):
        pairs = [(timed(KVMRUN + ["boot", g[image]], 1).median, timed([runner, g[image]], 1).median)
                 for _ in range(runs)]
        per[label] = (record(f"exit_kvmrun{label}_us", Figure((k - hlt_k) / exits * 1e6 for k, _ in pairs), "µs"),
                      record(f"exit_c_runner{label}_us", Figure((c - hlt_c) / exits * 1e6 for _, c in pairs), "µs"),
                      record(f"exit_ratio{label}", Figure((k - hlt_k) / (c - hlt_c) for k, c in pairs), "x"))
    per_k, per_c, ratio = per[""]
    rows.append(("port-IO exit (OUT to an unclaimed port)", f"{per_k.median:.2f} µs",
                 f"C {per_c.median:.2f} µs ({ratio.median:.2f}x, runs {min(ratio.samples):.2f}-"
                 f"{max(ratio.samples):.2f}x)", "≤ 1.2x C"))
    # 3b. the same guest and exits with --trace to a file: what the traced loop (a line per exit, time
    # and counts) costs each exit. Alternated with untraced runs; each side's own HLT start-up is
    # subtracted (tracing imports a few more modules).
    trace_file = str(bdir / "trace.txt")
    traced_argv = KVMRUN + ["boot", "--trace-file", trace_file]
    hlt_t = timed(traced_argv + [g["hlt.bin"]], runs).median
    pairs = [(timed(traced_argv + [g["outs81.bin"]], 1).median, timed(KVMRUN + ["boot", g["outs81.bin"]], 1).median)
             for _ in range(runs)]
    with open(trace_file) as traced:
        traced_lines = sum(1 for line in traced if line.startswith("exit:"))
    if traced_lines < exits:
        raise SystemExit(f"bench: the trace has {traced_lines} exit lines, not {exits}: the figure would mean nothing")
    per_t = record("exit_traced_us", Figure((t - hlt_t) / exits * 1e6 for t, _ in pairs), "µs")
    traced_ratio = record("exit_traced_ratio", Figure((t - hlt_t) / (k - hlt_k) for t, k in pairs), "x")
    rows.append(("  the same, --trace to a file", f"{per_t.median:.2f} µs",
                 f"untraced {statistics.median((k - hlt_k) / exits * 1e6 for _, k in pairs):.2f} µs "
                 f"({traced_ratio.median:.1f}x)", "-"))
    per_k80, per_c80, _ = per["_post"]
    rows.append(("OUT to port 0x80 (kvmrun: ioeventfd)", f"{per_k80.median:.2f} µs", f"C {per_c80.median:.2f} µs "
                 f"(plain exits)", "-"))

    # 5. SMP: aggregate exit rate of 2 vCPUs vs 1, runs alternating as for exits. Measured before the
    # long rep outsb runs: after seconds of emulation-heavy work this host gives a second vCPU thread
    # little CPU for a while (seen as 1.1x here right after, 1.7-1.8x otherwise).
    pairs = [(timed(KVMRUN + ["boot", g["outs81.bin"]], 1).median,
              timed(KVMRUN + ["boot", "--cpus", "2", g["outs81.bin"]], 1).median) for _ in range(runs)]
    rate1 = record("exits_per_s_1_vcpu", Figure(exits / (one - hlt_k) for one, _ in pairs), "exits/s")
    rate2 = record("exits_per_s_2_vcpus", Figure(2 * exits / (two - hlt_k) for _, two in pairs), "exits/s")
    scale = record("smp_scaling", Figure(2 * (one - hlt_k) / (two - hlt_k) for one, two in pairs), "x")
    rows.append(("SMP exit rate, 2 vCPUs vs 1", f"{rate2.median / 1e3:.0f}k/s vs {rate1.median / 1e3:.0f}k/s",
                 f"{scale.median:.2f}x (runs {min(scale.samples):.2f}-{max(scale.samples):.2f}x)", "≥ 1.6x"))

    # 4. serial throughput with rep outsb
    mib = outsb / (1 << 20)               # start-up (the HLT guest's time) subtracted, as for exits
    tp_k = record("outsb_kvmrun_mib_s", Figure(mib / (s - hlt_k) for s in
                                               timed(KVMRUN + ["boot", g["outsb.bin"]], runs).samples), "MiB/s")
    tp_c = record("outsb_c_runner_mib_s", Figure(mib / (s - hlt_c) for s in
                                                 timed([runner, g["outsb.bin"]], runs).samples), "MiB/s")
    rows.append((f"rep outsb, {outsb // 1024} KiB to COM1", f"{tp_k.median * 1024:.0f} KiB/s",
                 f"C {tp_c.median * 1024:.0f} KiB/s ({tp_k.median / tp_c.median:.2f}x)", "≥ 0.85x C"))

    # 6. peak RSS with 1 GiB of guest RAM
    rss_k = record("rss_kvmrun_mib", peak_rss_mib(KVMRUN + ["boot", "--memory", "1G", g["hlt.bin"]], runs), "MiB")
    rss_c = record("rss_c_runner_mib", peak_rss_mib([runner, g["hlt.bin"], "1024"], runs), "MiB")
    rows.append(("peak RSS, --memory 1G", f"{rss_k.median:.1f} MiB", f"C {rss_c.median:.1f} MiB "
                 f"(+{rss_k.median - rss_c.median:.1f} MiB)", "≤ C + 30 MiB"))

    # 2b. the in-kernel irqchip (--irqchip on): boot, teardown, halt detection. KVM handles HLT itself
    # then, so the C runner's guest ends through the exit port. Measured after the exit and SMP figures:
    # seconds of creating and tearing down irqchips (kernel threads, RCU work) disturb those.
    irqchip_rows = []
    c_on, c_teardown = timed_teardown([runner, g["cliexit.bin"], "128", "irqchip"], runs)
    record("boot_c_runner_irqchip_ms", c_on, "ms")
    record("teardown_c_runner_irqchip_ms", c_teardown, "ms")
    irq = {key: record(f"irqchip_{key}_ms", figure, "ms")
           for key, figure in irqchip_runs(g["clihlt.bin"], g["cliexit.bin"], samples).items()}
    on, off = irq["fg_on"].median, irq["fg_off"].median
    irqchip_rows.append(("in-process boot, --irqchip on", f"{on:.1f} ms",
                         f"--irqchip off {off:.2f} ms; C whole process, irqchip on {c_on.median:.1f} ms",
                         f"≤ 2 x C = {2 * c_on.median:.1f} ms"))
    on, off = irq["teardown_on"].median, irq["teardown_off"].median
    irqchip_rows.append(("  teardown (run's end → VM closed)", f"{on:.1f} ms",
                         f"--irqchip off {off:.2f} ms; C runner's close {c_teardown.median:.1f} ms",
                         f"≤ C + 2 ms = {c_teardown.median + 2:.1f} ms"))
    on, off = irq["run_on"].median, irq["run_off"].median
    irqchip_rows.append(("  run alone (teardown in background)", f"{on:.2f} ms", f"--irqchip off {off:.2f} ms",
                         "≤ 5 ms (a suite's guest)"))
    irqchip_rows.append(("halt latency under the irqchip", f"{irq['latency'].median:.2f} ms",
                         f"cli; hlt {on:.2f} ms - exit port {irq['run_exit_on'].median:.2f} ms (paired runs)",
                         "≤ 3 ms"))

    rows[irqchip_rows_at:irqchip_rows_at] = irqchip_rows

    # 7. kvmrun test throughput
    count = 10 if quick else 40
    for jobs in (1, 2):
        whole, inner = suite_throughput(g["hlt.bin"], count, jobs, runs)
        record(f"kvmrun_test_guests_per_s_jobs{jobs}", whole, "guests/s")
        record(f"kvmrun_test_guests_per_s_jobs{jobs}_run_only", inner, "guests/s")
        micro = qemu.get("microvm")
        rows.append((f"kvmrun test, {count} guests, --jobs {jobs}", f"{whole.median:.0f} guests/s",
                     f"{inner.median:.0f} guests/s without start-up"
                     + (f"; QEMU microvm {1e3 / micro.median:.0f} boots/s" if micro else ""),
                     "≥ 10x QEMU microvm" if micro else "-"))
    for jobs in (1, 2):
        whole, inner = suite_throughput(g["clihlt.bin"], count, jobs, runs, irqchip="on")
        record(f"kvmrun_test_irqchip_guests_per_s_jobs{jobs}", whole, "guests/s")
        record(f"kvmrun_test_irqchip_guests_per_s_jobs{jobs}_run_only", inner, "guests/s")
        rows.append((f"kvmrun test, {count} guests, --jobs {jobs}, --irqchip on", f"{whole.median:.0f} guests/s",
                     f"{1e3 / inner.median:.1f} ms a guest without start-up (--irqchip off "
                     f"{1e3 / results[f'kvmrun_test_guests_per_s_jobs{jobs}_run_only']['median']:.1f} ms)",
                     "≤ 5 ms a guest"))

    # 8. a guest suite three ways: kvmrun test, pytest on the manifest, pytest with a process per guest
    count = 20 if quick else 200
    whole, steady, xdist_start_up = suite_paths(g["hlt.bin"], count, 2, runs)
    record("pytest_xdist_start_up_ms", Figure(t * 1e3 for t in xdist_start_up.samples), "ms")
    for path in whole:
        record(f"suite_{path}_guests_per_s", whole[path], "guests/s")
        record(f"suite_{path}_guests_per_s_steady", steady[path], "guests/s")
    test_rate, plugin_rate = whole["kvmrun_test"].median, whole["pytest_plugin"].median
    test_steady, plugin_steady = steady["kvmrun_test"].median, steady["pytest_plugin"].median
    rows.append((f"{count} guests: kvmrun test --jobs 2", f"{test_rate:.0f} guests/s",
                 f"{test_steady:.0f} guests/s without start-up", "-"))
    rows.append(("  pytest -n 2 on the same manifest", f"{plugin_rate:.0f} guests/s",
                 f"{plugin_steady:.0f} guests/s without start-up; kvmrun test {test_rate / plugin_rate:.2f}x as "
                 f"fast, {test_steady / plugin_steady:.2f}x without start-up; pytest -n 2 on one empty "
                 f"Python test takes {xdist_start_up.median * 1e3:.0f} ms", "within 1.5x of kvmrun test"))
    per_process = whole["pytest_process_per_guest"].median
    rows.append(("  pytest -n 2, a kvmrun boot process per guest", f"{per_process:.0f} guests/s",
                 f"{steady['pytest_process_per_guest'].median:.0f} guests/s without start-up; the plugin "
                 f"{plugin_rate / per_process:.1f}x as fast", "far behind the plugin"))

    Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    from rich.console import Console
    from rich.table import Table
    table = Table(title=f"kvmrun benchmarks ({'quick: sizes too small to mean much' if quick else 'medians'})")
    table.add_column("figure", no_wrap=True)
    for column in ("kvmrun", "compared with", "target"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    Console(width=160).print(table)


def _previous(path, key):
    """A figure's median from the results file of the last full run, None where there is none."""
    try:
        return json.loads(Path(path).read_text())[key]["median"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _ms(figure):
    return "not installed" if figure is None else f"{figure.median:.0f} ms"


if __name__ == "__main__":
    main()
