"""The interpolated scale searches and the fused perturbation calls, against brute force.

* ``search_sigma`` (PAC-Bayes) and ``largest_scale_within_drop`` (sharpness) on synthetic drop
  curves whose roots are known in closed form: sigmoid curves of every slope and position,
  curves that saturate below 1, curves with flat steps, a noisy non-monotone curve. Each
  search must end on a point that satisfies its definition (checked by evaluating the curve
  there), within its budget; on smooth curves the interpolated search needs fewer points than
  the bisection.
* ``WeightPerturbation.count_correct`` and ``sign_ascent_step`` against a fresh copy of the
  model evaluated by Keras and numpy, one operation at a time.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from gen_measures.context import ModelContext
from gen_measures.measures.perturbation import (OVER, UNDER, WITHIN, Decision, displacement_class, probe_start,
                                                search_sigma)
from gen_measures.measures.sharpness import RESOLUTION, largest_scale_within_drop

TARGET, TOL = 0.1, 0.01


def _sigmoid_curve(center: float, slope: float, ceiling: float = 0.9):
    """drop(s) = ceiling * sigmoid(slope * log(s / center)): 0 at s = 0, ``ceiling`` for large s."""
    return lambda s: 0.0 if s <= 0 else ceiling / (1 + (center / s) ** slope)


def _decisions(curve, acc0: float = 1.0):
    """evaluate(sigma) for search_sigma: the exact answer, the drop as estimate, 10 draws."""
    classify = displacement_class(TARGET, TOL)
    calls = []

    def evaluate(sigma: float) -> Decision:
        d = curve(sigma)
        calls.append(sigma)
        return Decision(classify(d, d), d, (acc0 - d, acc0 - d), 10, True, d)

    return evaluate, calls


CURVES = [(c, k, top) for c in (0.004, 0.03, 0.1, 0.4, 1.3) for k in (1.0, 2.5, 6.0) for top in (0.9, 0.4)]


@pytest.mark.parametrize("center,slope,ceiling", CURVES)
def test_pacbayes_search_lands_within_the_tolerance(center, slope, ceiling):
    curve = _sigmoid_curve(center, slope, ceiling)
    found = {}
    for points in ("interpolated", "bisection"):
        evaluate, calls = _decisions(curve)
        sigma, steps = search_sigma(evaluate, 1.0, points=points)
        assert len(steps) == len(calls) <= 15
        assert [s[0] for s in steps] == calls
        found[points] = (sigma, steps)
    sigma, steps = found["interpolated"]
    bis_sigma, bis_steps = found["bisection"]
    assert 0 < sigma <= 2.0
    if bis_steps[-1][1] == WITHIN:  # the reference's bisection reaches the tolerance: so must interpolation
        assert steps[-1][1] == WITHIN and abs(curve(sigma) - TARGET) < TOL
        assert len(steps) <= 8  # a smooth curve: well within the 15-point budget
    # brute force: the sigmas within tolerance form one interval here; the answer is inside it
    if steps[-1][1] == WITHIN:
        grid = np.geomspace(1e-5, 2.0, 20001)
        inside = grid[np.abs([curve(s) - TARGET for s in grid]) < TOL]
        assert inside.min() * (1 - 1e-3) <= sigma <= inside.max() * (1 + 1e-3)


def test_interpolation_needs_fewer_points_than_bisection_on_smooth_curves():
    totals = {"interpolated": 0, "bisection": 0}
    for center, slope, ceiling in CURVES:
        for points in totals:
            evaluate, _ = _decisions(_sigmoid_curve(center, slope, ceiling))
            totals[points] += len(search_sigma(evaluate, 1.0, points=points)[1])
    assert totals["interpolated"] < 0.75 * totals["bisection"]


def test_pacbayes_search_every_sigma_under_ends_at_the_upper_bound():
    evaluate, calls = _decisions(lambda s: 0.001 * s)
    sigma, steps = search_sigma(evaluate, 1.0)
    assert sigma == 2.0 and steps[-1][1] == UNDER and len(steps) < 15


def test_pacbayes_search_on_a_staircase_and_on_noise_stays_in_budget():
    stairs = lambda s: 0.0 if s < 0.05 else (0.3 if s < 0.2 else 0.85)  # noqa: E731 - no point within tolerance
    evaluate, _ = _decisions(stairs)
    sigma, steps = search_sigma(evaluate, 1.0)
    assert len(steps) == 15 and all(a != WITHIN for _, a, _ in steps)
    assert 0.05 * (1 - 1e-9) <= min(s for s, a, _ in steps if a == OVER)  # the bracket closes on the step
    rng = np.random.default_rng(0)
    noisy = lambda s: _sigmoid_curve(0.08, 2.5)(s) + rng.normal(0, 0.01)  # noqa: E731
    evaluate, _ = _decisions(noisy)
    sigma, steps = search_sigma(evaluate, 1.0)
    assert len(steps) <= 15 and 0 < sigma <= 2


def test_unknown_points_rule_is_refused():
    with pytest.raises(ValueError, match="points='golden'"):
        search_sigma(lambda s: None, 1.0, points="golden")


RUNGS = [2.0 * 2.0**-k for k in range(1, 9)]


@pytest.mark.parametrize("center,slope", [(c, k) for c in (0.01, 0.03, 0.1, 0.4) for k in (1.0, 2.5, 6.0)])
def test_probe_start_is_the_exact_root_where_the_logit_is_linear(center, slope):
    """acc0 = 1 and drop = sigmoid(k log(s / c)): logit(drop) = k log(s / c) exactly, so the
    interpolated first point is the root in closed form and the secant is the slope k."""
    curve = _sigmoid_curve(center, slope, ceiling=1.0)
    first, found_slope = probe_start([(s, curve(s)) for s in RUNGS], 1.0, TARGET, 2.0)
    root = center * (TARGET / (1 - TARGET)) ** (1 / slope)  # solves 1 / (1 + (c / s)^k) = 0.1
    # where the neighbouring rungs both lie below the plateau (drops under 1/2), the secant is exact
    hi = min(s for s in RUNGS if curve(s) > TARGET)
    if hi == min(RUNGS):  # the root lies below every rung: extrapolated down, by 8x at most
        assert root < hi and hi / 8 * (1 - 1e-12) <= first < hi
        return
    if curve(hi) < 0.5:
        assert first == pytest.approx(root, rel=1e-9) and found_slope == pytest.approx(min(max(slope, 0.5), 10), rel=1e-9)
    assert hi / 2 <= first <= hi  # always between the rungs that straddle the target


def test_probe_start_when_every_rung_is_on_one_side():
    assert probe_start([(s, 0.001) for s in RUNGS], 1.0, TARGET, 2.0)[0] == 2.0  # all under: the upper bound
    first, slope = probe_start([(s, 0.8) for s in RUNGS], 1.0, TARGET, 2.0)  # all over: below the smallest rung
    assert min(RUNGS) / 8 * (1 - 1e-12) <= first < min(RUNGS)
    first, _ = probe_start([(s, math.inf) for s in RUNGS], 1.0, TARGET, 2.0)  # non-finite outputs count as over
    assert first < min(RUNGS)
    assert probe_start([], 1.0, TARGET, 2.0)[0] == 1.0  # nothing probed: the reference's first midpoint


@pytest.mark.parametrize("center,slope,ceiling", CURVES)
def test_search_started_by_a_probe_meets_the_same_definition(center, slope, ceiling):
    curve = _sigmoid_curve(center, slope, ceiling)
    start, probe_slope = probe_start([(s, curve(s)) for s in RUNGS], 1.0, TARGET, 2.0)
    evaluate, calls = _decisions(curve)
    sigma, steps = search_sigma(evaluate, 1.0, start=start, slope=probe_slope)
    plain, _ = _decisions(curve)
    _, plain_steps = search_sigma(plain, 1.0)
    assert steps[0][0] == start and len(steps) <= 15
    if plain_steps[-1][1] == WITHIN:
        assert steps[-1][1] == WITHIN and abs(curve(sigma) - TARGET) < TOL
    assert len(steps) <= len(plain_steps) + 1


def test_engine_drops_equal_a_forward_pass_per_row(small_ctx):
    """One call for every row (one batch) or row by row over batches: the drop at each row, inf for NaN outputs."""
    from gen_measures.measures.perturbation import PerturbationEngine

    rng = np.random.default_rng(9)
    with small_ctx.perturbation() as p:
        rows = [np.concatenate([o.ravel() for o in _offsets(p, rng, scale)]) for scale in (0.0, 0.1, 0.5, 2.0)]
        rows.insert(2, np.full(p.size, np.nan))
    for batch_size in (small_ctx.n_samples, 32):
        with PerturbationEngine(small_ctx, batch_size=batch_size) as engine:
            passes = engine.passes
            drops = engine.drops(rows)
            assert engine.passes - passes == pytest.approx(len(rows))
            expected = []
            for row in rows:
                engine.set_offsets(row)
                out = small_ctx.predict(small_ctx.x)
                ok = np.all(np.isfinite(out))
                expected.append(engine.acc0 - np.mean(np.argmax(out, 1) == small_ctx.y) if ok else math.inf)
        np.testing.assert_allclose(drops, expected, rtol=0, atol=1e-12)
        assert drops[2] == math.inf and drops[0] == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_array_equal(small_ctx.model.get_weights()[0], small_ctx.weights()[0])


@pytest.mark.parametrize("center,slope", [(c, k) for c in (3e-4, 0.01, 0.05, 0.3, 20.0) for k in (1.5, 3.0, 8.0)])
def test_sharpness_scale_search_meets_its_definition(center, slope):
    curve = _sigmoid_curve(center, slope)
    trace = []
    scale, trace = largest_scale_within_drop(curve, target=TARGET, tolerance=TOL, start=0.01, lo_bound=1e-6,
                                             hi_bound=1e3, steps=6)
    d = curve(scale)
    assert d <= TARGET
    # within tolerance below the target, or the bracket narrowed to the resolution / refinements ran out
    under = [s for s, dd in trace if dd <= TARGET]
    over = [s for s, dd in trace if dd > TARGET]
    assert d >= TARGET - TOL or (over and min(over) / max(under) <= RESOLUTION ** 64)
    assert scale == max(under) or d >= TARGET - TOL
    assert len(trace) <= 14


def test_sharpness_scale_search_bounds():
    assert largest_scale_within_drop(lambda s: 0.0, start=0.01, lo_bound=1e-6, hi_bound=1e3, steps=6)[0] == 1e3
    assert largest_scale_within_drop(lambda s: 1.0, start=0.01, lo_bound=1e-6, hi_bound=1e3, steps=6)[0] == 1e-6


# ----------------------------------------------------------------------------- fused calls
@pytest.fixture(scope="module")
def small_ctx():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(90, 5, 5, 2)).astype(np.float32)
    y = rng.integers(0, 4, size=90)
    keras.utils.set_random_seed(7)
    model = keras.Sequential([keras.Input((5, 5, 2)), keras.layers.Conv2D(3, 3, activation="relu"),
                              keras.layers.BatchNormalization(), keras.layers.Flatten(), keras.layers.Dense(4)])
    model(x[:2])
    return ModelContext.from_keras(model, x, y, batch_size=32)


def _offsets(p, rng, scale):
    return [scale * rng.standard_normal(w.shape) for w in p.base]


def test_count_correct_equals_keras_on_a_copy(small_ctx):
    rng = np.random.default_rng(1)
    twin = keras.models.clone_model(small_ctx.model)
    twin.set_weights(small_ctx.model.get_weights())
    trainable = [id(v) for v in small_ctx.model.trainable_variables]
    with small_ctx.perturbation() as p:
        for scale in (0.0, 0.1, 1.0):
            off = _offsets(p, rng, scale)
            correct, finite = p.count_correct(small_ctx.x[:50], small_ctx.y[:50], off)
            # base + offset in float64, rounded once, for the trainable variables; the rest as stored
            perturbed = iter([(b.astype(np.float64) + o).astype(np.float32) for b, o in zip(p.base, off)])
            twin.set_weights([next(perturbed) if id(v) in trainable else w
                              for v, w in zip(small_ctx.model.weights, small_ctx.model.get_weights())])
            out = twin.predict(small_ctx.x[:50], verbose=0)
            assert finite and correct == int(np.sum(np.argmax(out, 1) == small_ctx.y[:50]))
        huge = [np.full(w.shape, np.inf) for w in p.base]
        assert p.count_correct(small_ctx.x, small_ctx.y, huge)[1] is False
    np.testing.assert_array_equal(small_ctx.model.get_weights()[0], small_ctx.weights()[0])


def test_sign_ascent_step_equals_a_step_taken_by_hand(small_ctx):
    rng = np.random.default_rng(2)
    x, y = small_ctx.x[:40], small_ctx.y[:40]
    with small_ctx.perturbation() as p:
        u = np.concatenate([o.ravel() for o in _offsets(p, rng, 0.01)])
        box = np.abs(u) * 1.5 + 1e-3
        fused = p.sign_ascent_step(u, box, x, y, step=0.5)
        # by hand: set base + u, gradient with a tape on the model itself, numpy step and clip
        p.set_offsets(u)
        with tf.GradientTape() as tape:
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, small_ctx.model(x, training=False))
        grads = tape.gradient(loss, small_ctx.model.trainable_variables)
        g = np.concatenate([np.asarray(gv).ravel() for gv in grads])
        expected = np.clip(u + 0.5 * box * np.sign(g), -box, box)
    np.testing.assert_array_equal(fused, expected)
    assert np.all(np.abs(fused) <= box)
    assert not math.isnan(float(fused.sum()))


def _step_by_hand(ctx, p, u, box, x, y):
    """One ascent step with a tape on the model itself at base + u, numpy step and clip."""
    p.set_offsets(u)
    with tf.GradientTape() as tape:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, ctx.model(x, training=False))
    grads = tape.gradient(loss, ctx.model.trainable_variables)
    g = np.concatenate([np.asarray(gv).ravel() for gv in grads])
    return np.clip(u + 0.5 * box * np.sign(g), -box, box)


def test_ascent_steps_chain_equals_steps_taken_by_hand(small_ctx, monkeypatch):
    """Three steps on three batches: one call of the architecture's compiled loss gradient per step,
    each step from the last one's result, batches of one size or not."""
    rng = np.random.default_rng(12)
    batches = [(small_ctx.x[i:i + 30], small_ctx.y[i:i + 30]) for i in (0, 30, 60)]
    with small_ctx.perturbation() as p:
        u0 = np.concatenate([o.ravel() for o in _offsets(p, rng, 0.01)])
        box = np.abs(u0) * 2 + 1e-3
        calls = []
        gradient = p._traces.loss_gradient
        monkeypatch.setattr(p._traces, "loss_gradient", lambda *a: (calls.append(len(a[3])), gradient(*a))[1])
        fused = p.sign_ascent_steps(u0, box, batches)
        assert calls == [30, 30, 30]
        # the variables were not assigned: the model's own weights are still the trained ones
        np.testing.assert_array_equal(small_ctx.model.get_weights()[0], small_ctx.weights()[0])
        current = p._current.copy()  # the point of the last gradient
        last_start = _by_hand_chain(small_ctx, p, u0, box, batches[:2])
        np.testing.assert_array_equal(current, last_start)
        expected = _step_by_hand(small_ctx, p, last_start, box, *batches[2])
        uneven = p.sign_ascent_steps(u0, box, [batches[0], batches[1], (small_ctx.x[60:80], small_ctx.y[60:80])])
        assert calls == [30, 30, 30, 30, 30, 20]
        np.testing.assert_array_equal(uneven, _step_by_hand(small_ctx, p, last_start, box, small_ctx.x[60:80],
                                                            small_ctx.y[60:80]))
    np.testing.assert_array_equal(fused, expected)
    assert np.all(np.abs(fused) <= box)


