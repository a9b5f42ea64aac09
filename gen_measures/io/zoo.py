"""Generate model zoos in the PGDL layout (``gen-measures make-zoo``).

Everything comes from data that ships with installed packages (scikit-learn's ``digits``)
or is generated here; nothing is downloaded. Training is seeded and deterministic on CPU.

Presets (:data:`PRESETS`):

* ``sample`` — the bundled ``sample_data/``: two tasks of different families, each a complete
  grid of 5 binary hyperparameters (32 models):

  - ``digits_vgg``: VGG-style CNN (conv blocks with max pooling, Dense head) on scikit-learn's
    8x8 digits (10 classes);
  - ``shapes_nin``: Network-in-Network all-convolutional net (3x3 + 1x1 convs, a 1x1 conv to
    the classes, global average pooling, no Dense layer) on generated 16x16 RGB images.
* ``bench`` — the same families on larger grids (96 models per task) for benchmarks.
* ``tiny`` — 4 small models of each family, for tests.

With ``track=True`` (``gen-measures make-zoo --track``) every model is trained with the
:class:`~gen_measures.callbacks.FeatureConvergence` callback on a fixed sample of its task's
training set (:data:`TRACK_SAMPLE_SIZE` examples, class-stratified, chosen by
:func:`gen_measures.sampling.stratified_sample_indices` with the zoo's seed: a numpy generator
of its own, never the training RNG), and its curves are written to
``model_<id>/training_curves.csv`` (wide: ``epoch`` + one column per curve; format and reader in
:mod:`gen_measures.io.training_curves`, :func:`read_training_curves`). The callback only runs
inference, so the trained weights are bit for bit those of a zoo made without ``--track``.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gen_measures.errors import GenMeasuresError
from gen_measures.io.training_curves import TRAINING_CURVES_FILE, read_training_curves
from gen_measures.numerics.classification import accuracy, label_class_count
from scoring.model_configs import ModelConfigs

__all__ = [
    "PRESETS", "TRACK_SAMPLE_SIZE", "TaskRecipe", "digits_data", "gap_statistics", "make_task", "make_zoo",
    "nin_layers", "read_training_curves", "shapes_data", "vgg_layers", "write_zoo_readme",
]

log = logging.getLogger(__name__)

#: Examples of the training set the ``--track`` callback follows (at most; fewer if the set is smaller).
TRACK_SAMPLE_SIZE = 500


# --------------------------------------------------------------------------- data sets
def digits_data(n_train: int, seed: int) -> tuple:
    """scikit-learn's bundled 8x8 digits scaled to [0, 1], shape (8, 8, 1); a stratified train split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from gen_measures.io.tfrecords import ArrayDataset

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]
    y = digits.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, train_size=n_train, stratify=y, random_state=seed)
    return ArrayDataset(x_tr, y_tr), ArrayDataset(x_te, y_te)


def shapes_data(n_train: int, n_test: int, seed: int, size: int = 16, n_classes: int = 6) -> tuple:
    """Generated RGB images: one noisy, randomly placed and coloured shape per image.

    Classes: filled square, hollow square, disc, ring, horizontal bar pair, cross (first
    ``n_classes``). Each image: random position and scale, random foreground and background
    colours, Gaussian pixel noise (sigma 0.15), clipped to [0, 1]. Labels are balanced.
    """
    from gen_measures.io.tfrecords import ArrayDataset

    rng = np.random.default_rng(seed)
    total = n_train + n_test
    labels = np.arange(total) % n_classes
    rng.shuffle(labels)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    images = np.empty((total, size, size, 3), np.float32)
    for i, label in enumerate(labels):
        r = rng.uniform(0.22, 0.38) * size
        cy, cx = rng.uniform(r, size - r, size=2)
        dy, dx = np.abs(yy - cy), np.abs(xx - cx)
        dist = np.hypot(yy - cy, xx - cx)
        t = max(1.2, r / 3)
        masks = [
            (dy <= r) & (dx <= r),
            (dy <= r) & (dx <= r) & ~((dy <= r - t) & (dx <= r - t)),
            dist <= r,
            (dist <= r) & (dist >= r - t),
            (dx <= r) & ((np.abs(yy - cy - r / 2) <= t / 2) | (np.abs(yy - cy + r / 2) <= t / 2)),
            ((dy <= t / 2 + 0.5) & (dx <= r)) | ((dx <= t / 2 + 0.5) & (dy <= r)),
        ]
        fg, bg = rng.uniform(0.45, 1.0, size=3), rng.uniform(0.0, 0.45, size=3)
        if rng.random() < 0.5:
            fg, bg = bg, fg
        img = np.where(masks[label][..., None], fg, bg) + rng.normal(0, 0.15, size=(size, size, 3))
        images[i] = np.clip(img, 0.0, 1.0)
    train = ArrayDataset(images[:n_train], labels[:n_train].astype(np.int64))
    test = ArrayDataset(images[n_train:], labels[n_train:].astype(np.int64))
    return train, test


