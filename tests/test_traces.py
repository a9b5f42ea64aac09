"""Compiled functions shared by the models of one architecture (:mod:`gen_measures.traces`).

Each test builds its models here and compares the shared traced functions with the model's own
Keras call (eager, its own variables) or with numpy, so a function traced with one model and
called with another model's weights is checked against that other model.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from gen_measures import traces as traces_module
from gen_measures.context import ModelContext
from gen_measures.traces import architecture_key, traces_for


def _conv_bn(width: int = 3, seed: int = 0):
    """A small conv net with BatchNorm whose moving statistics are set to seeded values."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((6, 6, 2)), keras.layers.Conv2D(width, 3, activation="relu"),
                              keras.layers.BatchNormalization(), keras.layers.Flatten(), keras.layers.Dense(4)])
    rng = np.random.default_rng(seed)
    bn = model.layers[1]
    bn.moving_mean.assign(rng.normal(size=width).astype(np.float32))
    bn.moving_variance.assign(rng.uniform(0.5, 2.0, size=width).astype(np.float32))
    return model


def _data(n: int = 40, seed: int = 3):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 6, 6, 2)).astype(np.float32), rng.integers(0, 4, size=n)


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch):
    monkeypatch.setattr(traces_module, "_SHARED", type(traces_module._SHARED)())


def test_same_architecture_shares_one_trace_and_gives_each_models_own_outputs():
    a, b = _conv_bn(seed=0), _conv_bn(seed=1)
    x, _ = _data()
    shared = traces_for(a)
    assert traces_for(b) is shared
    for model in (a, b):
        ctx = ModelContext.from_keras(model, x, np.zeros(len(x), np.int64))
        assert ctx.traces() is shared
        np.testing.assert_allclose(ctx.predict(x, batch_size=16), np.asarray(model(x, training=False)), rtol=1e-6,
                                   atol=1e-6)
    assert shared._fns["forward"].experimental_get_tracing_count() == 1
    # the two models differ (weights and BatchNorm statistics), so equal outputs would mean shared weights
    assert not np.allclose(np.asarray(a(x, training=False)), np.asarray(b(x, training=False)))


def test_architectures_that_differ_get_different_keys():
    assert architecture_key(_conv_bn(width=3)) == architecture_key(_conv_bn(width=3, seed=5))
    assert architecture_key(_conv_bn(width=3)) != architecture_key(_conv_bn(width=4))
    relu = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="relu")])
    tanh = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="tanh")])
    assert architecture_key(relu) != architecture_key(tanh)
    wider_input = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3, activation="relu")])
    assert architecture_key(relu) != architecture_key(wider_input)