def _by_hand_chain(ctx, p, u, box, batches):
    for x, y in batches:
        u = _step_by_hand(ctx, p, u, box, x, y)
    return u


def test_engine_answers_over_at_once_when_the_perturbed_model_outputs_nan(small_ctx):
    from gen_measures.measures.perturbation import PerturbationEngine

    classify = displacement_class(TARGET, TOL)
    with PerturbationEngine(small_ctx) as engine:
        passes = engine.passes
        nan = [np.full(w.shape, np.nan) for w in engine.base]
        decision = engine.decide([lambda: nan] * 10, classify)
        assert decision.answer == OVER and decision.drop == math.inf and decision.estimate == math.inf
        assert decision.draws == 1 and not decision.complete
        assert engine.passes - passes <= 32 / len(small_ctx.y) + 1e-12  # one batch evaluated, then stopped
    np.testing.assert_array_equal(small_ctx.model.get_weights()[0], small_ctx.weights()[0])


def test_searches_take_the_trained_accuracy_from_the_cached_outputs(small_ctx):
    """The engine's base accuracy given from ctx.logits() equals the one it measures itself (one pass saved)."""
    from gen_measures.measures.perturbation import PerturbationEngine

    idx = np.arange(0, small_ctx.n_samples, 3)
    with PerturbationEngine(small_ctx) as measured, PerturbationEngine(small_ctx, acc0=small_ctx.accuracy(warn=False)) as given:
        assert given.acc0 == measured.acc0 and given.passes == 0 < measured.passes
    with PerturbationEngine(small_ctx, small_ctx.x[idx], small_ctx.y[idx]) as subset:
        assert small_ctx.accuracy(idx, warn=False) == subset.acc0
    by_hand = np.mean(np.argmax(small_ctx.model.predict(small_ctx.x, verbose=0), 1) == small_ctx.y)
    assert small_ctx.accuracy() == pytest.approx(by_hand, abs=1e-12)


