"""The gdb stub's protocol side (kvmrun/debug/server.py, registers.py) over a FakeTarget: first with raw
packets through a loopback connection, then with the real gdb in batch mode against the server on a
thread. No KVM anywhere: the target is a bytearray of memory and a dict of registers per vCPU."""
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from hypothesis import given, settings, strategies as st

from conftest import ROOT
from elfimage import Seg, elf
from kvmrun.debug.packets import checksum, escape, frame
from kvmrun.debug.registers import layout_for
from kvmrun.debug.server import MAX_MEMORY_READ, PACKET_SIZE, GdbServer
from kvmrun.debug.target import StopEvent, Target, TargetError

sys.path.insert(0, str(ROOT / "fuzz"))
from fuzz_gdb import check_stream  # noqa: E402

CANONICAL = ("rax rbx rcx rdx rsi rdi rbp rsp r8 r9 r10 r11 r12 r13 r14 r15 rip eflags cs ss ds es fs gs "
             "fs_base gs_base cr0 cr2 cr3 cr4 cr8 efer").split()
LONG, PROTECTED, REAL = "i386:x86-64", "i386", "i8086"
CODE = 0x1000
# mov eax, 0x12345678 / REX.W mov rbx, rax / jmp $: 32-bit code reads 48 as dec eax, 16-bit code reads
# b8 as mov ax with a 2-byte immediate: each mode disassembles these bytes its own way.
INSTRUCTIONS = bytes.fromhex("b878563412" "4889c3" "ebfe")
STRING = 0x3000


class FakeTarget(Target):
    """Two vCPUs over 128 KiB of NOPs (one byte an instruction, so a step is pc + 1). A continue stops
    at the nearest code breakpoint after vCPU 0's pc, or at a watchpoint (after writing to it), or runs
    until interrupt(). Stops are queued in `pending`: the server hears of them later, as from kvmrun."""

    def __init__(self, architecture=LONG, cpu_count=2):
        self.cpu_count = cpu_count
        self.modes = [architecture] * cpu_count
        self.memory = bytearray(b"\x90" * 0x20000)
        self.memory[CODE:CODE + len(INSTRUCTIONS)] = INSTRUCTIONS
        self.memory[STRING:STRING + 12] = b"hello, gdb!\0"
        self.registers = []
        for cpu in range(cpu_count):
            values = dict.fromkeys(CANONICAL, 0)
            values.update(rax=0x1111 * (cpu + 1) | 0xAAAA_0000_0000, rip=CODE, rsp=0x8000, eflags=0x202,
                          cs=0x8, ss=0x10, ds=0x10, cr0=0x80000011, cr3=0x5000, efer=0x500, r15=cpu)
            self.registers.append(values)
        self.breakpoints = []            # (kind, address, length) inserted
        self.free_slots = 4              # hardware breakpoints and watchpoints left
        self.unsupported = set()         # kinds whose set_breakpoint raises NotImplementedError
        self.log = []
        self.pending = []                # StopEvents the server is told of later
        self.mode_after_step = None      # the guest switches mode on the next step
        self.fail_with = None            # an exception every register read raises

    def architecture(self, cpu):
        return self.modes[cpu]

    def read_registers(self, cpu):
        if self.fail_with is not None:
            raise self.fail_with
        return dict(self.registers[cpu])

    def write_registers(self, cpu, values):
        self.log.append(("write_registers", cpu, dict(values)))
        self.registers[cpu].update(values)

    def _check(self, address, length):
        if address + length > len(self.memory):
            raise TargetError(f"{address:#x} is outside RAM")

    def read_memory(self, cpu, address, length):
        self._check(address, length)
        self.log.append(("read_memory", cpu, address, length))
        return bytes(self.memory[address:address + length])

    def write_memory(self, cpu, address, data):
        self._check(address, len(data))
        self.log.append(("write_memory", cpu, address, bytes(data)))
        self.memory[address:address + len(data)] = data

    def set_breakpoint(self, kind, address, length):
        self.log.append(("set_breakpoint", kind, address, length))
        if kind in self.unsupported:
            raise NotImplementedError(kind)
        if kind != "software":
            if not self.free_slots:
                return False
            self.free_slots -= 1
        self.breakpoints.append((kind, address, length))
        return True

    def remove_breakpoint(self, kind, address, length):
        self.log.append(("remove_breakpoint", kind, address, length))
        if (kind, address, length) not in self.breakpoints:
            return False
        self.breakpoints.remove((kind, address, length))
        if kind != "software":
            self.free_slots += 1
        return True

    def resume(self, actions):
        self.log.append(("resume", dict(actions)))
        for cpu, action in sorted(actions.items()):
            if action == "step":
                self.registers[cpu]["rip"] += 1
                if self.mode_after_step:
                    self.modes = [self.mode_after_step] * self.cpu_count
                self.pending.append(StopEvent(cpu, "step"))
                return
        for kind, address, length in self.breakpoints:
            if kind in ("write", "read", "access"):
                self.memory[address] ^= 0xFF        # the guest touched it
                self.pending.append(StopEvent(0, "watchpoint", kind, address))
                return
        pc = self.registers[0]["rip"]
        ahead = sorted(address for kind, address, _ in self.breakpoints
                       if kind in ("software", "hardware") and address > pc)
        if ahead:
            self.registers[0]["rip"] = ahead[0]
            self.pending.append(StopEvent(0, "breakpoint"))

    def interrupt(self):
        self.log.append(("interrupt",))
        self.pending.append(StopEvent(0, "interrupt"))

    def detach(self):
        self.log.append(("detach",))
        self.breakpoints.clear()

    def kill(self):
        self.log.append(("kill",))

    def calls(self, name):
        return [entry[1:] for entry in self.log if entry[0] == name]


