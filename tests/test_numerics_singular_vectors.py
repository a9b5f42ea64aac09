"""Tests of gen_measures.numerics.singular_vectors against independent references.

References used: ``numpy.linalg.svd`` (P-vectors, subspaces), the ``arccos`` formula and hand
constructions (angles).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gen_measures.errors import DataError, DegenerateInputWarning, MeasureError
from gen_measures.numerics import singular_vectors as sv

FAST = settings(max_examples=40, deadline=None)


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    """One BLAS thread: these matrices are small, and threads only contend on a shared machine."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def abs_cos(u, v) -> float:
    return float(abs(u @ v) / (np.linalg.norm(u) * np.linalg.norm(v)))


def gapped(n: int, d: int, seed: int, rank: int = 5, noise: float = 0.05) -> np.ndarray:
    """n x d matrix with singular values 10, 7, 4.9, ... (ratio 0.7) over a small noise floor."""
    rng = np.random.default_rng(seed)
    u = np.linalg.qr(rng.standard_normal((n, rank)))[0]
    v = np.linalg.qr(rng.standard_normal((d, rank)))[0]
    s = 10.0 * 0.7 ** np.arange(rank)
    return (u * s) @ v.T + noise * rng.standard_normal((n, d)) / np.sqrt(max(n, d))


def svd_left(a: np.ndarray, k: int) -> np.ndarray:
    return np.linalg.svd(np.asarray(a, dtype=np.float64), full_matrices=False)[0][:, :k]


SHAPES = [(300, 40), (5000, 64), (50, 500)]  # random, tall, wide
TOL = {"exact": 1e-9, "randomized": 1e-5}


# ---------------------------------------------------------------------------------------------
# P-vectors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("method", ["exact", "randomized"])
@pytest.mark.parametrize("center", [False, True], ids=["uncentred", "centred"])
def test_pvector_matches_numpy_svd(shape, method, center):
    a = gapped(*shape, seed=shape[0]) + (0.3 if center else 0.0)  # offset makes centring matter
    ref = svd_left(a - a.mean(axis=0) if center else a, 1)[:, 0]
    p = sv.pvector(a, method=method, center=center)
    assert p.shape == (shape[0],) and p.dtype == np.float64
    assert abs_cos(p, ref) >= 1 - TOL[method]
    assert np.linalg.norm(p) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("method", ["exact", "randomized"])
def test_top_k_subspace_matches_numpy_svd(shape, method):
    a = gapped(*shape, seed=1 + shape[1])
    k = 3
    u = sv.top_left_singular_vectors(a, k, method=method)
    ref = svd_left(a, k)
    assert u.shape == (shape[0], k)
    np.testing.assert_allclose(u.T @ u, np.eye(k), atol=1e-10)
    for i in range(k):
        assert abs_cos(u[:, i], ref[:, i]) >= 1 - TOL[method]
    assert sv.subspace_angles_deg(u, ref).max() < (1e-3 if method == "exact" else 0.3)


def test_centred_subspace_matches_svd_of_centred_matrix():
    a = gapped(400, 30, seed=3) + np.linspace(-2, 2, 30)
    ref = svd_left(a - a.mean(axis=0), 4)
    for method in ("exact", "randomized"):
        u = sv.top_left_singular_vectors(a, 4, method=method, center=True)
        assert sv.subspace_angles_deg(u, ref).max() < 0.3
        # centred vectors are orthogonal to the all-ones vector
        assert np.abs(u.sum(axis=0)).max() < 1e-6


@pytest.mark.parametrize("method", ["exact", "randomized"])
def test_pvector_of_feature_like_matrix(method):
    # uncentred ReLU features of a random two-layer map of a Gaussian mixture (n = 2000, the
    # default sample size): no planted gap, a dominant mean direction as in real features
    rng = np.random.default_rng(23)
    x = rng.standard_normal((2000, 32)) + 2.0 * rng.standard_normal((10, 32))[rng.integers(0, 10, 2000)]
    h = np.maximum(np.maximum(x @ rng.standard_normal((32, 64)), 0) @ rng.standard_normal((64, 48)), 0)
    for center in (False, True):
        ref = svd_left(h - h.mean(axis=0) if center else h, 2)
        u = sv.top_left_singular_vectors(h.astype(np.float32), 2, method=method, center=center)
        for i in range(2):
            assert abs_cos(u[:, i], ref[:, i]) >= 1 - TOL[method]


