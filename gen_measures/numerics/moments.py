"""Shifted streaming moments: the technique every batch accumulator of the toolkit shares.

An accumulator keeps, for each of ``G`` groups (one, or one per class), the count ``n_g``, a
fixed shift ``c_g`` (taken from the group's first samples), ``s_g = sum (x - c_g)`` and a second
moment ``Q_g = sum B(x - c_g, x - c_g)`` for a symmetric bilinear form ``B`` (outer product:
covariance; elementwise product: per-feature variance; inner product: squared norms). The
shift removes the cancellation of the one-pass formulas ``Q / n - B(s / n, s / n)`` when the
mean is large compared with the spread ("shifted data" algorithm, Chan, Golub & LeVeque 1983).

Two accumulators over disjoint samples merge exactly: the other's sums are re-expressed at
this shift, ``delta = c' - c``, ``s += s' + n' delta`` and
``Q += Q' + B(s', delta) + B(delta, s') + n' B(delta, delta)`` (the pairwise update of Chan et
al.), so parallel workers can each fill one and combine them.

Subclasses define :meth:`_pair` (``B``, vectorised over leading axes) and their ``update``,
which calls :meth:`_add_shifted`.

References
----------
.. [1] Chan, T. F., Golub, G. H. & LeVeque, R. J. (1983). "Algorithms for computing the
   sample variance: analysis and recommendations." The American Statistician 37(3), 242-247.
"""

from __future__ import annotations

import numpy as np

from gen_measures.errors import DataError
from gen_measures.numerics._check import check_int

__all__ = ["ShiftedMoments"]


class ShiftedMoments:
    """Base class: per-group count, shift, shifted sum and shifted second moment, mergeable.

    Parameters
    ----------
    dim : int or None
        Width of the rows; ``None`` lets a subclass fix it at the first batch (:meth:`_allocate`).
    n_groups : int, default 1
    """

    def __init__(self, dim: int | None, n_groups: int = 1):
        self.dim: int | None = None
        self._count = np.zeros(n_groups, dtype=np.int64)
        if dim is not None:
            self._allocate(check_int(dim, "dim", 1))

    @staticmethod
    def _pair(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The bilinear form ``B`` over the last axis (leading axes are groups)."""
        raise NotImplementedError

    def _layout(self) -> dict[str, int | None]:
        """What two accumulators must share to be merged (named as in the constructor)."""
        return {"dim": self.dim}

    def _allocate(self, dim: int) -> None:
        g = self._count.size
        self.dim = dim
        self._shift = np.zeros((g, dim))
        self._sum = np.zeros((g, dim))
        self._second = np.zeros((g,) + np.shape(self._pair(np.zeros(dim), np.zeros(dim))))

    def _add_shifted(self, groups, counts, sums, seconds) -> None:
        """Add ``counts`` samples whose sums of ``x - c`` are ``sums`` and ``seconds`` to ``groups``."""
        self._sum[groups] += sums
        self._second[groups] += seconds
        self._count[groups] += counts

    def _group_means(self) -> np.ndarray:
        """``c_g + s_g / n_g`` per group (inf/NaN where ``n_g = 0``; callers mask those)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self._shift + self._sum / self._count[:, None]

    @property
    def n(self) -> int:
        """Number of samples seen."""
        return int(self._count.sum())

    def merge(self, other: ShiftedMoments) -> ShiftedMoments:
        """Add the statistics of ``other`` (an accumulator over other samples) to this one; returns self.

        The result equals one accumulator fed the samples of both (up to rounding); ``other`` is
        not modified. Merging an accumulator that has seen no sample changes nothing.

        Raises
        ------
        DataError
            ``other`` is not of the same class, or differs in width (or number of classes).
        """
        if type(other) is not type(self):
            raise DataError(f"cannot merge a {type(other).__name__} into a {type(self).__name__}")
        if other.dim is None:  # never fed: nothing to add
            return self
        if self.dim is None:
            self._allocate(other.dim)
        mine, theirs = self._layout(), other._layout()
        differ = [f"{key}={mine[key]} vs {key}={theirs[key]}" for key in mine if mine[key] != theirs[key]]
        if differ:
            raise DataError(f"cannot merge {type(self).__name__} accumulators of different shapes: "
                            f"{', '.join(differ)} (this one vs other)")
        take = (self._count == 0) & (other._count > 0)
        self._shift[take] = other._shift[take]
        self._sum[take] = other._sum[take]
        self._second[take] = other._second[take]
        both = (self._count > 0) & (other._count > 0)
        if both.any():
            n = other._count[both].astype(np.float64)
            s = other._sum[both]
            delta = other._shift[both] - self._shift[both]
            n_b = n.reshape(n.shape + (1,) * (self._second.ndim - 1))
            self._second[both] += (other._second[both] + self._pair(s, delta) + self._pair(delta, s)
                                   + n_b * self._pair(delta, delta))
            self._sum[both] += s + n[:, None] * delta
        self._count += other._count
        return self
