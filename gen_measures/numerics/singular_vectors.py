"""Top left singular vectors (P-vectors) and the angles between vectors and subspaces.

Pure numpy/scipy (never imports TensorFlow). :func:`top_left_singular_vectors` and
:func:`pvector` solve exactly (Gram eigenvectors, streamed in chunks), by randomized subspace
iteration [1]_, or (``k = 1``, the default there) adaptively: warm-started Lanczos on the smaller
Gram matrix [2]_ with a residual/gap convergence test and a fallback to the exact solver;
:func:`angle_between` and :func:`subspace_angles_deg` compare the results (sign-safe, in degrees).
Degenerate input (an all-zero or rank-deficient matrix, NaN entries) gives NaN with a
:class:`~gen_measures.errors.DegenerateInputWarning`.

References
----------
.. [1] Halko, N., Martinsson, P.-G. & Tropp, J. A. (2011). "Finding structure with randomness:
   probabilistic algorithms for constructing approximate matrix decompositions." SIAM Review
   53(2), 217-288.
.. [2] Lanczos, C. (1950). J. Res. Nat. Bur. Standards 45(4), 255-282; Golub, G. H. & Kahan, W.
   (1965). SIAM J. Numer. Anal. 2(2), 205-224 (the same Krylov spaces, bidiagonal form);
   Parlett, B. N. (1998). *The Symmetric Eigenvalue Problem*, SIAM, theorem 11.7.1 (gap theorem).
"""

from __future__ import annotations