def test_float32_input_matches_float64_reference():
    a = gapped(3000, 48, seed=4).astype(np.float32)
    ref = svd_left(a.astype(np.float64), 1)[:, 0]
    for method in ("exact", "randomized"):
        assert abs_cos(sv.pvector(a, method=method), ref) >= 1 - 1e-6


@pytest.mark.parametrize("method", ["exact", "randomized"])
def test_pvector_sign_flip_and_sign_convention(method):
    a = gapped(200, 30, seed=5)
    p, q = sv.pvector(a, method=method), sv.pvector(-a, method=method)
    # deterministic sign: largest-|entry| component positive, so flipping a changes nothing
    np.testing.assert_allclose(p, q, atol=1e-10)
    assert p[np.argmax(np.abs(p))] > 0
    assert sv.angle_between(p, q) < 1e-5
    u = sv.top_left_singular_vectors(a, 3, method=method)
    assert np.all(u[np.argmax(np.abs(u), axis=0), np.arange(3)] > 0)


@pytest.mark.parametrize("method", ["exact", "randomized"])
def test_pvector_permutes_with_samples(method):
    a = gapped(500, 20, seed=6)
    perm = np.random.default_rng(0).permutation(500)
    p = sv.pvector(a, method=method)
    pp = sv.pvector(a[perm], method=method)
    np.testing.assert_allclose(pp, p[perm], atol=1e-6)


def test_pvector_invariant_to_feature_permutation():
    a = gapped(300, 25, seed=7)
    perm = np.random.default_rng(1).permutation(25)
    np.testing.assert_allclose(sv.pvector(a[:, perm]), sv.pvector(a), atol=1e-10)


def test_randomized_is_deterministic_under_seed():
    a = gapped(400, 60, seed=8)
    u1 = sv.top_left_singular_vectors(a, 2, method="randomized", seed=3)
    u2 = sv.top_left_singular_vectors(a, 2, method="randomized", seed=3)
    np.testing.assert_array_equal(u1, u2)


def test_auto_switches_to_randomized_above_threshold(monkeypatch):
    calls = []
    real = sv._randomized_top

    def spy(*args, **kwargs):
        calls.append(args[0].shape)
        return real(*args, **kwargs)

    monkeypatch.setattr(sv, "_randomized_top", spy)
    a = gapped(300, 40, seed=9)
    # k > 1: the size rule (k = 1 goes to the adaptive solver: test_auto_uses_adaptive_for_k1)
    sv.top_left_singular_vectors(a, 2)
    assert calls == []
    monkeypatch.setattr(sv, "AUTO_EXACT_MAX_DIM", 30)
    u = sv.top_left_singular_vectors(a, 2)
    assert calls == [(300, 40)]
    assert abs_cos(u[:, 0], svd_left(a, 1)[:, 0]) >= 1 - 1e-5


def test_exact_solver_streams_in_chunks(monkeypatch):
    monkeypatch.setattr(sv, "_CHUNK_ELEMENTS", 64)  # many tiny chunks, both Gram orientations
    for shape in [(101, 7), (7, 101)]:
        a = gapped(*shape, seed=10)
        for center in (False, True):
            ref = svd_left(a - a.mean(axis=0) if center else a, 2)
            u = sv.top_left_singular_vectors(a, 2, method="exact", center=center)
            assert sv.subspace_angles_deg(u, ref).max() < 1e-4


@pytest.mark.parametrize("method", ["exact", "randomized"])
def test_all_zero_matrix_gives_nan_with_warning(method):
    with pytest.warns(DegenerateInputWarning, match="all zero"):
        p = sv.pvector(np.zeros((20, 5)), method=method)
    assert p.shape == (20,) and np.isnan(p).all()


@pytest.mark.parametrize("method", ["exact", "randomized"])
def test_rank_deficient_columns_are_nan(method):
    rng = np.random.default_rng(11)
    a = np.outer(rng.standard_normal(30), rng.standard_normal(6))
    with pytest.warns(DegenerateInputWarning, match="rank"):
        u = sv.top_left_singular_vectors(a, 2, method=method)
    assert abs_cos(u[:, 0], svd_left(a, 1)[:, 0]) >= 1 - 1e-9
    assert np.isnan(u[:, 1]).all()


