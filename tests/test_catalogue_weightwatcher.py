"""Tests of baselines.catalogue.weightwatcher (weightwatcher's data-free layer metrics).

References used: eigenvalues of ``W^T W`` computed here with ``np.linalg.eigvalsh``, one Dense
kernel or one ``(c_in, c_out)`` conv slice at a time (independently of
``baselines.spectral.layer_eigenvalues``' batched SVD), with weightwatcher's halving of conv
eigenvalues applied explicitly; ``lambda_max`` also as ``np.linalg.norm(W, 2) ** 2``. The
power-law ``alpha`` is taken from ``spectral_alpha``'s per-layer details (the fit is tested in
``test_baselines.py`` / ``test_baselines_power_law.py``).
"""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from baselines import spectral
from baselines.catalogue import weightwatcher as ww
from gen_measures.context import ModelContext
from gen_measures.errors import DegenerateInputWarning
from gen_measures.registry import LARGER_GAP, get_measure

MEASURES = {
    "ww_alpha_weighted": "alpha_weighted",
    "ww_log_norm": "log_norm",
    "ww_log_spectral_norm": "log_spectral_norm",
    "ww_stable_rank": "stable_rank",
    "ww_log_alpha_norm": "log_alpha_norm",
}


def _dense_model():
    model = keras.Sequential([keras.Input((30,)), keras.layers.Dense(20, activation="relu"),
                              keras.layers.Dense(12, activation="relu"), keras.layers.Dense(10)])
    rng = np.random.default_rng(0)
    model.set_weights([rng.standard_t(3, size=w.shape).astype(np.float32) * 0.3 for w in model.get_weights()])
    return model


def _conv_model():
    model = keras.Sequential([
        keras.Input((8, 8, 3)),
        keras.layers.Conv2D(6, 3, padding="same", activation="relu"),
        keras.layers.BatchNormalization(),
        keras.layers.Conv2D(8, 3, activation="relu"),
        keras.layers.Conv2D(5, 1),  # 1x1 conv: one slice, still a conv layer (halved)
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(7),
    ])
    rng = np.random.default_rng(1)
    model.set_weights([np.abs(rng.normal(size=w.shape)).astype(np.float32) + 0.5 if w.ndim == 1 and "variance" in v.path
                       else rng.normal(scale=0.5, size=w.shape).astype(np.float32)
                       for w, v in zip(model.get_weights(), model.weights)])
    return model


def _reference(kernel: np.ndarray) -> np.ndarray:
    """Eigenvalues of W^T W (one slice at a time; conv eigenvalues halved as weightwatcher's conv2d_norm)."""
    w = np.asarray(kernel, np.float64)
    slices = [w] if w.ndim == 2 else [w[i, j] for i in range(w.shape[0]) for j in range(w.shape[1])]
    evals = np.concatenate([np.clip(np.linalg.eigvalsh(s.T @ s), 0.0, None) for s in slices])
    if w.ndim == 4:
        top = max(np.linalg.norm(s, 2) ** 2 for s in slices)
        assert evals.max() == pytest.approx(top, rel=1e-10)
    else:
        assert evals.max() == pytest.approx(np.linalg.norm(w, 2) ** 2, rel=1e-10)
    return evals * (0.5 if w.ndim == 4 else 1.0)


def _expected(evals: np.ndarray, alpha: float) -> dict[str, float]:
    top = evals.max()
    return {
        "alpha_weighted": alpha * np.log10(top),
        "log_norm": np.log10(evals.sum()),
        "log_spectral_norm": np.log10(top),
        "stable_rank": evals.sum() / top,
        "log_alpha_norm": np.log10(np.sum(evals ** alpha)),
    }


def test_registered_with_metadata():
    for name in MEASURES:
        spec = get_measure(name)
        assert spec.direction == LARGER_GAP and spec.family == "catalogue" and spec.default is False
        assert spec.needs == frozenset() and "weightwatcher" in spec.reference.lower()


