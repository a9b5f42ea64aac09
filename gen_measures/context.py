"""ModelContext: everything a measure may look at, for one model of one task.

A measure is a pure function of a context. The context holds the trained model, the fixed
training sample (the same indices for every model of a task, chosen in
:mod:`gen_measures.sampling`), the weights and initial weights as numpy arrays, and caches
of inference-mode forward passes shared by all measures of the model. A per-task cache
(``task_cache``) lets measures share task-level quantities (e.g. the data P-vector).

Contexts are built either from a PGDL task (:meth:`ModelContext.from_task`, used by the
runner) or from a plain Keras model with numpy data (:meth:`ModelContext.from_keras`).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gen_measures.errors import DataError, MeasureError, ModelLoadError, NotApplicableError
from gen_measures.numerics.classification import accuracy
from gen_measures.sampling import DEFAULT_SEED

DEFAULT_BATCH_SIZE = 256

#: The feature-layer rule (documented once, used by P-vectors, compression, discrimination, VPM).
FEATURE_LAYER_RULE = (
    "penultimate features = the input of the classifier, i.e. of the last layer with a kernel "
    "(Dense or Conv); when that input is spatial (a 1x1-conv head before global average pooling, "
    "as in Network-in-Network) it is averaged over positions, which makes the logits a linear "
    "function of the features exactly as for a Dense head"
)


def _is_kernel(variable) -> bool:
    name = getattr(variable, "path", None) or variable.name
    return "kernel" in name.split("/")[-1]


def kernel_layer_indices(model) -> list[int]:
    """Indices (in ``model.layers``) of the layers with a kernel: Dense and Conv, in order."""
    return [i for i, layer in enumerate(model.layers) if any(_is_kernel(v) for v in layer.weights)]


def classifier_layer_index(model, label: str = "model") -> int:
    """Index of the classifier, the last layer with a kernel (:data:`FEATURE_LAYER_RULE`).

    Raises :class:`NotApplicableError` (naming ``label``) when the model has no Dense or Conv layer.
    """
    indices = kernel_layer_indices(model)
    if not indices:
        raise NotApplicableError(f"{label}: the model has no Dense or Conv layer")
    return indices[-1]


def pooled_features(classifier_input: np.ndarray) -> np.ndarray:
    """Penultimate features from a batch of the classifier's input (:data:`FEATURE_LAYER_RULE`).

    A spatial input ``(m, ..., C)`` is averaged over its positions to ``(m, C)``; a flat
    ``(m, d)`` input is returned unchanged.
    """
    f = np.asarray(classifier_input)
    return f.mean(axis=tuple(range(1, f.ndim - 1))) if f.ndim > 2 else f


def layer_output_model(model, outputs: list, label: str = "model") -> Any:
    """A Keras model from ``model``'s input to ``outputs`` (symbolic tensors of its layers).

    Raises :class:`MeasureError` (naming ``label``) when the model has no symbolic graph
    (e.g. a subclassed model, or a ``Sequential`` built without ``keras.Input``).
    """
    import keras

    try:
        return keras.Model(inputs=model.inputs[0], outputs=outputs)
    except (AttributeError, ValueError, TypeError, IndexError) as exc:
        raise MeasureError(
            f"{label}: cannot read intermediate layers of this model ({exc}); build it with keras.Input"
        ) from None


def task_sample(task, sample_size: int | None, seed: int = DEFAULT_SEED, *, return_size: bool = False) -> tuple:
    """The task's training sample ``(x, y)``: seeded, class-stratified, the same for every model.

    The labels are read first (the inputs are not decoded), the indices chosen by
    :func:`gen_measures.sampling.stratified_sample_indices`, then only those examples decoded.
    ``return_size=True`` gives ``(x, y, n_train)``, ``n_train`` the number of examples of the
    whole training split (known from the labels at no extra cost).
    """
    from gen_measures.io.tfrecords import read_labels, read_split
    from gen_measures.sampling import stratified_sample_indices

    split = task.split_dir("train")
    labels, sizes = read_labels(split, shard_sizes=True)
    idx = stratified_sample_indices(labels, sample_size, seed)
    chosen = read_split(split, idx, shard_sizes=sizes)
    return (chosen.x, chosen.y, int(len(labels))) if return_size else (chosen.x, chosen.y)


#: :func:`release_keras_state` runs a full garbage collection once every this many calls.
COLLECT_EVERY = 16
_releases = 0


def release_keras_state() -> None:
    """Free Keras' global state between models so memory does not grow with the zoo.

    Keras' own ``clear_session`` runs a full garbage collection every time, 0.25 s with
    TensorFlow's heap loaded (as long as a small model's measures); here the state is cleared
    every call and the collection runs once every :data:`COLLECT_EVERY` calls, which keeps the
    memory flat (``benchmarks/bench_memory.py``).

    ``clear_session`` also empties TensorFlow's eager kernel cache, which holds the instantiated
    compiled functions: every function traced for an architecture and shared by its models
    (:mod:`gen_measures.traces`) would be instantiated again on its next call, 0.1-0.3 s per
    function and model on the bundled zoo (more than the PAC-Bayes search's own forward
    passes). The cache is kept (:func:`_keeping_kernel_cache`); the functions of models that are
    gone free their kernels when they are garbage-collected.
    """
    import gc

    import keras

    global _releases
    _releases += 1
    with _keeping_kernel_cache():
        try:
            keras.backend.clear_session(free_memory=False)
        except TypeError:  # a Keras 3 without the argument always collects
            keras.backend.clear_session()
            return
    if _releases % COLLECT_EVERY == 0:
        gc.collect()


def _eager_context():
    """TensorFlow's eager context (its private API), or ``None`` where it cannot be reached."""
    try:
        from tensorflow.python.eager import context as eager
        ectx = eager.context()
        ectx.clear_kernel_cache  # noqa: B018 - the attribute must exist to be shadowed
    except Exception:  # noqa: BLE001 - a TensorFlow without it: clear_session as it is
        return None
    return ectx


