"""Compute measures over model zoos, resumably: plan, skip what the store holds, execute, store.

:func:`compute` is the one loop from tasks on disk to the tidy results table. Every row goes
into the output folder's :class:`~gen_measures.runner.store.ResultStore` the moment it is
computed; a rerun of the same call computes only what is missing or whose code or files
changed (:mod:`gen_measures.runner.fingerprint`), and reports how many rows it reused.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from gen_measures.context import DEFAULT_BATCH_SIZE
from gen_measures.errors import GenMeasuresError
from gen_measures.io.atomic import sweep_stale_temporaries
from gen_measures.registry import MeasureSpec, plugin_files, resolve_measures
from gen_measures.runner.fingerprint import TaskFingerprints
from gen_measures.runner.jobs import (ModelJob, architecture_digest, has_sample, read_train_size, sample_cache_dir,
                                     sample_stem, write_sample)
from gen_measures.runner.measure import FAILED_STATUSES, STATUS_ERROR, STATUS_TIMEOUT, ResultRow, error_text
from gen_measures.runner.store import RESULT_COLUMNS, ResultStore, RunLock, StoredRow, sample_size_key
from gen_measures.sampling import DEFAULT_SAMPLE_SIZE, DEFAULT_SEED

log = logging.getLogger(__name__)

#: The per-model time budget of the competition (seconds).
DEFAULT_MODEL_TIMEOUT = 300.0
#: Stored statuses that are recomputed on a rerun (transient by nature).
RETRIED_STATUSES = (STATUS_TIMEOUT,)


@dataclass
class RunStats:
    """Counts of one :func:`compute` call (``compute(..., stats=RunStats())`` fills it)."""

    total: int = 0
    reused: int = 0
    computed: int = 0
    failed: int = 0
    models: int = 0
    seconds: float = 0.0
    output: Path | None = None
    failures: list[str] = field(default_factory=list)


def _workers(workers: int | str) -> int:
    from gen_measures.runner.executors import available_cores

    if workers == "auto":
        return available_cores()
    try:
        n = int(workers)
    except (TypeError, ValueError):
        raise ArgumentError(f"--workers: expected a whole number >= 0 or 'auto', got {workers!r}") from None
    if n < 0 or isinstance(workers, float):
        raise ArgumentError(f"--workers: expected a whole number >= 0 or 'auto', got {workers!r}")
    return n


class ArgumentError(GenMeasuresError, ValueError):
    """An argument of a run is invalid (found before any model is loaded)."""


def check_arguments(*, sample_size: Any, seed: Any, batch_size: Any, workers: Any, model_timeout: Any,
                    output: Any = None) -> int:
    """Validate a run's arguments before anything is computed; returns the number of workers.

    Each error names the argument (as the command line spells it), the value and what is expected.
    """
    def whole(value: Any) -> bool:
        return isinstance(value, (int,)) and not isinstance(value, bool)

    if sample_size is not None and (not whole(sample_size) or sample_size < 1):
        raise ArgumentError(f"--sample-size: expected a whole number >= 1 (or None for the whole training set), got {sample_size!r}")
    if not whole(seed) or seed < 0:
        raise ArgumentError(f"--seed: expected a whole number >= 0, got {seed!r}")
    if not whole(batch_size) or batch_size < 1:
        raise ArgumentError(f"--batch-size: expected a whole number >= 1, got {batch_size!r}")
    if model_timeout is not None and (isinstance(model_timeout, bool) or not isinstance(model_timeout, (int, float))
                                      or not math.isfinite(model_timeout) or model_timeout <= 0):
        raise ArgumentError(f"--model-timeout: expected a positive number of seconds (0 on the command line: no limit), got {model_timeout!r}")
    if output is not None and Path(output).exists() and not Path(output).is_dir():
        raise ArgumentError(f"--output {output}: is a file, not a folder; give a folder for the results")
    return _workers(workers)


def _progress_bar(enabled: bool | Callable, total: int):
    if callable(enabled) or not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="model", desc="measuring", dynamic_ncols=True, leave=True)


def compute(
    paths: str | Path | Iterable[str | Path] | None = None,
    *,
    tasks: Iterable[Any] | None = None,
    measures: str | Iterable[str] | None = None,
    sample_size: int | None = DEFAULT_SAMPLE_SIZE,
    seed: int = DEFAULT_SEED,
    batch_size: int = DEFAULT_BATCH_SIZE,
    workers: int | str = 1,
    output: str | Path | None = None,
    model_timeout: float | None = DEFAULT_MODEL_TIMEOUT,
    fresh: bool = False,
    retry_failed: bool = False,
    dask_scheduler: str | None = None,
    progress: bool | Callable[[int, int, str], None] = False,
    on_result: Callable[[ResultRow], None] | None = None,
    stats: RunStats | None = None,
    run_info: dict[str, Any] | None = None,
    submissions: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Compute ``measures`` for every model of every task; every row is stored as it is computed.

    Parameters
    ----------
    paths : task folder(s), folder(s) of tasks or competition root(s) (see
        :func:`gen_measures.io.pgdl.discover_tasks`); alternatively pass ``tasks``.
    measures : names or groups, comma-separated or a list; default: the ``default`` group.
    sample_size : training examples measures see (class-stratified, seeded, identical for
        every model of a task); ``None`` = the whole training set.
    seed : base seed of the sample and of every measure's randomness.
    workers : worker processes (``"auto"`` = one per core); ``0`` computes in this process
        (no time budget, no crash isolation).
    output : folder of the results store (``results.sqlite``); ``None`` uses a temporary one.
    model_timeout : seconds a model's measures may take together (``None``: no limit);
        a model over budget gets ``timeout`` rows for the measures it had not finished.
    fresh : recompute everything instead of reusing stored rows.
    retry_failed : also recompute stored ``error`` rows (``timeout`` rows always are).
    dask_scheduler : address of a ``dask.distributed`` scheduler to compute on.
    progress : ``True`` for a tqdm progress bar, or ``progress(done, total, label)``.
    on_result : called with each newly computed :class:`ResultRow`.
    stats : a :class:`RunStats` to fill with counts (reused, computed, failed).
    run_info : extra JSON-serialisable facts recorded with the run (e.g. the fusion presets).
    submissions : ``{measure name: folder}`` of PGDL submissions among ``measures``
        (:func:`gen_measures.submissions.ingest.submission_spec`); they run only in worker
        processes with Keras 2 semantics.

    Returns
    -------
    DataFrame with columns ``task, model, measure, value, status, seconds, message, details``
    (``status`` is ``ok``, ``nan``, ``not_applicable``, ``error`` or ``timeout``; ``value`` is
    NaN unless ``ok``), in task, model and measure order.
    """
    from gen_measures.io.pgdl import discover_tasks

    stats = stats if stats is not None else RunStats()
    t_start = time.perf_counter()
    n_workers = check_arguments(sample_size=sample_size, seed=seed, batch_size=batch_size, workers=workers,
                                model_timeout=model_timeout, output=output)
    specs = resolve_measures(measures)
    submissions = dict(submissions or {})
    if submissions and (n_workers == 0 or len(specs) != len(submissions)):
        raise ArgumentError("a submission runs alone and in worker processes (--workers >= 1), never in this process")
    task_list = list(tasks) if tasks is not None else discover_tasks(paths)
    with ExitStack() as stack:
        folder = Path(output) if output is not None else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gen_measures_")))
        store = stack.enter_context(ResultStore(folder))
        stack.enter_context(RunLock(folder))
        stats.output = folder
        # what writers killed mid-write (SIGKILL) left in the folders a run writes (the exports, the samples)
        swept = [p for d in (folder, sample_cache_dir(folder)) for p in sweep_stale_temporaries(d)]
        if swept:
            log.info("%s: removed %d temporary file(s) left by killed writers", folder, len(swept))
        ss_key = sample_size_key(sample_size)
        task_paths = [str(Path(t.path).resolve()) for t in task_list]
        params = {"tasks": task_paths, "references": [str(t.reference_path) if t.reference_path else None for t in task_list],
                  "measures": [s.name for s in specs], "sample_size": ss_key, "seed": seed, "batch_size": batch_size,
                  "workers": n_workers, "model_timeout": model_timeout, "plugins": plugin_files(), "submissions": submissions, **(run_info or {})}
        run_id = store.begin_run(params)
        status = "interrupted"
        try:
            jobs, keys = _plan(task_list, task_paths, specs, store, folder, ss_key, sample_size, seed, batch_size,
                               fresh, retry_failed, stats, lambda row, key: _put(store, run_id, row, key, stats, on_result))
            for job in jobs:
                job.submissions = submissions
            env = None
            if submissions:
                from gen_measures.submissions.ingest import SUBMISSION_ENV

                env = SUBMISSION_ENV
            _execute(jobs, keys, store, run_id, folder, n_workers, model_timeout, dask_scheduler, progress, stats,
                     on_result, env)
            status = "finished"
        except BaseException:
            status = "interrupted"
            raise
        finally:
            store.end_run(run_id, status)
            stats.seconds = time.perf_counter() - t_start
        frame = store.frame(task_paths=task_paths, measures=[s.name for s in specs], sample_size=ss_key, seed=seed, keys=True)
    frame = _in_run_order(frame, task_paths, {p: list(t.model_ids) for p, t in zip(task_paths, task_list)},
                          [s.name for s in specs])
    stats.failures = [f"{r.task}/model_{r.model} {r.measure}: {r.status}: {r.message}"
                      for r in frame.itertuples() if r.status in FAILED_STATUSES]
    stats.failed = len(stats.failures)
    return frame


