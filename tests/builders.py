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


# ----------------------------------------------------------------------------- hostile inputs
def write_records(path: str | Path, inputs: list[np.ndarray], labels: list[Any], label_dtype: str = "int32") -> Path:
    """A TFRecord file of PGDL examples with exactly these (possibly wrong) inputs and labels."""
    import tensorflow as tf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for x, y in zip(inputs, labels):
            feats = {
                "inputs": tf.io.serialize_tensor(tf.constant(x)).numpy(),
                "output": tf.io.serialize_tensor(tf.constant(y, dtype=label_dtype)).numpy(),
            }
            example = tf.train.Example(features=tf.train.Features(feature={
                k: tf.train.Feature(bytes_list=tf.train.BytesList(value=[v])) for k, v in feats.items()}))
            writer.write(example.SerializeToString())
    return path


def rewrite_train_split(task: str | Path, change) -> Path:
    """Read the task's training split, apply ``change(x, y) -> (inputs, labels[, label_dtype])``, write it back as one shard."""
    from gen_measures.io.tfrecords import read_split

    split = Path(task) / "dataset_1" / "train"
    data = read_split(split)
    out = change(data.x.copy(), data.y.copy())
    for old in split.glob("*.tfrecord"):
        old.unlink()
    return write_records(split / "shard_0.tfrecord", list(out[0]), list(out[1]), *out[2:])


def huge_dataset_weights(path: str | Path, shape=(100_000, 100_000)) -> Path:
    """A tiny HDF5 file in the Keras-2 layout that declares one enormous (never written) dataset."""
    import h5py

    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([b"dense"])
        g = f.create_group("dense")
        g.attrs["weight_names"] = np.array([b"dense/kernel:0"])
        g.create_dataset("dense/kernel:0", shape=shape, dtype="float32", chunks=(100, 100))
    return Path(path)


def weight_name_pointing_to_a_group(path: str | Path) -> Path:
    """Rewrite a Keras-2 weights file so that the first layer's first weight name names a group."""
    import h5py

    with h5py.File(path, "r+") as f:
        for raw in f.attrs["layer_names"]:
            group = f[raw.decode() if isinstance(raw, bytes) else raw]
            names = list(group.attrs.get("weight_names", []))
            if names:
                first = names[0].decode() if isinstance(names[0], bytes) else names[0]
                del group[first]
                group.create_group(first)
                return Path(path)
    raise AssertionError("no weights in the file")


def nan_in_kernel(path: str | Path) -> Path:
    """Set one entry of the first kernel of a Keras-2 weights file to NaN."""
    import h5py

    with h5py.File(path, "r+") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and "kernel" in name:
                data = obj[()]
                data.flat[0] = np.nan
                obj[...] = data
                return True
            return None
        f.visititems(visit)
    return Path(path)


def wait_for_stored_rows(folder: str | Path, n: int, proc=None, timeout: float = 300.0) -> int:
    """Poll ``folder/results.sqlite`` until it holds ``n`` rows (a run to interrupt has made progress)."""
    import sqlite3
    import time

    deadline, count = time.time() + timeout, 0
    while time.time() < deadline and count < n:
        try:
            with sqlite3.connect(Path(folder) / "results.sqlite", timeout=5) as db:
                count = db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
        except sqlite3.OperationalError:
            count = 0
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the run ended before storing {n} rows: {proc.communicate()}")
        time.sleep(0.2)
    return count