def deliver_stops(target, server):
    while target.pending:
        server.stopped(target.pending.pop(0))


# --- raw packets ---

class Gdb:
    """A scripted gdb: raw bytes to the server through loopback TCP, the server run on this thread."""

    def __init__(self, target=None, announce=b"swbreak+;hwbreak+"):
        self.target = target or FakeTarget()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.server = GdbServer(self.target, self.listener)
        self.connect()
        self.announce = announce

    def connect(self, wait=True):
        self.sock = socket.create_connection(self.listener.getsockname(), timeout=5)
        if wait:
            assert self.server.wait_for_debugger(timeout=5)
        else:
            self.pump()
        self.acks = True
        self.received = bytearray()

    def close(self):
        self.sock.close()
        self.pump()

    def pump(self, first_wait=2.0):
        """Let the server read what was sent (waiting up to `first_wait` for it to arrive) and hear
        of the target's stops."""
        wait = first_wait
        while True:
            fd = self.server.fileno()
            if fd < 0 or not select.select([fd], [], [], wait)[0]:
                break
            self.server.on_readable()
            wait = 0
        deliver_stops(self.target, self.server)

    def send(self, raw):
        self.sock.sendall(raw)
        self.pump()

    def _fill(self, timeout=2.0):
        """Receive what the server sends within `timeout`, letting it run meanwhile (it may still
        be reading a large packet)."""
        deadline = time.monotonic() + timeout
        while True:
            self.pump(first_wait=0)
            self.sock.settimeout(0.005)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                if time.monotonic() >= deadline:
                    return False
                continue
            if not data:
                raise EOFError("the server closed the connection")
            self.received += data
            return True

    def read_ack(self):
        while not self.received:
            assert self._fill(), "no acknowledgement"
        ack, self.received = bytes(self.received[:1]), self.received[1:]
        return ack

    def read_packet(self):
        while True:
            start = self.received.find(b"$")
            end = self.received.find(b"#", max(start, 0))
            if start >= 0 and end >= 0 and len(self.received) >= end + 3:
                break
            assert self._fill(), f"no reply (received {bytes(self.received)!r})"
        assert start == 0, f"unexpected bytes before a packet: {bytes(self.received[:start])!r}"
        payload, digits = bytes(self.received[1:end]), bytes(self.received[end + 1:end + 3])
        del self.received[:end + 3]
        assert int(digits, 16) == checksum(payload), "the server sent a wrong checksum"
        return payload

    def silent(self, timeout=0.3):
        return not self.received and not self._fill(timeout)

    def request(self, payload, reply=True):
        self.send(frame(payload))
        if self.acks:
            assert self.read_ack() == b"+"
        return self.read_packet() if reply else None

    def handshake(self):
        supported = self.request(b"qSupported:multiprocess+;" + self.announce + b";xmlRegisters=i386")
        assert self.request(b"QStartNoAckMode") == b"OK"
        self.acks = False
        return supported


@pytest.fixture
def gdb():
    client = Gdb()
    yield client
    client.sock.close()
    client.listener.close()


def registers_of(reply, architecture):
    layout = layout_for(architecture)
    data = bytes.fromhex(reply.decode())
    assert len(data) == layout.size
    values, offset = {}, 0
    for register in layout.registers:
        values[register.name] = int.from_bytes(data[offset:offset + register.size], "little")
        offset += register.size
    return values


def test_qsupported_announces_what_the_stub_does(gdb):
    features = gdb.request(b"qSupported:swbreak+").split(b";")
    assert b"PacketSize=%x" % PACKET_SIZE in features
    for feature in (b"qXfer:features:read+", b"vContSupported+", b"swbreak+", b"hwbreak+", b"QStartNoAckMode+"):
        assert feature in features


def test_every_good_packet_is_acknowledged_and_a_bad_one_refused(gdb):
    assert gdb.request(b"qC") == b"QC1"
    gdb.send(b"$qC#00")
    assert gdb.read_ack() == b"-"
    assert gdb.silent()                       # no reply to a packet that did not arrive whole


def test_no_ack_mode_stops_acknowledgements_and_drops_bad_packets(gdb):
    gdb.handshake()
    assert gdb.request(b"qC") == b"QC1"       # request() with acks off fails on a stray '+'
    gdb.send(b"$qC#00")
    assert gdb.silent()
    assert gdb.request(b"qAttached") == b"1"


