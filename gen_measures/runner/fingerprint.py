"""Fingerprints of the files a result was computed from (part of a stored row's key).

A file's fingerprint is its name, size and modification time in nanoseconds (``os.stat``, no
read of the content: cheap on a 50 000-image zoo, and any rewrite of a file (retraining into
the same folder, replacing a shard) changes its modification time). An absent file has the
fingerprint ``absent``. A result's fingerprint combines, according to the measure's declared
needs:

* always: the model's ``config.json`` and ``weights.hdf5``;
* ``init_weights``: the model's ``weights_init.hdf5`` (or its absence);
* ``data`` or ``dataset``: every training shard of the task.

So retraining a model, replacing a shard or deleting ``weights_init.hdf5`` makes the next run
recompute exactly the results that depended on it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path


def file_fingerprint(path: str | Path) -> str:
    """``name:size:mtime_ns`` of ``path`` (``name:absent`` when it is not a file)."""
    path = Path(path)
    try:
        st = os.stat(path)
    except OSError:
        return f"{path.name}:absent"
    if not path.is_file():
        return f"{path.name}:not-a-file"
    return f"{path.name}:{st.st_size}:{st.st_mtime_ns}"


def files_fingerprint(paths: Iterable[str | Path]) -> str:
    """One digest of the fingerprints of ``paths`` (order kept)."""
    h = hashlib.sha256()
    for p in paths:
        h.update(file_fingerprint(p).encode())
        h.update(b"\0")
    return h.hexdigest()[:20]


class TaskFingerprints:
    """Fingerprints of one task's files, computed once per run and task."""

    def __init__(self, task) -> None:
        self.task = task
        self._data: str | None = None
        self._models: dict[tuple[str, bool], str] = {}

    def data(self) -> str:
        """Fingerprint of the training shards (``absent`` when the split folder is missing)."""
        if self._data is None:
            split = Path(self.task.split_dir("train"))
            shards = sorted(split.glob("*.tfrecord")) if split.is_dir() else []
            self._data = files_fingerprint(shards) if shards else "absent"
        return self._data

    def model(self, model_id: str, initial: bool) -> str:
        key = (model_id, initial)
        if key not in self._models:
            paths = [self.task.config_path(model_id), self.task.weights_path(model_id)]
            if initial:
                paths.append(self.task.weights_path(model_id, initial=True))
            self._models[key] = files_fingerprint(paths)
        return self._models[key]

    def of(self, model_id: str, needs: Iterable[str]) -> str:
        """The fingerprint of a result of ``model_id`` by a measure with ``needs``."""
        needs = set(needs)
        parts = [self.model(model_id, "init_weights" in needs)]
        if "data" in needs or "dataset" in needs:
            parts.append("data=" + self.data())
        return "|".join(parts)
