"""The one place where tests build zoos and bad inputs of their own (in temporary folders).

``mlp_task`` writes a small PGDL task of Dense networks on vector data (untrained weights are
enough for the structure tests); the hostile-input helpers take a good task folder and break
one file of it in a stated way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np


def mlp_layers(width: int, n_classes: int) -> list[dict[str, Any]]:
    return [
        {"layer_name": "Dense", "units": width, "activation": "relu"},
        {"layer_name": "Dense", "units": width, "activation": "relu"},
        {"layer_name": "Dense", "units": n_classes},
    ]


def mlp_task(folder: str | Path, n_models: int = 2, n_features: int = 12, n_classes: int = 3, n_train: int = 60,
             seed: int = 0) -> Path:
    """A task of ``n_models`` Dense nets on ``n_features``-dimensional vectors (weights at initialization
    plus a small seeded perturbation, so distances from initialization are non-zero)."""
    import keras

    from gen_measures.io.keras_models import build_model
    from gen_measures.io.pgdl import write_model, write_reference
    from gen_measures.io.tfrecords import ArrayDataset, write_split
    from scoring.model_configs import ModelConfigs

    folder = Path(folder)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_train, n_features)).astype(np.float32)
    y = np.arange(n_train) % n_classes
    write_split(folder / "dataset_1" / "train", ArrayDataset(x, y))
    write_split(folder / "dataset_1" / "test", ArrayDataset(x[: n_train // 2], y[: n_train // 2]))
    widths = [8 * (i + 1) for i in range(n_models)]
    hparams, metrics = {}, {}
    for i, width in enumerate(widths):
        keras.utils.set_random_seed(seed + i)
        layers = mlp_layers(width, n_classes)
        initial = build_model(layers, (n_features,))
        model = build_model(layers, (n_features,))
        model.set_weights([w + 0.01 * rng.normal(size=w.shape).astype(w.dtype) for w in initial.get_weights()])
        write_model(folder, str(i), layers, (n_features,), model, initial)
        hparams[str(i)] = {"width": width}
        metrics[str(i)] = {"train_acc": 0.9 - 0.01 * i, "test_acc": 0.8}
    write_reference(folder, ModelConfigs(None, {"width": widths}, hparams, metrics))
    return folder


def edit_config(task: str | Path, model_id: str, edit) -> Path:
    """Apply ``edit(config_dict)`` to ``model_<id>/config.json`` (in place); returns the file."""
    path = Path(task) / f"model_{model_id}" / "config.json"
    config = json.loads(path.read_text())
    edit(config)
    path.write_text(json.dumps(config))
    return path