def test_a_nack_gets_the_last_reply_again(gdb):
    assert gdb.request(b"qC") == b"QC1"
    gdb.send(b"-")
    assert gdb.read_packet() == b"QC1"


def test_the_first_stop_reply_names_thread_1(gdb):
    gdb.handshake()
    assert gdb.request(b"?") == b"T05thread:1;"


def test_thread_queries(gdb):
    gdb.handshake()
    assert gdb.request(b"qfThreadInfo") == b"m1,2"
    assert gdb.request(b"qsThreadInfo") == b"l"
    assert gdb.request(b"qC") == b"QC1"
    assert gdb.request(b"T1") == b"OK"
    assert gdb.request(b"T2") == b"OK"
    assert gdb.request(b"T3").startswith(b"E")
    assert bytes.fromhex(gdb.request(b"qThreadExtraInfo,2").decode()) == b"vCPU 1"


def test_qattached_qsymbol_and_unknown_packets(gdb):
    gdb.handshake()
    assert gdb.request(b"qAttached") == b"1"          # gdb detaches on quit rather than killing the guest
    assert gdb.request(b"qSymbol::") == b"OK"
    for unsupported in (b"vMustReplyEmpty", b"qOffsets", b"qTStatus", b"vFile:open:x", b"!", b"Qbogus", b"y"):
        assert gdb.request(unsupported) == b"", unsupported


# --- registers and descriptions ---

@pytest.mark.parametrize("architecture, size, pc_name, pc_offset, eflags_offset", [
    (LONG, 340, "rip", 128, 136),
    (PROTECTED, 200, "eip", 32, 36),
    (REAL, 200, "eip", 32, 36),
])
def test_layouts_are_pinned(architecture, size, pc_name, pc_offset, eflags_offset):
    layout = layout_for(architecture)
    assert layout.size == size
    assert layout.offset(pc_name) == pc_offset
    assert layout.offset("eflags") == eflags_offset
    names = [register.name for register in layout.registers]
    assert names[names.index("st0"):names.index("fop") + 1] == [f"st{i}" for i in range(8)] + [
        "fctrl", "fstat", "ftag", "fiseg", "fioff", "foseg", "fooff", "fop"]
    assert b"<architecture>%s</architecture>" % architecture.encode() in layout.xml()


def test_the_amd64_layout_is_gdbs_core_then_segments_then_control_registers():
    names = [register.name for register in layout_for(LONG).registers]
    assert names[:24] == ("rax rbx rcx rdx rsi rdi rbp rsp r8 r9 r10 r11 r12 r13 r14 r15 rip eflags "
                          "cs ss ds es fs gs").split()
    assert names[40:] == ["fs_base", "gs_base", "cr0", "cr2", "cr3", "cr4", "cr8", "efer"]
    xml = layout_for(LONG).xml().decode()
    assert xml.index('<feature name="org.gnu.gdb.i386.core">') < xml.index('name="org.gnu.gdb.i386.segments"')
    assert '<feature name="org.qemu.gdb.i386.sys">' in xml


def test_the_i386_layout_is_gdbs_32bit_core():
    names = [register.name for register in layout_for(PROTECTED).registers]
    assert names[:16] == "eax ecx edx ebx esp ebp esi edi eip eflags cs ss ds es fs gs".split()
    assert names[32:] == ["cr0", "cr2", "cr3", "cr4", "efer"]


@pytest.mark.parametrize("architecture", [LONG, PROTECTED, REAL])
def test_g_follows_the_description_of_the_cpus_mode(architecture):
    client = Gdb(FakeTarget(architecture))
    client.handshake()
    xml = b""
    while True:                                # in small pieces, as a gdb with a small buffer reads it
        reply = client.request(b"qXfer:features:read:target.xml:%x,40" % len(xml))
        xml += reply[1:]
        if reply[:1] == b"l":
            break
        assert reply[:1] == b"m"
    assert xml == layout_for(architecture).xml()
    values = registers_of(client.request(b"g"), architecture)
    pc = "rip" if architecture == LONG else "eip"
    accumulator = "rax" if architecture == LONG else "eax"
    assert values[pc] == CODE
    assert values["eflags"] == 0x202
    assert values["cr3"] == 0x5000 and values["cs"] == 0x8
    assert values[accumulator] == (0xAAAA_0000_1111 if architecture == LONG else 0x1111)
    assert values["st0"] == 0 and values["fctrl"] == 0        # no x87 state: zero


def test_qxfer_refuses_other_annexes_and_ends_past_the_document(gdb):
    gdb.handshake()
    assert gdb.request(b"qXfer:features:read:i386-64bit.xml:0,100").startswith(b"E")
    assert gdb.request(b"qXfer:features:read:target.xml:ffff,100") == b"l"
    assert gdb.request(b"qXfer:features:read:target.xml:zz,100").startswith(b"E")


