"""Top left singular vectors (P-vectors) and the angles between vectors and subspaces.

Pure numpy/scipy (never imports TensorFlow). :func:`top_left_singular_vectors` and
:func:`pvector` solve exactly (Gram eigenvectors, streamed in chunks), by randomized subspace
iteration [1]_, or (``k = 1``, the default there) adaptively: warm-started Golub-Kahan-Lanczos
bidiagonalization [2]_ with a residual/gap convergence test and a fallback to the exact solver;
:func:`angle_between` and :func:`subspace_angles_deg` compare the results (sign-safe, in degrees).
Degenerate input (an all-zero or rank-deficient matrix, NaN entries) gives NaN with a
:class:`~gen_measures.errors.DegenerateInputWarning`.

References
----------
.. [1] Halko, N., Martinsson, P.-G. & Tropp, J. A. (2011). "Finding structure with randomness:
   probabilistic algorithms for constructing approximate matrix decompositions." SIAM Review
   53(2), 217-288.
.. [2] Golub, G. H. & Kahan, W. (1965). "Calculating the singular values and pseudo-inverse of
   a matrix." SIAM J. Numer. Anal. 2(2), 205-224; Parlett, B. N. (1998). *The Symmetric
   Eigenvalue Problem*, SIAM, theorem 11.7.1 (gap theorem).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.linalg

from gen_measures.errors import DataError, MeasureError
from gen_measures.numerics._check import as_float_array, check_choice, check_int, warn_degenerate

__all__ = ["SolverInfo", "angle_between", "pvector", "subspace_angles_deg", "top_left_singular_vectors"]

log = logging.getLogger(__name__)

#: ``method="auto"`` with ``k > 1`` uses the exact solver when ``min(n, d)`` is at most this.
AUTO_EXACT_MAX_DIM = 2048
#: Float64 elements per chunk when the exact solver streams the matrix (32 MiB).
_CHUNK_ELEMENTS = 1 << 22
#: Elements per row chunk of the adaptive solver's ``a^T u`` (partial sums added in float64;
#: few chunks: every BLAS call is a thread synchronisation, costly on a busy machine).
_MATVEC_CHUNK_ELEMENTS = 1 << 22
#: The adaptive solver mixes a seeded random unit vector of weight
#: ``min(1, _START_PROTECTION * tol * sqrt(n))`` into its start: about ``_START_PROTECTION * tol``
#: along every singular direction (see ``method="adaptive"``).
_START_PROTECTION = 10.0
_EPS = np.finfo(np.float64).eps


class _NonFinite(Exception):
    """Internal: the matrix contains NaN/inf (detected from a product, without an extra pass)."""


class _NotConverged(Exception):
    """Internal: the adaptive solver stopped without passing its test (the caller falls back)."""

    def __init__(self, passes: int, reason: str) -> None:
        super().__init__(reason)
        self.passes = passes
        self.reason = reason


@dataclass(frozen=True)
class SolverInfo:
    """How :func:`top_left_singular_vectors` obtained its result (``return_info=True``).

    Attributes
    ----------
    method : str
        The solver that produced the returned vectors: ``"adaptive"``, ``"exact"`` or
        ``"randomized"`` (``"exact"`` after a fallback).
    requested : str
        The ``method`` argument after resolving ``"auto"``.
    passes : int
        Passes over the matrix: products of ``a`` or ``a^T`` with one vector or block
        (the exact solver counts 2 when ``n >= d``: Gram matrix, then ``a V``; 1 otherwise).
        After a fallback, the adaptive passes plus the exact solver's.
    converged : bool
        The adaptive convergence test passed (always True for the exact and randomized
        solvers, which have none).
    fell_back : bool
        The adaptive solver did not converge within ``max_passes`` (or broke down on a zero
        product) and the exact solver was used.
    residual : float
        Adaptive: relative residual ``||a^T u - s v|| / s`` of the returned pair at the last test
        (NaN otherwise).
    gap : float
        Adaptive: estimated relative gap ``1 - (s_2 / s_1)^2`` at the last test (NaN otherwise).
    reason : str
        Why the adaptive solver fell back ("" otherwise).
    """

    method: str
    requested: str
    passes: int
    converged: bool
    fell_back: bool = False
    residual: float = float("nan")
    gap: float = float("nan")
    reason: str = ""


def top_left_singular_vectors(
    a,
    k: int = 1,
    *,
    method: Literal["auto", "adaptive", "exact", "randomized"] = "auto",
    center: bool = False,
    seed: int | None = 0,
    n_oversamples: int = 10,
    n_iter: int = 4,
    start=None,
    tol: float = 1e-4,
    max_passes: int = 40,
    return_info: bool = False,
):
    """Top-``k`` left singular vectors of an ``n x d`` matrix (samples x features).

    Parameters
    ----------
    a : array_like, shape (n, d)
        The matrix; float32 input is kept as float32 where noted below, anything else is
        promoted to float64.
    k : int, default 1
        Number of vectors, ``1 <= k <= min(n, d)``.
    method : {"auto", "adaptive", "exact", "randomized"}, default "auto"
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
        float64).

        ``"adaptive"`` (``k = 1`` only): Golub-Kahan-Lanczos bidiagonalization [3]_ of ``a``
        started on the left, ``a^T u_1 = alpha_1 v_1``, ``a v_j = alpha_j u_j + beta_j u_{j+1}``,
        ``a^T u_{j+1} = beta_j v_j + alpha_{j+1} v_{j+1}``: one matrix-vector product per
        coefficient, in the dtype of ``a`` (``a^T u`` over row chunks whose partial sums are
        added in float64; centring, if asked, is applied implicitly, without a copy), with full
        re-orthogonalisation of both float64 bases (classical Gram-Schmidt, repeated when it
        removes over 30 % of the norm). ``T_m`` is the bidiagonal matrix of the first ``m``
        coefficients (``V^T a^T U``); its top singular triplet gives the Ritz triplet
        ``(theta, u, v)``, for which one of ``a v = theta u``, ``a^T u = theta v`` holds
        exactly.

        *Start*: ``u_1 ~ s / ||s|| + eta g`` with ``s = start`` (a guess of the left vector,
        e.g. the previous epoch's P-vector) or, by default, ``s = 1`` (then ``a^T u_1`` is the
        column-mean direction, already close to the answer for uncentred non-negative features
        such as ReLU outputs; with ``center=True`` and no ``start``, ``u_1 = g``). ``g`` is a
        seeded random unit vector and ``eta = min(1, 10 tol sqrt(n))``: every singular
        direction gets a weight of about ``10 tol`` in the start, so that a start (nearly)
        orthogonal to the answer, which would make any Krylov method converge to another
        singular triplet, still finds the top one (it only costs passes).

        *Convergence test*, after every product ``m >= 3``: for the top Ritz triplet of
        ``T_{m-1}``, ``rho = r / theta`` with ``r`` the norm of its other residual
        (``||a^T u - theta v||`` or ``||a v - theta u||``, which is the new coefficient times
        the last entry of the triplet's singular vector: no extra product); ``gamma = 1 -
        (theta_2 / theta_1) ** 2`` with ``theta_1 >= theta_2`` the top singular values of
        ``T_m`` (an estimate of the relative gap ``1 - (s_2 / s_1) ** 2``). Converged when
        ``rho <= tol * gamma`` (``rho / gamma`` estimates the gap-theorem bound [4]_
        ``sin angle(u, u_1) <= rho / (1 - (s_2 / s_1) ** 2)``) and the Ritz value (the
        Rayleigh quotient) rose by at most ``theta * (rho**2 / gamma + 8 eps)`` (``eps`` of the
        working dtype) from ``T_{m-1}`` to ``T_m`` (the Kato-Temple bound
        ``s_1 <= theta sqrt(1 + rho**2 / gamma)``: a larger rise shows ``gamma`` is
        overestimated), or when a coefficient is at rounding level (an invariant Krylov space:
        exact). The returned triplet is the top one of ``T_m`` (it
        contains ``T_{m-1}``, so its Rayleigh quotient is at least ``theta`` and the same
        bound holds). The default ``tol`` (1e-4) is well below the ``sin = 4.5e-3`` that
        ``|cos| = 0.99999`` allows, because Ritz values approach ``s_2`` from below: the gap
        estimate can be optimistic. Limitation (of every residual test): if ``s_2 / s_1 >
        1 - tol * 100`` (0.99 by default) an unlucky start can stagnate on a mixture of
        ``u_1`` and ``u_2`` whose residual passes the test; lower ``tol`` or use
        ``method="exact"`` for such near-degenerate spectra. An exactly repeated top value
        returns one vector of its subspace (any is a top singular vector).

        *Fallback*: if the test has not passed after ``max_passes`` passes over ``a`` (the
        column means of ``center=True`` count), or ``a^T u_1`` is zero to rounding, the result
        is that of ``method="exact"`` (always exact, whatever the size; reported by
        :class:`SolverInfo` and logged at INFO level). The products are memory-bound, so the
        cost is about ``passes`` times one mat-vec: 4-8 on uncentred features with a
        dominant first singular value, 10-15 on a centred Gaussian matrix with singular values
        decaying by 0.7, at most ``max_passes`` plus the exact solver (e.g. centred features
        with a nearly flat spectrum).

        ``"auto"``: ``"adaptive"`` when ``k = 1``; for ``k > 1``, exact when
        ``min(n, d) <= AUTO_EXACT_MAX_DIM`` (2048), else randomized.
    center : bool, default False
        Subtract the column means first (PCA directions). The P-vector of the seed paper is
        uncentred (the default). The exact solver centres chunk by chunk; the randomized solver
        makes one centred copy of ``a`` in its working dtype; the adaptive solver centres
        implicitly (float64 column means, one extra pass).
    seed : int or None, default 0
        Seed of the randomized test matrix and of the adaptive solver's random start component
        (ignored by the exact solver).
    n_oversamples, n_iter : int
        Oversampling ``p`` and number of power iterations ``q`` of the randomized solver. The
        subspace error decays like ``(s_{k+p+1} / s_k) ** (2 q + 1)`` [1]_.
    start : array_like, shape (n,), optional
        Adaptive solver only: a guess of the top left singular vector (any scale or sign),
        e.g. the previous epoch's P-vector of the same samples. Default: the all-ones vector.
    tol : float, default 1e-4
        Adaptive solver: the convergence threshold on ``rho / gamma`` (see ``method``),
        ``0 < tol < 1``.
    max_passes : int, default 40
        Adaptive solver: the most passes over ``a`` before falling back to the exact solver
        (``>= 1``).
    return_info : bool, default False
        Also return a :class:`SolverInfo` (solver used, passes, convergence, fallback).

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
    SolverInfo
        Only with ``return_info=True``: ``(u, info)``.

    Raises
    ------
    DataError
        ``a`` is not a real 2-D array with at least one row and one column, or ``start`` is
        not a finite vector of length ``n``.
    MeasureError
        ``k`` is not in ``[1, min(n, d)]``, or another option is invalid (``method="adaptive"``
        or ``start`` with ``k > 1``).

    References
    ----------
    .. [1] Halko, N., Martinsson, P.-G. & Tropp, J. A. (2011). "Finding structure with
       randomness: probabilistic algorithms for constructing approximate matrix
       decompositions." SIAM Review 53(2), 217-288. Algorithms 4.3-4.4 and 5.1.
    .. [2] Golub, G. H. & Van Loan, C. F. (2013). *Matrix Computations*, 4th ed., sections 8.6
       (SVD via the symmetric eigenproblem), 8.2.4 (Rayleigh-Ritz) and 10.4 (Lanczos
       bidiagonalization).
    .. [3] Golub, G. H. & Kahan, W. (1965). "Calculating the singular values and pseudo-inverse
       of a matrix." SIAM J. Numer. Anal. 2(2), 205-224.
    .. [4] Parlett, B. N. (1998). *The Symmetric Eigenvalue Problem*, SIAM, theorem 11.7.1
       (applied to ``a a^T``).
    """
    a = as_float_array(a, "a", ndim=2)
    n, d = a.shape
    if n == 0 or d == 0:
        raise DataError(f"a must have at least one row and one column, got shape {a.shape}")
    k = check_int(k, "k", 1)
    if k > min(n, d):
        raise MeasureError(f"k={k} exceeds min(n, d) = {min(n, d)} for a of shape {a.shape}")
    check_choice(method, "method", ("auto", "adaptive", "exact", "randomized"))
    n_oversamples = check_int(n_oversamples, "n_oversamples", 0)
    n_iter = check_int(n_iter, "n_iter", 0)
    max_passes = check_int(max_passes, "max_passes", 1)
    if isinstance(tol, bool) or not isinstance(tol, (int, float, np.floating)) or not 0 < tol < 1:
        raise MeasureError(f"tol must be a number in (0, 1), got {tol!r}")
    if method == "auto":
        method = "adaptive" if k == 1 else ("exact" if min(n, d) <= AUTO_EXACT_MAX_DIM else "randomized")
    if method == "adaptive" and k > 1:
        raise MeasureError(f"method='adaptive' computes k=1 only, got k={k}; use method='exact' or 'randomized'")
    if start is not None:
        if method != "adaptive":
            raise MeasureError(f"start is used by method='adaptive' (k=1) only, got method={method!r}, k={k}")
        start = as_float_array(start, "start").astype(np.float64, copy=False).reshape(-1)
        if start.shape != (n,):
            raise DataError(f"start must be a vector of length n = {n} (a guess of the left vector), "
                            f"got {start.size} entries")
        if not np.isfinite(start).all():
            raise DataError("start contains NaN or inf; pass a finite guess or start=None")
    requested = method
    info = None
    try:
        with np.errstate(invalid="ignore", over="ignore"):  # non-finite input is reported below
            if method == "adaptive":
                try:
                    u, s, info = _adaptive_top(a, bool(center), seed, start, float(tol), max_passes)
                except _NotConverged as exc:
                    log.info("adaptive top singular vector of a %d x %d matrix: %s after %d passes; "
                             "falling back to the exact solver", n, d, exc.reason, exc.passes)
                    u, s = _exact_top(a, k, bool(center))
                    info = SolverInfo("exact", requested, exc.passes + _exact_passes(n, d), False,
                                      True, reason=exc.reason)
            elif method == "exact":
                u, s = _exact_top(a, k, bool(center))
            else:
                u, s = _randomized_top(a, k, bool(center), seed, n_oversamples, n_iter)
    except _NonFinite:
        warn_degenerate("a contains NaN or inf (or values too large to square in float64); "
                        "returning NaN singular vectors")
        u = np.full((n, k), np.nan)
        info = SolverInfo(requested, requested, 0, False)
        return (u, info) if return_info else u
    if info is None:
        passes = _exact_passes(n, d) if method == "exact" else 2 * n_iter + 2
        info = SolverInfo(method, requested, passes, True)
    unresolved = (s <= s[0] * math.sqrt(max(n, d) * _EPS)) | (s[0] <= 0)
    if unresolved.any():
        what = ("a minus its column means" if center else "a") + " is all zero" if s[0] <= 0 else (
            f"a has numerical rank < {k}: {int(unresolved.sum())} of the {k} requested "
            "singular values are at rounding level")
        warn_degenerate(f"{what}; the corresponding singular vectors are undefined and returned as NaN")
        u[:, unresolved] = np.nan
    u = _fix_signs(u)
    return (u, info) if return_info else u


def pvector(a, **kwargs) -> np.ndarray:
    """P-vector: the top left singular vector of the ``n x d`` matrix ``a``, shape ``(n,)``.

    Same options as :func:`top_left_singular_vectors` (``method``, ``center``, ``seed``,
    ``start``, ``tol``, ``max_passes``, ``return_info``, ...), with ``k = 1``: by default the
    adaptive solver (warm-started Lanczos with an exact fallback). With ``return_info=True``
    returns ``(p, info)``. The P-vector of a feature matrix is uncentred by default, as in the
    seed paper ("Empirical studies on the convergence of feature spaces").

    References
    ----------
    .. [1] Halko, N., Martinsson, P.-G. & Tropp, J. A. (2011). SIAM Review 53(2), 217-288.
    """
    if "k" in kwargs:
        raise MeasureError("pvector takes no k; use top_left_singular_vectors(a, k=...)")
    if kwargs.get("return_info", False):
        u, info = top_left_singular_vectors(a, 1, **kwargs)
        return u[:, 0], info
    return top_left_singular_vectors(a, 1, **kwargs)[:, 0]


def _fix_signs(u: np.ndarray) -> np.ndarray:
    """Flip columns so that each column's entry of largest magnitude is positive."""
    if u.shape[0] == 0:
        return u
    rows = np.argmax(np.abs(u), axis=0)  # a NaN column gives a NaN sign, replaced by 1 below
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


def _exact_passes(n: int, d: int) -> int:
    """Passes of :func:`_exact_top` over the matrix (Gram matrix, then ``a V`` when ``n >= d``)."""
    return 2 if n >= d else 1


class _Products:
    """Products with ``a`` (or ``a - 1 mean^T``) in the dtype of ``a``, float64 results; counts passes.

    ``a^T u`` runs over row chunks whose float32/float64 partial sums are added in float64
    (float32 BLAS accumulation over 50 000 rows alone loses about 1e-6 relative accuracy).
    """

    def __init__(self, a: np.ndarray) -> None:
        self.a = a
        self.work = a.dtype
        self.mean: np.ndarray | None = None
        n, d = a.shape
        step = max(256, _MATVEC_CHUNK_ELEMENTS // max(d, 1))
        self.chunks = [slice(i, min(n, i + step)) for i in range(0, n, step)]
        self.passes = 0
        #: Norm of the terms of the last product before cancellation (its rounding scale).
        self.scale = 0.0

    def matvec(self, v: np.ndarray) -> np.ndarray:
        self.passes += 1
        out = (self.a @ v.astype(self.work)).astype(np.float64)
        self.scale = float(np.linalg.norm(out))
        if self.mean is not None:
            shift = float(self.mean @ v)
            self.scale = max(self.scale, abs(shift) * math.sqrt(out.size))
            out -= shift
        return out

    def rmatvec(self, u: np.ndarray) -> np.ndarray:
        self.passes += 1
        uw = u.astype(self.work)
        out = np.zeros(self.a.shape[1])
        for rows in self.chunks:
            out += uw[rows] @ self.a[rows]
        self.scale = float(np.linalg.norm(out))
        if self.mean is not None:
            shift = self.mean * u.sum()
            self.scale = max(self.scale, float(np.linalg.norm(shift)))
            out -= shift
        return out


def _reorthogonalised(x: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """``x`` minus its projection on the orthonormal rows of ``basis``.

    Classical Gram-Schmidt, repeated once when the first pass removed more than 30 % of the norm
    (the Daniel-Gragg-Kaufman-Stewart criterion: "twice is enough").
    """
    if basis.shape[0]:
        before = np.linalg.norm(x)
        x -= basis.T @ (basis @ x)
        if np.linalg.norm(x) < 0.7 * before:
            x -= basis.T @ (basis @ x)
    return x


def _with_row(basis: np.ndarray, i: int, row) -> np.ndarray:
    """``basis`` with row ``i`` set to ``row``, reallocated (doubling) when it has no row ``i``."""
    if i >= basis.shape[0]:
        grown = np.empty((2 * basis.shape[0], basis.shape[1]))
        grown[:i] = basis[:i]
        basis = grown
    basis[i] = row
    return basis


def _bidiagonal(c: list[float]) -> np.ndarray:
    """The projected matrix ``V^T a^T U`` after the coefficients ``c = [alpha_1, beta_1, alpha_2, ...]``."""
    m = len(c)
    t = np.zeros(((m + 1) // 2, m // 2 + 1))
    for i, value in enumerate(c):
        t[i // 2, i // 2 + i % 2] = value
    return t


def _adaptive_top(
    a: np.ndarray, center: bool, seed, start: np.ndarray | None, tol: float, max_passes: int
) -> tuple[np.ndarray, np.ndarray, SolverInfo]:
    """Top singular triplet by Golub-Kahan-Lanczos started on the left (see ``method="adaptive"``).

    ``a^T u_1 = alpha_1 v_1``, ``a v_j = alpha_j u_j + beta_j u_{j+1}``,
    ``a^T u_{j+1} = beta_j v_j + alpha_{j+1} v_{j+1}``: one product per coefficient, and
    ``V^T a^T U`` is the upper bidiagonal :func:`_bidiagonal` of the coefficients so far.
    Raises :class:`_NotConverged` (the caller falls back to the exact solver) or
    :class:`_NonFinite`.
    """
    n, d = a.shape
    ops = _Products(a)
    eps_work = float(np.finfo(a.dtype).eps)
    rounding = 16 * eps_work  # a new coefficient below this times the product's scale is rounding

    def checked(x: np.ndarray) -> float:
        norm = float(np.linalg.norm(x))
        if not math.isfinite(norm):
            if np.isfinite(a).all():  # finite data overflowing in the working dtype
                raise _NotConverged(ops.passes, "overflow in the working dtype")
            raise _NonFinite
        return norm

    def budget() -> None:
        if ops.passes >= max_passes:
            raise _NotConverged(ops.passes, f"not converged within max_passes={max_passes}")

    if center:
        budget()
        ops.mean = ops.rmatvec(np.ones(n)) / n
        checked(ops.mean)
    # Start: s (default 1, the column-mean direction once multiplied by a^T) plus a seeded random
    # unit vector (see _START_PROTECTION); random alone when centring makes a^T 1 vanish.
    g = np.random.default_rng(seed).random(n) - 0.5
    g /= np.linalg.norm(g)
    s = None if (start is None and center) else (np.ones(n) if start is None else start)
    s_norm = 0.0 if s is None else float(np.linalg.norm(s))
    u = g if s_norm == 0 else s / s_norm + min(1.0, _START_PROTECTION * tol * math.sqrt(n)) * g
    us, vs = np.empty((min(8, max_passes // 2 + 2), n)), np.empty((min(8, max_passes // 2 + 2), d))
    us[0] = u / np.linalg.norm(u)
    c: list[float] = []
    n_u, n_v = 1, 0
    svd_now = None
    while True:
        budget()
        if len(c) % 2 == 0:  # a^T u_j: alpha_j, v_j
            x = ops.rmatvec(us[n_u - 1])
            if n_v:
                x -= c[-1] * vs[n_v - 1]
            x = _reorthogonalised(x, vs[:n_v])
            coef = checked(x)
            if n_v >= d or coef <= rounding * ops.scale:
                coef = 0.0  # rounding only (or the right basis spans R^d): an invariant subspace
            if not c and coef == 0:
                raise _NotConverged(ops.passes, "a^T u_1 is zero to rounding (a zero matrix, or a start "
                                                "in its left null space)")
            vs = _with_row(vs, n_v, x / coef if coef > 0 else 0.0)
            n_v += 1
        else:  # a v_j: beta_j, u_{j+1}
            x = ops.matvec(vs[n_v - 1]) - c[-1] * us[n_u - 1]
            x = _reorthogonalised(x, us[:n_u])
            coef = checked(x)
            if n_u >= n or coef <= rounding * ops.scale:
                coef = 0.0
            us = _with_row(us, n_u, x / coef if coef > 0 else 0.0)
            n_u += 1
        c.append(coef)
        m = len(c)
        svd_prev, svd_now = svd_now, np.linalg.svd(_bidiagonal(c))
        if m < 2:
            continue
        left, sing, right_t = svd_prev
        theta = sing[0]
        # Residual of T_{m-1}'s top Ritz pair: the new coefficient (a new column of T_m when m is
        # even, a new row when odd) times the pair's last entry on the other side.
        last = left[-1, 0] if (m - 1) % 2 else right_t[0, -1]
        rho = abs(coef * last) / theta if theta > 0 else math.inf
        s_now = svd_now[1]
        gamma = 1.0 - (s_now[1] / s_now[0]) ** 2 if s_now.size > 1 and s_now[0] > 0 else math.nan
        # Kato-Temple: with the gap gamma, s_1 <= theta * sqrt(1 + rho^2 / gamma); the newer Ritz
        # value (<= s_1) must respect that bound, else gamma is overestimated (e.g. a cluster).
        rise = s_now[0] / theta - 1.0 if theta > 0 else math.inf
        log.debug("adaptive: pass %d, theta %.12g, rho %.3g, gamma %.3g, rise %.3g", ops.passes, theta, rho,
                  gamma, rise)
        if rho == 0 or (m >= 3 and rho <= tol * gamma and rise <= rho * rho / gamma + 8 * eps_work):
            break
    # Return the top Ritz pair of T_m (it contains T_{m-1}: its Ritz value is at least theta,
    # so the certificate of T_{m-1}'s pair bounds it too).
    u = us[:n_u].T @ svd_now[2][0]
    u /= np.linalg.norm(u)
    info = SolverInfo("adaptive", "adaptive", ops.passes, True, False, float(rho),
                      float(gamma) if math.isfinite(gamma) else float("nan"))
    return u[:, None], np.array([svd_now[1][0]]), info


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
