"""Baselines against hand computations, finite differences, closed forms and direct file reads.

Constructed models are tiny Keras models whose answers are known analytically; the registry-wide
contract (finite, deterministic) runs in ``test_contract.py`` on the bundled sample zoo.
"""

from __future__ import annotations

import math

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from baselines import aithal, kit, lassance, natekar, spectral, tf_ops
from gen_measures.context import ModelContext
from gen_measures.errors import DegenerateInputWarning, MeasureError
from gen_measures.registry import LARGER_GAP, SMALLER_GAP, get_measure, list_measures, resolve_measures

from .conftest import SAMPLE_DATA, TOY

BASELINES = {
    "vc_dimension": LARGER_GAP,
    "jacobian_norm": LARGER_GAP,
    "distance_from_init": LARGER_GAP,
    "kit_sharpness": SMALLER_GAP,
    "dbi_mixup": LARGER_GAP,
    "mixup_margin": LARGER_GAP,
    "augment_margin": LARGER_GAP,
    "augmentation_robustness": SMALLER_GAP,
    "vpm": LARGER_GAP,
    "vpm_median": LARGER_GAP,
    "spectral_alpha": LARGER_GAP,
}


def _value(out) -> float:
    return float(getattr(out, "value", out))


def _dense_model(input_dim: int, layers, seed: int = 0) -> keras.Sequential:
    """A Sequential of Dense layers ``[(units, activation), ...]`` with seeded random weights."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((input_dim,))] + [keras.layers.Dense(u, activation=a) for u, a in layers])
    return model


# ----------------------------------------------------------------------------- registry
def test_baselines_registered_with_metadata():
    specs = {s.name: s for s in list_measures("baseline")}
    assert set(BASELINES) <= set(specs)
    for name, direction in BASELINES.items():
        spec = specs[name]
        assert spec.family == "baseline" and not spec.default
        assert spec.direction == direction, name
        assert spec.reference and spec.summary
    assert {s.name for s in resolve_measures("baselines")} >= set(BASELINES)
    assert not set(BASELINES) & {s.name for s in resolve_measures(None)}  # the default run stays the core set
    assert get_measure("spectral_alpha").needs == frozenset()
    assert get_measure("distance_from_init").needs == frozenset({"init_weights"})


# ----------------------------------------------------------------------------- vc_dimension
def test_vc_dimension_against_hand_computation():
    # d = 3 kernels: 3*3*1*4 + 3*3*4*8 + 32*10 = 36 + 288 + 320 = 644 parameters
    # 3 + 2 * 3 * ln(22 * 3 * 1024) * 644; ln(67584) = 16 ln 2 + ln(1.03125) = 11.090354889 + 0.030771659
    expected = 3 + 6 * (11.090354888959125 + 0.030771658666753687) * 644
    got = kit.vc_dimension_bound([(3, 3, 1, 4), (3, 3, 4, 8), (32, 10)])
    assert got == pytest.approx(expected, rel=1e-12)
    assert math.isnan(kit.vc_dimension_bound([]))
    model = _dense_model(5, [(7, "relu"), (3, None)])
    ctx = ModelContext.from_keras(model, np.zeros((0, 5)), np.zeros(0))
    assert _value(get_measure("vc_dimension").func(ctx)) == pytest.approx(2 + 4 * math.log(22 * 2 * 1024) * (35 + 21))


# ----------------------------------------------------------------------------- jacobian_norm
def _finite_difference_layer_norms(model, x: np.ndarray, eps: float = 1e-2) -> np.ndarray:
    """Per layer, mean squared per-example Jacobian of the outputs w.r.t. the layer's input, by central differences."""
    layers = model.layers
    inputs, h = [], x.astype(np.float32)
    for layer in layers:
        inputs.append(h)
        h = np.asarray(layer(h, training=False))
    out = []
    for li, h0 in enumerate(inputs):
        def suffix(v, li=li):
            for layer in layers[li:]:
                v = layer(v, training=False)
            return np.asarray(v, dtype=np.float64)

        flat = h0.reshape(h0.shape[0], -1)
        sq = 0.0
        for j in range(flat.shape[1]):
            up, down = flat.copy(), flat.copy()
            up[:, j] += eps
            down[:, j] -= eps
            d = (suffix(up.reshape(h0.shape)) - suffix(down.reshape(h0.shape))) / (2 * eps)  # (B, K), per example
            sq += float(np.sum(d**2))
        out.append(sq / (flat.shape[0] * flat.shape[1] * d.shape[1]))
    return np.asarray(out)