@contextlib.contextmanager
def _keeping_kernel_cache():
    """Make TensorFlow's ``clear_kernel_cache`` a no-op within the block (nothing changes where
    the eager context cannot be reached, :func:`_eager_context`)."""
    ectx = _eager_context()
    if ectx is None:
        yield
        return
    ectx.clear_kernel_cache = lambda: None
    try:
        yield
    finally:
        del ectx.clear_kernel_cache


def require_samples(ctx: ModelContext, what: str) -> None:
    """Raise :class:`DataError` when ``ctx`` holds no training sample (a data-free context)."""
    if ctx.n_samples == 0:
        raise DataError(f"{what} needs training data, but the context of {ctx.label} holds no sample")


@dataclass
class LayerStatistics:
    """Streaming statistics of one Dense/Conv layer's output over the sample (float64).

    ``covariance``: channelwise (every spatial position of a conv output is one sample of C
    channels); ``covariance_gap``: of the globally average-pooled output (conv only, else the
    same as ``covariance``); ``scatter``: class scatter of the flattened output (``None`` for
    the classifier, whose outputs are the logits).
    """

    name: str
    index: int
    kind: str  # "dense" or "conv"
    width: int
    covariance: Any
    covariance_gap: Any
    scatter: Any = None
    details: dict[str, Any] = field(default_factory=dict)


