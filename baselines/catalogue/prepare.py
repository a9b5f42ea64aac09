"""Shared preparation of the measure catalogue: BatchNorm folding, layer matrices, margin, size adjustment.

Every catalogue measure (Jiang et al. 2019, appendix C, as re-implemented by Dziugaite et al.
2020) sees the network through this module:

* **BatchNorm folding** (:func:`fold_batchnorm`, the reference's ``_reparam``). In inference
  mode a ``BatchNormalization`` layer is the per-channel affine map ``x -> a x + b`` with
  ``a = gamma / sqrt(moving_variance + epsilon)`` and ``b = beta - a * moving_mean``. The
  reference folds it into the preceding convolution (its networks are conv -> BN -> ReLU).
  Here each BN layer is folded where that is *exact*, in this order of preference:

  1. **backward**, into the preceding Dense/Conv layer when that layer has a linear activation
     and only inference identities (``Dropout``, ``SpatialDropout2D``, ``GaussianNoise``, a
     linear ``Activation``, or BN layers already folded into it) sit between them (the
     reference's rule): ``W' = diag(a) W``, ``c' = a c + b`` (per output unit);
  2. **forward**, into the next Dense/Conv layer when the path to it holds only inference
     identities, ``Flatten``, average pooling and, when every ``a >= 0``, max pooling (all of
     which commute with a per-channel affine map), and that layer is Dense or a Conv2D that
     pads nothing (``padding="valid"`` or a 1x1 kernel): ``W' = W diag(a)``, ``c' = c + W b``;
  3. otherwise the BN layer is **kept** as a per-channel affine layer (:attr:`FoldedLayer.kind`
     ``"affine"``): the kernel measures then ignore it (kernels only, as the reference's
     ``'bn'`` blacklist) and the path norm squares its ``a`` and ``b``.

  Keras models usually put the ReLU *inside* the convolution (``Conv2D(activation="relu")``
  then BN, as the sample zoo's NiN, :func:`gen_measures.io.zoo.nin_layers`), so rule 1 rarely
  applies; rule 2 covers its "conv(relu) -> BN -> 1x1 conv" exactly. A conv(relu) -> BN ->
  3x3 "same" conv (zero padding of ``a x + b`` is not ``a`` times the zero padding of ``x``)
  is rule 3. Every measure stays finite in each case. Which rule each BN layer followed is in
  :attr:`FoldedNetwork.folds` (and in the measures' details). The rules are decided on the
  trained weights and applied unchanged to the initial weights (the reference folds the
  initial network too), so trained and initial layers always pair up.
* **Weights** = the folded kernels only (no biases, no BN parameters), each as a matrix with one
  row per output unit (:meth:`FoldedLayer.matrix`: Dense ``(in, out) -> (out, in)``, Conv2D
  ``(kh, kw, cin, cout) -> (cout, kh * kw * cin)``); ``d`` = their number; ``m`` =
  ``ctx.n_train``, the training split's size.
* **Margin** (:func:`margin_quantile`): ``|k-th smallest margin|``, margin = true logit minus
  the largest other logit, ``k = m_s // 10`` (1-based; at least 1) over the ``m_s`` examples of
  the training sample: the 10th percentile, as the reference's ``kthvalue(m // 10)`` over its
  whole training set. The absolute value is the reference's (a model below 90 % training
  accuracy has a negative 10th percentile). Computed on the model's outputs (logits for
  PGDL models) in the context's cache; the folded network gives the same logits.
* **Dataset-size adjustment** (:func:`size_adjusted`), as the reference: ``0.5 (v - log m)``
  for the ``log_*`` measures, ``sqrt(v / m)`` for the others.

The numerics are numpy (float64); only :func:`folded_model` builds a Keras model (the twin
used by the path norm), importing Keras lazily.

References
----------
Jiang, Y., Neyshabur, B., Mobahi, H., Krishnan, D. & Bengio, S. (2020). "Fantastic
generalization measures and where to find them." ICLR; arXiv:1912.02178, appendix C.
Dziugaite, G. K., Drouin, A., Neal, B., Rajkumar, N., Caballero, E., Wang, L., Mitliagkas, I.
& Roy, D. M. (2020). "In search of robust measures of generalization." NeurIPS;
arXiv:2010.11924; https://github.com/nitarshan/robust-generalization-measures
(``data/generation/measures.py``: ``_reparam``, ``_margin``, ``adjust_measure``).
Ioffe, S. & Szegedy, C. (2015). "Batch normalization." ICML; arXiv:1502.03167.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from gen_measures.context import kernel_layer_indices, require_samples
from gen_measures.errors import DataError, DegenerateInputWarning, NotApplicableError

REFERENCE = (
    "Jiang et al. 2020, 'Fantastic generalization measures and where to find them', ICLR, arXiv:1912.02178 "
    "(appendix C); as re-implemented by Dziugaite et al. 2020, 'In search of robust measures of generalization', "
    "arXiv:2010.11924, github.com/nitarshan/robust-generalization-measures"
)

KERNEL_LAYERS = ("Dense", "Conv2D")
#: Layers that are the identity in inference mode.
IDENTITY_LAYERS = ("Dropout", "SpatialDropout2D", "GaussianNoise")
#: Layers that commute with a per-channel affine map (max pooling only for non-negative scales).
AVERAGING_LAYERS = ("Flatten", "AveragePooling2D", "GlobalAveragePooling2D")
MAX_LAYERS = ("MaxPooling2D", "GlobalMaxPooling2D")


@dataclass(frozen=True)
class FoldedLayer:
    """One Dense/Conv layer of the folded network (or a kept BN layer, ``kind="affine"``).

    ``kernel`` and ``bias`` are float64 in Keras layout (Dense ``(in, out)``, Conv2D
    ``(kh, kw, cin, cout)``); for ``"affine"`` they are the per-channel scale ``a`` and shift
    ``b``. ``input_shape`` is the per-example input shape of the layer (no batch axis).
    """

    index: int
    name: str
    kind: str  # "dense", "conv" or "affine"
    kernel: np.ndarray
    bias: np.ndarray
    input_shape: tuple[int, ...]
    dilation: tuple[int, int] = (1, 1)

    def matrix(self) -> np.ndarray:
        """The kernel as a matrix with one row per output unit (Dense ``(out, in)``, Conv ``(cout, kh*kw*cin)``)."""
        if self.kind == "conv":
            return np.moveaxis(self.kernel, -1, 0).reshape(self.kernel.shape[-1], -1)
        if self.kind == "dense":
            return self.kernel.T
        raise ValueError(f"{self.name}: a kept BatchNormalization layer has no kernel matrix")


@dataclass(frozen=True)
class FoldedNetwork:
    """The network with its BN layers folded: :attr:`layers` in model order, :attr:`folds` per BN layer."""

    layers: list[FoldedLayer]
    folds: dict[str, str] = field(default_factory=dict)

    @property
    def kernel_layers(self) -> list[FoldedLayer]:
        """The Dense/Conv layers (the "weights" of the catalogue), in depth order."""
        return [layer for layer in self.layers if layer.kind != "affine"]

    @property
    def names(self) -> list[str]:
        return [layer.name for layer in self.kernel_layers]

    def matrices(self) -> list[np.ndarray]:
        return [layer.matrix() for layer in self.kernel_layers]


# ----------------------------------------------------------------------------- folding
def _type(layer) -> str:
    return type(layer).__name__


def _is_linear(layer) -> bool:
    return getattr(getattr(layer, "activation", None), "__name__", "") == "linear"


def _is_identity(layer) -> bool:
    return _type(layer) in IDENTITY_LAYERS or (_type(layer) == "Activation" and _is_linear(layer))


def _input_shapes(model) -> list[tuple[int, ...]]:
    """Per-example input shape of every layer of a chain model, from ``model.input_shape``."""
    shape = tuple(model.input_shape)
    out = []
    for layer in model.layers:
        out.append(tuple(int(s) for s in shape[1:]))
        shape = tuple(layer.compute_output_shape(shape))
    return out


def _layer_arrays(model, weights: Sequence[np.ndarray] | None) -> list[dict[str, np.ndarray]]:
    """Per layer, ``{variable name: float64 array}`` from ``weights`` (``model.get_weights()`` order)."""
    weights = list(model.get_weights()) if weights is None else list(weights)
    out, pos = [], 0
    for layer in model.layers:
        names = [v.name.split("/")[-1].split(":")[0] for v in layer.weights]
        out.append({n: np.asarray(w, dtype=np.float64) for n, w in zip(names, weights[pos:pos + len(names)])})
        pos += len(names)
    if pos != len(weights):
        raise ValueError(f"fold_batchnorm: {len(weights)} weight arrays for a model holding {pos}")
    return out


def batchnorm_affine(layer, arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``(a, b)`` of an inference-mode BN layer: ``a = gamma / sqrt(var + eps)``, ``b = beta - a * mean``."""
    var, mean = arrays["moving_variance"], arrays["moving_mean"]
    a = arrays.get("gamma", np.ones_like(var)) / np.sqrt(var + float(layer.epsilon))
    return a, arrays.get("beta", np.zeros_like(mean)) - a * mean