def test_models_that_cannot_be_compared_get_their_own_traces():
    class Scaled(keras.layers.Layer):  # hidden state: not in its config
        def __init__(self, factor=1.0, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

        def call(self, x):
            return self.factor * x

    def make(factor):
        return keras.Sequential([keras.Input((4,)), Scaled(factor), keras.layers.Dense(2)])

    one, two = make(1.0), make(3.0)
    assert architecture_key(one) is None
    assert traces_for(one) is not traces_for(two)
    x = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    for model in (one, two):
        ctx = ModelContext.from_keras(model, x, np.zeros(8, np.int64))
        np.testing.assert_allclose(ctx.predict(x), np.asarray(model(x)), rtol=1e-6, atol=1e-6)
    inputs = keras.Input((4,))
    functional = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    assert architecture_key(functional) is None


def test_at_most_max_architectures_are_kept(monkeypatch):
    monkeypatch.setattr(traces_module, "MAX_ARCHITECTURES", 2)
    models = [_conv_bn(width=w) for w in (2, 3, 4)]
    first = traces_for(models[0])
    traces_for(models[1])
    traces_for(models[2])
    assert len(traces_module._SHARED) == 2
    assert traces_for(_conv_bn(width=2, seed=9)) is not first  # dropped, traced again


def test_templates_hold_at_most_max_template_weights(monkeypatch):
    models = [_conv_bn(width=w) for w in (2, 3, 4)]
    sizes = [traces_for(m).weights for m in models[:1]]
    assert sizes[0] == sum(int(np.prod(v.shape)) for v in models[0].variables)
    monkeypatch.setattr(traces_module, "_SHARED", type(traces_module._SHARED)())
    monkeypatch.setattr(traces_module, "MAX_TEMPLATE_WEIGHTS", 2 * sizes[0] + 1)
    for m in models:
        traces_for(m)
    kept = list(traces_module._SHARED.values())
    assert sum(t.weights for t in kept) <= 2 * sizes[0] + 1 and kept[-1].template is models[-1]
    monkeypatch.setattr(traces_module, "MAX_TEMPLATE_WEIGHTS", 1)  # one architecture is always kept
    traces_for(models[0])
    assert len(traces_module._SHARED) == 1


def test_count_correct_leaves_the_variables_and_accuracy_sees_the_offsets():
    model = _conv_bn(seed=2)
    x, y = _data(60)
    ctx = ModelContext.from_keras(model, x, y)
    stored = [w.copy() for w in model.get_weights()]
    rng = np.random.default_rng(4)
    with ctx.perturbation() as p:
        off = 0.3 * rng.standard_normal(p.size)
        correct, finite = p.count_correct(x, y, off)
        for w, s in zip(model.get_weights(), stored):
            np.testing.assert_array_equal(w, s)  # nothing assigned
        assert finite and p.count_correct(x, y) == (correct, True)  # the current offsets
        assert p.accuracy(x, y) == correct / len(y)  # accuracy() assigns the current offsets first
        assert not all(np.array_equal(w, s) for w, s in zip(model.get_weights(), stored))
    for w, s in zip(model.get_weights(), stored):
        np.testing.assert_array_equal(w, s)  # restored


def test_a_second_model_of_the_architecture_perturbs_its_own_weights():
    """count_correct traced with model a, called for model b, equals b perturbed by hand."""
    a, b = _conv_bn(seed=0), _conv_bn(seed=1)
    x, y = _data(60)
    rng = np.random.default_rng(5)
    with ModelContext.from_keras(a, x, y).perturbation() as pa:
        pa.count_correct(x, y, np.zeros(pa.size))
    ctx = ModelContext.from_keras(b, x, y)
    twin = keras.models.clone_model(b)
    with ctx.perturbation() as p:
        assert p._traces is pa._traces
        for scale in (0.0, 0.2):
            off = scale * rng.standard_normal(p.size)
            correct, _ = p.count_correct(x, y, off)
            parts = iter(np.split(off, np.cumsum([w.size for w in p.base])[:-1]))
            trainable = {id(v) for v in b.trainable_variables}
            twin.set_weights([(w.astype(np.float64) + next(parts).reshape(w.shape)).astype(np.float32)
                              if id(v) in trainable else w for v, w in zip(b.weights, b.get_weights())])
            assert correct == int(np.sum(np.argmax(np.asarray(twin(x, training=False)), 1) == y))


def test_a_sharpness_search_traces_only_the_forward_pass_and_the_loss_gradient():
    """One perturbation at a time is counted with the forward pass every run traces anyway; the
    ascent adds the architecture's loss gradient and nothing else (each trace costs 0.2-0.8 s)."""
    from gen_measures.measures.perturbation import PerturbationEngine
    from gen_measures.measures.sharpness import worst_case_sharpness

    model = _conv_bn(seed=6)
    x, y = _data(80)
    ctx = ModelContext.from_keras(model, x, y, batch_size=32)
    ctx.logits()
    with PerturbationEngine(ctx) as engine:
        worst_case_sharpness(engine, np.random.default_rng(0), lambda step: (x[:32], y[:32]))
    fns = ctx.traces()._fns
    assert set(fns) == {"forward", "loss_gradient"} == ctx.traces().traced
    assert all(fn.experimental_get_tracing_count() == 1 for fn in fns.values())


def test_loss_gradient_at_the_current_offsets_equals_a_tape_on_the_perturbed_model():
    import tensorflow as tf

    model = _conv_bn(seed=7)
    x, y = _data(50)
    ctx = ModelContext.from_keras(model, x, y)
    off = 0.05 * np.random.default_rng(8).standard_normal(ctx.perturbation().size)
    with ctx.perturbation() as p:
        p.count_correct(x, y, off)  # the current offsets, not assigned to the variables
        loss, grads = p.loss_gradient(x, y)
        p.set_offsets(off)
        with tf.GradientTape() as tape:
            expected = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, model(x, training=False))
        by_hand = tape.gradient(expected, model.trainable_variables)
    assert loss == pytest.approx(float(expected), rel=1e-6)
    assert [g.shape for g in grads] == [w.shape for w in p.base]
    for g, h in zip(grads, by_hand):
        np.testing.assert_allclose(g, np.asarray(h), rtol=1e-5, atol=1e-7)


