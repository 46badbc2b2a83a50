"""Running the guests of a manifest: in this process for one job, in worker processes for more.

Workers are forked (they start in milliseconds and inherit the imports) and fed small batches of
guests over a pipe; each sends back an outcome as each guest ends. The parent selects on their pipes,
so a worker that dies or hangs costs the guest it was running, never the suite: that guest becomes an
error and the rest of its batch goes to a new worker. Workers ignore SIGINT and die with the parent
(PR_SET_PDEATHSIG); on Ctrl-C or SIGTERM the parent kills them (SIGKILL: a worker holds only a VM,
which the kernel tears down) and reaps them before it exits."""
import contextlib
import math
import os
import select
import signal
import struct
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Deque, Dict, Iterator, List, Optional, Tuple

from ..errors import KvmrunError
from .manifest import DEFAULT_TIMEOUT, GuestSpec

if TYPE_CHECKING:
    from ..api import Result
    from .tap import TestPoint

WALL_CLOCK_GRACE = 5.0    # seconds past a guest's own timeout before its worker counts as stuck
REAP_SECONDS = 2.0        # at most this long waiting for killed workers to be gone
_CANCEL_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_HEADER = struct.Struct("=Q")    # the length of the pickle that follows
_PR_SET_PDEATHSIG = 1

# How a guest without a result ended: kvmrun refused to boot it (or failed itself) in the worker, or
# the worker went with it, after running it for any time at all.
NOT_BOOTED = "not booted"
INTERNAL_ERROR = "internal error"
WORKER_DIED = "worker died"
WORKER_KILLED = "worker killed"


@dataclass(frozen=True)
class GuestOutcome:
    spec: GuestSpec
    passed: bool
    elapsed: float
    result: Optional["Result"] = None    # kvmrun.Result; None when kvmrun could not boot the guest
    problems: Tuple[str, ...] = ()        # what differed from the expectation
    error: Optional[str] = None           # why it has no result
    without_result: str = NOT_BOOTED      # how it ended where it has none: NOT_BOOTED or WORKER_*
    points: Tuple["TestPoint", ...] = ()  # the test points in its serial output (spec.results: TAP, KTAP)

    @property
    def ended(self) -> str:
        """How it ended, as the table and JUnit's `ended` property say: the result's reason, or why
        there is none."""
        return self.result.reason.value if self.result is not None else self.without_result


def default_jobs() -> int:
    return len(os.sched_getaffinity(0)) or 1


def run_guest(spec: GuestSpec) -> GuestOutcome:
    from ..api import run_in_suite
    start = time.perf_counter()
    try:
        result = run_in_suite(spec.image, image_written=spec.image_written, **spec.options)
    except KvmrunError as err:
        return GuestOutcome(spec, False, time.perf_counter() - start, error=str(err))
    problems = tuple(result.mismatches(spec.expect_status, spec.expect_serial, spec.expect_reason,
                                       spec.expect_screen))
    points: Tuple["TestPoint", ...] = ()
    if spec.results is not None:      # its own tests' results: each failed point and each problem fails it
        from .tap import guest_problems, parse_results
        found = parse_results(result.serial, spec.results)
        points = found.points
        problems += guest_problems(found, spec.results)
    return GuestOutcome(spec, not problems, result.elapsed, result=result, problems=problems, points=points)


def _run_guarded(spec: GuestSpec) -> GuestOutcome:
    """run_guest, with a bug in kvmrun as that guest's error rather than the end of the suite."""
    start = time.perf_counter()
    try:
        return run_guest(spec)
    except Exception as err:
        return GuestOutcome(spec, False, time.perf_counter() - start,
                            error=f"kvmrun internal error: {type(err).__name__}: {err}", without_result=INTERNAL_ERROR)


# --- cancelling -------------------------------------------------------------------------------------

class Cancelled(BaseException):
    """SIGINT or SIGTERM asked the run to stop. BaseException, like KeyboardInterrupt: nothing that
    catches Exception may swallow it."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


class _Cancel:
    """The first SIGINT/SIGTERM raises Cancelled in the main thread, or, inside held(), as it ends;
    later ones are ignored, so a second Ctrl-C cannot break off the cleanup the first started."""

    def __init__(self) -> None:
        self.signum: Optional[int] = None
        self._holding = 0
        self._pending = False

    def handler(self, signum, frame) -> None:
        if self.signum is not None:
            return
        self.signum = signum
        # Ignored from now on, by the kernel: Python puts back SIG_DFL for its own handlers as it
        # exits, and a second Ctrl-C landing then would kill the process instead of the status 130.
        for other in _CANCEL_SIGNALS:
            signal.signal(other, signal.SIG_IGN)
        if self._holding:
            self._pending = True
        else:
            raise Cancelled(signum)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Where Cancelled must not land halfway: starting a worker, stopping them all."""
        self._holding += 1
        try:
            yield
        finally:
            self._holding -= 1
        if not self._holding and self._pending:
            self._pending = False
            raise Cancelled(self.signum or signal.SIGINT)


