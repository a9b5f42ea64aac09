"""Core measures on real models, each against an independent computation of its definition."""

from __future__ import annotations

import math
import warnings

import keras
import numpy as np
import pytest

from gen_measures.context import ModelContext
from gen_measures.errors import DataError, DegenerateInputWarning
from gen_measures.measures.compression import layer_curves
from gen_measures.measures.pseudo_validation import augment
from gen_measures.measures.pvector import model_model_angle_deg
from gen_measures.measures.saturation import layer_saturations
from gen_measures.registry import get_measure


def _value(name, ctx):
    out = get_measure(name).func(ctx)
    return float(getattr(out, "value", out))


def _direct_features(ctx):
    """Input of the classifier (last kernel layer), position-averaged when spatial, via a fresh sub-model."""
    layers = [layer for layer in ctx.model.layers if any("kernel" in v.path for v in layer.weights)]
    sub = keras.Model(ctx.model.inputs[0], layers[-1].input)
    f = np.asarray(sub.predict(ctx.x, verbose=0, batch_size=64), dtype=np.float64)
    return f.mean(axis=(1, 2)) if f.ndim == 4 else f


@pytest.fixture(scope="module")
def contexts(sample_contexts):
    return list(sample_contexts.values())


def test_penultimate_feature_rule(contexts):
    for ctx in contexts:
        np.testing.assert_allclose(ctx.penultimate_features(), _direct_features(ctx), rtol=1e-5, atol=1e-5)
    nin = [c for c in contexts if c.task_name == "shapes_nin"][0]
    assert type(nin.model.layers[nin.classifier_index()]).__name__ == "Conv2D"  # NiN head: no Dense layer


def test_pvector_angle_against_numpy_svd(contexts):
    for ctx in contexts:
        f = _direct_features(ctx)
        xs = ctx.x.reshape(ctx.n_samples, -1).astype(np.float64)
        pf = np.linalg.svd(f, full_matrices=False)[0][:, 0]
        px = np.linalg.svd(xs, full_matrices=False)[0][:, 0]
        expected = math.degrees(math.acos(min(1.0, abs(px @ pf))))
        assert _value("pvector_angle", ctx) == pytest.approx(expected, abs=1e-4)


def test_model_model_angle_is_zero_for_itself_and_symmetric(contexts):
    a, b = contexts[0].penultimate_features(), contexts[1].penultimate_features()
    assert model_model_angle_deg(a, a) == pytest.approx(0.0, abs=1e-6)
    assert model_model_angle_deg(a, b) == pytest.approx(model_model_angle_deg(b, a), abs=1e-9)
    assert 0.0 <= model_model_angle_deg(a, b, k=3) <= 90.0


def _brute_saturation(outputs, threshold=0.99):
    """Brute force: full covariance by np.cov, eigenvalues by numpy, k by a plain loop."""
    x = outputs.reshape(-1, outputs.shape[-1]).astype(np.float64)
    eig = np.sort(np.clip(np.linalg.eigvalsh(np.cov(x, rowvar=False, bias=True)), 0, None))[::-1]
    if eig.sum() == 0:
        return 1 / len(eig)
    total, running = eig.sum(), 0.0
    for i, e in enumerate(eig, start=1):
        running += e
        if running / total >= threshold - 1e-12:
            return i / len(eig)
    return 1.0


def test_saturation_against_brute_force(contexts):
    for ctx in contexts:
        layers = [layer for layer in ctx.model.layers if any("kernel" in v.path for v in layer.weights)]
        sub = keras.Model(ctx.model.inputs[0], [layer.output for layer in layers])
        outs = sub.predict(ctx.x, verbose=0, batch_size=64)
        expected = [_brute_saturation(np.asarray(o)) for o in outs]
        got = layer_saturations(ctx)
        assert list(got.values()) == pytest.approx(expected, abs=1e-12)
        assert _value("saturation", ctx) == pytest.approx(np.mean(expected), abs=1e-12)
        assert list(layer_saturations(ctx, rule="delve").values()) <= list(got.values())


def _direct_compression_discrimination(f, y):
    classes = np.unique(y)
    mu_g = f.mean(axis=0)
    mus = np.stack([f[y == k].mean(axis=0) for k in classes])
    sw = sum(np.outer(r - mus[np.searchsorted(classes, k)], r - mus[np.searchsorted(classes, k)]) for r, k in zip(f, y)) / len(f)
    sb = sum(np.outer(m - mu_g, m - mu_g) for m in mus) / len(mus)
    norms = mus / np.linalg.norm(mus, axis=1, keepdims=True)
    cos = norms @ norms.T
    np.fill_diagonal(cos, -np.inf)
    return np.trace(sw) / np.trace(sb), 1 - cos.max()


def test_compression_and_discrimination_against_direct_formulas(contexts):
    for ctx in contexts:
        c, d = _direct_compression_discrimination(_direct_features(ctx), ctx.y)
        assert _value("compression", ctx) == pytest.approx(c, rel=1e-5)
        assert _value("discrimination", ctx) == pytest.approx(d, abs=1e-5)
        curves = layer_curves(ctx)
        assert list(curves)[-1] == "penultimate" and len(curves) == len(ctx.weighted_layer_indices())
        assert curves["penultimate"]["compression"] == pytest.approx(c, rel=1e-5)


