"""Executors: where the jobs of a run are computed.

* :class:`InlineExecutor` (``workers=0``): in this process, one model after another. No time
  budget, no crash isolation: for debugging and small notebooks.
* :class:`ProcessExecutor` (``workers=N``, the default with N=1): N worker processes
  (:mod:`gen_measures.runner.worker`, fresh interpreters), each limited to ``cores / N``
  threads. A model whose measures exceed ``model_timeout`` seconds gets ``timeout`` rows for
  the measures it had not finished, its worker is killed and replaced, and the run goes on; a
  worker that dies (segfault, out-of-memory kill) costs its model ``error`` rows and is
  replaced.
* :class:`DaskExecutor` (``dask_scheduler=ADDRESS``): each model is a task on an existing
  ``dask.distributed`` cluster; on the Dask worker it runs in the same kind of worker process
  with the same budget. Rows come back to the client, which writes them to its store.

Every executor calls ``on_row(job, row)`` with each row as it arrives and ``on_done(job)`` when
a model is finished; the caller writes them to the store.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from gen_measures.errors import GenMeasuresError
from gen_measures.runner.jobs import ModelJob
from gen_measures.runner.measure import STATUS_ERROR, STATUS_TIMEOUT, ResultRow

log = logging.getLogger(__name__)

RowFn = Callable[[ModelJob, ResultRow], None]
DoneFn = Callable[[ModelJob], None]
#: How often a worker may die before saying ``ready`` before the run gives up.
MAX_START_FAILURES = 3
#: Pending jobs a free worker looks through for one of its last architecture.
AFFINITY_WINDOW = 512


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def threads_per_worker(workers: int) -> int:
    return max(1, available_cores() // max(1, workers))


def _signal_name(code: int | None) -> str:
    import signal

    if code is None:
        return "is still running"
    if code < 0:
        try:
            return f"was killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


class InlineExecutor:
    """Compute every job in this process, in order."""

    def __init__(self) -> None:
        from gen_measures.runner.worker import WorkerState

        self.state = WorkerState()

    def run(self, jobs: Sequence[ModelJob], on_row: RowFn, on_done: DoneFn) -> None:
        for job in jobs:
            for row in self.state.run(job):
                on_row(job, row)
            on_done(job)

    def close(self) -> None:
        pass


class WorkerProcess:
    """One worker interpreter and the parent's end of its socket."""

    def __init__(self, threads: int, log_dir: Path | None = None, env_extra: dict[str, str] | None = None) -> None:
        from multiprocessing.connection import Connection

        parent, child = socket.socketpair()
        env = dict(os.environ, **(env_extra or {}))
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(threads)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        self.log_path = None
        stderr: Any = subprocess.DEVNULL
        if log_dir is not None:
            log_dir.mkdir(parents=True, exist_ok=True)
            self.log_path = log_dir / f"worker-{time.strftime('%Y%m%d-%H%M%S')}-{id(self):x}.log"
            stderr = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gen_measures.runner.worker", str(child.fileno()), str(threads)],
                pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr, env=env,
            )
        finally:
            child.close()
            if stderr is not subprocess.DEVNULL:
                stderr.close()
        self.conn = Connection(os.dup(parent.fileno()))
        parent.close()
        self.ready = False
        self.job: ModelJob | None = None
        self.started = 0.0
        self.current = ""
        self.received: set[str] = set()
        self.architecture = ""  # of the job it ran last

    def assign(self, job: ModelJob) -> None:
        self.job, self.started, self.current, self.received = job, time.monotonic(), "(loading the model)", set()
        self.architecture = job.architecture
        self.conn.send(("job", job))

    def log_tail(self, lines: int = 3) -> str:
        if self.log_path is None or not self.log_path.is_file():
            return ""
        tail = [t for t in self.log_path.read_text(errors="replace").splitlines() if t.strip()][-lines:]
        return " | ".join(tail)

    def kill(self) -> None:
        try:
            self.proc.kill()
        except OSError:
            pass
        self.proc.wait()
        self.conn.close()

    def request_stop(self) -> None:
        try:
            self.conn.send(("stop",))
        except OSError:
            pass

    def wait_stopped(self, timeout: float = 10.0) -> None:
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.conn.close()

    def stop(self) -> None:
        self.request_stop()
        self.wait_stopped()