def test_jacobian_layer_norms_match_finite_differences():
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5, activation="tanh"), keras.layers.Dropout(0.5),
                              keras.layers.Dense(3, activation="tanh"), keras.layers.Dense(2)])
    x = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    got = tf_ops.jacobian_norm_function(model)(x)
    expected = _finite_difference_layer_norms(model, x)
    assert got.shape == (4,)
    np.testing.assert_allclose(got, expected, rtol=2e-3)
    # with batch_jacobian itself
    h = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(h)
        out = model(h, training=False)
    bj = tape.batch_jacobian(out, h).numpy()
    assert got[0] == pytest.approx(float(np.mean(bj**2)), rel=1e-5)


def test_jacobian_norm_measure_aggregates_like_the_kit():
    model = _dense_model(3, [(4, "relu"), (2, None)], seed=2)
    x = np.random.default_rng(1).normal(size=(40, 3)).astype(np.float32)
    ctx = ModelContext.from_keras(model, x, np.zeros(40, np.int64))
    fn = tf_ops.jacobian_norm_function(model)
    per_batch = [fn(x[s:s + 16]).mean() for s in (0, 16, 32)]  # 16, 16 and a short batch of 8
    out = get_measure("jacobian_norm").func(ctx)
    assert out.value == pytest.approx(float(np.mean(per_batch)), rel=1e-6)
    assert out.details["batches"] == 3 and out.details["examples"] == 40
    big = np.random.default_rng(2).normal(size=(600, 3)).astype(np.float32)
    assert get_measure("jacobian_norm").func(ModelContext.from_keras(model, big, np.zeros(600))).details["examples"] == 528


# ----------------------------------------------------------------------------- distance_from_init
def _h5_arrays(path) -> list[np.ndarray]:
    """Every weight array of a Keras-2 HDF5 file, in the file's own layer/weight order."""
    out = []
    with h5py.File(path, "r") as f:
        for layer in f.attrs["layer_names"]:
            group = f[layer.decode() if isinstance(layer, bytes) else layer]
            for name in group.attrs["weight_names"]:
                out.append(np.asarray(group[name.decode() if isinstance(name, bytes) else name], dtype=np.float64))
    return out


@pytest.mark.parametrize("task_name", ["digits_vgg", "shapes_nin"])
def test_distance_from_init_against_direct_hdf5(task_name):
    from gen_measures.io.pgdl import open_task

    task = open_task(SAMPLE_DATA / task_name)
    mid = task.model_ids[1]
    trained = _h5_arrays(task.weights_path(mid))
    initial = _h5_arrays(task.weights_path(mid, initial=True))
    expected = sum(float(np.sum((a - b) ** 2)) for a, b in zip(trained, initial))
    ctx = ModelContext.from_task(task, mid, None)
    assert len(ctx.weights()) == len(trained)  # every tensor, non-trainable batch-norm statistics included
    assert _value(get_measure("distance_from_init").func(ctx)) == pytest.approx(expected, rel=1e-10)
    with pytest.raises(ValueError):
        kit.squared_distance([np.zeros(2)], [np.zeros(3)])