def test_pseudo_validation(contexts):
    for ctx in contexts:
        gap, err = _value("pseudo_validation_gap", ctx), _value("pseudo_validation_error", ctx)
        assert -1 <= gap <= 1 and 0 <= err <= 1
        assert gap == pytest.approx(ctx.accuracy() - (1 - err), abs=1e-12)


def test_augmentations_by_shape_and_seed():
    rng = np.random.default_rng
    img = rng(0).random((20, 8, 8, 3), dtype=np.float32)
    a, b = augment(img, rng(1)), augment(img, rng(1))
    np.testing.assert_array_equal(a, b)
    assert a.shape == img.shape and a.min() >= img.min() and a.max() <= img.max()
    assert not np.allclose(a, img)
    vec = rng(0).normal(size=(50, 7)).astype(np.float32)
    v = augment(vec, rng(2))
    assert v.shape == vec.shape and (v == 0).mean() == pytest.approx(0.1, abs=0.06)


def test_sharpness_drop_at_returned_scale_re_evaluated_independently(sample_contexts):
    from gen_measures.measures.sharpness import sharpness_search

    for (task, mid), ctx in sample_contexts.items():
        result = sharpness_search(ctx)
        fresh = keras.models.clone_model(ctx.model)
        fresh.set_weights(ctx.model.get_weights())
        base_acc = np.mean(np.argmax(fresh.predict(ctx.x, verbose=0), 1) == ctx.y)
        trainable = {id(v) for v in fresh.trainable_variables}
        it = iter(result.offsets)
        fresh.set_weights([w + next(it) if id(v) in trainable else w for v, w in zip(fresh.weights, fresh.get_weights())])
        drop = base_acc - np.mean(np.argmax(fresh.predict(ctx.x, verbose=0), 1) == ctx.y)
        assert drop == pytest.approx(0.1, abs=0.02), (task, mid, result.scale, drop)
        assert drop == pytest.approx(result.drop, abs=1e-9)


def test_larger_noise_never_raises_mean_accuracy(sample_contexts):
    from gen_measures.measures.sharpness import gaussian_sharpness  # noqa: F401  (same noise model)

    ctx = next(iter(sample_contexts.values()))
    rng = np.random.default_rng(0)
    with ctx.perturbation() as p:
        zs = [[rng.standard_normal(w.shape) for w in p.base] for _ in range(10)]
        accs = []
        for sigma in (0.0, 0.01, 0.03, 0.1, 0.3):
            means = []
            for z in zs:
                p.set_offsets([sigma * zi for zi in z])
                means.append(p.accuracy())
            accs.append(np.mean(means))
    assert all(b <= a + 0.005 for a, b in zip(accs, accs[1:])), accs
    assert accs[-1] < accs[0]
    np.testing.assert_array_equal(ctx.model.get_weights()[0], ctx.weights()[0])  # restored


def test_sharpness_values_differ_across_models(sample_contexts):
    values = [_value("sharpness", c) for c in sample_contexts.values()]
    assert len(set(np.round(values, 6))) == len(values)
    values = [_value("pacbayes_sharpness", c) for c in sample_contexts.values()]
    assert len(set(np.round(values, 6))) >= len(values) - 1


# ----------------------------------------------------------------------------- bad input
def _tiny_model(n_in=4, n_out=3):
    return keras.Sequential([keras.Input((n_in,)), keras.layers.Dense(5, activation="relu"), keras.layers.Dense(n_out)])


def test_nan_model_gives_nan_with_named_warning():
    model = _tiny_model()
    model.set_weights([np.full(w.shape, np.nan, np.float32) for w in model.get_weights()])
    rng = np.random.default_rng(0)
    ctx = ModelContext.from_keras(model, rng.normal(size=(30, 4)), np.arange(30) % 3)
    for name in ("pseudo_validation_gap", "pvector_angle", "compression", "saturation"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert math.isnan(_value(name, ctx)), name
        assert any(issubclass(w.category, DegenerateInputWarning) for w in caught), name


def test_one_class_data_gives_nan_compression():
    rng = np.random.default_rng(0)
    ctx = ModelContext.from_keras(_tiny_model(), rng.normal(size=(30, 4)), np.zeros(30))
    with pytest.warns(DegenerateInputWarning):
        assert math.isnan(_value("compression", ctx))


def test_data_measure_without_data_is_a_clear_error():
    ctx = ModelContext.from_keras(_tiny_model(), np.zeros((0, 4)), np.zeros(0))
    with pytest.raises(DataError, match="needs training data"):
        _value("pvector_angle", ctx)


def test_vector_inputs_toy_task(toy_task):
    """Non-image inputs (the organizers' 3-feature toy task) run through every data measure."""
    from gen_measures.context import task_sample

    sample = task_sample(toy_task, None)
    ctx = ModelContext.from_task(toy_task, "17", sample)
    for name in ("pvector_angle", "pseudo_validation_gap", "saturation", "compression", "discrimination", "sharpness"):
        assert math.isfinite(_value(name, ctx)), name
