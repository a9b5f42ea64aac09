"""The training-curves file of a model: ``model_<id>/training_curves.csv``.

Written by :class:`gen_measures.callbacks.FeatureConvergence` (``csv_path=``) and by
``gen-measures make-zoo --track``; read back, for a whole task, by :func:`read_training_curves`.

Format (*wide*, one row per training epoch, the layout of Keras' ``CSVLogger``): a column
``epoch`` (the number of epochs completed, 1 for the first epoch) and one column per curve,
named as in ``model.fit(...).history`` (``pvector_angle_to_data``, ``pvector_angle_to_previous``,
``pvector_angle_to_final``, ``saturation/<layer name>``); values in full precision (``repr``),
an empty field for NaN (an epoch the callback did not track). Wide because one model's curves
share their epochs; :func:`read_training_curves` returns the tidy long form.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from gen_measures.errors import TaskFormatError
from gen_measures.io.atomic import atomic_path
from scoring.model_configs import canonical_model_id

__all__ = ["CURVE_COLUMNS", "TRAINING_CURVES_FILE", "read_curves_csv", "read_training_curves", "write_curves_csv"]

#: File name of a model's training curves inside its ``model_<id>/`` folder.
TRAINING_CURVES_FILE = "training_curves.csv"
#: Columns of :func:`read_training_curves`.
CURVE_COLUMNS = ("task", "model", "epoch", "curve", "value")


def write_curves_csv(path: str | Path, epochs, curves: dict[str, list[float]]) -> Path:
    """Write ``curves`` (curve name -> one value per epoch) as a wide CSV, atomically.

    ``epochs`` are the epoch numbers of the rows. The parent folder is created if needed; the
    file is written to a temporary name and moved into place, so a reader never sees half a file.
    """
    path = Path(path)
    frame = pd.DataFrame({"epoch": np.asarray(epochs, dtype=np.int64), **{k: np.asarray(v, dtype=np.float64) for k, v in curves.items()}})
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    return path


def read_curves_csv(path: str | Path) -> pd.DataFrame:
    """One model's curves file as a tidy frame ``(epoch, curve, value)``, epochs then curves in file order.

    Raises
    ------
    TaskFormatError
        The file is not a CSV with an integer ``epoch`` column and numeric curve columns
        (the message names the file).
    """
    path = Path(path)
    try:
        wide = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise TaskFormatError(f"{path}: not a readable training-curves CSV ({str(exc).strip() or type(exc).__name__})") from None
    if "epoch" not in wide.columns:
        raise TaskFormatError(f"{path}: no 'epoch' column (columns: {list(wide.columns)[:6]}); "
                              f"expected the {TRAINING_CURVES_FILE} written by FeatureConvergence")
    epochs = pd.to_numeric(wide["epoch"], errors="coerce")
    if epochs.isna().any() or (epochs != np.round(epochs)).any():
        raise TaskFormatError(f"{path}: column 'epoch' must hold integers, got {wide['epoch'].tolist()[:6]}")
    curves = [c for c in wide.columns if c != "epoch"]
    bad = [c for c in curves if not pd.api.types.is_numeric_dtype(wide[c])]
    if bad:
        raise TaskFormatError(f"{path}: curve column(s) {bad[:3]} hold non-numeric values")
    values = wide[curves].to_numpy(dtype=np.float64)
    return pd.DataFrame({
        "epoch": np.repeat(epochs.to_numpy(dtype=np.int64), len(curves)),
        "curve": np.tile(np.asarray(curves, dtype=object), len(wide)),
        "value": values.reshape(-1),
    })


def read_training_curves(task_dir: str | Path) -> pd.DataFrame:
    """Every model's training curves of one task, tidy: columns :data:`CURVE_COLUMNS`.

    Reads ``<task_dir>/model_<id>/training_curves.csv`` (written by ``gen-measures make-zoo
    --track``); ``task`` is the folder name, ``model`` the bare id (``"0"``). Models without the
    file are skipped; a task without any gives an empty frame with the same columns.

    Raises
    ------
    TaskFormatError
        A curves file is malformed (the message names it); see :func:`read_curves_csv`.
    """
    task_dir = Path(task_dir)
    frames = []
    for path in sorted(task_dir.glob(f"model_*/{TRAINING_CURVES_FILE}"), key=_model_order):
        one = read_curves_csv(path)
        one.insert(0, "model", canonical_model_id(path.parent.name))
        one.insert(0, "task", task_dir.name)
        frames.append(one)
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in zip(CURVE_COLUMNS, (object, object, np.int64, object, np.float64))})
    return pd.concat(frames, ignore_index=True)


def _model_order(path: Path) -> tuple:
    """Numeric ids in numeric order (model_2 before model_10), others after, by name."""
    mid = canonical_model_id(path.parent.name)
    return (0, int(mid), "") if mid.isdigit() else (1, 0, mid)
