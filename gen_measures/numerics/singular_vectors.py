"""Top left singular vectors (P-vectors) and the angles between vectors and subspaces.

Pure numpy/scipy (never imports TensorFlow). :func:`top_left_singular_vectors` and
:func:`pvector` solve exactly (Gram eigenvectors, streamed in chunks) or by randomized subspace
iteration [1]_; :func:`angle_between` and :func:`subspace_angles_deg` compare the results
(sign-safe, in degrees). Degenerate input (an all-zero or rank-deficient matrix, NaN entries)
gives NaN with a :class:`~gen_measures.errors.DegenerateInputWarning`.

References
----------
.. [1] Halko, N., Martinsson, P.-G. & Tropp, J. A. (2011). "Finding structure with randomness:
   probabilistic algorithms for constructing approximate matrix decompositions." SIAM Review
   53(2), 217-288.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import scipy.linalg

from gen_measures.errors import DataError, MeasureError
from gen_measures.numerics._check import as_float_array, check_choice, check_int, warn_degenerate

__all__ = ["angle_between", "pvector", "subspace_angles_deg", "top_left_singular_vectors"]

#: ``method="auto"`` uses the exact solver when ``min(n, d)`` is at most this.
AUTO_EXACT_MAX_DIM = 2048
#: Float64 elements per chunk when the exact solver streams the matrix (32 MiB).
_CHUNK_ELEMENTS = 1 << 22
_EPS = np.finfo(np.float64).eps


class _NonFinite(Exception):
    """Internal: the matrix contains NaN/inf (detected from a product, without an extra pass)."""


def top_left_singular_vectors(
    a,
    k: int = 1,
    *,
    method: Literal["auto", "exact", "randomized"] = "auto",
    center: bool = False,
    seed: int | None = 0,
    n_oversamples: int = 10,
    n_iter: int = 4,
) -> np.ndarray:
    """Top-``k`` left singular vectors of an ``n x d`` matrix (samples x features).

    Parameters
    ----------
    a : array_like, shape (n, d)
        The matrix; float32 input is kept as float32 where noted below, anything else is
        promoted to float64.
    k : int, default 1
        Number of vectors, ``1 <= k <= min(n, d)``.
    method : {"auto", "exact", "randomized"}, default "auto"
        ``"exact"``: eigenvectors of the smaller Gram matrix, accumulated in float64 over row
        (or column) chunks without a float64 copy of ``a``: ``a^T a`` (``d x d``) when
        ``n >= d``, then ``U`` from a thin SVD of ``a V`` (a Rayleigh-Ritz step, so the
        columns are orthonormal); ``a a^T`` (``n x n``) when ``n < d``, whose eigenvectors are
        ``U`` directly. Eigenvectors by ``scipy.linalg.eigh(..., subset_by_index=...)``.
        ``"randomized"``: randomized subspace iteration, Halko et al. [1]_ Algorithm 4.4,
        implemented here (not scikit-learn's): a Gaussian test matrix of ``k + n_oversamples``
        columns, ``n_iter`` power iterations with QR re-orthonormalisation after every product,
        then an SVD of the small projected matrix in float64. The large products run in the
        dtype of ``a`` (float32 stays float32: half the memory traffic; the small problem is
        float64). ``"auto"``: exact when ``min(n, d) <= AUTO_EXACT_MAX_DIM`` (2048), else
        randomized.
    center : bool, default False
        Subtract the column means first (PCA directions). The P-vector of the seed paper is
        uncentred (the default). The exact solver centres chunk by chunk; the randomized solver
        makes one centred copy of ``a`` in its working dtype.
    seed : int or None, default 0
        Seed of the randomized test matrix (ignored by the exact solver).
    n_oversamples, n_iter : int
        Oversampling ``p`` and number of power iterations ``q`` of the randomized solver. The
        subspace error decays like ``(s_{k+p+1} / s_k) ** (2 q + 1)`` [1]_.

    Returns
    -------
    numpy.ndarray, shape (n, k), float64
        Orthonormal columns ordered by decreasing singular value. Sign convention: the entry of
        largest absolute value of each column is positive (ties: the first such entry), so the
        output is deterministic; angle functions are sign-safe regardless.

        Columns whose singular value is below ``sqrt(max(n, d) * eps64)`` times the largest
        (the matrix is rank-deficient there, and a Gram-based solver cannot resolve the
        direction) are NaN, with a :class:`DegenerateInputWarning`; an all-zero matrix gives
        all-NaN columns. A matrix containing NaN or inf also gives NaN with a warning (detected
        from the products, at no extra pass over ``a``).

    Raises
    ------
    DataError
        ``a`` is not a real 2-D array with at least one row and one column.
    MeasureError
        ``k`` is not in ``[1, min(n, d)]``, or another option is invalid.

    References
    ----------
    .. [1] Halko, N., Martinsson, P.-G. & Tropp, J. A. (2011). "Finding structure with
       randomness: probabilistic algorithms for constructing approximate matrix
       decompositions." SIAM Review 53(2), 217-288. Algorithms 4.3-4.4 and 5.1.
    .. [2] Golub, G. H. & Van Loan, C. F. (2013). *Matrix Computations*, 4th ed., sections 8.6
       (SVD via the symmetric eigenproblem) and 8.2.4 (Rayleigh-Ritz).
    """
    a = as_float_array(a, "a", ndim=2)
    n, d = a.shape
    if n == 0 or d == 0:
        raise DataError(f"a must have at least one row and one column, got shape {a.shape}")
    k = check_int(k, "k", 1)
    if k > min(n, d):
        raise MeasureError(f"k={k} exceeds min(n, d) = {min(n, d)} for a of shape {a.shape}")
    check_choice(method, "method", ("auto", "exact", "randomized"))
    n_oversamples = check_int(n_oversamples, "n_oversamples", 0)
    n_iter = check_int(n_iter, "n_iter", 0)
    if method == "auto":
        method = "exact" if min(n, d) <= AUTO_EXACT_MAX_DIM else "randomized"
    try:
        with np.errstate(invalid="ignore", over="ignore"):  # non-finite input is reported below
            if method == "exact":
                u, s = _exact_top(a, k, bool(center))
            else:
                u, s = _randomized_top(a, k, bool(center), seed, n_oversamples, n_iter)
    except _NonFinite:
        warn_degenerate("a contains NaN or inf (or values too large to square in float64); "
                        "returning NaN singular vectors")
        return np.full((n, k), np.nan)
    unresolved = (s <= s[0] * math.sqrt(max(n, d) * _EPS)) | (s[0] <= 0)
    if unresolved.any():
        what = ("a minus its column means" if center else "a") + " is all zero" if s[0] <= 0 else (
            f"a has numerical rank < {k}: {int(unresolved.sum())} of the {k} requested "
            "singular values are at rounding level")
        warn_degenerate(f"{what}; the corresponding singular vectors are undefined and returned as NaN")
        u[:, unresolved] = np.nan
    return _fix_signs(u)


def pvector(a, **kwargs) -> np.ndarray:
    """P-vector: the top left singular vector of the ``n x d`` matrix ``a``, shape ``(n,)``.

    Same options as :func:`top_left_singular_vectors` (``method``, ``center``, ``seed``, ...),
    with ``k = 1``. The P-vector of a feature matrix is uncentred by default, as in the seed
    paper ("Empirical studies on the convergence of feature spaces").

    References
    ----------
    .. [1] Halko, N., Martinsson, P.-G. & Tropp, J. A. (2011). SIAM Review 53(2), 217-288.
    """
    if "k" in kwargs:
        raise MeasureError("pvector takes no k; use top_left_singular_vectors(a, k=...)")
    return top_left_singular_vectors(a, 1, **kwargs)[:, 0]


def _fix_signs(u: np.ndarray) -> np.ndarray:
    """Flip columns so that each column's entry of largest magnitude is positive."""
    if u.shape[0] == 0:
        return u
    rows = np.argmax(np.abs(np.nan_to_num(u)), axis=0)
    signs = np.sign(u[rows, np.arange(u.shape[1])])
    signs[~np.isfinite(signs) | (signs == 0)] = 1.0
    return u * signs


def _row_chunks(n: int, d: int):
    step = max(1, _CHUNK_ELEMENTS // max(d, 1))
    for start in range(0, n, step):
        yield slice(start, min(n, start + step))


def _exact_top(a: np.ndarray, k: int, center: bool) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k left singular vectors and values from the smaller float64 Gram matrix."""
    n, d = a.shape
    mean = a.mean(axis=0, dtype=np.float64) if center else None
    if n >= d:
        gram = np.zeros((d, d))
        for rows in _row_chunks(n, d):
            c = a[rows].astype(np.float64)  # always a fresh copy
            if center:
                c -= mean
            gram += c.T @ c  # numpy dispatches c.T @ c to BLAS syrk
        if not np.isfinite(gram).all():
            raise _NonFinite
        w, v = scipy.linalg.eigh(gram, subset_by_index=[d - k, d - 1], check_finite=False)
        v = v[:, ::-1]
        y = np.empty((n, k))
        for rows in _row_chunks(n, d):
            c = a[rows].astype(np.float64)
            if center:
                c -= mean
            y[rows] = c @ v
        # Rayleigh-Ritz: orthonormal U from the thin SVD of a V (= U S up to rounding).
        u, s, _ = np.linalg.svd(y, full_matrices=False)
        s = np.where(w[::-1] > 0, s, 0.0)
        # Resolution of the Gram route: eigenvalues below max(n, d) * eps * w_1 are rounding.
        s = np.where(w[::-1] <= max(n, d) * _EPS * max(w[-1], 0.0), 0.0, s)
        return u, s
    gram = np.zeros((n, n))
    for cols in _row_chunks(d, n):
        c = a[:, cols].astype(np.float64)
        if center:
            c -= mean[cols]
        gram += c @ c.T
    if not np.isfinite(gram).all():
        raise _NonFinite
    w, u = scipy.linalg.eigh(gram, subset_by_index=[n - k, n - 1], check_finite=False)
    w, u = w[::-1], np.ascontiguousarray(u[:, ::-1])
    s = np.sqrt(np.clip(w, 0.0, None))
    s = np.where(w <= max(n, d) * _EPS * max(w[0], 0.0), 0.0, s)
    return u, s


def _orth(y: np.ndarray) -> np.ndarray:
    return scipy.linalg.qr(y, mode="economic", overwrite_a=True, check_finite=False)[0]


def _randomized_top(
    a: np.ndarray, k: int, center: bool, seed, n_oversamples: int, n_iter: int
) -> tuple[np.ndarray, np.ndarray]:
    """Randomized subspace iteration (Halko et al. 2011, Algorithm 4.4) for the top-k pairs."""
    work = np.float32 if a.dtype == np.float32 else np.float64
    a = a.astype(work, copy=False)
    if center:
        mean = a.mean(axis=0, dtype=np.float64)
        if not np.isfinite(mean).all():
            raise _NonFinite
        a = a - mean.astype(work)
    n, d = a.shape
    ell = min(k + n_oversamples, n, d)
    omega = np.random.default_rng(seed).standard_normal((d, ell)).astype(work)
    y = a @ omega
    if not np.isfinite(y).all():
        raise _NonFinite
    q = _orth(y)
    for _ in range(n_iter):
        q = _orth(a @ _orth(a.T @ q))
    bt = a.T @ q  # B^T, where B = Q^T a (l x d)
    if not np.isfinite(bt).all():
        raise _NonFinite
    ub, s, _ = np.linalg.svd(bt.T.astype(np.float64), full_matrices=False)
    return q.astype(np.float64) @ ub[:, :k], s[:k]


# --------------------------------------------------------------------------------------------
# Angles
# --------------------------------------------------------------------------------------------


def _as_vector(x, name: str) -> np.ndarray:
    arr = as_float_array(x, name).astype(np.float64, copy=False)
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.ravel()
    if arr.ndim != 1 or arr.size == 0:
        raise DataError(f"{name} must be a non-empty 1-D vector, got shape {arr.shape}")
    return arr


def angle_between(u, v) -> float:
    """Sign-safe angle between two vectors, in degrees, in ``[0, 90]``.

    Equals ``degrees(arccos(min(1, |u . v| / (|u| |v|))))`` (singular vectors are defined up
    to sign, so ``v`` and ``-v`` give the same angle), evaluated with the stable half-angle
    form ``2 atan2(|u' - v'|, |u' + v'|)`` on the unit vectors (``v'`` sign-aligned with
    ``u'``), which, unlike ``arccos``, keeps full precision near 0 degrees (identical
    vectors give exactly 0).

    Returns NaN with a :class:`DegenerateInputWarning` when either vector is zero or not
    finite (e.g. a NaN P-vector of a degenerate matrix).

    References
    ----------
    .. [1] Kahan, W. (2006). "How futile are mindless assessments of roundoff in floating-point
       computation?", section 12 (angle between vectors).
    """
    u = _as_vector(u, "u")
    v = _as_vector(v, "v")
    if u.shape != v.shape:
        raise DataError(f"u and v must have the same length, got {u.size} and {v.size}")
    if not (np.isfinite(u).all() and np.isfinite(v).all()):
        warn_degenerate("u or v contains NaN or inf; the angle is NaN")
        return float("nan")
    su, sv = np.max(np.abs(u)), np.max(np.abs(v))
    if su == 0 or sv == 0:
        warn_degenerate(f"{'u' if su == 0 else 'v'} is the zero vector; the angle is undefined (NaN)")
        return float("nan")
    u = u / su
    v = v / sv
    u /= np.linalg.norm(u)
    v /= np.linalg.norm(v)
    if u @ v < 0:
        v = -v
    return float(np.degrees(2.0 * np.arctan2(np.linalg.norm(u - v), np.linalg.norm(u + v))))


def subspace_angles_deg(u, v) -> np.ndarray:
    """Principal angles between the column spaces of ``u (n, k1)`` and ``v (n, k2)``, degrees.

    Computed by :func:`scipy.linalg.subspace_angles` (Knyazev & Argentati's sine/cosine
    algorithm, accurate for small angles) and returned in *ascending* order
    ``theta_1 <= ... <= theta_m`` with ``m = min(rank u, rank v)`` (scipy orthonormalises each
    basis first, so the inputs need not be orthonormal, and signs do not matter). 1-D inputs are
    treated as single columns. NaN or inf entries give an all-NaN result with a
    :class:`DegenerateInputWarning`.

    References
    ----------
    .. [1] Bjorck, A. & Golub, G. H. (1973). "Numerical methods for computing angles between
       linear subspaces." Mathematics of Computation 27(123), 579-594.
    .. [2] Knyazev, A. V. & Argentati, M. E. (2002). "Principal angles between subspaces in an
       A-based scalar product." SIAM J. Sci. Comput. 23(6), 2008-2040.
    """
    mats = []
    for x, name in ((u, "u"), (v, "v")):
        arr = as_float_array(x, name).astype(np.float64, copy=False)
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
            raise DataError(f"{name} must be a non-empty (n, k) matrix, got shape {arr.shape}")
        mats.append(arr)
    u, v = mats
    if u.shape[0] != v.shape[0]:
        raise DataError(f"u and v must have the same number of rows, got {u.shape[0]} and {v.shape[0]}")
    if not (np.isfinite(u).all() and np.isfinite(v).all()):
        warn_degenerate("u or v contains NaN or inf; the principal angles are NaN")
        return np.full(min(u.shape[1], v.shape[1]), np.nan)
    return np.sort(np.degrees(scipy.linalg.subspace_angles(u, v)))