# --------------------------------------------------------------------------- architectures
def vgg_layers(width: int, depth: int, dropout: float, n_classes: int) -> list[dict[str, Any]]:
    """VGG-style: ``depth`` blocks of two 3x3 convs (width doubling) + 2x2 max pooling, Dense head."""
    layers: list[dict[str, Any]] = []
    for block in range(depth):
        filters = width * 2**block
        for _ in range(2):
            layers.append({"layer_name": "Conv2D", "filters": filters, "kernel_size": [3, 3], "padding": "same", "activation": "relu"})
        layers.append({"layer_name": "MaxPooling2D", "pool_size": [2, 2]})
    layers.append({"layer_name": "Flatten"})
    if dropout:
        layers.append({"layer_name": "Dropout", "rate": dropout})
    layers.append({"layer_name": "Dense", "units": 4 * width, "activation": "relu"})
    if dropout:
        layers.append({"layer_name": "Dropout", "rate": dropout})
    layers.append({"layer_name": "Dense", "units": n_classes})
    return layers


def nin_layers(width: int, depth: int, dropout: float, n_classes: int) -> list[dict[str, Any]]:
    """Network-in-Network: ``depth`` blocks of (3x3 conv, 1x1 conv, 1x1 conv) with BN, pooling between,
    a final 1x1 conv to the classes and global average pooling (logits; no Dense layer)."""
    layers: list[dict[str, Any]] = []
    for block in range(depth):
        filters = width * 2**block
        layers.append({"layer_name": "Conv2D", "filters": filters, "kernel_size": [3, 3], "padding": "same", "activation": "relu"})
        layers.append({"layer_name": "BatchNormalization"})
        layers.append({"layer_name": "Conv2D", "filters": filters, "kernel_size": [1, 1], "activation": "relu"})
        layers.append({"layer_name": "Conv2D", "filters": filters, "kernel_size": [1, 1], "activation": "relu"})
        layers.append({"layer_name": "MaxPooling2D", "pool_size": [2, 2]})
        if dropout:
            layers.append({"layer_name": "Dropout", "rate": dropout})
    layers.append({"layer_name": "Conv2D", "filters": n_classes, "kernel_size": [1, 1]})
    layers.append({"layer_name": "GlobalAveragePooling2D"})
    return layers


# --------------------------------------------------------------------------- recipes
@dataclass(frozen=True)
class TaskRecipe:
    """How to make one task: data, architecture family and the hyperparameter grid."""

    name: str
    data: Callable[[int], tuple]
    architecture: Callable[..., list[dict[str, Any]]]
    grid: dict[str, list[Any]]
    epochs: int
    learning_rate: float = 0.01
    n_shards: int = 2
    fixed: dict[str, Any] = field(default_factory=dict)

    @property
    def n_models(self) -> int:
        return math.prod(len(v) for v in self.grid.values())

    def cells(self) -> list[dict[str, Any]]:
        names = list(self.grid)
        return [dict(zip(names, values)) for values in itertools.product(*self.grid.values())]


def _digits(n_train: int) -> Callable[[int], tuple]:
    def data(seed: int) -> tuple:
        return digits_data(n_train, seed)

    data.__doc__ = f"scikit-learn digits 8x8x1, 10 classes, {n_train} train / {1797 - n_train} test"
    return data


def _shapes(n_train: int, n_test: int) -> Callable[[int], tuple]:
    def data(seed: int) -> tuple:
        return shapes_data(n_train, n_test, seed)

    data.__doc__ = f"generated shapes 16x16x3, 6 classes, {n_train} train / {n_test} test"
    return data


