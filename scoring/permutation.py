"""Permutation baseline of a CMI score: where does the measure stand among random measures?

The CMI of a random measure is far from 0 on small grids (about 0.15 on 18 models, 0.02 on 81),
so a raw score is hard to read. This module permutes the measure's values across the models
(keeping the gaps and the grid fixed), scores every permutation with the same CMI definition, and
reports the observed score's percentile in that null distribution
(``100 * (#{null < obs} + #{null == obs} / 2) / #null``) and the one-sided permutation p-value
``(1 + #{null >= obs}) / (1 + #null)``. Seeded with :func:`numpy.random.default_rng`: the same
seed gives the same numbers. The gap-side work is done once (:mod:`scoring.cmi` scorers), so a
permutation costs one measure-side pass.

References
----------
* B. Phipson, G. K. Smyth, "Permutation p-values should never be zero", Stat. Appl. Genet. Mol.
  Biol. 9 (2010) (the ``+1`` correction).
* Y. Jiang et al., "Fantastic generalization measures and where to find them", ICLR 2020.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from scoring.errors import ScoringError
from scoring._validate import align, dense_ranks
from scoring.cmi import MODES, CleanCMIScorer, OfficialCMIScorer, possible_values_of, check_official_grid, informative_hparams

#: Work-array budget of one batch of permutations.
_BATCH_BYTES = 16 * 2**20

__all__ = [
    "PermutationResult",
    "cmi_null_distribution",
    "make_cmi_scorer",
    "null_percentile",
    "null_scores",
    "percentile_of",
    "permutation_percentile",
]


@dataclass
class PermutationResult:
    """Observed score, its percentile and p-value against the permutation null.

    Attributes
    ----------
    score : the observed CMI.
    percentile : in [0, 100]; NaN when the score or every null value is NaN.
    p_value : one-sided ``(1 + #{null >= score}) / (1 + #null)``.
    null : the permutation scores (NaN ones kept).
    """

    score: float
    percentile: float
    p_value: float
    null: np.ndarray


def percentile_of(score: float, null: np.ndarray) -> tuple[float, float]:
    """Percentile (ties count half) and one-sided p-value of ``score`` in ``null`` (NaNs ignored)."""
    null = np.asarray(null, dtype=np.float64)
    null = null[~np.isnan(null)]
    if math.isnan(score) or null.size == 0:
        return math.nan, math.nan
    below = np.count_nonzero(null < score)
    ties = np.count_nonzero(null == score)
    pct = 100.0 * (below + 0.5 * ties) / null.size
    p = (1.0 + np.count_nonzero(null >= score)) / (1.0 + null.size)
    return float(pct), float(p)


def make_cmi_scorer(gaps: np.ndarray, frame: pd.DataFrame, pv: Mapping[str, Sequence[Any]], mode: str) -> OfficialCMIScorer | CleanCMIScorer:
    """A reusable scorer ``ranks -> CMI`` on a fixed zoo (official: folded score; clean: min over |S| = 2).

    The gap-side work is done here, once. Official mode validates the grid (:class:`GridError`).
    """
    if mode == "official":
        check_official_grid(frame, pv)
        return OfficialCMIScorer(gaps, frame, pv)
    keep, _ = informative_hparams(frame)
    return CleanCMIScorer(gaps, frame, list(itertools.combinations(keep, 2)))


def cmi_null_distribution(
    ranks: np.ndarray,
    gaps: np.ndarray,
    frame: pd.DataFrame,
    possible_values: Mapping[str, Sequence[Any]] | None = None,
    *,
    mode: str = "official",
    n_permutations: int = 200,
    seed: int = 0,
) -> tuple[float, np.ndarray]:
    """Observed CMI of ``ranks`` and the CMIs of ``n_permutations`` seeded permutations of it.

    Low-level (no validation of ``ranks``/``gaps``); see :func:`permutation_percentile`.
    """
    pv = possible_values_of(frame, possible_values)
    scorer = make_cmi_scorer(np.asarray(gaps, dtype=np.float64), frame, pv, mode)
    with np.errstate(divide="ignore", invalid="ignore"):
        observed = scorer.score(np.asarray(ranks))
    return float(observed), null_scores(scorer, ranks, n_permutations, seed)


def _permutations(n: int, n_permutations: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if not n_permutations:
        return np.zeros((0, n), dtype=np.int64)
    return np.stack([rng.permutation(n) for _ in range(n_permutations)])


def _batch_size(n: int) -> int:
    """Permutations per batch: the comparison bits of a batch take about ``3 P n^2 / 2`` bytes."""
    return int(max(1, min(64, _BATCH_BYTES // (3 * n * n // 2 + 1))))


def null_scores(scorer: Any, ranks: np.ndarray, n_permutations: int, seed: int) -> np.ndarray:
    """``scorer.score`` of ``n_permutations`` seeded random permutations of ``ranks``.

    Permutations are drawn one by one from ``numpy.random.default_rng(seed)`` (so the result
    does not depend on the batch size) and scored in batches bounded to about
    :data:`_BATCH_BYTES` of work arrays.
    """
    ranks = np.asarray(ranks)
    perms = _permutations(len(ranks), n_permutations, seed)
    batch = _batch_size(len(ranks))
    out = np.empty(n_permutations, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        for lo in range(0, n_permutations, batch):
            out[lo:lo + batch] = scorer.score(ranks[perms[lo:lo + batch]])
    return out


def null_percentile(scorer: Any, ranks: np.ndarray, observed: float, n_permutations: int, seed: int) -> tuple[float, float]:
    """:func:`percentile_of` ``observed`` among the permutation scores, with an exact early exit.

    The score is a minimum over partitions; a permutation is known to score below
    ``observed`` as soon as one partition does, so the remaining partitions are skipped (when
    ``scorer.early_exit``: no NaN can occur). Same permutations, same result as
    ``percentile_of(observed, null_scores(...))``.
    """
    if not getattr(scorer, "early_exit", False) or math.isnan(observed):
        return percentile_of(observed, null_scores(scorer, ranks, n_permutations, seed))
    ranks = np.asarray(ranks)
    if not scorer.null_parts:
        return math.nan, math.nan
    perms = _permutations(len(ranks), n_permutations, seed)
    batch = _batch_size(len(ranks))
    below = ties = 0
    with np.errstate(divide="ignore", invalid="ignore"):
        for lo in range(0, n_permutations, batch):
            r = ranks[perms[lo:lo + batch]]
            bits = scorer.counter.compare(r)
            best = np.full(len(r), math.inf)
            open_rows = bits_rows = np.arange(len(r))  # undecided rankings; rankings held in `bits`
            for part in scorer.null_parts:
                if not open_rows.size:
                    break
                if len(open_rows) < len(bits_rows):
                    bits, bits_rows = bits.rows(np.searchsorted(bits_rows, open_rows)), open_rows
                s = scorer.partition_min(bits, part)
                best[open_rows] = np.minimum(best[open_rows], s)
                open_rows = open_rows[~(s < observed)]
            below += int(np.count_nonzero(best < observed))
            ties += int(np.count_nonzero(best == observed))
    pct = 100.0 * (below + 0.5 * ties) / n_permutations
    return float(pct), float((1.0 + n_permutations - below) / (1.0 + n_permutations))


def permutation_percentile(
    values: Any,
    gaps: Any,
    hparams: Any,
    *,
    mode: str = "official",
    possible_values: Mapping[str, Sequence[Any]] | None = None,
    n_permutations: int = 200,
    seed: int = 0,
) -> PermutationResult:
    """Percentile of a measure's CMI among ``n_permutations`` random permutations of its values.

    Parameters
    ----------
    values, gaps, hparams : as in :func:`scoring.cmi.cmi_details`.
    mode : ``"official"`` (complete grids) or ``"clean"`` (minimum over |S| = 2).
    possible_values : the grid (default: observed values).
    n_permutations : number of permutations (>= 1).
    seed : seed of :func:`numpy.random.default_rng`.

    Returns
    -------
    PermutationResult

    Raises
    ------
    ScoringError
        Bad input or ``n_permutations < 1``; :class:`~scoring.errors.GridError` for the official
        mode on an invalid grid.
    """
    if mode not in MODES:
        raise ScoringError(f"mode: expected one of {MODES}, got {mode!r}")
    if isinstance(n_permutations, bool) or not isinstance(n_permutations, (int, np.integer)) or n_permutations < 1:
        raise ScoringError(f"n_permutations: expected an integer >= 1, got {n_permutations!r}")
    v, g, frame = align(values, gaps, hparams)
    observed, null = cmi_null_distribution(
        dense_ranks(v), g, frame, possible_values, mode=mode, n_permutations=int(n_permutations), seed=seed
    )
    pct, p = percentile_of(observed, null)
    return PermutationResult(score=observed, percentile=pct, p_value=p, null=null)
