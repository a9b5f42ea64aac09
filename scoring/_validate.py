"""Input alignment and validation shared by the scoring functions (private).

Every public metric takes ``values`` (the measure, one per model), ``gaps`` (the reference
generalization gaps) and, where needed, ``hparams`` (a model x hyperparameter table). Arrays are
aligned by position; pandas objects are aligned by model id on the ``hparams`` index.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from scoring.errors import ScoringError
from scoring.model_configs import hashable_value as hashable

#: Smallest zoo any metric accepts.
MIN_MODELS = 3


def _fmt_ids(ids: Sequence[Any], limit: int = 10) -> str:
    shown = ", ".join(str(i) for i in list(ids)[:limit])
    more = f" (+{len(ids) - limit} more)" if len(ids) > limit else ""
    return f"[{shown}]{more}"


def as_float_vector(x: Any, name: str, index: pd.Index | None = None) -> np.ndarray:
    """1-D float64 copy of ``x`` aligned on ``index`` (pandas input), naming bad entries.

    Raises
    ------
    ScoringError
        When entries are missing from ``x``, are not numbers, or are NaN/inf; the message names
        the argument and the offending model ids (or positions).
    """
    if isinstance(x, Mapping) and not isinstance(x, pd.Series):
        x = pd.Series(dict(x), dtype=object)
    if isinstance(x, pd.Series):
        if index is not None:
            missing = [i for i in index if i not in x.index]
            if missing:
                raise ScoringError(f"{name}: no value for models {_fmt_ids(missing)}")
            x = x.reindex(index)
        labels = list(x.index)
        raw = x.to_numpy(dtype=object)
    else:
        raw = np.asarray(x, dtype=object)
        if raw.ndim != 1:
            raise ScoringError(f"{name}: expected a 1-D sequence of numbers, got shape {raw.shape}")
        labels = list(index) if index is not None and len(index) == len(raw) else list(range(len(raw)))
    out = np.empty(len(raw), dtype=np.float64)
    bad: list[Any] = []
    for k, v in enumerate(raw):
        if isinstance(v, (bool, np.bool_)) or v is None or isinstance(v, (str, bytes)):
            bad.append(labels[k])
            continue
        try:
            out[k] = float(v)
        except (TypeError, ValueError):
            bad.append(labels[k])
    if bad:
        raise ScoringError(f"{name}: non-numeric values for models {_fmt_ids(bad)}")
    nonfinite = [labels[k] for k in np.flatnonzero(~np.isfinite(out))]
    if nonfinite:
        raise ScoringError(f"{name}: NaN or infinite values for models {_fmt_ids(nonfinite)}")
    return out


def as_hparam_frame(hparams: Any, n: int) -> pd.DataFrame:
    """``hparams`` as a DataFrame with ``n`` rows (object dtype, one column per hyperparameter)."""
    if isinstance(hparams, pd.DataFrame):
        frame = hparams
    elif isinstance(hparams, Mapping):
        frame = pd.DataFrame({k: pd.Series(list(v), dtype=object) for k, v in hparams.items()})
    else:
        raise ScoringError(
            f"hparams: expected a pandas DataFrame (models x hyperparameters) or a mapping "
            f"name -> values, got {type(hparams).__name__}"
        )
    if len(frame) != n:
        raise ScoringError(f"hparams: {len(frame)} rows for {n} models; pass one row per model")
    if frame.shape[1] == 0:
        raise ScoringError("hparams: no hyperparameter columns")
    return frame


def align(values: Any, gaps: Any, hparams: Any | None = None) -> tuple[np.ndarray, np.ndarray, pd.DataFrame | None]:
    """Validate and align ``values``, ``gaps`` and ``hparams``.

    pandas inputs are aligned on the ``hparams`` index (or on the ``values`` index when there is
    no ``hparams``); plain sequences by position.

    Raises
    ------
    ScoringError
        Length mismatch, missing/non-numeric/non-finite entries, or fewer than
        :data:`MIN_MODELS` models.
    """
    index: pd.Index | None = None
    if isinstance(hparams, pd.DataFrame) and (isinstance(values, (pd.Series, Mapping)) or isinstance(gaps, (pd.Series, Mapping))):
        index = hparams.index
    elif isinstance(values, pd.Series):
        index = values.index
    v = as_float_vector(values, "values", index)
    g = as_float_vector(gaps, "gaps", index)
    if len(v) != len(g):
        raise ScoringError(f"values and gaps differ in length ({len(v)} vs {len(g)}); pass one of each per model")
    if len(v) < MIN_MODELS:
        raise ScoringError(f"values: {len(v)} model(s); scoring needs at least {MIN_MODELS}")
    frame = None
    if hparams is not None:
        frame = as_hparam_frame(hparams, len(v))
        if index is not None and isinstance(hparams, pd.DataFrame):
            frame = frame.loc[index]
    return v, g, frame


def encode(column: Sequence[Any]) -> tuple[np.ndarray, list[Any]]:
    """Integer codes (first-appearance order) and the distinct values of ``column``.

    Values compare as Python does (``1 == 1.0``); lists and dicts are compared by content.
    """
    items = list(column)
    lookup: dict[Any, int] = {}
    try:
        codes = [lookup.setdefault(v, len(lookup)) for v in items]
    except TypeError:  # unhashable values (lists, dicts)
        lookup = {}
        codes = [lookup.setdefault(hashable(v), len(lookup)) for v in items]
    labels: list[Any] = [None] * len(lookup)
    for v, c in zip(items, codes):
        if labels[c] is None:
            labels[c] = v
    return np.asarray(codes, dtype=np.int64).reshape(len(items)), labels


def joint_codes(columns: Sequence[np.ndarray], *, dense_limit: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Codes of the joint value of several coded columns, and one row of codes per joint cell.

    When the product of the columns' ranges is at most ``dense_limit``, every combination is a
    cell (row-major order), observed or not; otherwise only the observed combinations are.
    """
    if not columns:
        return np.zeros(0, dtype=np.int64), np.zeros((1, 0), dtype=np.int64)
    columns = [np.asarray(c, dtype=np.int64) for c in columns]
    bases = [int(c.max()) + 1 if len(c) else 1 for c in columns]
    if math.prod(bases) <= dense_limit:
        key = columns[0]
        for c, b in zip(columns[1:], bases[1:]):
            key = key * b + c
        cells = np.indices(bases).reshape(len(bases), -1).T
        return key, cells
    if math.prod(bases) < 2**62:
        key = np.zeros(len(columns[0]), dtype=np.int64)
        for c, b in zip(columns, bases):
            key = key * b + c
        uniq, inverse = np.unique(key, return_inverse=True)
        cells = np.stack(np.unravel_index(uniq, bases), axis=1) if len(uniq) else np.zeros((0, len(columns)), np.int64)
        return inverse.reshape(-1).astype(np.int64), cells.astype(np.int64)
    cells, inverse = np.unique(np.stack(columns, axis=1), axis=0, return_inverse=True)
    return inverse.reshape(-1).astype(np.int64), cells


def dense_ranks(values: np.ndarray) -> np.ndarray:
    """Integer ranks 0..k-1 with ties sharing a rank (order-preserving, exact comparisons)."""
    return np.unique(values, return_inverse=True)[1].reshape(-1).astype(np.int64)


def pairs_within(group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All unordered pairs ``(i, j)``, ``i != j``, of models sharing a ``group`` code (vectorised).

    Groups are padded to the largest group size, so the cost is ``#groups x max_size^2``.
    """
    group = np.asarray(group)
    n = len(group)
    if n < 2:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    order = np.argsort(group, kind="stable")
    sorted_group = group[order]
    starts = np.flatnonzero(np.r_[True, sorted_group[1:] != sorted_group[:-1]])
    sizes = np.diff(np.r_[starts, n])
    width = int(sizes.max())
    padded = np.full((len(starts), width), -1, dtype=np.int64)
    padded[np.repeat(np.arange(len(starts)), sizes), np.arange(n) - np.repeat(starts, sizes)] = order
    a, b = np.triu_indices(width, 1)
    i, j = padded[:, a].ravel(), padded[:, b].ravel()
    keep = (i >= 0) & (j >= 0)
    return i[keep], j[keep]
