"""Files of the PGDL scoring program: ``.predict`` inputs, reference folders, score outputs.

* ``<task>.predict``: JSON object ``{"model_<id>": value}`` (bare ids accepted); a value is a
  number or the string ``"EXCEEDED"`` (the model ran out of the time budget). ``null`` and
  ``NaN`` mark a failed model.
* Reference folder: ``REFERENCE_DIR/reference_data/<task>/model_configs.json`` (the official
  layout, which the official program detects by the ``reference_data`` entry) or
  ``REFERENCE_DIR/<task>/model_configs.json``; a competition root with ``input_data/<task>``
  works too.
* Prediction folder: ``<task>.predict`` files (one anonymous measure, named
  :data:`SUBMISSION`), or a ``gen-measures run`` output ``predictions/<measure>/<task>.predict``
  (also accepted: the ``predictions`` folder itself).
* ``scores.txt`` as the official program writes it: one ``task_<name>_score: %0.12f`` line per
  task (``-0.999999`` when the task could not be scored), ``task_average_score: %0.12f``
  (100 x mean over the scored tasks, 0 when any prediction was ``EXCEEDED``) and
  ``Duration: 0`` (the official program always ends so: its metadata lookup fails). Tasks are
  written in sorted order (the official program used ``os.listdir`` order). Unlike the official
  program, which omits the line of an ``EXCEEDED`` task, its line is written with score 0.
* ``scores.csv`` / ``scores.json``: the tidy table (``measure, task, metric, value``).

References
----------
* PGDL starting kit, ``scoring_program/score.py`` (Apache-2.0, Y. Jiang, 2020): the three
  positional arguments and the ``scores.txt`` format reproduced here (no code copied).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from scoring.errors import MissingFileError, ScoringError
from scoring.jsonfile import read_json
from scoring.model_configs import MODEL_CONFIGS_NAME, canonical_model_id, find_model_configs, prediction_key

__all__ = [
    "EXCEEDED",
    "MISSING_SCORE",
    "SUBMISSION",
    "Prediction",
    "find_predictions",
    "find_references",
    "format_scores_txt",
    "read_predict",
    "write_predict",
    "write_score_tables",
    "write_scores_txt",
]

EXCEEDED = "EXCEEDED"
#: The official program's score of a task that could not be scored.
MISSING_SCORE = -0.999999
#: Measure name of a bare folder of ``<task>.predict`` files.
SUBMISSION = "submission"
PREDICT_SUFFIX = ".predict"


@dataclass
class Prediction:
    """Contents of one ``.predict`` file.

    Attributes
    ----------
    path : the file.
    values : bare model id -> float (NaN for ``null``/``NaN`` entries).
    exceeded : bare ids whose value is ``"EXCEEDED"``.
    """

    path: Path | None
    values: dict[str, float] = field(default_factory=dict)
    exceeded: list[str] = field(default_factory=list)


def read_predict(path: str | Path) -> Prediction:
    """Read a ``.predict`` JSON file.

    Raises
    ------
    MissingFileError
        The file does not exist.
    ScoringError
        Not a JSON object, a model id appearing twice (``"3"`` and ``"model_3"``), or values that
        are neither numbers, ``null`` nor ``"EXCEEDED"`` (the models are named).
    """
    path = Path(path)
    raw = read_json(path, ScoringError, "prediction file")
    if not isinstance(raw, dict):
        raise ScoringError(f"{path}: expected a JSON object {{\"model_<id>\": value}}, got {type(raw).__name__}")
    out = Prediction(path=path)
    bad: list[str] = []
    for key, value in raw.items():
        mid = canonical_model_id(key)
        if mid in out.values or mid in out.exceeded:
            raise ScoringError(f"{path}: model id {mid!r} appears twice (as {key!r} and another spelling)")
        if value == EXCEEDED:
            out.exceeded.append(mid)
            out.values[mid] = math.nan
        elif value is None:
            out.values[mid] = math.nan
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out.values[mid] = float(value)
        else:
            bad.append(f"{key}={value!r}")
    if bad:
        shown = ", ".join(bad[:10]) + (f" (+{len(bad) - 10} more)" if len(bad) > 10 else "")
        raise ScoringError(f"{path}: non-numeric predictions for models {shown}; expected numbers or \"EXCEEDED\"")
    for mid in out.exceeded:
        del out.values[mid]
    return out


def write_predict(path: str | Path, values: Mapping[str, float | str]) -> Path:
    """Write a ``.predict`` file, JSON ``{"model_<id>": value}`` (parent folders created).

    Keys may be bare ids (``"3"``) or prefixed (``"model_3"``); they are written prefixed, in
    the order given. NaN policy, the one of every ``.predict`` writer of the toolkit
    (``gen-measures run`` writes through this function): a value that is not a finite number
    (NaN, infinity, ``None``) is **not written**, so the model is absent from the file and the
    scorer names it as missing (:func:`read_predict` still accepts ``null`` / ``NaN`` entries
    from other writers). ``"EXCEEDED"`` is written as it is.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data: dict[str, float | str] = {}
    for key, value in values.items():
        if isinstance(value, str) and value == EXCEEDED:
            data[prediction_key(key)] = EXCEEDED
        elif isinstance(value, (int, float)) and math.isfinite(value):
            data[prediction_key(key)] = float(value)
    path.write_text(json.dumps(data, indent=1) + "\n")
    return path


