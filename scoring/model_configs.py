"""Read and write PGDL ``model_configs.json`` (hyperparameter grid and reference metrics).

Pure Python + pandas: no TensorFlow import, so ``scoring`` can use it.

File format (PGDL, NeurIPS 2020)::

    {"<id>": {"hparams": {name: {"current_value": v, "possible_values": [...]}},
              "metrics": {"train_acc": a, "test_acc": b, ...}}}

Ids are bare (``"0"``) or prefixed (``"model_0"``); both are accepted and stored bare
(see :func:`canonical_model_id`). The generalization gap is ``train_acc - test_acc``.
"""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from scoring.errors import TaskFormatError
from scoring.jsonfile import read_json

MODEL_CONFIGS_NAME = "model_configs.json"


def canonical_model_id(key: object) -> str:
    """Bare model id: ``"model_12"`` -> ``"12"``, ``12`` -> ``"12"``, ``"12"`` -> ``"12"``."""
    text = str(key).strip()
    return text[len("model_"):] if text.startswith("model_") else text


def prediction_key(model_id: object) -> str:
    """Key used in ``.predict`` files: ``"model_<id>"``."""
    return "model_" + canonical_model_id(model_id)


def hashable_value(value: Any) -> Any:
    """A hashable, type-faithful key for a hyperparameter value (lists -> tuples, dicts -> sorted
    items; 1 and "1" stay apart, and so do 1 and 11)."""
    if isinstance(value, list):
        return tuple(hashable_value(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, hashable_value(v)) for k, v in value.items()))
    return value


@dataclass(frozen=True)
class GridReport:
    """Completeness of the hyperparameter grid: the product of every ``possible_values`` list."""

    n_cells: int
    n_models: int
    missing: list[dict[str, Any]] = field(default_factory=list)
    duplicated: dict[tuple, list[str]] = field(default_factory=dict)
    unknown_values: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """True when every cell holds exactly one model and no model has a value outside the grid."""
        return not self.missing and not self.duplicated and not self.unknown_values

    def describe(self, limit: int = 5) -> str:
        """One human-readable line (the first ``limit`` problems of each kind)."""
        if self.complete:
            return f"complete grid: {self.n_models} models in {self.n_cells} cells"
        parts = [f"{self.n_models} models, {self.n_cells} cells"]
        if self.missing:
            shown = "; ".join(_fmt_cell(c) for c in self.missing[:limit])
            more = f" (+{len(self.missing) - limit} more)" if len(self.missing) > limit else ""
            parts.append(f"{len(self.missing)} missing cell(s): {shown}{more}")
        if self.duplicated:
            items = list(self.duplicated.items())[:limit]
            shown = "; ".join(f"models {', '.join(ids)} share one cell" for _, ids in items)
            parts.append(f"{len(self.duplicated)} duplicated cell(s): {shown}")
        if self.unknown_values:
            parts.append("values outside possible_values: " + "; ".join(self.unknown_values[:limit]))
        return ", ".join(parts)


def _fmt_cell(cell: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in cell.items())


@dataclass
class ModelConfigs:
    """Contents of one ``model_configs.json``.

    Attributes
    ----------
    path : the file read (``None`` when built in memory).
    possible_values : hyperparameter name -> list of possible values (file order).
    hparams : model id -> {hyperparameter name -> current value}.
    metrics : model id -> {metric name -> float}.
    """

    path: Path | None
    possible_values: dict[str, list[Any]]
    hparams: dict[str, dict[str, Any]]
    metrics: dict[str, dict[str, float]]

    @property
    def model_ids(self) -> list[str]:
        return list(self.hparams)

    @property
    def hparam_names(self) -> list[str]:
        return list(self.possible_values)

    def has_gaps(self) -> bool:
        return all("train_acc" in m and "test_acc" in m for m in self.metrics.values()) and bool(self.metrics)

    def gaps(self) -> pd.Series:
        """Generalization gap ``train_acc - test_acc`` per model id (float64)."""
        missing = [mid for mid, m in self.metrics.items() if "train_acc" not in m or "test_acc" not in m]
        if missing or not self.metrics:
            where = self.path or "model_configs"
            raise TaskFormatError(
                f"{where}: models {missing[:5]} lack 'train_acc'/'test_acc' in 'metrics'; "
                "the generalization gap cannot be computed"
            )
        return pd.Series(
            {mid: float(m["train_acc"]) - float(m["test_acc"]) for mid, m in self.metrics.items()},
            name="gap",
            dtype="float64",
        )

    def hparams_frame(self) -> pd.DataFrame:
        """Model id x hyperparameter table of current values (object dtype, values as in the file)."""
        frame = pd.DataFrame.from_dict(self.hparams, orient="index", dtype=object)
        return frame.reindex(columns=self.hparam_names)

    def grid_report(self) -> GridReport:
        """Which grid cells are missing, duplicated, or hold values outside ``possible_values``."""
        names = self.hparam_names
        cells: dict[tuple, list[str]] = {}
        unknown: list[str] = []
        for mid, hp in self.hparams.items():
            key = tuple(hashable_value(hp.get(n)) for n in names)
            cells.setdefault(key, []).append(mid)
            for n in names:
                allowed = [hashable_value(v) for v in self.possible_values[n]]
                if hashable_value(hp.get(n)) not in allowed:
                    unknown.append(f"model {mid}: {n}={hp.get(n)!r}")
        grid = list(itertools.product(*[[hashable_value(v) for v in self.possible_values[n]] for n in names]))
        missing = [dict(zip(names, cell)) for cell in grid if cell not in cells]
        duplicated = {k: v for k, v in cells.items() if len(v) > 1}
        return GridReport(
            n_cells=math.prod(len(self.possible_values[n]) for n in names) if names else 1,
            n_models=len(self.hparams),
            missing=missing,
            duplicated=duplicated,
            unknown_values=unknown,
        )

    def to_json_dict(self) -> dict[str, Any]:
        """The file's JSON structure (bare ids)."""
        out: dict[str, Any] = {}
        for mid in self.model_ids:
            out[mid] = {
                "hparams": {
                    n: {"current_value": self.hparams[mid].get(n), "possible_values": list(self.possible_values[n])}
                    for n in self.hparam_names
                },
                "metrics": dict(self.metrics.get(mid, {})),
            }
        return out


