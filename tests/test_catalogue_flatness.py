"""The perturbation engine and the PAC-Bayes measures, against brute force and closed forms.

* the engine's early answers equal the answers of a full evaluation (brute force over every
  batch and draw), and its interval classifier agrees with a dense grid of points;
* the PAC-Bayes search returns the sigma a search without early stopping returns, and the
  accuracy displacement at that sigma, re-evaluated on a fresh clone of the model, is within
  the tolerance;
* the noise has the paper's variances;
* the catalogue's pacbayes_* values follow their closed forms from numpy kernels, and
  pacbayes_flatness is pacbayes_sharpness adjusted for the dataset size (one search).
"""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from gen_measures.context import ModelContext
from gen_measures.measures import perturbation
from gen_measures.measures.perturbation import OVER, UNDER, WITHIN, PerturbationEngine, displacement_class, pacbayes_sigma
from gen_measures.registry import LARGER_GAP, get_measure, list_measures

PACBAYES = ["pacbayes_init", "pacbayes_orig", "pacbayes_flatness", "pacbayes_mag_init", "pacbayes_mag_orig",
            "pacbayes_mag_flatness"]
M_TRAIN = 5000


def _trained_ctx(seed: int = 0, n: int = 300) -> ModelContext:
    """A small Dense net fitted to a separable problem (train accuracy near 1), with its initial weights."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 1).astype(np.int64)
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(3)])
    init = [w.copy() for w in model.get_weights()]
    model.compile(optimizer=keras.optimizers.Adam(0.05),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=30, batch_size=64, verbose=0)
    return ModelContext.from_keras(model, x, y, initial_weights=init, n_train=M_TRAIN, batch_size=64)


@pytest.fixture(scope="module")
def ctx():
    return _trained_ctx()


def _full_decision(engine: PerturbationEngine, draws, classify):
    """Brute force: every draw on every example, then the answer at the exact drop."""
    correct = total = 0
    for make in draws:
        engine.set_offsets(make())
        out = engine.ctx.predict(engine.x)
        if not np.all(np.isfinite(out)):
            return classify(math.inf, math.inf)
        correct += int(np.sum(np.argmax(out, 1) == engine.y))
        total += len(engine.y)
    drop = engine.acc0 - correct / total
    return classify(drop, drop)


def test_interval_classifier_agrees_with_a_dense_grid():
    classify = displacement_class(0.1, 0.01)
    rng = np.random.default_rng(1)
    for _ in range(400):
        a, b = np.sort(rng.uniform(-0.3, 0.4, 2))
        grid = {classify(d, d) for d in np.linspace(a, b, 2001)}
        answer = classify(a, b)
        if answer is None:
            assert len(grid) > 1
        else:
            assert grid == {answer}
    assert classify(0.1, 0.1) == WITHIN and classify(0.2, 0.2) == OVER and classify(0.0, 0.0) == UNDER
    assert classify(-0.2, -0.2) == OVER  # a displacement counts in both directions, as in the reference
    assert classify(math.inf, math.inf) == OVER


@pytest.mark.parametrize("sigma", [0.0, 0.05, 0.2, 0.5, 2.0])
def test_early_answers_equal_full_evaluation(ctx, sigma):
    classify = displacement_class(0.1, 0.01)
    rng = np.random.default_rng(2)
    with PerturbationEngine(ctx) as engine:
        z = [[rng.standard_normal(w.shape) for w in engine.base] for _ in range(10)]
        draws = [lambda zs=zs: [sigma * zi for zi in zs] for zs in z]
        early = engine.decide(draws, classify)
        passes_early = engine.passes
        assert early.answer == _full_decision(engine, draws, classify)
        if sigma >= 0.5:  # far over the target: decided before the end
            assert not early.complete and early.draws < 10
            assert passes_early < 1 + 10
    np.testing.assert_array_equal(ctx.model.get_weights()[0], ctx.weights()[0])  # restored


def test_bisection_equals_a_bisection_without_early_stopping(ctx, monkeypatch):
    with PerturbationEngine(ctx) as engine:
        early = pacbayes_sigma(engine, np.random.default_rng(3), points="bisection")
    with PerturbationEngine(ctx) as engine:
        monkeypatch.setattr(PerturbationEngine, "decide",
                            lambda self, draws, classify, **kw: perturbation.Decision(
                                _full_decision(self, draws, classify), math.nan, (0, 0), len(draws), True))
        full = pacbayes_sigma(engine, np.random.default_rng(3), points="bisection")
    assert early.sigma == full.sigma
    assert [s[:2] for s in early.steps] == [s[:2] for s in full.steps]
    assert sum(s[2] for s in early.steps) < sum(s[2] for s in full.steps) == 10 * len(full.steps)


def test_displacement_at_the_returned_sigma_re_evaluated_on_a_fresh_clone(ctx):
    rng = np.random.default_rng(4)
    with PerturbationEngine(ctx) as engine:
        search = pacbayes_sigma(engine, np.random.default_rng(4))
    assert search.steps[-1][1] == WITHIN
    # rebuild the same 10 noise draws (the seeds come first from the generator) on a clone
    seeds = rng.integers(0, 2**63 - 1, size=10)
    fresh = keras.models.clone_model(ctx.model)
    fresh.set_weights(ctx.model.get_weights())
    base = [w.copy() for w in fresh.get_weights()]
    acc0 = np.mean(np.argmax(fresh.predict(ctx.x, verbose=0), 1) == ctx.y)
    accs = []
    for s in seeds:
        g = np.random.default_rng(int(s))
        fresh.set_weights([w + search.sigma * g.standard_normal(w.shape).astype(np.float32) for w in base])
        accs.append(np.mean(np.argmax(fresh.predict(ctx.x, verbose=0), 1) == ctx.y))
    assert abs(abs(acc0 - np.mean(accs)) - 0.1) < 0.01


def test_noise_has_the_papers_variances(ctx, monkeypatch):
    """Plain noise: std sigma; magnitude-aware: std sqrt(sigma^2 w^2 + eps^2) (not the reference's variance-as-std)."""
    seen = []
    monkeypatch.setattr(PerturbationEngine, "decide",
                        lambda self, draws, classify, **kw: (seen.append([d() for d in draws]),
                                                       perturbation.Decision(WITHIN, 0.1, (0, 0), 3, True))[1])
    with PerturbationEngine(ctx) as engine:
        plain_search = pacbayes_sigma(engine, np.random.default_rng(5))
        mag_search = pacbayes_sigma(engine, np.random.default_rng(5), magnitude_eps=0.05)
    # the first (and, with the patched answer, only) point, placed by the probe: the same for both
    # noise kinds here only if the probes agree, so each is read from its own search
    sigma = plain_search.steps[0][0]
    assert len(plain_search.steps) == 1 and 0 < sigma <= 2
    plain = np.concatenate([np.ravel(draw) for draw in seen[0]])  # flat offset vectors, in the order of base
    assert np.std(plain) == pytest.approx(sigma, rel=0.08)  # 1630 normals: standard error 1.8 %
    w = engine.base[0].astype(np.float64).ravel()
    sigma = mag_search.steps[0][0]
    ratio = np.stack([draw[:w.size] for draw in seen[1]]) / np.sqrt(sigma**2 * w**2 + 0.05**2)
    assert np.std(ratio) == pytest.approx(1.0, rel=0.15)  # 960 normals: standard error 2.3 %


def test_pacbayes_measures_follow_their_closed_forms(ctx):
    from gen_measures.measures.sharpness import pacbayes_search

    kernels = [ctx.weights()[0], ctx.weights()[2]]  # Dense kernels (no BatchNorm to fold)
    init = [ctx.initial_weights()[0], ctx.initial_weights()[2]]
    w = np.concatenate([k.astype(np.float64).ravel() for k in kernels])
    d = w - np.concatenate([k.astype(np.float64).ravel() for k in init])
    m, eps = M_TRAIN, 1e-3
    s, s_mag = pacbayes_search(ctx).sigma, pacbayes_search(ctx, eps).sigma

    def bound(norm_sq, sigma):
        return norm_sq / (4 * sigma**2) + math.log(m / sigma) + 10

    def mag(norm_sq, sigma):
        return 0.25 * np.sum(np.log((eps**2 + (sigma**2 + 1) * norm_sq / w.size) / (eps**2 + sigma**2 * d**2))) \
            + math.log(m / sigma) + 10

    expected = {"pacbayes_init": bound(d @ d, s), "pacbayes_orig": bound(w @ w, s), "pacbayes_flatness": 1 / s**2,
                "pacbayes_mag_init": mag(d @ d, s_mag), "pacbayes_mag_orig": mag(w @ w, s_mag),
                "pacbayes_mag_flatness": 1 / s_mag**2}
    for name, raw in expected.items():
        assert get_measure(name).func(ctx).value == pytest.approx(math.sqrt(raw / m), rel=1e-9), name
    sharp = get_measure("pacbayes_sharpness").func(ctx).value
    assert sharp == pytest.approx(1 / s**2, rel=1e-12)
    assert get_measure("pacbayes_flatness").func(ctx).value ** 2 * m == pytest.approx(sharp, rel=1e-9)


def test_one_search_per_model_and_noise_kind(ctx, monkeypatch):
    fresh = ModelContext.from_keras(ctx.model, ctx.x, ctx.y, initial_weights=ctx.initial_weights(), n_train=M_TRAIN)
    calls = []
    real = perturbation.pacbayes_sigma
    import gen_measures.measures.sharpness as sharpness

    monkeypatch.setattr(sharpness, "pacbayes_sigma", lambda *a, **k: (calls.append(k.get("magnitude_eps")), real(*a, **k))[1])
    for name in PACBAYES + ["pacbayes_sharpness"]:
        get_measure(name).func(fresh)
    assert sorted(calls, key=str) == sorted([None, 1e-3], key=str)


def test_registered_with_metadata():
    specs = {s.name: s for s in list_measures("catalogue")}
    for name in PACBAYES:
        spec = specs[name]
        assert spec.direction == LARGER_GAP and not spec.default and "1912.02178" in spec.reference
        assert "data" in spec.needs
        assert ("init_weights" in spec.needs) == (name in ("pacbayes_init", "pacbayes_mag_init", "pacbayes_mag_orig"))
