"""Coverage-guided fuzzing of kvmrun's image loaders with atheris (libFuzzer), run by `make fuzz`.

Every input is an image, read the way `kvmrun boot` reads it; the first byte also picks the mode
asked for. The only acceptable outcomes are a load plan that lies inside RAM and outside kvmrun's boot
structures, or kvmrun's own LoaderError/ConfigError: anything else is a crash, which libFuzzer keeps.

  make fuzz                                   60 s, corpus seeded from build/guests
  make fuzz FUZZ_SECONDS=3600                 a longer campaign
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kvmrun.boot.cpu_modes import Mode  # noqa: E402
from kvmrun.boot.image import plan_image  # noqa: E402
from kvmrun.boot.plan import check_plan  # noqa: E402
from kvmrun.boot.structures import plan_boot_structures  # noqa: E402
from kvmrun.errors import ConfigError, LoaderError  # noqa: E402
from kvmrun.memory import RamLayout, overlap  # noqa: E402

RAM = RamLayout(16 << 20)
MODES = (None, Mode.REAL, Mode.PROTECTED, Mode.LONG)
RESERVED = {mode: plan_boot_structures(mode, RAM, 1, one_gib_pages=False).reserved
            for mode in (Mode.REAL, Mode.PROTECTED, Mode.LONG)}


def check_image(data: bytes) -> bool:
    """True when a plan came out (and holds every invariant), False for a LoaderError; raises
    AssertionError or anything else for a bug."""
    if not data:
        return False
    asked = MODES[data[0] % len(MODES)]
    try:
        plan = plan_image(data, asked, None, None)
        mode = asked or plan.default_mode
        check_plan(plan, RAM, RESERVED[mode], mode)
    except (LoaderError, ConfigError):
        return False
    for seg in plan.segments:
        assert RAM.contains(seg.addr, seg.memsz), seg
        assert len(seg.data) <= seg.memsz, seg
        assert not any(overlap((seg.addr, seg.end), (r.start, r.end)) for r in RESERVED[mode]), seg
    assert RAM.contains(plan.entry, 1)
    return True


def main() -> None:
    import atheris
    atheris.instrument_all()          # coverage feedback from kvmrun's (and pyelftools') Python code
    atheris.Setup(sys.argv, lambda data: check_image(bytes(data)))
    atheris.Fuzz()


if __name__ == "__main__":
    main()
