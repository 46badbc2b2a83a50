"""kvmrun.run, in-process, as the README documents it."""
import threading

import pytest

import kvmrun
from conftest import guest, run_kvmrun


@pytest.mark.kvm
def test_run_returns_what_happened():
    r = kvmrun.run(guest("hello64.elf"), memory="64M", cpus=1, mode=None, timeout=5.0, stdin=b"")
    assert (r.status, r.reason, r.serial, r.report) == (0, kvmrun.Reason.HALTED, b"Hello from long mode!\n", None)
    assert 0 < r.elapsed < 5
    assert r.expect(status=0, serial=rb"Hello") is r


@pytest.mark.kvm
@pytest.mark.parametrize("args, options", [
    (["exit64.elf"], {}),
    (["triple64.elf"], {}),
    (["--timeout", "0.5", "spin64.elf"], {"timeout": 0.5}),
    (["--mode", "real", "abi16.bin"], {"mode": "real"}),
    (["--entry", "0x100040", "exit64.bin"], {"entry": 0x100040}),
    (["--strict-io", "unknownio64.elf"], {"strict_io": True}),
    (["--cpus", "2", "smp64.elf"], {"cpus": 2}),
])
def test_status_is_exactly_what_the_cli_exits_with(args, options):
    *flags, name = args
    cli = run_kvmrun("boot", *flags, guest(name))
    api = kvmrun.run(guest(name), **options)
    assert api.status == cli.returncode
    if name != "smp64.elf":                                    # vCPUs print in any order
        assert api.serial == cli.stdout


@pytest.mark.kvm
def test_reasons_and_report():
    assert kvmrun.run(guest("exit64.elf")).reason is kvmrun.Reason.EXIT_PORT
    assert kvmrun.run(guest("reset64.elf")).reason is kvmrun.Reason.RESET
    assert kvmrun.run(guest("spin64.elf"), timeout=0.3).reason is kvmrun.Reason.TIMEOUT
    fault = kvmrun.run(guest("triple64.elf"))
    assert fault.reason is kvmrun.Reason.FAULT
    assert "KVM_EXIT_SHUTDOWN (8)" in fault.report and "RIP" in fault.report


@pytest.mark.kvm
def test_stdin_reaches_the_guest():
    assert kvmrun.run(guest("echo64.elf"), stdin=b"api\n").serial == b"> API\n"


@pytest.mark.kvm
def test_expect_names_what_differs_with_serial_tail_and_report():
    result = kvmrun.run(guest("triple64.elf"))
    with pytest.raises(AssertionError) as err:
        result.expect(status=0, serial=rb"never printed")
    text = str(err.value)
    assert "exit status 1 (fault), expected 0" in text
    assert "serial output does not match b'never printed'" in text
    assert "about to fault" in text and "--- fault report ---" in text and "KVM_EXIT_SHUTDOWN" in text
    with pytest.raises(AssertionError, match="exit status 42 \\(exit_port\\), expected 0"):
        kvmrun.run(guest("exit64.elf")).expect()
    kvmrun.run(guest("exit64.elf")).expect(status=42, serial="")


@pytest.mark.kvm
def test_a_fault_passes_only_when_its_reason_is_expected():
    """A guest may write 1 to the exit port; a triple fault is status 1 too, and must not pass for it."""
    fault = kvmrun.run(guest("triple64.elf"))
    with pytest.raises(AssertionError, match=r"ended by fault \(status 1\), which passes only when that reason "
                                             r"is expected \('fault'\)"):
        fault.expect(status=1)
    fault.expect(reason="fault")
    fault.expect(reason=kvmrun.Reason.FAULT, status=1)
    with pytest.raises(AssertionError, match=r"ended by fault \(status 1\), expected exit_port"):
        fault.expect(reason="exit_port")
    kvmrun.run(guest("exit64.elf")).expect(status=42, reason="exit_port")
    timeout = kvmrun.run(guest("spin64.elf"), timeout=0.2)
    with pytest.raises(AssertionError, match="ended by timeout"):
        timeout.expect(status=124)
    timeout.expect(reason="TIMEOUT")                                # names in any case
    # ^ and $ at lines: on a guest that ends by itself (whether spin64 printed before a 0.2 s timeout
    # depends on how soon this host ran it).
    kvmrun.run(guest("hello64.elf")).expect(reason="Halted", serial="^Hello from long mode!$")
    with pytest.raises(ValueError, match="must be one of 'halted'"):
        timeout.expect(reason="stuck")


def test_serial_patterns_are_matched_as_bytes_with_multiline():
    from kvmrun.api import serial_matches
    assert serial_matches("^two$", b"one\ntwo\nthree\n")
    assert serial_matches("caf\u00e9", "café".encode())
    assert not serial_matches(rb"\Aone$", b"zero\none\n")


def test_bad_image_raises_loader_error(tmp_path):
    bad = tmp_path / "bad.elf"
    bad.write_bytes(b"\x7fELF\x02")
    with pytest.raises(kvmrun.LoaderError, match="truncated ELF"):
        kvmrun.run(bad)
    with pytest.raises(kvmrun.LoaderError, match="no such file"):
        kvmrun.run(tmp_path / "missing.elf")
    assert issubclass(kvmrun.LoaderError, kvmrun.KvmrunError)


