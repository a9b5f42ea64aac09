"""PGDL tasks on disk: discovery, reading, writing.

A *task* folder holds one model zoo trained on one data set::

    <task>/dataset_1/train/shard_*.tfrecord     training data (what measures may see)
    <task>/dataset_1/test/shard_*.tfrecord      optional; never handed to measures
    <task>/model_<id>/config.json               layer dicts + input shape
    <task>/model_<id>/weights.hdf5              trained weights (Keras-2 HDF5)
    <task>/model_<id>/weights_init.hdf5         initial weights (optional)
    <task>/model_configs.json                   or <root>/reference_data/<task>/model_configs.json

:func:`discover_tasks` accepts one task folder, a folder of task folders, or a competition
root with ``input_data/`` (+ ``reference_data/``).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gen_measures.errors import MissingFileError, TaskFormatError
from scoring.model_configs import (
    ModelConfigs,
    canonical_model_id,
    find_model_configs,
    read_model_configs,
    write_model_configs,
)

log = logging.getLogger(__name__)
_MODEL_DIR = re.compile(r"^model_(.+)$")
DATA_DIR = "dataset_1"


def _id_sort_key(model_id: str) -> tuple:
    return (0, int(model_id), "") if model_id.isdigit() else (1, 0, model_id)


@dataclass(frozen=True)
class Task:
    """One PGDL task folder (nothing is loaded until asked)."""

    name: str
    path: Path
    model_ids: tuple[str, ...]
    reference_path: Path | None

    def model_dir(self, model_id: str) -> Path:
        return self.path / f"model_{canonical_model_id(model_id)}"

    def config_path(self, model_id: str) -> Path:
        return self.model_dir(model_id) / "config.json"

    def weights_path(self, model_id: str, initial: bool = False) -> Path:
        return self.model_dir(model_id) / ("weights_init.hdf5" if initial else "weights.hdf5")

    def has_initial_weights(self, model_id: str) -> bool:
        return self.weights_path(model_id, initial=True).is_file()

    def split_dir(self, split: str = "train") -> Path:
        return self.path / DATA_DIR / split

    def read_reference(self) -> ModelConfigs | None:
        """The task's ``model_configs.json`` or ``None`` when the task has none."""
        return read_model_configs(self.reference_path) if self.reference_path else None

    def load_model(self, model_id: str, initial: bool = False):
        """Build ``model_<id>`` from its config and load its (initial) weights."""
        from gen_measures.io.keras_models import load_keras2_weights, load_model_from_config

        model = load_model_from_config(self.config_path(model_id))
        load_keras2_weights(model, self.weights_path(model_id, initial))
        return model

    def read_data(self, split: str = "train"):
        """The split as an in-memory :class:`~gen_measures.io.tfrecords.ArrayDataset`."""
        from gen_measures.io.tfrecords import read_split

        return read_split(self.split_dir(split))

    def tf_dataset(self, split: str = "train"):
        """The split as an unbatched ``tf.data.Dataset`` (the competition's submission interface)."""
        from gen_measures.io.tfrecords import tf_dataset

        return tf_dataset(self.split_dir(split))


def _model_ids(folder: Path) -> list[str]:
    ids = []
    for child in folder.iterdir():
        m = _MODEL_DIR.match(child.name)
        if m and child.is_dir():
            if child.is_symlink():
                log.warning("%s is a symbolic link to %s; that model is read from there", child, child.resolve())
            ids.append(m.group(1))
    return sorted(ids, key=_id_sort_key)


def _is_task_dir(folder: Path) -> bool:
    return folder.is_dir() and (bool(_model_ids(folder)) or (folder / DATA_DIR).is_dir())


def open_task(path: str | Path, reference_path: str | Path | None = None) -> Task:
    """Open one task folder; raises when it holds no model."""
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"{path}: task folder not found")
    if not path.is_dir():
        raise TaskFormatError(f"{path}: is a file; give a task folder (with model_<id>/ and dataset_1/)")
    if path.is_symlink():
        log.warning("task folder %s is a symbolic link to %s", path, path.resolve())
    ids = _model_ids(path)
    if not ids:
        raise TaskFormatError(f"{path}: no model_<id>/ folder in this task folder")
    ref = Path(reference_path) if reference_path else find_model_configs(path)
    return Task(name=path.name, path=path, model_ids=tuple(ids), reference_path=ref)


def discover_tasks(paths: str | Path | Iterable[str | Path]) -> list[Task]:
    """All tasks under the given path(s), in a stable order.

    Each path may be a task folder, a folder of task folders, or a competition root with
    ``input_data/<task>`` (reference files then come from ``reference_data/<task>``).
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    tasks: list[Task] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise MissingFileError(f"{path}: path not found")
        if not path.is_dir():
            raise TaskFormatError(
                f"{path}: is a file; give a task folder, a folder of tasks, or a competition root with input_data/"
            )
        if (path / "input_data").is_dir():
            children = sorted(p for p in (path / "input_data").iterdir() if p.is_dir())
            tasks.extend(open_task(c) for c in children if _is_task_dir(c))
            continue
        if _model_ids(path):
            tasks.append(open_task(path))
            continue
        children = sorted(p for p in path.iterdir() if _is_task_dir(p))
        if not children:
            raise TaskFormatError(
                f"{path}: no PGDL task found (expected model_<id>/config.json, a folder of such task "
                "folders, or input_data/ + reference_data/)"
            )
        tasks.extend(open_task(c) for c in children)
    names = [t.name for t in tasks]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise TaskFormatError(f"task names {dupes} occur more than once among {[str(p) for p in paths]}")
    return tasks


def write_model(
    task_dir: str | Path,
    model_id: str,
    layer_dicts: Sequence[dict[str, Any]],
    input_shape: Sequence[int],
    model,
    initial_model=None,
) -> Path:
    """Write ``model_<id>/`` (config.json, weights.hdf5 and optionally weights_init.hdf5)."""
    from gen_measures.io.keras_models import save_keras2_weights

    folder = Path(task_dir) / f"model_{canonical_model_id(model_id)}"
    folder.mkdir(parents=True, exist_ok=True)
    config = {"model_config": [dict(d) for d in layer_dicts], "input_shape": [int(s) for s in input_shape]}
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    save_keras2_weights(model, folder / "weights.hdf5")
    if initial_model is not None:
        save_keras2_weights(initial_model, folder / "weights_init.hdf5")
    return folder


def write_reference(task_dir: str | Path, configs: ModelConfigs) -> Path:
    """Write the task's ``model_configs.json`` inside the task folder (starting-kit layout)."""
    return write_model_configs(Path(task_dir) / "model_configs.json", configs)
