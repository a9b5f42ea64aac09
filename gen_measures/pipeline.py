"""The one "measure, fuse, write, score" pipeline that the CLI, notebooks and reports call.

:func:`run` discovers the tasks, computes the measures (:func:`gen_measures.runner.compute`),
adds the rank-fusion presets, writes ``results.csv`` and the competition's ``.predict`` files
and scores every measure on the tasks that have reference metrics. It returns a
:class:`RunResult`; presenting it is the caller's business.

The defaults of a run (sample size, seed, batch size, output folder, fusion presets) are
defined here and in the modules they belong to, once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from gen_measures.context import DEFAULT_BATCH_SIZE
from gen_measures.errors import GenMeasuresError
from gen_measures.registry import MeasureSpec, resolve_measures
from gen_measures.runner.compute import DEFAULT_MODEL_TIMEOUT
from gen_measures.sampling import DEFAULT_SAMPLE_SIZE, DEFAULT_SEED

log = logging.getLogger(__name__)

#: Output folder of a run when none is given.
DEFAULT_OUTPUT = "gen_measures_out"
#: Fusion presets scored beside the measures (the seed paper's pseudo-validation + P-vector).
DEFAULT_FUSE = "pvalid_pvector"


def sample_data_path() -> Path:
    """The bundled zoo: ``sample_data/`` at the repository root (beside the package), else in the working folder."""
    beside = Path(__file__).resolve().parent.parent / "sample_data"
    return beside if beside.is_dir() else Path("sample_data")


@dataclass
class RunResult:
    """What a run produced.

    Attributes
    ----------
    tasks : the tasks measured (:class:`gen_measures.io.pgdl.Task`).
    specs : the measures computed, in the requested order.
    results : tidy frame ``task, model, measure, value, status, seconds, message, details``.
    fused : rows of the fusion presets (``task, model, measure, value, status``).
    scores : score table of every measure on the tasks with reference metrics (empty when none).
    output : the output folder (``None`` when nothing was written).
    """

    tasks: list[Any]
    specs: list[MeasureSpec]
    results: pd.DataFrame
    fused: pd.DataFrame
    scores: pd.DataFrame
    output: Path | None = None
    files: list[Path] = field(default_factory=list)
    stats: Any = None

    @property
    def failures(self) -> pd.DataFrame:
        """The rows whose status is ``error`` or ``timeout``."""
        from gen_measures.runner.measure import FAILED_STATUSES

        return self.results[self.results["status"].isin(FAILED_STATUSES)]

    def value_table(self) -> pd.DataFrame:
        """Values pivoted to one row per (task, model) and one column per measure, in run order."""
        return value_table(self.results, [s.name for s in self.specs])


def value_table(results: pd.DataFrame, measures: Sequence[str] | None = None) -> pd.DataFrame:
    """``results`` pivoted to one row per (task, model), one column per measure (order kept)."""
    table = results.pivot_table(index=["task", "model"], columns="measure", values="value", aggfunc="first", dropna=False)
    order = pd.MultiIndex.from_frame(results[["task", "model"]].drop_duplicates())
    names = list(measures) if measures is not None else list(dict.fromkeys(results["measure"]))
    return table.reindex(index=order, columns=[m for m in names if m in table.columns])


def fuse_presets(results: pd.DataFrame, presets: str | Iterable[str] | None, directions: dict[str, int],
                 seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """Rows of each named fusion preset whose measures were computed (rows with status ``ok`` only)."""
    from scoring.fusion import preset_results

    names = _preset_names(presets)
    ok = results[results["status"] == "ok"]
    frames = [f for f in (preset_results(ok, name, directions, seed=seed) for name in names) if len(f)]
    if not frames:
        return pd.DataFrame(columns=["task", "model", "measure", "value", "status"])
    fused = pd.concat(frames, ignore_index=True)
    fused["status"] = ["ok" if v == v else "nan" for v in fused["value"]]
    return fused


def task_references(tasks: Iterable[Any]) -> dict[str, Any]:
    """``{task name: ModelConfigs}`` of the tasks whose reference data hold generalization gaps."""
    refs = {}
    for task in tasks:
        ref = task.read_reference()
        if ref is not None and ref.has_gaps():
            refs[task.name] = ref
    return refs


def score_run(results: pd.DataFrame, tasks: Iterable[Any], directions: dict[str, int]) -> pd.DataFrame:
    """Score every measure of ``results`` on the tasks with reference metrics (empty frame when none)."""
    from scoring.report import score_results

    refs = task_references(tasks)
    if not refs:
        return pd.DataFrame()
    return score_results(results, refs, directions)


def run(
    paths: str | Path | Iterable[str | Path] | None = None,
    *,
    measures: str | Iterable[str] | None = None,
    output: str | Path | None = DEFAULT_OUTPUT,
    fuse: str | Iterable[str] | None = DEFAULT_FUSE,
    sample_size: int | None = DEFAULT_SAMPLE_SIZE,
    seed: int = DEFAULT_SEED,
    batch_size: int = DEFAULT_BATCH_SIZE,
    workers: int | str = 1,
    model_timeout: float | None = DEFAULT_MODEL_TIMEOUT,
    fresh: bool = False,
    retry_failed: bool = False,
    dask_scheduler: str | None = None,
    progress: Any = False,
    score: bool = True,
    report: bool | str | Path = False,
) -> RunResult:
    """Measure every model of the tasks under ``paths``, fuse, write the outputs and score.

    Parameters
    ----------
    paths : task folder(s), folder(s) of tasks or competition root(s); default: the bundled zoo.
    measures : measure or group names (comma-separated or a list); default: the ``default`` group.
    output : folder of the results store (``results.sqlite``) and of the files derived from it
        (``results.csv``, ``predictions/<measure>/<task>.predict``); ``None`` writes nothing.
        A rerun into the same folder reuses every stored result whose code and files are unchanged.
    fuse : fusion presets (:data:`scoring.fusion.PRESETS`) scored beside the measures; ``""``
        or ``None`` for none.
    sample_size, seed, batch_size, workers, model_timeout, fresh, retry_failed, dask_scheduler,
    progress : see :func:`gen_measures.runner.compute`.
    score : score the measures on tasks with reference metrics.
    report : also write the HTML report (:mod:`gen_measures.html_report`): ``True`` for
        ``output/report.html``, or a path; its path is appended to ``RunResult.files``.
    """
    from gen_measures.io.pgdl import discover_tasks
    from gen_measures.runner import RunStats, compute

    from gen_measures.runner.compute import check_arguments

    check_arguments(sample_size=sample_size, seed=seed, batch_size=batch_size, workers=workers,
                    model_timeout=model_timeout, output=output)
    specs = resolve_measures(measures)
    fuse_names = check_presets(fuse)
    tasks = discover_tasks(paths if paths is not None else [sample_data_path()])
    stats = RunStats()
    results = compute(tasks=tasks, measures=[s.name for s in specs], sample_size=sample_size, seed=seed,
                      batch_size=batch_size, workers=workers, output=output, model_timeout=model_timeout, fresh=fresh,
                      retry_failed=retry_failed, dask_scheduler=dask_scheduler, progress=progress, stats=stats,
                      run_info={"fuse": fuse_names})
    return _with_report(_finish(tasks, specs, results, fuse_names, seed, stats, output, score), report)


def ingest(
    submission: str | Path,
    paths: str | Path | Iterable[str | Path] | None = None,
    *,
    output: str | Path = DEFAULT_OUTPUT,
    seed: int = DEFAULT_SEED,
    workers: int | str = 1,
    model_timeout: float | None = DEFAULT_MODEL_TIMEOUT,
    fresh: bool = False,
    retry_failed: bool = False,
    dask_scheduler: str | None = None,
    progress: Any = False,
    score: bool = True,
    report: bool | str | Path = False,
) -> RunResult:
    """Run an unmodified PGDL submission folder over the tasks under ``paths`` (see :mod:`gen_measures.submissions.ingest`).

    Same store, resume, budgets and workers as :func:`run`; writes ``results.csv``,
    ``predictions/<submission>/<task>.predict`` and, as the organizers' ingestion program did,
    ``<output>/<task>.predict``; scores the tasks with reference metrics; ``report`` as in :func:`run`.
    """
    import shutil

    from gen_measures.io.pgdl import discover_tasks
    from gen_measures.runner import RunStats, compute
    from gen_measures.runner.compute import check_arguments
    from gen_measures.submissions.ingest import submission_spec

    check_arguments(sample_size=None, seed=seed, batch_size=DEFAULT_BATCH_SIZE, workers=workers,
                    model_timeout=model_timeout, output=output)
    spec = submission_spec(submission)
    tasks = discover_tasks(paths if paths is not None else [sample_data_path()])
    stats = RunStats()
    results = compute(tasks=tasks, measures=[spec.name], sample_size=None, seed=seed, workers=workers, output=output,
                      model_timeout=model_timeout, fresh=fresh, retry_failed=retry_failed, dask_scheduler=dask_scheduler,
                      progress=progress, stats=stats, submissions={spec.name: spec.func.submission_dir},
                      run_info={"fuse": []})
    result = _finish(tasks, [spec], results, [], seed, stats, output, score)
    for task in tasks:
        made = Path(output) / "predictions" / spec.name / f"{task.name}.predict"
        if made.is_file():
            shutil.copyfile(made, Path(output) / f"{task.name}.predict")
    return _with_report(result, report)


def _with_report(result: RunResult, report: bool | str | Path) -> RunResult:
    """``result`` after writing its HTML report when ``report`` asks for one."""
    if report is False or report is None:
        return result
    from gen_measures.html_report import REPORT_NAME, write_report

    if report is True:
        if result.output is None:
            raise GenMeasuresError("report=True needs an output folder; pass a path for the report instead")
        report = result.output / REPORT_NAME
    result.files.append(write_report(result, report))
    return result


def export(output: str | Path = DEFAULT_OUTPUT, *, score: bool = True) -> RunResult:
    """Write ``results.csv`` and the ``.predict`` files of ``output`` from its store (e.g. after a killed run).

    The rows are those the newest run asked for (its tasks, measures, sample size and seed);
    its fusion presets are recomputed and the tasks with reference metrics scored.
    """
    return _finish(*_stored_run(output), output, score)


def load(output: str | Path = DEFAULT_OUTPUT, *, score: bool = True) -> RunResult:
    """The newest run stored in ``output`` as a :class:`RunResult`, without writing anything.

    As :func:`export` (same rows, fusion and scores), for reports and notebooks.
    """
    result = _finish(*_stored_run(output), None, score)
    result.output = Path(output)
    return result


def report(output: str | Path = DEFAULT_OUTPUT, path: str | Path | None = None, *, progress: bool = False) -> Path:
    """Write the HTML report of the run stored in ``output`` (default ``output/report.html``); returns its path.

    See :mod:`gen_measures.html_report` for what it shows.
    """
    from gen_measures.html_report import REPORT_NAME, write_report

    return write_report(load(output), Path(output) / REPORT_NAME if path is None else path, progress=progress)


def _stored_run(output: str | Path):
    """``(tasks, specs, results, fuse, seed, stats)`` of the newest run in ``output``'s store."""
    from gen_measures.io.pgdl import open_task
    from gen_measures.registry import get_measure, load_plugin_file
    from gen_measures.runner import RunStats, read_results
    from gen_measures.runner.store import ResultStore

    with ResultStore(output, create=False) as store:
        run_info = store.last_run()
    if run_info is None:
        from gen_measures.runner.store import StoreError

        raise StoreError(f"{output}: the results store holds no run")
    params = run_info["params"]
    for path in params.get("plugins", []):
        load_plugin_file(path)
    if params.get("submissions"):
        from gen_measures.submissions.ingest import submission_spec

        for folder in params["submissions"].values():
            submission_spec(folder)
    tasks = [open_task(p, r) for p, r in zip(params["tasks"], params.get("references") or [None] * len(params["tasks"]))]
    specs = [get_measure(m) for m in params["measures"]]
    results = read_results(output)
    stats = RunStats(total=len(results), reused=len(results), output=Path(output))
    return tasks, specs, results, params.get("fuse", []), int(params["seed"]), stats


