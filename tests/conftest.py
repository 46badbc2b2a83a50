"""Where the built guests are, and running kvmrun as a separate process.

The `kvm` marker and its skip-or-fail rule come from kvmrun's own pytest plugin (kvmrun.pytest_plugin,
loaded through its entry point), so every run of this suite exercises it."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
GUESTS = Path(os.environ.get("KVMRUN_GUESTS", ROOT / "build" / "guests")).resolve()


def guest(name: str) -> str:
    path = GUESTS / name
    if not path.exists():
        pytest.fail(f"guest {path} is not built: run `make guests` (make test does)")
    return str(path)


def run_kvmrun(*args, stdin=b"", timeout=60, env=None, address_space=None):
    """kvmrun as a user runs it: a separate process; returns CompletedProcess with bytes.
    `address_space` caps its virtual memory (RLIMIT_AS, bytes): guest RAM it cannot reserve then."""
    full_env = dict(os.environ)
    full_env.update(env or {})

    def cap():
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))

    return subprocess.run([sys.executable, "-m", "kvmrun", *map(str, args)], input=stdin,
                          capture_output=True, timeout=timeout, env=full_env,
                          preexec_fn=cap if address_space else None)
