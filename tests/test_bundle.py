"""kvmrun boot's module bundle (bundle.py): modules served from it only while their sources are the
ones compiled into it, rewritten when they are not, never written where bytecode may not be, and
a damaged or foreign file ignored."""
import marshal
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, guest
from kvmrun import bundle


def _package_copy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "kvmrun", tmp_path / "kvmrun", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def _bundled_names(root: Path):
    path = root / "kvmrun" / "__pycache__" / f"bundle.{sys.implementation.cache_tag}.bin"
    return set(bundle.read_bundle(str(path))), path


def _boot(root: Path, *args, write=True):
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(root)
    if not write:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return subprocess.run([sys.executable, "-m", "kvmrun", "boot", *args], cwd=root, env=env,
                          capture_output=True, timeout=60)


def test_a_bundle_written_is_read_back_and_serves_its_modules(tmp_path):
    path = str(tmp_path / "bundle.bin")
    package = ROOT / "kvmrun"
    bundle.write_bundle(path, {"kvmrun.sizes": str(package / "sizes.py"),
                               "kvmrun.boot": str(package / "boot" / "__init__.py"),
                               "kvmrun.no_such_module": str(package / "no_such_module.py")})
    entries = bundle.read_bundle(path)
    assert set(entries) == {"kvmrun.sizes", "kvmrun.boot"}
    finder = bundle.ModuleBundle(entries)
    spec = finder.find_spec("kvmrun.sizes")
    assert spec.origin == str(ROOT / "kvmrun" / "sizes.py") and spec.loader is finder
    package = finder.find_spec("kvmrun.boot")
    assert package.submodule_search_locations == [str(ROOT / "kvmrun" / "boot")]
    assert finder.find_spec("kvmrun.layout") is None and not finder.stale
    namespace = type(sys)("kvmrun.sizes")
    namespace.__spec__ = spec
    finder.exec_module(namespace)
    assert spec.loader_state.co_filename == spec.origin
    from kvmrun import sizes
    assert {name for name in vars(namespace) if name[0] not in "_@"} == \
        {name for name in vars(sizes) if name[0] not in "_@"}          # "@": pytest's assertion rewriting


def test_a_module_whose_source_changed_is_not_served_and_makes_the_bundle_stale(tmp_path):
    source = tmp_path / "module.py"
    source.write_text("x = 1\n")
    status = source.stat()
    code = marshal.dumps(compile("x = 1\n", str(source), "exec"))
    finder = bundle.ModuleBundle({"kvmrun.m": (str(source), False, status.st_mtime_ns, status.st_size, code)})
    assert finder.find_spec("kvmrun.m") is not None and not finder.stale
    source.write_text("x = 22\n")
    assert finder.find_spec("kvmrun.m") is None and finder.stale
    source.unlink()
    assert finder.find_spec("kvmrun.m") is None


def _index(index) -> bytes:
    marshalled = marshal.dumps(index)
    return bundle._HEADER + len(marshalled).to_bytes(8, "little") + marshalled


@pytest.mark.parametrize("content", [
    b"", b"not a bundle", bundle._HEADER, bundle._HEADER + b"\xff" * 40, b"kvmrun bundle 0\n" + b"\0" * 40,
    bundle._HEADER + (1 << 40).to_bytes(8, "little") + b"\0" * 40,        # an index longer than the file
    _index(1), _index({"kvmrun.x": (1, 2)}),                                  # not an index of entries
])
def test_a_damaged_or_foreign_file_is_ignored(tmp_path, content):
    path = tmp_path / "bundle.bin"
    path.write_bytes(content)
    assert bundle.read_bundle(str(path)) == {}
    assert bundle.read_bundle(str(tmp_path / "missing.bin")) == {}


def test_damaged_code_is_imported_as_usual(tmp_path):
    """An index whose code is cut short or garbage: the module is not served (its source is used)."""
    source = ROOT / "kvmrun" / "sizes.py"
    status = source.stat()
    path = tmp_path / "bundle.bin"
    entry = (str(source), False, status.st_mtime_ns, status.st_size)
    path.write_bytes(_index({"kvmrun.sizes": entry + (0, 400), "kvmrun.layout": entry + (400, 10)}) + b"\xe3" * 200)
    finder = bundle.ModuleBundle(bundle.read_bundle(str(path)))
    assert finder.find_spec("kvmrun.sizes") is None and finder.find_spec("kvmrun.layout") is None
    assert finder.stale


@pytest.mark.kvm
def test_boot_writes_the_bundle_uses_it_and_sees_an_edit(tmp_path):
    root = _package_copy(tmp_path)
    first = _boot(root, guest("hello64.elf"))
    assert first.returncode == 0 and b"Hello" in first.stdout, first.stderr
    names, path = _bundled_names(root)
    assert {"kvmrun.machine", "kvmrun.console", "kvmrun.kvm.vcpu"} <= names
    assert "kvmrun.launch" not in names and "kvmrun.cli" not in names     # loaded before it, or not by boot
    written = path.stat().st_mtime_ns

    again = _boot(root, guest("hello64.elf"))
    assert (again.returncode, again.stdout) == (first.returncode, first.stdout)
    assert path.stat().st_mtime_ns == written                            # nothing changed: not rewritten

    screen = root / "kvmrun" / "console.py"
    screen.write_text(screen.read_text() + "\nimport sys\nsys.stderr.write('edited console\\n')\n")
    edited = _boot(root, guest("hello64.elf"))
    assert edited.returncode == 0 and b"edited console" in edited.stderr
    assert path.stat().st_mtime_ns != written                            # written anew with the edit
    assert b"edited console" in _boot(root, guest("hello64.elf")).stderr


@pytest.mark.kvm
def test_no_bundle_is_written_where_bytecode_is_not_to_be(tmp_path):
    root = _package_copy(tmp_path)
    done = _boot(root, guest("hello64.elf"), write=False)
    assert done.returncode == 0, done.stderr
    names, path = _bundled_names(root)
    assert not path.exists() and names == set()