def _key_of(task_path: str, row_task: str, model: str, spec: MeasureSpec, ss_key: int, seed: int, fingerprint: str) -> dict:
    return {"task_path": task_path, "task": row_task, "model": model, "measure": spec.name, "sample_size": ss_key,
            "seed": seed, "code_version": spec.code_version, "fingerprint": fingerprint}


def _put(store: ResultStore, run_id: int, row: ResultRow, key: dict, stats: RunStats, on_result) -> None:
    store.put(StoredRow(**key, value=row.value, status=row.status, seconds=row.seconds, message=row.message,
                        details=row.details), run_id)
    stats.computed += 1
    if on_result is not None:
        on_result(row)


def _plan(task_list, task_paths, specs, store, folder, ss_key, sample_size, seed, batch_size, fresh, retry_failed,
          stats, put) -> tuple[list[ModelJob], dict]:
    """Jobs for every (model, measure) the store does not hold with the current code and files."""
    from gen_measures.context import task_sample

    retried = RETRIED_STATUSES + ((STATUS_ERROR,) if retry_failed else ())
    jobs: list[ModelJob] = []
    keys: dict[tuple[int, str], dict] = {}
    plugins = plugin_files()
    for task, task_path in zip(task_list, task_paths):
        fps = TaskFingerprints(task)
        stored = {} if fresh else store.lookup(task_path, ss_key, seed)
        pending: dict[str, list[MeasureSpec]] = {}
        for model_id in task.model_ids:
            for spec in specs:
                stats.total += 1
                fp = fps.of(model_id, spec.needs)
                have = stored.get((model_id, spec.name))
                if have is not None and have[0] == spec.code_version and have[1] == fp and have[2] not in retried:
                    stats.reused += 1
                    continue
                pending.setdefault(model_id, []).append(spec)
        sample_file, n_train = None, None
        if any("data" in s.needs for ms in pending.values() for s in ms):
            stem = sample_stem(folder, task_path, fps.data(), ss_key, seed)
            try:
                if not has_sample(stem):
                    x, y, n = task_sample(task, sample_size, seed, return_size=True)
                    write_sample(stem, x, y, n)
                sample_file, n_train = str(stem), read_train_size(stem)
            except GenMeasuresError as exc:
                message = f"training data of task {task.name}: {error_text(exc)}"
                for model_id, ms in list(pending.items()):
                    for spec in [s for s in ms if "data" in s.needs]:
                        row = ResultRow(task.name, model_id, spec.name, math.nan, STATUS_ERROR, 0.0, message)
                        put(row, _key_of(task_path, task.name, model_id, spec, ss_key, seed, fps.of(model_id, spec.needs)))
                    pending[model_id] = [s for s in ms if "data" not in s.needs]
        for model_id, ms in pending.items():
            if not ms:
                continue
            job = ModelJob(job_id=len(jobs), task_path=task_path, task_name=task.name, model_id=model_id,
                           measures=[s.name for s in ms], seed=seed, batch_size=batch_size,
                           sample_file=sample_file if any("data" in s.needs for s in ms) else None, n_train=n_train,
                           reference_path=str(task.reference_path) if task.reference_path else None, plugins=plugins,
                           architecture=architecture_digest(task.config_path(model_id)))
            for spec in ms:
                keys[(job.job_id, spec.name)] = _key_of(task_path, task.name, model_id, spec, ss_key, seed,
                                                        fps.of(model_id, spec.needs))
            jobs.append(job)
    return jobs, keys