def _check_layers(model, shapes: list, label: str) -> None:
    if not kernel_layer_indices(model):
        raise NotApplicableError(f"{label}: the model has no Dense or Conv layer")
    for layer, shape in zip(model.layers, shapes):
        kind = _type(layer)
        if layer.weights and kind not in KERNEL_LAYERS + ("BatchNormalization",):
            raise NotApplicableError(f"{label}: layer {layer.name!r} ({kind}) holds weights; the catalogue handles "
                                     "Dense, Conv2D and BatchNormalization layers only")
        if kind == "Conv2D" and layer.data_format != "channels_last":
            raise NotApplicableError(f"{label}: layer {layer.name!r} is channels_first; channels_last is required")
        if kind == "BatchNormalization" and (not isinstance(layer.axis, int) or layer.axis % (len(shape) + 1) != len(shape)):
            raise NotApplicableError(f"{label}: layer {layer.name!r} normalises axis {layer.axis}, not the channels (last) axis")


def _backward_target(model, j: int, folded_back: set[int]) -> int | None:
    """Index of the kernel layer BN ``j`` folds into backward (rule 1), or ``None``."""
    i = j - 1
    while i >= 0 and (_is_identity(model.layers[i]) or i in folded_back):
        i -= 1
    if i >= 0 and _type(model.layers[i]) in KERNEL_LAYERS and _is_linear(model.layers[i]):
        return i
    return None


