"""The pytest plugin, exercised in a pytest run of its own (pytester)."""
import pytest

from conftest import guest

USES_FIXTURE = '''
import pytest

def test_hello(kvm_guest):
    result = kvm_guest(GUEST)
    result.expect(status=0, serial=rb"Hello from long mode")

def test_default_timeout(kvm_guest):
    import kvmrun
    spin = kvm_guest(SPIN, timeout=0.3)
    assert spin.reason is kvmrun.Reason.TIMEOUT

@pytest.mark.kvm
def test_marked():
    pass

def test_plain():
    pass
'''


def source(**guests):
    return "\n".join(f"{k} = {v!r}" for k, v in guests.items()) + USES_FIXTURE


@pytest.mark.kvm
def test_fixture_boots_guests(pytester):
    pytester.makepyfile(source(GUEST=guest("hello64.elf"), SPIN=guest("spin64.elf")))
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=4)


def test_without_kvm_the_marker_and_fixture_skip(pytester, monkeypatch, tmp_path):
    monkeypatch.setenv("KVMRUN_KVM_DEVICE", str(tmp_path / "none"))
    monkeypatch.delenv("KVMRUN_REQUIRE_KVM", raising=False)
    pytester.makepyfile(source(GUEST="x", SPIN="y"))
    result = pytester.runpytest_inprocess("-rs")
    result.assert_outcomes(passed=1, skipped=3)
    result.stdout.fnmatch_lines(["*needs KVM*this host has no KVM*"])


def test_without_kvm_required_means_failed(pytester, monkeypatch, tmp_path):
    monkeypatch.setenv("KVMRUN_KVM_DEVICE", str(tmp_path / "none"))
    monkeypatch.setenv("KVMRUN_REQUIRE_KVM", "1")
    pytester.makepyfile(source(GUEST="x", SPIN="y"))
    result = pytester.runpytest_inprocess()
    result.assert_outcomes(passed=1, errors=3)
    result.stdout.fnmatch_lines(["*KVMRUN_REQUIRE_KVM=1 but KVM cannot be used*"])


def test_fixture_default_timeout_is_10_seconds(pytester):
    pytester.makepyfile('''
from kvmrun import pytest_plugin
def test_timeout():
    assert pytest_plugin.FIXTURE_TIMEOUT == 10.0
''')
    pytester.runpytest_inprocess().assert_outcomes(passed=1)
