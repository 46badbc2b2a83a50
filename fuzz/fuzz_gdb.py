"""Coverage-guided fuzzing of the gdb stub's protocol side with atheris (libFuzzer).

Every input is what a hostile gdb sends, in pieces (the first byte picks the piece size, the second
the guest's mode), to a GdbServer over an in-memory target with two vCPUs, through a socketpair. When
the first byte's top bit is set, the rest is read as packet bodies, one a line, framed with their right
checksums: so the fuzzer reaches the commands without having to find checksums. The
only acceptable outcomes: nothing raises out of the server, it never holds more than one packet's
limit of the input, everything it sends is well framed (acknowledgements, packets with the right
checksum), the target is never asked for more memory than MAX_MEMORY_READ or to resume nothing or a
vCPU that does not exist, and afterwards, unless the input ended the session, a `qC` is answered.
tests/test_gdb_server.py runs the same check on hypothesis's inputs.

  .venv/bin/python fuzz/fuzz_gdb.py -max_total_time=60 -max_len=4096 [CORPUS]
"""
import select
import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kvmrun.debug.packets import checksum, frame  # noqa: E402
from kvmrun.debug.server import MAX_MEMORY_READ, PACKET_SIZE, GdbServer  # noqa: E402
from kvmrun.debug.target import StopEvent, Target, TargetError  # noqa: E402

MODES = ("i386:x86-64", "i386", "i8086")
REGISTERS = ("rax rbx rcx rdx rsi rdi rbp rsp r8 r9 r10 r11 r12 r13 r14 r15 rip eflags cs ss ds es fs gs "
             "fs_base gs_base cr0 cr2 cr3 cr4 cr8 efer").split()


class MemoryTarget(Target):
    """64 KiB of memory and two vCPUs; a step or a continue stops at once (a continue at every other
    call, to leave the guest running too), checking what the server asks for."""

    def __init__(self, mode: str):
        self.cpu_count = 2
        self.mode = mode
        self.memory = bytearray(0x10000)
        self.registers = [dict.fromkeys(REGISTERS, 0) for _ in range(self.cpu_count)]
        self.pending = []
        self.resumes = 0

    def architecture(self, cpu):
        assert 0 <= cpu < self.cpu_count, cpu
        return self.mode

    def read_registers(self, cpu):
        assert 0 <= cpu < self.cpu_count, cpu
        return dict(self.registers[cpu])

    def write_registers(self, cpu, values):
        assert 0 <= cpu < self.cpu_count, cpu
        for name, value in values.items():
            assert name in REGISTERS and 0 <= value < 1 << 64, (name, value)
        self.registers[cpu].update(values)

    def read_memory(self, cpu, address, length):
        assert 0 < length <= MAX_MEMORY_READ, length
        if address + length > len(self.memory):
            raise TargetError("outside RAM")
        return bytes(self.memory[address:address + length])

    def write_memory(self, cpu, address, data):
        assert 0 < len(data) <= PACKET_SIZE, len(data)
        if address + len(data) > len(self.memory):
            raise TargetError("outside RAM")
        self.memory[address:address + len(data)] = data

    def set_breakpoint(self, kind, address, length):
        assert kind in ("software", "hardware", "write", "read", "access"), kind
        return address % 3 != 0        # sometimes out of resources

    def remove_breakpoint(self, kind, address, length):
        return address % 2 == 0

    def resume(self, actions):
        assert actions and all(0 <= cpu < self.cpu_count and action in ("continue", "step")
                               for cpu, action in actions.items()), actions
        self.resumes += 1
        if "step" in actions.values() or self.resumes % 2:
            self.pending.append(StopEvent(min(actions), "step"))

    def interrupt(self):
        self.pending.append(StopEvent(0, "interrupt"))

    def detach(self):
        pass

    def kill(self):
        pass


class PairListener:
    """A listener whose one connection is a socketpair's end."""

    def __init__(self, connection: socket.socket):
        self._connection = connection
        self._spare, _ = socket.socketpair()          # something to hand out fileno() for

    def accept(self):
        connection, self._connection = self._connection, None
        if connection is None:
            raise BlockingIOError
        return connection, None

    def settimeout(self, timeout):
        pass

    def setblocking(self, flag):
        pass

    def fileno(self):
        return self._spare.fileno()

    def close(self):
        self._spare.close()


def check_output(data: bytes) -> None:
    """What the server sent: acknowledgements and packets with the right checksums, nothing else."""
    position = 0
    while position < len(data):
        byte = data[position:position + 1]
        if byte in (b"+", b"-"):
            position += 1
            continue
        assert byte == b"$", f"stray {data[position:position + 20]!r}"
        end = data.index(b"#", position)
        payload = data[position + 1:end]
        assert int(data[end + 1:end + 3], 16) == checksum(payload), data[position:end + 3]
        position = end + 3


class Session:
    def __init__(self, mode: str):
        self.gdb, near = socket.socketpair()
        for end in (self.gdb, near):
            end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
            end.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.gdb.setblocking(False)
        self.listener = PairListener(near)
        self.target = MemoryTarget(mode)
        self.server = GdbServer(self.target, self.listener)
        self.server.send_timeout = 1.0    # the harness reads everything: a full socket is a bug here
        assert self.server.wait_for_debugger(timeout=0)
        self.output = bytearray()

    def run(self) -> None:
        """Let the server read everything sent, hear of stops, and collect what it answered."""
        while True:
            fd = self.server.fileno()
            readable = fd >= 0 and self.server.connected and select.select([fd], [], [], 0)[0]
            if readable:
                self.server.on_readable()
                assert self.server._reader.buffered <= PACKET_SIZE + 2
            while self.target.pending:
                self.server.stopped(self.target.pending.pop(0))
            self.drain()
            if not readable:
                return

    def drain(self) -> None:
        while True:
            try:
                data = self.gdb.recv(1 << 20)
            except (BlockingIOError, ConnectionResetError):
                return
            if not data:
                return
            self.output += data

    def send(self, data: bytes) -> bool:
        try:
            self.gdb.sendall(data)
        except OSError:                  # the server closed its end (k, vKill)
            return False
        return True

    def close(self) -> None:
        self.server.close()
        self.gdb.close()
        self.listener.close()


def check_stream(data: bytes) -> None:
    piece = 1 + (data[0] if data else 0) % 128
    mode = MODES[(data[1] if len(data) > 1 else 0) % len(MODES)]
    stream = data[2:]
    if data and data[0] & 0x80:
        stream = b"".join(frame(body) for body in stream.split(b"\n"))
    session = Session(mode)
    try:
        for start in range(0, len(stream), piece):
            if not session.server.connected or not session.send(stream[start:start + piece]):
                break
            session.run()
        if session.server.connected and not session.server.finished:
            sent = len(session.output)
            session.send(b"#00" + frame(b"qC"))
            for _ in range(64):               # each Ctrl-C stops a guest the input left running
                session.run()
                if b"$QC" in session.output[sent:] or not session.server.connected:
                    break
                session.send(b"\x03")
            assert b"$QC" in session.output[sent:] or not session.server.connected
        check_output(bytes(session.output))
    finally:
        session.close()


def main() -> None:
    import atheris
    atheris.instrument_all()
    atheris.Setup(sys.argv, lambda data: check_stream(bytes(data)))
    atheris.Fuzz()


if __name__ == "__main__":
    main()