def _execute(jobs, keys, store, run_id, folder, n_workers, model_timeout, dask_scheduler, progress, stats, on_result,
             env=None):
    from gen_measures.runner import executors

    stats.models = len(jobs)
    if not jobs:
        return
    bar = _progress_bar(progress, len(jobs))
    done = 0
    failed_models: set[int] = set()

    def on_row(job: ModelJob, row: ResultRow) -> None:
        _put(store, run_id, row, keys[(job.job_id, row.measure)], stats, on_result)
        if row.status in FAILED_STATUSES:
            failed_models.add(job.job_id)

    def on_done(job: ModelJob) -> None:
        nonlocal done
        done += 1
        if bar is not None:
            bar.set_postfix_str(f"{len(failed_models)} failed, {stats.reused} reused, last {job.label}", refresh=False)
            bar.update(1)
        elif callable(progress):
            progress(done, len(jobs), job.label)

    if dask_scheduler:
        executor = executors.DaskExecutor(dask_scheduler, model_timeout, executors.threads_per_worker(1), env)
    elif n_workers == 0:
        executor = executors.InlineExecutor()
    else:
        executor = executors.ProcessExecutor(min(n_workers, len(jobs)), model_timeout, log_dir=folder / "logs",
                                             env_extra=env)
    try:
        executor.run(jobs, on_row, on_done)
    finally:
        executor.close()
        if bar is not None:
            bar.close()