def test_sharpness_attacks_start_from_one_random_direction_at_every_scale(small_ctx, monkeypatch):
    """Common random numbers: the start of the ascent at scale alpha is alpha times one fixed vector."""
    from gen_measures.measures import sharpness as sharpness_module
    from gen_measures.measures.perturbation import PerturbationEngine

    calls = []
    original = PerturbationEngine.ascent

    def spy(self, u, box, batches, step=0.5):
        calls.append((u.copy(), box.copy(), len(batches)))
        return original(self, u, box, batches, step)

    monkeypatch.setattr(PerturbationEngine, "ascent", spy)
    with PerturbationEngine(small_ctx) as engine:
        result = sharpness_module.worst_case_sharpness(
            engine, np.random.default_rng(3), lambda step: (small_ctx.x[:32], small_ctx.y[:32]), ascent_steps=2)
    assert result.evaluations == len(calls) >= 2 and {n for _, _, n in calls} == {2}  # both steps in one call
    # start / box is the same vector at every scale (the box is alpha (|w| + eps))
    ratio0 = calls[0][0] / calls[0][1]
    for u, box, _ in calls[1:]:
        np.testing.assert_allclose(u / box, ratio0, rtol=1e-9, atol=1e-12)
    assert np.all(np.abs(ratio0) <= 0.5) and np.std(ratio0) > 0.1  # uniform in [-0.5, 0.5] of the box