def test_g_reads_the_thread_hg_picks(gdb):
    gdb.handshake()
    assert registers_of(gdb.request(b"g"), LONG)["r15"] == 0
    assert gdb.request(b"Hg2") == b"OK"
    assert registers_of(gdb.request(b"g"), LONG)["r15"] == 1
    assert gdb.request(b"Hg3").startswith(b"E")
    assert gdb.request(b"Hg0") == b"OK"                       # any: the current thread
    assert registers_of(gdb.request(b"g"), LONG)["r15"] == 0
    assert gdb.request(b"Hc-1") == b"OK"


def test_G_writes_only_what_changed_and_ignores_x87(gdb):
    gdb.handshake()
    layout = layout_for(LONG)
    data = bytearray(bytes.fromhex(gdb.request(b"g").decode()))
    data[layout.offset("rbx"):layout.offset("rbx") + 8] = (0x42).to_bytes(8, "little")
    data[layout.offset("st3"):layout.offset("st3") + 10] = b"\x01" * 10
    assert gdb.request(b"G" + data.hex().encode()) == b"OK"
    assert gdb.target.calls("write_registers") == [(0, {"rbx": 0x42})]
    assert gdb.request(b"G" + data.hex().encode()[:-2]).startswith(b"E")   # a byte short
    assert gdb.request(b"G" + b"zz" * layout.size).startswith(b"E")


def test_a_32bit_write_keeps_the_upper_half_of_the_64bit_register():
    client = Gdb(FakeTarget(PROTECTED))
    client.handshake()
    layout = layout_for(PROTECTED)
    data = bytearray(bytes.fromhex(client.request(b"g").decode()))
    data[0:4] = (0x55).to_bytes(4, "little")                  # eax
    assert client.request(b"G" + data.hex().encode()) == b"OK"
    assert client.target.registers[0]["rax"] == 0xAAAA_0000_0055
    eip = layout.number("eip")
    assert client.request(b"P%x=%s" % (eip, (0x2000).to_bytes(4, "little").hex().encode())) == b"OK"
    assert client.target.registers[0]["rip"] == 0x2000


def test_p_and_P_by_register_number(gdb):
    gdb.handshake()
    layout = layout_for(LONG)
    rip, st0, cr3 = layout.number("rip"), layout.number("st0"), layout.number("cr3")
    assert gdb.request(b"p%x" % rip) == CODE.to_bytes(8, "little").hex().encode()
    assert gdb.request(b"p%x" % cr3) == (0x5000).to_bytes(8, "little").hex().encode()
    assert gdb.request(b"p%x" % st0) == b"00" * 10
    assert gdb.request(b"p%x" % len(layout.registers)) == b"E16"      # EINVAL
    assert gdb.request(b"P%x=00" % len(layout.registers)) == b"E16"
    assert gdb.request(b"pffffffffffffffffff") == b"E16"
    assert gdb.request(b"P%x=%s" % (st0, b"11" * 10)) == b"OK"       # accepted, ignored
    assert gdb.request(b"P%x=%s" % (rip, b"00")).startswith(b"E")    # the wrong width
    assert gdb.request(b"P%x=%s" % (cr3, (0x7000).to_bytes(8, "little").hex().encode())) == b"OK"
    assert gdb.target.calls("write_registers") == [(0, {"cr3": 0x7000})]


# --- memory ---

def test_m_reads_and_caps_the_length(gdb):
    gdb.handshake()
    assert bytes.fromhex(gdb.request(b"m3000,b").decode()) == b"hello, gdb!"
    reply = gdb.request(b"m0,100000")                           # 1 MiB asked: a capped short read
    assert len(reply) == 2 * MAX_MEMORY_READ
    assert gdb.target.calls("read_memory")[-1] == (0, 0, MAX_MEMORY_READ)
    assert gdb.request(b"m0,ffffffffffffffff") and gdb.target.calls("read_memory")[-1][2] == MAX_MEMORY_READ


def test_memory_the_target_refuses_and_malformed_requests_get_errors(gdb):
    gdb.handshake()
    assert gdb.request(b"m1fff0,100") == b"E0e"                 # EFAULT from the target
    for bad in (b"mzz,4", b"m1000", b"m,4", b"m10000000000000000,4", b"M1000,2:123", b"M1000,2:12",
                b"M1000,1:zz", b"M1000,2:4 42", b"X1000,2:a", b"Z0,1000", b"Z0,xyz,1", b"vCont;q", b"Hq1", b"Hg5"):
        assert gdb.request(bad).startswith(b"E"), bad
    assert gdb.target.calls("write_memory") == []


def test_M_and_X_write_memory_through_the_hg_thread(gdb):
    gdb.handshake()
    assert gdb.request(b"Hg2") == b"OK"
    assert gdb.request(b"M2000,3:414243") == b"OK"
    assert gdb.target.memory[0x2000:0x2003] == b"ABC"
    data = b"#$}*\x03\x00+-"
    assert gdb.request(b"X2100,%x:" % len(data) + escape(data)) == b"OK"
    assert gdb.target.memory[0x2100:0x2100 + len(data)] == data
    assert gdb.request(b"X2100,0:") == b"OK"                    # gdb probing for X
    assert [call[:2] for call in gdb.target.calls("write_memory")] == [(1, 0x2000), (1, 0x2100)]