def _in_run_order(frame: pd.DataFrame, task_paths: list[str], model_ids: dict[str, list[str]],
                  measures: list[str]) -> pd.DataFrame:
    """``frame`` sorted as the run visits it: tasks as given, models in task order, measures as requested."""
    task_rank = {p: i for i, p in enumerate(task_paths)}
    model_rank = {(p, m): j for p, ids in model_ids.items() for j, m in enumerate(ids)}
    measure_rank = {m: k for k, m in enumerate(measures)}
    keys = [(task_rank.get(p, 0), model_rank.get((p, m), 0), measure_rank.get(me, 0))
            for p, m, me in zip(frame["task_path"], frame["model"], frame["measure"])]
    order = sorted(range(len(frame)), key=keys.__getitem__)
    return frame.iloc[order][RESULT_COLUMNS].reset_index(drop=True)


def read_results(output: str | Path, *, last_run: bool = True) -> pd.DataFrame:
    """The stored results of an output folder as a tidy frame (``pandas`` over ``results.sqlite``).

    ``last_run=True`` keeps the rows the newest run asked for (its tasks, measures, sample size
    and seed), in run order; ``False`` returns every stored row.
    """
    from gen_measures.io.pgdl import _id_sort_key

    with ResultStore(output, create=False) as store:
        run = store.last_run()
        if not last_run or run is None:
            return store.frame()
        p = run["params"]
        frame = store.frame(task_paths=p["tasks"], measures=p["measures"], sample_size=p["sample_size"],
                            seed=p["seed"], keys=True)
    model_ids = {path: sorted(frame.loc[frame.task_path == path, "model"].unique(), key=_id_sort_key) for path in p["tasks"]}
    return _in_run_order(frame, p["tasks"], model_ids, p["measures"])