# ----------------------------------------------------------------------------- kit_sharpness
def _linear_context(flip_labels: float = 0.0, n: int = 128, seed: int = 0) -> ModelContext:
    """A 2-class linear model z = (x0, -x0) on separable data; ``flip_labels`` of the labels wrong."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = np.stack([np.where(y == 0, 1.0, -1.0) * (1 + rng.random(n)), rng.normal(size=n)], axis=1).astype(np.float32)
    wrong = rng.permutation(n)[: int(round(flip_labels * n))]
    y[wrong] = 1 - y[wrong]
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    model.layers[0].set_weights([np.array([[1.0, -1.0], [0.0, 0.0]], np.float32), np.zeros(2, np.float32)])
    return ModelContext.from_keras(model, x, y)


def test_kit_sharpness_is_the_constant_ceiling_on_a_well_trained_model():
    ctx = _linear_context()
    before = [w.copy() for w in ctx.model.get_weights()]
    out = get_measure("kit_sharpness").func(ctx)
    assert out.value == kit.KIT_SHARPNESS_CEILING == pytest.approx(0.4999961853027344, abs=0)
    assert out.details["rounds"] == 17  # stops when the bracket is narrower than 1e-5
    for a, b in zip(before, ctx.model.get_weights()):
        np.testing.assert_array_equal(a, b)  # weights restored
    # accuracy below 0.89: the bracket shrinks to 2^-18
    assert _value(get_measure("kit_sharpness").func(_linear_context(flip_labels=0.3))) == 2.0**-18


@pytest.mark.skipif(not TOY.is_dir(), reason=f"PGDL toy anchor not found at {TOY}")
def test_kit_sharpness_reproduces_the_record_on_the_organizers_toy_models(toy_task):
    from gen_measures.context import task_sample

    sample = task_sample(toy_task, None, 0)
    values = {m: _value(get_measure("kit_sharpness").func(ModelContext.from_task(toy_task, m, sample))) for m in ("0", "3", "9")}
    # models 3 and 9 have training accuracy 0.95 / 0.98, model 0 has 0.875
    assert values["3"] == values["9"] == kit.KIT_SHARPNESS_CEILING
    assert values["0"] == 2.0**-18


def test_kit_sharpness_with_the_intended_loss_is_constant_on_a_well_trained_sample_model(sample_contexts):
    """The kit's swapped loss moves the small sample-zoo convnets; its intended loss does not."""
    ctx = sample_contexts[("digits_vgg", "0")]  # training accuracy 1.0
    m, trace = kit.kit_sharpness_search(ctx, kit_loss=False)
    assert m == kit.KIT_SHARPNESS_CEILING and len(trace) == 17
    assert min(acc for _, acc in trace) > 0.91


def test_shuffled_stream_is_a_sequence_of_permutations():
    stream = kit.ShuffledStream(10, 4, np.random.default_rng(0))
    flat = stream(5).ravel()  # 20 indices = 2 epochs
    assert sorted(flat[:10]) == list(range(10)) and sorted(flat[10:]) == list(range(10))


# ----------------------------------------------------------------------------- margins (Natekar & Sharma)
W3 = np.array([[2.0, -1.0, 0.0], [0.5, 1.0, -1.0], [0.0, 0.3, 1.5]], np.float32)  # (in, out)
B3 = np.array([0.1, -0.2, 0.0], np.float32)


def _linear_margin_model() -> keras.Sequential:
    """h = x (an identity first layer), z = h W + b: margins are distances to linear boundaries."""
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3), keras.layers.Dense(3)])
    model.layers[0].set_weights([np.eye(3, dtype=np.float32), np.zeros(3, np.float32)])
    model.layers[1].set_weights([W3, B3])
    return model


def _analytic_margins(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    z = x.astype(np.float64) @ W3 + B3
    top = np.argsort(-z, axis=1)[:, :2]
    correct = top[:, 0] == y
    i = np.where(correct, top[:, 0], y)
    j = np.where(correct, top[:, 1], top[:, 0])
    rows = np.arange(len(y))
    return (z[rows, i] - z[rows, j]) / np.linalg.norm(W3[:, i] - W3[:, j], axis=0)


def test_margin_function_on_a_linear_model_is_the_distance_to_the_boundary():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3)).astype(np.float32)
    y = rng.integers(0, 3, 50)
    num, norm, h = tf_ops.margin_function(_linear_margin_model(), 0)(x, y)
    np.testing.assert_allclose(h, x, rtol=1e-6)
    np.testing.assert_allclose(num / norm, _analytic_margins(x, y), rtol=1e-4, atol=1e-5)
    z = x @ W3 + B3
    assert np.all((num < 0) == (np.argmax(z, axis=1) != y))  # misclassified: negative margin


def test_normalized_margin_formula():
    from scipy.stats import trim_mean

    rng = np.random.default_rng(3)
    num, norm = rng.normal(size=40), rng.random(40) + 0.5
    h = rng.normal(size=(40, 30)) * rng.random(30) * 3
    var = np.var(h, axis=0)
    expected = -np.mean((num / (norm + 1e-7)) / (np.sqrt(trim_mean(var, 0.05)) + 1e-7))
    assert natekar.normalized_margin(num, norm, var) == pytest.approx(expected, rel=1e-12)
    acc = natekar.FeatureVariance()
    for s in range(0, 40, 7):
        acc.update(h[s:s + 7] + 1e4)
    np.testing.assert_allclose(acc.variance(), var, rtol=1e-8)


