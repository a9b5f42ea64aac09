"""Kendall rank correlations between a measure and the generalization gap.

* :func:`kendall_tau_a`: ``sum_{i != j} sign(mu_i - mu_j) sign(g_i - g_j) / (n (n - 1))``
  (own implementation; ties count 0 and stay in the denominator);
* :func:`kendall_tau_b`: SciPy's tie-corrected tau-b;
* :func:`granulated_kendall`: Jiang et al.'s granulated coefficient: for every hyperparameter
  ``i``, ``psi_i`` = mean of tau-a over the slices of models that share every *other*
  hyperparameter (models differing only in ``i``), and ``Psi`` = mean of the ``psi_i``.
  Slices with fewer than 2 models are skipped and counted.

References
----------
* M. G. Kendall, "A new measure of rank correlation", Biometrika 30 (1938).
* Y. Jiang, B. Neyshabur, H. Mobahi, D. Krishnan, S. Bengio, "Fantastic generalization measures
  and where to find them", ICLR 2020 (arXiv:1912.02178), section 3 (granulated Kendall).
* SciPy, ``scipy.stats.kendalltau`` (tau-b).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scoring.errors import DegenerateInputWarning
from scoring._validate import align, encode, joint_codes, pairs_within

__all__ = ["GranulatedKendall", "granulated_kendall", "kendall_tau_a", "kendall_tau_b"]

#: Rows per block of the n x n comparison matrices (bounds the memory to ~ 2048 x n bytes).
_BLOCK = 2048


def _sign_product_sum(v: np.ndarray, g: np.ndarray) -> float:
    """``sum_{i != j} sign(v_i - v_j) sign(g_i - g_j)``, by counting.

    Over ordered pairs, ``#{v_i > v_j, g_i > g_j} = #{v_i < v_j, g_i < g_j}`` (swap ``i, j``),
    so the sum is ``2 (#{v_i > v_j, g_i > g_j} - #{v_i > v_j, g_i < g_j})``.
    """
    total = 0
    for lo in range(0, len(v), _BLOCK):
        up = v[lo:lo + _BLOCK, None] > v[None, :]
        total += np.count_nonzero(up & (g[lo:lo + _BLOCK, None] > g[None, :]))
        total -= np.count_nonzero(up & (g[lo:lo + _BLOCK, None] < g[None, :]))
    return 2.0 * total


def kendall_tau_a(values: Any, gaps: Any) -> float:
    """Kendall's tau-a between ``values`` and ``gaps`` (ties count 0, no tie correction).

    Parameters
    ----------
    values, gaps : per-model sequences (or Series aligned on the index), at least 3 models.

    Returns
    -------
    float in [-1, 1]; antisymmetric under ``values -> -values``.
    """
    v, g, _ = align(values, gaps)
    n = len(v)
    return _sign_product_sum(v, g) / (n * (n - 1))


def kendall_tau_b(values: Any, gaps: Any) -> float:
    """SciPy's Kendall tau-b (tie-corrected); NaN with a warning when either input is constant."""
    v, g, _ = align(values, gaps)
    if np.ptp(v) == 0 or np.ptp(g) == 0:
        which = "values" if np.ptp(v) == 0 else "gaps"
        warnings.warn(f"kendall_tau_b: {which} are constant; tau-b is undefined (NaN)", DegenerateInputWarning, stacklevel=2)
        return math.nan
    import scipy.stats  # imported here: slow to import, only tau-b needs it

    return float(scipy.stats.kendalltau(v, g, variant="b").statistic)


@dataclass
class GranulatedKendall:
    """Granulated Kendall coefficient and its parts.

    Attributes
    ----------
    psi : mean of the defined ``psi_i`` (NaN when none is defined).
    psi_i : hyperparameter -> mean tau-a over its slices (NaN when no slice has 2 models).
    n_slices : hyperparameter -> slices used.
    n_skipped : hyperparameter -> slices skipped (fewer than 2 models).
    """

    psi: float
    psi_i: dict[str, float] = field(default_factory=dict)
    n_slices: dict[str, int] = field(default_factory=dict)
    n_skipped: dict[str, int] = field(default_factory=dict)


def granulated_kendall(values: Any, gaps: Any, hparams: Any) -> GranulatedKendall:
    """Granulated Kendall's Psi (Jiang et al. 2020) with per-hyperparameter ``psi_i``.

    Parameters
    ----------
    values, gaps : per-model sequences (pandas inputs aligned on the ``hparams`` index).
    hparams : model x hyperparameter DataFrame.

    Returns
    -------
    GranulatedKendall
        A hyperparameter whose slices all hold a single model (e.g. one taking a single value)
        gets ``psi_i = NaN`` with a :class:`DegenerateInputWarning` and is left out of ``psi``.
    """
    v, g, frame = align(values, gaps, hparams)
    n = len(v)
    codes = {h: encode(list(frame[h]))[0] for h in frame.columns}
    out = GranulatedKendall(psi=math.nan)
    for h in frame.columns:
        others = [codes[o] for o in frame.columns if o != h]
        group, _ = joint_codes(others, dense_limit=0) if others else (np.zeros(n, dtype=np.int64), None)
        size = np.bincount(group)
        i, j = pairs_within(group)
        concord = np.sign(v[i] - v[j]) * np.sign(g[i] - g[j])
        sums = 2.0 * np.bincount(group[i], weights=concord, minlength=len(size))
        ok = size >= 2
        taus = sums[ok] / (size[ok] * (size[ok] - 1))
        out.n_slices[h] = int(ok.sum())
        out.n_skipped[h] = int((~ok).sum())
        out.psi_i[h] = float(taus.mean()) if taus.size else math.nan
    undefined = [h for h, p in out.psi_i.items() if math.isnan(p)]
    if undefined:
        warnings.warn(
            f"granulated_kendall: no slice with 2 or more models for hyperparameter(s) {undefined} "
            "(single value, or no two models differing only there); psi_i = NaN, left out of Psi",
            DegenerateInputWarning,
            stacklevel=2,
        )
    defined = [p for p in out.psi_i.values() if not math.isnan(p)]
    out.psi = float(np.mean(defined)) if defined else math.nan
    return out