def test_count_correct_many_equals_one_call_per_offset(small_ctx):
    rng = np.random.default_rng(5)
    x, y = small_ctx.x[:60], small_ctx.y[:60]
    with small_ctx.perturbation() as p:
        offsets = [_offsets(p, rng, scale) for scale in (0.0, 0.05, 0.3, 1.0, 3.0)]
        offsets.insert(2, [np.full(w.shape, np.nan) for w in p.base])
        hits, finite = p.count_correct_many(x, y, offsets)
        one_by_one = [p.count_correct(x, y, o) for o in offsets]
    assert hits.tolist() == [h for h, _ in one_by_one]
    assert finite.tolist() == [f for _, f in one_by_one] == [True, True, False, True, True, True]
    np.testing.assert_array_equal(small_ctx.model.get_weights()[0], small_ctx.weights()[0])


@pytest.mark.parametrize("sigma", [0.0, 0.02, 0.08, 0.3, 2.0])
def test_draws_evaluated_in_groups_decide_as_one_call_per_draw(small_ctx, sigma, monkeypatch):
    """Same answer, bounds and draw count whether the engine groups draws per call or not."""
    from gen_measures.measures import perturbation

    rng = np.random.default_rng(6)
    z = [np.concatenate([rng.standard_normal(w.size) for w in small_ctx.perturbation().base]) for _ in range(10)]
    draws = [lambda zi=zi: sigma * zi for zi in z]
    classify = displacement_class(TARGET, TOL)
    results = {}
    for grouping in ((perturbation.FIRST_CHUNK, perturbation.CHUNK), (1, 1)):  # as shipped / one draw per call
        monkeypatch.setattr(perturbation, "FIRST_CHUNK", grouping[0])
        monkeypatch.setattr(perturbation, "CHUNK", grouping[1])
        with perturbation.PerturbationEngine(small_ctx, batch_size=small_ctx.n_samples) as engine:
            calls = []
            many = engine._p.count_correct_many
            engine._p.count_correct_many = lambda x, y, offs: (calls.append(len(offs)), many(x, y, offs))[1]
            results[grouping] = (engine.decide(draws, classify), calls, engine.passes)
    (grouped, calls, passes), (single, single_calls, single_passes) = results.values()
    assert (grouped.answer, grouped.bounds, grouped.draws, grouped.complete) == (
        single.answer, single.bounds, single.draws, single.complete)
    assert grouped.drop == single.drop or (math.isnan(grouped.drop) and math.isnan(single.drop))
    assert single_calls == [1] * single.draws and single_passes == pytest.approx(1 + single.draws)
    assert calls[0] == min(2, 10) and all(c <= 4 for c in calls[1:]) and sum(calls) >= grouped.draws
    assert passes == pytest.approx(1 + sum(calls))


