"""Class scatter of layer features: within/between-class traces, compression, discrimination.

Pure numpy (never imports TensorFlow). :class:`ClassScatterAccumulator` keeps per-class shifted
sums (:mod:`gen_measures.numerics.moments`; mergeable) and gives the compression
``Tr(Sigma_W) / Tr(Sigma_B)`` and discrimination ``1 - max cos(mu_k, mu_k')`` of Wang et al. [1]_
without forming a ``d x d`` matrix.

References
----------
.. [1] Wang, P., Li, X., Yaras, C., Zhu, Z., Balzano, L., Hu, W. & Qu, Q. (2023). "Understanding
   deep representation learning via layerwise feature compression and discrimination."
   arXiv:2311.02960.
"""

from __future__ import annotations

import numpy as np

from gen_measures.errors import DataError
from gen_measures.numerics._check import as_float_array, check_int, warn_degenerate
from gen_measures.numerics.moments import ShiftedMoments

__all__ = ["ClassScatterAccumulator"]

_EPS = np.finfo(np.float64).eps


class ClassScatterAccumulator(ShiftedMoments):
    """Streaming within/between-class scatter traces and class means, in float64.

    Per class ``k`` it keeps the count ``n_k``, ``s_k = sum (h_i - c_k)`` and
    ``q_k = sum ||h_i - c_k||^2`` for a fixed per-class shift ``c_k`` (the class mean in the
    first batch that contains the class; the shift removes the cancellation of
    ``q_k - ||s_k||^2 / n_k`` when classes are tight and far from the origin, the very regime
    of compressed features; :class:`~gen_measures.numerics.moments.ShiftedMoments`). No sample
    is stored, and accumulators over disjoint batches combine exactly with :meth:`merge`. Over
    the ``K`` classes that have samples
    (classes never seen are excluded, with a :class:`DegenerateInputWarning`):

    * ``mu_k = c_k + s_k / n_k``; ``mu_G = sum_k n_k mu_k / N`` (mean of all samples);
    * ``Tr(Sigma_W) = (1/N) sum_i ||h_i - mu_{y_i}||^2 = (1/N) sum_k (q_k - ||s_k||^2 / n_k)``;
    * ``Tr(Sigma_B) = (1/K) sum_k ||mu_k - mu_G||^2`` (unweighted over classes);
    * compression ``C = Tr(Sigma_W) / Tr(Sigma_B)``;
    * discrimination ``D = 1 - max_{k != k'} cos(mu_k, mu_k')`` (signed cosine of the
      uncentred class means; ``center=True`` uses ``mu_k - mu_G``).

    These are the definitions of Wang et al. (and of their code, repository Heimine/PNC_DLN,
    which forms the full ``d x d`` matrices; only the traces are needed).

    Parameters
    ----------
    dim : int
        Feature dimension.
    n_classes : int
        Labels must be integers in ``[0, n_classes)``.

    References
    ----------
    .. [1] Wang, P., Li, X., Yaras, C., Zhu, Z., Balzano, L., Hu, W. & Qu, Q. (2023).
       "Understanding deep representation learning via layerwise feature compression and
       discrimination." arXiv:2311.02960.
    .. [2] Papyan, V., Han, X. Y. & Donoho, D. L. (2020). "Prevalence of neural collapse during
       the terminal phase of deep learning training." PNAS 117(40) (Sigma_W, Sigma_B).
    """

    def __init__(self, dim: int, n_classes: int):
        dim = check_int(dim, "dim", 1)
        self.n_classes = check_int(n_classes, "n_classes", 1)
        super().__init__(dim, self.n_classes)

    @staticmethod
    def _pair(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.einsum("...i,...i->...", a, b)  # inner product: q_k = sum ||h_i - c_k||^2

    def _layout(self) -> dict[str, int | None]:
        return {"dim": self.dim, "n_classes": self.n_classes}

    def update(self, h, y) -> ClassScatterAccumulator:
        """Add features ``h`` (shape ``(m, dim)``) with integer labels ``y`` (shape ``(m,)``)."""
        h = as_float_array(h, "h", ndim=2)
        if h.shape[1] != self.dim:
            raise DataError(f"h has {h.shape[1]} columns, expected dim={self.dim}")
        y = np.asarray(y)
        if y.ndim != 1 or y.shape[0] != h.shape[0]:
            raise DataError(f"y must be 1-D with one label per row of h ({h.shape[0]}), got shape {y.shape}")
        if y.size == 0:
            return self
        if y.dtype.kind == "f" and np.all(np.mod(y, 1) == 0):
            y = y.astype(np.int64)
        if y.dtype.kind not in "iu":
            raise DataError(f"y must hold integer class labels, got dtype {y.dtype}")
        if y.min() < 0 or y.max() >= self.n_classes:
            raise DataError(f"y has labels outside [0, n_classes={self.n_classes}): "
                            f"min {y.min()}, max {y.max()}")
        order = np.argsort(y, kind="stable")
        ys = y[order]
        classes, starts = np.unique(ys, return_index=True)
        counts = np.diff(np.append(starts, ys.size))
        hs = h[order].astype(np.float64)
        new = self._count[classes] == 0
        if new.any():
            batch_means = np.add.reduceat(hs, starts, axis=0) / counts[:, None]
            self._shift[classes[new]] = batch_means[new]
        hs -= self._shift[ys]
        self._add_shifted(classes, counts, np.add.reduceat(hs, starts, axis=0),
                          np.add.reduceat(np.einsum("ij,ij->i", hs, hs), starts))
        return self

    # -- derived quantities ------------------------------------------------------------------

    @property
    def class_counts(self) -> np.ndarray:
        """Samples per class, shape ``(n_classes,)``."""
        return self._count.copy()

    def _present(self) -> np.ndarray:
        present = self._count > 0
        missing = self.n_classes - int(present.sum())
        if 0 < missing < self.n_classes:
            warn_degenerate(f"{missing} of n_classes={self.n_classes} classes have no samples and are "
                            "excluded (K = number of classes present)", stacklevel=4)
        return present

    def class_means(self) -> np.ndarray:
        """Class means ``(n_classes, dim)``; rows of classes without samples are NaN."""
        means = self._group_means()
        means[self._count == 0] = np.nan
        return means

    def global_mean(self) -> np.ndarray:
        """Mean of all samples seen (NaN with a warning before any sample)."""
        if self.n == 0:
            warn_degenerate("no samples seen; the global mean is NaN")
            return np.full(self.dim, np.nan)
        present = self._count > 0
        w = self._count[present] / self.n
        return w @ self.class_means()[present]

    def trace_within(self) -> float:
        """``Tr(Sigma_W) = (1/N) sum_i ||h_i - mu_{y_i}||^2`` (NaN with a warning if N = 0)."""
        if self.n == 0:
            warn_degenerate("no samples seen; Tr(Sigma_W) is NaN")
            return float("nan")
        present = self._count > 0
        s = self._sum[present]
        per_class = self._second[present] - np.einsum("ij,ij->i", s, s) / self._count[present]
        return float(np.clip(per_class, 0.0, None).sum() / self.n)

    def trace_between(self) -> float:
        """``Tr(Sigma_B) = (1/K) sum_k ||mu_k - mu_G||^2`` over the K classes present."""
        if self.n == 0:
            warn_degenerate("no samples seen; Tr(Sigma_B) is NaN")
            return float("nan")
        present = self._present()
        diff = self.class_means()[present] - self.global_mean()
        return float(np.einsum("ij,ij->", diff, diff) / int(present.sum()))

    def _enough_classes(self, what: str) -> bool:
        k = int((self._count > 0).sum())
        if k < 2:
            warn_degenerate(f"{what} needs at least 2 classes with samples, got {k}; returning NaN",
                            stacklevel=4)
            return False
        return True

    def compression(self) -> float:
        """Compression ``Tr(Sigma_W) / Tr(Sigma_B)`` (NaN with a warning if undefined).

        NaN when fewer than 2 classes have samples, when the class means coincide (the
        between-class trace is 0 up to rounding), or when the features are not finite.
        """
        if not self._enough_classes("compression"):
            return float("nan")
        tw, tb = self.trace_within(), self.trace_between()
        if not (np.isfinite(tw) and np.isfinite(tb)):
            warn_degenerate("features contain NaN or inf; compression is NaN")
            return float("nan")
        means = self.class_means()[self._count > 0]
        scale = float(np.max(np.abs(means)))
        if tb <= (64.0 * _EPS * scale) ** 2 * self.dim:
            warn_degenerate("the class means coincide (Tr(Sigma_B) = 0); compression is undefined (NaN)")
            return float("nan")
        return tw / tb

    def discrimination(self, center: bool = False) -> float:
        """Discrimination ``1 - max_{k != k'} cos(mu_k, mu_k')`` over the classes present.

        Signed cosine, so the value lies in ``[0, 2]`` (2 for two antipodal means). With
        ``center=True`` the class means are taken relative to the global mean ``mu_G``.
        NaN with a warning when fewer than 2 classes have samples, when a (centred) class
        mean is the zero vector, or when the features are not finite.
        """
        if not self._enough_classes("discrimination"):
            return float("nan")
        present = self._present()
        means = self.class_means()[present]
        if center:
            means = means - self.global_mean()
        if not np.isfinite(means).all():
            warn_degenerate("features contain NaN or inf; discrimination is NaN")
            return float("nan")
        norms = np.linalg.norm(means, axis=1)
        if np.any(norms == 0):
            warn_degenerate(f"a {'centred ' if center else ''}class mean is the zero vector; its cosine "
                            "is undefined and discrimination is NaN")
            return float("nan")
        unit = means / norms[:, None]
        cos = np.clip(unit @ unit.T, -1.0, 1.0)
        np.fill_diagonal(cos, -np.inf)
        return float(1.0 - cos.max())
