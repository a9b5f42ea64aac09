"""The one place that writes run results: ``results.csv``, ``layer_values.csv`` and competition
``.predict`` files; and the tidy views of the results' details.

Every file is written atomically (:mod:`gen_measures.io.atomic`) and the ``predictions`` folder
is replaced as a whole: a run killed while it exports, or two runs exporting into one folder,
leave each file either as it was or whole, never half written.

Pure Python + pandas (no TensorFlow).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from gen_measures.io.atomic import atomic_folder, atomic_path
from scoring.files import write_predict

RESULTS_NAME = "results.csv"
LAYER_VALUES_NAME = "layer_values.csv"
PREDICTIONS_DIR = "predictions"
#: Columns of :func:`layer_values` (``depth``: 0-based position of the layer in the model's order).
LAYER_COLUMNS = ["task", "model", "measure", "layer", "depth", "value"]
#: Columns of :func:`topk_angle_values`.
TOPK_COLUMNS = ["task", "model", "k", "value"]


def write_results_csv(results: pd.DataFrame, output_dir: str | Path) -> Path:
    """Write the tidy table (``task, model, measure, value, status, seconds, message``)."""
    path = Path(output_dir) / RESULTS_NAME
    cols = [c for c in ["task", "model", "measure", "value", "status", "seconds", "message"] if c in results]
    with atomic_path(path) as tmp:
        results[cols].to_csv(tmp, index=False, float_format="%.17g")
    return path


def write_predictions(results: pd.DataFrame, output_dir: str | Path) -> list[Path]:
    """Write ``predictions/<measure>/<task>.predict`` with :func:`scoring.files.write_predict`,
    replacing the whole ``predictions`` folder (the files describe ``results`` only: a measure
    with no value there has no file).

    Only successfully computed values are written: rows whose status is not ``ok`` are left
    out here, and non-finite values by ``write_predict``'s NaN policy; a model without a value
    is absent from the file (the scorer then names it as missing).
    """
    folder = Path(output_dir) / PREDICTIONS_DIR
    relative = []
    ok = results[results["status"] == "ok"]
    with atomic_folder(folder) as tmp:
        for (measure, task), group in ok.groupby(["measure", "task"], sort=True):
            name = Path(str(measure)) / f"{task}.predict"
            write_predict(tmp / name, {str(m): float(v) for m, v in zip(group["model"], group["value"])})
            relative.append(name)
    return [folder / name for name in relative]


def layer_values(results: pd.DataFrame) -> pd.DataFrame:
    """Per-layer values as a tidy frame (columns :data:`LAYER_COLUMNS`).

    Read from ``details["per_layer"]`` (``{layer name: value}`` in depth order) of every row of
    ``results`` that has one (``saturation``, ``compression``, ``discrimination`` and any measure
    that follows the convention); rows without it contribute nothing. ``results`` is a frame of
    :func:`gen_measures.runner.read_results` (it must have a ``details`` column).
    """
    rows = []
    if "details" in results:
        for task, model, measure, details in zip(results["task"], results["model"], results["measure"], results["details"]):
            per_layer = details.get("per_layer") if isinstance(details, dict) else None
            if isinstance(per_layer, dict):
                rows += [(task, str(model), measure, str(layer), depth, _number(v))
                         for depth, (layer, v) in enumerate(per_layer.items())]
    return pd.DataFrame(rows, columns=LAYER_COLUMNS)


def topk_angle_values(results: pd.DataFrame) -> pd.DataFrame:
    """The ``pvector_angle`` rows' ``details["topk_angles"]`` as a tidy frame (columns :data:`TOPK_COLUMNS`)."""
    rows = []
    if "details" in results:
        sel = results[results["measure"] == "pvector_angle"]
        for task, model, details in zip(sel["task"], sel["model"], sel["details"]):
            angles = details.get("topk_angles") if isinstance(details, dict) else None
            if isinstance(angles, list):
                rows += [(task, str(model), k, _number(v)) for k, v in enumerate(angles, start=1)]
    return pd.DataFrame(rows, columns=TOPK_COLUMNS)


def write_layer_values(results: pd.DataFrame, output_dir: str | Path) -> Path | None:
    """Write ``layer_values.csv`` (:func:`layer_values`); nothing (``None``) when no row has per-layer values."""
    frame = layer_values(results)
    path = Path(output_dir) / LAYER_VALUES_NAME
    if not len(frame):
        path.unlink(missing_ok=True)
        return None
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.17g")
    return path


def _number(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")
