"""Shared fixtures: where the built guests are, and the `kvm` marker's skip-or-fail rule."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GUESTS = Path(os.environ.get("KVMRUN_GUESTS", ROOT / "build" / "guests")).resolve()


def kvm_usable() -> str:
    """'' when /dev/kvm can be opened, else why not."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError as err:
        return f"/dev/kvm: {err.strerror}"
    os.close(fd)
    return ""


@pytest.fixture(autouse=True)
def _kvm_marker(request):
    """`@pytest.mark.kvm` tests skip without KVM, and fail instead under KVMRUN_REQUIRE_KVM=1."""
    if "kvm" not in request.keywords:
        return
    problem = kvm_usable()
    if not problem:
        return
    if os.environ.get("KVMRUN_REQUIRE_KVM") == "1":
        pytest.fail(f"KVMRUN_REQUIRE_KVM=1 but KVM is unusable: {problem}")
    pytest.skip(f"needs KVM ({problem})")


def guest(name: str) -> str:
    path = GUESTS / name
    if not path.exists():
        pytest.fail(f"guest {path} is not built: run `make guests` (make test does)")
    return str(path)


def run_kvmrun(*args, stdin=b"", timeout=60, env=None):
    """kvmrun as a user runs it: a separate process; returns CompletedProcess with bytes."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "kvmrun", *map(str, args)], input=stdin,
                          capture_output=True, timeout=timeout, env=full_env)