def test_perturbation_of_a_model_without_stateless_call_is_refused():
    tf_keras = pytest.importorskip("tf_keras")
    from gen_measures.errors import MeasureError

    model = tf_keras.Sequential([tf_keras.layers.Dense(3, input_shape=(4,))])
    x = np.zeros((5, 4), np.float32)
    ctx = ModelContext.from_keras(model, x, np.zeros(5, np.int64), model_id="legacy")
    assert ctx.traces() is None
    assert ctx.predict(x).shape == (5, 3)  # the model's own (lazily compiled) pass
    with pytest.raises(MeasureError, match="legacy.*Keras 3"):
        ctx.perturbation()


def test_release_clears_keras_state_every_time_and_collects_every_sixteenth(monkeypatch):
    import gc

    from gen_measures import context

    collections = []
    monkeypatch.setattr(gc, "collect", lambda *a: collections.append(1) or 0)
    monkeypatch.setattr(context, "_releases", 0)
    context.release_keras_state()  # names made before this test count on from earlier tests
    collections.clear()
    monkeypatch.setattr(context, "_releases", 0)
    names = []
    for _ in range(2 * context.COLLECT_EVERY):
        names.append(keras.layers.Dense(2).name)
        context.release_keras_state()
    assert set(names) == {names[0]}  # the name counter starts again after every release
    assert len(collections) == 2


def test_release_keeps_the_instantiated_shared_functions(monkeypatch):
    """Keras' clear_session would empty TensorFlow's kernel cache (every shared traced function
    instantiated again for the next model); the release keeps it, and only within its call."""
    from tensorflow.python.eager import context as eager

    from gen_measures import context

    ectx = eager.context()
    cleared = []
    monkeypatch.setattr(type(ectx), "clear_kernel_cache", lambda self: cleared.append(1))
    model = _conv_bn()
    x, y = _data()
    tr = traces_for(model)
    before = tr.forward(model.trainable_variables, model.non_trainable_variables, x).numpy()
    context.release_keras_state()
    assert cleared == []  # clear_session ran (the name counter test above) without clearing the cache
    ectx.clear_kernel_cache()
    assert cleared == [1]  # the method is back once the release is over
    np.testing.assert_array_equal(tr.forward(model.trainable_variables, model.non_trainable_variables, x).numpy(), before)


def test_release_without_tensorflows_eager_context_is_clear_session_as_it_is(monkeypatch):
    """Where TensorFlow's private eager context cannot be reached, the release clears Keras'
    state and the kernel cache as Keras does (nothing is shadowed, nothing fails)."""
    from tensorflow.python.eager import context as eager

    from gen_measures import context

    cleared = []
    monkeypatch.setattr(type(eager.context()), "clear_kernel_cache", lambda self: cleared.append(1))
    monkeypatch.setattr(context, "_eager_context", lambda: None)
    keras.layers.Dense(2)
    context.release_keras_state()
    first = keras.layers.Dense(2).name
    context.release_keras_state()
    assert keras.layers.Dense(2).name == first
    assert cleared == [1, 1]
