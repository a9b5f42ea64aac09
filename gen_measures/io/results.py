"""The one place that writes run results: ``results.csv`` and competition ``.predict`` files.

Pure Python + pandas (no TensorFlow).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from scoring.files import write_predict

RESULTS_NAME = "results.csv"
PREDICTIONS_DIR = "predictions"


def write_results_csv(results: pd.DataFrame, output_dir: str | Path) -> Path:
    """Write the tidy table (``task, model, measure, value, status, seconds, message``)."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / RESULTS_NAME
    cols = [c for c in ["task", "model", "measure", "value", "status", "seconds", "message"] if c in results]
    results[cols].to_csv(path, index=False, float_format="%.17g")
    return path


def write_predictions(results: pd.DataFrame, output_dir: str | Path) -> list[Path]:
    """Write ``predictions/<measure>/<task>.predict`` with :func:`scoring.files.write_predict`.

    Only successfully computed values are written: rows whose status is not ``ok`` are left
    out here, and non-finite values by ``write_predict``'s NaN policy; a model without a value
    is absent from the file (the scorer then names it as missing).
    """
    output_dir = Path(output_dir)
    written = []
    ok = results[results["status"] == "ok"]
    for (measure, task), group in ok.groupby(["measure", "task"], sort=True):
        path = output_dir / PREDICTIONS_DIR / str(measure) / f"{task}.predict"
        written.append(write_predict(path, {str(m): float(v) for m, v in zip(group["model"], group["value"])}))
    return written