# --- breakpoints ---

def test_Z_and_z_reach_the_target_with_each_kind(gdb):
    gdb.handshake()
    for number, kind in enumerate(("software", "hardware", "write", "read", "access")):
        assert gdb.request(b"Z%d,1005,%d" % (number, number + 1)) == b"OK"
        assert gdb.target.calls("set_breakpoint")[-1] == (kind, 0x1005, number + 1)
        assert gdb.request(b"z%d,1005,%d" % (number, number + 1)) == b"OK"
        assert gdb.target.calls("remove_breakpoint")[-1] == (kind, 0x1005, number + 1)
    assert gdb.request(b"z0,1234,1").startswith(b"E")        # not inserted
    assert gdb.request(b"Z5,1005,1") == b""                  # a type kvmrun does not know


def test_no_free_slot_is_an_error_and_unsupported_is_empty(gdb):
    gdb.handshake()
    gdb.target.free_slots = 0
    assert gdb.request(b"Z1,1005,1").startswith(b"E")
    gdb.target.unsupported.add("read")
    assert gdb.request(b"Z3,2000,4") == b""


# --- running and stopping ---

def test_continue_waits_for_the_stop_and_reports_a_software_breakpoint(gdb):
    gdb.handshake()
    assert gdb.request(b"Z0,1005,1") == b"OK"
    assert gdb.request(b"c") == b"T05thread:1;swbreak:;"
    assert gdb.target.calls("resume") == [({0: "continue", 1: "continue"},)]
    assert registers_of(gdb.request(b"g"), LONG)["rip"] == 0x1005


def test_a_hardware_breakpoint_stop_says_hwbreak(gdb):
    gdb.handshake()
    assert gdb.request(b"Z1,1007,1") == b"OK"
    assert gdb.request(b"vCont;c") == b"T05thread:1;hwbreak:;"


def test_breakpoint_kinds_are_only_named_to_a_gdb_that_announced_them():
    client = Gdb(announce=b"")
    client.handshake()
    assert client.request(b"Z0,1005,1") == b"OK"
    assert client.request(b"c") == b"T05thread:1;"


def test_continue_without_a_stop_sends_nothing_until_interrupted(gdb):
    gdb.handshake()
    gdb.request(b"c", reply=False)
    assert gdb.silent()
    assert gdb.target.calls("interrupt") == []
    gdb.send(b"\x03")
    assert gdb.target.calls("interrupt") == [()]
    assert gdb.read_packet() == b"T02thread:1;"
    assert gdb.request(b"?") == b"T02thread:1;"               # remembered


def test_ctrl_c_while_stopped_does_nothing(gdb):
    gdb.send(b"\x03")
    assert gdb.silent()
    assert gdb.target.calls("interrupt") == []


def test_ctrl_c_in_ack_mode_and_mid_stream(gdb):
    gdb.request(b"c", reply=False)
    gdb.send(b"\x03" + frame(b"qC"))             # an interrupt, then a packet in the same read
    assert gdb.target.calls("interrupt") == [()]
    assert gdb.read_ack() == b"+"
    assert gdb.read_packet() == b"QC1"                # answered while the stop is on its way
    assert gdb.read_packet() == b"T02thread:1;"


def test_continue_and_step_at_an_address_set_the_pc_first(gdb):
    gdb.handshake()
    assert gdb.request(b"s2000") == b"T05thread:1;"
    assert gdb.target.calls("write_registers") == [(0, {"rip": 0x2000})]
    assert gdb.target.calls("resume") == [({0: "step"},)]      # the other vCPU stays stopped
    assert gdb.target.registers[0]["rip"] == 0x2001


def test_step_follows_hc(gdb):
    gdb.handshake()
    assert gdb.request(b"Hc2") == b"OK"
    assert gdb.request(b"s") == b"T05thread:2;"
    assert gdb.target.calls("resume") == [({1: "step"},)]


@pytest.mark.parametrize("packet, actions", [
    (b"vCont;s:2;c", {1: "step", 0: "continue"}),
    (b"vCont;c:1", {0: "continue"}),
    (b"vCont;S05:1;C02", {0: "step", 1: "continue"}),         # signals ignored
    (b"vCont;s:1;t", {0: "step"}),
    (b"vCont;c:-1", {0: "continue", 1: "continue"}),
])
def test_vcont_actions(gdb, packet, actions):
    gdb.handshake()
    assert gdb.request(b"vCont?") == b"vCont;c;C;s;S;t"
    gdb.request(packet, reply=False)
    assert gdb.target.calls("resume") == [(actions,)]


@pytest.mark.parametrize("packet", [b"vCont;t", b"vCont;s:3", b"vCont;x", b"vCont;", b"vCont;cc", b"vCont;Czz"])
def test_vcont_that_resumes_nothing_or_is_malformed_is_an_error(gdb, packet):
    gdb.handshake()
    assert gdb.request(packet).startswith(b"E")
    assert gdb.target.calls("resume") == []