def find_references(reference_dir: str | Path) -> dict[str, Path]:
    """Task name -> ``model_configs.json`` under ``reference_dir`` (any supported layout).

    Raises
    ------
    MissingFileError
        ``reference_dir`` is not a folder or holds no reference file.
    """
    root = Path(reference_dir)
    if not root.is_dir():
        raise MissingFileError(f"{root}: reference folder not found")
    base = root / "reference_data" if (root / "reference_data").is_dir() else root
    found: dict[str, Path] = {}
    if (base / MODEL_CONFIGS_NAME).is_file():
        found[base.name] = base / MODEL_CONFIGS_NAME
    for sub in sorted(p for p in base.iterdir() if p.is_dir()):
        if (sub / MODEL_CONFIGS_NAME).is_file():
            found[sub.name] = sub / MODEL_CONFIGS_NAME
    if not found and (root / "input_data").is_dir():
        for sub in sorted(p for p in (root / "input_data").iterdir() if p.is_dir()):
            ref = find_model_configs(sub)
            if ref is not None:
                found[sub.name] = ref
    if not found:
        raise MissingFileError(
            f"{root}: no model_configs.json found (looked in reference_data/<task>/, <task>/ and input_data/<task>/)"
        )
    return found


def _predict_files(folder: Path) -> dict[str, Path]:
    return {p.name[: -len(PREDICT_SUFFIX)]: p for p in sorted(folder.glob("*" + PREDICT_SUFFIX)) if p.is_file()}


def find_predictions(prediction_dir: str | Path) -> dict[str, dict[str, Path]]:
    """Measure -> task -> ``.predict`` path.

    ``<task>.predict`` files directly in ``prediction_dir`` form the single measure
    :data:`SUBMISSION`; otherwise every ``predictions/<measure>/`` (or ``<measure>/``) subfolder
    holding ``.predict`` files is one measure.

    Raises
    ------
    MissingFileError
        ``prediction_dir`` is not a folder or holds no ``.predict`` file in any layout.
    """
    root = Path(prediction_dir)
    if not root.is_dir():
        raise MissingFileError(f"{root}: prediction folder not found")
    direct = _predict_files(root)
    if direct:
        return {SUBMISSION: direct}
    base = root / "predictions" if (root / "predictions").is_dir() else root
    found = {sub.name: files for sub in sorted(p for p in base.iterdir() if p.is_dir()) if (files := _predict_files(sub))}
    if not found:
        raise MissingFileError(
            f"{root}: no .predict files found (looked for <task>.predict and predictions/<measure>/<task>.predict)"
        )
    return found


def format_scores_txt(task_scores: Mapping[str, float | None], *, exceeded: bool = False) -> str:
    """The official ``scores.txt`` text.

    Parameters
    ----------
    task_scores : task name -> official CMI (``None`` or NaN = could not be scored, written
        as ``-0.999999`` and left out of the average).
    exceeded : a prediction was ``"EXCEEDED"``: the average is 0.
    """
    lines, scored = [], []
    for task in sorted(task_scores):
        score = task_scores[task]
        if score is None or (isinstance(score, float) and math.isnan(score)):
            score = MISSING_SCORE
        else:
            scored.append(float(score))
        lines.append(f"task_{task}_score: {float(score):0.12f}")
    average = 0.0 if exceeded else (100.0 * sum(scored) / len(scored) if scored else math.nan)
    lines.append(f"task_average_score: {average:0.12f}")
    lines.append("Duration: 0")
    return "\n".join(lines) + "\n"


def write_scores_txt(path: str | Path, task_scores: Mapping[str, float | None], *, exceeded: bool = False) -> Path:
    """Write :func:`format_scores_txt` to ``path`` (parents created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(format_scores_txt(task_scores, exceeded=exceeded))
    return path


def write_score_tables(table: pd.DataFrame, output_dir: str | Path, stem: str = "scores") -> tuple[Path, Path]:
    """Write the tidy table as ``<stem>.csv`` and ``<stem>.json`` (records; NaN as ``null``)."""
    missing = [c for c in ("measure", "task", "metric", "value") if c not in table.columns]
    if missing:
        raise ScoringError(f"table: missing column(s) {missing}; expected a tidy measure/task/metric/value table")
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = out / f"{stem}.csv", out / f"{stem}.json"
    table.to_csv(csv_path, index=False)
    records = [
        {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
        for row in table[["measure", "task", "metric", "value"]].to_dict("records")
    ]
    json_path.write_text(json.dumps(records, indent=1) + "\n")
    return csv_path, json_path