def test_mixup_margin_on_a_linear_model_equals_the_mean_margin_of_the_originals():
    """Two well-separated classes, a linear model: the margin is affine in h along each class,
    and within-class mixing preserves class means, so the mean margin over mixed examples is the
    mean margin over the originals, whatever the pairing; the scale is replayed exactly."""
    rng = np.random.default_rng(5)
    n = 120
    y = rng.integers(0, 2, n)
    x = np.zeros((n, 3), np.float32)
    x[:, 0] = np.where(y == 0, 3.0, -3.0) + rng.normal(size=n) * 0.3
    x[:, 1:] = rng.normal(size=(n, 2)) * 0.3
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3), keras.layers.Dense(2)])
    model.layers[0].set_weights([np.eye(3, dtype=np.float32), np.zeros(3, np.float32)])
    model.layers[1].set_weights([np.array([[1.0, -1.0], [0.2, 0.0], [0.0, 0.1]], np.float32), np.zeros(2, np.float32)])
    ctx = ModelContext.from_keras(model, x, y, seed=7)
    out = get_measure("mixup_margin").func(ctx)
    w_diff = np.array([2.0, 0.2, -0.1])
    sign = np.where(y == 0, 1.0, -1.0)
    margins = sign * (x.astype(np.float64) @ w_diff) / np.linalg.norm(w_diff)
    # replay the mixing to get the normalisation scale of the mixed features
    r = ctx.rng("mixup_margin")
    order = r.permutation(n)[:500]
    mixed = [natekar.labelwise_mix(x[order[s:s + 50]], y[order[s:s + 50]], r)[0] for s in range(0, n, 50)]
    from scipy.stats import trim_mean

    scale = math.sqrt(trim_mean(np.var(np.concatenate(mixed).astype(np.float64), axis=0), 0.05)) + 1e-7
    assert -out.value * scale == pytest.approx(margins.mean(), rel=1e-4)
    assert out.details["misclassified_fraction"] == 0.0


def test_labelwise_mix_stays_within_class():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(9, 2))
    y = np.array([2, 0, 1, 0, 2, 0, 1, 1, 0])
    y[4] = 3  # a class with a single example
    mixed, labels = natekar.labelwise_mix(x, y, rng)
    assert list(labels) == sorted(y)
    for c in np.unique(y):
        np.testing.assert_allclose(mixed[labels == c].mean(axis=0), x[y == c].mean(axis=0), atol=1e-12)
    np.testing.assert_allclose(mixed[labels == 3][0], x[4])


def test_natekar_augment_matches_tf_image_per_image():
    rng = np.random.default_rng(1)
    x = rng.random((6, 9, 11, 3)).astype(np.float32)
    p = natekar.natekar_augment_params(6, rng)
    p["crop_scale"][:3] = [1.0, 0.85, 0.93]
    got = tf_ops.natekar_augment(x, **p)
    for i in range(6):
        img = tf.constant(x[i])
        if p["flip"][i]:
            img = tf.image.flip_left_right(img)
        img = tf.image.adjust_hue(img, float(p["hue"][i]))
        img = tf.image.adjust_saturation(img, float(p["saturation"][i]))
        img = tf.image.adjust_brightness(img, float(p["brightness"][i]))
        img = tf.image.adjust_contrast(img, float(p["contrast"][i]))
        s = float(p["crop_scale"][i])
        box = [[0.5 - s / 2, 0.5 - s / 2, 0.5 + s / 2, 0.5 + s / 2]]
        img = tf.image.crop_and_resize(img[None], box, [0], (9, 11))[0]
        np.testing.assert_allclose(got[i], img.numpy(), atol=2e-5)
    identity = dict(flip=np.zeros(6, bool), hue=np.zeros(6), saturation=np.ones(6), brightness=np.zeros(6),
                    contrast=np.ones(6), crop_scale=np.ones(6))
    np.testing.assert_allclose(tf_ops.natekar_augment(x, **identity), x, atol=2e-6)
    grey = x[..., :1]
    np.testing.assert_allclose(tf_ops.natekar_augment(grey, **identity), grey, atol=2e-6)  # grey: no hue/saturation
    with pytest.raises(MeasureError):
        tf_ops.natekar_augment(x.reshape(6, -1), **identity)