import functools
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

        ``"adaptive"`` (``k = 1`` only): the Lanczos method [3]_ on the smaller Gram matrix,
        ``B = a^T a`` (``d x d``) when ``n >= d``, else ``a a^T`` (``n x n``), without forming
        it: each ``B q`` is two matrix-vector products in the dtype of ``a`` (``y = a q``, then
        ``a^T y``, or the transposed pair; ``a^T y`` over row chunks whose partial sums are added
        in float64; centring, if asked, is applied implicitly, without a copy). The basis ``Q``
        of the small side is float64 with full re-orthogonalisation (classical Gram-Schmidt,
        repeated when it removes over 30 % of the norm); the products ``y = a q_j`` on the big
        side are kept in the working dtype when ``n >= d``, so the left Ritz vector ``a Q z``
        costs no further pass. All vector work outside the products is on the small side: on a
        narrow matrix it would otherwise cost more than the products. ``T_j = Q^T B Q``
        (tridiagonal, ``j x j``) after ``j`` products with ``B``; its top eigenpair
        ``(theta^2, z)`` gives the Ritz triplet ``(theta, u, v)``, for which one of
        ``a v = theta u``, ``a^T u = theta v`` holds exactly. (The Krylov spaces are those of
        Golub-Kahan-Lanczos bidiagonalization started on the same left vector [4]_.)

        *Start*: ``u_1 ~ s / ||s|| + eta g`` on the left, with ``s = start`` (a guess of the
        left vector, e.g. the previous epoch's P-vector) or, by default, ``s = 1`` (then
        ``a^T u_1`` is nearly the column-mean direction, already close to the answer for
        uncentred non-negative features such as ReLU outputs; with ``center=True`` and no
        ``start``, ``u_1 = g``); the small side starts at ``a^T u_1`` (one pass) when ``n >= d``,
        at ``u_1`` otherwise. ``g`` is a seeded random unit vector (kept between calls for an
        integer seed: drawing it costs more than a mat-vec of a narrow matrix) and
        ``eta = min(1, 10 tol sqrt(n))``: every singular direction gets a weight of about
        ``10 tol`` in the start, so that a start (nearly) orthogonal to the answer, which would
        make any Krylov method converge to another singular triplet, still finds the top one (it
        only costs passes). The start is on the left on both sides, so the result does not depend
        on the order of the columns.

        *Convergence test*, after every product with ``B`` (``j >= 2``): ``rho = beta_j |z_j| /
        theta^2``, the relative residual ``||a^T u - theta v|| / theta`` (or ``||a v - theta u||
        / theta``) of the top Ritz triplet of ``T_j`` (``beta_j`` is the norm of the new Lanczos
        vector: no extra product); ``gamma = 1 - lambda_2 / theta^2`` with ``lambda_2`` the second
        eigenvalue of ``T_j`` (an estimate of the relative gap ``1 - (s_2 / s_1) ** 2``).
        Converged when ``rho <= tol * gamma`` (``rho / gamma`` estimates the gap-theorem bound
        [5]_ ``sin angle(u, u_1) <= rho / (1 - (s_2 / s_1) ** 2)``) and the Ritz value rose by
        at most ``theta^2 * (2 rho'^2 / gamma + 16 eps)`` from ``T_{j-1}`` (residual ``rho'``)
        to ``T_j`` (``eps`` of the working dtype; the Kato-Temple bound ``s_1^2 <= theta'^2 (1 +
        rho'^2 / gamma)`` up to a factor 2: a larger rise shows ``gamma`` is overestimated), or
        when ``beta_j`` is at rounding level (an invariant Krylov space: exact). The returned
        triplet is the tested one. The default ``tol`` (1e-4) is well below the ``sin = 4.5e-3``
        that ``|cos| = 0.99999`` allows, because Ritz values approach ``s_2`` from below: the gap
        estimate can be optimistic. Limitation (of every residual test): if ``s_2 / s_1 >
        1 - tol * 100`` (0.99 by default) an unlucky start can stagnate on a mixture of ``u_1``
        and ``u_2`` whose residual passes the test; lower ``tol`` or use ``method="exact"`` for
        such near-degenerate spectra. An exactly repeated top value returns one vector of its
        subspace (any is a top singular vector).

        *Fallback*: if the test has not passed after ``max_passes`` passes over ``a`` (the
        column means of ``center=True`` count), or the start's products are zero to rounding,
        the result is that of ``method="exact"`` (always exact, whatever the size; reported by
        :class:`SolverInfo` and logged at INFO level). The products are memory-bound, so the
        cost is about ``passes`` times one mat-vec (``a^T y`` costs 1-2 times ``a v``): 5-9 on
        uncentred features with a dominant first singular value (``1 + 2 j`` when ``n >= d``,
        ``2 j`` otherwise), 13 on a centred Gaussian matrix with singular values decaying by
        0.7, at most ``max_passes`` plus the exact solver (e.g. centred features with a nearly
        flat spectrum).

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
    .. [3] Lanczos, C. (1950). "An iteration method for the solution of the eigenvalue problem of
       linear differential and integral operators." J. Res. Nat. Bur. Standards 45(4), 255-282;
       Golub & Van Loan (2013), section 10.1.
    .. [4] Golub, G. H. & Kahan, W. (1965). "Calculating the singular values and pseudo-inverse
       of a matrix." SIAM J. Numer. Anal. 2(2), 205-224.
    .. [5] Parlett, B. N. (1998). *The Symmetric Eigenvalue Problem*, SIAM, theorem 11.7.1
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
    """Flip columns so that each column's entry of largest magnitude is positive (ties: the first)."""
    if u.shape[0] == 0:
        return u
    # argmax / argmin instead of argmax(abs(u)): no temporary the size of u (this runs on every
    # P-vector, and on a narrow matrix an n-vector operation costs as much as a mat-vec)
    cols = np.arange(u.shape[1])
    hi, lo = np.argmax(u, axis=0), np.argmin(u, axis=0)
    top, bottom = u[hi, cols], u[lo, cols]
    flip = (-bottom > top) | ((-bottom == top) & (lo < hi))  # NaN compares False: no flip
    if flip.any():
        u = u * np.where(flip, -1.0, 1.0)
    return u


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
    """Products with ``a`` (or ``a - 1 mean^T``) in the dtype of ``a``; counts passes.

    ``matvec`` returns the working dtype (the caller decides whether a float64 copy is needed);
    ``rmatvec`` (``a^T u``) runs over row chunks whose partial sums are added in float64 (float32
    BLAS accumulation over 50 000 rows alone loses about 1e-6 relative accuracy).
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

    def matvec(self, v: np.ndarray, out: np.ndarray | None = None, scaled: bool = False) -> np.ndarray:
        """``a v`` in the working dtype; ``scaled`` also sets :attr:`scale` (an extra pass over the result)."""
        self.passes += 1
        out = np.matmul(self.a, v.astype(self.work, copy=False), out=out)
        if scaled:
            self.scale = float(np.linalg.norm(out))
        if self.mean is not None:
            shift = float(self.mean @ v)
            if scaled:
                self.scale = max(self.scale, abs(shift) * math.sqrt(out.size))
            out -= self.work.type(shift)
        return out

    def rmatvec(self, u: np.ndarray) -> np.ndarray:
        self.passes += 1
        uw = u.astype(self.work, copy=False)
        out = np.zeros(self.a.shape[1])
        for rows in self.chunks:
            out += uw[rows] @ self.a[rows]
        self.scale = float(np.linalg.norm(out))
        if self.mean is not None:
            shift = self.mean * float(np.sum(uw, dtype=np.float64))
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


def _with_room(basis: np.ndarray, i: int) -> np.ndarray:
    """``basis``, reallocated (doubling its rows) when it has no row ``i`` to write."""
    if i >= basis.shape[0]:
        grown = np.empty((2 * basis.shape[0], basis.shape[1]), dtype=basis.dtype)
        grown[:i] = basis[:i]
        basis = grown
    return basis


def _tridiagonal_top(alphas: list[float], betas: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (ascending) and the top eigenvector of the Lanczos matrix of ``alphas``, ``betas``."""
    off = np.asarray(betas[: len(alphas) - 1], dtype=np.float64)
    # dense: for these few rows numpy's eigh takes half the time of scipy's eigh_tridiagonal
    lam, z = np.linalg.eigh(np.diag(np.asarray(alphas, dtype=np.float64)) + np.diag(off, 1) + np.diag(off, -1))
    return lam, z[:, -1]


@functools.lru_cache(maxsize=4)
def _seeded_noise(seed: int, n: int, dtype: np.dtype) -> np.ndarray:
    g = np.random.default_rng(seed).random(n, dtype=dtype)
    g -= dtype.type(0.5)
    g /= np.linalg.norm(g)
    g.flags.writeable = False
    return g


def _start_noise(seed, n: int, dtype: np.dtype) -> np.ndarray:
    """The adaptive solver's random unit start component, read-only. Drawing it costs more than a
    mat-vec of a narrow matrix, and every model of a zoo is measured on the same ``n`` samples, so
    an integer seed's vector is kept (the last 4 ``(seed, n, dtype)``); ``seed=None`` draws anew."""
    if seed is None or not isinstance(seed, (int, np.integer)):
        return _seeded_noise.__wrapped__(seed, n, dtype)
    return _seeded_noise(int(seed), n, np.dtype(dtype))


def _adaptive_top(
    a: np.ndarray, center: bool, seed, start: np.ndarray | None, tol: float, max_passes: int
) -> tuple[np.ndarray, np.ndarray, SolverInfo]:
    """Top singular triplet by Lanczos on the smaller Gram matrix (see ``method="adaptive"``).

    ``B = a^T a`` (``d x d``) when ``n >= d``, else ``a a^T``; every ``B q`` is two products
    (``y = a q``, then ``a^T y``, or the transposed pair), and the ``y`` of the big side are kept
    in the working dtype so that the left Ritz vector ``a V z`` needs no further pass.
    Raises :class:`_NotConverged` (the caller falls back to the exact solver) or
    :class:`_NonFinite`.
    """
    n, d = a.shape
    ops = _Products(a)
    left_small = n < d  # the left vectors (the answer) live on the small side
    small = n if left_small else d
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
        ops.mean = ops.rmatvec(np.ones(n, dtype=a.dtype)) / n
        checked(ops.mean)
    # Start: u_1 = s / ||s|| + eta g on the left, with the guess s (default 1, so that a^T u_1 is
    # nearly the column-mean direction) and a seeded random unit vector g (_START_PROTECTION);
    # g alone when centring without a guess. The small side's start is u_1 itself when n < d,
    # else a^T u_1 (one pass). In the working dtype: the products cast to it anyway.
    g = _start_noise(seed, n, a.dtype)
    s_norm = 1.0 if start is None else float(np.linalg.norm(start))
    if (start is None and center) or s_norm == 0:
        q = g
    else:
        q = g * a.dtype.type(min(1.0, _START_PROTECTION * tol * math.sqrt(n)))
        q += a.dtype.type(1.0 / math.sqrt(n)) if start is None else (start / s_norm).astype(a.dtype)
    if not left_small:
        budget()
        q = ops.rmatvec(q)
        if checked(q) == 0:
            raise _NotConverged(ops.passes, "a^T u_1 is zero to rounding (a zero matrix, or a start "
                                            "in its left null space)")
    rows = min(8, max_passes // 2 + 2)
    qs = np.empty((rows, small))  # orthonormal Lanczos basis of the small side (float64)
    qs[0] = q / np.linalg.norm(q)
    ys = None if left_small else np.empty((rows, n), dtype=a.dtype)  # a q_j, working dtype
    alphas: list[float] = []
    betas: list[float] = []
    lam_prev = rho_prev = math.nan
    j = 0
    while True:
        budget()
        if left_small:
            y = ops.rmatvec(qs[j])
            budget()
            w = ops.matvec(y, scaled=True).astype(np.float64)
        else:
            ys = _with_room(ys, j)
            y = ops.matvec(qs[j], out=ys[j])
            budget()
            w = ops.rmatvec(y)
        scale = ops.scale
        alpha = float(qs[j] @ w)
        w -= alpha * qs[j]
        if j:
            w -= betas[-1] * qs[j - 1]
        w = _reorthogonalised(w, qs[: j + 1])
        beta = checked(w)
        if j + 1 >= small or beta <= rounding * scale:
            beta = 0.0  # rounding only (or the basis spans the small side): an invariant subspace
        alphas.append(alpha)
        betas.append(beta)
        lam, z = _tridiagonal_top(alphas, betas)
        theta2 = lam[-1]
        if not theta2 > 0:
            raise _NotConverged(ops.passes, "the start's Krylov space is in the null space of a (a zero matrix?)")
        # B-residual of the top Ritz pair: beta_j |z_j|; relative to the singular value: / theta^2.
        rho = beta * abs(z[-1]) / theta2
        gamma = 1.0 - max(lam[-2], 0.0) / theta2 if j else math.nan
        # Kato-Temple: with the gap gamma, s_1^2 <= theta^2 (1 + rho^2 / gamma) (up to a factor 2);
        # the newer Ritz value (<= s_1^2) must respect the previous pair's bound, else gamma is
        # overestimated (e.g. a cluster).
        rise = theta2 / lam_prev - 1.0 if j else math.inf
        log.debug("adaptive: pass %d, theta %.12g, rho %.3g, gamma %.3g, rise %.3g", ops.passes,
                  math.sqrt(theta2), rho, gamma, rise)
        if beta == 0 or (j and rho <= tol * gamma and rise <= 2 * rho_prev * rho_prev / gamma + 16 * eps_work):
            break
        qs = _with_room(qs, j + 1)
        qs[j + 1] = w / beta
        lam_prev, rho_prev = theta2, rho
        j += 1
    if left_small:
        u = z @ qs[: j + 1]
    else:  # a V z, from the kept products a q_i
        u = (z.astype(a.dtype) @ ys[: j + 1]).astype(np.float64)
    u /= np.linalg.norm(u)
    info = SolverInfo("adaptive", "adaptive", ops.passes, True, False, float(rho),
                      float(gamma) if math.isfinite(gamma) else float("nan"))
    return u[:, None], np.array([math.sqrt(theta2)]), info


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
