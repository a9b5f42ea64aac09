"""Power-law fit of a spectrum's tail (Clauset, Shalizi & Newman), for :mod:`baselines.spectral`.

Continuous power-law maximum likelihood with the Kolmogorov-Smirnov choice of ``xmin``, as
weightwatcher fits the empirical spectral density of a layer. Pure numpy (never imports
TensorFlow).

References
----------
.. [1] Clauset, A., Shalizi, C. R. & Newman, M. E. J. (2009). "Power-law distributions in
   empirical data." SIAM Review 51(4), 661-703.
.. [2] Martin, C. H. & Mahoney, M. W. (2021). "Implicit self-regularization in deep neural
   networks: evidence from random matrix theory and implications for learning." JMLR 22(165).
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

import numpy as np

from gen_measures.errors import MeasureError
from gen_measures.numerics._check import as_float_array, check_choice, check_int, warn_degenerate

__all__ = ["PowerLawFit", "power_law_fit"]


class PowerLawFit(NamedTuple):
    """Result of :func:`power_law_fit`."""

    alpha: float
    xmin: float
    ks_distance: float
    n_tail: int


def _ks_distance(tail: np.ndarray, xmin: float, alpha: float) -> float:
    """KS distance between the empirical CDF of ``tail`` (sorted) and the fitted power law."""
    m = tail.size
    cdf = -np.expm1((1.0 - alpha) * np.log(tail / xmin))  # 1 - (x / xmin)^(1 - alpha)
    ranks = np.arange(1, m + 1) / m
    return max(float(np.max(ranks - cdf)), float(np.max(cdf - (ranks - 1.0 / m))))


def _fit_tail(x: np.ndarray, j: int, log_suffix: np.ndarray) -> tuple[float, float]:
    """MLE alpha and KS distance of the tail ``x[j:]`` (``x`` sorted ascending, positive)."""
    m = x.size - j
    denom = log_suffix[j] - m * math.log(x[j])  # sum_i ln(x_i / xmin) over the tail
    if denom <= 0:
        return float("nan"), float("inf")
    alpha = 1.0 + m / denom
    return alpha, _ks_distance(x[j:], float(x[j]), alpha)


def power_law_fit(eigvals, *, xmin: float | Literal["auto"] = "auto", min_tail: int = 5) -> PowerLawFit:
    """Fit a continuous power law ``p(x) ~ x^(-alpha)`` to the tail ``x >= xmin`` of a spectrum.

    The fit of Clauset, Shalizi & Newman [1]_, as used by weightwatcher [2]_ on the empirical
    spectral density of a layer (the eigenvalues of ``W^T W``):

    * only positive values are used;
    * for a given ``xmin``, the maximum-likelihood exponent over the ``m`` values
      ``x_i >= xmin`` is ``alpha = 1 + m / sum_i ln(x_i / xmin)`` (their eq. 3.1, without the
      ``(m - 1) / m`` small-sample correction);
    * ``xmin="auto"`` tries every distinct value that leaves at least ``min_tail`` values in
      the tail and keeps the one minimising the Kolmogorov-Smirnov distance
      ``max |S(x) - P(x)|`` between the empirical CDF of the tail and the fitted CDF
      ``P(x) = 1 - (x / xmin)^(1 - alpha)`` (ties: the smallest ``xmin``). Cost O(n^2)
      vector work for n eigenvalues (fine for layer widths up to ~10^4).

    Fewer than ``min_tail`` positive values (or in the tail of a given ``xmin``), or a tail of
    identical values, give NaN fields with a :class:`DegenerateInputWarning`.

    References
    ----------
    .. [1] Clauset, A., Shalizi, C. R. & Newman, M. E. J. (2009). "Power-law distributions in
       empirical data." SIAM Review 51(4), 661-703.
    .. [2] Martin, C. H. & Mahoney, M. W. (2021). "Implicit self-regularization in deep neural
       networks: evidence from random matrix theory and implications for learning." JMLR
       22(165), 1-73.
    """
    min_tail = check_int(min_tail, "min_tail", 2)
    e = as_float_array(eigvals, "eigvals", ndim=1).astype(np.float64, copy=False)
    nan_fit = PowerLawFit(float("nan"), float("nan"), float("nan"), 0)
    if not np.isfinite(e).all():
        warn_degenerate("eigvals contains NaN or inf; power-law alpha is NaN")
        return nan_fit
    x = np.sort(e[e > 0])
    if x.size < min_tail:
        warn_degenerate(f"only {x.size} positive eigenvalues (< min_tail={min_tail}); power-law alpha is NaN")
        return nan_fit
    log_suffix = np.cumsum(np.log(x)[::-1])[::-1]
    if isinstance(xmin, str):
        check_choice(xmin, "xmin", ("auto",))
        _, first = np.unique(x, return_index=True)
        candidates = first[x.size - first >= min_tail]
        best = (float("inf"), -1, float("nan"))
        for j in candidates:
            alpha, ks = _fit_tail(x, int(j), log_suffix)
            if ks < best[0]:
                best = (ks, int(j), alpha)
        ks, j, alpha = best
        if j < 0:
            warn_degenerate("every candidate tail has identical values; power-law alpha is NaN")
            return nan_fit
        return PowerLawFit(alpha, float(x[j]), ks, int(x.size - j))
    if isinstance(xmin, bool) or not isinstance(xmin, (int, float, np.floating, np.integer)) \
            or not (math.isfinite(xmin) and xmin > 0):
        raise MeasureError(f"xmin must be 'auto' or a positive number, got {xmin!r}")
    j = int(np.searchsorted(x, float(xmin), side="left"))
    m = x.size - j
    if m < min_tail:
        warn_degenerate(f"only {m} eigenvalues >= xmin={xmin} (< min_tail={min_tail}); power-law alpha is NaN")
        return nan_fit
    # MLE with the given xmin (which need not be a data point).
    denom = float(np.sum(np.log(x[j:] / float(xmin))))
    if denom <= 0:
        warn_degenerate("every tail value equals xmin; power-law alpha is undefined (NaN)")
        return nan_fit
    alpha = 1.0 + m / denom
    return PowerLawFit(alpha, float(xmin), _ks_distance(x[j:], float(xmin), alpha), m)
