"""What ``gen-measures inspect`` shows: models, layers, parameters, grid and gaps of a task."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from gen_measures.errors import GenMeasuresError
from scoring.model_configs import GridReport


@dataclass
class TaskSummary:
    name: str
    path: str
    models: pd.DataFrame  # index model id; columns layers, params, hyperparameters, train_acc, test_acc, gap, error
    grid: GridReport | None
    n_train: int | None
    n_test: int | None
    input_shape: tuple | None


def summarize_task(task, read_data: bool = True) -> TaskSummary:
    """Build every model of ``task`` (no weights needed) and collect its description.

    A model that cannot be built gets its error in the ``error`` column instead of stopping.
    """
    from gen_measures.io.keras_models import load_model_from_config
    from gen_measures.io.tfrecords import shard_paths

    ref = task.read_reference()
    rows = {}
    input_shape = None
    for mid in task.model_ids:
        row: dict = {"layers": "", "params": float("nan"), "error": ""}
        try:
            model = load_model_from_config(task.config_path(mid))
            row["layers"] = " ".join(type(layer).__name__ for layer in model.layers)
            row["params"] = int(model.count_params())
            input_shape = tuple(model.input_shape[1:])
        except GenMeasuresError as exc:
            row["error"] = str(exc)
        if ref is not None and mid in ref.hparams:
            row.update(ref.hparams[mid])
            row.update({k: v for k, v in ref.metrics[mid].items() if k in ("train_acc", "test_acc")})
            if "train_acc" in row and "test_acc" in row:
                row["gap"] = row["train_acc"] - row["test_acc"]
        rows[mid] = row
    counts = {}
    if read_data:
        import tensorflow as tf

        for split in ("train", "test"):
            try:
                files = [str(p) for p in shard_paths(task.split_dir(split))]
                counts[split] = int(sum(1 for _ in tf.data.TFRecordDataset(files)))
            except GenMeasuresError:
                counts[split] = None
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "model"
    return TaskSummary(
        name=task.name,
        path=str(task.path),
        models=frame,
        grid=ref.grid_report() if ref is not None else None,
        n_train=counts.get("train"),
        n_test=counts.get("test"),
        input_shape=input_shape,
    )
