"""A manifest's PC kernels and their modules: found from the manifest's folder, told to the guest as
the manifest writes them (so its output does not depend on where the checkout lies), and a module's
errors filed under the 'modules' key. Pure: nothing here opens /dev/kvm."""
import struct

import pytest

from kvmrun.boot.prepare import plan_boot
from kvmrun.options import boot_config
from kvmrun.suite.manifest import ManifestError, load_manifest

MiB, GiB = 1 << 20, 1 << 30


def multiboot_kernel() -> bytes:
    """Loaded by the header's address fields: the file at 0x100000, its bss up to 0x101000."""
    magic, flags = 0x1BADB002, 1 << 16
    header = struct.pack("<8I", magic, flags, -(magic + flags) % (1 << 32), 0x100000, 0x100000, 0, 0x101000,
                         0x100020)
    return header + b"\xf4" * 0x100


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "kernels").mkdir()
    (tmp_path / "kernels" / "k.bin").write_bytes(multiboot_kernel())
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "m.bin").write_bytes(b"module bytes")
    return tmp_path


def manifest(folder, modules: str) -> str:
    path = folder / "kvmrun.toml"
    path.write_text(f'[[guest]]\nname = "a"\nimage = "kernels/k.bin"\ncmdline = "from a manifest"\n'
                    f'modules = {modules}\n')
    return str(path)


def test_the_guest_is_told_its_kernel_and_modules_as_the_manifest_writes_them(folder):
    (spec,) = load_manifest(manifest(folder, '["mods/m.bin=arg", "mods/m.bin"]'))
    assert spec.image == str(folder / "kernels" / "k.bin")               # opened where it was found
    config = boot_config(spec.image, spec.options, spec.image_written)
    setup, _ = plan_boot(config, one_gib_pages=False)
    [info] = [bytes(blob.data) for blob in setup.blobs if blob.name == "multiboot information"]
    assert b"\0kernels/k.bin from a manifest\0mods/m.bin arg\0mods/m.bin\0" in info
    modules = [blob for blob in setup.blobs if blob.name.startswith("module")]
    assert [(blob.name, bytes(blob.data)) for blob in modules] == [("module 0 (mods/m.bin)", b"module bytes"),
                                                                   ("module 1 (mods/m.bin)", b"module bytes")]
    assert not any(str(folder).encode() in bytes(blob.data) for blob in setup.blobs)


@pytest.mark.parametrize("modules, problem", [
    ('["nope.bin"]', "'modules' 'nope.bin': no such file (looked at {folder}/nope.bin)"),
    ('["mods/m.bin", "mods=x"]', "'modules' 'mods': is a directory, not a module"),
    ('["mods/big.bin"]', f"'modules' 'mods/big.bin': its {GiB} bytes do not fit in the {128 * MiB - 0x101000} bytes "
                         "of guest RAM left after the kernel (0x101000-0x8000000); give more with --memory"),
])
def test_a_modules_error_is_filed_under_modules_naming_it_as_written(folder, modules, problem):
    with open(folder / "mods" / "big.bin", "wb") as big:
        big.truncate(GiB)
    path = manifest(folder, modules)
    with pytest.raises(ManifestError) as err:
        load_manifest(path)
    assert str(err.value) == f"{path}: guest 'a': " + problem.format(folder=folder)
