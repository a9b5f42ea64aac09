"""Tests of gen_measures.numerics.scatter against independent references.

References used: full ``d x d`` scatter matrices built sample by sample, closed forms of the
expected traces, hand-computed cosines (compression/discrimination).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gen_measures.errors import DataError, DegenerateInputWarning, MeasureError
from gen_measures.numerics.scatter import ClassScatterAccumulator

FAST = settings(max_examples=40, deadline=None)


def gaussian_classes(n_per_class, means, sigma, seed):
    rng = np.random.default_rng(seed)
    means = np.asarray(means, dtype=np.float64)
    y = np.repeat(np.arange(len(means)), n_per_class)
    h = means[y] + sigma * rng.standard_normal((y.size, means.shape[1]))
    perm = rng.permutation(y.size)
    return h[perm], y[perm]


def scatter_matrices_bruteforce(h, y):
    """Sigma_W and Sigma_B as full d x d matrices, sample by sample (Wang et al.'s formulas)."""
    classes = sorted(set(y.tolist()))
    mu_g = h.mean(axis=0)
    mu = {c: h[y == c].mean(axis=0) for c in classes}
    d = h.shape[1]
    sw = np.zeros((d, d))
    for hi, yi in zip(h, y):
        diff = hi - mu[yi]
        sw += np.outer(diff, diff)
    sw /= len(h)
    sb = sum(np.outer(mu[c] - mu_g, mu[c] - mu_g) for c in classes) / len(classes)
    return sw, sb, mu


def scatter_of(h, y) -> ClassScatterAccumulator:
    """One accumulator over features ``h`` with integer labels ``y`` in ``[0, max(y)]``."""
    y = np.asarray(y)
    return ClassScatterAccumulator(np.shape(h)[1], int(y.max()) + 1).update(h, y)


def test_traces_match_full_scatter_matrices():
    rng = np.random.default_rng(14)
    means = rng.standard_normal((4, 6)) * 3
    h, y = gaussian_classes([30, 50, 20, 40], means, 0.7, seed=15)  # unbalanced classes
    sw, sb, mu = scatter_matrices_bruteforce(h, y)
    acc = ClassScatterAccumulator(6, 4).update(h, y)
    assert acc.trace_within() == pytest.approx(np.trace(sw), rel=1e-12)
    assert acc.trace_between() == pytest.approx(np.trace(sb), rel=1e-12)
    assert acc.compression() == pytest.approx(np.trace(sw) / np.trace(sb), rel=1e-12)
    cos = max(mu[a] @ mu[b] / (np.linalg.norm(mu[a]) * np.linalg.norm(mu[b]))
              for a in range(4) for b in range(4) if a != b)
    assert acc.discrimination() == pytest.approx(1 - cos, rel=1e-12)
    g = h.mean(axis=0)
    cos_c = max((mu[a] - g) @ (mu[b] - g) / (np.linalg.norm(mu[a] - g) * np.linalg.norm(mu[b] - g))
                for a in range(4) for b in range(4) if a != b)
    assert acc.discrimination(center=True) == pytest.approx(1 - cos_c, rel=1e-12)
    np.testing.assert_allclose(acc.class_means(), np.stack([mu[c] for c in range(4)]), rtol=1e-12)
    np.testing.assert_allclose(acc.global_mean(), g, rtol=1e-12, atol=1e-14)


def test_traces_match_closed_forms_in_expectation():
    # K classes, isotropic within-class std sigma in d dims, means at +-m e_k:
    # E Tr(Sigma_W) = d sigma^2 (N - K) / N; Tr(Sigma_B) -> (1/K) sum ||mu_k - mean(mu)||^2
    d, k, n, sigma = 20, 5, 2000, 0.5
    means = 4.0 * np.eye(d)[:k]
    h, y = gaussian_classes(n, means, sigma, seed=16)
    acc = ClassScatterAccumulator(d, k).update(h, y)
    expected_w = d * sigma**2 * (n * k - k) / (n * k)
    expected_b = np.sum((means - means.mean(axis=0)) ** 2) / k + d * sigma**2 / n * (1 - 1 / k)
    assert acc.trace_within() == pytest.approx(expected_w, rel=0.02)
    assert acc.trace_between() == pytest.approx(expected_b, rel=0.02)
    assert acc.compression() == pytest.approx(expected_w / expected_b, rel=0.03)


@given(seed=st.integers(0, 10_000), cuts=st.lists(st.integers(0, 90), max_size=6))
@FAST
def test_streaming_scatter_equals_one_shot(seed, cuts):
    rng = np.random.default_rng(seed)
    h, y = gaussian_classes(30, rng.standard_normal((3, 5)) * 2 + 5, 0.3, seed)
    one = ClassScatterAccumulator(5, 3).update(h, y)
    acc = ClassScatterAccumulator(5, 3)
    for hb, yb in zip(np.split(h, sorted(cuts)), np.split(y, sorted(cuts))):
        acc.update(hb, yb)
    for name in ("trace_within", "trace_between", "compression", "discrimination"):
        assert getattr(acc, name)() == pytest.approx(getattr(one, name)(), rel=1e-10, abs=1e-12)
    assert acc.discrimination(center=True) == pytest.approx(one.discrimination(center=True), rel=1e-10, abs=1e-12)


def test_tight_far_classes_keep_precision():
    # within-class spread 1e-6 around means of norm 1e3: the shifted accumulators stay exact
    h, y = gaussian_classes(200, [[1e3, 0, 0], [0, 1e3, 0]], 1e-6, seed=17)
    sw, sb, _ = scatter_matrices_bruteforce(h, y)
    acc = ClassScatterAccumulator(3, 2)
    for hb, yb in zip(np.array_split(h, 7), np.array_split(y, 7)):
        acc.update(hb, yb)
    assert acc.trace_within() == pytest.approx(np.trace(sw), rel=1e-6)
    assert acc.compression() == pytest.approx(np.trace(sw) / np.trace(sb), rel=1e-6)


def test_discrimination_known_values():
    eye = np.eye(4)
    y = np.arange(4).repeat(3)
    assert scatter_of(eye[y] * 2.5, y).discrimination() == pytest.approx(1.0, abs=1e-15)  # orthogonal means
    same = np.tile([1.0, 2.0, 3.0], (6, 1)) + np.array([[0.1], [-0.1]] * 3) * [1, 0, 0]
    y2 = np.array([0, 0, 1, 1, 2, 2])
    assert scatter_of(same, y2).discrimination() == pytest.approx(0.0, abs=1e-12)  # identical means
    anti = np.array([[1.0, 1.0], [-1.0, -1.0]])
    assert scatter_of(anti, [0, 1]).discrimination() == pytest.approx(2.0)  # signed cosine -1
    # centring: two classes with equal counts become antipodal around the global mean
    h = np.array([[1.0, 0.0], [0.0, 1.0]]) + 5.0
    assert scatter_of(h, [0, 1]).discrimination() == pytest.approx(1 - 60 / 61)
    assert scatter_of(h, [0, 1]).discrimination(center=True) == pytest.approx(2.0)


def test_sample_order_does_not_matter():
    h, y = gaussian_classes(25, [[0, 3], [3, 0], [2, 2]], 0.4, seed=18)
    perm = np.random.default_rng(0).permutation(len(y))
    assert scatter_of(h[perm], y[perm]).compression() == pytest.approx(scatter_of(h, y).compression(), rel=1e-12)
    assert scatter_of(h[perm], y[perm]).discrimination() == pytest.approx(scatter_of(h, y).discrimination(), rel=1e-12)


def test_scatter_degenerate_cases():
    h, y = gaussian_classes(10, [[0, 3], [3, 0]], 0.4, seed=19)
    with pytest.warns(DegenerateInputWarning, match="at least 2 classes"):
        assert np.isnan(scatter_of(h, np.zeros(len(y), dtype=int)).compression())
    with pytest.warns(DegenerateInputWarning, match="at least 2 classes"):
        assert np.isnan(scatter_of(h, np.zeros(len(y), dtype=int)).discrimination())
    same = np.tile([1.0, 2.0], (4, 1))
    with pytest.warns(DegenerateInputWarning, match="coincide"):
        assert np.isnan(scatter_of(same, [0, 0, 1, 1]).compression())
    with pytest.warns(DegenerateInputWarning, match="zero vector"):
        assert np.isnan(scatter_of(np.array([[0.0, 0.0], [1.0, 0.0]]), [0, 1]).discrimination())
    # an empty class is excluded from K, with a warning
    acc = ClassScatterAccumulator(2, 3).update(h, y)
    with pytest.warns(DegenerateInputWarning, match="1 of n_classes=3"):
        assert acc.compression() == pytest.approx(scatter_of(h, y).compression(), rel=1e-12)
    bad = h.copy()
    bad[0, 0] = np.nan
    with pytest.warns(DegenerateInputWarning, match="NaN"):
        assert np.isnan(scatter_of(bad, y).compression())


def test_scatter_bad_input():
    acc = ClassScatterAccumulator(2, 3)
    with pytest.raises(DataError, match=r"\by\b.*outside"):
        acc.update(np.ones((2, 2)), [0, 3])
    with pytest.raises(DataError, match=r"\by\b"):
        acc.update(np.ones((2, 2)), [0])
    with pytest.raises(DataError, match=r"\bh\b.*dim=2"):
        acc.update(np.ones((2, 3)), [0, 1])
    with pytest.raises(DataError, match="integer"):
        acc.update(np.ones((2, 2)), [0.5, 1.0])
    with pytest.raises(MeasureError, match="n_classes"):
        ClassScatterAccumulator(2, 0)
