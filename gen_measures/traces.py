"""Compiled forward passes shared by every model of one architecture.

Tracing a Keras model into a ``tf.function`` costs 0.1-0.5 s, more than a whole pass over a
small sample and, in a zoo run, more than the perturbation searches that need the compiled
functions. A zoo, though, holds few architectures (the bundled one 8 per task, 4 models each):
:class:`ArchitectureTraces` traces a model's functions once with its weights as *arguments*
(Keras 3's ``stateless_call``), so every later model of the same architecture in the process
calls the same traced graph with its own weights and pays no trace.

* :meth:`ArchitectureTraces.forward`: outputs for given weight values (inference mode).
* :meth:`ArchitectureTraces.count_correct_many`: correct predictions and finiteness at
  ``base + offsets`` for several offsets in one call (float64 sums rounded once to each
  weight's dtype, as :meth:`~gen_measures.context.WeightPerturbation.set_offsets` does), without
  assigning any variable.
* :meth:`ArchitectureTraces.loss_gradient`: the cross-entropy and its gradient (one flat vector)
  for given weight values; the sharpness ascent takes its steps from it in numpy.

A single perturbation is counted with :meth:`~ArchitectureTraces.forward` (the graph every run
traces anyway for the model's outputs), so a measure that evaluates one perturbation at a time
adds no trace of its own; each traced function costs 0.2-0.8 s on its first call (tracing and
graph optimisation: measured on the bundled zoo's models, 15-70 warm forward passes).

:func:`traces_for` returns the shared object of a model's architecture: the key is the model's
layer classes and configurations (layer names excluded), input shape and variables' shapes,
dtypes and trainability, for a ``keras.Sequential`` of built-in Keras layers (a custom layer may
hold state its configuration does not show, so such models get their own, unshared object).
At most :data:`MAX_ARCHITECTURES` architectures, whose templates hold at most
:data:`MAX_TEMPLATE_WEIGHTS` weights in all, are kept per process (least recently used out).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any

import numpy as np

__all__ = ["ArchitectureTraces", "MAX_ARCHITECTURES", "MAX_TEMPLATE_WEIGHTS", "architecture_key", "traces_for"]

#: Architectures whose traced functions a process keeps (least recently used dropped first).
MAX_ARCHITECTURES = 32
#: ... and at most this many weights held by their template models in all (a zoo of large,
#: all-different networks keeps fewer).
MAX_TEMPLATE_WEIGHTS = 50_000_000

_SHARED: OrderedDict[tuple, ArchitectureTraces] = OrderedDict()
_LOCK = threading.Lock()


def architecture_key(model) -> tuple | None:
    """A hashable description of everything that determines ``model``'s function given its
    weights, or ``None`` when the model is not a ``keras.Sequential`` of built-in Keras layers
    (its traces are then not shared)."""
    import keras

    if type(model) is not keras.Sequential:
        return None
    layers = []
    for layer in model.layers:
        cls = type(layer)
        if not cls.__module__.startswith("keras."):
            return None
        config = dict(layer.get_config())
        config.pop("name", None)
        try:
            text = json.dumps(config, sort_keys=True)
        except (TypeError, ValueError):
            return None  # a configuration that is not plain data cannot be compared safely
        layers.append((cls.__module__, cls.__qualname__, text))
    variables = tuple((tuple(v.shape), str(v.dtype), bool(v.trainable)) for v in model.variables)
    return tuple(model.input_shape), tuple(layers), variables


def traces_for(model) -> ArchitectureTraces | None:
    """The :class:`ArchitectureTraces` of ``model``'s architecture (shared within the process
    when :func:`architecture_key` gives a key, else a new one for this model), or ``None`` for a
    model without Keras 3's ``stateless_call`` (e.g. a ``tf_keras`` model)."""
    if not callable(getattr(model, "stateless_call", None)):
        return None
    key = architecture_key(model)
    if key is None:
        return ArchitectureTraces(model)
    with _LOCK:
        traces = _SHARED.get(key)
        if traces is None:
            traces = _SHARED[key] = ArchitectureTraces(model)
            while len(_SHARED) > 1 and (len(_SHARED) > MAX_ARCHITECTURES
                                        or sum(t.weights for t in _SHARED.values()) > MAX_TEMPLATE_WEIGHTS):
                _SHARED.popitem(last=False)
        else:
            _SHARED.move_to_end(key)
        return traces


def _from_logits(model) -> bool:
    return getattr(getattr(model.layers[-1], "activation", None), "__name__", "") != "softmax"


