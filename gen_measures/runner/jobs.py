"""What an executor receives: one model's pending measures, and where its task's sample is.

A :class:`ModelJob` is small and picklable (paths, names, numbers): a worker process or a
Dask worker rebuilds everything else from it. The task's training sample is chosen and read
once per task by the main process (:func:`write_sample`) and handed over as two ``.npy``
files that every worker memory-maps (:func:`read_sample`), or, on a Dask cluster, as a
scattered ``(x, y)`` pair.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gen_measures.io.atomic import write_atomic


@dataclass
class ModelJob:
    """The pending measures of one model.

    Attributes
    ----------
    job_id : index of the job in its run.
    task_path : the task folder (absolute); ``reference_path`` its ``model_configs.json``.
    task_name, model_id : identifiers.
    measures : names of the measures to compute, in order.
    sample_file : stem of the sample's ``.npy`` pair (``None`` when no measure needs data).
    n_train : number of examples in the task's training split (``None`` when not read).
    seed, batch_size : as in :func:`gen_measures.runner.compute`.
    plugins : plug-in files the worker must load first.
    submissions : ``{measure name: submission folder}`` of the measures that are PGDL submissions.
    architecture : a digest of the model's layers (:func:`architecture_digest`; ``""`` when
        unread): a process executor gives a worker the jobs of the architecture it ran last
        first, since its compiled functions are then already traced (:mod:`gen_measures.traces`).
    """

    job_id: int
    task_path: str
    task_name: str
    model_id: str
    measures: list[str]
    seed: int
    batch_size: int
    sample_file: str | None = None
    n_train: int | None = None
    reference_path: str | None = None
    plugins: list[str] = field(default_factory=list)
    submissions: dict[str, str] = field(default_factory=dict)
    architecture: str = ""

    @property
    def label(self) -> str:
        return f"{self.task_name}/model_{self.model_id}"


def architecture_digest(config_path: str | Path) -> str:
    """A digest of the ``model_config`` of a ``config.json`` (``""`` when it cannot be read:
    the worker that loads the model reports that error)."""
    try:
        config = json.loads(Path(config_path).read_text())
        text = json.dumps(config.get("model_config") if isinstance(config, dict) else config, sort_keys=True)
    except (OSError, ValueError, TypeError, RecursionError):  # e.g. nesting too deep to parse
        return ""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def sample_cache_dir(folder: str | Path) -> Path:
    """The folder of an output folder's cached samples."""
    return Path(folder) / "cache" / "samples"


def sample_stem(folder: str | Path, task_path: str, data_fingerprint: str, sample_size: int, seed: int) -> Path:
    """Where the sample of a task is cached: named after everything that determines it."""
    key = hashlib.sha256(f"{task_path}|{data_fingerprint}|{sample_size}|{seed}".encode()).hexdigest()[:16]
    return sample_cache_dir(folder) / f"{Path(task_path).name}-{key}"


def write_sample(stem: Path, x: np.ndarray, y: np.ndarray, n_train: int) -> str:
    """Write ``stem_x.npy``, ``stem_y.npy`` and ``stem_n.npy`` (the training split's size), each
    atomically: a killed write leaves no half file, and two processes writing the same sample
    at once (two Dask workers on one machine) do not trip over each other's temporary files."""
    for suffix, array in (("_n.npy", np.asarray([n_train], np.int64)), ("_x.npy", x), ("_y.npy", y)):
        write_atomic(stem.with_name(stem.name + suffix), lambda fh, a=array: np.save(fh, np.ascontiguousarray(a)))
    return str(stem)


def has_sample(stem: Path) -> bool:
    return all(stem.with_name(stem.name + s).is_file() for s in ("_x.npy", "_y.npy", "_n.npy"))


def read_train_size(stem: str | Path) -> int:
    """The training split's size written beside the sample by :func:`write_sample`."""
    stem = Path(stem)
    return int(np.load(stem.with_name(stem.name + "_n.npy"))[0])


def read_sample(stem: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """The ``(x, y)`` written by :func:`write_sample` (``x`` memory-mapped, read on demand)."""
    stem = Path(stem)
    x = np.load(stem.with_name(stem.name + "_x.npy"), mmap_mode="r")
    y = np.load(stem.with_name(stem.name + "_y.npy"))
    return x, y
