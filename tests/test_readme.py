"""What the README shows users works when they copy it."""
import re

import pytest

from conftest import GUESTS, ROOT, run_kvmrun


def readme_block(starting_with: str) -> str:
    blocks = re.findall(r"```(?:\w+)?\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)
    matching = [block for block in blocks if block.startswith(starting_with)]
    assert len(matching) == 1, f"README should have one block starting with {starting_with!r}"
    return matching[0]


@pytest.mark.kvm
def test_the_manifest_example_passes_when_copied(tmp_path):
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "guests").symlink_to(GUESTS)
    (tmp_path / "kvmrun.toml").write_text(readme_block("# kvmrun.toml"))
    result = run_kvmrun("test", tmp_path / "kvmrun.toml")
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    assert "3 passed, 0 failed" in result.stdout.decode()


@pytest.mark.kvm
def test_the_python_example_runs(monkeypatch):
    monkeypatch.chdir(GUESTS.parent.parent)
    code = readme_block("import kvmrun\n\nr = kvmrun.run(")
    code = code.replace('r.expect(reason="timeout")', "")       # the hello guest halts; that line shows the form
    exec(compile(code, "README.md", "exec"), {})


@pytest.mark.kvm
def test_the_bare_bones_example_shows_what_the_readme_says():
    """OSDev's Bare Bones kernel, built as the README shows (guests/osdev_barebones), prints exactly
    the README's screen where stdout is not a terminal."""
    block = readme_block("$ as --32 boot.s")
    shown = block.split("$ kvmrun boot myos.bin\n", 1)[1]
    result = run_kvmrun("boot", GUESTS / "osdev_barebones.bin")
    assert (result.returncode, result.stderr) == (0, b"")
    assert result.stdout.decode() == shown
    import json                                   # and it boots as the multiboot kernel the README says
    plan = json.loads(run_kvmrun("inspect", "--json", GUESTS / "osdev_barebones.bin").stdout)
    assert plan["protocol"] == "multiboot" and "offset 0x1000" in plan["image"]["detected"]


@pytest.mark.kvm
def test_the_boot_sector_example_shows_what_the_readme_says(tmp_path, monkeypatch):
    """The README's boot sector, assembled with its own printf and nasm lines, prints what it shows."""
    import shutil
    import subprocess
    if shutil.which("nasm") is None:
        pytest.skip("nasm builds the example")
    block = readme_block("$ printf 'org 0x7c00")
    printf, build_and_boot, *shown = block.splitlines(keepends=True)
    monkeypatch.chdir(tmp_path)
    subprocess.run(printf.removeprefix("$ "), shell=True, check=True)
    subprocess.run(["nasm", "-f", "bin", "boot.asm", "-o", "boot.img"], check=True)
    assert build_and_boot.endswith("kvmrun boot boot.img\n")
    result = run_kvmrun("boot", tmp_path / "boot.img")
    assert (result.returncode, result.stderr) == (0, b"")
    # The boot sector ends its line with CR LF, as BIOS output does; a terminal shows what the README shows.
    assert result.stdout.decode().replace("\r\n", "\n") == "".join(shown)

