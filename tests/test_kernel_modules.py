"""A PC kernel's modules as kvmrun boot reads them (boot/modules.py, boot/prepare.py): each checked
from stat against the room after the kernel, below 3 GiB and --memory, before a byte is read; read no
further than that; every error one line naming the module by its index (from 0) and its path. Pure:
nothing here opens /dev/kvm."""
import struct

import pytest

from conftest import run_kvmrun
from elfimage import PT_NOTE, Seg, elf
from kvmrun.boot import image as image_module
from kvmrun.boot.prepare import plan_boot
from kvmrun.errors import LoaderError
from kvmrun.options import boot_config

MiB, GiB = 1 << 20, 1 << 30
KERNEL_END = 0x101000               # every kernel below: 0x100000-0x101000, so modules start there


def multiboot_kernel() -> bytes:
    """Loaded by the header's address fields: the file at 0x100000, its bss up to 0x101000."""
    magic, flags = 0x1BADB002, 1 << 16
    header = struct.pack("<8I", magic, flags, -(magic + flags) % (1 << 32), 0x100000, 0x100000, 0, KERNEL_END,
                         0x100020)
    return header + b"\xf4" * 0x100


def multiboot2_kernel() -> bytes:
    magic = 0xE85250D6
    tags = (struct.pack("<HHI4I", 2, 0, 24, 0x100000, 0x100000, 0, KERNEL_END) +
            struct.pack("<HHII", 3, 0, 12, 0x100040) + bytes(4) + struct.pack("<HHI", 0, 0, 8))
    header = struct.pack("<4I", magic, 0, 16 + len(tags), -(magic + 16 + len(tags)) % (1 << 32)) + tags
    return header + b"\xf4" * 0x100


def pvh_kernel() -> bytes:
    note = struct.pack("<III", 4, 4, 18) + b"Xen\0" + struct.pack("<I", 0x100000)
    return bytes(elf([Seg(0, note, type=PT_NOTE, flags=4), Seg(0x100000, b"\xf4" * 0x1000)], entry=0x100000))


KERNELS = {"multiboot": multiboot_kernel, "multiboot2": multiboot2_kernel, "PVH": pvh_kernel}


@pytest.fixture(params=sorted(KERNELS))
def kernel(request, tmp_path):
    path = tmp_path / f"{request.param}.bin"
    path.write_bytes(KERNELS[request.param]())
    return str(path)


@pytest.fixture
def unread(monkeypatch):
    """Files the test must not see read: add their paths. A module that cannot fit is refused from
    stat alone, however large it is."""
    paths = set()
    real_open = open

    def guarded(path, *args, **kwargs):
        assert str(path) not in paths, f"{path} was read"
        return real_open(path, *args, **kwargs)
    monkeypatch.setattr(image_module, "open", guarded, raising=False)
    return paths


def sparse(path, size) -> str:
    with open(path, "wb") as f:
        f.truncate(size)
    return str(path)


def refusal(kernel, memory, *modules) -> str:
    with pytest.raises(LoaderError) as err:
        plan_boot(boot_config(kernel, {"memory": memory, "modules": list(modules)}), one_gib_pages=False)
    return str(err.value)


def test_a_module_larger_than_the_ram_left_after_the_kernel_is_refused_unread(kernel, tmp_path, unread):
    big = sparse(tmp_path / "big.img", 63 * MiB)
    unread.add(big)
    assert refusal(kernel, "64M", big) == (
        f"module 0 ({big}): its {63 * MiB} bytes do not fit in the {64 * MiB - KERNEL_END} bytes of guest RAM left "
        "after the kernel (0x101000-0x4000000); give more with --memory")


def test_a_module_beyond_3_gib_is_refused_unread_whatever_memory_gives(kernel, tmp_path, unread):
    big = sparse(tmp_path / "big.img", 3 * GiB)
    unread.add(big)
    assert refusal(kernel, "5G", big) == (
        f"module 0 ({big}): its {3 * GiB} bytes do not fit in the {3 * GiB - KERNEL_END} bytes of guest RAM left "
        "after the kernel (0x101000-0xc0000000); modules must lie below 3 GiB (where the PC's MMIO hole begins), "
        "whatever --memory gives")


