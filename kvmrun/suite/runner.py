"""Running the guests of a manifest: in this process for one job, in worker processes for more."""
import os
import time
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

from ..errors import KvmrunError
from .manifest import GuestSpec


@dataclass(frozen=True)
class GuestOutcome:
    spec: GuestSpec
    passed: bool
    elapsed: float
    result: Optional[object] = None      # kvmrun.Result; None when kvmrun could not boot the guest
    problems: Tuple[str, ...] = ()        # what differed from the expectation
    error: Optional[str] = None           # why kvmrun could not boot it


def default_jobs() -> int:
    return len(os.sched_getaffinity(0)) or 1


def run_guest(spec: GuestSpec) -> GuestOutcome:
    from ..api import run
    start = time.perf_counter()
    try:
        result = run(spec.image, **spec.options)
    except KvmrunError as err:
        return GuestOutcome(spec, False, time.perf_counter() - start, error=str(err))
    problems = tuple(result.mismatches(spec.expect_status, spec.expect_serial, spec.expect_reason))
    return GuestOutcome(spec, not problems, result.elapsed, result=result, problems=problems)


def _run_batch(specs: List[GuestSpec]) -> List[GuestOutcome]:
    return [run_guest(spec) for spec in specs]


def run_suite(specs: List[GuestSpec], jobs: int, on_done: Callable[[GuestOutcome], None]) -> List[GuestOutcome]:
    """Run every guest; `on_done` sees each outcome as it arrives. Returns them in manifest order."""
    outcomes = {}
    if jobs <= 1:
        for spec in specs:
            outcomes[spec.name] = outcome = run_guest(spec)
            on_done(outcome)
        return [outcomes[spec.name] for spec in specs]
    import multiprocessing           # only for more than one job: they cost ~15 ms to import
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    # fork: workers start in milliseconds and inherit the imports; this process has no vCPU threads.
    # Guests go out in small batches: a guest boots in a few ms, about what sending it costs.
    context = multiprocessing.get_context("fork")
    workers = min(jobs, len(specs))
    batch = max(1, len(specs) // (workers * 4))
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending = {pool.submit(_run_batch, specs[i:i + batch]) for i in range(0, len(specs), batch)}
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    for outcome in future.result():
                        outcomes[outcome.spec.name] = outcome
                        on_done(outcome)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return [outcomes[spec.name] for spec in specs]