def check_presets(fuse: str | Iterable[str] | None) -> list[str]:
    """The fusion preset names of ``fuse``; an unknown name is an error naming it and the known ones."""
    from gen_measures.errors import UnknownMeasureError, close_matches_hint
    from scoring.fusion import PRESETS

    names = _preset_names(fuse)
    for name in names:
        if name not in PRESETS:
            raise UnknownMeasureError(f"--fuse: unknown fusion preset {name!r}.{close_matches_hint(name, PRESETS)} "
                                      f"Known presets: {', '.join(sorted(PRESETS))}; '' for none.")
    return names


def _preset_names(fuse: str | Iterable[str] | None) -> list[str]:
    if isinstance(fuse, str):
        return [p.strip() for p in fuse.split(",") if p.strip()]
    return [p.strip() for p in (fuse or []) if p.strip()]


def _finish(tasks, specs, results, fuse_names, seed, stats, output, score) -> RunResult:
    """Fuse, rewrite the derived files from ``results`` and score."""
    from gen_measures.io.results import write_layer_values, write_predictions, write_results_csv

    directions = {s.name: s.direction for s in specs}
    fused = fuse_presets(results, fuse_names, directions, seed)
    directions.update({name: 1 for name in fused["measure"].unique()})
    combined = pd.concat([results, fused], ignore_index=True) if len(fused) else results
    files: list[Path] = []
    out = None
    if output is not None:
        out = Path(output)
        # derived files describe this run only: the predictions folder is replaced whole
        files.append(write_results_csv(results, out))
        files.extend(p for p in [write_layer_values(results, out)] if p is not None)
        files.extend(write_predictions(combined, out))
    scores = score_run(combined, tasks, directions) if score else pd.DataFrame()
    return RunResult(tasks=tasks, specs=specs, results=results, fused=fused, scores=scores, output=out, files=files,
                     stats=stats)
