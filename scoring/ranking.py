"""Ranking models by a measure: the only place where a measure's *direction* is applied.

A measure declares whether a higher value predicts a larger generalization gap
(:data:`LARGER_GAP`, ``+1``) or a smaller one (:data:`SMALLER_GAP`, ``-1``);
the constants are defined here and re-exported by :mod:`gen_measures.registry`. Values are stored raw everywhere; ranks
are oriented so that a *higher rank predicts a larger gap*, ties get the average rank
(1..n). Every score in :mod:`scoring` is a function of these ranks only.

References
----------
* scikit-learn, ``make_scorer(greater_is_better=...)`` (direction as metadata).
* SciPy, ``scipy.stats.rankdata(method="average")`` (same convention; implemented here with
  numpy so that importing :mod:`scoring` stays fast).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from scoring.errors import ScoringError
from scoring._validate import as_float_vector

#: Direction: a higher value predicts a *larger* generalization gap.
LARGER_GAP = 1
#: Direction: a higher value predicts a *smaller* generalization gap.
SMALLER_GAP = -1

__all__ = ["LARGER_GAP", "SMALLER_GAP", "average_ranks", "check_direction", "rank_models", "rank_table"]


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``x`` (ascending), ties sharing the mean of their ranks (``rankdata`` "average")."""
    x = np.asarray(x)
    order = np.argsort(x, kind="stable")
    sorted_x = x[order]
    starts = np.flatnonzero(np.r_[True, sorted_x[1:] != sorted_x[:-1]]) if len(x) else np.zeros(0, dtype=np.int64)
    ends = np.r_[starts[1:], len(x)]
    mean_rank = (starts + ends + 1) / 2.0  # ranks starts+1 .. ends, averaged
    out = np.empty(len(x), dtype=np.float64)
    out[order] = np.repeat(mean_rank, ends - starts)
    return out


def check_direction(direction: Any, name: str = "direction") -> int:
    """``direction`` as ``+1`` / ``-1``; :class:`ScoringError` naming ``name`` otherwise."""
    if isinstance(direction, (bool, np.bool_)) or direction not in (LARGER_GAP, SMALLER_GAP):
        raise ScoringError(
            f"{name}: expected LARGER_GAP (1, higher value = larger gap) or SMALLER_GAP (-1), got {direction!r}"
        )
    return int(direction)


def rank_models(values: Any, direction: int = LARGER_GAP) -> Any:
    """Average ranks (1..n) of ``values`` oriented so that a higher rank predicts a larger gap.

    Parameters
    ----------
    values : per-model values (sequence, mapping or Series; all finite).
    direction : ``+1`` if a higher value predicts a larger gap, ``-1`` otherwise.

    Returns
    -------
    numpy array, or a pandas Series with the same index when ``values`` is a Series/mapping.
    """
    d = check_direction(direction)
    if isinstance(values, Mapping) and not isinstance(values, pd.Series):
        values = pd.Series(dict(values), dtype=object)
    v = as_float_vector(values, "values")
    ranks = average_ranks(d * v)
    if isinstance(values, pd.Series):
        return pd.Series(ranks, index=values.index, name=values.name)
    return ranks


def rank_table(values: pd.DataFrame, directions: Mapping[str, int]) -> pd.DataFrame:
    """Rank every column (a measure) of a model x measure table with its direction.

    Raises
    ------
    ScoringError
        When a column has no entry in ``directions`` or holds non-finite values.
    """
    missing = [c for c in values.columns if c not in directions]
    if missing:
        raise ScoringError(f"directions: no direction for measure(s) {missing}; pass +1 or -1 for each")
    out = {}
    for c in values.columns:
        try:
            out[c] = rank_models(values[c], check_direction(directions[c], f"directions[{c!r}]"))
        except ScoringError as exc:
            raise ScoringError(f"measure {c!r}: {exc}") from None
    return pd.DataFrame(out, index=values.index)
