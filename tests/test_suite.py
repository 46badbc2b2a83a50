"""`kvmrun test`: manifests, the parallel runner, its report and the JUnit XML it writes."""
import xml.etree.ElementTree as ET

import pytest

from conftest import GUESTS, run_kvmrun
from elfimage import Seg, elf
from kvmrun.suite.junit import xml_text
from kvmrun.suite.manifest import DEFAULT_TIMEOUT, ManifestError, load_manifest


def write(tmp_path, text, name="kvmrun.toml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "g.bin"
    path.write_bytes(b"\xf4")
    (tmp_path / "g.elf").write_bytes(bytes(elf([Seg(0x100000, b"\xf4")], entry=0x100000)))
    return path


def test_manifest_defaults_and_per_guest_options(tmp_path, image):
    path = write(tmp_path, '''
[defaults]
memory = "64M"
timeout = 3
[[guest]]
name = "a"
image = "g.bin"
[[guest]]
name = "b"
image = "g.bin"
memory = 33554432
cpus = 2
mode = "protected"
load_addr = "0x200000"
entry = 2097168
strict_io = true
stdin = "hi"
expect_status = 7
expect_serial = "x+"
''')
    a, b = load_manifest(path)
    assert (a.name, a.image, a.options, a.expect_status, a.expect_serial) == \
        ("a", str(image), {"timeout": 3.0, "memory": 64 << 20}, 0, None)
    assert b.options == {"timeout": 3.0, "memory": 32 << 20, "cpus": 2, "mode": "protected",
                         "load_addr": 0x200000, "entry": 0x200010, "strict_io": True, "stdin": b"hi"}
    assert (b.expect_status, b.expect_serial) == (7, "x+")


def test_a_guest_without_timeout_gets_the_default(tmp_path, image):
    (spec,) = load_manifest(write(tmp_path, '[[guest]]\nname = "a"\nimage = "g.bin"\n'))
    assert spec.options["timeout"] == DEFAULT_TIMEOUT


@pytest.mark.parametrize("text, message", [
    ('[[guest]]\nname = "a"\nimage = "g.bin"\nexpect_stauts = 1\n', "guest 'a': unknown key 'expect_stauts'"),
    ('[[guest]]\nname = "a"\nimage = "nope.elf"\n', "guest 'a': 'image' 'nope.elf': no such file (looked at "),
    ('[[guest]]\nname = "a"\nimage = "g.bin"\ncpus = "2"\n', "guest 'a': 'cpus' must be an integer, not '2'"),
    ('[[guest]]\nname = "a"\nimage = "g.bin"\ncpus = true\n', "guest 'a': 'cpus' must be an integer, not True"),
    ('[[guest]]\nname = "a"\nimage = "g.bin"\nmemory = "lots"\n', "guest 'a': 'memory' must be a size"),
    ('[[guest]]\nname = "a"\nimage = "g.bin"\nmode = "unreal"\n', "guest 'a': 'mode' must be one of"),
    ('[[guest]]\nname = "a"\nimage = "g.bin"\ntimeout = 0\n', "guest 'a': 'timeout' must be a positive, finite"),
    ('[[guest]]\nname = "a"\nimage = "g.bin"\nexpect_serial = "("\n', "'expect_serial' is not a regular"),
    ('[[guest]]\nname = "a"\n', "guest 'a': missing key 'image'"),
    ('[[guest]]\nimage = "g.bin"\n', "guest #1: missing key 'name'"),
    ('[[guest]]\nname = "a"\nimage = "g.bin"\n[[guest]]\nname = "a"\nimage = "g.bin"\n',
     "guest 'a': the name is used twice"),
    ('[defaults]\nmemroy = "1M"\n[[guest]]\nname = "a"\nimage = "g.bin"\n', "[defaults]: unknown key 'memroy'"),
    ('[guests]\n', "unknown table or key 'guests'"),
    ('[defaults]\n', "no [[guest]] entries"),
    ('[[guest]\n', "invalid TOML"),
    # every value `kvmrun boot` would refuse, named by its manifest key
    ('[[guest]]\nname = "a"\nimage = "g.bin"\ncpus = 0\n', "guest 'a': 'cpus' must be at least 1, not 0"),
    ('[[guest]]\nname = "a"\nimage = "g.bin"\nmemory = "100G"\n', "guest 'a': 'memory' must be between 1M and 64G"),
    ('[[guest]]\nname = "a"\nimage = "g.bin"\nmode = "real"\ncpus = 2\n',
     "guest 'a': 'cpus' must be 1 in real mode, not 2"),
    ('[defaults]\ncpus = 2\n[[guest]]\nname = "a"\nimage = "g.bin"\nmode = "real"\n',
     "guest 'a': 'cpus' must be 1 in real mode, not 2"),
    ('[[guest]]\nname = "a"\nimage = "g.elf"\nload_addr = 0x200000\n',
     "guest 'a': 'load_addr' applies to raw images only"),
    ('[[guest]]\nname = "a"\nimage = "g.elf"\nentry = "0x100000"\n', "guest 'a': 'entry' applies to raw images only"),
    ('[[guest]]\nname = "a"\nimage = "g.bin"\nexpect_status = 256\n',
     "guest 'a': 'expect_status' must be an exit status from 0 to 255, not 256"),
    ('[[guest]]\nname = "a"\nimage = "g.bin"\nexpect_status = -1\n', "'expect_status' must be an exit status"),
    ('[[guest]]\nname = ""\nimage = "g.bin"\n', "guest #1: 'name' must be a non-empty string, not ''"),
    ('[[guest]]\nname = "a"\nimage = "."\n', "guest 'a': 'image' '.': is a directory, not an image"),
    ('[[guest]]\nname = "a"\nimage = "g.bin"\ntimeout = inf\n', "'timeout' must be a positive, finite number"),
    ('[defaults]\ntimeout = nan\n[[guest]]\nname = "a"\nimage = "g.bin"\n',
     "[defaults]: 'timeout' must be a positive, finite number of seconds, not nan"),
    ('[[guest]]\nname = "a"\nimage = "g.bin"\nexpect_serial = \'\\u0048ello\'\n',
     "'expect_serial' is not a regular expression: bad escape \\u"),
    ('[[guest]]\nname = "a"\nimage = "g.bin"\nexpect_reason = "crashed"\n',
     "'expect_reason' must be one of 'halted', 'exit_port', 'reset', 'fault', 'timeout', 'breakpoint', not 'crashed'"),
    ('[[guest]]\nname = "a"\nimage = "g.bin"\nexpect_reason = "interrupted"\n', "'expect_reason' must be one of"),
    ('[[guest]]\nname = "a"\nimage = "g.bin"\nstrict_io = "yes"\n', "'strict_io' must be true or false, not 'yes'"),
    ('[[guest]]\nname = "a"\nimage = "g.elf"\ncpus = 100000\nmemory = "32M"\n',
     "guest 'a': 'memory' must hold 100000 vCPU stacks of 64 KiB beside kvmrun's tables, not 33554432 bytes"),
    ('[[guest]]\nname = "a"\nimage = "g.bin"\nexpect_stauts = 1\n', "unknown key 'expect_stauts' (did you mean "
                                                                     "'expect_status'?)"),
])
def test_manifest_errors_name_file_guest_and_key(tmp_path, image, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ManifestError) as err:
        load_manifest(path)
    assert str(err.value).startswith(f"{path}: ")
    assert message in str(err.value)


def test_manifest_errors_through_the_cli_are_status_2_one_line(tmp_path, image):
    path = write(tmp_path, '[[guest]]\nname = "a"\nimage = "g.bin"\nbogus = 1\n')
    result = run_kvmrun("test", path)
    assert result.returncode == 2
    assert result.stderr.decode() == f"kvmrun: error: {path}: guest 'a': unknown key 'bogus'\n"
    result = run_kvmrun("test", str(tmp_path / "missing.toml"))
    assert result.returncode == 2 and b"no such manifest" in result.stderr


def test_xml_text_escapes_what_xml_cannot_carry():
    assert xml_text(b"ok\x00\x1b[0m\xff\n") == "ok\\x00\\x1b[0m\ufffd\n"


MIXED = f'''
[defaults]
memory = "32M"
timeout = 20

[[guest]]
name = "passes"
image = "{GUESTS}/hello64.elf"
expect_serial = "Hello from long"

[[guest]]
name = "wrong-status"
image = "{GUESTS}/exit64.elf"

[[guest]]
name = "wrong-serial"
image = "{GUESTS}/hello64.elf"
expect_serial = "Goodbye"

[[guest]]
name = "faults"
image = "{GUESTS}/triple64.elf"

[[guest]]
name = "times-out"
image = "{GUESTS}/spin64.elf"
timeout = 0.5

[[guest]]
name = "expected-fault"
image = "{GUESTS}/triple64.elf"
expect_reason = "fault"
expect_serial = "about to fault"

[[guest]]
name = "fault-is-not-status-1"
image = "{GUESTS}/triple64.elf"
expect_status = 1

[[guest]]
name = "cannot-boot"
image = "{GUESTS}/hello64.elf"
memory = "48G"                # more than the test lets kvmrun reserve: refused only when it boots
'''


@pytest.mark.kvm
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_mixed_manifest_reports_and_writes_junit(tmp_path, jobs):
    manifest = write(tmp_path, MIXED, name="mixed.toml")
    junit = tmp_path / "report.xml"
    result = run_kvmrun("test", manifest, "--jobs", jobs, "--junit-xml", junit, address_space=16 << 30)
    out = result.stdout.decode()
    assert result.returncode == 1, result.stderr
    assert "2 passed, 6 failed" in out
    for line in ("PASS passes", "FAIL wrong-status", "FAIL wrong-serial", "FAIL faults", "FAIL times-out",
                 "PASS expected-fault", "FAIL fault-is-not-status-1", "ERROR cannot-boot"):
        assert line in out, line
    assert "exit status 42 (exit_port), expected 0" in out
    assert "ended by fault (status 1), which passes only when that reason is expected ('fault')" in out
    assert "exit status 0 (halted); serial output does not match 'Goodbye'" in out
    assert "exit status 124 (timeout), expected 0" in out
    assert "KVM_EXIT_SHUTDOWN (8)" in out                 # the fault report of the failing guest
    assert "cannot reserve 51539607552 bytes of host memory" in out

    root = ET.parse(junit).getroot()
    suite = root.find("testsuite")
    assert (suite.get("name"), suite.get("tests"), suite.get("failures"), suite.get("errors")) == \
        ("mixed", "8", "5", "1")
    cases = {case.get("name"): case for case in suite.findall("testcase")}
    assert list(cases) == ["passes", "wrong-status", "wrong-serial", "faults", "times-out", "expected-fault",
                           "fault-is-not-status-1", "cannot-boot"]
    assert cases["passes"].find("failure") is None
    assert cases["passes"].find("system-out").text == "Hello from long mode!\n"
    assert cases["wrong-status"].find("failure").get("message") == "exit status 42 (exit_port), expected 0"
    assert "about to fault" in cases["faults"].find("failure").text
    assert "KVM_EXIT_SHUTDOWN" in cases["faults"].find("failure").text
    assert cases["times-out"].find("failure").get("message") == "exit status 124 (timeout), expected 0"
    assert "cannot reserve 51539607552 bytes of host memory" in cases["cannot-boot"].find("error").get("message")
    # How each guest ended, in every failure message and as properties of every testcase.
    assert cases["wrong-serial"].find("failure").get("message") == \
        "exit status 0 (halted); serial output does not match 'Goodbye'"
    ended = {name: {p.get("name"): p.get("value") for p in case.iter("property")} for name, case in cases.items()}
    assert ended["passes"] == {"status": "0", "ended": "halted"}
    assert ended["wrong-status"] == {"status": "42", "ended": "exit_port"}
    assert ended["faults"] == {"status": "1", "ended": "fault"}
    assert ended["times-out"] == {"status": "124", "ended": "timeout"}
    assert ended["cannot-boot"] == {"status": "-", "ended": "not booted"}


@pytest.mark.kvm
def test_more_vcpus_than_this_hosts_kvm_allows_is_a_manifest_error_before_any_guest_runs(tmp_path):
    manifest = write(tmp_path, f'[[guest]]\nname = "big"\nimage = "{GUESTS}/hello64.elf"\nmemory = "1G"\n'
                               'cpus = 5000\n')
    result = run_kvmrun("test", manifest)
    assert result.returncode == 2 and result.stdout == b""
    assert result.stderr.decode().startswith(f"kvmrun: error: {manifest}: guest 'big': 'cpus' must be at most ")


@pytest.mark.kvm
def test_keyword_selects_guests_and_an_all_pass_run_is_status_0(tmp_path):
    manifest = write(tmp_path, MIXED)
    result = run_kvmrun("test", manifest, "-k", "pass")
    assert result.returncode == 0
    assert "1 passed, 0 failed" in result.stdout.decode()
    result = run_kvmrun("test", manifest, "-k", "zzz")
    assert result.returncode == 2 and b"no guest name contains 'zzz'" in result.stderr


@pytest.mark.kvm
def test_the_projects_own_guest_manifest_passes():
    from conftest import ROOT
    result = run_kvmrun("test", ROOT / "guests" / "kvmrun.toml", env={})
    assert result.returncode == 0, result.stdout.decode()


def test_no_kvm_is_status_3_once(tmp_path, image):
    manifest = write(tmp_path, '[[guest]]\nname = "a"\nimage = "g.bin"\n')
    result = run_kvmrun("test", manifest, env={"KVMRUN_KVM_DEVICE": str(tmp_path / "none")})
    assert result.returncode == 3 and result.stderr.count(b"\n") == 1


def test_an_unwritable_junit_path_is_refused_before_the_run(tmp_path, image):
    manifest = write(tmp_path, '[[guest]]\nname = "a"\nimage = "g.bin"\n')
    for target in (tmp_path / "no" / "such" / "dir.xml", tmp_path):
        result = run_kvmrun("test", manifest, "--junit-xml", target)
        assert result.returncode == 2
        assert result.stderr.decode() == f"kvmrun: error: --junit-xml {target}: cannot write a file there\n"
        assert result.stdout == b""
