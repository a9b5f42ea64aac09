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
    sv.pvector(a)
    assert calls == []
    monkeypatch.setattr(sv, "AUTO_EXACT_MAX_DIM", 30)
    p = sv.pvector(a)
    assert calls == [(300, 40)]
    assert abs_cos(p, svd_left(a, 1)[:, 0]) >= 1 - 1e-5


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