def test_groups_of_draws_are_bounded_by_the_offsets_memory_cap(small_ctx, monkeypatch):
    """A network too large for several offset vectors in one call gets one draw per call, same answer."""
    from gen_measures.measures import perturbation

    rng = np.random.default_rng(8)
    size = small_ctx.perturbation().size
    z = [rng.standard_normal(size) for _ in range(10)]
    draws = [lambda zi=zi: 0.05 * zi for zi in z]
    classify = displacement_class(TARGET, TOL)
    decisions, calls = [], []
    for cap in (perturbation._MAX_CHUNK_ELEMENTS, size):  # as shipped / room for one offset vector only
        monkeypatch.setattr(perturbation, "_MAX_CHUNK_ELEMENTS", cap)
        with perturbation.PerturbationEngine(small_ctx, batch_size=small_ctx.n_samples) as engine:
            seen = []
            many = engine._p.count_correct_many
            engine._p.count_correct_many = lambda x, y, offs: (seen.append(len(offs)), many(x, y, offs))[1]
            decisions.append(engine.decide(draws, classify))
            calls.append(seen)
    assert max(calls[0]) > 1 and set(calls[1]) == {1}
    assert (decisions[0].answer, decisions[0].bounds, decisions[0].draws) == (
        decisions[1].answer, decisions[1].bounds, decisions[1].draws)


def test_sharpness_search_passes_its_options_to_the_search(small_ctx, monkeypatch):
    """sharpness_search(ctx, **options) is the measure's search with worst_case_sharpness options
    (what benchmarks/bench_sharpness_variants.py compares): one ascent step means one gradient
    call per attack; the default, two."""
    from gen_measures.context import WeightPerturbation
    from gen_measures.measures.sharpness import sharpness_search

    steps: list[int] = []
    original = WeightPerturbation.sign_ascent_steps

    def counted(self, u, box, batches, step=0.5):
        steps.append(len(batches))
        return original(self, u, box, batches, step)

    monkeypatch.setattr(WeightPerturbation, "sign_ascent_steps", counted)
    one = sharpness_search(small_ctx, ascent_steps=1)
    assert steps == [1] * one.evaluations and one.evaluations >= 1
    steps.clear()
    default = sharpness_search(small_ctx)
    assert steps == [2] * default.evaluations