_cancel = _Cancel()


@contextlib.contextmanager
def cancel_on_signals() -> Iterator[None]:
    """SIGINT and SIGTERM raise Cancelled (with .signum) inside; after one has, both stay ignored:
    the process is on its way out and further signals must not interrupt that."""
    _cancel.signum = None
    saved = {signum: signal.signal(signum, _cancel.handler) for signum in _CANCEL_SIGNALS}
    try:
        yield
    finally:
        if _cancel.signum is None:
            for signum, handler in saved.items():
                signal.signal(signum, handler)


# --- running ----------------------------------------------------------------------------------------

def run_suite(specs: List[GuestSpec], jobs: int, on_done: Callable[[GuestOutcome], None]) -> List[GuestOutcome]:
    """Run every guest; `on_done` sees each outcome as it arrives. Returns them in manifest order."""
    with SuiteRun(specs, jobs) as suite:
        return suite.run(on_done)


class SuiteRun:
    """Runs `specs` `jobs` at a time. Entering it starts the workers, leaving it kills and reaps
    them: enter it before anything starts threads (a progress bar), as they are forked."""

    def __init__(self, specs: List[GuestSpec], jobs: int):
        self.specs = specs
        self.size = min(jobs, len(specs))
        self._workers: Dict[int, _Worker] = {}      # by the descriptor their outcomes arrive on

    def __enter__(self) -> "SuiteRun":
        if self.size > 1:
            try:
                for _ in range(self.size):
                    self._start_worker()
            except BaseException:
                self._stop()
                raise
        return self

    def __exit__(self, *exc) -> None:
        self._stop()

    def run(self, on_done: Callable[[GuestOutcome], None]) -> List[GuestOutcome]:
        if self.size <= 1:
            outcomes = []
            for spec in self.specs:
                outcomes.append(_run_guarded(spec))
                on_done(outcomes[-1])
            return outcomes
        return _Dispatch(self, on_done).run()

    # --- workers ---

    def _start_worker(self) -> "_Worker":
        with _cancel.held():
            tasks_read, tasks_write = os.pipe()
            try:
                results_read, results_write = os.pipe()
            except OSError:
                _close(tasks_read, tasks_write)
                raise
            parent = os.getpid()
            try:
                pid = os.fork()
            except OSError:
                _close(tasks_read, tasks_write, results_read, results_write)
                raise
            if pid == 0:
                inherited = [fd for w in self._workers.values() for fd in (w.tasks, w.results)]
                _worker_main(parent, tasks_read, results_write, inherited + [tasks_write, results_read])
            _close(tasks_read, results_write)
            os.set_blocking(tasks_write, False)
            worker = self._workers[results_read] = _Worker(pid, tasks_write, results_read)
            return worker

    def _forget(self, worker: "_Worker", kill: bool) -> str:
        """Take `worker` out of the pool, killed if asked, and reaped; returns how it ended."""
        with _cancel.held():
            del self._workers[worker.results]
            if kill:
                _kill(worker.pid)
            _close(worker.tasks, worker.results)
            return _ended(_reap([worker.pid]).get(worker.pid))

    def _stop(self) -> None:
        with _cancel.held():
            workers = list(self._workers.values())
            self._workers.clear()
            for worker in workers:
                _kill(worker.pid)
            _reap([worker.pid for worker in workers])
            for worker in workers:
                _close(worker.tasks, worker.results)


class _Worker:
    def __init__(self, pid: int, tasks: int, results: int):
        self.pid = pid
        self.tasks = tasks                 # the parent writes batches here (non-blocking)
        self.results = results             # and reads (index, outcome) messages here
        self.inbox = bytearray()           # from the worker, not yet a whole message
        self.outbox = bytearray()          # to the worker, not yet written
        self.batch: Deque[int] = deque()   # sent, not yet reported; the first one is running
        self.since = 0.0                   # when that one started, as near as the parent can tell


