"""TensorFlow-backed helpers of the baselines: functions of a Keras model and numpy arrays.

Only the baselines use this module (no core measure does), so it lives beside them. Measure
modules never import TensorFlow; when a baseline needs gradients, intermediate layers,
``tf.image`` operations or an optimisation loop on the weights, its adapter calls one of the
functions below (importing this module lazily, inside the adapter). Every function takes numpy
arrays and returns numpy arrays or plain floats; randomness is never drawn here: the caller
passes the random parameters (drawn from a seeded numpy generator), so results are reproducible.

Every forward pass runs in inference mode (``training=False``: dropout off, batch-norm moving
statistics), as the originals did (a Keras model called without ``training`` is in inference
mode). Because every layer of these models then acts on each example independently, the
gradient of a batch-summed output is the stack of the per-example gradients: the batch
Jacobians below use that identity (one backward pass per output unit instead of one per
example and unit), which is exactly ``tf.GradientTape.batch_jacobian``'s result for such models.

Contents:

* :func:`layer_function` -- a compiled extractor of one layer's input or output;
* :func:`jacobian_norm_function` -- per-layer mean squared batch Jacobian of the outputs w.r.t.
  every layer's input (PGDL starting kit ``jacobian_norm``);
* :func:`margin_function` -- logit margins and their gradient norms at an intermediate layer
  (Natekar & Sharma's margin);
* :func:`natekar_augment`, :func:`aithal_augmentations` -- the augmentations of the 1st and 2nd
  place solutions, with caller-drawn parameters: ``tf.image`` semantics throughout, the
  operations shared with the core measure (flip, brightness, contrast, crop-and-resize) taken
  from :mod:`gen_measures.numerics.images`, the others (HSV hue and saturation, Sobel edges,
  central crop with padding) from ``tf.image``;
* :func:`loss_hessian_vector_product_function` -- Hessian-vector products of the mean
  cross-entropy over a sample w.r.t. all trainable weights (the curvature measures of
  :mod:`baselines.catalogue.curvature`);
* :func:`boxed_sgd_trial_function` -- one trial of the starting kit's sharpness search (SGD
  steps with the weights clipped to a box, then the outputs on an evaluation batch); the search
  itself is :func:`baselines.kit.kit_sharpness_search`.

References
----------
Jiang, Y. et al. (2020). "NeurIPS 2020 Competition: Predicting Generalization in Deep
Learning." arXiv:2012.07976; starting kit baselines. Natekar, P. & Sharma, M. (2020).
arXiv:2012.02775. Aithal, S. K., Kashyap, D. & Subramanyam, N. (2021). arXiv:2101.06459.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

from gen_measures.errors import MeasureError, NotApplicableError
from gen_measures.numerics.images import adjust_brightness, adjust_contrast, crop_and_resize, flip_left_right

__all__ = [
    "aithal_augmentations",
    "boxed_sgd_trial_function",
    "jacobian_norm_function",
    "layer_function",
    "loss_hessian_vector_product_function",
    "margin_function",
    "natekar_augment",
]


def _layer_index(model, index: int) -> int:
    n = len(model.layers)
    if not -n <= index < n:
        raise MeasureError(f"layer index {index} is out of range for a model with {n} layers")
    return index % n


def _batched(fn, x: np.ndarray, batch_size: int) -> np.ndarray:
    outs = [np.asarray(fn(tf.convert_to_tensor(x[s:s + batch_size], tf.float32))) for s in range(0, x.shape[0], batch_size)]
    return np.concatenate(outs) if outs else np.zeros((0,), np.float32)


def layer_function(model, index: int, *, which: str = "output", batch_size: int = 256) -> Callable[[np.ndarray], np.ndarray]:
    """A function ``x -> numpy`` giving the input or output of ``model.layers[index]`` (inference mode).

    The layers are applied one after the other (no functional sub-model is needed, so any built
    ``Sequential`` works). ``which`` is ``"output"`` (after a fused activation, as Keras defines
    the layer's output) or ``"input"``.
    """
    if which not in ("input", "output"):
        raise MeasureError(f"which must be 'input' or 'output', got {which!r}")
    idx = _layer_index(model, index)
    stop = idx + 1 if which == "output" else idx
    layers = list(model.layers[:stop])

    @tf.function(reduce_retracing=True)
    def run(x):
        h = x
        for layer in layers:
            h = layer(h, training=False)
        return h

    return lambda x: _batched(run, np.asarray(x, np.float32), batch_size)


def jacobian_norm_function(model) -> Callable[[np.ndarray], np.ndarray]:
    """A function ``x -> (n_layers,)``: per layer, the mean squared entry of the batch Jacobian.

    For a batch ``x`` of ``B`` examples and every layer ``l`` of ``model.layers`` (all of them,
    weightless ones such as Flatten, pooling and Dropout included, as the starting kit's
    wrapped layers recorded every layer's input), ``J_l`` is the ``B x K x dim(input_l)``
    Jacobian of the ``K`` model outputs of each example w.r.t. that example's input to layer
    ``l`` (``tf.GradientTape.batch_jacobian``); the value is ``mean(J_l ** 2)``.
    """
    layers = list(model.layers)

    @tf.function(reduce_retracing=True)
    def run(x):
        with tf.GradientTape(persistent=True) as tape:
            h = x
            inputs = []
            for layer in layers:
                tape.watch(h)
                inputs.append(h)
                h = layer(h, training=False)
            out = h
        n_out = out.shape[-1]
        sums = [tf.zeros((), tf.float32) for _ in inputs]
        for k in range(n_out):
            seed = tf.one_hot(tf.fill(tf.shape(out)[:1], k), n_out, dtype=out.dtype)
            grads = tape.gradient(out, inputs, output_gradients=seed,
                                  unconnected_gradients=tf.UnconnectedGradients.ZERO)
            sums = [s + tf.reduce_sum(tf.square(g)) for s, g in zip(sums, grads)]
        del tape
        sizes = [tf.cast(tf.size(t), tf.float32) * float(n_out) for t in inputs]
        return tf.stack([s / z for s, z in zip(sums, sizes)])

    return lambda x: np.asarray(run(tf.convert_to_tensor(np.asarray(x, np.float32))), dtype=np.float64)


def margin_function(model, layer_index: int) -> Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """A function ``(x, y) -> (numerator, grad_norm, h)`` for Natekar & Sharma's margin at a layer.

    ``h`` is the output of ``model.layers[layer_index]`` (flattened, one row per example) and
    ``z`` the model output. Per example, with ``(t1, t2)`` the two largest outputs: if
    ``t1 == y`` then ``(i, j) = (t1, t2)``, else ``(i, j) = (y, t1)`` (a negative margin);
    ``numerator = z_i - z_j`` and ``grad_norm = ||d(z_i - z_j)/dh||_2``.
    """
    idx = _layer_index(model, layer_index)
    head, tail = list(model.layers[: idx + 1]), list(model.layers[idx + 1:])

    @tf.function(reduce_retracing=True)
    def run(x, y):
        h = x
        for layer in head:
            h = layer(h, training=False)
        with tf.GradientTape() as tape:
            tape.watch(h)
            z = h
            for layer in tail:
                z = layer(z, training=False)
            top = tf.math.top_k(z, k=2).indices
            y32 = tf.cast(y, top.dtype)
            correct = tf.equal(top[:, 0], y32)
            i = tf.where(correct, top[:, 0], y32)
            j = tf.where(correct, top[:, 1], top[:, 0])
            zi = tf.gather(z, i, batch_dims=1)
            zj = tf.gather(z, j, batch_dims=1)
            diff = zi - zj
        grad = tape.gradient(diff, h, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        n = tf.shape(h)[0]
        grad_norm = tf.norm(tf.reshape(grad, [n, -1]), axis=1)
        return diff, grad_norm, tf.reshape(h, [n, -1])

    def call(x, y):
        x = tf.convert_to_tensor(np.asarray(x, np.float32))
        y = tf.convert_to_tensor(np.asarray(y, np.int64))
        num, norm, h = run(x, y)
        return np.asarray(num, np.float64), np.asarray(norm, np.float64), np.asarray(h)

    return call


def loss_hessian_vector_product_function(
    model,
    x: np.ndarray,
    y: np.ndarray,
    *,
    from_logits: bool = True,
    batch_size: int = 256,
) -> tuple[Callable[[np.ndarray], np.ndarray], int]:
    """``(hvp, dim)``: products with the Hessian of the mean training loss over ``(x, y)``.

    The loss is the mean sparse categorical cross-entropy of the model outputs (inference
    mode) over all ``n`` examples, ``L(theta) = (1/n) sum_i -log softmax(z_i)[y_i]``, as a
    function of the flattened vector ``theta`` of ``model.trainable_variables`` (in that
    order, each variable flattened row-major; ``dim`` its length). With
    ``from_logits=False`` the outputs are probabilities, taken as Keras does:
    ``z = log(clip(p, eps, 1 - eps))``.

    ``hvp(v)`` (``v`` of shape ``(dim,)``) returns ``H v`` in float64. It is computed by double
    backpropagation (the gradient of ``grad L . v``, nested ``tf.GradientTape``s; the fused
    ``tf.nn.sparse_softmax_cross_entropy_with_logits`` blocks second derivatives, so the loss is
    written with ``log_softmax``) in batches of ``batch_size``: every batch gives the Hessian of
    its mean loss in float32, and the batches are combined in float64 weighted by their sizes,
    ``H v = sum_b (n_b / n) H_b v``, which is the Hessian of the whole sample's mean loss
    (PyHessian's ``dataloader_hv_product``). One compiled function serves every batch and
    vector (the batch dimension is left open, so a short last batch does not retrace). Cost of
    one product: a forward and three backward-like passes over the sample (measured: 3-12
    compiled forward passes on the bundled zoo); tracing once, 0.3-1.3 s there.
    """
    import keras

    variables = list(model.trainable_variables)
    if not variables:
        raise NotApplicableError("the model has no trainable weights: its loss Hessian is empty")
    n = int(np.shape(y)[0])
    if n == 0:
        raise MeasureError("loss Hessian-vector products need at least one example, got an empty sample")
    shapes = [tuple(v.shape) for v in variables]
    sizes = [int(np.prod(s)) for s in shapes]
    dim = int(sum(sizes))
    eps = float(keras.config.epsilon())  # Keras's probability clip (1e-7 by default)

    @tf.function(input_signature=[
        tf.TensorSpec((None, *np.shape(x)[1:]), tf.float32),
        tf.TensorSpec((None,), tf.int64),
        tf.TensorSpec((dim,), tf.float32),
    ])
    def batch_hvp(xb, yb, v):
        parts = [tf.reshape(p, s) for p, s in zip(tf.split(v, sizes), shapes)]
        with tf.GradientTape() as outer:
            with tf.GradientTape() as inner:
                out = model(xb, training=False)
                logits = out if from_logits else tf.math.log(tf.clip_by_value(out, eps, 1.0 - eps))
                loss = -tf.reduce_mean(tf.gather(tf.nn.log_softmax(logits), yb, batch_dims=1))
            grads = inner.gradient(loss, variables, unconnected_gradients=tf.UnconnectedGradients.ZERO)
            grad_dot_v = tf.add_n([tf.reduce_sum(g * p) for g, p in zip(grads, parts)])
        hv = outer.gradient(grad_dot_v, variables, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return tf.concat([tf.reshape(h, [-1]) for h in hv], axis=0)

    x = np.asarray(x, np.float32)
    y = np.asarray(y, np.int64).reshape(-1)
    batches = [(tf.constant(x[s:s + batch_size]), tf.constant(y[s:s + batch_size]), min(batch_size, n - s) / n)
               for s in range(0, n, batch_size)]

    def hvp(v: np.ndarray) -> np.ndarray:
        vt = tf.constant(np.asarray(v, np.float32).reshape(dim))
        total = np.zeros(dim, np.float64)
        for xb, yb, weight in batches:
            total += weight * np.asarray(batch_hvp(xb, yb, vt), np.float64)
        return total

    return hvp, dim


# --------------------------------------------------------------------------------------------
# Augmentations (tf.image semantics, caller-drawn parameters)
# --------------------------------------------------------------------------------------------


def _check_images(x: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(x, np.float32)
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise NotApplicableError(f"{what} needs images of shape (N, H, W, 1 or 3), got inputs of shape {x.shape}")
    return x


def natekar_augment(
    x: np.ndarray,
    *,
    flip: np.ndarray,
    hue: np.ndarray,
    saturation: np.ndarray,
    brightness: np.ndarray,
    contrast: np.ndarray,
    crop_scale: np.ndarray,
) -> np.ndarray:
    """Natekar & Sharma's "standard" augmentation of images ``x`` with per-image parameters.

    In order (their ``DataAugmentor``): horizontal flip where ``flip``; hue rotation by
    ``hue`` turns and saturation scaling by ``saturation`` (HSV, saturation clipped to [0, 1],
    as ``tf.image.adjust_hue`` / ``adjust_saturation``; RGB only: the original's
    ``random_hue`` raises on 1-channel images, so grey images skip both); brightness shift
    ``+ brightness``; contrast ``(x - m) * contrast + m`` with ``m`` the per-image, per-channel
    mean (``tf.image.adjust_contrast``); a central crop of relative side ``crop_scale``
    resized back bilinearly (``tf.image.crop_and_resize``; ``crop_scale = 1`` is the identity).
    Flip, brightness, contrast and crop are :mod:`gen_measures.numerics.images` (float32, the
    crop bit-identical to ``tf.image.crop_and_resize``; the contrast's per-channel mean is
    numpy's sum, which may differ from ``tf.reduce_mean``'s in the last bit). No clipping of the values, as in the original. Identity parameters
    (``flip=False, hue=0, saturation=1, brightness=0, contrast=1, crop_scale=1``) return ``x``.
    """
    x = _check_images(x, "natekar_augment")
    n, h, w, c = x.shape
    params = [np.asarray(p).reshape(-1) for p in (flip, hue, saturation, brightness, contrast, crop_scale)]
    if any(p.shape[0] != n for p in params):
        raise MeasureError(f"natekar_augment: every parameter needs one value per image ({n})")
    flip, hue, sat, bright, contrast, scale = params
    out = flip_left_right(x, flip.astype(bool))
    if c == 3:
        hsv = tf.image.rgb_to_hsv(tf.convert_to_tensor(out))
        hh = tf.math.floormod(hsv[..., 0] + tf.reshape(tf.constant(hue, tf.float32), [n, 1, 1]), 1.0)
        ss = tf.clip_by_value(hsv[..., 1] * tf.reshape(tf.constant(sat, tf.float32), [n, 1, 1]), 0.0, 1.0)
        out = np.asarray(tf.image.hsv_to_rgb(tf.stack([hh, ss, hsv[..., 2]], axis=-1)), np.float32)
    out = adjust_brightness(out, bright)
    out = adjust_contrast(out, contrast, per_channel=True)
    lo, hi = 0.5 - 0.5 * scale, 0.5 + 0.5 * scale
    return crop_and_resize(out, np.stack([lo, lo, hi, hi], axis=1).astype(np.float32), (h, w))


def _saturate(x: tf.Tensor, factor: float) -> tf.Tensor:
    """``tf.image.adjust_saturation`` by one factor; grey images go through RGB and back (as Aithal et al.)."""
    if x.shape[-1] == 1:
        return tf.image.rgb_to_grayscale(tf.image.adjust_saturation(tf.image.grayscale_to_rgb(x), factor))
    return tf.image.adjust_saturation(x, factor)


def aithal_augmentations(
    x: np.ndarray,
    *,
    saturation: float,
    flip_saturation: float,
    erase_boxes: np.ndarray,
) -> list[np.ndarray]:
    """The seven augmented copies of one batch ``x`` used by Aithal et al., in their order.

    1. horizontal flip; 2. saturation by the factor ``saturation`` (one factor per batch, as
    ``tf.image.random_saturation`` on a batch); 3. ``tf.image.central_crop(x, 0.9)`` padded/resized
    back with ``tf.image.resize_with_pad``; 4. Sobel edges in the x direction
    ``sobel_edges(x)[..., 1] / 4 + 0.5``; 5. brightness ``+ 0.5``; 6. flip then saturation by
    ``flip_saturation``; 7. random erasing: ``erase_boxes[i] = (top, left, height, width)`` set
    to 0 in image ``i``. Flip and brightness are :mod:`gen_measures.numerics.images` (exactly
    ``tf.image.flip_left_right`` / ``adjust_brightness``). Grey images are saturated through ``grayscale_to_rgb`` /
    ``rgb_to_grayscale`` as in the original.
    """
    x = _check_images(x, "aithal_augmentations")
    n, h, w, _ = x.shape
    t = tf.convert_to_tensor(x)
    flipped = flip_left_right(x)
    cropped = tf.image.resize_with_pad(tf.image.central_crop(t, 0.9), h, w)
    sobel = tf.image.sobel_edges(t)[..., 1] / 4.0 + 0.5
    erased = x.copy()
    boxes = np.asarray(erase_boxes, dtype=np.int64).reshape(n, 4)
    for i, (top, left, bh, bw) in enumerate(boxes):
        erased[i, top:top + bh, left:left + bw, :] = 0.0
    outs = [flipped, _saturate(t, float(saturation)), cropped, sobel, adjust_brightness(x, 0.5),
            _saturate(tf.convert_to_tensor(flipped), float(flip_saturation)), erased]
    return [np.asarray(o, np.float32) for o in outs]


# --------------------------------------------------------------------------------------------
# The starting kit's sharpness: one trial (descending SGD inside a box around the trained weights)
# --------------------------------------------------------------------------------------------


def boxed_sgd_trial_function(
    model,
    x: np.ndarray,
    y: np.ndarray,
    *,
    n_classes: int,
    learning_rate: float = 1e-3,
    kit_loss: bool = True,
) -> tuple[Callable[[np.ndarray, np.ndarray, float], np.ndarray], Callable[[], None]]:
    """``(trial, restore)`` for the starting kit's sharpness search (:func:`baselines.kit.kit_sharpness_search`).

    ``trial(train_idx, eval_idx, m)`` resets the trainable weights to their values at this
    call, runs one plain SGD step (learning rate ``learning_rate``) per row of ``train_idx``
    (indices into ``x, y``, one mini-batch a row), clipping every trainable weight to
    ``[w0 - m|w0|, w0 + m|w0|]`` after each step, and returns the model outputs on
    ``x[eval_idx]`` (numpy, inference mode). ``restore()`` puts the weights back. One compiled
    call per trial.

    The kit's loss is reproduced as written there, ``CategoricalCrossentropy(from_logits=True)(
    logits, one_hot)`` (arguments swapped: the model outputs play the targets and the one-hot
    labels the logits), and the steps *descend* it; ``kit_loss=False`` uses the intended
    ``cross_entropy(one_hot, softmax(logits))`` instead. The one-hot depth is ``n_classes``.
    Only trainable weights are touched (non-trainable ones never move in SGD).
    """
    variables = list(model.trainable_variables)
    base = [tf.constant(v.numpy()) for v in variables]
    xt = tf.convert_to_tensor(np.asarray(x, np.float32))
    yt = tf.convert_to_tensor(np.asarray(y, np.int64))

    @tf.function(reduce_retracing=True)
    def trial(train_idx, eval_idx, m):
        for v, w0 in zip(variables, base):
            v.assign(w0)
        for s in tf.range(tf.shape(train_idx)[0]):
            xb = tf.gather(xt, train_idx[s])
            yb = tf.one_hot(tf.gather(yt, train_idx[s]), n_classes)
            with tf.GradientTape() as tape:
                logits = model(xb, training=False)
                # the kit's call cce(logits, y): y_true = logits, y_pred = one-hot labels as logits
                if kit_loss:
                    loss = tf.reduce_mean(-tf.reduce_sum(logits * tf.nn.log_softmax(yb, axis=-1), axis=-1))
                else:
                    loss = tf.reduce_mean(-tf.reduce_sum(yb * tf.nn.log_softmax(logits, axis=-1), axis=-1))
            grads = tape.gradient(loss, variables, unconnected_gradients=tf.UnconnectedGradients.ZERO)
            for v, g, w0 in zip(variables, grads, base):
                radius = tf.abs(w0) * m
                v.assign(tf.minimum(tf.maximum(v - learning_rate * g, w0 - radius), w0 + radius))
        return model(tf.gather(xt, eval_idx), training=False)

    def run(train_idx: np.ndarray, eval_idx: np.ndarray, m: float) -> np.ndarray:
        return np.asarray(trial(tf.constant(train_idx), tf.constant(eval_idx), tf.constant(m, tf.float32)))

    def restore() -> None:
        for v, w0 in zip(variables, base):
            v.assign(w0)

    return run, restore
