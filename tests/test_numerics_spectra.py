"""Tests of gen_measures.numerics.spectra against independent references.

References used: ``numpy.cov`` (streaming covariance), ``numpy.linalg.eigvalsh`` (spectra),
hand-computed values and brute-force loops in exact rational arithmetic (saturation).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gen_measures.errors import DataError, DegenerateInputWarning, MeasureError
from gen_measures.numerics import spectra as sp

FAST = settings(max_examples=40, deadline=None)


@given(seed=st.integers(0, 10_000), cuts=st.lists(st.integers(0, 120), max_size=8),
       offset=st.sampled_from([0.0, 1e3]))
@FAST
def test_streaming_covariance_equals_batch_covariance(seed, cuts, offset):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((120, 6)) @ rng.standard_normal((6, 6)) + offset
    acc = sp.StreamingCovariance(6)
    for batch in np.split(x, sorted(cuts)):  # includes empty batches
        acc.update(batch.astype(np.float32) if seed % 5 == 0 else batch)
    ref_x = x.astype(np.float32).astype(np.float64) if seed % 5 == 0 else x
    assert acc.n == 120
    np.testing.assert_allclose(acc.covariance(), np.cov(ref_x, rowvar=False, bias=True), rtol=0, atol=1e-10)
    np.testing.assert_allclose(acc.mean, ref_x.mean(axis=0), rtol=1e-13, atol=1e-10)


def test_streaming_covariance_degenerate_and_bad_input():
    acc = sp.StreamingCovariance(3)
    with pytest.warns(DegenerateInputWarning, match="no samples"):
        assert np.isnan(acc.covariance()).all()
    with pytest.raises(DataError, match="dim=3"):
        acc.update(np.ones((4, 2)))
    with pytest.raises(DataError, match="batch"):
        acc.update(np.ones(3))
    with pytest.raises(MeasureError, match="dim"):
        sp.StreamingCovariance(0)
    acc.update(np.ones((1, 3)))
    np.testing.assert_array_equal(acc.covariance(), np.zeros((3, 3)))


def test_eigenvalues_desc_matches_numpy_and_clips():
    rng = np.random.default_rng(13)
    b = rng.standard_normal((8, 8))
    c = b @ b.T
    np.testing.assert_allclose(sp.eigenvalues_desc(c), np.sort(np.linalg.eigvalsh(c))[::-1], rtol=1e-12, atol=1e-12)
    indefinite = np.diag([3.0, -1e-12, 1.0])
    np.testing.assert_array_equal(sp.eigenvalues_desc(indefinite), [3.0, 1.0, 0.0])
    with pytest.raises(DataError, match="square"):
        sp.eigenvalues_desc(np.ones((2, 3)))
    with pytest.warns(DegenerateInputWarning):
        assert np.isnan(sp.eigenvalues_desc(np.full((2, 2), np.nan))).all()


@pytest.mark.parametrize(
    "eigvals, threshold, paper, delve",
    [
        ([1, 0, 0, 0], 0.99, 1, 1),
        ([0.5, 0.25, 0.25], 0.99, 3, 2),
        ([1.0] * 10, 0.99, 10, 9),
        ([0, 0, 0], 0.99, 1, 1),
        ([0.25, 0.5, 0.25], 0.99, 3, 2),  # unsorted input is sorted
        ([0.9, 0.09, 0.01], 0.99, 2, 1),  # cumulative share exactly 0.99 at i = 2
        ([0.1] * 100, 0.99, 99, 98),  # float cumsum gives 0.98999999999999821 at i = 99
        ([4, 3, 2, 1], 0.5, 2, 1),  # shares 0.4, 0.7, 0.9, 1.0
        ([4, 3, 2, 1], 0.75, 3, 2),
        ([4, 3, 2, 1], 1.0, 4, 3),
        ([5, -1e-9, 0], 0.99, 1, 1),  # negative rounding noise is clipped
    ],
)
def test_saturation_k_hand_computed(eigvals, threshold, paper, delve):
    assert sp.saturation_k(eigvals, threshold, rule="paper") == paper
    assert sp.saturation_k(eigvals, threshold, rule="delve") == delve
    assert sp.saturation(eigvals, 10, threshold) == pytest.approx(paper / 10)
    assert sp.saturation(eigvals, 10, threshold, rule="delve") == pytest.approx(delve / 10)


@given(st.lists(st.floats(0, 1e3, allow_nan=False), min_size=1, max_size=30),
       st.floats(0.05, 1.0))
@FAST
def test_saturation_k_matches_brute_force_loop(eigvals, threshold):
    # brute force with exact rational arithmetic on the sorted spectrum
    from fractions import Fraction

    e = sorted((Fraction(x) for x in eigvals), reverse=True)
    total = sum(e)
    t = Fraction(threshold)
    if total == 0:
        paper = delve = 1
    else:
        run, shares = Fraction(0), []
        for x in e:
            run += x
            shares.append(run / total)
        paper = next(i + 1 for i, p in enumerate(shares) if p >= t)
        delve = max(1, sum(1 for p in shares if p < t))
    got_p, got_d = sp.saturation_k(eigvals, threshold), sp.saturation_k(eigvals, threshold, rule="delve")
    # the documented 1e-12 tolerance may only move a share within 1e-12 of the threshold
    near = total != 0 and any(abs(float(p - t)) < 1e-11 for p in shares)
    if not near:
        assert (got_p, got_d) == (paper, delve)
    assert got_p == got_d + 1 or got_p == got_d == 1


def test_saturation_bad_arguments():
    with pytest.raises(MeasureError, match="rule"):
        sp.saturation_k([1.0], rule="delv")
    with pytest.raises(MeasureError, match="threshold"):
        sp.saturation_k([1.0], threshold=1.5)
    with pytest.raises(MeasureError, match="width"):
        sp.saturation([1.0], width=0)
    with pytest.raises(DataError, match="eigvals"):
        sp.saturation_k([])
    with pytest.warns(DegenerateInputWarning):
        assert np.isnan(sp.saturation([np.nan, 1.0], 2))
    assert sp.saturation([3.0, 1.0, 0.0]) == pytest.approx(2 / 3)  # width defaults to len