class ModelContext:
    """The model, its sample and cached quantities, as measures see them.

    Parameters
    ----------
    model : a built Keras model (inference is always run with ``training=False``).
    x, y : the training sample (float32 inputs, integer labels).
    model_id, task_name : identifiers for messages.
    initial_weights : arrays in ``model.get_weights()`` order, or ``None`` when unknown.
    seed : base seed; :meth:`rng` derives one generator per purpose from it.
    batch_size : batch size of forward passes.
    task_cache : a dict shared by all models of the task.
    n_classes : number of classes the model predicts (default: its output width,
        ``model.output_shape[-1]``). Not the labels' ``max + 1``
        (:func:`gen_measures.numerics.classification.label_class_count`, a dataset's count): a
        sample may lack classes the model predicts.
    n_train : number of examples of the whole training set, the ``m`` of generalization bounds
        (default: the sample's size, i.e. the sample is the training set).
    """

    def __init__(
        self,
        model,
        x: np.ndarray,
        y: np.ndarray,
        *,
        model_id: str = "model",
        task_name: str = "task",
        initial_weights: Sequence[np.ndarray] | None = None,
        seed: int = DEFAULT_SEED,
        batch_size: int = DEFAULT_BATCH_SIZE,
        task_cache: dict[str, Any] | None = None,
        n_classes: int | None = None,
        n_train: int | None = None,
    ) -> None:
        self.model = model
        self.x = np.asarray(x, dtype=np.float32)
        self.y = np.asarray(y).astype(np.int64).reshape(-1)
        if self.x.shape[0] != self.y.shape[0]:
            raise DataError(f"x has {self.x.shape[0]} rows but y has {self.y.shape[0]} labels")
        self.model_id = str(model_id)
        self.task_name = str(task_name)
        self.seed = int(seed)
        self.batch_size = int(batch_size)
        self.task_cache: dict[str, Any] = task_cache if task_cache is not None else {}
        self.n_classes = int(n_classes) if n_classes is not None else int(model.output_shape[-1])
        self.n_train = int(n_train) if n_train is not None else int(self.y.shape[0])
        if self.n_train < self.y.shape[0]:
            raise DataError(f"{self.label}: n_train={self.n_train} is smaller than the sample ({self.y.shape[0]} examples)")
        if self.y.size and (self.y.min() < 0 or self.y.max() >= self.n_classes):
            raise DataError(f"{self.label}: training labels span [{int(self.y.min())}, {int(self.y.max())}] but the model "
                            f"has {self.n_classes} outputs (labels must be 0 .. {self.n_classes - 1})")
        self._initial = None if initial_weights is None else [np.asarray(w) for w in initial_weights]
        self._initial_path = None
        self._cache: dict[str, Any] = {}
        if self._initial is not None:
            self._check_initial_shapes()

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_keras(
        cls,
        model,
        x: np.ndarray,
        y: np.ndarray,
        *,
        initial_weights: Sequence[np.ndarray] | None = None,
        **kwargs: Any,
    ) -> ModelContext:
        """A context for a plain Keras model and numpy data (no PGDL folder needed)."""
        return cls(model, x, y, initial_weights=initial_weights, **kwargs)

    @classmethod
    def from_task(
        cls,
        task,
        model_id: str,
        sample: tuple[np.ndarray, np.ndarray] | None = None,
        *,
        load_initial: bool = True,
        **kwargs: Any,
    ) -> ModelContext:
        """A context for ``model_<id>`` of a PGDL :class:`~gen_measures.io.pgdl.Task`.

        ``sample`` is the task's ``(x, y)`` sample (see :func:`task_sample`); ``None`` gives a
        data-free context. Initial weights are read when ``load_initial`` and the file exists.
        """
        model = task.load_model(model_id)
        if sample is None:
            x, y = np.zeros((0,) + tuple(model.input_shape[1:]), np.float32), np.zeros(0, np.int64)
        else:
            x, y = sample
        ctx = cls(model, x, y, model_id=model_id, task_name=task.name, **kwargs)
        if load_initial and task.has_initial_weights(model_id):
            # read when a measure first asks: a broken weights_init.hdf5 is the error of the
            # measures that need it, not of the whole model
            ctx._initial_path = task.weights_path(model_id, initial=True)
        return ctx

    # -- identification -------------------------------------------------------------------
    @property
    def label(self) -> str:
        return f"{self.task_name}/model_{self.model_id}"

    @property
    def n_samples(self) -> int:
        return int(self.y.shape[0])

    def rng(self, purpose: str) -> np.random.Generator:
        """A generator seeded by ``(seed, purpose)``: independent per measure, stable across runs."""
        digest = hashlib.sha256(f"{self.seed}:{purpose}".encode()).digest()
        return np.random.default_rng(int.from_bytes(digest[:8], "little"))

    def memo(self, key: Any, compute: Any) -> Any:
        """``compute()`` once per context and ``key`` (lets measures share derived quantities)."""
        key = ("memo", key)
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def task_memo(self, key: Any, compute: Any) -> Any:
        """``compute()`` once per task and ``key`` (e.g. the data P-vector, shared augmentations)."""
        if key not in self.task_cache:
            self.task_cache[key] = compute()
        return self.task_cache[key]

    # -- weights ----------------------------------------------------------------------------
    def weights(self) -> list[np.ndarray]:
        """Every weight array (trainable and not) in ``model.get_weights()`` order."""
        if "weights" not in self._cache:
            self._cache["weights"] = [np.asarray(w) for w in self.model.get_weights()]
        return self._cache["weights"]

    def kernel_indices(self) -> list[int]:
        """Positions (in :meth:`weights` order) of the Dense/Conv kernels."""
        return [i for i, v in enumerate(self.model.weights) if _is_kernel(v) and v.trainable]

    def kernels(self) -> list[np.ndarray]:
        """The trained kernels of Dense/Conv layers (no biases, no normalisation parameters)."""
        w = self.weights()
        return [w[i] for i in self.kernel_indices()]

    @property
    def has_initial_weights(self) -> bool:
        return self._initial is not None or self._initial_path is not None

    def initial_weights(self) -> list[np.ndarray]:
        """Initial weights in :meth:`weights` order; :class:`MeasureError` when the model has none.

        From a task, the file is read on first use, after its shapes (HDF5 metadata) are checked
        against the model; a broken file raises :class:`ModelLoadError` naming it.
        """
        if self._initial is None and self._initial_path is not None:
            from gen_measures.io.keras_models import check_keras2_weights, read_keras2_weights

            check_keras2_weights(self.model, self._initial_path)
            self._initial = [np.asarray(w) for w in read_keras2_weights(self._initial_path)]
            self._check_initial_shapes()
        if self._initial is None:
            raise MeasureError(f"{self.label}: no initial weights (weights_init.hdf5) for this model")
        return self._initial

    def initial_kernels(self) -> list[np.ndarray]:
        w0 = self.initial_weights()
        return [w0[i] for i in self.kernel_indices()]

    def _check_initial_shapes(self) -> None:
        current = [tuple(v.shape) for v in self.model.weights]
        given = [tuple(w.shape) for w in self._initial]
        if current != given:
            raise ModelLoadError(
                f"{self.label}: initial weights have shapes {given[:4]}... but the model has {current[:4]}..."
                if len(given) > 4
                else f"{self.label}: initial weights have shapes {given} but the model has {current}"
            )

    # -- forward passes ------------------------------------------------------------------------
    def predict(self, x: np.ndarray, batch_size: int | None = None, *, repeated: bool = False) -> np.ndarray:
        """Model outputs (as the last layer returns them) for ``x``, inference mode, in batches
        of ``batch_size`` (default: the context's), through the architecture's compiled forward
        pass (:meth:`traces`: traced once per architecture and process). For a model without
        ``stateless_call``, the model's own pass, eager for a few calls and then compiled;
        ``repeated=True`` (the caller will call again many times) compiles it at once."""
        x = np.asarray(x, dtype=np.float32)
        traces = self.traces()
        if traces is not None:
            trainable, non_trainable = self.variable_values()
            outs = [np.asarray(traces.forward(trainable, non_trainable, x[sl])) for sl in self._batches(x, batch_size)]
        else:
            forward = self._compiled("forward", lambda: self.model)
            outs = [np.asarray(forward(x[sl], compiled=repeated)) for sl in self._batches(x, batch_size)]
        return np.concatenate(outs) if outs else np.zeros((0, self.n_classes), np.float32)

    def traces(self):
        """The :class:`~gen_measures.traces.ArchitectureTraces` of this model: compiled forward
        passes traced once per architecture and process, shared by every model of that
        architecture (``None`` for a model without Keras 3's ``stateless_call``)."""
        if "traces" not in self._cache:
            from gen_measures.traces import traces_for

            self._cache["traces"] = traces_for(self.model)
        return self._cache["traces"]

    def variable_values(self) -> tuple[list, list]:
        """The model's trainable and non-trainable variables (TensorFlow variables, read when a
        compiled function is called with them), in Keras' order."""
        return ([_tf_variable(v) for v in self.model.trainable_variables],
                [_tf_variable(v) for v in self.model.non_trainable_variables])

    def logits(self) -> np.ndarray:
        """Outputs on the sample (cached)."""
        if "logits" not in self._cache:
            self._cache["logits"] = self.predict(self.x)
        return self._cache["logits"]

    def accuracy(self, idx: np.ndarray | None = None, *, warn: bool = True) -> float:
        """Accuracy of the trained weights on the sample, or on its rows ``idx``, from the cached
        outputs (:meth:`logits`; :func:`~gen_measures.numerics.classification.accuracy`): NaN for
        non-finite outputs, with a warning unless ``warn=False`` (the perturbation searches,
        for which a non-finite model is an expected outcome)."""
        logits, y = self.logits(), self.y
        if idx is not None:
            logits, y = logits[idx], y[idx]
        return accuracy(logits, y, warn=warn)

    def perturbation(self) -> WeightPerturbation:
        """A :class:`WeightPerturbation` of this model (use it in a ``with`` block)."""
        return WeightPerturbation(self)

    # -- layers ----------------------------------------------------------------------------------
    def weighted_layer_indices(self) -> list[int]:
        """Indices (in ``model.layers``) of the layers with a kernel: Dense and Conv, in order."""
        return kernel_layer_indices(self.model)

    def classifier_index(self) -> int:
        """Index of the classifier: the last layer with a kernel (see :data:`FEATURE_LAYER_RULE`)."""
        return classifier_layer_index(self.model, self.label)

    def _compiled(self, key: str, build: Any) -> Any:
        """A cached :class:`_LazyCompiled` runner of ``build()`` (a Keras model), inference mode."""
        cache_key = ("compiled", key)
        if cache_key not in self._cache:
            self._cache[cache_key] = _LazyCompiled(build(), tuple(self.model.input_shape[1:]))
        return self._cache[cache_key]

    def _extractor(self, outputs: list) -> Any:
        return layer_output_model(self.model, outputs, self.label)

    def _batches(self, x: np.ndarray, batch_size: int | None = None):
        step = int(batch_size or self.batch_size)
        for start in range(0, x.shape[0], step):
            yield slice(start, start + step)

    def _feature_pass(self) -> None:
        """One pass over the sample: logits and penultimate features (cached together)."""
        require_samples(self, "the penultimate features")
        ci = self.classifier_index()
        extractor = self._compiled(
            "features", lambda: self._extractor([self.model.layers[ci].input, self.model.layers[-1].output])
        )
        feats, logits = [], []
        for sl in self._batches(self.x):
            f, out = extractor(self.x[sl])
            feats.append(pooled_features(f))
            logits.append(np.asarray(out))
        self._cache["features"] = np.concatenate(feats).astype(np.float32, copy=False)
        self._cache.setdefault("logits", np.concatenate(logits))

    def penultimate_features(self) -> np.ndarray:
        """The ``n x d`` penultimate features of the sample (see :data:`FEATURE_LAYER_RULE`), cached."""
        if "features" not in self._cache:
            self._feature_pass()
        return self._cache["features"]

    def layer_statistics(self) -> list[LayerStatistics]:
        """Streaming statistics of every Dense/Conv layer's output (one pass, cached).

        Memory: one batch of the layer outputs plus the accumulators (C x C covariances and
        per-class sums), whatever the number of layers.
        """
        if "layer_stats" in self._cache:
            return self._cache["layer_stats"]
        from gen_measures.numerics.scatter import ClassScatterAccumulator
        from gen_measures.numerics.spectra import StreamingCovariance

        require_samples(self, "layer statistics")
        indices = self.weighted_layer_indices()
        ci = indices[-1] if indices else None
        layers = [self.model.layers[i] for i in indices]
        extractor = self._compiled("layers", lambda: self._extractor([layer.output for layer in layers]))
        stats: list[LayerStatistics] = []
        for sl in self._batches(self.x):
            outs = extractor(self.x[sl])
            outs = outs if isinstance(outs, (list, tuple)) else [outs]
            for j, out in enumerate(outs):
                out = np.asarray(out)
                if len(stats) <= j:
                    width = int(out.shape[-1])
                    cov = StreamingCovariance(width)
                    stats.append(LayerStatistics(
                        name=layers[j].name, index=indices[j], kind="conv" if out.ndim > 2 else "dense", width=width,
                        covariance=cov, covariance_gap=StreamingCovariance(width) if out.ndim > 2 else cov,
                        scatter=None if indices[j] == ci else ClassScatterAccumulator(int(np.prod(out.shape[1:])), self.n_classes),
                    ))
                st = stats[j]
                st.covariance.update(out.reshape(-1, st.width))
                if out.ndim > 2:
                    st.covariance_gap.update(out.mean(axis=tuple(range(1, out.ndim - 1))))
                if st.scatter is not None:
                    st.scatter.update(out.reshape(out.shape[0], -1), self.y[sl])
        self._cache["layer_stats"] = stats
        return stats


