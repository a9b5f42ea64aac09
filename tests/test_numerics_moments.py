"""Tests of gen_measures.numerics.moments: exact ``merge`` of the shifted streaming accumulators.

Reference: one accumulator fed every batch. Two (or three) accumulators over disjoint parts of
the same data, merged, must give the same results to 1e-12 relative, whichever class or
part is missing from a part; merging an accumulator that has seen nothing is the identity.
"""

from __future__ import annotations

import numpy as np
import pytest

from baselines.natekar import FeatureVariance
from gen_measures.errors import DataError
from gen_measures.numerics.scatter import ClassScatterAccumulator
from gen_measures.numerics.spectra import StreamingCovariance

DIM, CLASSES = 5, 4

#: name -> (make(dim), feed(acc, h, y), results(acc) as a list of arrays)
ACCUMULATORS = {
    "covariance": (
        StreamingCovariance,
        lambda acc, h, y: acc.update(h),
        lambda acc: [acc.covariance(), acc.mean, acc.n],
    ),
    "scatter": (
        lambda dim: ClassScatterAccumulator(dim, CLASSES),
        lambda acc, h, y: acc.update(h, y),
        lambda acc: [acc.trace_within(), acc.trace_between(), acc.compression(), acc.discrimination(),
                     acc.discrimination(center=True), acc.class_means(), acc.global_mean(), acc.class_counts],
    ),
    "feature_variance": (
        lambda dim: FeatureVariance(),
        lambda acc, h, y: acc.update(h),
        lambda acc: [acc.variance(), acc.n],
    ),
}


def data(seed: int, offset: float, n: int = 240):
    """Correlated features (no near-zero covariance entry) and labels; class 3 only after row 120."""
    rng = np.random.default_rng(seed)
    h = rng.standard_normal((n, DIM)) @ (np.eye(DIM) + 0.5 * rng.random((DIM, DIM))) + offset
    y = np.concatenate([rng.integers(0, CLASSES - 1, 120), rng.integers(0, CLASSES, n - 120)])
    h += 0.5 * np.eye(DIM)[y % DIM]  # separate the class means
    return h, y


def fed(name, h, y, n_batches=3):
    make, feed, _ = ACCUMULATORS[name]
    acc = make(DIM)
    for hb, yb in zip(np.array_split(h, n_batches), np.array_split(y, n_batches)):
        if len(yb):
            feed(acc, hb, yb)
    return acc


def assert_same(got, expected, rtol):
    for g, e in zip(got, expected):
        np.testing.assert_allclose(np.asarray(g, dtype=np.float64), np.asarray(e, dtype=np.float64), rtol=rtol, atol=0)


@pytest.mark.parametrize("name", sorted(ACCUMULATORS))
@pytest.mark.parametrize("cut", [1, 60, 120, 200])
@pytest.mark.parametrize("offset", [0.0, 3.0, 1e3])
def test_merging_two_halves_equals_one_pass(name, cut, offset):
    h, y = data(seed=cut, offset=offset)
    results = ACCUMULATORS[name][2]
    one = fed(name, h, y)
    a, b = fed(name, h[:cut], y[:cut]), fed(name, h[cut:], y[cut:])
    before_b = results(b)
    assert a.merge(b) is a
    assert a.n == one.n == len(y)
    assert_same(results(a), results(one), rtol=1e-12)
    assert_same(results(b), before_b, rtol=0)  # the merged-in accumulator is unchanged


@pytest.mark.parametrize("name", sorted(ACCUMULATORS))
def test_merging_three_parts_in_any_order(name):
    h, y = data(seed=7, offset=2.0)
    results = ACCUMULATORS[name][2]
    one = fed(name, h, y)
    parts = [(h[s], y[s]) for s in (slice(0, 50), slice(50, 170), slice(170, None))]
    forward = fed(name, *parts[0]).merge(fed(name, *parts[1])).merge(fed(name, *parts[2]))
    backward = fed(name, *parts[2]).merge(fed(name, *parts[1]).merge(fed(name, *parts[0])))
    assert_same(results(forward), results(one), rtol=1e-12)
    assert_same(results(backward), results(one), rtol=1e-12)


@pytest.mark.parametrize("name", sorted(ACCUMULATORS))
def test_merging_an_empty_accumulator_is_the_identity(name):
    make, _, results = ACCUMULATORS[name]
    h, y = data(seed=3, offset=1.0)
    expected = results(fed(name, h, y))
    assert_same(results(fed(name, h, y).merge(make(DIM))), expected, rtol=0)
    assert_same(results(make(DIM).merge(fed(name, h, y))), expected, rtol=0)


@pytest.mark.parametrize("name", sorted(ACCUMULATORS))
def test_merge_rejects_a_different_width_or_kind(name):
    make, feed, _ = ACCUMULATORS[name]
    h, y = data(seed=4, offset=0.0)
    a = fed(name, h, y)
    other = make(DIM - 1)
    feed(other, h[:, : DIM - 1], y)
    with pytest.raises(DataError, match=rf"dim={DIM} vs dim={DIM - 1}"):
        a.merge(other)
    stranger = StreamingCovariance(DIM) if name != "covariance" else ClassScatterAccumulator(DIM, CLASSES)
    with pytest.raises(DataError, match="cannot merge a"):
        a.merge(stranger)


def test_scatter_merge_rejects_a_different_number_of_classes():
    with pytest.raises(DataError, match=f"n_classes={CLASSES} vs n_classes={CLASSES + 1}"):
        ClassScatterAccumulator(DIM, CLASSES).merge(ClassScatterAccumulator(DIM, CLASSES + 1))