# ----------------------------------------------------------------------------- DBI x label-wise mixup
def test_labelwise_mixup_accuracy_known_cases():
    # 1-D inputs; class c lives in [c, c + 1): averages of same-class points stay in the bin
    x = np.array([0.1, 0.9, 1.2, 1.8, 2.5, 0.5, 1.5, 2.9, 2.1, 0.3]).reshape(-1, 1)
    y = np.floor(x[:, 0]).astype(int)

    def by_bin(v):
        return np.eye(3)[np.clip(np.floor(v[:, 0]).astype(int), 0, 2)]

    acc, per_class = natekar.labelwise_mixup_accuracy(by_bin, x, y, 3, per_class=2, n_batches=10)
    assert acc == 1.0 and set(per_class) == {0, 1, 2}

    def always_zero(v):
        return np.tile([1.0, 0.0, 0.0], (len(v), 1))

    acc, per_class = natekar.labelwise_mixup_accuracy(always_zero, x, y, 3, per_class=2, n_batches=10)
    assert per_class == {0: 1.0, 1: 0.0, 2: 0.0} and acc == pytest.approx(1 / 3)
    # batches of 6 in order: [0.1 .9 1.2 1.8 2.5 .5] [1.5 2.9 2.1 .3]; the second holds one class-0
    # and one class-1 example (no pair: skipped, where the original returned NaN)
    seen = []
    natekar.labelwise_mixup_accuracy(lambda v: (seen.append(len(v)), by_bin(v))[1], x, y, 3, per_class=2, n_batches=10)
    assert seen == [3 + 1 + 1]  # class 0: 3 pairs, class 1: 1 pair (batch 1); class 2: 1 pair (batch 2)
    with pytest.warns(DegenerateInputWarning):
        acc, _ = natekar.labelwise_mixup_accuracy(by_bin, x[:3], np.array([0, 1, 2]), 3)
    assert math.isnan(acc)
    np.testing.assert_allclose(natekar.pairwise_mixup(np.array([[0.0], [2.0], [4.0]]))[:, 0], [1.0, 2.0, 3.0])


def test_max_pool_and_davies_bouldin():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 8, 8, 3)).astype(np.float32)
    ref = keras.layers.MaxPooling2D((4, 4))(a).numpy().reshape(5, -1)
    np.testing.assert_array_equal(natekar.max_pool_flatten(a), ref)
    assert natekar.max_pool_flatten(a[:, :2, :3]).shape == (5, 3)  # guard: maps smaller than 4 x 4
    from sklearn.metrics import davies_bouldin_score

    f, labels = rng.normal(size=(30, 4)), np.repeat([0, 1, 2], 10)
    assert natekar.davies_bouldin(f, labels) == davies_bouldin_score(f, labels)
    with pytest.warns(DegenerateInputWarning):
        assert math.isnan(natekar.davies_bouldin(f, np.zeros(30)))
    assert natekar.first_strided_layer([{"units": 3}, {"strides": (1, 1)}, {"strides": (2, 2)}]) == 1
    assert natekar.first_strided_layer([{"units": 3}] * 4) is None
    assert natekar.first_weighted_layer([{"pool_size": 2}, {"filters": 4}]) == 1


def test_dbi_mixup_needs_a_strided_layer():
    model = _dense_model(3, [(4, "relu"), (2, None)])
    ctx = ModelContext.from_keras(model, np.zeros((10, 3), np.float32), np.arange(10) % 2)
    with pytest.raises(MeasureError, match="strides"):
        get_measure("dbi_mixup").func(ctx)


# ----------------------------------------------------------------------------- augmentation robustness (Aithal et al.)
def test_augmentation_penalty_against_a_loop():
    rng = np.random.default_rng(0)
    p0 = rng.dirichlet(np.ones(4), size=20)
    augs = [rng.dirichlet(np.ones(4), size=20) for _ in range(7)]
    expected = 0.0
    for i in range(20):
        for a, pen in zip(augs, aithal.PENALTIES):
            expected += abs(p0[i].max() - a[i].max()) if a[i].argmax() == p0[i].argmax() else pen
    assert aithal.augmentation_penalty(p0, augs) == pytest.approx(expected, rel=1e-12)