class _LazyCompiled:
    """Run a Keras model eagerly for its first calls, then as a traced ``tf.function``.

    Tracing costs 0.1-0.3 s per model, more than one pass over a small sample, so passes that
    run once (the feature and layer-statistics extractors, the training callback's) stay eager;
    repeated passes are compiled after :attr:`EAGER_CALLS` calls. (A model's own forward pass
    goes through :mod:`gen_measures.traces` instead, traced once per architecture.) The batch dimension is
    left open in the signature, so a short last batch does not trigger a retrace.
    """

    EAGER_CALLS = 4

    def __init__(self, net: Any, input_shape: tuple) -> None:
        self.net = net
        self.input_shape = input_shape
        self.calls = 0
        self.traced = None

    def __call__(self, x: np.ndarray, compiled: bool = False) -> Any:
        self.calls += 1
        if self.calls <= self.EAGER_CALLS and not compiled and self.traced is None:
            return self.net(x, training=False)
        if self.traced is None:
            import tensorflow as tf

            net = self.net
            spec = tf.TensorSpec((None, *self.input_shape), tf.float32)
            self.traced = tf.function(lambda t: net(t, training=False), input_signature=[spec])
        return self.traced(x)


def _tf_variable(var: Any) -> Any:
    """The ``tf.Variable`` holding a Keras variable's value (Keras 3's TensorFlow backend keeps
    one in ``.value``; tf_keras variables are ``tf.Variable`` themselves)."""
    import tensorflow as tf

    inner = getattr(var, "value", None)
    return inner if isinstance(inner, tf.Variable) else var