def read_model_configs(path: str | Path) -> ModelConfigs:
    """Parse a ``model_configs.json`` file.

    Raises :class:`MissingFileError` when absent and :class:`TaskFormatError` naming the file
    and the offending entry when malformed.
    """
    path = Path(path)
    raw = read_json(path, TaskFormatError, "model_configs.json")
    if not isinstance(raw, dict) or not raw:
        raise TaskFormatError(f"{path}: expected a non-empty JSON object keyed by model id")
    possible: dict[str, list[Any]] = {}
    hparams: dict[str, dict[str, Any]] = {}
    metrics: dict[str, dict[str, float]] = {}
    for key, entry in raw.items():
        mid = canonical_model_id(key)
        if mid in hparams:
            raise TaskFormatError(f"{path}: model id {mid!r} appears twice (as {key!r} and another spelling)")
        if not isinstance(entry, dict):
            raise TaskFormatError(f"{path}: entry {key!r} is not an object")
        hp_raw = entry.get("hparams", {})
        if not isinstance(hp_raw, dict):
            raise TaskFormatError(f"{path}: entry {key!r}: 'hparams' is not an object")
        current: dict[str, Any] = {}
        for name, spec in hp_raw.items():
            if not isinstance(spec, dict) or "current_value" not in spec:
                raise TaskFormatError(f"{path}: entry {key!r}: hparam {name!r} lacks 'current_value'")
            current[name] = spec["current_value"]
            values = spec.get("possible_values")
            if values is None:
                values = [spec["current_value"]]
            if not isinstance(values, list):
                raise TaskFormatError(f"{path}: entry {key!r}: hparam {name!r}: 'possible_values' is not a list")
            known = possible.setdefault(name, [])
            for v in values:
                if hashable_value(v) not in [hashable_value(k) for k in known]:
                    known.append(v)
        hparams[mid] = current
        m_raw = entry.get("metrics", {})
        if not isinstance(m_raw, dict):
            raise TaskFormatError(f"{path}: entry {key!r}: 'metrics' is not an object")
        metrics[mid] = {}
        for name, v in m_raw.items():
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise TaskFormatError(f"{path}: model {mid!r}: metric {name!r} is {v!r} ({type(v).__name__}), not a number")
            if not math.isfinite(v):
                raise TaskFormatError(f"{path}: model {mid!r}: metric {name!r} is {v!r}; it must be a finite number")
            if name in ("train_acc", "test_acc") and not 0.0 <= v <= 1.0:
                raise TaskFormatError(f"{path}: model {mid!r}: {name} = {v!r} is not an accuracy in [0, 1]")
            metrics[mid][name] = float(v)
    for mid, hp in hparams.items():
        missing = [n for n in possible if n not in hp]
        if missing:
            raise TaskFormatError(f"{path}: model {mid!r} lacks hyperparameter(s) {missing}")
    return ModelConfigs(path=path, possible_values=possible, hparams=hparams, metrics=metrics)


def write_model_configs(path: str | Path, configs: ModelConfigs) -> Path:
    """Write ``configs`` as PGDL JSON (bare ids, indent 1 as the organizers' files)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(configs.to_json_dict(), indent=1) + "\n")
    return path


def find_model_configs(task_dir: str | Path) -> Path | None:
    """Locate the reference file of a task in either PGDL layout, or ``None``.

    Looks at ``<task>/model_configs.json`` then, for a competition root
    ``<root>/input_data/<task>``, at ``<root>/reference_data/<task>/model_configs.json``.
    """
    task_dir = Path(task_dir)
    inside = task_dir / MODEL_CONFIGS_NAME
    if inside.is_file():
        return inside
    sibling = task_dir.parent.parent / "reference_data" / task_dir.name / MODEL_CONFIGS_NAME
    if task_dir.parent.name == "input_data" and sibling.is_file():
        return sibling
    return None


def count_values(configs: ModelConfigs) -> dict[str, Counter]:
    """Per hyperparameter, how many models take each value (for `inspect`)."""
    return {n: Counter(repr(hp[n]) for hp in configs.hparams.values()) for n in configs.hparam_names}