def test_a_stop_names_its_thread_which_becomes_current(gdb):
    gdb.handshake()
    assert gdb.request(b"vCont;s:2") == b"T05thread:2;"
    assert gdb.request(b"qC") == b"QC2"
    assert registers_of(gdb.request(b"g"), LONG)["r15"] == 1
    assert gdb.request(b"m1000,1") and gdb.target.calls("read_memory")[-1][0] == 1
    assert gdb.request(b"Hg2") == b"OK"
    assert gdb.request(b"vCont;s:1") == b"T05thread:1;"   # overrides the Hg before, as gdb expects
    assert registers_of(gdb.request(b"g"), LONG)["r15"] == 0


@pytest.mark.parametrize("kind, reply", [("write", b"watch"), ("read", b"rwatch"), ("access", b"awatch")])
def test_watchpoint_stops(gdb, kind, reply):
    gdb.handshake()
    number = {"write": 2, "read": 3, "access": 4}[kind]
    assert gdb.request(b"Z%d,3000,4" % number) == b"OK"
    assert gdb.request(b"c") == b"T05thread:1;" + reply + b":3000;"


def test_exit_is_reported_to_a_waiting_gdb_and_ends_the_session(gdb):
    gdb.handshake()
    gdb.request(b"c", reply=False)
    gdb.server.exited(0x103)
    assert gdb.read_packet() == b"W03"
    with pytest.raises(EOFError):
        gdb._fill()
    assert gdb.server.finished and not gdb.server.connected
    assert gdb.server.fileno() == -1


def test_killed_is_reported_as_x(gdb):
    gdb.handshake()
    gdb.request(b"c", reply=False)
    gdb.server.killed(15)
    assert gdb.read_packet() == b"X0f"


@pytest.mark.parametrize("packet, reply", [(b"k", None), (b"vKill;a410", b"OK")])
def test_kill(gdb, packet, reply):
    gdb.handshake()
    assert gdb.request(packet, reply=reply is not None) == reply
    assert gdb.target.calls("kill") == [()]
    with pytest.raises(EOFError):
        gdb._fill()
    assert gdb.server.finished


def test_detach_lets_the_guest_run_and_a_new_gdb_stops_it_again(gdb):
    gdb.handshake()
    assert gdb.request(b"D") == b"OK"
    assert gdb.target.calls("detach") == [()]
    gdb.close()
    assert gdb.server.detached and not gdb.server.connected
    assert gdb.server.fileno() == gdb.listener.fileno()
    gdb.connect(wait=False)                         # accepted from on_readable, as kvmrun's host loop does
    assert gdb.server.connected and not gdb.server.detached
    assert gdb.target.calls("interrupt") == [()]
    assert gdb.request(b"?") == b"T02thread:1;"


def test_packets_from_a_new_gdb_wait_for_the_guest_to_stop(gdb):
    gdb.handshake()
    assert gdb.request(b"D") == b"OK"
    gdb.close()
    gdb.target.interrupt = lambda: None             # its stop arrives only when the test says
    gdb.connect(wait=False)
    gdb.handshake()                                 # needs no target: answered at once
    gdb.send(frame(b"g") + frame(b"qC") + frame(b"?"))
    assert gdb.silent()                             # qC too: replies keep the order of the packets
    gdb.server.stopped(StopEvent(1, "interrupt"))
    assert registers_of(gdb.read_packet(), LONG)["r15"] == 1
    assert gdb.read_packet() == b"QC2"
    assert gdb.read_packet() == b"T02thread:2;"


def test_disconnect_without_detach_keeps_the_target_stopped(gdb):
    gdb.handshake()
    assert gdb.request(b"Z0,1005,1") == b"OK"
    assert gdb.request(b"vCont;s:2") == b"T05thread:2;"
    gdb.close()
    assert not gdb.server.connected and not gdb.server.detached
    assert gdb.target.calls("detach") == [] and gdb.target.calls("interrupt") == []
    assert gdb.target.breakpoints == []             # what that gdb left in is gone
    assert len(gdb.target.calls("resume")) == 1
    gdb.connect(wait=False)
    gdb.handshake()
    assert gdb.request(b"?") == b"T05thread:2;"
    assert gdb.target.calls("interrupt") == []


def test_a_gdb_that_dies_while_the_guest_runs_leaves_it_stopped(gdb):
    gdb.handshake()
    gdb.request(b"c", reply=False)
    gdb.close()
    assert gdb.target.calls("interrupt") == [()]
    gdb.connect(wait=False)
    assert gdb.request(b"?") == b"T02thread:1;"


def test_wait_for_debugger_times_out():
    listener = socket.create_server(("127.0.0.1", 0))
    server = GdbServer(FakeTarget(), listener)
    started = time.monotonic()
    assert server.wait_for_debugger(timeout=0.1) is False
    assert time.monotonic() - started < 2
    assert not server.connected and server.fileno() == listener.fileno()
    listener.close()


# --- hostile gdb ---