@pytest.mark.parametrize("method", ["exact", "randomized"])
def test_nonfinite_matrix_gives_nan_with_warning(method):
    a = gapped(30, 6, seed=12)
    a[4, 2] = np.nan
    with pytest.warns(DegenerateInputWarning, match="NaN or inf"):
        assert np.isnan(sv.pvector(a, method=method)).all()
    a[4, 2] = np.inf
    with pytest.warns(DegenerateInputWarning, match="NaN or inf"):
        assert np.isnan(sv.pvector(a, method=method, center=True)).all()


def test_bad_arguments_name_the_argument():
    a = np.ones((10, 4))
    with pytest.raises(MeasureError, match=r"k=5"):
        sv.top_left_singular_vectors(a, 5)
    with pytest.raises(MeasureError, match=r"\bk\b"):
        sv.top_left_singular_vectors(a, 0)
    with pytest.raises(MeasureError, match="method"):
        sv.top_left_singular_vectors(a, 1, method="randomised")
    with pytest.raises(MeasureError, match="n_iter"):
        sv.top_left_singular_vectors(a, 1, n_iter=-1)
    with pytest.raises(DataError, match=r"\ba\b.*2-D"):
        sv.pvector(np.ones(10))
    with pytest.raises(DataError, match=r"\ba\b"):
        sv.pvector(np.ones((0, 3)))
    with pytest.raises(DataError, match="complex"):
        sv.pvector(np.ones((3, 3), dtype=complex))
    with pytest.raises(ValueError):  # the toolkit errors are ValueErrors too
        sv.pvector(np.ones((3, 3)), k=2)


# ---------------------------------------------------------------------------------------------
# Adaptive solver (warm-started Lanczos with an exact fallback): against numpy's full SVD;
# passes are counted (SolverInfo), never timed
# ---------------------------------------------------------------------------------------------

ADAPTIVE_COS = 1 - 1e-5  # the accuracy the adaptive solver must reach on every matrix


def relu_features(n: int, d: int, seed: int, dtype=np.float32) -> np.ndarray:
    """Uncentred non-negative ``relu(G W + 0.1)``: a dominant first singular value, as real features."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((d, d)) / np.sqrt(d)
    return np.maximum(rng.standard_normal((n, d)) @ w + 0.1, 0.0).astype(dtype)


def hard_synthetic(n: int, d: int, seed: int) -> np.ndarray:
    """Centred Gaussian: rank-10 signal with singular values decaying by 0.7, plus unit noise."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((10, d)) * (3.0 * 0.7 ** np.arange(10))[:, None]
    return rng.standard_normal((n, 10)) @ w + rng.standard_normal((n, d))