@pytest.mark.parametrize("build", [_dense_model, _conv_model], ids=["dense", "conv"])
def test_every_metric_against_numpy_eigenvalues(build):
    model = build()
    ctx = ModelContext.from_keras(model, np.zeros((0,) + model.input_shape[1:], np.float32), np.zeros(0))
    alphas = spectral.spectral_alpha(ctx).details["per_layer"]
    layers = [(f"{i}:{type(layer).__name__}", layer.kernel.numpy())
              for i, layer in enumerate(model.layers) if hasattr(layer, "kernel")]
    assert list(alphas) == [name for name, _ in layers]  # every layer is fitted here
    expected = {metric: {} for metric in MEASURES.values()}
    for name, kernel in layers:
        for metric, value in _expected(_reference(kernel), alphas[name]).items():
            expected[metric][name] = value
    for measure, metric in MEASURES.items():
        out = get_measure(measure).func(ctx)
        per_layer = out.details["per_layer"]
        assert list(per_layer) == [name for name, _ in layers], "per-layer values in depth order"
        np.testing.assert_allclose([per_layer[n] for n, _ in layers], [expected[metric][n] for n, _ in layers],
                                   rtol=1e-9, atol=1e-12, err_msg=measure)
        assert out.value == pytest.approx(np.mean(list(expected[metric].values())), rel=1e-9, abs=1e-12)
        assert list(out.details["alpha"]) == list(alphas) and out.details["skipped"] == []
        # the same fits computed twice: equal up to the BLAS summation order (one ulp seen under load)
        assert [out.details["alpha"][k] for k in alphas] == pytest.approx([alphas[k] for k in alphas], rel=1e-12)


def test_conv_scaling_shifts_only_the_log_metrics():
    kernel = np.random.default_rng(2).normal(size=(3, 3, 6, 8))
    on = ww.weightwatcher_metrics([kernel], ["c"])
    off = ww.weightwatcher_metrics([kernel], ["c"], conv2d_norm=False)
    assert on["alpha"]["c"] == pytest.approx(off["alpha"]["c"], rel=1e-12)  # the fit is scale-free
    assert on["mean"]["stable_rank"] == pytest.approx(off["mean"]["stable_rank"], rel=1e-12)
    for metric in ("log_norm", "log_spectral_norm"):
        assert on["mean"][metric] - off["mean"][metric] == pytest.approx(math.log10(0.5), rel=1e-12)
    alpha = on["alpha"]["c"]
    assert on["mean"]["log_alpha_norm"] - off["mean"]["log_alpha_norm"] == pytest.approx(alpha * math.log10(0.5))


def test_layer_metrics_closed_form():
    # ESD {4, 1, 1, 0}: lambda_max 4, ||W||_F^2 6, alpha 2 -> sum lambda^2 = 18
    out = ww.layer_metrics(np.array([4.0, 1.0, 1.0, 0.0]), 2.0)
    assert out == pytest.approx({"alpha_weighted": 2 * math.log10(4), "log_norm": math.log10(6),
                                 "log_spectral_norm": math.log10(4), "stable_rank": 1.5,
                                 "log_alpha_norm": math.log10(18)}, rel=1e-14)
    # no overflow where sum lambda^alpha would overflow float64
    big = ww.layer_metrics(np.array([1e200, 1e199]), 3.0)
    assert big["log_alpha_norm"] == pytest.approx(600 + math.log10(1 + 1e-3), rel=1e-14)


def test_unfittable_layers_are_skipped_and_all_skipped_is_nan():
    good = np.random.default_rng(3).normal(size=(30, 20))
    out = ww.weightwatcher_metrics([good, np.zeros((5, 4)), np.eye(3)], ["a", "zero", "small"])
    assert out["skipped"] == ["zero", "small"] and list(out["per_layer"]["log_norm"]) == ["a"]
    assert out["mean"]["log_norm"] == pytest.approx(math.log10(np.sum(good ** 2)), rel=1e-12)
    with pytest.warns(DegenerateInputWarning, match="weightwatcher metrics are NaN"):
        out = ww.weightwatcher_metrics([np.zeros((6, 6))], ["zero"])
    assert all(math.isnan(v) for v in out["mean"].values()) and out["skipped"] == ["zero"]
