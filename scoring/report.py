"""Score measures against reference gaps: every metric, for one task or a whole results table.

This is the entry point of ``gen-measures score`` and of the score table that ends
``gen-measures run``:

* :func:`evaluate`: all metrics of one measure on one task (a ``dict[str, float]``);
* :func:`score_results`: a tidy results table (``task, model, measure, value``) scored against
  the reference of every task;
* :func:`score_directories`: the official scoring program's ``REFERENCE_DIR PREDICTION_DIR
  OUTPUT_DIR`` semantics, writing ``scores.txt`` and the tidy ``scores.csv`` / ``scores.json``;
* :func:`format_score_table`: a compact terminal table.

Metrics (keys of :func:`evaluate`; :func:`metric_names` lists them for a reference):

``n_models`` (scored), ``grid_coverage`` (observed / possible grid cells),
``cmi_official`` (PGDL leaderboard CMI; NaN with a warning when the scored models do not form a
complete grid), ``cmi_clean`` (Jiang et al., min over |S| = 2), ``cmi_clean_s0``,
``cmi_clean_s1``, ``cmi_percentile`` and ``cmi_p_value`` (permutation baseline of
``cmi_official``, or of ``cmi_clean`` when the official score is NaN), ``kendall_tau_a``,
``kendall_tau_b``, ``granulated_psi``, ``psi_<hparam>``, ``sign_error_mean``,
``sign_error_p90``, ``sign_error_max`` and ``sign_error_{mean,p90,max}_<hparam>``.

The measure's direction is applied once, by :func:`scoring.ranking.rank_models`; every metric is
computed on the resulting ranks.

References
----------
* PGDL starting kit, ``scoring_program/score.py`` (Apache-2.0, Y. Jiang, 2020).
* See :mod:`scoring.cmi`, :mod:`scoring.kendall`, :mod:`scoring.sign_error`,
  :mod:`scoring.permutation` for the metrics' own references.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scoring.model_configs import ModelConfigs, canonical_model_id, read_model_configs
from scoring._pairs import gap_pairs
from scoring._validate import MIN_MODELS, _fmt_ids
from scoring.cmi import OfficialCMIScorer, check_official_grid, clean_result, official_result
from scoring.errors import DegenerateInputWarning, GridError, ScoringError
from scoring.files import (
    EXCEEDED,
    SUBMISSION,
    find_predictions,
    find_references,
    read_predict,
    write_score_tables,
    write_scores_txt,
)
from scoring.kendall import granulated_kendall, kendall_tau_a, kendall_tau_b
from scoring.permutation import null_percentile
from scoring.ranking import LARGER_GAP, check_direction, rank_models
from scoring.sign_error import sign_error

__all__ = [
    "DEFAULT_TABLE_METRICS",
    "evaluate",
    "format_score_table",
    "metric_names",
    "score_directories",
    "score_results",
]

log = logging.getLogger(__name__)

#: Columns of :func:`format_score_table` (metric -> short header).
DEFAULT_TABLE_METRICS: dict[str, str] = {
    "cmi_official": "cmi",
    "cmi_clean": "cmi_clean",
    "cmi_percentile": "pct",
    "kendall_tau_a": "tau_a",
    "granulated_psi": "psi",
    "sign_error_mean": "sign_err",
}

_BASE_METRICS = (
    "n_models",
    "grid_coverage",
    "cmi_official",
    "cmi_clean",
    "cmi_clean_s0",
    "cmi_clean_s1",
    "cmi_percentile",
    "cmi_p_value",
    "kendall_tau_a",
    "kendall_tau_b",
    "granulated_psi",
)
_SIGN_STATS = ("mean", "p90", "max")


def metric_names(reference: ModelConfigs) -> list[str]:
    """The keys :func:`evaluate` returns for ``reference`` (in order)."""
    names = list(_BASE_METRICS)
    names += [f"psi_{h}" for h in reference.hparam_names]
    names += [f"sign_error_{s}" for s in _SIGN_STATS]
    names += [f"sign_error_{s}_{h}" for h in reference.hparam_names for s in _SIGN_STATS]
    return names


def _nan_metrics(reference: ModelConfigs, n_models: int) -> dict[str, float]:
    out = {k: math.nan for k in metric_names(reference)}
    out["n_models"] = float(n_models)
    return out


def _split_values(values: Mapping[str, Any], source: str) -> tuple[dict[str, float], list[str]]:
    """Canonical ids -> floats (NaN kept), and the ids marked ``EXCEEDED``; other types raise."""
    if isinstance(values, pd.Series):
        values = values.to_dict()
    if not isinstance(values, Mapping):
        raise ScoringError(f"{source}: expected a mapping model id -> value, got {type(values).__name__}")
    out: dict[str, float] = {}
    exceeded: list[str] = []
    bad: list[str] = []
    for key, v in values.items():
        mid = canonical_model_id(key)
        if mid in out or mid in exceeded:
            raise ScoringError(f"{source}: model id {mid!r} given twice (as {key!r} and another spelling)")
        if isinstance(v, str) and v == EXCEEDED:
            exceeded.append(mid)
        elif v is None:
            out[mid] = math.nan
        elif isinstance(v, (bool, np.bool_, str, bytes)):
            bad.append(f"{key}={v!r}")
        else:
            try:
                out[mid] = float(v)
            except (TypeError, ValueError):
                bad.append(f"{key}={v!r}")
    if bad:
        raise ScoringError(f"{source}: non-numeric values for models {_fmt_ids(bad)}; expected numbers")
    return out, exceeded


def _evaluate(
    values: Mapping[str, Any],
    reference: ModelConfigs,
    direction: int,
    *,
    allow_partial: bool,
    n_permutations: int,
    seed: int,
    source: str,
) -> dict[str, float]:
    direction = check_direction(direction)
    if isinstance(n_permutations, bool) or not isinstance(n_permutations, (int, np.integer)) or n_permutations < 0:
        raise ScoringError(f"n_permutations: expected an integer >= 0, got {n_permutations!r}")
    vals, exceeded = _split_values(values, source)
    ids = reference.model_ids
    if exceeded:
        warnings.warn(
            f"{source}: {len(exceeded)} model(s) {_fmt_ids(exceeded)} marked EXCEEDED (time budget); "
            "official semantics: the task scores 0 and the submission's average is 0",
            DegenerateInputWarning,
            stacklevel=3,
        )
        out = _nan_metrics(reference, len(ids))
        out["cmi_official"] = 0.0
        return out
    missing = [i for i in ids if i not in vals]
    nonfinite = [i for i in ids if i in vals and not math.isfinite(vals[i])]
    unknown = [k for k in vals if k not in set(ids)]
    problems = []
    if missing:
        problems.append(f"no prediction for models {_fmt_ids(missing)}")
    if nonfinite:
        problems.append(f"NaN or infinite values for models {_fmt_ids(nonfinite)}")
    if unknown:
        problems.append(f"models {_fmt_ids(unknown)} are not in the reference {reference.path or ''}".rstrip())
    if problems:
        text = f"{source}: " + "; ".join(problems)
        if not allow_partial:
            raise ScoringError(text + ". Pass allow_partial=True (--allow-partial) to score the covered models only")
        warnings.warn(text + "; scoring the covered models only", DegenerateInputWarning, stacklevel=3)
    covered = [i for i in ids if i in vals and math.isfinite(vals[i])]
    if len(covered) < MIN_MODELS:
        raise ScoringError(f"{source}: {len(covered)} scorable model(s); scoring needs at least {MIN_MODELS}")

    ranks = np.asarray(rank_models(np.array([vals[i] for i in covered]), direction))
    gaps = reference.gaps().reindex(covered).to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(gaps)):
        raise ScoringError(f"{reference.path or 'reference'}: non-finite generalization gaps")
    frame = reference.hparams_frame().loc[covered]
    pv = reference.possible_values
    out: dict[str, float] = {"n_models": float(len(covered))}

    pairs = gap_pairs(gaps)
    official_scorer = None
    try:
        check_official_grid(frame, pv)
        official_scorer = OfficialCMIScorer(gaps, frame, pv, pairs)
    except GridError as exc:
        warnings.warn(f"{source}: cmi_official is NaN: {exc}", DegenerateInputWarning, stacklevel=3)
    clean, clean_scorer = clean_result(ranks, gaps, frame, pv, pairs)
    out["grid_coverage"] = clean.coverage["coverage"]
    out["cmi_official"] = official_result(official_scorer, ranks).score if official_scorer else math.nan
    out["cmi_clean"] = clean.score
    out["cmi_clean_s0"] = clean.s0
    out["cmi_clean_s1"] = clean.s1

    out["cmi_percentile"] = out["cmi_p_value"] = math.nan
    if n_permutations > 0:
        if official_scorer is not None:
            observed, scorer = out["cmi_official"], official_scorer
        else:
            observed, scorer = clean.score, clean_scorer
        if not math.isnan(observed):
            out["cmi_percentile"], out["cmi_p_value"] = null_percentile(scorer, ranks, observed, int(n_permutations), seed)

    out["kendall_tau_a"] = kendall_tau_a(ranks, gaps)
    out["kendall_tau_b"] = kendall_tau_b(ranks, gaps)
    psi = granulated_kendall(ranks, gaps, frame.reset_index(drop=True))
    out["granulated_psi"] = psi.psi
    out.update({f"psi_{h}": psi.psi_i.get(h, math.nan) for h in reference.hparam_names})
    se = sign_error(ranks, gaps, frame.reset_index(drop=True))
    for s in _SIGN_STATS:
        out[f"sign_error_{s}"] = float(se.summary.loc["overall", s])
    for h in reference.hparam_names:
        for s in _SIGN_STATS:
            out[f"sign_error_{s}_{h}"] = float(se.summary.loc[h, s])
    return {k: float(out.get(k, math.nan)) for k in metric_names(reference)}


def evaluate(
    values: Mapping[str, float],
    reference: ModelConfigs,
    direction: int = LARGER_GAP,
    *,
    allow_partial: bool = False,
    n_permutations: int = 200,
    seed: int = 0,
) -> dict[str, float]:
    """Every metric of one measure on one task.

    Parameters
    ----------
    values : model id (bare ``"3"`` or ``"model_3"``) -> measure value. The string
        ``"EXCEEDED"`` (time budget) gives the official semantics: ``cmi_official = 0``, the other
        metrics NaN, with a warning.
    reference : the task's :class:`~scoring.model_configs.ModelConfigs` (with gaps).
    direction : ``+1`` if a higher value predicts a larger gap, ``-1`` otherwise.
    allow_partial : score the models with a finite value only (warning) instead of raising
        when some are missing, NaN/inf or unknown to the reference.
    n_permutations : permutations of the CMI baseline (0 skips it: percentile NaN).
    seed : seed of the permutations.

    Returns
    -------
    dict[str, float]
        The metrics listed in the module docstring, in :func:`metric_names` order.

    Raises
    ------
    ScoringError
        Missing, non-finite or unknown models (without ``allow_partial``; the ids are named),
        non-numeric values, fewer than 3 scorable models, a bad ``direction``.
    """
    return _evaluate(
        values, reference, direction, allow_partial=allow_partial, n_permutations=n_permutations, seed=seed, source="values"
    )


def _is_finite_number(value: Any) -> bool:
    if value is None or isinstance(value, (bool, np.bool_, str, bytes)):
        return False
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _tidy(measure: str, task: str, metrics: Mapping[str, float]) -> list[dict[str, Any]]:
    return [{"measure": measure, "task": task, "metric": k, "value": float(v)} for k, v in metrics.items()]


def score_results(
    results: pd.DataFrame,
    references: Mapping[str, ModelConfigs],
    directions: Mapping[str, int],
    *,
    allow_partial: bool = False,
    n_permutations: int = 200,
    seed: int = 0,
) -> pd.DataFrame:
    """Score a tidy results table against the references.

    Parameters
    ----------
    results : columns ``task, model, measure, value`` (bare or prefixed model ids; NaN value =
        the measure failed on that model).
    references : task -> reference (tasks without one, or without gaps, are skipped with a
        warning).
    directions : measure -> ``+1`` / ``-1`` (every measure in ``results`` needs one).
    allow_partial : score a measure on the models it covers; otherwise a measure/task with
        missing or NaN values gets NaN metrics (and its ``n_models``) with a warning.
    n_permutations, seed : the CMI permutation baseline (see :func:`evaluate`).

    Returns
    -------
    pandas.DataFrame
        *Tidy*: columns ``measure, task, metric, value``, one row per metric (measures in
        order of appearance, tasks sorted). Pivot with
        ``df.pivot_table(index=["measure", "task"], columns="metric", values="value")``.

    Raises
    ------
    ScoringError
        Missing columns, a measure without direction, duplicated (task, model, measure) rows.
    """
    needed = ["task", "model", "measure", "value"]
    missing_cols = [c for c in needed if c not in results.columns]
    if missing_cols:
        raise ScoringError(f"results: missing column(s) {missing_cols}; expected {needed}")
    frame = results[needed].copy()
    frame["model"] = frame["model"].map(canonical_model_id)
    frame["task"] = frame["task"].astype(str)
    no_dir = [m for m in pd.unique(frame["measure"]) if m not in directions]
    if no_dir:
        raise ScoringError(f"directions: no direction for measure(s) {list(no_dir)}; pass +1 or -1 for each")
    dup = frame.duplicated(["task", "model", "measure"], keep=False)
    if dup.any():
        shown = frame.loc[dup, ["task", "model", "measure"]].drop_duplicates().head(5).to_records(index=False).tolist()
        raise ScoringError(f"results: duplicated (task, model, measure) rows, e.g. {shown}")
    rows: list[dict[str, Any]] = []
    for task in sorted(pd.unique(frame["task"])):
        reference = references.get(task)
        if reference is None or not reference.has_gaps():
            why = "no reference" if reference is None else "a reference without train_acc/test_acc"
            warnings.warn(f"results: task {task!r} has {why}; not scored", DegenerateInputWarning, stacklevel=2)
            continue
        for measure in pd.unique(frame["measure"]):
            part = frame[(frame["task"] == task) & (frame["measure"] == measure)]
            if part.empty:
                continue
            values = dict(zip(part["model"], part["value"]))
            source = f"results[measure={measure!r}, task={task!r}]"
            bad = [i for i in reference.model_ids if not _is_finite_number(values.get(i)) and values.get(i) != EXCEEDED]
            if bad and not allow_partial:
                warnings.warn(
                    f"{source}: no finite value for models {_fmt_ids(bad)}; metrics are NaN "
                    "(allow_partial=True scores the covered models)",
                    DegenerateInputWarning,
                    stacklevel=2,
                )
                metrics = _nan_metrics(reference, len(reference.model_ids) - len(bad))
            else:
                try:
                    metrics = _evaluate(
                        values, reference, directions[measure], allow_partial=allow_partial,
                        n_permutations=n_permutations, seed=seed, source=source,
                    )
                except ScoringError as exc:
                    warnings.warn(f"{exc}; metrics are NaN", DegenerateInputWarning, stacklevel=2)
                    metrics = _nan_metrics(reference, len(reference.model_ids) - len(bad))
            rows.extend(_tidy(str(measure), task, metrics))
    return pd.DataFrame(rows, columns=["measure", "task", "metric", "value"])


def format_score_table(df: pd.DataFrame, metrics: Mapping[str, str] | None = None) -> str:
    """A compact text table: one row per measure, columns task x key metric.

    Parameters
    ----------
    df : the tidy table of :func:`score_results` / :func:`score_directories`.
    metrics : metric -> column header (default :data:`DEFAULT_TABLE_METRICS`).
    """
    metrics = dict(DEFAULT_TABLE_METRICS if metrics is None else metrics)
    if df.empty:
        return "(no scores)"
    part = df[df["metric"].isin(list(metrics))]
    if part.empty:
        return "(none of the metrics " + ", ".join(metrics) + " in the table)"
    wide = part.pivot_table(index="measure", columns=["task", "metric"], values="value", aggfunc="first", dropna=False, sort=False)
    tasks = list(dict.fromkeys(part["task"]))
    cols = [(t, m) for t in sorted(tasks) for m in metrics if (t, m) in wide.columns]
    wide = wide.reindex(columns=pd.MultiIndex.from_tuples(cols, names=["task", "metric"]))
    wide = wide.reindex(list(dict.fromkeys(part["measure"])))

    def fmt(metric: str, x: float) -> str:
        if x is None or (isinstance(x, float) and math.isnan(x)):
            return "-"
        return f"{x:.1f}" if metric == "cmi_percentile" else f"{x:.4f}"

    text = pd.DataFrame(
        {col: [fmt(col[1], x) for x in wide[col]] for col in wide.columns}, index=wide.index
    )
    text.columns = pd.MultiIndex.from_tuples([(t, metrics[m]) for t, m in wide.columns], names=["task", "measure"])
    text.index.name = None
    return text.to_string()


def score_directories(
    reference_dir: str | Path,
    prediction_dir: str | Path,
    output_dir: str | Path,
    *,
    allow_partial: bool = False,
    directions: Mapping[str, int] | None = None,
    n_permutations: int = 200,
    seed: int = 0,
) -> pd.DataFrame:
    """The official scoring program's three arguments: score every prediction folder.

    Parameters
    ----------
    reference_dir : holds ``reference_data/<task>/model_configs.json`` or
        ``<task>/model_configs.json`` (see :func:`scoring.files.find_references`).
    prediction_dir : ``<task>.predict`` files (one measure, named ``"submission"``) or a
        ``gen-measures run`` output with ``predictions/<measure>/<task>.predict``.
    output_dir : created if needed. Receives ``scores.txt`` (single submission) or one
        ``scores_<measure>.txt`` per measure (official format, see :mod:`scoring.files`), and
        the tidy ``scores.csv`` / ``scores.json`` with every metric of every measure and task.
    allow_partial : score the covered models of incomplete predictions (see :func:`evaluate`).
    directions : measure -> ``+1`` / ``-1``; default ``+1`` (a higher value predicts a larger
        gap, as the official program assumes).
    n_permutations, seed : the CMI permutation baseline.

    Returns
    -------
    pandas.DataFrame
        The tidy table (``measure, task, metric, value``) written to ``scores.csv``.

    Raises
    ------
    MissingFileError
        No reference or no prediction files.
    ScoringError
        Invalid predictions (the ``.predict`` file and the models are named).
    """
    refs = find_references(reference_dir)
    preds = find_predictions(prediction_dir)
    directions = dict(directions or {})
    out_dir = Path(output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    references: dict[str, ModelConfigs] = {}
    rows: list[dict[str, Any]] = []
    for measure, files in preds.items():
        extra = sorted(set(files) - set(refs))
        if extra:
            warnings.warn(
                f"{prediction_dir}: predictions for task(s) {extra} (measure {measure!r}) have no reference; ignored",
                DegenerateInputWarning,
                stacklevel=2,
            )
        task_scores: dict[str, float | None] = {}
        exceeded = False
        for task in sorted(refs):
            path = files.get(task)
            if path is None:
                warnings.warn(
                    f"{prediction_dir}: no {task}.predict for measure {measure!r}; task written as not scored",
                    DegenerateInputWarning,
                    stacklevel=2,
                )
                task_scores[task] = None
                continue
            if task not in references:
                references[task] = read_model_configs(refs[task])
            reference = references[task]
            if not reference.has_gaps():
                raise ScoringError(f"{refs[task]}: no train_acc/test_acc metrics; the task cannot be scored")
            pred = read_predict(path)
            values: dict[str, Any] = dict(pred.values)
            values.update({mid: EXCEEDED for mid in pred.exceeded})
            metrics = _evaluate(
                values, reference, directions.get(measure, LARGER_GAP), allow_partial=allow_partial,
                n_permutations=n_permutations, seed=seed, source=str(path),
            )
            exceeded = exceeded or bool(pred.exceeded)
            task_scores[task] = metrics["cmi_official"]
            rows.extend(_tidy(measure, task, metrics))
            log.info("scored %s on %s: cmi_official=%.6f", measure, task, metrics["cmi_official"])
        name = "scores.txt" if list(preds) == [SUBMISSION] else f"scores_{measure}.txt"
        write_scores_txt(out_dir / name, task_scores, exceeded=exceeded)
    table = pd.DataFrame(rows, columns=["measure", "task", "metric", "value"])
    write_score_tables(table, out_dir)
    return table