def _forward_target(model, j: int, a: np.ndarray, shapes: list) -> tuple[int, int] | None:
    """``(index, repeat)`` of the kernel layer BN ``j`` folds into forward (rule 2), or ``None``.

    ``repeat`` is how often the channel pattern repeats in that layer's input (a ``Flatten``
    of ``(h, w, C)`` makes it ``h * w``, channels fastest).
    """
    repeat = 1
    for i in range(j + 1, len(model.layers)):
        layer, kind = model.layers[i], _type(model.layers[i])
        if kind == "Dense" or (kind == "Conv2D" and (layer.padding == "valid" or tuple(layer.kernel_size) == (1, 1))):
            return i, repeat
        if kind == "Flatten":
            repeat *= math.prod(shapes[i][:-1])
        elif not (_is_identity(layer) or kind in AVERAGING_LAYERS or (kind in MAX_LAYERS and np.all(a >= 0))):
            return None
    return None


def folding_plan(model, weights: Sequence[np.ndarray] | None = None, label: str = "model") -> dict[int, tuple]:
    """For every BN layer index: ``("backward", i)``, ``("forward", i, repeat)`` or ``("kept",)``.

    Decided on ``weights`` (default: the model's own); see the module docstring for the rules.
    """
    shapes = _input_shapes(model)
    _check_layers(model, shapes, label)
    arrays = _layer_arrays(model, weights)
    plan: dict[int, tuple] = {}
    folded_back: set[int] = set()
    for j, layer in enumerate(model.layers):
        if _type(layer) != "BatchNormalization":
            continue
        back = _backward_target(model, j, folded_back)
        if back is not None:
            plan[j] = ("backward", back)
            folded_back.add(j)
            continue
        fwd = _forward_target(model, j, batchnorm_affine(layer, arrays[j])[0], shapes)
        plan[j] = ("forward", *fwd) if fwd is not None else ("kept",)
    return plan


