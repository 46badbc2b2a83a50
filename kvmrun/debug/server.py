"""The gdb stub's protocol side: gdb's remote serial protocol over an abstract Target (target.py).

kvmrun creates the listening socket and hands it over; wait_for_debugger() takes the first gdb before
any vCPU runs. From then on the host loop watches fileno() and calls on_readable(); the target reports
stops through stopped(), the run's end through exited() or killed(). Everything happens on that one
thread, and nothing gdb sends can raise out of on_readable() or make it wait: reads take what is there,
sends give up after SEND_TIMEOUT (the connection is then treated as gone).

One gdb at a time, all-stop. A gdb that goes away without detaching (`disconnect`, or it died) leaves
the target stopped and the next gdb connects to it (how a user switches gdb's architecture when the
guest changes mode). After `detach` the guest runs on; a gdb that connects again stops it.
"""
from __future__ import annotations

import select
import socket
import time

from .packets import BAD_CHECKSUM, INTERRUPT, NACK, OVERSIZE, PACKET, PacketReader, escape, frame, unescape
from .registers import encode_register, layout_for, merge_register
from .target import StopEvent, TargetError

TYPE_CHECKING = False     # typing is not imported at run time: ~11 ms of every start (named_tuple.py)
if TYPE_CHECKING:
    from typing import Dict, List, Optional, Set, Tuple

    from .packets import Event
    from .registers import Layout, Register
    from .target import Target

PACKET_SIZE = 0x4000              # the longest payload gdb may send (announced); longer ones are dropped
MAX_MEMORY_READ = (PACKET_SIZE - 4) // 2     # an m reply is two hex digits a byte; gdb reads on after a short one
MAX_HELD = 32                     # packets kept while the target is being stopped for a new gdb
SEND_TIMEOUT = 5.0                # seconds a reply may wait for gdb to read before the connection counts as gone
READ_CHUNK = 1 << 16
REFUSED_AT_ONCE = 16             # a second gdb's connections closed per wakeup: the loop is never held long

SIGINT = 2
SIGTRAP = 5
SIGSEGV = 11                   # a fault the target held for gdb to look at
EIO = 5
EBUSY = 16
EINVAL = 22
ENOSPC = 28

# Z/z types -> Target.set_breakpoint kinds.
BREAKPOINT_KINDS = {b"0": "software", b"1": "hardware", b"2": "write", b"3": "read", b"4": "access"}
WATCH_REPLY = {"write": "watch", "read": "rwatch", "access": "awatch"}
_HEX = frozenset(b"0123456789abcdefABCDEF")

# Packets that need a stopped target: held while a reconnecting gdb's interrupt is on its way.
_NEEDS_STOPPED = frozenset(b"?gGpPmMXcsZz")


class ProtocolError(Exception):
    """A malformed request: gdb gets E<errno>."""

    def __init__(self, message: str, errno: int = EINVAL):
        super().__init__(message)
        self.errno = errno


def hex_number(text: bytes) -> int:
    """An address, length or register number: 1 to 16 hex digits (never a huge int from gdb's bytes)."""
    if not 0 < len(text) <= 16 or not all(digit in _HEX for digit in text):
        raise ProtocolError(f"not a hex number: {text[:20]!r}")
    return int(text, 16)


def hex_bytes(text: bytes) -> bytes:
    """Pairs of hex digits and nothing else (bytes.fromhex would skip spaces)."""
    if len(text) % 2 or not all(digit in _HEX for digit in text):
        raise ProtocolError("malformed hex data")
    return bytes.fromhex(text.decode("ascii"))


def error_reply(errno: int) -> bytes:
    """`Enn`: gdb takes exactly two hex digits."""
    return b"E%02x" % (errno & 0xFF)