def with_spectrum(n: int, d: int, s, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``U diag(s) V^T`` with random orthonormal ``U``, ``V`` (and ``U`` returned)."""
    rng = np.random.default_rng(seed)
    u = np.linalg.qr(rng.standard_normal((n, len(s))))[0]
    v = np.linalg.qr(rng.standard_normal((d, len(s))))[0]
    return (u * np.asarray(s, dtype=float)) @ v.T, u


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("shape", [(5000, 64), (400, 30), (60, 300)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_adaptive_matches_numpy_svd_on_relu_features(shape, dtype):
    a = relu_features(*shape, seed=shape[1], dtype=dtype)
    ref = svd_left(a, 1)[:, 0]
    p, info = sv.pvector(a, method="adaptive", return_info=True)
    assert p.shape == (shape[0],) and p.dtype == np.float64
    assert abs_cos(p, ref) >= ADAPTIVE_COS
    assert np.linalg.norm(p) == pytest.approx(1.0, abs=1e-12)
    # converged by its own test, in a few passes (the warm start: the column-mean direction):
    # the start's a^T u_1, then two per Lanczos step (n >= d), or two per step (n < d)
    assert (info.method, info.converged, info.fell_back) == ("adaptive", True, False)
    assert info.residual <= 1e-4 * info.gap
    assert info.passes <= (9 if shape[0] >= shape[1] else 8)


@pytest.mark.parametrize("center", [False, True], ids=["uncentred", "centred"])
def test_adaptive_matches_numpy_svd_on_hard_synthetic(center):
    a = hard_synthetic(4000, 128, seed=2) + (0.5 if center else 0.0)
    ref = svd_left(a - a.mean(axis=0) if center else a, 1)[:, 0]
    p, info = sv.pvector(a, method="adaptive", center=center, return_info=True)
    assert abs_cos(p, ref) >= ADAPTIVE_COS
    assert info.method == "adaptive" and not info.fell_back  # slower than on features, still converges
    assert info.passes <= 40


TAIL = list(0.6 * 0.95 ** np.arange(50))  # a full-rank tail: no early exact breakdown


def test_adaptive_with_repeated_top_singular_value():
    # s_1 = s_2: the top vector is not unique; compare the subspace and the singular value
    a, u_true = with_spectrum(600, 70, [5.0, 5.0, 3.0] + TAIL, seed=3)
    p, info = sv.pvector(a, method="adaptive", return_info=True)
    assert sv.subspace_angles_deg(p, u_true[:, :2]).max() < 0.3  # p lies in span(u_1, u_2)
    assert np.linalg.norm(a.T @ p) == pytest.approx(5.0, rel=1e-8)
    assert np.linalg.norm(a.T @ p) == pytest.approx(np.linalg.svd(a, compute_uv=False)[0], rel=1e-8)


@pytest.mark.parametrize("seed", range(12))
def test_adaptive_with_close_gap(seed):
    # s_2 / s_1 = 0.99 (the documented limit of the default tol): slow for any Krylov method, and
    # a loose residual test can stop on a mixture of u_1 and u_2; the default must not
    a, _ = with_spectrum(500, 60, [1.0, 0.99] + TAIL, seed=seed)
    ref = svd_left(a, 1)[:, 0]
    p, info = sv.pvector(a, method="adaptive", return_info=True)
    assert abs_cos(p, ref) >= ADAPTIVE_COS
    assert info.fell_back or info.residual <= 1e-4 * info.gap
    if seed == 11:  # s_2 / s_1 = 0.999: needs a smaller tol (this start stagnates on a mixture)
        a, _ = with_spectrum(500, 60, [1.0, 0.999] + TAIL, seed=seed)
        assert abs_cos(sv.pvector(a, tol=1e-5), svd_left(a, 1)[:, 0]) >= ADAPTIVE_COS


@pytest.mark.parametrize("which", ["second_vector", "random_orthogonal"])
def test_adaptive_warm_start_orthogonal_to_the_answer(which):
    a = gapped(800, 50, seed=13)
    ref = svd_left(a, 2)
    if which == "second_vector":
        start = ref[:, 1]  # a singular vector itself: a Krylov method started there stays there
    else:
        start = np.random.default_rng(0).standard_normal(800)
        start -= (start @ ref[:, 0]) * ref[:, 0]
    assert abs(start @ ref[:, 0]) < 1e-12 * np.linalg.norm(start)
    p, info = sv.pvector(a, method="adaptive", start=start, return_info=True)
    assert abs_cos(p, ref[:, 0]) >= ADAPTIVE_COS
    assert not info.fell_back


def test_adaptive_warm_start_near_the_answer_saves_passes():
    a = hard_synthetic(3000, 100, seed=5)
    ref = svd_left(a, 1)[:, 0]
    _, cold = sv.pvector(a, method="adaptive", return_info=True)
    near = ref + 1e-3 * np.random.default_rng(1).standard_normal(3000) / np.sqrt(3000)
    p, warm = sv.pvector(a, method="adaptive", start=-7.0 * near, return_info=True)  # any scale and sign
    assert abs_cos(p, ref) >= ADAPTIVE_COS
    assert warm.passes < cold.passes


def test_adaptive_falls_back_to_exact_when_max_passes_is_tiny(caplog):
    a = hard_synthetic(2000, 60, seed=6)
    ref = svd_left(a, 1)[:, 0]
    with caplog.at_level("INFO", logger="gen_measures.numerics.singular_vectors"):
        p, info = sv.pvector(a, method="adaptive", max_passes=2, return_info=True)
    assert (info.method, info.requested, info.converged, info.fell_back) == ("exact", "adaptive", False, True)
    assert info.passes == 2 + 2  # two adaptive passes, then the exact solver's two
    assert "max_passes=2" in info.reason and "falling back" in caplog.text
    np.testing.assert_allclose(p, sv.pvector(a, method="exact"), atol=1e-12)  # the exact result itself
    assert abs_cos(p, ref) >= 1 - 1e-9


def test_auto_uses_adaptive_for_k1_and_it_matches_exact_on_the_reference_matrices():
    for shape in SHAPES:
        for center in (False, True):
            a = gapped(*shape, seed=shape[0]) + (0.3 if center else 0.0)
            p, info = sv.pvector(a, center=center, return_info=True)
            assert info.requested == "adaptive"
            assert abs_cos(p, sv.pvector(a, method="exact", center=center)) >= ADAPTIVE_COS
    _, info = sv.top_left_singular_vectors(gapped(300, 40, seed=1), 2, return_info=True)
    assert (info.method, info.passes) == ("exact", 2)
    _, info = sv.top_left_singular_vectors(gapped(300, 40, seed=1), 2, method="randomized", n_iter=3,
                                           return_info=True)
    assert (info.method, info.passes) == ("randomized", 8)


def test_adaptive_chunked_products_and_float32_accuracy(monkeypatch):
    monkeypatch.setattr(sv, "_MATVEC_CHUNK_ELEMENTS", 64)  # a^T u over many row chunks
    a = relu_features(3000, 48, seed=7)
    ref = svd_left(a.astype(np.float64), 1)[:, 0]
    assert abs_cos(sv.pvector(a, tol=1e-6), ref) >= 1 - 1e-9


def test_adaptive_sign_convention_and_determinism():
    a = hard_synthetic(500, 40, seed=8)
    p, q = sv.pvector(a), sv.pvector(-a)
    np.testing.assert_allclose(p, q, atol=1e-10)
    assert p[np.argmax(np.abs(p))] > 0
    np.testing.assert_array_equal(sv.pvector(a, seed=3), sv.pvector(a, seed=3))
    # seed=None: a fresh random start component each call, the same vector to the solver's accuracy
    assert abs_cos(sv.pvector(a, seed=None), p) >= ADAPTIVE_COS
    # ties of magnitude: the first entry of largest magnitude decides
    u = np.array([[-1.0, 1.0, 2.0, np.nan], [1.0, -1.0, -2.0, 1.0], [0.5, 0.0, 1.0, 2.0]])
    np.testing.assert_array_equal(sv._fix_signs(u)[:, :3], [[1.0, 1.0, 2.0], [-1.0, -1.0, -2.0], [-0.5, 0.0, 1.0]])
    assert np.isnan(sv._fix_signs(u)[0, 3])


def test_adaptive_exact_breakdown_and_tiny_shapes():
    rng = np.random.default_rng(9)
    x, y = rng.standard_normal(30), rng.standard_normal(6)
    p, info = sv.pvector(np.outer(x, y), return_info=True)  # rank 1: the Krylov space is invariant at once
    assert abs_cos(p, x) >= 1 - 1e-12 and info.converged
    for a in (rng.standard_normal((7, 1)), rng.standard_normal((1, 7)), rng.standard_normal((3, 3))):
        assert abs_cos(sv.pvector(a), svd_left(a, 1)[:, 0]) >= 1 - 1e-10


def test_adaptive_degenerate_input():
    with pytest.warns(DegenerateInputWarning, match="all zero"):
        p, info = sv.pvector(np.zeros((20, 5)), return_info=True)
    assert np.isnan(p).all() and info.fell_back  # a^T u_1 = 0: the exact solver decides
    assert info.reason.startswith("a^T u_1 is zero to rounding")
    with pytest.warns(DegenerateInputWarning, match="all zero"):
        p, info = sv.pvector(np.ones((20, 5)), center=True, return_info=True)
    assert np.isnan(p).all() and info.fell_back
    assert info.reason.startswith("the start's Krylov space is in the null space of a")
    a = gapped(30, 6, seed=12)
    a[4, 2] = np.nan
    with pytest.warns(DegenerateInputWarning, match="NaN or inf"):
        assert np.isnan(sv.pvector(a)).all()
    a[4, 2] = np.inf
    with pytest.warns(DegenerateInputWarning, match="NaN or inf"):
        assert np.isnan(sv.pvector(a, center=True)).all()


def test_adaptive_overflow_in_float32_falls_back_to_the_exact_float64_solver():
    # finite float32 entries near 1e19: a^T (a q) overflows float32 (about 1e41), not float64
    a = relu_features(2000, 20, seed=14) * np.float32(1e19)
    assert np.isfinite(a).all()
    p, info = sv.pvector(a, return_info=True)
    assert (info.method, info.fell_back) == ("exact", True)
    assert info.reason == "overflow in the working dtype"
    assert abs_cos(p, svd_left(a.astype(np.float64), 1)[:, 0]) >= 1 - 1e-9


def test_adaptive_bad_arguments_name_the_argument():
    a = np.ones((10, 4))
    with pytest.raises(MeasureError, match="k=2"):
        sv.top_left_singular_vectors(a, 2, method="adaptive")
    with pytest.raises(MeasureError, match="start"):
        sv.pvector(a, method="exact", start=np.ones(10))
    with pytest.raises(DataError, match=r"start.*length n = 10"):
        sv.pvector(a, start=np.ones(4))
    with pytest.raises(DataError, match="start"):
        sv.pvector(a, start=np.full(10, np.nan))
    for bad in (0, 1.0, -1e-3, True):
        with pytest.raises(MeasureError, match="tol"):
            sv.pvector(a, tol=bad)
    with pytest.raises(MeasureError, match="max_passes"):
        sv.pvector(a, max_passes=0)


# ---------------------------------------------------------------------------------------------
# Angles
# ---------------------------------------------------------------------------------------------


def test_angle_between_known_angles():
    e1, e2 = np.array([1.0, 0, 0]), np.array([0.0, 1, 0])
    assert sv.angle_between(e1, e1) == 0.0
    assert sv.angle_between(e1, 3 * e1) == 0.0
    assert sv.angle_between(e1, -e1) == 0.0  # sign-safe
    assert sv.angle_between(e1, e2) == pytest.approx(90.0, abs=1e-12)
    assert sv.angle_between(e1, e1 + e2) == pytest.approx(45.0, abs=1e-12)
    assert sv.angle_between(e1, -(e1 + e2)) == pytest.approx(45.0, abs=1e-12)
    assert sv.angle_between(e1, np.array([np.cos(0.3), np.sin(0.3), 0])) == pytest.approx(np.degrees(0.3))


@given(st.integers(0, 10_000))
@FAST
def test_angle_between_matches_arccos_reference(seed):
    rng = np.random.default_rng(seed)
    u, v = rng.standard_normal((2, 7))
    ref = np.degrees(np.arccos(min(1.0, abs(u @ v) / (np.linalg.norm(u) * np.linalg.norm(v)))))
    got = sv.angle_between(u, v)
    assert 0.0 <= got <= 90.0
    assert got == pytest.approx(ref, abs=1e-6)
    assert sv.angle_between(-u, v) == pytest.approx(got, abs=1e-12)


def test_angle_between_degenerate_and_bad_input():
    with pytest.warns(DegenerateInputWarning, match="zero vector"):
        assert np.isnan(sv.angle_between(np.zeros(3), np.ones(3)))
    with pytest.warns(DegenerateInputWarning, match="NaN"):
        assert np.isnan(sv.angle_between(np.full(3, np.nan), np.ones(3)))
    with pytest.raises(DataError, match="same length"):
        sv.angle_between(np.ones(3), np.ones(4))


def test_subspace_angles_known_values():
    theta = np.radians(30.0)
    u = np.eye(4)[:, :2]
    v = np.stack([np.eye(4)[0], np.cos(theta) * np.eye(4)[1] + np.sin(theta) * np.eye(4)[2]], axis=1)
    np.testing.assert_allclose(sv.subspace_angles_deg(u, v), [0.0, 30.0], atol=1e-10)
    np.testing.assert_allclose(sv.subspace_angles_deg(u, -2 * v[:, ::-1]), [0.0, 30.0], atol=1e-10)
    assert sv.subspace_angles_deg(np.eye(4)[:, 0], np.eye(4)[:, 3]) == pytest.approx([90.0])