def fold_batchnorm(model, weights: Sequence[np.ndarray] | None = None, *, plan: dict[int, tuple] | None = None,
                   label: str = "model") -> FoldedNetwork:
    """The folded network of ``model`` at ``weights`` (``model.get_weights()`` order; default the model's).

    ``plan`` (from :func:`folding_plan`) defaults to the plan of these weights; pass the trained
    weights' plan to fold the initial weights the same way. Raises
    :class:`~gen_measures.errors.NotApplicableError` for a model without Dense/Conv layers or
    with other weighted layers (depthwise/separable convs, layer normalisation).
    """
    plan = folding_plan(model, weights, label) if plan is None else plan
    arrays = _layer_arrays(model, weights)
    shapes = _input_shapes(model)
    kernels: dict[int, list[np.ndarray]] = {}
    for i, layer in enumerate(model.layers):
        if _type(layer) in KERNEL_LAYERS:
            k = arrays[i]["kernel"]
            kernels[i] = [k, arrays[i].get("bias", np.zeros(k.shape[-1]))]
    # input side first (forward folds), then output side (backward folds, in depth order)
    for j, step in sorted(plan.items()):
        if step[0] == "forward":
            a, b = (np.tile(v, step[2]) for v in batchnorm_affine(model.layers[j], arrays[j]))
            k, c = kernels[step[1]]
            kernels[step[1]] = [k * a[:, None], c + (k * b[:, None]).reshape(-1, k.shape[-1]).sum(axis=0)]
    for j, step in sorted(plan.items()):
        if step[0] == "backward":
            a, b = batchnorm_affine(model.layers[j], arrays[j])
            k, c = kernels[step[1]]
            kernels[step[1]] = [k * a, a * c + b]
    layers, folds = [], {}
    for i, layer in enumerate(model.layers):
        if i in kernels:
            kind = "dense" if _type(layer) == "Dense" else "conv"
            dilation = tuple(int(v) for v in layer.dilation_rate) if kind == "conv" else (1, 1)
            layers.append(FoldedLayer(i, layer.name, kind, kernels[i][0], kernels[i][1], shapes[i], dilation))
        elif i in plan:
            step = plan[i]
            if step[0] == "kept":
                a, b = batchnorm_affine(layer, arrays[i])
                layers.append(FoldedLayer(i, layer.name, "affine", a, b, shapes[i]))
                folds[layer.name] = "kept (no exact fold)"
            else:
                folds[layer.name] = f"{step[0]} into {model.layers[step[1]].name}"
    return FoldedNetwork(layers, folds)


