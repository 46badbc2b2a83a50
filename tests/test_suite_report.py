"""What `kvmrun test` shows and writes, whatever guests print and wherever its output goes: bounded
serial tails, escaped control characters, valid and atomically written JUnit XML, and stdout write
errors that are neither guest failures nor tracebacks."""
import errno
import os
import shutil
import stat
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from conftest import GUESTS, guest, run_kvmrun
from kvmrun.suite import junit
from kvmrun.suite.text import TAIL_BYTES, failure_message, printable, serial_tail, system_out, tail, xml_text

# --- text.py: pure functions -----------------------------------------------------------------------


def test_a_megabyte_on_one_line_is_cut_to_the_byte_bound_saying_how_much_was_cut():
    data = b"x" * (1 << 20)
    shown, cut = tail(data)
    assert (len(shown), cut) == (TAIL_BYTES, (1 << 20) - TAIL_BYTES)
    text = serial_tail(data)
    assert text == f"[... {(1 << 20) - TAIL_BYTES} earlier bytes not shown ...]\n" + "x" * TAIL_BYTES


def test_the_tail_is_the_last_20_lines_and_never_splits_a_utf8_character():
    data = b"".join(b"line %d\n" % i for i in range(30))
    assert serial_tail(data) == "[... 70 earlier bytes not shown ...]\n" + "\n".join(f"line {i}" for i in range(10, 30))
    assert serial_tail(b"a\nb\n") == "a\nb"
    assert serial_tail(b"") == ""
    shown, cut = tail("é".encode() * 3000)          # 6000 bytes, 2 each: an odd cut would split one
    assert shown.decode() == "é" * (TAIL_BYTES // 2) and cut == 6000 - TAIL_BYTES


def test_control_characters_are_shown_not_obeyed():
    assert printable("a\x1b[2J\x07b\rc\r\nd\te\x7f\x9b") == "a\\x1b[2J\\x07b\\x0dc\nd\te\\x7f\\x9b"
    assert printable(b"\xff ok") == "\ufffd ok"
    assert printable(os.fsdecode(b"dir\xff/g.elf")) == "dir\\xff/g.elf"     # a path that is not UTF-8


def test_xml_text_carries_what_xml_cannot_as_escapes():
    assert xml_text(b"ok\x00\x1b[0m\xff\n") == "ok\\x00\\x1b[0m\ufffd\n"
    assert xml_text(os.fsdecode(b"dir\xfe")) == "dir\\xfe"
    assert xml_text("\ud800\uffff\t\r") == "\\ud800\\uffff\t\r"


def test_system_out_keeps_the_last_64_kib():
    text = system_out(b"a" * 100 + b"b" * (64 << 10))
    assert text == "[... 100 earlier bytes not shown ...]\n" + "b" * (64 << 10)
    assert system_out(b"hi\n") == "hi\n"


class _Result:
    def __init__(self, status, reason):
        from kvmrun.outcome import Reason
        self.status, self.reason = status, Reason(reason)


def test_a_failure_message_always_says_how_the_guest_ended():
    assert failure_message(_Result(0, "halted"), ["serial output does not match 'x'"]) == \
        "exit status 0 (halted); serial output does not match 'x'"
    assert failure_message(_Result(1, "fault"), ["exit status 1 (fault), expected 0"]) == \
        "exit status 1 (fault), expected 0"
    assert failure_message(_Result(1, "fault"), ["ended by fault (status 1), expected halted"]) == \
        "ended by fault (status 1), expected halted"


# --- what a hostile guest makes of the report ------------------------------------------------------

NOISY = '''
[[guest]]
name = "noisy\\u001b[31m\\u0007"
image = "noisy.elf"
expect_serial = "never printed"

[[guest]]
name = "quiet"
image = "hello.elf"
'''


@pytest.mark.kvm
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_noisy_guest_is_reported_bounded_and_escaped(tmp_path, jobs):
    # The manifest's folder is not UTF-8: image paths carry undecodable bytes, as os.fsdecode leaves them.
    folder = tmp_path / os.fsdecode(b"suite\xff")
    folder.mkdir()
    shutil.copy(guest("noisy64.elf"), folder / "noisy.elf")
    shutil.copy(guest("hello64.elf"), folder / "hello.elf")
    manifest = folder / os.fsdecode(b"guests\xfe.toml")
    manifest.write_text(NOISY)
    report = tmp_path / "report.xml"
    result = run_kvmrun("test", manifest, "--jobs", jobs, "--junit-xml", report)
    out = result.stdout
    assert result.returncode == 1, result.stderr
    assert result.stderr == b""
    # 256 KiB of output on one line and terminal escapes: shown bounded, as text.
    assert len(out) < 12 * 1024, len(out)
    for control in (b"\x1b", b"\x07", b"\r"):
        assert control not in out
    text = out.decode()
    assert "FAIL noisy\\x1b[31m\\x07" in text
    assert "earlier bytes not shown ...]\nxxxx" in text
    assert "xxxx\n\\x1b[2J\\x1b]0;title\\x07cleared\\x0dback\ufffd\ufffd\nlast line\\x1b[0m\n" in text
    assert "exit status 0 (halted); serial output does not match 'never printed'" in text

    assert report.stat().st_size < 80 * 1024                # not the output once whole, let alone twice
    suite = ET.parse(report).getroot().find("testsuite")    # valid XML despite all of it
    assert suite.get("name") == "guests\\xfe"
    noisy, quiet = suite.findall("testcase")
    assert noisy.get("name") == "noisy\\x1b[31m\\x07"
    assert noisy.get("file").endswith("suite\\xff/noisy.elf")
    failure = noisy.find("failure")
    assert failure.get("message") == "exit status 0 (halted); serial output does not match 'never printed'"
    assert len(failure.text) < TAIL_BYTES + 1024
    assert "earlier bytes not shown" in failure.text and "\\x07cleared\\x0dback" in failure.text
    out_text = noisy.find("system-out").text
    assert out_text.startswith("[... ") and len(out_text) < 65 * 1024
    assert {p.get("name"): p.get("value") for p in noisy.iter("property")} == {"status": "0", "ended": "halted"}
    assert {p.get("name"): p.get("value") for p in quiet.iter("property")} == {"status": "0", "ended": "halted"}


# --- JUnit: whole or not at all ----------------------------------------------------------------------

def test_a_failed_junit_write_leaves_the_old_report_and_no_temporary_file(tmp_path, monkeypatch):
    report = tmp_path / "report.xml"
    report.write_bytes(b"<old/>")

    def full(fd, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(junit.os, "write", full)
    with pytest.raises(OSError) as err:
        junit.write_whole(str(report), b"<new/>" * 1000)
    monkeypatch.undo()
    assert err.value.errno == errno.ENOSPC
    assert report.read_bytes() == b"<old/>"
    assert os.listdir(tmp_path) == ["report.xml"]


def test_the_junit_file_is_replaced_whole_with_ordinary_permissions_through_a_symlink(tmp_path):
    report = tmp_path / "report.xml"
    link = tmp_path / "latest.xml"
    link.symlink_to(report.name)
    old_mask = os.umask(0o027)
    try:
        junit.write_whole(str(link), b"<new/>")
    finally:
        os.umask(old_mask)
    assert link.is_symlink() and report.read_bytes() == b"<new/>"
    assert report.stat().st_mode & 0o777 == 0o640
    assert sorted(os.listdir(tmp_path)) == ["latest.xml", "report.xml"]


PASSING = f'''
[[guest]]
name = "one"
image = "{GUESTS}/hello64.elf"

[[guest]]
name = "two"
image = "{GUESTS}/hello64.elf"
'''


@pytest.mark.kvm
def test_a_junit_device_is_written_in_place_and_a_full_one_is_one_line_status_2(tmp_path):
    manifest = tmp_path / "kvmrun.toml"
    manifest.write_text(PASSING)
    result = run_kvmrun("test", manifest, "--junit-xml", "/dev/full")
    assert result.returncode == 2
    assert result.stderr.decode() == "kvmrun: error: --junit-xml /dev/full: No space left on device\n"
    assert b"2 passed, 0 failed" in result.stdout
    assert os.path.exists("/dev/full") and not os.path.isfile("/dev/full")


# --- stdout that cannot be written ---------------------------------------------------------------------

def _kvmrun_test(manifest, junit_path, stdout, **popen):
    return subprocess.run([sys.executable, "-m", "kvmrun", "test", str(manifest), "--junit-xml", str(junit_path)],
                          stdout=stdout, stderr=subprocess.PIPE, timeout=60, **popen)


@pytest.mark.kvm
def test_a_stdout_whose_reader_went_away_is_141_not_a_guest_failure(tmp_path):
    manifest = tmp_path / "kvmrun.toml"
    manifest.write_text(PASSING)
    read_end, write_end = os.pipe()
    os.close(read_end)                                  # the reader is gone before the first write
    try:
        result = _kvmrun_test(manifest, tmp_path / "report.xml", write_end)
    finally:
        os.close(write_end)
    err = result.stderr.decode()
    assert result.returncode == 141, err
    assert err.startswith("kvmrun: error: cannot write to stdout: Broken pipe; 2 passed, 0 failed in ")
    assert err.count("\n") == 1
    assert ET.parse(tmp_path / "report.xml").getroot().find("testsuite").get("tests") == "2"


@pytest.mark.kvm
def test_a_stdout_that_cannot_be_written_is_one_line_and_status_2(tmp_path):
    manifest = tmp_path / "kvmrun.toml"
    manifest.write_text(PASSING)
    report = tmp_path / "report.xml"
    command = f'exec "{sys.executable}" -m kvmrun test "{manifest}" --junit-xml "{report}" >/dev/full'
    result = subprocess.run(["sh", "-c", command], stderr=subprocess.PIPE, timeout=60)
    err = result.stderr.decode()
    assert result.returncode == 2, err
    assert err.startswith("kvmrun: error: cannot write to stdout: No space left on device; 2 passed, 0 failed in ")
    assert err.count("\n") == 1
    assert ET.parse(report).getroot().find("testsuite").get("failures") == "0"


@pytest.mark.kvm
def test_a_closed_stdout_drops_the_report_and_the_status_is_the_guests(tmp_path):
    manifest = tmp_path / "kvmrun.toml"
    manifest.write_text(PASSING)
    report = tmp_path / "report.xml"
    command = f'exec "{sys.executable}" -m kvmrun test "{manifest}" --junit-xml "{report}" >&-'
    result = subprocess.run(["sh", "-c", command], stderr=subprocess.PIPE, timeout=60)
    assert (result.returncode, result.stderr) == (0, b"")
    assert ET.parse(report).getroot().find("testsuite").get("failures") == "0"


# --- JUnit to a pipe or a device -----------------------------------------------------------------------

@pytest.mark.kvm
def test_junit_to_dev_stdout_on_a_pipe_follows_the_report(tmp_path):
    manifest = tmp_path / "ok.toml"          # `kvmrun test ok.toml --junit-xml /dev/stdout | cat`
    manifest.write_text(PASSING)
    result = run_kvmrun("test", manifest, "--junit-xml", "/dev/stdout")
    assert (result.returncode, result.stderr) == (0, b""), result.stderr
    out = result.stdout.decode()
    assert "2 passed, 0 failed" in out
    xml = out[out.index("<?xml"):]
    assert ET.fromstring(xml).find("testsuite").get("tests") == "2"


@pytest.mark.kvm
def test_junit_to_a_process_substitution(tmp_path):
    manifest = tmp_path / "ok.toml"
    manifest.write_text(PASSING)
    report = tmp_path / "copied.xml"
    command = f'"{sys.executable}" -m kvmrun test "{manifest}" --junit-xml >(cat > "{report}") >/dev/null; ' \
              'status=$?; wait $!; exit $status'
    result = subprocess.run(["bash", "-c", command], stderr=subprocess.PIPE, timeout=60)
    assert (result.returncode, result.stderr) == (0, b""), result.stderr
    assert ET.parse(report).getroot().find("testsuite").get("tests") == "2"


def _read_in_background(fd):
    import threading
    chunks = []

    def read():
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    reader = threading.Thread(target=read)
    reader.start()
    return reader, chunks


def test_a_pipe_through_proc_self_fd_is_written_in_place(tmp_path):
    read_end, write_end = os.pipe()
    reader, chunks = _read_in_background(read_end)
    try:
        assert junit.written_in_place(f"/proc/self/fd/{write_end}")
        junit.write_whole(f"/proc/self/fd/{write_end}", b"<new/>" * 10000)
    finally:
        os.close(write_end)
        reader.join(10)
        os.close(read_end)
    assert b"".join(chunks) == b"<new/>" * 10000
    assert os.listdir(tmp_path) == []


def test_a_fifo_is_written_in_place_not_replaced(tmp_path):
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    read_end = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)    # a reader, so the writer's open does not wait
    try:
        junit.write_whole(str(fifo), b"<new/>")
        assert os.read(read_end, 100) == b"<new/>"
    finally:
        os.close(read_end)
    assert os.listdir(tmp_path) == ["report.fifo"] and stat.S_ISFIFO(os.stat(fifo).st_mode)


@pytest.mark.kvm
def test_piping_into_head_is_not_a_failure(tmp_path):
    manifest = tmp_path / "kvmrun.toml"
    manifest.write_text(PASSING)
    command = f'"{sys.executable}" -m kvmrun test "{manifest}" | head -1; exit ${{PIPESTATUS[0]}}'
    for _ in range(3):
        result = subprocess.run(["bash", "-c", command], capture_output=True, timeout=60)
        assert result.returncode in (0, 141), result.stderr
        assert b"Traceback" not in result.stderr
        assert result.stdout.startswith((b"PASS one ", b"PASS two ")), result.stdout   # two jobs: either first