def test_aithal_augmentations_and_erasing():
    rng = np.random.default_rng(2)
    x = rng.random((4, 8, 8, 1)).astype(np.float32)
    boxes = aithal.erase_boxes(4, 8, 8, rng)
    assert np.all(boxes[:, 2] >= 1) and np.all(boxes[:, 2] < 8) and np.all(boxes[:, 0] + boxes[:, 2] < 8)
    outs = tf_ops.aithal_augmentations(x, saturation=1.3, flip_saturation=0.7, erase_boxes=boxes)
    assert len(outs) == 7
    np.testing.assert_array_equal(outs[0], x[:, :, ::-1])
    np.testing.assert_allclose(outs[3], tf.image.sobel_edges(tf.constant(x))[..., 1].numpy() / 4 + 0.5, rtol=1e-6)
    np.testing.assert_allclose(outs[4], x + 0.5)
    np.testing.assert_allclose(outs[2], x)  # central_crop(0.9) of an 8 x 8 image keeps it whole
    np.testing.assert_allclose(outs[1], x * np.float32(0.2989 + 0.587 + 0.114), rtol=1e-4)  # grey: near-identity
    top, left, h, w = boxes[0]
    assert np.all(outs[6][0, top:top + h, left:left + w] == 0)
    assert aithal.erase_boxes(3, 1, 100, rng).shape == (3, 4)  # thin images: no randint crash


def test_augmentation_robustness_of_a_constant_model_is_zero():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6, 6, 3)), keras.layers.Flatten(), keras.layers.Dense(4, kernel_initializer="zeros",
                                                                                               bias_initializer="ones")])
    x = np.random.default_rng(0).random((70, 6, 6, 3)).astype(np.float32)
    out = get_measure("augmentation_robustness").func(ModelContext.from_keras(model, x, np.zeros(70)))
    assert out.value == 0.0 and out.details["images"] == 70


# ----------------------------------------------------------------------------- VPM (Lassance et al.)
def _on_circle(angles) -> np.ndarray:
    a = np.asarray(angles, dtype=np.float64)
    return np.stack([np.cos(a), np.sin(a)], axis=1)


def test_vpm_graph_with_known_nearest_neighbours():
    f = _on_circle([0.0, 0.1, 0.3, 1.0, 1.05, 2.0]) * np.array([[1], [2], [3], [1], [5], [1]])  # norms do not matter
    adj = lassance.knn_adjacency(f)
    expected = np.zeros((6, 6))
    for i, j in [(0, 1), (1, 0), (2, 1), (3, 4), (4, 3), (5, 4)]:
        expected[i, j] = 1
    np.testing.assert_array_equal(adj, expected)
    y = np.eye(2)[[0, 0, 1, 1, 1, 0]]
    # one neighbour each: trace = number of nodes whose neighbour has another label (nodes 2 and 5)
    assert lassance.label_variation(f, y) == pytest.approx(2 / 2000, abs=1e-15)


def test_vpm_laplacian_with_a_tie():
    f = _on_circle([0.0, 0.5, -0.5])  # node 0 is equidistant from 1 and 2: degree 2
    adj = lassance.knn_adjacency(f)
    np.testing.assert_array_equal(adj, [[0, 1, 1], [1, 0, 0], [1, 0, 0]])
    y = np.eye(2)[[0, 0, 1]]
    # L = I - D^-1/2 A D^-1/2, D = diag(2, 1, 1): trace(Y^T L Y) = 3 - 2 / sqrt(2)
    assert lassance.label_variation(f, y, clip=None) * 2000 == pytest.approx(3 - math.sqrt(2), rel=1e-12)


def test_vpm_quadratic_form_against_edge_loops():
    rng = np.random.default_rng(4)
    f, y = rng.normal(size=(40, 5)), rng.dirichlet(np.ones(3), size=40)
    adj = lassance.knn_adjacency(f)
    deg = adj.sum(axis=1)
    total = float(np.sum(y * y))
    for i in range(40):
        for j in range(40):
            if adj[i, j]:
                total -= float(y[i] @ y[j]) / math.sqrt(deg[i] * deg[j])
    assert lassance.label_variation(f, y, clip=None) == pytest.approx(total / 2000, rel=1e-10)
    assert lassance.label_variation(f * 3.7, y) == lassance.label_variation(f, y)  # cosine geometry
    zero = lassance.label_variation(np.zeros((10, 4)), np.eye(2)[np.arange(10) % 2])  # dead features: defined
    assert math.isfinite(zero)