def test_bad_options_raise_config_error(tmp_path):
    image = tmp_path / "hlt.bin"
    image.write_bytes(b"\xf4")
    with pytest.raises(kvmrun.ConfigError, match=r"^memory must be a size .*, not 'lots'$"):
        kvmrun.run(image, memory="lots")
    with pytest.raises(kvmrun.ConfigError, match="^mode must be one of 'real', 'protected', 'long', not 'sideways'$"):
        kvmrun.run(image, mode="sideways")
    with pytest.raises(kvmrun.ConfigError, match="^cpus must be at least 1, not 0$"):
        kvmrun.run(image, cpus=0)


@pytest.mark.parametrize("options, message", [
    ({"strict_io": "no"}, "strict_io must be true or false, not 'no'"),
    ({"cpus": True}, "cpus must be an integer, not True"),
    ({"cpus": 2.0}, "cpus must be an integer, not 2"),
    ({"timeout": float("inf")}, "timeout must be a positive, finite number of seconds, not inf"),
    ({"timeout": float("nan")}, "timeout must be a positive, finite number of seconds, not nan"),
    ({"timeout": "5"}, "timeout must be a number of seconds, not '5'"),
    ({"memory": 1.5e6}, "memory must be a size (bytes, or a number with K, M or G), not 1.5e+06"),
    ({"load_addr": -1}, "load_addr must be an address between 0 and 2**64-1, not -1"),
    ({"entry": [1]}, "entry must be an address (decimal, or hex with 0x), not [1]"),
    ({"mode": "real", "cpus": 2}, "cpus must be 1 in real mode, not 2"),
])
def test_options_of_the_wrong_type_or_value_are_config_errors_naming_the_option(tmp_path, options, message):
    image = tmp_path / "hlt.bin"
    image.write_bytes(b"\xf4")
    with pytest.raises(kvmrun.ConfigError) as err:
        kvmrun.run(image, **options)
    assert str(err.value).startswith(message)


def test_stdin_takes_bytes_or_str_and_unknown_keywords_are_type_errors(tmp_path):
    image = tmp_path / "hlt.bin"
    image.write_bytes(b"\xf4")
    with pytest.raises(TypeError, match="^stdin must be bytes or str, not int$"):
        kvmrun.run(image, stdin=5)
    with pytest.raises(TypeError, match="unexpected keyword argument 'memroy'"):
        kvmrun.run(image, memroy="64M")
    from kvmrun.api import stdin_bytes
    assert stdin_bytes("héllo") == "héllo".encode() and stdin_bytes(bytearray(b"x")) == b"x"


def test_no_kvm_raises_kvm_unavailable(tmp_path, monkeypatch):
    image = tmp_path / "hlt.bin"
    image.write_bytes(b"\xf4")
    monkeypatch.setenv("KVMRUN_KVM_DEVICE", str(tmp_path / "no-kvm"))
    with pytest.raises(kvmrun.KvmUnavailable, match="this host has no KVM"):
        kvmrun.run(image)
    assert issubclass(kvmrun.KvmUnavailable, kvmrun.KvmrunError)


@pytest.mark.kvm
def test_runs_from_several_threads_at_once():
    results = []

    def worker():
        results.append(kvmrun.run(guest("spin64.elf"), cpus=2, timeout=0.3).status)
        results.append(kvmrun.run(guest("hello64.elf")).status)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == [0, 0, 0, 124, 124, 124]


def test_unknown_names_are_attribute_errors():
    with pytest.raises(AttributeError):
        kvmrun.no_such_thing  # noqa: B018


@pytest.mark.kvm
def test_ctrl_c_in_an_api_caller_stops_every_vcpu_thread():
    import subprocess
    import sys
    script = f'''
import os, signal, threading, time, kvmrun
threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
try:
    kvmrun.run({guest("spin64.elf")!r}, cpus=2)
except KeyboardInterrupt:
    time.sleep(0.1)
    print([t.name for t in threading.enumerate() if t.name.startswith("vcpu")])
'''
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.stdout == "[]\n", result.stderr


def test_an_assertion_shows_a_bounded_printable_tail():
    """A guest that printed a megabyte on one line and an escape sequence cannot flood a pytest report
    or drive the terminal showing it."""
    from kvmrun.api import Result
    result = Result(image="g.elf", status=0, reason=kvmrun.Reason.HALTED, serial=b"A" * (1 << 20) + b"\x1b[2J",
                    report=None, elapsed=0.0)
    with pytest.raises(AssertionError) as err:
        result.expect(serial="never")
    text = str(err.value)
    assert len(text) < 5000 and "\x1b" not in text and "\\x1b[2J" in text
    assert "earlier bytes not shown" in text


def test_wrong_types_for_the_image_and_expectations_are_type_errors(tmp_path):
    image = tmp_path / "hlt.bin"
    image.write_bytes(b"\xf4")
    for bad in (None, 123):
        with pytest.raises(TypeError, match="^image must be a path"):
            kvmrun.run(bad)
    from kvmrun.api import Result, stdin_bytes
    result = Result(image="g", status=0, reason=kvmrun.Reason.HALTED, serial=b"", report=None, elapsed=0.0)
    with pytest.raises(TypeError, match="^status must be an int or None, not str$"):
        result.expect(status="0")
    assert stdin_bytes("\udcff") == b"\xff"         # a byte os.fsdecode could not decode goes back as it was


@pytest.mark.kvm
def test_an_image_path_as_bytes_boots():
    kvmrun.run(guest("hello64.elf").encode()).expect(status=0, serial="Hello")
