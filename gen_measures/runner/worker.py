"""A worker process: ``python -m gen_measures.runner.worker FD THREADS``.

Started by :class:`gen_measures.runner.executors.WorkerProcess` with one end of a socket pair
as file descriptor ``FD``. It limits TensorFlow to ``THREADS`` intra-op threads (so that N
workers do not oversubscribe the cores), says ``ready``, then computes the jobs it receives
one at a time and sends back, per job::

    ("start", job_id, measure)   before each measure (and before loading the model)
    ("row", job_id, row_dict)    each result as soon as it exists
    ("done", job_id)             when the model is finished

It is a fresh interpreter (not a fork): no TensorFlow state is shared with the parent, and the
parent's ``__main__`` is never re-imported.
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict
from typing import Any


class WorkerState:
    """Per-process caches: open tasks, memory-mapped samples, per-task measure caches."""

    def __init__(self) -> None:
        self.tasks: dict[str, Any] = {}
        self.samples: dict[str, Any] = {}
        self.task_caches: dict[tuple, dict] = {}
        self.plugins: set[str] = set()
        self.submissions: dict[str, Any] = {}

    def run(self, job, on_start=None):
        """Rows of ``job`` (see :func:`gen_measures.runner.measure.measure_model`), as they are computed."""
        from gen_measures.io.pgdl import open_task
        from gen_measures.registry import get_measure, load_plugin_file
        from gen_measures.runner.jobs import read_sample
        from gen_measures.runner.measure import measure_model

        for path in job.plugins:
            if path not in self.plugins:
                load_plugin_file(path)
                self.plugins.add(path)
        task = self.tasks.get(job.task_path)
        if task is None:
            task = self.tasks[job.task_path] = open_task(job.task_path, job.reference_path)
        sample = None
        if job.sample_file is not None:
            if job.sample_file not in self.samples:
                self.samples[job.sample_file] = read_sample(job.sample_file)
            sample = self.samples[job.sample_file]
        if job.submissions:
            yield from self._run_submissions(task, job, on_start)
            return
        cache = self.task_caches.setdefault((job.task_path, job.sample_file, job.seed), {})
        specs = [get_measure(name) for name in job.measures]
        yield from measure_model(task, job.model_id, specs, sample, seed=job.seed, batch_size=job.batch_size,
                                 task_cache=cache, on_start=on_start, n_train=job.n_train)


    def _run_submissions(self, task, job, on_start):
        from gen_measures.submissions.ingest import load_complexity, run_submission

        for name in job.measures:
            folder = job.submissions[name]
            if on_start is not None:
                on_start(name)
            if folder not in self.submissions:
                self.submissions[folder] = load_complexity(folder)
            yield run_submission(task, job.model_id, folder, name, job.seed, self.submissions[folder])


def configure_threads(threads: int) -> None:
    """Limit TensorFlow's thread pools (must run before TensorFlow executes anything)."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(min(2, threads))


def main(argv: list[str]) -> int:
    from multiprocessing.connection import Connection

    import signal

    # Ctrl-C reaches the whole process group: the parent stops the run and kills its workers,
    # so a worker never turns an interrupt into a stored "worker died" error.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    fd, threads = int(argv[1]), int(argv[2])
    conn = Connection(fd)
    configure_threads(threads)
    import keras  # noqa: F401 - import before saying ready, so that a job's budget excludes start-up

    conn.send(("ready", os.getpid()))
    state = WorkerState()
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return 0
        if message[0] == "stop":
            # every result has been sent: skip the interpreter's teardown (TensorFlow's takes seconds)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        job = message[1]
        try:
            for row in state.run(job, on_start=lambda m, j=job.job_id: conn.send(("start", j, m))):
                conn.send(("row", job.job_id, asdict(row)))
        except Exception as exc:  # noqa: BLE001 - reported to the parent as this model's error
            from gen_measures.runner.measure import error_text

            conn.send(("fail", job.job_id, f"{job.label}: {type(exc).__name__}: {error_text(exc)}"))
        conn.send(("done", job.job_id))


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.exit(main(sys.argv))
