"""The catalogue's norm measures (baselines.catalogue) against independent computations.

Closed forms on a 2-layer Dense net with known weights (numpy forward passes, full SVDs), the
exact convolution spectral norm against the singular values of the explicit circular-convolution
matrix built by brute force, BatchNorm folding against the unfolded model's logits, the path
norm against a hand-written forward pass of ones through the squared-parameter network.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from baselines.catalogue import prepare, spectral_fft
from gen_measures.context import ModelContext, task_sample
from gen_measures.errors import DataError, DegenerateInputWarning, MeasureError, NotApplicableError
from gen_measures.registry import LARGER_GAP, get_measure, list_measures, resolve_measures

from .conftest import SAMPLE_DATA

NORMS = ["params", "l2", "l2_dist", "inverse_margin", "log_prod_of_spec", "log_prod_of_spec_over_margin",
         "log_sum_of_spec", "log_sum_of_spec_over_margin", "fro_over_spec", "log_spec_init_main", "log_spec_orig_main",
         "log_prod_of_fro", "log_prod_of_fro_over_margin", "log_sum_of_fro", "log_sum_of_fro_over_margin", "fro_dist",
         "dist_spec_init", "param_norm", "path_norm", "path_norm_over_margin"]
FFT = ["log_prod_of_spec_fft", "log_prod_of_spec_over_margin_fft", "log_sum_of_spec_fft",
       "log_sum_of_spec_over_margin_fft", "fro_over_spec_fft", "log_spec_init_main_fft", "log_spec_orig_main_fft",
       "dist_spec_init_fft"]
ALL = NORMS + FFT
NEED_INIT = {"l2_dist", "fro_dist", "dist_spec_init", "log_spec_init_main", "log_spec_init_main_fft", "dist_spec_init_fft"}


def _run(name, ctx):
    return get_measure(name).func(ctx)


def _adjust(name: str, raw: float, m: int) -> float:
    return 0.5 * (raw - math.log(m)) if name.startswith("log_") else math.sqrt(raw / m)


# ----------------------------------------------------------------------------- registry
def test_registered_with_metadata():
    specs = {s.name: s for s in list_measures("catalogue")}
    assert set(ALL) <= set(specs)
    for name in ALL:
        spec = specs[name]
        assert spec.family == "catalogue" and not spec.default and spec.direction == LARGER_GAP
        assert "arXiv:1912.02178" in spec.reference and spec.summary
        assert spec.needs == ({"data", "init_weights"} if name in NEED_INIT else {"data"}), name
    assert "1805.10408" in specs["log_prod_of_spec_fft"].reference
    assert set(ALL) <= {s.name for s in resolve_measures("catalogue")}
    assert not set(ALL) & {s.name for s in resolve_measures(None)}


# ----------------------------------------------------------------------------- a 2-layer Dense net, closed forms
RNG = np.random.default_rng(0)
W1, B1 = RNG.normal(size=(3, 4)), RNG.normal(size=4)
W2, B2 = RNG.normal(size=(4, 3)), RNG.normal(size=3)
W1_0, W2_0 = RNG.normal(size=(3, 4)), RNG.normal(size=(4, 3))
X = RNG.normal(size=(47, 3)).astype(np.float32)
Y = RNG.integers(0, 3, 47)
M_TRAIN = 1000


def _dense_net(w1=W1, b1=B1, w2=W2, b2=B2) -> keras.Sequential:
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(3)])
    model.set_weights([np.asarray(w, np.float32) for w in (w1, b1, w2, b2)])
    return model


def _dense_ctx(**weights) -> ModelContext:
    model = _dense_net(**weights)
    init = [W1_0, np.zeros(4), W2_0, np.zeros(3)]
    return ModelContext.from_keras(model, X, Y, n_train=M_TRAIN, initial_weights=[np.asarray(w, np.float32) for w in init])


def _f32(a):
    return np.asarray(a, np.float32).astype(np.float64)


def _numpy_margin(x, y, w1, b1, w2, b2) -> float:
    z = np.maximum(x @ w1 + b1, 0) @ w2 + b2
    margins = []
    for zi, yi in zip(z, y):
        others = [zi[j] for j in range(z.shape[1]) if j != yi]
        margins.append(zi[yi] - max(others))
    return abs(sorted(margins)[len(margins) // 10 - 1])


def _dense_expected() -> dict[str, float]:
    ws = [_f32(W1), _f32(W2)]
    w0 = [_f32(W1_0), _f32(W2_0)]
    diffs = [w - v for w, v in zip(ws, w0)]
    fro2 = np.array([np.sum(w**2) for w in ws])
    spec2 = np.array([np.linalg.svd(w, compute_uv=False)[0] ** 2 for w in ws])
    dfro2 = np.array([np.sum(w**2) for w in diffs])
    dspec2 = np.array([np.linalg.svd(w, compute_uv=False)[0] ** 2 for w in diffs])
    g = _numpy_margin(X.astype(np.float64), Y, _f32(W1), _f32(B1), _f32(W2), _f32(B2))
    d = 2
    ones = np.ones(3)
    path = np.sum(np.maximum(ones @ _f32(W1) ** 2 + _f32(B1) ** 2, 0) @ _f32(W2) ** 2 + _f32(B2) ** 2)
    raw = {
        "params": 12 + 12,
        "l2": math.sqrt(fro2.sum()),
        "l2_dist": math.sqrt(dfro2.sum()),
        "inverse_margin": 1 / g**2,
        "log_prod_of_spec": math.log(spec2.prod()),
        "log_prod_of_spec_over_margin": math.log(spec2.prod() / g**2),
        "log_sum_of_spec": math.log(d * spec2.prod() ** (1 / d)),
        "log_sum_of_spec_over_margin": math.log(d * (spec2.prod() / g**2) ** (1 / d)),
        "fro_over_spec": float(np.sum(fro2 / spec2)),
        "log_spec_init_main": math.log(spec2.prod() / g**2 * np.sum(dfro2 / spec2)),
        "log_spec_orig_main": math.log(spec2.prod() / g**2 * np.sum(fro2 / spec2)),
        "log_prod_of_fro": math.log(fro2.prod()),
        "log_prod_of_fro_over_margin": math.log(fro2.prod() / g**2),
        "log_sum_of_fro": math.log(d * fro2.prod() ** (1 / d)),
        "log_sum_of_fro_over_margin": math.log(d * (fro2.prod() / g**2) ** (1 / d)),
        "fro_dist": dfro2.sum(),
        "dist_spec_init": dspec2.sum(),
        "param_norm": fro2.sum(),
        "path_norm": path,
        "path_norm_over_margin": path / g**2,
    }
    # a Dense net: the exact spectral norms are the plain ones
    for name in FFT:
        raw[name] = raw[name.removesuffix("_fft")]
    return raw


def test_every_measure_on_a_dense_net_matches_its_closed_form():
    ctx = _dense_ctx()
    expected = _dense_expected()
    for name in ALL:
        out = _run(name, ctx)
        assert out.details["unadjusted"] == pytest.approx(expected[name], rel=1e-9), name
        assert out.value == pytest.approx(_adjust(name, expected[name], M_TRAIN), rel=1e-9), name
        assert out.details["m"] == M_TRAIN
    per_layer = _run("log_prod_of_spec", ctx).details["per_layer"]
    assert list(per_layer) == [layer.name for layer in ctx.model.layers]  # depth order, Keras names
    assert list(per_layer.values()) == pytest.approx([math.log(np.linalg.norm(_f32(w), 2) ** 2) for w in (W1, W2)])
    assert _run("inverse_margin", ctx).details["margin_rank"] == 4  # 47 // 10


def test_size_adjustment():
    assert prepare.size_adjusted(3.0, 100, log=True) == pytest.approx(0.5 * (3.0 - math.log(100)))
    assert prepare.size_adjusted(3.0, 100, log=False) == pytest.approx(math.sqrt(0.03))
    with pytest.raises(DataError, match="m >= 1"):
        prepare.size_adjusted(1.0, 0, log=False)


def test_margin_against_a_loop():
    rng = np.random.default_rng(3)
    for n in (5, 10, 37, 200):
        z = rng.normal(size=(n, 4))
        y = rng.integers(0, 4, n)
        margins = sorted(z[i, y[i]] - max(z[i, j] for j in range(4) if j != y[i]) for i in range(n))
        k = max(1, n // 10)
        gamma, rank = prepare.margin_quantile(z, y)
        assert rank == k and gamma == pytest.approx(abs(margins[k - 1]), rel=1e-12)
    with pytest.warns(DegenerateInputWarning):
        assert math.isnan(prepare.margin_quantile(np.array([[np.nan, 0.0]]), np.array([0]))[0])


def test_zero_margin_is_nan_with_a_warning():
    ctx = _dense_ctx(w2=np.zeros((4, 3)), b2=np.zeros(3))  # every logit 0: every margin 0
    with pytest.warns(DegenerateInputWarning, match="not finite"):
        assert math.isnan(_run("inverse_margin", ctx).value)


# ----------------------------------------------------------------------------- path norm with biases
def test_path_norm_counts_biases():
    base = _run("path_norm", _dense_ctx()).details["unadjusted"]
    b1 = B1.copy()
    b1[2] += 1.5
    changed = _run("path_norm", _dense_ctx(b1=b1)).details["unadjusted"]
    hand = np.sum(np.maximum(np.ones(3) @ _f32(W1) ** 2 + _f32(b1) ** 2, 0) @ _f32(W2) ** 2 + _f32(B2) ** 2)
    assert changed != base and changed == pytest.approx(hand, rel=1e-12)


def test_path_norm_squares_a_kept_batchnorm_layer():
    """Dense(relu) -> BN -> ReLU -> Dense: the BN layer cannot be folded; it is ``a^2 x + b^2`` in the path norm."""
    rng = np.random.default_rng(11)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="relu"), keras.layers.BatchNormalization(),
                              keras.layers.Activation("relu"), keras.layers.Dense(2)])
    gamma, beta, mean, var = rng.normal(size=4), rng.normal(size=4), rng.normal(size=4), rng.uniform(0.5, 2, 4)
    model.set_weights([np.asarray(v, np.float32) for v in (W1, B1, gamma, beta, mean, var, W2[:, :2], B2[:2])])
    a = _f32(gamma) / np.sqrt(_f32(var) + 1e-3)
    b = _f32(beta) - a * _f32(mean)
    h = np.maximum(np.ones(3) @ _f32(W1) ** 2 + _f32(B1) ** 2, 0)
    hand = np.sum(np.maximum(a**2 * h + b**2, 0) @ _f32(W2[:, :2]) ** 2 + _f32(B2[:2]) ** 2)
    ctx = ModelContext.from_keras(model, X, Y % 2, n_train=100)
    out = _run("path_norm", ctx)
    assert list(out.details["batchnorm"].values()) == ["kept (no exact fold)"]
    assert out.details["unadjusted"] == pytest.approx(hand, rel=1e-10)


def test_path_norm_of_a_conv_net_against_a_loop():
    """Conv 3x3 'same' (zero padding) -> global average pooling -> Dense, squared, on ones."""
    rng = np.random.default_rng(4)
    k, c = rng.normal(size=(3, 3, 1, 2)), rng.normal(size=2)
    w, b = rng.normal(size=(2, 3)), rng.normal(size=3)
    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Conv2D(2, 3, padding="same", activation="relu"),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])
    model.set_weights([np.asarray(v, np.float32) for v in (k, c, w, b)])
    k2, c2, w2, b2 = (_f32(v) ** 2 for v in (k, c, w, b))
    maps = np.zeros((4, 4, 2))
    for i in range(4):
        for j in range(4):
            for a in range(3):
                for bb in range(3):
                    if 0 <= i + a - 1 < 4 and 0 <= j + bb - 1 < 4:  # input pixel inside the image (value 1)
                        maps[i, j] += k2[a, bb, 0]
    hand = np.sum((maps + c2).mean(axis=(0, 1)) @ w2 + b2)
    ctx = ModelContext.from_keras(model, np.zeros((10, 4, 4, 1)), np.arange(10) % 3, n_train=50)
    assert _run("path_norm", ctx).details["unadjusted"] == pytest.approx(hand, rel=1e-12)


# ----------------------------------------------------------------------------- exact conv spectral norm
def _circular_conv_matrix(kernel, n1, n2, dilation=(1, 1)) -> np.ndarray:
    """The matrix of x -> circular convolution of x (n1 x n2 x cin) with kernel, one column per basis input."""
    kh, kw, cin, cout = kernel.shape
    cols = []
    for i in range(n1):
        for j in range(n2):
            for ci in range(cin):
                x = np.zeros((n1, n2, cin))
                x[i, j, ci] = 1.0
                y = np.zeros((n1, n2, cout))
                for p in range(n1):
                    for q in range(n2):
                        for a in range(kh):
                            for b in range(kw):
                                y[p, q] += x[(p + a * dilation[0]) % n1, (q + b * dilation[1]) % n2] @ kernel[a, b]
                cols.append(y.ravel())
    return np.stack(cols, axis=1)


def test_fft_singular_values_are_those_of_the_circular_convolution_matrix():
    kernel = np.random.default_rng(5).normal(size=(3, 3, 2, 3))
    brute = np.linalg.svd(_circular_conv_matrix(kernel, 5, 5), compute_uv=False)
    half = spectral_fft.conv_singular_values(kernel, (5, 5))  # (5, 3, 2): q = 0, 1, 2 of the half-spectrum
    full = np.concatenate([half[:, 0].ravel(), half[:, 1:].ravel(), half[:, 1:].ravel()])  # q = 3, 4 mirror 2, 1
    np.testing.assert_allclose(np.sort(full), np.sort(brute), rtol=1e-10, atol=1e-12)
    assert spectral_fft.conv_spectral_norm(kernel, (5, 5)) == pytest.approx(brute[0], rel=1e-12)


@pytest.mark.parametrize("size, dilation", [((2, 2), (1, 1)), ((1, 1), (1, 1)), ((3, 4), (1, 1)), ((6, 5), (2, 1))])
def test_fft_spectral_norm_wraps_kernels_larger_than_the_input(size, dilation):
    kernel = np.random.default_rng(6).normal(size=(3, 3, 2, 2))
    brute = np.linalg.svd(_circular_conv_matrix(kernel, *size, dilation), compute_uv=False)[0]
    assert spectral_fft.conv_spectral_norm(kernel, size, dilation) == pytest.approx(brute, rel=1e-10)


def test_fft_measures_use_each_layers_input_size():
    keras.utils.set_random_seed(7)
    model = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Conv2D(2, 3, padding="same", activation="relu"),
                              keras.layers.MaxPooling2D(2), keras.layers.Conv2D(3, 3, padding="same", activation="relu"),
                              keras.layers.Flatten(), keras.layers.Dense(4)])
    k1, _, k2, _, w, _ = [np.asarray(v, np.float64) for v in model.get_weights()]
    spec2 = np.array([np.linalg.svd(_circular_conv_matrix(k1, 6, 6), compute_uv=False)[0] ** 2,
                      np.linalg.svd(_circular_conv_matrix(k2, 3, 3), compute_uv=False)[0] ** 2,  # after pooling: 3x3
                      np.linalg.norm(w, 2) ** 2])
    x = np.random.default_rng(0).normal(size=(30, 6, 6, 1)).astype(np.float32)
    ctx = ModelContext.from_keras(model, x, np.arange(30) % 4, n_train=300)
    out = _run("log_prod_of_spec_fft", ctx)
    assert out.details["unadjusted"] == pytest.approx(float(np.sum(np.log(spec2))), rel=1e-10)
    fro2 = np.array([np.sum(v**2) for v in (k1, k2, w)])
    assert _run("fro_over_spec_fft", ctx).details["unadjusted"] == pytest.approx(float(np.sum(fro2 / spec2)), rel=1e-10)
    # the reshaped-kernel spectral norm is a different quantity
    reshaped = np.linalg.norm(k1.reshape(-1, 2), 2) ** 2
    assert _run("log_prod_of_spec", ctx).details["per_layer"][model.layers[0].name] == pytest.approx(math.log(reshaped))


# ----------------------------------------------------------------------------- BatchNorm folding
def _bn_model(gamma_sign: float = 1.0, seed: int = 8) -> keras.Sequential:
    """Every folding rule: backward (linear conv -> BN), kept (conv(relu) -> BN -> 3x3 'same' conv),
    forward through max pooling (into a 1x1 conv) and through Flatten (into a Dense layer)."""
    keras.utils.set_random_seed(seed)
    L = keras.layers
    model = keras.Sequential([
        keras.Input((6, 6, 2)),
        L.Conv2D(4, 3, padding="same"), L.BatchNormalization(name="bn_back"), L.Activation("relu"),
        L.Conv2D(4, 3, padding="same", activation="relu"), L.BatchNormalization(name="bn_kept"),
        L.Conv2D(4, 3, padding="same", activation="relu"), L.BatchNormalization(name="bn_pool"),
        L.MaxPooling2D(2), L.Conv2D(3, 1, activation="relu"), L.BatchNormalization(name="bn_flat"),
        L.Flatten(), L.Dense(5, activation="relu"), L.Dropout(0.3), L.Dense(3),
    ])
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            c = layer.gamma.shape[0]
            gamma = rng.uniform(0.5, 2.0, c) * (gamma_sign if layer.name == "bn_pool" else rng.choice([-1, 1], c))
            layer.set_weights([gamma, rng.normal(size=c), rng.normal(size=c), rng.uniform(0.3, 3.0, c)])
        elif layer.weights:
            layer.set_weights([w + 0.1 * rng.normal(size=w.shape) for w in layer.get_weights()])  # non-zero biases
    return model


def test_folding_rules():
    model = _bn_model()
    net = prepare.fold_batchnorm(model)
    conv = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    dense = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [f.kind for f in net.layers] == ["conv", "conv", "affine", "conv", "conv", "dense", "dense"]
    assert net.folds["bn_back"] == f"backward into {conv[0]}"
    assert net.folds["bn_kept"] == "kept (no exact fold)"
    assert net.folds["bn_pool"] == f"forward into {conv[3]}"
    assert net.folds["bn_flat"] == f"forward into {dense[0]}"
    # a negative scale does not commute with max pooling: that BN layer is kept
    assert prepare.fold_batchnorm(_bn_model(gamma_sign=-1.0)).folds["bn_pool"] == "kept (no exact fold)"
    # Dense -> BN with a linear Dense folds backward
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.BatchNormalization(), keras.layers.Dense(2)])
    assert list(prepare.fold_batchnorm(model).folds.values()) == [f"backward into {model.layers[0].name}"]


@pytest.mark.parametrize("gamma_sign", [1.0, -1.0])
def test_folded_twin_gives_the_same_logits_and_the_same_measures(gamma_sign):
    model = _bn_model(gamma_sign)
    initial = _bn_model(gamma_sign, seed=9)
    init_weights = [np.asarray(w) for w in initial.get_weights()]
    net = prepare.fold_batchnorm(model)
    twin = prepare.folded_model(model, net)
    n_bn = sum(isinstance(layer, keras.layers.BatchNormalization) for layer in twin.layers)
    assert n_bn == (1 if gamma_sign > 0 else 2)  # only the kept layers remain
    x = np.random.default_rng(1).normal(size=(60, 6, 6, 2)).astype(np.float32)
    logits, twin_logits = np.asarray(model(x, training=False)), np.asarray(twin(x, training=False))
    np.testing.assert_allclose(twin_logits, logits, rtol=1e-5, atol=1e-5 * np.abs(logits).max())
    # the twin's initial weights: the initial weights folded with the trained weights' plan
    plan = prepare.folding_plan(model)
    twin_init = prepare.folded_model(model, prepare.fold_batchnorm(model, init_weights, plan=plan)).get_weights()
    y = np.argmax(logits, axis=1)
    y[::7] = (y[::7] + 1) % 3  # some misclassified examples
    ctx = ModelContext.from_keras(model, x, y, n_train=600, initial_weights=init_weights)
    twin_ctx = ModelContext.from_keras(twin, x, y, n_train=600, initial_weights=twin_init)
    for name in ALL:
        a, b = _run(name, ctx), _run(name, twin_ctx)
        assert math.isfinite(a.value) and b.value == pytest.approx(a.value, rel=1e-5), name
        assert list(a.details.get("per_layer", {})) == list(b.details.get("per_layer", {}))


def test_folding_against_the_affine_formula():
    """Backward fold into a linear Dense layer: W' = W diag(a) (per output unit), c' = a c + b."""
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.BatchNormalization(epsilon=0.01)])
    w, c = RNG.normal(size=(3, 4)), RNG.normal(size=4)
    gamma, beta, mean, var = RNG.normal(size=4), RNG.normal(size=4), RNG.normal(size=4), RNG.uniform(0.5, 2, 4)
    model.set_weights([np.asarray(v, np.float32) for v in (w, c, gamma, beta, mean, var)])
    a = _f32(gamma) / np.sqrt(_f32(var) + 0.01)
    (layer,) = prepare.fold_batchnorm(model).layers
    np.testing.assert_allclose(layer.kernel, _f32(w) * a, rtol=1e-12)
    np.testing.assert_allclose(layer.bias, a * (_f32(c) - _f32(mean)) + _f32(beta), rtol=1e-12)
    np.testing.assert_array_equal(layer.matrix(), layer.kernel.T)


# ----------------------------------------------------------------------------- bad input
def test_a_model_without_dense_or_conv_is_not_applicable():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Activation("relu")])
    ctx = ModelContext.from_keras(model, X, Y, n_train=100)
    for name in ("params", "log_prod_of_spec_fft", "path_norm"):
        with pytest.raises(NotApplicableError, match="no Dense or Conv"):
            _run(name, ctx)


def test_unsupported_weighted_layers_are_not_applicable():
    model = keras.Sequential([keras.Input((5, 5, 2)), keras.layers.DepthwiseConv2D(3), keras.layers.Flatten(),
                              keras.layers.Dense(3)])
    ctx = ModelContext.from_keras(model, np.zeros((4, 5, 5, 2)), np.arange(4) % 3, n_train=100)
    with pytest.raises(NotApplicableError, match="DepthwiseConv2D"):
        _run("param_norm", ctx)


def test_missing_initial_weights_or_data_give_clear_errors():
    ctx = ModelContext.from_keras(_dense_net(), X, Y, n_train=100)
    for name in sorted(NEED_INIT):
        assert "init_weights" in get_measure(name).needs
        with pytest.raises(MeasureError, match="no initial weights"):
            _run(name, ctx)
    empty = ModelContext.from_keras(_dense_net(), np.zeros((0, 3)), np.zeros(0))
    with pytest.raises(DataError, match="needs training data"):
        _run("inverse_margin", empty)
    with pytest.raises(DataError, match="training set size"):
        _run("params", empty)


# ----------------------------------------------------------------------------- the bundled zoo
@pytest.mark.parametrize("task_name", ["digits_vgg", "shapes_nin"])
def test_finite_on_the_bundled_models(task_name):
    from gen_measures.io.pgdl import open_task

    task = open_task(SAMPLE_DATA / task_name)
    x, y, n_train = task_sample(task, 500, 0, return_size=True)
    for mid in (task.model_ids[0], task.model_ids[-1]):
        ctx = ModelContext.from_task(task, mid, (x, y), n_train=n_train)
        kernel_names = [ctx.model.layers[i].name for i in ctx.weighted_layer_indices()]
        for name in ALL:
            out = _run(name, ctx)
            assert isinstance(out.value, float) and math.isfinite(out.value), (task_name, mid, name, out.value)
            assert out.details["m"] == n_train
            if "per_layer" in out.details:
                assert list(out.details["per_layer"]) == kernel_names
        if task_name == "shapes_nin":  # conv(relu) -> BN -> 1x1 conv: folded forward, exactly
            assert all(v.startswith("forward into") for v in out.details["batchnorm"].values())