def _missing_rows(job: ModelJob, received: set[str], status: str, seconds: float, message: str) -> list[ResultRow]:
    return [ResultRow(job.task_name, job.model_id, m, math.nan, status, seconds, message)
            for m in job.measures if m not in received]


class ProcessExecutor:
    """Run jobs on ``workers`` worker processes with a per-model time budget."""

    def __init__(self, workers: int = 1, model_timeout: float | None = 300.0, log_dir: Path | None = None,
                 env_extra: dict[str, str] | None = None) -> None:
        self.env_extra = env_extra
        self.workers = max(1, int(workers))
        self.model_timeout = model_timeout
        self.log_dir = log_dir
        self.threads = threads_per_worker(self.workers)
        self.pool: list[WorkerProcess] = []
        self.start_failures = 0

    def _spawn(self) -> WorkerProcess:
        w = WorkerProcess(self.threads, self.log_dir, self.env_extra)
        self.pool.append(w)
        return w

    def _retire(self, w: WorkerProcess) -> None:
        w.kill()
        self.pool.remove(w)

    def run(self, jobs: Sequence[ModelJob], on_row: RowFn, on_done: DoneFn) -> None:
        from multiprocessing.connection import wait

        pending = deque(jobs)
        while len(self.pool) < min(self.workers, len(pending)):
            self._spawn()
        while pending or any(w.job is not None for w in self.pool):
            for w in self.pool:
                if w.ready and w.job is None and pending:
                    w.assign(self._next_job(pending, w))
            timeout = 1.0
            if self.model_timeout is not None:
                deadlines = [w.started + self.model_timeout - time.monotonic() for w in self.pool if w.job is not None]
                timeout = max(0.01, min([timeout] + deadlines))
            for conn in wait([w.conn for w in self.pool], timeout=timeout):
                w = next(w for w in self.pool if w.conn is conn)
                try:
                    message = conn.recv()
                except (EOFError, OSError):
                    self._died(w, pending, on_row, on_done)
                    continue
                self._handle(w, message, on_row, on_done)
            self._enforce_budget(pending, on_row, on_done)
            while len(self.pool) < min(self.workers, len(pending) + sum(w.job is not None for w in self.pool)):
                self._spawn()

    def _next_job(self, pending: deque, w: WorkerProcess) -> ModelJob:
        """The job a free worker takes: the first pending job of the architecture it ran last
        (its compiled functions are traced already, :mod:`gen_measures.traces`), else the first
        of an architecture that no other worker ran last, else the first (looking at most
        :data:`AFFINITY_WINDOW` jobs ahead)."""
        others = {o.architecture for o in self.pool if o is not w}
        window = list(itertools.islice(pending, AFFINITY_WINDOW))
        for wanted in (lambda j: bool(j.architecture) and j.architecture == w.architecture,
                       lambda j: j.architecture not in others):
            for i, job in enumerate(window):
                if wanted(job):
                    del pending[i]
                    return job
        return pending.popleft()

    def _handle(self, w: WorkerProcess, message: tuple, on_row: RowFn, on_done: DoneFn) -> None:
        kind = message[0]
        if kind == "ready":
            w.ready = True
        elif kind == "start":
            w.current = message[2]
        elif kind == "row":
            row = ResultRow(**message[2])
            w.received.add(row.measure)
            on_row(w.job, row)
        elif kind == "fail":
            for row in _missing_rows(w.job, w.received, STATUS_ERROR, time.monotonic() - w.started, message[2]):
                w.received.add(row.measure)
                on_row(w.job, row)
        elif kind == "done":
            job, w.job = w.job, None
            on_done(job)

    def _died(self, w: WorkerProcess, pending: deque, on_row: RowFn, on_done: DoneFn) -> None:
        w.proc.wait()
        how = _signal_name(w.proc.returncode)
        tail = w.log_tail()
        self._retire(w)
        if w.job is None:
            if not w.ready:
                self.start_failures += 1
                if self.start_failures >= MAX_START_FAILURES:
                    raise GenMeasuresError(
                        f"worker processes die before they start (the last {how}"
                        + (f"; its log: {tail}" if tail else "") + "); run with --workers 0 to see the error")
            return
        elapsed = time.monotonic() - w.started
        message = f"{w.job.label}: the worker process {how} while computing {w.current} after {elapsed:.1f} s"
        log.error("%s", message)
        for row in _missing_rows(w.job, w.received, STATUS_ERROR, elapsed, message):
            on_row(w.job, row)
        on_done(w.job)

    def _enforce_budget(self, pending: deque, on_row: RowFn, on_done: DoneFn) -> None:
        if self.model_timeout is None:
            return
        now = time.monotonic()
        for w in [w for w in self.pool if w.job is not None and now - w.started > self.model_timeout]:
            elapsed = now - w.started
            message = (f"{w.job.label}: exceeded the model budget (--model-timeout {self.model_timeout:g} s) "
                       f"after {elapsed:.1f} s while computing {w.current}; its worker was replaced")
            log.error("%s", message)
            job = w.job
            self._retire(w)
            for row in _missing_rows(job, w.received, STATUS_TIMEOUT, elapsed, message):
                on_row(job, row)
            on_done(job)

    def close(self) -> None:
        idle = [w for w in self.pool if w.job is None]
        for w in self.pool:
            if w.job is not None:
                w.kill()
        for w in idle:  # every idle worker is asked first, then waited for: they exit side by side
            w.request_stop()
        for w in idle:
            w.wait_stopped()
        self.pool.clear()


