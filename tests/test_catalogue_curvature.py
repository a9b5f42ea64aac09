"""Tests of baselines.catalogue.curvature (top Hessian eigenvalue, Hessian trace) and its HVPs.

References used: the exact Hessian of a tiny network (Dense 3 -> 4 tanh -> 2, 26 parameters,
20 examples), written out independently of Keras as a float64 function of the flat parameter
vector and differentiated twice (the Hessian ``tf.hessians`` gives), then numpy ``eigvalsh``
and ``trace``; explicit numpy matrices for the solvers; the exhaustive mean over all Rademacher
vectors (the estimator's expectation, exactly).
"""

from __future__ import annotations

import itertools
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from baselines import tf_ops
from baselines.catalogue import curvature
from gen_measures.context import ModelContext
from gen_measures.errors import DataError, DegenerateInputWarning, MeasureError
from gen_measures.registry import LARGER_GAP, get_measure

N_EXAMPLES, BATCH = 20, 7  # batches of 7, 7, 6: the size-weighted combination is exercised


def _tiny_model(activation=None):
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="tanh"),
                              keras.layers.Dense(2, activation=activation)])
    rng = np.random.default_rng(4)
    model.set_weights([rng.normal(scale=0.9, size=w.shape).astype(np.float32) for w in model.get_weights()])
    return model