PRESETS: dict[str, list[TaskRecipe]] = {
    "sample": [
        TaskRecipe(
            name="digits_vgg",
            data=_digits(360),
            architecture=vgg_layers,
            grid={"width": [4, 8], "depth": [1, 2], "dropout": [0.0, 0.4], "weight_decay": [0.0, 0.002], "batch_size": [16, 64]},
            epochs=30,
        ),
        TaskRecipe(
            name="shapes_nin",
            data=_shapes(400, 600),
            architecture=nin_layers,
            grid={"width": [8, 16], "depth": [2, 3], "dropout": [0.0, 0.2], "weight_decay": [0.0, 0.002], "batch_size": [16, 64]},
            epochs=40,
        ),
    ],
    "bench": [
        TaskRecipe(
            name="digits_vgg_bench",
            data=_digits(360),
            architecture=vgg_layers,
            grid={"width": [4, 8, 16], "depth": [1, 2], "dropout": [0.0, 0.25, 0.5], "weight_decay": [0.0, 0.002], "batch_size": [16, 32, 64]},
            epochs=30,
        ),
        TaskRecipe(
            name="shapes_nin_bench",
            data=_shapes(400, 600),
            architecture=nin_layers,
            grid={"width": [8, 16, 32], "depth": [1, 2], "dropout": [0.0, 0.15, 0.3], "weight_decay": [0.0, 0.002], "batch_size": [16, 32, 64]},
            epochs=25,
        ),
    ],
    "tiny": [
        TaskRecipe(
            name="digits_vgg_tiny",
            data=_digits(200),
            architecture=vgg_layers,
            grid={"width": [4], "depth": [1, 2], "dropout": [0.0], "weight_decay": [0.0, 0.002], "batch_size": [32]},
            epochs=3,
            n_shards=1,
        ),
        TaskRecipe(
            name="shapes_nin_tiny",
            data=_shapes(120, 60),
            architecture=nin_layers,
            grid={"width": [4], "depth": [1, 2], "dropout": [0.0, 0.3], "weight_decay": [0.0], "batch_size": [32]},
            epochs=3,
            n_shards=1,
        ),
    ],
}


# --------------------------------------------------------------------------- training
def _train_one(recipe: TaskRecipe, cell: dict[str, Any], train, test, n_classes: int, seed: int, track_x=None):
    """Train one model; with ``track_x`` (a sample of inputs), also return its FeatureConvergence callback."""
    import keras

    from gen_measures.io.keras_models import build_model

    keras.utils.set_random_seed(seed)
    layers = recipe.architecture(cell["width"], cell["depth"], cell["dropout"], n_classes)
    model = build_model(layers, train.x.shape[1:], where=recipe.name)
    initial = build_model(layers, train.x.shape[1:], where=recipe.name)
    initial.set_weights(model.get_weights())
    optimizer = keras.optimizers.SGD(
        learning_rate=recipe.learning_rate * math.sqrt(cell["batch_size"] / 16),
        momentum=0.9,
        weight_decay=cell["weight_decay"] or None,
    )
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    callbacks = []
    if track_x is not None:
        from gen_measures.callbacks import FeatureConvergence

        callbacks.append(FeatureConvergence(track_x))
    model.fit(train.x, train.y, batch_size=cell["batch_size"], epochs=recipe.epochs, shuffle=True, verbose=0,
              callbacks=callbacks)
    metrics = {}
    for split, data in (("train", train), ("test", test)):
        logits = np.concatenate([np.asarray(model(data.x[i : i + 512], training=False)) for i in range(0, len(data), 512)])
        metrics[f"{split}_acc"] = accuracy(logits, data.y)
        metrics[f"{split}_loss"] = float(np.mean(loss(data.y, logits)))
    return layers, model, initial, metrics, (callbacks[0] if callbacks else None)


def make_task(recipe: TaskRecipe, out_dir: str | Path, seed: int = 0, progress: Callable[[int, int, str], None] | None = None,
              track: bool = False) -> Path:
    """Train every model of ``recipe`` and write the task to ``out_dir/<recipe.name>``.

    ``track=True``: also write each model's ``training_curves.csv`` (see the module docstring).
    """
    import keras
    import tensorflow as tf

    from gen_measures.io.pgdl import write_model, write_reference
    from gen_measures.io.tfrecords import write_split

    tf.config.experimental.enable_op_determinism()
    task_dir = Path(out_dir) / recipe.name
    train, test = recipe.data(seed)
    n_classes = label_class_count(train.y, test.y)  # the data's classes set the models' output width
    write_split(task_dir / "dataset_1" / "train", train, recipe.n_shards)
    write_split(task_dir / "dataset_1" / "test", test, recipe.n_shards)
    track_x = None
    if track:
        from gen_measures.sampling import stratified_sample_indices

        track_x = train.x[stratified_sample_indices(train.y, TRACK_SAMPLE_SIZE, seed)]
    hparams: dict[str, dict[str, Any]] = {}
    metrics: dict[str, dict[str, float]] = {}
    cells = recipe.cells()
    for i, cell in enumerate(cells):
        if progress is not None:
            progress(i, len(cells), f"{recipe.name}/model_{i}")
        layers, model, initial, m, curves = _train_one(recipe, cell, train, test, n_classes, seed * 100003 + i, track_x)
        folder = write_model(task_dir, str(i), layers, train.x.shape[1:], model, initial)
        if curves is not None:
            curves.write_csv(folder / TRAINING_CURVES_FILE)
        hparams[str(i)], metrics[str(i)] = dict(cell), m
        log.info("%s/model_%d %s train_acc=%.3f test_acc=%.3f", recipe.name, i, cell, m["train_acc"], m["test_acc"])
        keras.backend.clear_session()
    if progress is not None:
        progress(len(cells), len(cells), recipe.name)
    write_reference(task_dir, ModelConfigs(None, {k: list(v) for k, v in recipe.grid.items()}, hparams, metrics))
    return task_dir


