"""The command line's own behaviour: options, one-line errors and their statuses. No KVM needed."""
import os
import struct

import pytest
from click.testing import CliRunner

from kvmrun import __version__
from kvmrun.cli import main
from kvmrun.sizes import parse_size

from conftest import run_kvmrun
from elfimage import Seg, elf


def invoke(*args, env=None):
    result = CliRunner().invoke(main, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def hlt_elf(tmp_path):
    path = tmp_path / "hlt.elf"
    path.write_bytes(bytes(elf([Seg(0x100000, b"\xf4")], entry=0x100000)))
    return str(path)


def one_error_line(stderr):
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("kvmrun: error: ")
    assert "Traceback" not in stderr
    return lines[0]


def test_version():
    code, out, _ = invoke("--version")
    assert (code, out) == (0, f"kvmrun {__version__}\n")


def test_boot_help_has_examples_and_statuses():
    code, out, _ = invoke("boot", "--help")
    assert code == 0
    assert "kvmrun boot --mode real boot.bin" in out
    assert "124 timeout" in out


@pytest.mark.parametrize("text, size", [("65536", 65536), ("64K", 65536), ("128M", 128 << 20),
                                        ("1G", 1 << 30), ("2GiB", 2 << 30), ("16mb", 16 << 20)])
def test_parse_size(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("args, message", [
    (["--memory", "12Q"], "--memory must be a size (bytes, or a number with K, M or G), not '12Q'"),
    (["--memory", "0"], "--memory must be between 1M and 64G, not 0 bytes"),
    (["--memory", "100G"], "--memory must be between 1M and 64G"),
    (["--memory", "1048577"], "--memory must be a multiple of 4K"),
    (["--cpus", "0"], "--cpus must be at least 1, not 0"),
    (["--cpus", "two"], "--cpus must be an integer, not 'two'"),
    (["--timeout", "0"], "--timeout must be a positive, finite number of seconds, not 0"),
    (["--timeout", "inf"], "--timeout must be a positive, finite number of seconds, not inf"),
    (["--timeout", "nan"], "--timeout must be a positive, finite number of seconds, not nan"),
    (["--timeout", "soon"], "--timeout must be a number, not 'soon'"),
    (["--mode", "unreal"], "--mode must be one of 'real', 'protected', 'long', not 'unreal'"),
    (["--load-addr", "zz"], "--load-addr must be an address (decimal, or hex with 0x), not 'zz'"),
    (["--entry", "-0x10"], "--entry must be an address between 0 and 2**64-1, not '-0x10'"),
])
def test_bad_option_values(args, message, hlt_elf):
    code, out, err = invoke("boot", *args, hlt_elf)
    assert code == 2 and out == ""
    assert message in one_error_line(err)


def test_unknown_option_and_missing_image():
    code, _, err = invoke("boot", "--frobnicate", "x")
    assert code == 2 and "No such option '--frobnicate'" in one_error_line(err)
    code, _, err = invoke("boot")
    assert code == 2 and "Missing argument 'IMAGE'" in one_error_line(err)


def test_bad_images(tmp_path):
    missing = tmp_path / "missing.elf"
    code, _, err = invoke("boot", str(missing))
    assert code == 2 and one_error_line(err) == f"kvmrun: error: {missing}: no such file"
    code, _, err = invoke("boot", str(tmp_path))
    assert code == 2 and one_error_line(err).endswith("is a directory, not an image")
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    code, _, err = invoke("boot", str(empty))
    assert code == 2 and one_error_line(err).endswith("the image is empty")
    aarch64 = tmp_path / "arm.elf"
    image = elf([Seg(0x100000, b"\xf4")], entry=0x100000)
    struct.pack_into("<H", image, 18, 183)
    aarch64.write_bytes(bytes(image))
    code, _, err = invoke("boot", str(aarch64))
    assert code == 2 and "e_machine is 183 (AArch64)" in one_error_line(err)
    truncated = tmp_path / "trunc.elf"
    truncated.write_bytes(bytes(image[:30]))
    code, _, err = invoke("boot", str(truncated))
    assert code == 2 and "truncated ELF64: 30 bytes" in one_error_line(err)


def test_images_that_do_not_fit(tmp_path):
    raw = tmp_path / "big.bin"
    raw.write_bytes(b"\x90" * (2 << 20))
    code, _, err = invoke("boot", "--memory", "1M", str(raw))
    assert code == 2 and "larger than guest RAM" in one_error_line(err)
    high = tmp_path / "high.elf"
    high.write_bytes(bytes(elf([Seg(0x7FF0000, b"\xf4" * 0x20000)], entry=0x7FF0000)))
    code, _, err = invoke("boot", str(high))
    assert code == 2 and "segment 0 (PT_LOAD) (0x7ff0000-0x8010000, 131072 bytes) does not fit in guest RAM" \
        in one_error_line(err)
    code, _, err = invoke("boot", "--entry", "0x9000000", str(raw))
    assert code == 2 and "entry point 0x9000000 lies outside guest RAM" in one_error_line(err)
    code, _, err = invoke("boot", "--mode", "real", "--entry", "0x100000", str(raw))
    assert code == 2 and "real-mode entry 0x100000 must lie below 1 MiB" in one_error_line(err)


def test_images_that_are_not_regular_files(tmp_path):
    fifo = tmp_path / "pipe.bin"
    os.mkfifo(fifo)
    for path in (str(fifo), "/dev/zero"):
        code, _, err = invoke("boot", path)
        assert code == 2 and one_error_line(err) == f"kvmrun: error: {path}: not a regular file"


@pytest.mark.kvm
def test_more_memory_than_the_host_can_map_is_a_clear_error(hlt_elf):
    """Under an address-space limit the guest RAM mapping fails: one line, status 2."""
    import resource
    import subprocess
    import sys
    limit = 1 << 30

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    result = subprocess.run([sys.executable, "-m", "kvmrun", "boot", "--memory", "8G", hlt_elf],
                            capture_output=True, text=True, preexec_fn=cap, timeout=60)
    assert result.returncode == 2, result.stderr
    assert one_error_line(result.stderr).startswith(
        "kvmrun: error: cannot reserve 8589934592 bytes of host memory for guest RAM")


def test_raw_options_on_an_elf_are_refused(hlt_elf):
    code, _, err = invoke("boot", "--load-addr", "0x200000", hlt_elf)
    assert code == 2 and one_error_line(err) == \
        "kvmrun: error: --load-addr applies to raw images only: an ELF image gives its own"
    code, _, err = invoke("boot", "--entry", "0x100000", hlt_elf)
    assert code == 2 and one_error_line(err).startswith("kvmrun: error: --entry applies to raw images only")


def test_smp_in_real_mode_is_refused(tmp_path):
    raw = tmp_path / "boot.bin"
    raw.write_bytes(b"\xf4")
    code, _, err = invoke("boot", "--mode", "real", "--cpus", "2", str(raw))
    assert code == 2 and one_error_line(err).startswith(
        "kvmrun: error: --cpus must be 1 in real mode, not 2: real mode runs one vCPU")


def test_no_kvm_device_is_status_3_with_a_remedy(hlt_elf):
    code, out, err = invoke("boot", hlt_elf, env={"KVMRUN_KVM_DEVICE": "/nonexistent/kvm"})
    assert code == 3 and out == ""
    assert "does not exist: this host has no KVM" in one_error_line(err) and "modprobe" in err
    code, _, err = invoke("info", env={"KVMRUN_KVM_DEVICE": "/nonexistent/kvm"})
    assert code == 3 and "no KVM" in one_error_line(err)


def test_a_device_that_is_not_kvm_is_status_3(hlt_elf, tmp_path):
    fake = tmp_path / "kvm"
    fake.write_bytes(b"")
    code, _, err = invoke("boot", hlt_elf, env={"KVMRUN_KVM_DEVICE": str(fake)})
    assert code == 3 and "does not answer KVM_GET_API_VERSION" in one_error_line(err)


@pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/dev/kvm") or os.stat("/dev/kvm").st_mode & 0o006,
                    reason="needs root to drop to a user without access to /dev/kvm")
def test_no_permission_names_the_remedy():
    """In a forked child that became `nobody`: opening /dev/kvm fails with EACCES, and the error
    kvmrun raises (status 3, as the ENOENT test shows) says what to do."""
    from kvmrun.errors import KvmUnavailable
    from kvmrun.kvm.system import open_kvm
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        message = b"opened"
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            open_kvm("/dev/kvm")
        except KvmUnavailable as err:
            message = f"{err.errno} {err}".encode()
        except BaseException as err:
            message = repr(err).encode()
        os.write(w, message)
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as pipe:
        message = pipe.read().decode()
    os.waitpid(pid, 0)
    assert message.startswith("13 no permission to open /dev/kvm")
    assert "usermod -aG kvm" in message


def test_bare_kvmrun_prints_its_help():
    result = run_kvmrun()
    assert result.returncode == 0 and result.stderr == b""
    out = result.stdout.decode()
    assert out.startswith("Usage: kvmrun [OPTIONS] COMMAND") and "boot" in out and "test" in out


def test_short_version_flag():
    code, out, _ = invoke("-V")
    assert (code, out) == (0, f"kvmrun {__version__}\n")


@pytest.mark.parametrize("args, where", [(["boot", "--frobnicate", "x"], "kvmrun boot"),
                                         (["boot"], "kvmrun boot"), (["frobnicate"], "kvmrun"),
                                         (["test", "--jobs", "0"], "kvmrun test")])
def test_usage_errors_say_where_help_is(args, where):
    result = run_kvmrun(*args)
    assert result.returncode == 2
    line = one_error_line(result.stderr.decode())
    assert line.endswith(f"Try '{where} --help' for help.")


def test_option_errors_use_the_command_lines_spelling_everywhere_in_the_message(hlt_elf):
    """The same problem reads `--cpus` here, `cpus` from Python and `'cpus'` in a manifest."""
    code, _, err = invoke("boot", "--cpus", "0", hlt_elf)
    assert code == 2 and one_error_line(err) == "kvmrun: error: --cpus must be at least 1, not 0"


@pytest.mark.kvm
def test_info_as_json_for_scripts():
    import json
    result = run_kvmrun("info", "--json")
    assert result.returncode == 0, result.stderr
    facts = json.loads(result.stdout)
    assert facts["api_version"] == 12 and facts["max_vcpus"] >= 1
    assert facts["capabilities"]["KVM_CAP_USER_MEMORY"] >= 1


@pytest.mark.kvm
def test_info_to_a_full_disk_is_one_line_not_a_traceback():
    import subprocess
    import sys
    with open("/dev/full", "wb") as full:
        result = subprocess.run([sys.executable, "-m", "kvmrun", "info"], stdout=full, stderr=subprocess.PIPE,
                                timeout=60)
    assert result.returncode == 2
    assert one_error_line(result.stderr.decode()) == "kvmrun: error: cannot write to stdout: No space left on device"


def test_an_error_naming_a_hostile_manifest_value_is_one_printable_line(tmp_path):
    manifest = tmp_path / "m.toml"
    manifest.write_text('[[guest]]\nname = "evil\\u001b[2J\\nname"\nimage = "missing.elf"\n')
    code, out, err = invoke("test", str(manifest))
    line = one_error_line(err)
    assert code == 2 and "\x1b" not in err and "evil\\x1b[2J" in line


def _kvmrun_shell(command):
    import subprocess
    import sys
    return subprocess.run(["bash", "-c", f'exec "{sys.executable}" -m kvmrun {command}'], capture_output=True,
                          timeout=60)


@pytest.mark.parametrize("args", ["--version", "--help", "boot --help", "test --help", ""])
def test_help_and_version_to_a_full_disk_are_one_line_and_status_2(args):
    result = _kvmrun_shell(f"{args} >/dev/full")
    assert result.returncode == 2, result.stderr
    assert one_error_line(result.stderr.decode()) == "kvmrun: error: cannot write to stdout: No space left on device"


@pytest.mark.parametrize("args", ["--version", "--help"])
def test_help_and_version_to_a_gone_reader_are_141_and_quiet(args):
    import subprocess
    import sys
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run([sys.executable, "-m", "kvmrun", *args.split()], stdout=write_end,
                                stderr=subprocess.PIPE, timeout=60)
    finally:
        os.close(write_end)
    assert (result.returncode, result.stderr) == (141, b"")


@pytest.mark.kvm
@pytest.mark.parametrize("args", ["info", "info --json", "--version"])
def test_a_closed_stdout_is_dev_null_for_every_command(args):
    result = _kvmrun_shell(f"{args} >&-")
    assert (result.returncode, result.stderr) == (0, b"")