# ----------------------------------------------------------------------------- Dask
_DASK_EXECUTOR: ProcessExecutor | None = None


def _dask_run_job(job: ModelJob, sample: Any, model_timeout: float | None, threads: int,
                  env_extra: dict[str, str] | None = None) -> list[dict]:
    """On a Dask worker: run ``job`` in a local worker process (kept between tasks) under the budget."""
    import tempfile

    from gen_measures.runner.jobs import has_sample, write_sample

    global _DASK_EXECUTOR
    if _DASK_EXECUTOR is not None and _DASK_EXECUTOR.env_extra != env_extra:
        _DASK_EXECUTOR.close()
        _DASK_EXECUTOR = None
    if sample is not None:
        stem = Path(tempfile.gettempdir()) / "gen_measures_dask_samples" / Path(job.sample_file).name
        if not has_sample(stem):
            write_sample(stem, *sample, job.n_train)
        job.sample_file = str(stem)
    if _DASK_EXECUTOR is None:
        _DASK_EXECUTOR = ProcessExecutor(1, model_timeout, env_extra=env_extra)
        _DASK_EXECUTOR.threads = threads
    rows: list[dict] = []
    _DASK_EXECUTOR.model_timeout = model_timeout
    _DASK_EXECUTOR.run([job], lambda j, r: rows.append(asdict(r)), lambda j: None)
    return rows


class DaskExecutor:
    """Send each job to a ``dask.distributed`` cluster; rows come back to this process."""

    def __init__(self, address: str, model_timeout: float | None = 300.0, threads: int = 1,
                 env_extra: dict[str, str] | None = None) -> None:
        self.env_extra = env_extra
        try:
            from distributed import Client
        except ImportError:
            raise GenMeasuresError(
                "--dask-scheduler needs the dask extra: pip install -e '.[dask]' (dask.distributed)") from None
        self.model_timeout = model_timeout
        self.threads = threads
        try:
            self.client = Client(address, timeout=30)
        except (OSError, TimeoutError) as exc:
            raise GenMeasuresError(f"--dask-scheduler {address}: cannot connect ({exc})") from None
        self._scattered: dict[str, Any] = {}

    def run(self, jobs: Sequence[ModelJob], on_row: RowFn, on_done: DoneFn) -> None:
        from distributed import as_completed

        from gen_measures.runner.jobs import read_sample

        futures = {}
        for job in jobs:
            sample = None
            if job.sample_file is not None:
                if job.sample_file not in self._scattered:
                    x, y = read_sample(job.sample_file)
                    self._scattered[job.sample_file] = self.client.scatter((x[:], y), broadcast=True)
                sample = self._scattered[job.sample_file]
            fut = self.client.submit(_dask_run_job, job, sample, self.model_timeout, self.threads, self.env_extra,
                                     pure=False)
            futures[fut] = job
        for fut in as_completed(futures):
            job = futures[fut]
            try:
                rows = [ResultRow(**r) for r in fut.result()]
            except Exception as exc:  # noqa: BLE001 - a lost Dask worker costs its model, not the run
                message = f"{job.label}: the Dask task failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                rows = _missing_rows(job, set(), STATUS_ERROR, 0.0, message)
            for row in rows:
                on_row(job, row)
            on_done(job)

    def close(self) -> None:
        self.client.close()