@pytest.fixture(scope="module")
def tiny():
    """``(model, x, y, H)``: the tiny network, its sample and the exact Hessian of its mean loss (float64)."""
    model = _tiny_model()
    rng = np.random.default_rng(5)
    x = rng.normal(size=(N_EXAMPLES, 3)).astype(np.float32)
    y = rng.integers(0, 2, size=N_EXAMPLES)
    shapes = [tuple(v.shape) for v in model.trainable_variables]  # kernel 1, bias 1, kernel 2, bias 2
    sizes = [int(np.prod(s)) for s in shapes]
    theta = tf.Variable(np.concatenate([np.asarray(v.numpy(), np.float64).ravel() for v in model.trainable_variables]))
    x64, y_onehot = tf.constant(x, tf.float64), tf.constant(np.eye(2)[y])

    def loss_of(t):
        w1, b1, w2, b2 = [tf.reshape(p, s) for p, s in zip(tf.split(t, sizes), shapes)]
        logits = tf.tanh(x64 @ w1 + b1) @ w2 + b2
        return -tf.reduce_mean(tf.reduce_sum(y_onehot * tf.nn.log_softmax(logits), axis=1)), logits

    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            loss, logits = loss_of(theta)
        grad = inner.gradient(loss, theta)
    hessian = outer.jacobian(grad, theta).numpy()
    # the hand-written network is the Keras one
    np.testing.assert_allclose(logits.numpy(), np.asarray(model(x)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(hessian, hessian.T, atol=1e-12)
    return model, x, y, hessian


def _context(model, x, y, seed=0):
    return ModelContext.from_keras(model, x, y, batch_size=BATCH, seed=seed)


def test_registered_with_metadata():
    for name in ("hessian_top_eigenvalue", "hessian_trace"):
        spec = get_measure(name)
        assert spec.direction == LARGER_GAP and spec.family == "catalogue" and spec.default is False
        assert spec.needs == frozenset({"data", "gradients"}) and "PyHessian" in spec.reference


def test_hessian_vector_products_match_the_exact_hessian(tiny):
    model, x, y, hessian = tiny
    hvp, dim = tf_ops.loss_hessian_vector_product_function(model, x, y, batch_size=BATCH)
    assert dim == hessian.shape[0] == 26
    rng = np.random.default_rng(6)
    for _ in range(3):
        v = rng.normal(size=dim)
        np.testing.assert_allclose(hvp(v), hessian @ v, rtol=2e-4, atol=2e-5 * np.abs(hessian @ v).max())
    # a softmax head is read as probabilities: the same loss, so the same Hessian
    soft = _tiny_model("softmax")
    soft_hvp, _ = tf_ops.loss_hessian_vector_product_function(soft, x, y, from_logits=False, batch_size=BATCH)
    v = rng.normal(size=dim)
    np.testing.assert_allclose(soft_hvp(v), hessian @ v, rtol=1e-3, atol=1e-4 * np.abs(hessian @ v).max())


def test_top_eigenvalue_against_eigvalsh(tiny):
    model, x, y, hessian = tiny
    eig = np.linalg.eigvalsh(hessian)
    top = eig[-1]
    assert top == pytest.approx(eig[np.argmax(np.abs(eig))]) and top > 0  # the dominant eigenvalue is the top one
    out = curvature.hessian_top_eigenvalue(_context(model, x, y))
    # default rule (100 iterations, relative change 1e-3): the stated tolerance, rel 1e-3
    assert out.value == pytest.approx(top, rel=1e-3)
    d = out.details
    assert d["converged"] is True and d["hvps"] == d["iterations"] <= 100 and d["parameters"] == 26
    assert d["history_tail"][-1] == out.value and len(d["history_tail"]) <= curvature.HISTORY_TAIL
    # tight tolerance: float32 products limit the agreement to ~1e-5
    hvp, dim = tf_ops.loss_hessian_vector_product_function(model, x, y, batch_size=BATCH)
    tight = curvature.power_iteration(hvp, dim, np.random.default_rng(0), max_iterations=2000, tol=1e-9)
    assert tight.eigenvalue == pytest.approx(top, rel=2e-5)
    # seeded: the same context seed gives the same value, another seed the same eigenvalue
    assert curvature.hessian_top_eigenvalue(_context(model, x, y)).value == out.value
    assert curvature.hessian_top_eigenvalue(_context(model, x, y, seed=9)).value == pytest.approx(top, rel=1e-3)


def test_trace_against_the_exact_trace(tiny):
    model, x, y, hessian = tiny
    ctx = _context(model, x, y)
    out = curvature.hessian_trace(ctx)
    se = out.details["standard_error"]
    assert out.details["draws"] == out.details["hvps"] == curvature.TRACE_DRAWS and se > 0
    assert abs(out.value - np.trace(hessian)) <= 3 * se
    # the same seeded Rademacher vectors applied to the exact Hessian give the same estimate
    rng = _context(model, x, y).rng("hessian_trace")
    z = [rng.integers(0, 2, size=26) * 2.0 - 1.0 for _ in range(curvature.TRACE_DRAWS)]
    quad = np.array([v @ hessian @ v for v in z])
    assert out.value == pytest.approx(quad.mean(), rel=1e-4, abs=1e-5)
    assert se == pytest.approx(quad.std(ddof=1) / math.sqrt(len(quad)), rel=1e-3)


# ----------------------------------------------------------------------------- the solvers alone
def _symmetric(eigenvalues, seed=0):
    q = np.linalg.qr(np.random.default_rng(seed).normal(size=(len(eigenvalues),) * 2))[0]
    return (q * np.asarray(eigenvalues, float)) @ q.T


def test_power_iteration_on_explicit_matrices():
    a = _symmetric([5.0, 3.0, 1.0, 0.5, -2.0, -0.1])
    out = curvature.power_iteration(lambda v: a @ v, 6, np.random.default_rng(1), tol=1e-10, max_iterations=500)
    assert out.converged and out.eigenvalue == pytest.approx(5.0, rel=1e-9)
    assert out.iterations == len(out.history) < 500
    # PyHessian's choice: the eigenvalue of largest magnitude (negative here)
    b = _symmetric([1.0, 0.5, -4.0])
    assert curvature.power_iteration(lambda v: b @ v, 3, np.random.default_rng(1), tol=1e-10).eigenvalue == \
        pytest.approx(-4.0, rel=1e-8)
    # budget exhausted: not converged, exactly max_iterations products
    slow = _symmetric([1.0, 0.999, 0.5])
    out = curvature.power_iteration(lambda v: slow @ v, 3, np.random.default_rng(2), tol=1e-12, max_iterations=3)
    assert not out.converged and out.iterations == 3
    # a zero operator: eigenvalue 0, converged after one product
    out = curvature.power_iteration(lambda v: np.zeros_like(v), 4, np.random.default_rng(0))
    assert out.eigenvalue == 0.0 and out.converged and out.iterations == 1


def test_hutchinson_is_unbiased_and_exact_on_diagonals():
    a = _symmetric(np.linspace(-1.0, 3.0, 8), seed=3)
    # the mean over all 2^8 Rademacher vectors is the estimator's expectation: exactly tr(A)
    signs = np.array(list(itertools.product((-1.0, 1.0), repeat=8)))
    assert np.mean(np.einsum("ki,ij,kj->k", signs, a, signs)) == pytest.approx(np.trace(a), rel=1e-12)
    out = curvature.hutchinson_trace(lambda v: a @ v, 8, np.random.default_rng(4), draws=4000)
    assert abs(out.trace - np.trace(a)) <= 3 * out.standard_error and out.draws == 4000
    # z^T D z = tr(D) for every Rademacher z: exact, standard error 0
    d = np.diag([1.0, -2.0, 7.5])
    out = curvature.hutchinson_trace(lambda v: d @ v, 3, np.random.default_rng(5), draws=5)
    assert out.trace == pytest.approx(6.5, rel=1e-14) and out.standard_error == 0.0


def test_degenerate_and_bad_input(tiny):
    model, x, y, _ = tiny
    with pytest.warns(DegenerateInputWarning, match="NaN or inf"):
        out = curvature.power_iteration(lambda v: np.full_like(v, np.nan), 3, np.random.default_rng(0))
    assert math.isnan(out.eigenvalue) and not out.converged
    with pytest.warns(DegenerateInputWarning, match="NaN or inf"):
        assert math.isnan(curvature.hutchinson_trace(lambda v: v * np.inf, 3, np.random.default_rng(0)).trace)
    with pytest.raises(MeasureError, match="tol"):
        curvature.power_iteration(lambda v: v, 3, np.random.default_rng(0), tol=0.0)
    with pytest.raises(MeasureError, match="draws"):
        curvature.hutchinson_trace(lambda v: v, 3, np.random.default_rng(0), draws=1)
    with pytest.raises(MeasureError, match="shape"):
        curvature.power_iteration(lambda v: v[:2], 3, np.random.default_rng(0))
    empty = ModelContext.from_keras(model, np.zeros((0, 3), np.float32), np.zeros(0, np.int64))
    for name in ("hessian_top_eigenvalue", "hessian_trace"):
        with pytest.raises(DataError, match=f"{name} needs training data"):
            get_measure(name).func(empty)