def plan_batches(specs: List[GuestSpec], workers: int) -> List[List[int]]:
    """The guests' indexes in the batches workers are fed, in manifest order. Small batches: a guest
    boots in a few ms, about what a round trip to a worker costs, yet enough of them that a slow guest
    does not leave the other workers idle at the end. The guests of one `group` make one batch, where
    the group's first guest is: one worker runs them one after another, in manifest order (the same
    promise as pytest-xdist's --dist loadgroup)."""
    ungrouped = sum(1 for spec in specs if spec.group is None)
    size = max(1, ungrouped // (workers * 4))
    batches: List[List[int]] = []
    groups: Dict[str, List[int]] = {}
    current: List[int] = []
    for index, spec in enumerate(specs):
        if spec.group is None:
            current.append(index)
            if len(current) == size:
                batches.append(current)
                current = []
        elif spec.group in groups:
            groups[spec.group].append(index)
        else:
            groups[spec.group] = [index]
            batches.append(groups[spec.group])
    if current:
        batches.append(current)
    return batches


class _Dispatch:
    """One run over a SuiteRun's workers: batches out, outcomes in, dead and stuck workers replaced."""

    def __init__(self, suite: SuiteRun, on_done: Callable[[GuestOutcome], None]):
        self.suite = suite
        self.on_done = on_done
        self.outcomes: Dict[int, GuestOutcome] = {}
        self.queue: Deque[List[int]] = deque(plan_batches(suite.specs, suite.size))

    def run(self) -> List[GuestOutcome]:
        suite, total = self.suite, len(self.suite.specs)
        while len(self.outcomes) < total:
            self._feed()
            workers = list(suite._workers.values())
            readable, writable = _ready([w.results for w in workers], [w.tasks for w in workers if w.outbox],
                                        self._wait())
            for worker in workers:
                if worker.tasks in writable:
                    self._write(worker)
                if worker.results in readable:
                    self._read(worker)
            self._check_deadlines()
        return [self.outcomes[index] for index in range(total)]

    def _feed(self) -> None:
        import pickle                 # here, not at the top: a one-job run never needs it
        suite = self.suite
        while self.queue and len(suite._workers) < suite.size:
            try:
                suite._start_worker()
            except OSError as err:
                if suite._workers:
                    break          # carry on with the workers there are
                raise KvmrunError(f"cannot start a worker process: {err.strerror}") from None
        for worker in suite._workers.values():
            if not worker.batch and self.queue:
                batch = self.queue.popleft()
                payload = pickle.dumps([(index, suite.specs[index]) for index in batch], pickle.HIGHEST_PROTOCOL)
                worker.outbox += _HEADER.pack(len(payload)) + payload
                worker.batch.extend(batch)
                worker.since = time.monotonic()
                self._write(worker)

    def _write(self, worker: _Worker) -> None:
        try:
            written = os.write(worker.tasks, worker.outbox)
        except BlockingIOError:
            return
        except OSError:               # it died: its results pipe says so
            worker.outbox.clear()
            return
        del worker.outbox[:written]

    def _read(self, worker: _Worker) -> None:
        import pickle
        failed = False
        try:
            data = os.read(worker.results, 1 << 20)
        except OSError:
            data, failed = b"", True
        if not data:               # it is exiting: killing it now would hide how it ended
            how = self.suite._forget(worker, kill=failed)
            self._lost(worker, f"the worker process running it died ({how}) before it ended", WORKER_DIED)
            return
        worker.inbox += data
        while len(worker.inbox) >= _HEADER.size:
            (length,) = _HEADER.unpack_from(worker.inbox)
            if len(worker.inbox) < _HEADER.size + length:
                break
            try:
                index, outcome = pickle.loads(worker.inbox[_HEADER.size:_HEADER.size + length])
            except Exception as err:          # not from a worker of ours as it should be: stop it
                self.suite._forget(worker, kill=True)
                self._lost(worker, f"the worker process running it sent an unreadable outcome ({err!r}); "
                                   "killed it", WORKER_KILLED)
                return
            del worker.inbox[:_HEADER.size + length]
            if worker.batch and worker.batch[0] == index:
                worker.batch.popleft()
            worker.since = time.monotonic()
            self._done(index, outcome)

    def _lost(self, worker: _Worker, why: str, ended: str) -> None:
        """`worker` is gone: the guest it was running is an error, the rest of its batch goes back."""
        if worker.batch:
            index = worker.batch.popleft()
            self._done(index, GuestOutcome(self.suite.specs[index], False, time.monotonic() - worker.since,
                                           error=why, without_result=ended))
        if worker.batch:
            self.queue.appendleft(list(worker.batch))

    def _done(self, index: int, outcome: GuestOutcome) -> None:
        if index not in self.outcomes:
            self.outcomes[index] = outcome
            self.on_done(outcome)

    def _deadline(self, worker: _Worker) -> float:
        return worker.since + _wall_clock_bound(self.suite.specs[worker.batch[0]])[0]

    def _wait(self) -> Optional[float]:
        deadlines = [self._deadline(w) for w in self.suite._workers.values() if w.batch]
        return max(0.0, min(deadlines) - time.monotonic()) if deadlines else None

    def _check_deadlines(self) -> None:
        now = time.monotonic()
        for worker in list(self.suite._workers.values()):
            if worker.batch and now >= self._deadline(worker):
                _, bound = _wall_clock_bound(self.suite.specs[worker.batch[0]])
                self.suite._forget(worker, kill=True)
                self._lost(worker, f"still running {now - worker.since:.1f} s after it started, past {bound}: "
                                   "killed the worker process running it", WORKER_KILLED)


def _ready(readers: List[int], writers: List[int], timeout: Optional[float]) -> Tuple[List[int], List[int]]:
    """select(2)'s answer through poll(2), which also takes descriptors above 1023 (a test process
    may hold that many): a descriptor with any event (data, end of file, an error) is ready."""
    poller = select.poll()
    for fd in readers:
        poller.register(fd, select.POLLIN)
    for fd in writers:
        poller.register(fd, select.POLLOUT)
    events = dict(poller.poll(None if timeout is None else timeout * 1000))
    return [fd for fd in readers if fd in events], [fd for fd in writers if fd in events]


def _wall_clock_bound(spec: GuestSpec) -> Tuple[float, str]:
    """How long a worker may take over one guest, and why: its timeout (or the default, where it has
    no usable one) and a grace for booting and tearing down. A stuck worker, or a guest that would
    run forever, cannot hang the run."""
    timeout = spec.options.get("timeout")
    if isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout > 0:
        why = f"its {timeout:g} s timeout"
    else:
        timeout = DEFAULT_TIMEOUT
        why = f"the default {timeout:g} s timeout (it has no usable one: {spec.options.get('timeout')!r})"
    return timeout + WALL_CLOCK_GRACE, f"{why} and a {WALL_CLOCK_GRACE:g} s grace"


# --- the worker's side ------------------------------------------------------------------------------

def _worker_main(parent: int, tasks: int, results: int, inherited: List[int]) -> None:
    """The forked child: run batches until the parent closes the pipe. Never returns."""
    status = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)    # Ctrl-C reaches the whole group: the parent decides
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        _die_with(parent)
        _close(*inherited)
        while True:
            batch = _receive(tasks)
            if batch is None:
                break
            for index, spec in batch:
                _send(results, (index, _run_guarded(spec)))
        status = 0
    except OSError:
        pass                       # the parent went away
    except BaseException:
        import traceback
        traceback.print_exc()
    finally:
        os._exit(status)