class WeightPerturbation:
    """Evaluate a model at perturbed trainable weights; the original weights come back on exit.

    Used as ``with ctx.perturbation() as p: p.set_offsets(deltas); p.accuracy()``. Offsets
    are numpy arrays shaped like :attr:`base` (the trainable weights: kernels, biases,
    normalisation scales and shifts), or one flat vector in that order; :meth:`loss_gradient`
    gives the cross-entropy gradient at the current weights, so measures can search
    perturbations without importing TensorFlow.

    The searches' inner loops use :meth:`count_correct` (count the correct predictions of a
    batch at ``base + offsets``), :meth:`count_correct_many` (several offsets in one call) and
    :meth:`sign_ascent_steps` (steps inside a box along the sign of the loss gradient at
    ``base + u``): each calls functions compiled once per architecture and process
    (:mod:`gen_measures.traces`) that take the weights as arguments, so none traces per model
    nor assigns the model's variables (:meth:`count_correct` goes through the forward pass every
    run has already traced, the ascent through the architecture's loss gradient).
    :meth:`set_offsets` assigns them (for :meth:`accuracy` and any use of the model itself); the
    offsets last given to any of these are the *current* ones.
    """

    def __init__(self, ctx: ModelContext) -> None:
        import tensorflow as tf

        self.ctx = ctx
        self.variables = list(ctx.model.trainable_variables)
        self.base = [np.asarray(v.numpy()) for v in self.variables]
        # the TensorFlow variables behind Keras 3's (an assignment through Keras costs twice as much)
        self._targets = [_tf_variable(v) for v in self.variables]
        self._traces = ctx.traces()
        if self._traces is None:
            raise MeasureError(f"{ctx.label}: weight perturbations need a Keras 3 model (with stateless_call); "
                               f"got a {type(ctx.model).__module__}.{type(ctx.model).__name__}")
        self._base_tensors = [tf.constant(w) for w in self.base]
        self._base_flat = np.concatenate([w.astype(np.float64).ravel() for w in self.base]) if self.base else np.zeros(0)
        self._current = np.zeros(self.size)
        self._applied: np.ndarray | None = None  # the offsets the variables hold (None: base)
        self._at: tuple[np.ndarray, list[np.ndarray]] | None = None  # (offsets, the weights there)

    def __enter__(self) -> WeightPerturbation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.restore()

    @property
    def size(self) -> int:
        """Number of trainable scalars (the length of a flat offset vector)."""
        return int(sum(w.size for w in self.base))

    def _flat(self, offsets: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """``offsets`` (shaped like :attr:`base`, or one flat vector) as one flat float64 vector."""
        if isinstance(offsets, np.ndarray) and offsets.ndim == 1 and offsets.size == self.size:
            return offsets.astype(np.float64, copy=False)
        return np.concatenate([np.asarray(d, np.float64).reshape(-1) for d in offsets]) if len(offsets) else np.zeros(0)

    def set_offsets(self, offsets: Sequence[np.ndarray] | np.ndarray) -> None:
        """Set every trainable variable of the model to ``base + offset``: ``offsets`` shaped like
        :attr:`base`, or one flat vector of :attr:`size` entries in that order. The sum is taken
        in float64 and rounded once to the variable's dtype. (Plain per-variable assignments: a
        compiled assignment costs a trace, 0.1-0.2 s, more than a whole search's assignments.)"""
        flat = self._current = self._applied = self._flat(offsets)
        for var, value in zip(self._targets, self.weights_at(flat)):
            var.assign(value, read_value=False)

    def _sync(self) -> None:
        """Assign the current offsets to the model's variables if they hold others."""
        if self._current is not self._applied and (self._applied is not None or np.any(self._current)):
            self.set_offsets(self._current)

    def weights_at(self, offsets: np.ndarray) -> list[np.ndarray]:
        """The trainable weights ``base + offsets`` (a flat float64 vector), each sum taken in
        float64 and rounded once to the weight's dtype (what :meth:`set_offsets` assigns)."""
        return [part.astype(w.dtype) for part, w in zip(self._split(self._base_flat + offsets), self.base)]

    def _split(self, flat: np.ndarray) -> list[np.ndarray]:
        """A flat vector in the order of :attr:`base` as arrays shaped like its weights (views)."""
        sizes = np.cumsum([w.size for w in self.base])[:-1]
        return [part.reshape(w.shape) for part, w in zip(np.split(flat, sizes), self.base)]

    def _current_weights(self, offsets: Sequence[np.ndarray] | np.ndarray | None) -> list[np.ndarray]:
        """:meth:`weights_at` the given offsets, which become the current ones; ``None``: at the
        current offsets, built once for the batches that follow a perturbation's first."""
        if offsets is not None or self._at is None or self._at[0] is not self._current:
            if offsets is not None:
                self._current = self._flat(offsets)
            self._at = (self._current, self.weights_at(self._current))
        return self._at[1]

    def count_correct(self, x: np.ndarray, y: np.ndarray,
                      offsets: Sequence[np.ndarray] | np.ndarray | None = None) -> tuple[int, bool]:
        """``(correct predictions on (x, y), every output finite)`` at ``base + offsets`` (the
        same rounding as :meth:`set_offsets`), or at the current offsets when ``offsets`` is
        ``None``. One call of the architecture's compiled forward pass with those weights as
        arguments (the pass :meth:`ModelContext.predict` traces); the model's variables are not
        assigned."""
        weights = self._current_weights(offsets)
        _, non_trainable = self.ctx.variable_values()
        out = np.asarray(self._traces.forward(weights, non_trainable, x))
        finite = bool(np.isfinite(out).all())
        hits = int(np.count_nonzero(np.argmax(out, axis=1) == np.asarray(y))) if len(out) else 0
        return hits, finite

    def count_correct_many(self, x: np.ndarray, y: np.ndarray,
                           offsets: Sequence[Sequence[np.ndarray] | np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`count_correct` at ``base + o`` for each ``o`` of ``offsets``, in one call of the
        architecture's compiled function: ``(correct per offset, finite per offset)``. The last
        offsets become the current ones."""
        if not len(offsets):
            return np.zeros(0, np.int64), np.zeros(0, bool)
        flat = np.stack([self._flat(o) for o in offsets])
        self._current = flat[-1]
        _, non_trainable = self.ctx.variable_values()
        return self._traces.count_correct_many(self._base_tensors, flat, non_trainable, x, y)

    def sign_ascent_step(self, u: np.ndarray, box: np.ndarray, x: np.ndarray, y: np.ndarray,
                         step: float = 0.5) -> np.ndarray:
        """One projected sign-gradient ascent step of the loss on ``(x, y)`` from offset ``u`` in
        the box ``|u_i| <= box_i`` (flat float64 vectors): ``clip(u + step * box * sign(grad),
        -box, box)`` with the gradient at ``base + u`` (which become the current offsets)
        (:meth:`sign_ascent_steps` with one batch)."""
        return self.sign_ascent_steps(u, box, [(x, y)], step)

    def sign_ascent_steps(self, u: np.ndarray, box: np.ndarray, batches: Sequence[tuple[np.ndarray, np.ndarray]],
                          step: float = 0.5) -> np.ndarray:
        """:meth:`sign_ascent_step` once per ``(x, y)`` of ``batches``, each from the previous
        step's result: one call of the architecture's compiled loss gradient per step (the
        weights as arguments; the model's variables are not assigned), the step itself in
        float64 numpy. The point of the last gradient becomes the current offsets."""
        u = self._flat(u)
        box = self._flat(box)
        _, non_trainable = self.ctx.variable_values()
        for x, y in batches:
            _, grad = self._traces.loss_gradient(self._current_weights(u), non_trainable, x, y)
            u = np.clip(u + step * box * np.sign(grad.astype(np.float64)), -box, box)
        return u

    def restore(self) -> None:
        """Put the trained weights back (the current offsets become zero)."""
        self._current = np.zeros(self.size)
        if self._applied is not None:
            for var, w in zip(self._targets, self.base):
                var.assign(w, read_value=False)
            self._applied = None

    def accuracy(self, x: np.ndarray | None = None, y: np.ndarray | None = None) -> float:
        """Accuracy at the current weights (default: on the context's sample).

        NaN, without a warning, when the perturbed model outputs NaN or inf (an expected
        outcome of a perturbation search; :func:`gen_measures.numerics.classification.accuracy`).
        """
        self._sync()
        x = self.ctx.x if x is None else x
        y = self.ctx.y if y is None else y
        return accuracy(self.ctx.predict(x), y, warn=False)

    def loss_gradient(self, x: np.ndarray, y: np.ndarray) -> tuple[float, list[np.ndarray]]:
        """Mean cross-entropy at the current weights and its gradient w.r.t. the trainable weights
        (shaped like :attr:`base`), through the architecture's compiled loss gradient."""
        _, non_trainable = self.ctx.variable_values()
        loss, grad = self._traces.loss_gradient(self._current_weights(None), non_trainable, x, y)
        return loss, [part.astype(w.dtype) for part, w in zip(self._split(grad), self.base)]