def test_an_oversize_packet_is_refused_and_the_session_goes_on(gdb):
    gdb.handshake()
    gdb.send(b"$M0,1:" + b"0" * (PACKET_SIZE * 4) + b"#00")
    assert gdb.read_packet().startswith(b"E")
    assert gdb.server._reader.buffered == 0
    assert gdb.request(b"qC") == b"QC1"
    assert gdb.target.calls("write_memory") == []


def test_a_target_bug_is_an_error_reply_not_an_exception(gdb):
    gdb.handshake()
    gdb.target.fail_with = RuntimeError("bug")
    assert gdb.request(b"g") == b"E05"
    gdb.target.fail_with = TargetError("vCPU gone", errno=3)
    assert gdb.request(b"g") == b"E03"
    gdb.target.fail_with = None
    assert gdb.request(b"g")


def test_a_gdb_that_stops_reading_cannot_hang_the_server(gdb):
    gdb.server.send_timeout = 0.3
    gdb.handshake()
    gdb.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    gdb.server._conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    started = time.monotonic()
    for _ in range(1000):                      # 16 KiB replies nobody reads
        if not gdb.server.connected:
            break
        gdb.sock.sendall(frame(b"m0,2000"))
        gdb.pump(first_wait=0.5)
    assert not gdb.server.connected
    assert time.monotonic() - started < 30


COMMANDS = [b"g", b"G" + b"00" * 340, b"G" + b"00" * 200, b"m0,4", b"m0,100000", b"M0,1:zz", b"M10,2:4142",
            b"X0,1:}", b"X10,2:}]}\x03", b"p10", b"P10=0010000000000000", b"p99", b"Z0,1005,1", b"z0,1005,1",
            b"Z2,3,4", b"c", b"c1000", b"s", b"vCont;c", b"vCont;s:2;c", b"vCont;t", b"Hg2", b"Hc1", b"?",
            b"qXfer:features:read:target.xml:0,fff", b"qXfer:features:read:x:0,1", b"QStartNoAckMode",
            b"D", b"qC", b"k", b"vKill;1", b"qfThreadInfo", b"T2"]


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 255), st.integers(0, 2),
       st.lists(st.one_of(st.binary(max_size=40), st.sampled_from([b"$", b"#", b"\x03", b"+", b"-", b"}"]),
                          st.sampled_from(COMMANDS).map(frame)), max_size=16))
def test_any_stream_never_raises_and_the_server_still_answers(piece, mode, chunks):
    """fuzz/fuzz_gdb.py's invariants on raw byte streams: well-framed output, bounded buffering,
    bounded requests to the target, and a qC answered afterwards."""
    check_stream(bytes([piece & 0x7F, mode]) + b"".join(chunks))


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 255), st.integers(0, 2),
       st.lists(st.one_of(st.sampled_from(COMMANDS), st.binary(max_size=30).filter(lambda body: b"\n" not in body)),
                max_size=16))
def test_any_packets_never_raise_and_the_server_still_answers(piece, mode, bodies):
    """The same with every packet well framed, so each reaches its command."""
    check_stream(bytes([piece | 0x80, mode]) + b"\n".join(bodies))


# --- the real gdb ---

GDB = shutil.which("gdb")
needs_gdb = pytest.mark.skipif(GDB is None, reason="gdb is not installed")


class ServerThread:
    """The server on a thread of its own with a selectors-style loop, as kvmrun's host loop runs it."""

    def __init__(self, target):
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.listener.setblocking(False)
        self.server = GdbServer(target, self.listener)
        self.stop = threading.Event()
        self.errors = []
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        try:
            while not self.stop.is_set():
                fd = self.server.fileno()
                if fd < 0:
                    break
                if select.select([fd], [], [], 0.02)[0]:
                    self.server.on_readable()
                deliver_stops(self.target, self.server)
        except BaseException as error:            # noqa: BLE001 - reported by the test
            self.errors.append(error)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(5)
        self.listener.close()


def run_gdb(target, *commands, before=(), symbol_file=None):
    """gdb in batch mode against the server: `before` runs before `target remote`."""
    with ServerThread(target) as served:
        arguments = [GDB, "-nx", "-batch", "-ex", "set confirm off"]
        if symbol_file:
            arguments += ["-ex", f"file {symbol_file}"]
        for command in (*before, f"target remote 127.0.0.1:{served.port}", *commands):
            arguments += ["-ex", command]
        result = subprocess.run(arguments, capture_output=True, text=True, timeout=60)
    assert not served.errors, served.errors
    assert "internal-error" not in result.stderr, result.stderr
    return result.stdout + result.stderr


@needs_gdb
def test_gdb_connects_reads_registers_and_memory_and_writes_memory():
    target = FakeTarget()
    output = run_gdb(target, "info registers", "x/s 0x3000", "set {int}0x2000 = 0x44434241",
                     "info registers cr3", "p/x $eflags")
    assert "rax            0xaaaa00001111" in output
    assert "rip            0x1000" in output
    assert "cr3            0x5000" in output
    assert "efer           0x500               [ LME LMA ]" in output
    assert '0x3000:\t"hello, gdb!"' in output
    assert target.memory[0x2000:0x2004] == b"ABCD"
    assert target.calls("detach") == [()]                       # qAttached: gdb detaches on quit