def test_vpm_sampling_and_mixup():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], [5, 20, 20])
    idx = lassance.class_balanced_indices(y, 10, 3, rng)
    assert np.bincount(y[idx]).tolist() == [5, 10, 10] and len(set(idx)) == 25
    x = rng.normal(size=(25, 4))
    onehot = np.eye(3)[y[idx]]
    mixed, soft = lassance.input_mixup(x, onehot, np.random.default_rng(9))
    replay = np.random.default_rng(9)
    perm, lam = replay.permutation(25), replay.beta(2.0, 2.0, 25)
    np.testing.assert_allclose(mixed, lam[:, None] * x + (1 - lam[:, None]) * x[perm], rtol=1e-12)
    np.testing.assert_allclose(soft, lam[:, None] * onehot + (1 - lam[:, None]) * onehot[perm], rtol=1e-12)
    np.testing.assert_allclose(soft.sum(axis=1), 1.0)


def test_vpm_median_is_the_median_of_seeded_draws():
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(6, activation="relu"), keras.layers.Dense(3)])
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(90, 4)).astype(np.float32), np.arange(90) % 3
    ctx = ModelContext.from_keras(model, x, y)
    draws = lassance.vpm_draws(ModelContext.from_keras(model, x, y), lassance.MEDIAN_DRAWS)
    assert get_measure("vpm_median").func(ctx).value == float(np.median(draws))
    assert get_measure("vpm").func(ModelContext.from_keras(model, x, y)).value == draws[0]


# ----------------------------------------------------------------------------- spectral alpha
def _planted(alpha: float, n_in: int, n_out: int, rng) -> np.ndarray:
    """A matrix whose W^T W eigenvalues are a Pareto(alpha) sample (pdf ~ x^-alpha, x >= 1)."""
    lam = (1 - rng.random(n_out)) ** (-1 / (alpha - 1))
    u = np.linalg.qr(rng.normal(size=(n_in, n_out)))[0]
    v = np.linalg.qr(rng.normal(size=(n_out, n_out)))[0]
    return (u * np.sqrt(lam)) @ v.T, np.sort(lam)[::-1]


def test_spectral_alpha_recovers_a_planted_power_law():
    rng = np.random.default_rng(0)
    for alpha in (2.5, 3.0, 4.0):
        w, lam = _planted(alpha, 900, 800, rng)
        np.testing.assert_allclose(spectral.layer_eigenvalues(w), lam, rtol=1e-8)
        est, m = spectral.robust_power_law_alpha(spectral.layer_eigenvalues(w))
        assert est == pytest.approx(alpha, abs=0.25) and m >= 400
    # conv kernel: 3 x 3 offsets of 64 x 64 slices, eigenvalues pooled
    slices = [_planted(3.0, 64, 64, rng)[0] for _ in range(9)]
    kernel = np.stack(slices).reshape(3, 3, 64, 64)
    pooled = np.sort(np.concatenate([np.linalg.eigvalsh(s.T @ s) for s in slices]))[::-1]
    np.testing.assert_allclose(spectral.layer_eigenvalues(kernel), pooled, rtol=1e-6, atol=1e-9)
    assert spectral.robust_power_law_alpha(pooled)[0] == pytest.approx(3.0, abs=0.3)


def test_spectral_alpha_debiased_mle_and_small_layers():
    x = np.array([1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0])
    from baselines.power_law import power_law_fit

    fit = power_law_fit(x, min_tail=4)
    tail = np.sort(x)[-fit.n_tail:]
    expected = 1 + (fit.n_tail - 1) / np.sum(np.log(tail / tail[0]))
    assert spectral.robust_power_law_alpha(x)[0] == pytest.approx(expected, rel=1e-12)
    assert math.isnan(spectral.robust_power_law_alpha(np.array([4.0, 3.0, 2.0, 1.0]))[0])  # 4 eigenvalues: skipped
    with pytest.warns(DegenerateInputWarning):
        out = spectral.mean_layer_alpha([np.eye(3), np.ones((2, 2))])
    assert math.isnan(out.value) and len(out.details["skipped"]) == 2
    rng = np.random.default_rng(1)
    good = _planted(3.0, 300, 200, rng)[0]
    out = spectral.mean_layer_alpha([good, np.eye(2)], ["a", "b"])
    assert out.details["skipped"] == ["b"] and out.value == out.details["per_layer"]["a"]