def make_zoo(out_dir: str | Path, preset: str = "sample", seed: int = 0, progress=None, track: bool = False) -> list[Path]:
    """Make every task of ``preset`` under ``out_dir`` and its ``README.md``; returns the task folders.

    ``track=True``: also record each model's training curves (``model_<id>/training_curves.csv``).
    """
    import time

    if preset not in PRESETS:
        raise GenMeasuresError(f"make-zoo: unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise GenMeasuresError(f"make-zoo: {out_dir} is a file; give a folder")
    t0 = time.perf_counter()
    tasks = [make_task(recipe, out_dir, seed, progress, track) for recipe in PRESETS[preset]]
    write_zoo_readme(out_dir, preset, seed, time.perf_counter() - t0, track)
    return tasks


def gap_statistics(task_dir: str | Path) -> dict[str, float]:
    """min / median / max of the generalization gap recorded in a task's ``model_configs.json``."""
    from scoring.model_configs import read_model_configs

    gaps = read_model_configs(Path(task_dir) / "model_configs.json").gaps()
    return {"min": float(gaps.min()), "median": float(gaps.median()), "max": float(gaps.max())}


def write_zoo_readme(out_dir: str | Path, preset: str, seed: int, seconds: float, track: bool = False) -> Path:
    """Describe a generated zoo: per task, data, architecture, grid and gap statistics."""
    from scoring.model_configs import read_model_configs

    out_dir = Path(out_dir)
    lines = [
        f"# Model zoo `{preset}` (generated by gen-measures)",
        "",
        "PGDL layout: `<task>/dataset_1/{train,test}/shard_*.tfrecord`, `<task>/model_<id>/{config.json,",
        "weights.hdf5,weights_init.hdf5}`, `<task>/model_configs.json` (hyperparameters; train/test accuracy",
        "and loss). Weights are Keras-2 HDF5 files, readable by Keras 2 and Keras 3.",
        "",
        "Regenerate (seeded and deterministic on CPU; this run took "
        f"{seconds / 60:.1f} min on this machine):",
        "",
        "```bash",
        f"gen-measures make-zoo {out_dir.name} --preset {preset} --seed {seed}" + (" --track" if track else ""),
        "```",
        "",
        "| task | data | models | hyperparameter grid | gap min | gap median | gap max |",
        "|---|---|---|---|---|---|---|",
    ]
    for recipe in PRESETS[preset]:
        ref = read_model_configs(out_dir / recipe.name / "model_configs.json")
        stats = gap_statistics(out_dir / recipe.name)
        grid = "; ".join(f"{k} {v}" for k, v in recipe.grid.items())
        data = (recipe.data.__doc__ or "").strip() or recipe.name
        lines.append(
            f"| {recipe.name} | {data} | {len(ref.model_ids)} | {grid} | "
            f"{stats['min']:.4f} | {stats['median']:.4f} | {stats['max']:.4f} |"
        )
    lines += [
        "",
        "Generalization gap = `train_acc - test_acc`. Data: `digits_*` use scikit-learn's bundled 8x8",
        "digits (no download); `shapes_*` use images generated by `gen_measures.io.zoo.shapes_data`.",
        "Architectures: `digits_*` VGG-style (conv blocks + max pooling, Dense head);",
        "`shapes_*` Network-in-Network (3x3 + 1x1 convs, batch norm, 1x1 conv to the classes, global",
        "average pooling, no Dense layer).",
        "",
    ]
    if track:
        lines += [
            f"Training curves: `<task>/model_<id>/{TRAINING_CURVES_FILE}`, one row per epoch (`epoch` = epochs",
            "completed) and one column per curve: `pvector_angle_to_data`, `pvector_angle_to_previous`,",
            "`pvector_angle_to_final` (degrees) and `saturation/<layer>`, recorded by",
            f"`gen_measures.callbacks.FeatureConvergence` on {TRACK_SAMPLE_SIZE} training examples (stratified, seeded).",
            "Read them with `gen_measures.io.training_curves.read_training_curves(task_dir)`.",
            "",
        ]
    path = out_dir / "README.md"
    path.write_text("\n".join(lines))
    return path