@needs_gdb
def test_gdb_breaks_continues_and_steps():
    target = FakeTarget()
    output = run_gdb(target, "break *0x1005", "continue", "info registers rip", "stepi", "info registers rip")
    assert ("software", 0x1005, 1) in target.calls("set_breakpoint")
    assert "Breakpoint 1, 0x0000000000001005 in ?? ()" in output
    assert "rip            0x1005" in output and "rip            0x1006" in output
    assert any(actions == {0: "step", 1: "continue"} or actions == {0: "step"}
               for (actions,) in target.calls("resume"))


@needs_gdb
def test_gdb_watchpoint_reaches_the_target_and_reports_the_change():
    target = FakeTarget()
    output = run_gdb(target, "watch *(char *)0x3000", "continue")
    assert ("write", 0x3000, 1) in target.calls("set_breakpoint")
    assert "Hardware watchpoint 1: *(char *)0x3000" in output
    assert "Old value = 104 'h'" in output


@needs_gdb
def test_ctrl_c_in_gdb_stops_the_running_guest():
    target = FakeTarget()
    with ServerThread(target) as served:
        commands = [f"target remote 127.0.0.1:{served.port}", "continue", "info registers rip"]
        gdb = subprocess.Popen([GDB, "-nx", "-batch"] + [part for command in commands for part in ("-ex", command)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 30
        while not target.calls("resume") and time.monotonic() < deadline:
            time.sleep(0.02)
        gdb.send_signal(signal.SIGINT)            # what Ctrl-C at gdb's terminal does: gdb sends 0x03
        output, _ = gdb.communicate(timeout=60)
    assert target.calls("interrupt") == [()]
    assert "received signal SIGINT, Interrupt." in output
    assert "rip            0x1000" in output


@needs_gdb
def test_gdb_sees_two_threads_and_switches_to_the_second():
    target = FakeTarget()
    output = run_gdb(target, "info threads", "thread 2", "info registers r15")
    assert "Thread 1 (vCPU 0)" in output and "Thread 2 (vCPU 1)" in output
    assert "Switching to thread 2" in output
    assert "r15            0x1" in output


@needs_gdb
def test_gdb_detach_and_kill():
    target = FakeTarget()
    run_gdb(target, "detach")
    assert target.calls("detach") == [()] and target.calls("kill") == []
    target = FakeTarget()
    run_gdb(target, "kill")
    assert target.calls("kill") == [()]


# What gdb shows for INSTRUCTIONS proves which architecture it took.
DISASSEMBLY = {LONG: "mov    %rax,%rbx", PROTECTED: "dec    %eax", REAL: "mov    $0x5678,%ax"}


def disassembled_as(output):
    return [mode for mode, text in DISASSEMBLY.items() if text in output]


@needs_gdb
@pytest.mark.parametrize("architecture", [LONG, PROTECTED, REAL])
def test_gdb_disassembles_in_the_mode_of_the_description(architecture):
    output = run_gdb(FakeTarget(architecture), "x/3i $pc", "show architecture", "show osabi")
    assert disassembled_as(output) == [architecture], output
    assert f'(currently "{architecture}")' in output
    assert 'OS ABI is "auto" (currently "none")' in output and "warning: A handler for the OS ABI" not in output


@needs_gdb
@pytest.mark.parametrize("bits, architecture", [(64, REAL), (32, REAL), (64, PROTECTED), (32, LONG)])
def test_with_a_symbol_file_of_another_class_set_architecture_names_the_mode(tmp_path, bits, architecture):
    symbol_file = tmp_path / "kernel.elf"
    symbol_file.write_bytes(bytes(elf([Seg(CODE, INSTRUCTIONS)], entry=CODE, bits=bits)))
    output = run_gdb(FakeTarget(architecture), "x/3i $pc", "info registers pc", symbol_file=symbol_file,
                     before=[f"set architecture {architecture}"])
    assert disassembled_as(output) == [architecture], output
    assert "0x1000" in output and "rejected" not in output


@needs_gdb
def test_after_a_mode_switch_gdb_reconnects_to_the_stopped_guest():
    target = FakeTarget(LONG)
    target.mode_after_step = PROTECTED
    with ServerThread(target) as served:
        remote = f"target remote 127.0.0.1:{served.port}"
        commands = [remote, "x/2i $pc", "stepi", "disconnect", remote, "x/2i 0x1000", "info registers eip",
                    "show architecture"]
        arguments = [GDB, "-nx", "-batch"] + [part for command in commands for part in ("-ex", command)]
        output = subprocess.run(arguments, capture_output=True, text=True, timeout=60)
    text = output.stdout + output.stderr
    assert not served.errors
    assert "eip            0x1001" in text
    assert '(currently "i386")' in text
    assert disassembled_as(text) == [LONG, PROTECTED]       # before and after the switch
    assert target.calls("detach") == [()]        # only at the end, when gdb quits
