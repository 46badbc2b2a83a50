"""kvmrun benchmarks: print figures (medians of repeated runs, with min and max). Never asserts.

  make bench                      full run
  python bench/run.py --quick     a few repetitions, to check the benchmarks still work
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUESTS = Path(os.environ.get("KVMRUN_GUESTS", ROOT / "build" / "guests"))
sys.path.insert(0, str(ROOT))


def summary(samples):
    return {"median_ms": statistics.median(samples) * 1e3, "min_ms": min(samples) * 1e3,
            "max_ms": max(samples) * 1e3, "runs": len(samples)}


def time_process(argv, runs):
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        samples.append(time.perf_counter() - start)
    return summary(samples)


def time_in_process(image, runs):
    from kvmrun.console import CapturedOutput
    from kvmrun.machine import BootConfig, boot
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        outcome = boot(BootConfig(image=image), CapturedOutput())
        samples.append(time.perf_counter() - start)
        assert outcome.status == 0
    return summary(samples)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few repetitions: check, don't measure")
    parser.add_argument("--json", default=str(ROOT / "bench" / "results.json"))
    args = parser.parse_args()
    runs = 3 if args.quick else 30
    hello = str(GUESTS / "hello64.elf")
    results = {
        "python -c pass": time_process([sys.executable, "-c", "pass"], runs),
        "python -c 'import click, elftools.elf.structs'":
            time_process([sys.executable, "-c", "import click, elftools.elf.structs"], runs),
        "kvmrun boot hello64.elf (whole process)":
            time_process([sys.executable, "-m", "kvmrun", "boot", hello], runs),
        "boot hello64.elf in-process (machine.boot)": time_in_process(hello, runs * 4),
    }
    Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    from rich.console import Console
    from rich.table import Table
    table = Table(title=f"kvmrun benchmarks ({'quick' if args.quick else 'full'})")
    for column in ("what", "median ms", "min ms", "max ms", "runs"):
        table.add_column(column, justify="left" if column == "what" else "right")
    for name, r in results.items():
        table.add_row(name, f"{r['median_ms']:.1f}", f"{r['min_ms']:.1f}", f"{r['max_ms']:.1f}", str(r["runs"]))
    Console().print(table)


if __name__ == "__main__":
    main()
