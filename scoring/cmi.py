"""Conditional mutual information (CMI) between a measure and the generalization gap.

Two definitions are offered (see ``GUIDE.md`` section 2):

``mode="official"``
    The number the PGDL leaderboard published, reproduced quirk for quirk: for every *ordered*
    pair of distinct hyperparameters ``(h1, h2)`` (file order), all ordered model pairs
    ``(i, j)`` *including self-pairs* fill a 2 x 2 x K table (axis 0: ``gap_i > gap_j``, axis 1:
    ``measure_i > measure_j``, ties "not greater"; axis 2: the slice named by the *string
    concatenation* ``str(h1_i) + str(h1_j) + str(h2_i) + str(h2_j)``, K = |V1|^2 |V2|^2 slices
    enumerated from ``possible_values``; when two slice names collide (values ``1`` and ``11``)
    the later index wins and the earlier slices stay empty). Score(h1, h2) = *unweighted* mean
    over the K slices of MI / unweighted mean of the gap-axis entropy (log base 2, ``p + 1e-12``
    inside the entropy's log); an empty slice makes that pair NaN. The task score is folded over
    the pairs in order with Python's ``min(score, running)``, which *resets* to the next score
    after a NaN. The grid must be complete with one model per cell (:class:`GridError` otherwise).

``mode="clean"``
    Jiang et al.'s definition: ``I(V_mu; V_g | U_S) / H(V_g | U_S)`` with slices weighted by
    their probability ``p(U_S)``, ordered pairs of *distinct* models, collision-free slices (the
    values themselves, not their strings), minimum over all ``S`` with ``|S| = 2`` (the values
    for ``|S| = 0`` and ``1`` are reported too). Works on incomplete grids and reports the
    coverage. Hyperparameters taking a single value among the models are dropped from the
    conditioning sets (they condition on nothing) with a :class:`DegenerateInputWarning`.

Both are computed from per-block pair counts (:mod:`scoring._pairs`), fully vectorised; the
implementations live in :mod:`scoring.cmi_official` and :mod:`scoring.cmi_clean`, this module
is the interface.

References
----------
* Y. Jiang, B. Neyshabur, H. Mobahi, D. Krishnan, S. Bengio, "Fantastic generalization measures
  and where to find them", ICLR 2020 (arXiv:1912.02178), section 4 (conditional MI).
* Y. Jiang et al., "NeurIPS 2020 Competition: Predicting Generalization in Deep Learning"
  (arXiv:2012.07976); the official scoring program, ``mutual_information.py`` and ``score.py``
  of the PGDL starting kit (Apache-2.0, Y. Jiang, 2020), whose behaviour ``mode="official"``
  reproduces (no code copied).
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from scoring.errors import DegenerateInputWarning, ScoringError
from scoring._validate import align, dense_ranks, encode
from scoring.cmi_clean import CleanCMIScorer, coverage, informative_hparams
from scoring.cmi_official import OfficialCMIScorer, check_official_grid, fold_official, warn_collisions

__all__ = [
    "CMIResult",
    "CleanCMIScorer",
    "OfficialCMIScorer",
    "check_official_grid",
    "cmi_details",
    "conditional_mutual_information",
    "fold_official",
]

MODES = ("official", "clean")


@dataclass
class CMIResult:
    """A CMI score with its details.

    Attributes
    ----------
    mode : ``"official"`` or ``"clean"``.
    score : the task score (official: the folded minimum; clean: the minimum over |S| = 2).
    table : one row per conditioning set. Official: ``h1, h2, mi, entropy, score, n_slices,
        n_empty_slices, n_skipped_pairs`` (slice means, fold order). Clean: ``set, size, mi,
        entropy, score, n_slices`` with ``mi = I(V_mu; V_g | U_S)`` and
        ``entropy = H(V_g | U_S)``.
    n_models : models scored.
    s0, s1 : clean mode only: the score with no conditioning and the minimum over |S| = 1.
    coverage : clean mode: ``n_cells`` (product of the possible values), ``n_observed_cells``,
        ``n_duplicate_models``, ``coverage`` (observed / possible cells).
    """

    mode: str
    score: float
    table: pd.DataFrame
    n_models: int
    s0: float = math.nan
    s1: float = math.nan
    coverage: dict[str, float] = field(default_factory=dict)

    def __float__(self) -> float:
        return float(self.score)


def possible_values_of(frame: pd.DataFrame, possible_values: Mapping[str, Sequence[Any]] | None) -> dict[str, list[Any]]:
    if possible_values is None:
        return {str(h): encode(list(frame[h]))[1] for h in frame.columns}
    unknown = [h for h in possible_values if h not in frame.columns]
    if unknown:
        raise ScoringError(f"possible_values: hyperparameters {unknown} are not columns of hparams {list(frame.columns)}")
    return {h: list(v) for h, v in possible_values.items()}


def _min_or_nan(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64)
    return float(np.nanmin(x)) if x.size and not np.all(np.isnan(x)) else math.nan


def _official(ranks: np.ndarray, gaps: np.ndarray, frame: pd.DataFrame, pv: Mapping[str, Sequence[Any]]) -> CMIResult:
    check_official_grid(frame, pv)
    return official_result(OfficialCMIScorer(gaps, frame, pv), ranks)


def official_result(scorer: OfficialCMIScorer, ranks: np.ndarray) -> CMIResult:
    """The official :class:`CMIResult` of the measure ``ranks`` from a prebuilt scorer."""
    mi, h, ratio = scorer.pair_scores(ranks)
    table = pd.DataFrame(
        {
            "h1": [p[0] for p in scorer.pairs],
            "h2": [p[1] for p in scorer.pairs],
            "mi": mi,
            "entropy": h,
            "score": ratio,
            "n_slices": scorer.n_slices,
            "n_empty_slices": scorer.n_empty_slices.astype(int),
            "n_skipped_pairs": scorer.n_skipped_pairs.astype(int),
        }
    )
    warn_collisions(scorer)
    return CMIResult(mode="official", score=fold_official(ratio), table=table, n_models=len(ranks))


def clean_result(
    ranks: np.ndarray,
    gaps: np.ndarray,
    frame: pd.DataFrame,
    pv: Mapping[str, Sequence[Any]],
    pairs: tuple[np.ndarray, ...] | None = None,
) -> tuple[CMIResult, CleanCMIScorer]:
    """The clean :class:`CMIResult` and its scorer (internal entry point, no validation)."""
    keep, drop = informative_hparams(frame)
    if drop:
        warnings.warn(
            f"clean CMI: hyperparameter(s) {drop} take a single value among the {len(gaps)} models; "
            "they condition on nothing and are left out of the conditioning sets",
            DegenerateInputWarning,
            stacklevel=3,
        )
    sets: list[tuple[str, ...]] = [()] + [(h,) for h in keep] + list(itertools.combinations(keep, 2))
    scorer = CleanCMIScorer(gaps, frame, sets, pairs)
    mi, h, ratio = scorer.set_scores(ranks)
    table = pd.DataFrame(
        {"set": sets, "size": [len(s) for s in sets], "mi": mi, "entropy": h, "score": ratio, "n_slices": scorer.n_slices}
    )
    nan_sets = [s for s, r in zip(sets, ratio) if np.isnan(r)]
    if nan_sets:
        warnings.warn(
            f"clean CMI: H(V_g | U_S) = 0 for S in {nan_sets[:5]} (every slice holds one gap direction only); "
            "those sets score NaN and are left out of the minimum",
            DegenerateInputWarning,
            stacklevel=3,
        )
    sizes = table["size"].to_numpy()
    score = _min_or_nan(ratio[sizes == 2])
    if len(keep) < 2:
        warnings.warn(
            f"clean CMI: fewer than 2 informative hyperparameters ({keep}); the |S| = 2 minimum is NaN, "
            "see the |S| = 0 and 1 values",
            DegenerateInputWarning,
            stacklevel=3,
        )
    result = CMIResult(
        mode="clean",
        score=score,
        table=table,
        n_models=len(gaps),
        s0=float(ratio[0]),
        s1=_min_or_nan(ratio[sizes == 1]),
        coverage=coverage(frame, pv),
    )
    return result, scorer


def cmi_details(
    values: Any,
    gaps: Any,
    hparams: Any,
    mode: str = "official",
    *,
    possible_values: Mapping[str, Sequence[Any]] | None = None,
) -> CMIResult:
    """CMI of a measure with the generalization gap, with the per-set table.

    Parameters
    ----------
    values : per-model measure values (higher = larger predicted gap; apply the direction
        beforehand with :func:`scoring.ranking.rank_models`). Sequence or pandas Series.
    gaps : per-model generalization gaps (same alignment rules).
    hparams : model x hyperparameter DataFrame (e.g. ``ModelConfigs.hparams_frame()``); pandas
        inputs are aligned on its index.
    mode : ``"official"`` (PGDL leaderboard, complete grids only) or ``"clean"``.
    possible_values : hyperparameter -> possible values (e.g. ``ModelConfigs.possible_values``);
        defines the grid (official: K and the slice names; clean: the coverage). Default: the
        observed values. Its key order is the official pair order (default: column order).

    Returns
    -------
    CMIResult

    Raises
    ------
    ScoringError
        Invalid input (non-finite values, fewer than 3 models, unknown mode).
    GridError
        ``mode="official"`` on an incomplete or duplicated grid or with fewer than 2
        hyperparameters (the message lists the cells).
    """
    if mode not in MODES:
        raise ScoringError(f"mode: expected one of {MODES}, got {mode!r}")
    if hparams is None:
        raise ScoringError("hparams: required for the conditional mutual information")
    v, g, frame = align(values, gaps, hparams)
    pv = possible_values_of(frame, possible_values)
    ranks = dense_ranks(v)
    if mode == "official":
        return _official(ranks, g, frame, pv)
    return clean_result(ranks, g, frame, pv)[0]


def conditional_mutual_information(
    values: Any,
    gaps: Any,
    hparams: Any,
    mode: str = "official",
    *,
    possible_values: Mapping[str, Sequence[Any]] | None = None,
) -> float:
    """The CMI score of a measure (a float); see :func:`cmi_details` for parameters and errors.

    Examples
    --------
    >>> import pandas as pd
    >>> hp = pd.DataFrame({"a": [0, 0, 0, 0, 1, 1, 1, 1], "b": [0, 0, 1, 1] * 2, "c": [0, 1] * 4})
    >>> gaps = [0.1, 0.5, 0.2, 0.4, 0.3, 0.8, 0.6, 0.7]
    >>> conditional_mutual_information(gaps, gaps, hp, mode="clean")  # the oracle
    1.0
    >>> round(conditional_mutual_information(gaps, gaps, hp, mode="official"), 6)
    1.0
    """
    if mode == "official":
        if hparams is None:
            raise ScoringError("hparams: required for the conditional mutual information")
        v, g, frame = align(values, gaps, hparams)
        pv = possible_values_of(frame, possible_values)
        columns = {h: frame[h].tolist() for h in pv}
        check_official_grid(columns, pv)
        scorer = OfficialCMIScorer(g, columns, pv)
        warn_collisions(scorer)
        return float(scorer.score(dense_ranks(v)))
    return float(cmi_details(values, gaps, hparams, mode, possible_values=possible_values).score)