def test_modules_that_fit_alone_but_not_together_are_refused_before_any_is_read(kernel, tmp_path, unread):
    first, second = sparse(tmp_path / "a.img", 40 * MiB), sparse(tmp_path / "b.img", 40 * MiB)
    unread.update({first, second})
    assert refusal(kernel, "64M", first, f"{second}=x") == (
        f"module 1 ({second}): its {40 * MiB} bytes do not fit in the {0x4000000 - 0x2901000} bytes of guest RAM "
        "left after the kernel and the modules before it (0x2901000-0x4000000); give more with --memory")


def test_a_module_that_just_fits_is_read_whole(kernel, tmp_path):
    data = bytes(range(256)) * ((8 * MiB - KERNEL_END - 4096) // 256)
    module = tmp_path / "fits.img"
    module.write_bytes(data)
    setup, _ = plan_boot(boot_config(kernel, {"memory": "8M", "modules": [f"{module}=arg"]}), one_gib_pages=False)
    [blob] = [blob for blob in setup.blobs if blob.name.startswith("module")]
    assert (blob.name, blob.addr, bytes(blob.data)) == (f"module 0 ({module})", KERNEL_END, data)


@pytest.mark.parametrize("make, problem", [
    (lambda tmp_path: str(tmp_path / "nope.img"), "no such file"),
    (lambda tmp_path: str(tmp_path), "is a directory, not a module"),
    (lambda tmp_path: "/dev/null", "not a regular file"),
])
def test_a_module_that_is_not_a_file_is_named_by_its_path_not_the_kernel(kernel, tmp_path, make, problem):
    ok = tmp_path / "ok.img"
    ok.write_bytes(b"ok")
    assert refusal(kernel, "8M", str(ok), make(tmp_path)) == f"module 1 ({make(tmp_path)}): {problem}"


def test_the_cli_refuses_a_module_that_cannot_fit_in_one_line_with_status_2(tmp_path):
    kernel = tmp_path / "k.bin"
    kernel.write_bytes(multiboot_kernel())
    big = sparse(tmp_path / "big.img", 3 * GiB)
    result = run_kvmrun("boot", "--memory", "64M", "--module", f"{big}=arg", str(kernel))
    assert (result.returncode, result.stdout) == (2, b"")
    assert result.stderr.decode() == (f"kvmrun: error: module 0 ({big}): its {3 * GiB} bytes do not fit in the "
                                      f"{64 * MiB - KERNEL_END} bytes of guest RAM left after the kernel "
                                      "(0x101000-0x4000000); modules must lie below 3 GiB (where the PC's MMIO hole "
                                      "begins), whatever --memory gives\n")


def test_the_cli_says_what_an_empty_module_option_lacks(tmp_path):
    kernel = tmp_path / "k.bin"
    kernel.write_bytes(multiboot_kernel())
    result = run_kvmrun("boot", "--module", "", str(kernel))
    assert (result.returncode, result.stderr) == (2, b"kvmrun: error: --module needs a file name, not an empty text\n")


def test_a_file_is_read_no_further_than_its_checked_size(tmp_path):
    from kvmrun.boot.image import read_file
    grown = tmp_path / "grown.img"
    grown.write_bytes(b"12345")
    assert read_file(str(grown), 5) == b"12345"
    with pytest.raises(LoaderError) as err:
        read_file(str(grown), 3)                   # stat said 3 bytes; the file grew before it was read
    assert str(err.value) == "changed while kvmrun read it: 3 bytes when checked, then more"
    with pytest.raises(LoaderError) as err:
        read_file(str(grown), 8)
    assert str(err.value) == "changed while kvmrun read it: 8 bytes when checked, then 5"