def folded_model(model, network: FoldedNetwork | None = None, *,
                 transform: Callable[[np.ndarray], np.ndarray] | None = None, dtype: str = "float32"):
    """The folded twin of ``model``: the same layers without the folded BN layers, folded weights.

    Every Dense/Conv layer of the twin has a bias (zero where the original had none and no fold
    gave one); a kept BN layer is rebuilt as ``BatchNormalization(center=True, scale=True)``
    computing ``a x + b`` (weights ``(a sqrt(eps), b, 0, 0)``). ``transform`` is applied to
    every weight of the twin (``np.square`` gives the path norm's network); ``dtype`` is the
    twin's compute dtype. Only chain models (``keras.Sequential``) are supported.
    """
    import keras

    network = fold_batchnorm(model) if network is None else network
    if not isinstance(model, keras.Sequential):
        raise NotApplicableError(f"folded_model: {type(model).__name__} is not a keras.Sequential chain of layers")
    by_index = {layer.index: layer for layer in network.layers}
    transform = transform or (lambda v: v)
    new_layers, assignments = [], []
    for i, layer in enumerate(model.layers):
        if _type(layer) == "BatchNormalization" and i not in by_index:
            continue  # folded into a neighbour
        config = {**layer.get_config(), "dtype": dtype}
        if i in by_index:
            f = by_index[i]
            if f.kind == "affine":
                config.update(center=True, scale=True)
                eps = float(layer.epsilon)
                values = [transform(f.kernel) * math.sqrt(eps), transform(f.bias), np.zeros_like(f.bias), np.zeros_like(f.bias)]
            else:
                config["use_bias"] = True
                values = [transform(f.kernel), transform(f.bias)]
            assignments.append((len(new_layers), values))
        new_layers.append(type(layer).from_config(config))
    twin = keras.Sequential([keras.Input(shape=tuple(model.input_shape[1:]), dtype=dtype)] + new_layers)
    for pos, values in assignments:
        twin.layers[pos].set_weights([np.asarray(v, dtype=dtype) for v in values])
    return twin


# ----------------------------------------------------------------------------- margin, size
def margins(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per example, the true-class output minus the largest other output (float64)."""
    z = np.array(logits, dtype=np.float64)
    rows = np.arange(z.shape[0])
    true = z[rows, y].copy()
    z[rows, y] = -np.inf
    return true - z.max(axis=1)


def margin_quantile(logits: np.ndarray, y: np.ndarray) -> tuple[float, int]:
    """``(|k-th smallest margin|, k)`` with ``k = max(1, n // 10)`` (1-based) over the ``n`` examples.

    NaN (with a :class:`~gen_measures.errors.DegenerateInputWarning`) when an output is not finite.
    """
    values = margins(logits, y)
    k = max(1, values.size // 10)
    if not np.all(np.isfinite(values)):
        warnings.warn("the model outputs non-finite values on the training sample; the margin is NaN",
                      DegenerateInputWarning, stacklevel=2)
        return float("nan"), k
    return float(abs(np.partition(values, k - 1)[k - 1])), k


def size_adjusted(value: float, m: int, *, log: bool) -> float:
    """The reference's dataset-size adjustment: ``0.5 (v - log m)`` if ``log`` else ``sqrt(v / m)``."""
    if m < 1:
        raise DataError(f"the dataset-size adjustment needs the training set size m >= 1, got m = {m}")
    return 0.5 * (value - math.log(m)) if log else math.sqrt(value / m)


# ----------------------------------------------------------------------------- context adapters
def folded_network(ctx, *, initial: bool = False) -> FoldedNetwork:
    """The folded network of ``ctx`` at its trained (or initial) weights, computed once per context.

    The initial weights are folded with the trained weights' plan.
    """
    def compute() -> FoldedNetwork:
        plan = ctx.memo(("catalogue", "plan"), lambda: folding_plan(ctx.model, ctx.weights(), ctx.label))
        weights = ctx.initial_weights() if initial else ctx.weights()
        return fold_batchnorm(ctx.model, weights, plan=plan, label=ctx.label)

    return ctx.memo(("catalogue", "folded", initial), compute)


def catalogue_margin(ctx) -> dict:
    """``{"margin", "k", "n"}`` of the context's sample (:func:`margin_quantile`), computed once per context."""
    def compute() -> dict:
        require_samples(ctx, "the catalogue's margin")
        if ctx.n_classes < 2:
            raise NotApplicableError(f"{ctx.label}: the margin needs at least 2 outputs, the model has {ctx.n_classes}")
        gamma, k = margin_quantile(ctx.logits(), ctx.y)
        return {"margin": gamma, "k": k, "n": ctx.n_samples}

    return ctx.memo(("catalogue", "margin"), compute)
