"""Covariance spectra of layer outputs: streaming covariance, eigenvalues and saturation.

Pure numpy/scipy (never imports TensorFlow). :class:`StreamingCovariance` accumulates the
population covariance of a layer's outputs batch by batch in float64 (shifted sums,
:mod:`gen_measures.numerics.moments`; mergeable); :func:`eigenvalues_desc` gives its spectrum,
and :func:`saturation_k` / :func:`saturation` the share of the width needed for 99 % of the
variance (Shenk et al. [1]_).

References
----------
.. [1] Shenk, J., Richter, M. L., Byttner, W., Arpteg, A. & Huss, M. (2021/2022). "Feature space
   saturation during training" / "Spectral analysis of latent representations."
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.linalg

from gen_measures.errors import DataError, MeasureError
from gen_measures.numerics._check import as_float_array, check_choice, check_int, warn_degenerate
from gen_measures.numerics.moments import ShiftedMoments

__all__ = ["SATURATION_TOL", "StreamingCovariance", "eigenvalues_desc", "saturation", "saturation_k"]

#: Tolerance on cumulative variance shares in :func:`saturation_k`.
SATURATION_TOL = 1e-12


class StreamingCovariance(ShiftedMoments):
    """Population covariance of a stream of ``(m, dim)`` batches, accumulated in float64.

    Keeps ``sum x x^T``, ``sum x`` and the count; :meth:`covariance` returns
    ``sum(x x^T) / n - mean mean^T`` over *all* samples seen (``np.cov(x, rowvar=False,
    bias=True)``), whatever the batching. To avoid the cancellation of that one-pass formula
    when the mean is large compared with the spread, the sums are taken of ``x - c`` with a
    fixed shift ``c`` (the mean of the first non-empty batch); the covariance is
    shift-invariant, so the formula is unchanged ("shifted data" algorithm, Chan, Golub &
    LeVeque 1983; :class:`~gen_measures.numerics.moments.ShiftedMoments`). Memory: ``dim x dim``
    float64, plus one float64 copy of a batch. Accumulators over disjoint batches combine
    exactly with :meth:`merge`.

    Parameters
    ----------
    dim : int
        Number of features (columns of every batch).

    Examples
    --------
    >>> acc = StreamingCovariance(3)
    >>> for batch in np.array_split(np.arange(30.0).reshape(10, 3) ** 0.5, 4):
    ...     _ = acc.update(batch)
    >>> acc.n
    10

    References
    ----------
    .. [1] Chan, T. F., Golub, G. H. & LeVeque, R. J. (1983). "Algorithms for computing the
       sample variance: analysis and recommendations." The American Statistician 37(3),
       242-247.
    .. [2] Shenk, J. et al. "Spectral analysis of latent representations" (covariance over the
       whole sample, accumulated batch by batch).
    """

    def __init__(self, dim: int):
        super().__init__(dim)

    @staticmethod
    def _pair(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a[..., :, None] * b[..., None, :]  # outer product: second moment sum (x - c)(x - c)^T

    def update(self, batch) -> StreamingCovariance:
        """Add the rows of ``batch`` (shape ``(m, dim)``; ``m = 0`` is allowed). Returns self."""
        b = as_float_array(batch, "batch", ndim=2)
        if b.shape[1] != self.dim:
            raise DataError(f"batch has {b.shape[1]} columns, expected dim={self.dim}")
        if b.shape[0] == 0:
            return self
        b = b.astype(np.float64)  # fresh copy
        if self._count[0] == 0:
            self._shift[0] = b.mean(axis=0)
        b -= self._shift[0]
        self._add_shifted(0, b.shape[0], b.sum(axis=0), b.T @ b)
        return self

    @property
    def mean(self) -> np.ndarray:
        """Mean of the samples seen (NaN with a warning before any sample)."""
        if self.n == 0:
            warn_degenerate("StreamingCovariance has seen no samples; the mean is NaN")
            return np.full(self.dim, np.nan)
        return self._group_means()[0]

    def covariance(self) -> np.ndarray:
        """Population covariance ``(dim, dim)`` (NaN with a warning before any sample)."""
        n = self.n
        if n == 0:
            warn_degenerate("StreamingCovariance has seen no samples; the covariance is NaN")
            return np.full((self.dim, self.dim), np.nan)
        m = self._sum[0] / n
        cov = self._second[0] / n - np.outer(m, m)
        return (cov + cov.T) / 2.0


def eigenvalues_desc(cov) -> np.ndarray:
    """Eigenvalues of a symmetric matrix in float64, sorted descending, negatives clipped to 0.

    Uses :func:`scipy.linalg.eigvalsh` on the symmetrised matrix ``(C + C^T) / 2``. Negative
    eigenvalues of a covariance matrix are rounding errors and are set to 0. A matrix with NaN
    or inf gives an all-NaN result and a :class:`DegenerateInputWarning`.

    References
    ----------
    .. [1] Golub, G. H. & Van Loan, C. F. (2013). *Matrix Computations*, 4th ed., chapter 8.
    """
    c = as_float_array(cov, "cov", ndim=2).astype(np.float64, copy=False)
    if c.shape[0] != c.shape[1] or c.shape[0] == 0:
        raise DataError(f"cov must be a non-empty square matrix, got shape {c.shape}")
    if not np.isfinite(c).all():
        warn_degenerate("cov contains NaN or inf; eigenvalues are NaN")
        return np.full(c.shape[0], np.nan)
    w = scipy.linalg.eigvalsh((c + c.T) / 2.0, check_finite=False)
    return np.clip(w[::-1], 0.0, None)


def _cumulative_shares(eigvals) -> tuple[np.ndarray, float]:
    e = as_float_array(eigvals, "eigvals", ndim=1).astype(np.float64, copy=False)
    if e.size == 0:
        raise DataError("eigvals is empty")
    if not np.isfinite(e).all():
        raise DataError("eigvals contains NaN or inf; saturation is undefined")
    e = np.clip(np.sort(e)[::-1], 0.0, None)
    total = float(e.sum())
    if total == 0:
        return np.ones_like(e), total
    return np.cumsum(e) / total, total


def saturation_k(eigvals, threshold: float = 0.99, rule: Literal["paper", "delve"] = "paper") -> int:
    """Number of eigen-directions needed for a share ``threshold`` of the variance.

    The eigenvalues are sorted descending and negatives clipped to 0 (so raw eigenvalues in any
    order are accepted); ``p_i`` is the cumulative share of the first ``i`` of them.

    * ``rule="paper"``: ``k = min{i (1-based) : p_i >= threshold}`` (Shenk et al.: the
      eigen-directions needed to explain 99 % of the variance).
    * ``rule="delve"``: ``max(1, #{i : p_i < threshold})``, the effective behaviour of the
      released delve 0.1.45-0.1.50 (its documented "+1 when 0.99 - p_m > 0.02" never fires).
      It is one less than the paper's ``k`` whenever that is above 1.

    An all-zero spectrum gives ``k = 1`` under both rules. Comparisons use a tolerance of
    ``SATURATION_TOL = 1e-12``: ``p_i >= threshold - 1e-12`` counts as reaching the
    threshold, so that a cumulative sum equal to the threshold in exact arithmetic (e.g. 99 of
    100 equal eigenvalues) is not pushed below it by the rounding of ``cumsum``.

    Parameters
    ----------
    eigvals : array_like, shape (width,)
        Eigenvalues of a covariance matrix (finite).
    threshold : float in (0, 1], default 0.99
    rule : {"paper", "delve"}, default "paper"

    Raises
    ------
    DataError
        ``eigvals`` is empty or not finite.
    MeasureError
        ``threshold`` outside ``(0, 1]`` or unknown ``rule``.

    References
    ----------
    .. [1] Shenk, J., Richter, M. L., Byttner, W., Arpteg, A. & Huss, M. "Spectral analysis of
       latent representations" / "Feature space saturation during training" (delve package).
    """
    check_choice(rule, "rule", ("paper", "delve"))
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating, np.integer)) \
            or not 0.0 < float(threshold) <= 1.0:
        raise MeasureError(f"threshold must be a number in (0, 1], got {threshold!r}")
    p, total = _cumulative_shares(eigvals)
    if total == 0:
        return 1
    below = int(np.count_nonzero(p < float(threshold) - SATURATION_TOL))
    if rule == "paper":
        return below + 1  # p is non-decreasing and p[-1] = 1 >= threshold
    return max(1, below)


def saturation(eigvals, width: int | None = None, threshold: float = 0.99,
               rule: Literal["paper", "delve"] = "paper") -> float:
    """Saturation ``saturation_k(eigvals, threshold, rule) / width`` of one layer.

    ``width`` is the number of units or channels of the layer (default: ``len(eigvals)``).
    Non-finite eigenvalues (e.g. from NaN features) give NaN with a
    :class:`DegenerateInputWarning`.

    References
    ----------
    .. [1] Shenk, J. et al. "Spectral analysis of latent representations."
    """
    e = as_float_array(eigvals, "eigvals", ndim=1)
    if width is None:
        width = e.size
    width = check_int(width, "width", 1)
    if e.size and not np.isfinite(e).all():
        warn_degenerate("eigvals contains NaN or inf (NaN features?); saturation is NaN")
        return float("nan")
    return saturation_k(e, threshold, rule) / width