class GdbServer:
    def __init__(self, target: Target, listener: socket.socket):
        self.target = target
        self.listener = listener
        self.send_timeout = SEND_TIMEOUT
        self.detached = False          # gdb detached: the guest runs on without breakpoints
        self.finished = False          # the run ended (or gdb killed it): no more gdb sessions
        self._conn: Optional[socket.socket] = None
        self._running = False          # the target runs (resumed by gdb, or after a detach)
        self._waiting_for_stop = False  # gdb waits for a stop reply
        self._last_stop: Optional[StopEvent] = None
        self._last_stop_hardware = False   # the last breakpoint stop was at a hardware breakpoint
        self._current_cpu = 0          # the vCPU the last stop named
        self._breakpoints: Set[Tuple[str, int, int]] = set()
        self._new_session()

    def _new_session(self) -> None:
        """What one gdb connection negotiates; a new connection starts from scratch."""
        self._reader = PacketReader(PACKET_SIZE)
        self._no_ack = False
        self._gdb_features: Set[bytes] = set()
        self._layout: Optional[Layout] = None
        self._register_cpu: Optional[int] = None    # Hg; None: the current vCPU
        self._resume_cpu: Optional[int] = None      # Hc; None: every vCPU / the current one
        self._last_reply = b""
        self._held: List[bytes] = []

    # --- for kvmrun's host loop ---

    @property
    def connected(self) -> bool:
        return self._conn is not None

    def fileno(self) -> int:
        """The descriptor to watch: the connection, or the listener while there is none; -1 once the
        run has ended."""
        if self._conn is not None:
            return self._conn.fileno()
        return -1 if self.finished else self.listener.fileno()

    def close(self) -> None:
        """Drop gdb's connection, if any (the listener is kvmrun's to close)."""
        self._close()

    def wait_for_debugger(self, timeout: Optional[float] = None) -> bool:
        """Block until gdb connects (False after `timeout` seconds); kvmrun calls it before any vCPU
        runs. From then on the listener is non-blocking and a later gdb is accepted by on_readable()."""
        self.listener.settimeout(timeout)
        try:
            conn, _ = self.listener.accept()
        except socket.timeout:
            return False
        finally:
            self.listener.setblocking(False)      # from now on accepted from on_readable
        self._connect(conn)
        return True

    def on_readable(self) -> None:
        """Read what gdb sent, handle every complete packet, answer. Never raises, never blocks on gdb
        (beyond SEND_TIMEOUT for one reply)."""
        if self._conn is None:
            self._accept()
            return
        try:
            data = self._conn.recv(READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._connection_lost()
            return
        for event in self._reader.feed(data):
            if self._conn is None:
                break
            self._handle(event)

    # --- reports from the target ---

    def stopped(self, event: StopEvent) -> None:
        """The target stopped (every vCPU is stopped now)."""
        self._running = False
        self._current_cpu = event.cpu if 0 <= event.cpu < self.target.cpu_count else 0
        self._register_cpu = None          # gdb takes the thread a stop reply names as the current one
        self._last_stop = event
        self._last_stop_hardware = event.reason == "breakpoint" and self._at_hardware_breakpoint(event.cpu)
        if self._waiting_for_stop and self._conn is not None:
            self._waiting_for_stop = False
            self._send_packet(self._stop_reply())
        self._replay_held()

    def exited(self, status: int) -> None:
        """The guest ended the run with `status`: gdb is told (W) and the session ends."""
        self._end(b"W%02x" % (status & 0xFF))

    def killed(self, signal: int) -> None:
        """kvmrun ended the run (a signal, a timeout, a fault): gdb is told (X) and the session ends."""
        self._end(b"X%02x" % (signal & 0xFF))

    def _end(self, reply: bytes) -> None:
        self.finished = True
        self._running = self._waiting_for_stop = False
        if self._conn is not None:
            self._send_packet(reply)
            self._close()

    def refuse_others(self) -> None:
        """Another gdb while one is connected: its connection is closed at once (gdb says the target
        disconnected), and the one connected goes on undisturbed. Not while the one connected
        has input not yet read: it may be its goodbye (end of file after its last ack), and then the
        newcomer is taken instead, once the host loop has read it (the listener stays readable)."""
        if self._input_waiting():
            return
        for _ in range(REFUSED_AT_ONCE):
            try:
                conn, _ = self.listener.accept()
            except OSError:                  # BlockingIOError: nobody else is waiting
                return
            conn.close()

    # --- the connection ---

    def _input_waiting(self) -> bool:
        """gdb's connection has something to read: data, end of file or an error."""
        conn = self._conn
        if conn is None:
            return True
        try:
            conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            pass
        return True

    def _accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:                      # BlockingIOError included: nobody was there after all
            return
        if self.finished:
            conn.close()
            return
        self._connect(conn)

    def _connect(self, conn: socket.socket) -> None:
        conn.setblocking(False)
        if conn.family in (socket.AF_INET, socket.AF_INET6):
            try:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)   # small packets, each at once
            except OSError:
                pass
        self._conn = conn
        self._new_session()
        self.detached = False
        if self._running:                    # a gdb after a detach: stop the guest for it
            self._interrupt()

    def _connection_lost(self) -> None:
        """gdb went away. Unless it detached, the target stays stopped for the next gdb, without the
        breakpoints this one left in (a gdb that died while the guest ran leaves them inserted)."""
        self._close()
        if self.detached or self.finished:
            return
        for kind, address, length in list(self._breakpoints):
            try:
                self.target.remove_breakpoint(kind, address, length)
            except Exception:
                pass
        self._breakpoints.clear()
        self._waiting_for_stop = False
        if self._running:
            self._interrupt()

    def _close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except OSError:
                pass
            self._conn = None
        self._held.clear()

    def _send(self, data: bytes) -> None:
        """All of `data`, or the connection is gone: gdb has SEND_TIMEOUT seconds to take it."""
        conn = self._conn
        if conn is None:
            return
        view = memoryview(data)
        deadline = time.monotonic() + self.send_timeout
        poller = None
        while view:
            try:
                view = view[conn.send(view):]
                continue
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                self._connection_lost()
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._connection_lost()
                return
            if poller is None:
                poller = select.poll()
                poller.register(conn, select.POLLOUT)
            poller.poll(remaining * 1000)

    def _send_packet(self, payload: bytes) -> None:
        self._last_reply = frame(payload)
        self._send(self._last_reply)

    # --- events and packets ---

    def _handle(self, event: Event) -> None:
        kind = event.kind
        if kind == PACKET:
            if not self._no_ack:
                self._send(b"+")
                if self._conn is None:       # gone: nobody to act for (a c would run the guest unwatched)
                    return
            if self._must_hold(event.payload):
                self._hold(event.payload)
            else:
                self._answer(event.payload)
        elif kind == INTERRUPT:
            if self._running:
                self._interrupt()
        elif kind == BAD_CHECKSUM:
            if not self._no_ack:
                self._send(b"-")
        elif kind == OVERSIZE:
            if not self._no_ack:
                self._send(b"+")             # it arrived whole; it is refused, not asked for again
            self._send_packet(error_reply(EINVAL))
        elif kind == NACK:
            if not self._no_ack and self._last_reply:
                self._send(self._last_reply)
        # ACK: nothing to do; replies are not kept waiting for it

    def _must_hold(self, payload: bytes) -> bool:
        """A packet that needs a stopped target arriving while it runs: a gdb that connected after a
        detach, whose interrupt is on its way (or a gdb sending while it should wait)."""
        if self._held:
            return True                      # keep the order
        if not self._running or not payload:
            return False
        return (payload[0] in _NEEDS_STOPPED or payload.startswith(b"qXfer:")
                or payload.startswith(b"vCont;"))

    def _hold(self, payload: bytes) -> None:
        if len(self._held) >= MAX_HELD:
            self._send_packet(error_reply(EBUSY))
        else:
            self._held.append(payload)

    def _replay_held(self) -> None:
        while self._held and not self._running and self._conn is not None:
            self._answer(self._held.pop(0))

    def _answer(self, payload: bytes) -> None:
        reply = self._reply_to(payload)
        if reply is not None and self._conn is not None:
            self._send_packet(reply)

    def _reply_to(self, payload: bytes) -> Optional[bytes]:
        """The reply to one packet (None: no reply now)."""
        try:
            return self._command(payload)
        except ProtocolError as error:
            return error_reply(error.errno)
        except TargetError as error:
            return error_reply(error.errno)
        except NotImplementedError:
            return b""
        except Exception:                   # a target's bug must not end the debugging session
            return error_reply(EIO)

    def _command(self, payload: bytes) -> Optional[bytes]:
        if not payload:
            return b""
        first, rest = payload[:1], payload[1:]
        handler = self._SINGLE_LETTER.get(first)
        if handler is not None:
            return getattr(self, handler)(rest)
        if first == b"q":
            return self._query(payload)
        if first == b"Q":
            return self._set(payload)
        if first == b"v":
            return self._v_packet(payload)
        return b""                           # unknown: gdb takes an empty reply as "not supported"

    # --- stop state ---

    def _stop_reply(self) -> bytes:
        event = self._last_stop or StopEvent(self._current_cpu, "step")   # before the first instruction
        signal = SIGINT if event.reason == "interrupt" else SIGSEGV if event.reason == "fault" else SIGTRAP
        reply = b"T%02xthread:%x;" % (signal, self._current_cpu + 1)
        if event.reason == "watchpoint":
            reply += b"%s:%x;" % (WATCH_REPLY.get(event.watch_kind, "awatch").encode(), event.watch_address)
        elif event.reason == "breakpoint":
            if self._last_stop_hardware and b"hwbreak" in self._gdb_features:
                reply += b"hwbreak:;"
            elif not self._last_stop_hardware and b"swbreak" in self._gdb_features:
                reply += b"swbreak:;"
        return reply

    def _at_hardware_breakpoint(self, cpu: int) -> bool:
        hardware = {address for kind, address, _ in self._breakpoints if kind == "hardware"}
        if not hardware:
            return False
        try:
            return self.target.read_registers(cpu).get("rip") in hardware
        except Exception:
            return False

    def _interrupt(self) -> None:
        try:
            self.target.interrupt()
        except Exception:
            pass

    def _stop_query(self, rest: bytes) -> Optional[bytes]:
        if self._running:                    # answered when the stop arrives
            self._waiting_for_stop = True
            return None
        return self._stop_reply()

    # --- threads ---

    def _thread_cpu(self, text: bytes) -> Optional[int]:
        """A gdb thread id -> a vCPU; None for 0 and -1 (any / all)."""
        if text in (b"0", b"-1"):
            return None
        cpu = hex_number(text) - 1
        if not 0 <= cpu < self.target.cpu_count:
            raise ProtocolError(f"no thread {text!r}")
        return cpu

    @property
    def _cpu(self) -> int:
        """The vCPU g, G, p, P, m, M and X act on (Hg)."""
        return self._current_cpu if self._register_cpu is None else self._register_cpu

    def _set_thread(self, rest: bytes) -> bytes:
        operation, thread = rest[:1], rest[1:]
        cpu = self._thread_cpu(thread)
        if operation == b"g":
            self._register_cpu = cpu
        elif operation == b"c":
            self._resume_cpu = cpu
        else:
            raise ProtocolError(f"H{operation!r}")
        return b"OK"

    def _thread_alive(self, rest: bytes) -> bytes:
        if self._thread_cpu(rest) is None:
            raise ProtocolError("T needs a thread")
        return b"OK"

    # --- registers ---

    def _current_layout(self) -> Layout:
        if self._layout is None:
            self._layout = layout_for(self.target.architecture(self._cpu))
        return self._layout

    def _read_all_registers(self, rest: bytes) -> bytes:
        return self._current_layout().encode(self.target.read_registers(self._cpu)).hex().encode()

    def _write_all_registers(self, rest: bytes) -> bytes:
        layout = self._current_layout()
        data = hex_bytes(rest)
        if len(data) != layout.size:
            raise ProtocolError(f"G carries {len(data)} bytes, the layout {layout.size}")
        changes = layout.decode(data, self.target.read_registers(self._cpu))
        if changes:
            self.target.write_registers(self._cpu, changes)
        return b"OK"

    def _register(self, number_text: bytes) -> Register:
        registers = self._current_layout().registers
        number = hex_number(number_text)
        if number >= len(registers):
            raise ProtocolError(f"no register {number}")
        return registers[number]

    def _read_register(self, rest: bytes) -> bytes:
        register = self._register(rest)
        values = self.target.read_registers(self._cpu) if register.source else {}
        return encode_register(register, values).hex().encode()

    def _write_register(self, rest: bytes) -> bytes:
        number_text, equals, value_text = rest.partition(b"=")
        register = self._register(number_text)
        data = hex_bytes(value_text)
        if not equals or len(data) != register.size:
            raise ProtocolError(f"P for {register.name} needs {register.size} bytes")
        if register.source:
            current = self.target.read_registers(self._cpu)
            new = merge_register(register, int.from_bytes(data, "little"), current)
            if new is not None:
                self.target.write_registers(self._cpu, {register.source: new})
        return b"OK"

    # --- memory ---

    @staticmethod
    def _address_length(text: bytes) -> Tuple[int, int]:
        address, comma, length = text.partition(b",")
        if not comma:
            raise ProtocolError("expected ADDR,LENGTH")
        return hex_number(address), hex_number(length)

    def _read_memory(self, rest: bytes) -> bytes:
        address, length = self._address_length(rest)
        length = min(length, MAX_MEMORY_READ)      # gdb reads on from where a short reply ended
        if length == 0:
            return b""
        return self.target.read_memory(self._cpu, address, length).hex().encode()

    def _write_memory_hex(self, rest: bytes) -> bytes:
        return self._write_memory(rest, hex_bytes, "M")

    def _write_memory_binary(self, rest: bytes) -> bytes:
        return self._write_memory(rest, unescape, "X")

    def _write_memory(self, rest: bytes, decode, name: str) -> bytes:
        """M (hex) and X (binary): ADDR,LENGTH:DATA."""
        header, colon, encoded = rest.partition(b":")
        address, length = self._address_length(header)
        data = decode(encoded)
        if not colon or len(data) != length:
            raise ProtocolError(f"{name}'s length does not match its data")
        if data:                             # X with no data is gdb asking whether X works
            self.target.write_memory(self._cpu, address, data)
        return b"OK"

    def _resume(self, actions: Dict[int, str]) -> None:
        if not actions:
            raise ProtocolError("nothing to resume")
        self._running = self._waiting_for_stop = True     # a target may report the stop at once
        try:
            self.target.resume(actions)
        except BaseException:
            self._running = self._waiting_for_stop = False
            raise

    def _resume_at(self, cpu: int, address_text: bytes) -> None:
        if address_text:
            self.target.write_registers(cpu, {"rip": hex_number(address_text)})

    def _continue(self, rest: bytes) -> None:
        cpu = self._current_cpu if self._resume_cpu is None else self._resume_cpu
        self._resume_at(cpu, rest)
        self._resume({index: "continue" for index in range(self.target.cpu_count)})

    def _step(self, rest: bytes) -> None:
        cpu = self._current_cpu if self._resume_cpu is None else self._resume_cpu
        self._resume_at(cpu, rest)
        self._resume({cpu: "step"})          # the others stay stopped

    def _v_continue(self, body: bytes) -> None:
        """vCont;ACTION[:THREAD]...: the first action naming a thread (or naming none) wins for it."""
        actions = body.split(b";")[1:]
        if not actions:
            raise ProtocolError("vCont without actions")
        chosen: Dict[int, str] = {}
        for action in actions:
            verb, colon, thread = action.partition(b":")
            if verb[:1] in (b"C", b"S"):
                hex_number(verb[1:])         # the signal: checked, then ignored (nothing to deliver it as)
            elif verb not in (b"c", b"s", b"t"):
                raise ProtocolError(f"vCont action {verb[:20]!r}")
            cpu = self._thread_cpu(thread) if colon else None
            for index in range(self.target.cpu_count) if cpu is None else (cpu,):
                chosen.setdefault(index, verb[:1].lower().decode())
        self._resume({cpu: "step" if verb == "s" else "continue"
                      for cpu, verb in chosen.items() if verb != "t"})

    # --- breakpoints ---

    def _insert_breakpoint(self, rest: bytes) -> bytes:
        return self._breakpoint(True, rest)

    def _remove_breakpoint(self, rest: bytes) -> bytes:
        return self._breakpoint(False, rest)

    def _breakpoint(self, insert: bool, rest: bytes) -> bytes:
        fields = rest.split(b";")[0].split(b",")
        if len(fields) != 3:
            raise ProtocolError("expected TYPE,ADDR,KIND")
        kind = BREAKPOINT_KINDS.get(fields[0])
        address, length = hex_number(fields[1]), hex_number(fields[2])
        if kind is None:
            return b""                       # a type kvmrun does not know: unsupported
        key = (kind, address, length)
        if insert:
            if not self.target.set_breakpoint(kind, address, length):
                return error_reply(ENOSPC)
            self._breakpoints.add(key)
        else:
            if not self.target.remove_breakpoint(kind, address, length):
                return error_reply(EINVAL)
            self._breakpoints.discard(key)
        return b"OK"

    # --- ending ---

    def _detach(self, rest: bytes) -> bytes:
        self.target.detach()
        self._breakpoints.clear()
        self.detached = True
        self._running = True                 # the guest runs on
        self._waiting_for_stop = False
        return b"OK"

    def _kill(self, rest: bytes = b"") -> None:
        self.finished = True
        self._running = self._waiting_for_stop = False
        self._breakpoints.clear()
        try:
            self.target.kill()
        finally:
            self._close()

    # --- q, Q and v packets ---

    def _query(self, payload: bytes) -> Optional[bytes]:
        name, _, arguments = payload.partition(b":")
        if name == b"qSupported":
            self._gdb_features = {feature[:-1] for feature in arguments.split(b";") if feature.endswith(b"+")}
            return (b"PacketSize=%x;qXfer:features:read+;vContSupported+;swbreak+;hwbreak+;QStartNoAckMode+"
                    % PACKET_SIZE)
        if name == b"qXfer":
            return self._read_features(arguments)
        if payload == b"qfThreadInfo":
            return b"m" + b",".join(b"%x" % (cpu + 1) for cpu in range(self.target.cpu_count))
        if payload == b"qsThreadInfo":
            return b"l"
        if payload == b"qC":
            return b"QC%x" % (self._current_cpu + 1)
        if name == b"qAttached":
            return b"1"                      # gdb detaches on quit instead of killing the guest
        if name == b"qSymbol":
            return b"OK"
        if payload.startswith(b"qThreadExtraInfo,"):
            cpu = self._thread_cpu(payload[len(b"qThreadExtraInfo,"):])
            return (b"vCPU %d" % (self._current_cpu if cpu is None else cpu)).hex().encode()
        return b""                           # qOffsets, qTStatus, ...: not supported

    def _read_features(self, arguments: bytes) -> bytes:
        """qXfer:features:read:target.xml:OFFSET,LENGTH -> m<data> (more follows) or l<data> (the end)."""
        parts = arguments.split(b":")
        if len(parts) != 4 or parts[:2] != [b"features", b"read"]:
            return b""
        if parts[2] != b"target.xml":
            raise ProtocolError(f"no annex {parts[2][:40]!r}")
        offset, length = self._address_length(parts[3])
        if offset == 0 or self._layout is None:       # gdb reads the description when it connects
            self._layout = layout_for(self.target.architecture(self._cpu))
        document = self._layout.xml()
        chunk = document[offset:offset + min(length, (PACKET_SIZE - 1) // 2)]   # room to escape every byte
        return (b"m" if offset + len(chunk) < len(document) else b"l") + escape(chunk)

    def _set(self, payload: bytes) -> bytes:
        if payload == b"QStartNoAckMode":
            self._no_ack = True              # the OK itself is still acknowledged by gdb, and ignored
            return b"OK"
        return b""

    def _v_packet(self, payload: bytes) -> Optional[bytes]:
        if payload == b"vCont?":
            return b"vCont;c;C;s;S;t"
        if payload.startswith(b"vCont;"):
            self._v_continue(payload[len(b"vCont"):])
            return None
        if payload == b"vKill" or payload.startswith(b"vKill;"):
            self._send_packet(b"OK")          # before the connection closes
            self._kill()
            return None
        return b""                           # vMustReplyEmpty, vFile, vRun, ...: not supported

    # The one-letter commands and the methods that answer them (with what follows the letter).
    _SINGLE_LETTER = {
        b"?": "_stop_query",
        b"g": "_read_all_registers",
        b"G": "_write_all_registers",
        b"p": "_read_register",
        b"P": "_write_register",
        b"m": "_read_memory",
        b"M": "_write_memory_hex",
        b"X": "_write_memory_binary",
        b"c": "_continue",
        b"s": "_step",
        b"H": "_set_thread",
        b"T": "_thread_alive",
        b"Z": "_insert_breakpoint",
        b"z": "_remove_breakpoint",
        b"D": "_detach",
        b"k": "_kill",
    }
