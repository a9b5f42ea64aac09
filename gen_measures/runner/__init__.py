"""The runner: tasks x models x measures -> rows in a resumable SQLite store.

* :mod:`~gen_measures.runner.compute` -- :func:`compute`: plan, reuse, execute, store.
* :mod:`~gen_measures.runner.measure` -- the measures of one model (the unit of work).
* :mod:`~gen_measures.runner.executors` -- in-process, worker processes, Dask.
* :mod:`~gen_measures.runner.worker` -- the worker process.
* :mod:`~gen_measures.runner.jobs` -- what a worker receives; the per-task sample files.
* :mod:`~gen_measures.runner.store` -- the SQLite store and the run lock.
* :mod:`~gen_measures.runner.fingerprint` -- what a stored row was computed from.
"""

from gen_measures.runner.compute import DEFAULT_MODEL_TIMEOUT, RunStats, compute, read_results
from gen_measures.runner.measure import (
    FAILED_STATUSES,
    STATUS_ERROR,
    STATUS_NAN,
    STATUS_NOT_APPLICABLE,
    STATUS_OK,
    STATUS_TIMEOUT,
    ResultRow,
)

__all__ = [
    "DEFAULT_MODEL_TIMEOUT",
    "FAILED_STATUSES",
    "STATUS_ERROR",
    "STATUS_NAN",
    "STATUS_NOT_APPLICABLE",
    "STATUS_OK",
    "STATUS_TIMEOUT",
    "ResultRow",
    "RunStats",
    "compute",
    "read_results",
]