def _die_with(parent: int) -> None:
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
    if os.getppid() != parent:     # it died before prctl took effect
        os._exit(1)


def _receive(fd: int) -> Optional[list]:
    import pickle
    header = _read_exactly(fd, _HEADER.size)
    if header is None:
        return None
    body = _read_exactly(fd, _HEADER.unpack(header)[0])
    return None if body is None else pickle.loads(body)


def _read_exactly(fd: int, size: int) -> Optional[bytes]:
    data = bytearray()
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            return None
        data += chunk
    return bytes(data)


def _send(fd: int, message) -> None:
    import pickle
    payload = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
    view = memoryview(_HEADER.pack(len(payload)) + payload)
    while view:
        view = view[os.write(fd, view):]


# --- processes --------------------------------------------------------------------------------------

def _close(*fds: int) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _reap(pids: List[int]) -> Dict[int, int]:
    """Wait for `pids` to end, up to REAP_SECONDS (a process can linger in the kernel tearing down its
    VM); returns the wait status of each that did."""
    statuses: Dict[int, int] = {}
    waiting = set(pids)
    deadline = time.monotonic() + REAP_SECONDS
    while waiting:
        for pid in list(waiting):
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                waiting.discard(pid)
                continue
            if done:
                statuses[pid] = status
                waiting.discard(pid)
        if not waiting or time.monotonic() >= deadline:
            break
        time.sleep(0.001)
    return statuses


def _ended(status: Optional[int]) -> str:
    if status is None:
        return "still exiting"
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        try:
            return f"killed by {signal.Signals(signum).name}"
        except ValueError:
            return f"killed by signal {signum}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"