class ArchitectureTraces:
    """Traced functions of one architecture, called with the weights of any model that has it.

    ``template`` is the model the functions are traced with (kept alive; its own variables are
    never read). Weight arguments are sequences in the order of ``model.trainable_variables``
    and ``model.non_trainable_variables`` (numpy arrays, tensors or variables). Each function
    is traced on its first call, with the batch dimension left open.
    """

    def __init__(self, template) -> None:
        self.template = template
        self.input_shape = tuple(template.input_shape[1:])
        self._trainable = [(tuple(v.shape), v.dtype) for v in template.trainable_variables]
        self._non_trainable = [(tuple(v.shape), v.dtype) for v in template.non_trainable_variables]
        self.size = int(sum(np.prod(s, dtype=np.int64) for s, _ in self._trainable))
        #: Weights the template holds (trainable and not).
        self.weights = self.size + int(sum(np.prod(s, dtype=np.int64) for s, _ in self._non_trainable))
        self.from_logits = _from_logits(template)
        self._fns: dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def traced(self) -> frozenset[str]:
        """Names of the functions built so far (``"forward"``, ``"count_correct_many"``,
        ``"loss_gradient"``; each is built by its first call, which traces it at once): a measure
        that adds a name paid for its trace."""
        return frozenset(self._fns)

    # -- the traced graphs --------------------------------------------------------------------
    def _specs(self):
        import tensorflow as tf

        return ([tf.TensorSpec(s, d) for s, d in self._trainable], [tf.TensorSpec(s, d) for s, d in self._non_trainable],
                tf.TensorSpec((None, *self.input_shape), tf.float32))

    def _perturbed(self, base, offsets):
        """``base + offsets`` in float64, rounded once to each weight's dtype (graph code)."""
        import tensorflow as tf

        out, start = [], 0
        for w, (shape, _) in zip(base, self._trainable):
            n = int(np.prod(shape, dtype=np.int64))
            part = tf.reshape(offsets[start:start + n], shape)
            out.append(tf.cast(tf.cast(w, tf.float64) + part, w.dtype))
            start += n
        return out

    def _outputs(self, trainable, non_trainable, x):
        out, _ = self.template.stateless_call(list(trainable), list(non_trainable), x, training=False)
        return out

    def _fn(self, name: str):
        fn = self._fns.get(name)
        if fn is not None:
            return fn
        with self._lock:
            if name not in self._fns:
                self._fns[name] = getattr(self, f"_build_{name}")()
            return self._fns[name]

    def _build_forward(self):
        import tensorflow as tf

        return tf.function(self._outputs, input_signature=list(self._specs()), autograph=False)

    def _count(self, base, offsets, non_trainable, xb, yb):
        """Correct predictions and finiteness at ``base + offsets`` (graph code)."""
        import tensorflow as tf

        out = self._outputs(self._perturbed(base, offsets), non_trainable, xb)
        hits = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(out, axis=1), yb), tf.int64))
        return hits, tf.reduce_all(tf.math.is_finite(out))

    def _build_count_correct_many(self):
        import tensorflow as tf

        trainable, non_trainable, x = self._specs()

        def many(base, offsets, non_trainable, xb, yb):
            # one graph for several perturbations: the per-call cost is paid once (measured 1.7-1.8x
            # faster than one call per perturbation on the bundled zoo's models)
            return tf.map_fn(lambda o: self._count(base, o, non_trainable, xb, yb), offsets,
                             fn_output_signature=(tf.int64, tf.bool), parallel_iterations=4)

        return tf.function(many, autograph=False, input_signature=[
            trainable, tf.TensorSpec([None, self.size], tf.float64), non_trainable, x, tf.TensorSpec([None], tf.int64)])

    def _build_loss_gradient(self):
        import keras
        import tensorflow as tf

        trainable, non_trainable, x = self._specs()
        loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=self.from_logits)

        def gradient(trainable, non_trainable, xb, yb):
            weights = list(trainable)
            with tf.GradientTape() as tape:
                tape.watch(weights)
                loss = loss_fn(yb, self._outputs(weights, non_trainable, xb))
            grads = tape.gradient(loss, weights, unconnected_gradients=tf.UnconnectedGradients.ZERO)
            return loss, tf.concat([tf.cast(tf.reshape(g, [-1]), tf.float32) for g in grads], 0)

        return tf.function(gradient, autograph=False,
                           input_signature=[trainable, non_trainable, x, tf.TensorSpec([None], tf.int64)])

    # -- calls ----------------------------------------------------------------------------------
    def forward(self, trainable, non_trainable, x: np.ndarray):
        """The outputs (a tensor) for inputs ``x`` at the given weights, inference mode."""
        return self._fn("forward")(list(trainable), list(non_trainable), np.asarray(x, np.float32))

    def count_correct_many(self, base, offsets: np.ndarray, non_trainable, x: np.ndarray,
                           y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Correct predictions on ``(x, y)`` and finiteness of the outputs at ``base + o`` for each
        row ``o`` of ``offsets`` (``(k, size)`` float64, in the order of ``base``), in one call:
        ``(correct predictions per row, every output finite per row)``."""
        hits, finite = self._fn("count_correct_many")(list(base), np.asarray(offsets, np.float64), list(non_trainable),
                                                      np.asarray(x, np.float32), np.asarray(y, np.int64))
        return np.asarray(hits, np.int64), np.asarray(finite, bool)

    def loss_gradient(self, trainable, non_trainable, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        """The mean cross-entropy on ``(x, y)`` at the given weights and its gradient with
        respect to the trainable ones, as one flat float32 vector in their order (zero for a
        weight the loss does not depend on)."""
        loss, grad = self._fn("loss_gradient")(list(trainable), list(non_trainable), np.asarray(x, np.float32),
                                               np.asarray(y, np.int64))
        return float(loss), grad.numpy()
