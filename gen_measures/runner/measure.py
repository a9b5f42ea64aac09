"""Computing the measures of one model: the unit of work of every executor.

:func:`measure_model` builds the model's context once and runs each requested measure on it,
yielding one :class:`ResultRow` per measure as soon as it exists. Failures are isolated: a
model that cannot be loaded yields ``error`` rows naming the file and the problem, a measure
that raises yields an ``error`` row, one that does not apply to the model (it raises
:class:`~gen_measures.errors.NotApplicableError`) a ``not_applicable`` row, one that returns
a non-finite value a ``nan`` row. The same function runs in the main process, in a worker
process and on a Dask worker.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from gen_measures.errors import DegenerateInputWarning, GenMeasuresError, NotApplicableError
from gen_measures.registry import MeasureResult, MeasureSpec

log = logging.getLogger(__name__)

#: Row statuses: computed; computed but not finite; the measure does not apply to this model
#: (not a failure); failed; stopped by the model's time budget.
STATUS_OK, STATUS_NAN, STATUS_NOT_APPLICABLE, STATUS_ERROR, STATUS_TIMEOUT = (
    "ok", "nan", "not_applicable", "error", "timeout")
#: Statuses that count as failures (exit status 1, named in the summary).
FAILED_STATUSES = (STATUS_ERROR, STATUS_TIMEOUT)


@dataclass
class ResultRow:
    task: str
    model: str
    measure: str
    value: float
    status: str
    seconds: float
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def error_text(exc: BaseException) -> str:
    """The first line of an exception's message (its class name when it has none)."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _call_measure(spec: MeasureSpec, ctx) -> tuple[float, dict[str, Any]]:
    out = spec.func(ctx)
    if isinstance(out, MeasureResult):
        return float(out.value), dict(out.details)
    return float(out), {}


def measure_model(
    task,
    model_id: str,
    specs: Sequence[MeasureSpec],
    sample,
    *,
    seed: int,
    batch_size: int,
    task_cache: dict[str, Any] | None = None,
    on_start: Callable[[str], None] | None = None,
    n_train: int | None = None,
) -> Iterator[ResultRow]:
    """Rows of ``specs`` on ``model_<model_id>`` of ``task``, one per measure, as they are computed.

    ``sample`` is the task's ``(x, y)`` training sample, or ``None`` when no measure needs data.
    ``on_start(measure_name)`` is called before each measure (executors use it to say what a
    model was doing when its budget ran out).
    """
    from gen_measures.context import ModelContext, release_keras_state

    label = f"{task.name}/model_{model_id}"
    need_init = any("init_weights" in s.needs for s in specs)
    t0 = time.perf_counter()
    if on_start is not None:
        on_start("(loading the model)")
    try:
        ctx = ModelContext.from_task(task, model_id, sample, load_initial=need_init, seed=seed,
                                     batch_size=batch_size, task_cache=task_cache, n_train=n_train)
    except Exception as exc:  # noqa: BLE001 - whatever one model's files do, the run goes on
        text = error_text(exc)
        if not isinstance(exc, (GenMeasuresError, OSError)):
            text = f"{type(exc).__name__}: {text}"
        message = text if (label in text or str(task.path) in text) else f"{label}: {text}"
        log.error("cannot load %s: %s", label, message)
        for spec in specs:
            yield ResultRow(task.name, model_id, spec.name, math.nan, STATUS_ERROR, time.perf_counter() - t0, message)
        return
    try:
        for spec in specs:
            if on_start is not None:
                on_start(spec.name)
            yield run_measure(spec, ctx, task.name, model_id)
    finally:
        release_keras_state()


def run_measure(spec: MeasureSpec, ctx, task_name: str, model_id: str) -> ResultRow:
    """One measure on one context, as a row (never raises for a failure of the measure itself)."""
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value, details = _call_measure(spec, ctx)
    except NotApplicableError as exc:
        return ResultRow(task_name, model_id, spec.name, math.nan, STATUS_NOT_APPLICABLE, time.perf_counter() - t0,
                         f"{spec.name} does not apply to {ctx.label}: {error_text(exc)}")
    except Exception as exc:  # noqa: BLE001 - one failing measure must not stop the run; logged in full
        log.debug("measure %s failed on %s", spec.name, ctx.label, exc_info=True)
        return ResultRow(task_name, model_id, spec.name, math.nan, STATUS_ERROR, time.perf_counter() - t0,
                         f"{spec.name} on {ctx.label}: {type(exc).__name__}: {error_text(exc)}")
    seconds = time.perf_counter() - t0
    notes = [str(w.message) for w in caught if issubclass(w.category, DegenerateInputWarning)]
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if not math.isfinite(value):
        message = "; ".join(notes) or f"{spec.name} on {ctx.label} is not finite ({value})"
        return ResultRow(task_name, model_id, spec.name, math.nan, STATUS_NAN, seconds, message, details)
    return ResultRow(task_name, model_id, spec.name, value, STATUS_OK, seconds, "; ".join(notes), details)
