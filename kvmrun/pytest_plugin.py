"""pytest plugin, loaded through the `pytest11` entry point whenever kvmrun is installed.

- `@pytest.mark.kvm`: the test needs /dev/kvm. Without it the test is skipped, or fails when
  KVMRUN_REQUIRE_KVM=1 (set that in CI, so a missing KVM can never pass silently).
- `kvm_guest`: a fixture returning a callable with kvmrun.run's signature and a 10 s default timeout;
  tests that use it are treated as marked `kvm`.
- Manifests are test files: `kvmrun*.toml`, the files the `kvmrun_manifests` ini option names (glob
  patterns) and any .toml named on the command line are collected, one item per guest
  (pytest_manifest.py, imported only then).

    def test_hello(kvm_guest):
        kvm_guest("build/hello64.elf").expect(status=0, serial=rb"Hello")
"""
import fnmatch
import functools
import os

import pytest

FIXTURE_TIMEOUT = 10.0
MANIFEST_NAMES = "kvmrun*.toml"


def pytest_addoption(parser):
    parser.addini("kvmrun_manifests", type="args", default=[],
                  help=f"glob patterns of kvmrun manifests to collect besides {MANIFEST_NAMES} (a pattern "
                       "with a / is matched against the path from the rootdir, one without against the name)")


def pytest_collect_file(file_path, parent):
    if file_path.suffix == ".toml" and _is_manifest(file_path, parent):
        from kvmrun.pytest_manifest import ManifestFile
        return ManifestFile.from_parent(parent, path=file_path)
    return None


def _is_manifest(file_path, parent) -> bool:
    if fnmatch.fnmatchcase(file_path.name, MANIFEST_NAMES) or parent.session.isinitpath(file_path):
        return True
    config = parent.config
    try:
        relative = file_path.relative_to(config.rootpath).as_posix()
    except ValueError:
        relative = None
    for pattern in config.getini("kvmrun_manifests"):
        if "/" in pattern:
            if relative is not None and fnmatch.fnmatchcase(relative, pattern.removeprefix("./")):
                return True
        elif fnmatch.fnmatchcase(file_path.name, pattern):
            return True
    return False


def pytest_configure(config):
    config.addinivalue_line("markers", "kvm: boots a real guest on /dev/kvm (skipped without KVM, failed "
                                       "instead when KVMRUN_REQUIRE_KVM=1)")


def kvm_problem() -> str:
    """'' when KVM can be used, otherwise why not."""
    return _kvm_problem(os.environ.get("KVMRUN_KVM_DEVICE"))


@functools.lru_cache(maxsize=4)
def _kvm_problem(device) -> str:
    """Asked once a process for each device: a suite of many guests would open /dev/kvm an item."""
    from kvmrun.errors import KvmUnavailable
    from kvmrun.kvm.system import open_kvm
    try:
        open_kvm(device).close()
    except KvmUnavailable as err:
        return str(err)
    return ""


def _require_kvm() -> None:
    problem = kvm_problem()
    if not problem:
        return
    if os.environ.get("KVMRUN_REQUIRE_KVM") == "1":
        pytest.fail(f"KVMRUN_REQUIRE_KVM=1 but KVM cannot be used: {problem}", pytrace=False)
    pytest.skip(f"needs KVM: {problem}")


def pytest_runtest_setup(item):
    if item.get_closest_marker("kvm") is not None:
        _require_kvm()


@pytest.fixture
def kvm_guest(request):
    if request.node.get_closest_marker("kvm") is None:
        _require_kvm()
    from kvmrun.api import run

    def boot(image, **options):
        options.setdefault("timeout", FIXTURE_TIMEOUT)
        return run(image, **options)

    return boot
