"""1st place of PGDL (Natekar & Sharma 2020): representation-based complexity measures.

* ``dbi_mixup`` = DBI x (1 - label-wise mixup accuracy), the winning submission.
* ``mixup_margin`` / ``augment_margin``: minus the mean normalised logit margin at the first
  layer with weights, on within-class mixed or on augmented training examples.

Published CMI x100 on public task 1 / task 2: DBI x mixup 25.22 / 22.19, mixup margin
1.11 / 47.33, augment margin 15.66 / 48.34 (final phase: 22.92).

The authors' computation (repository parthnatekar/pgdl, ``complexitymeasures.py``,
``computecomplexityfinal.py``, ``augment.py``) is followed for layers, sample counts,
augmentations and normalisation; the code is ours. Where the original is unseeded it is seeded
from the context; where it crashes or returns NaN it is guarded (each function says how).

References
----------
Natekar, P. & Sharma, M. (2020). "Representation based complexity measures for predicting
generalization in deep learning." arXiv:2012.02775; https://github.com/parthnatekar/pgdl
Davies, D. L. & Bouldin, D. W. (1979). "A cluster separation measure." IEEE TPAMI 1(2).
Zhang, H., Cisse, M., Dauphin, Y. N. & Lopez-Paz, D. (2018). "mixup: beyond empirical risk
minimization." ICLR. Jiang, Y., Krishnan, D., Mobahi, H. & Bengio, S. (2019). "Predicting the
generalization gap in deep networks with margin distributions." ICLR.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from gen_measures.errors import DataError, DegenerateInputWarning, NotApplicableError
from gen_measures.numerics.classification import accuracy
from gen_measures.numerics.moments import ShiftedMoments
from gen_measures.registry import LARGER_GAP, MeasureResult, register_measure

REFERENCE = (
    "Natekar & Sharma 2020, 'Representation based complexity measures for predicting generalization in deep "
    "learning', arXiv:2012.02775 (PGDL 1st place), https://github.com/parthnatekar/pgdl"
)

#: DBI: 10 draws of 3 batches of 40 shuffled training examples (``computeOver=400, batchSize=40``).
DBI_DRAWS = 10
DBI_DRAW_SIZE = 120
#: DBI features: the strided layer's output max-pooled 4 x 4 ("valid"), then flattened.
DBI_POOL = 4
#: Label-wise mixup: 10 batches of ``10 x n_classes`` examples, in dataset order.
MIXUP_BATCHES = 10
MIXUP_PER_CLASS = 10
#: Margins: 500 shuffled examples in batches of 50 (``computeOver=500, batchSize=50``).
MARGIN_SAMPLES = 500
MARGIN_BATCH = 50
#: Fraction cut from each end of the per-feature variances before averaging (scipy ``trim_mean``).
MARGIN_TRIM = 0.05
#: Crop scales of the "zoom" augmentation: 0.85, 0.86, ..., 0.99.
CROP_SCALES = np.round(np.arange(0.85, 1.0, 0.01), 2)


def _warn(message: str) -> None:
    warnings.warn(message, DegenerateInputWarning, stacklevel=3)


# ----------------------------------------------------------------------------- layer rules
def first_strided_layer(configs: list[dict]) -> int | None:
    """Index of the first of the first three layers whose config has ``strides`` (DBI's layer).

    The original scanned layers 0, 1, 2 for a ``strides`` key (a Conv or pooling layer) and
    used the first one found; ``None`` when there is none (the original then averaged an empty
    list and returned NaN; the adapter raises :class:`MeasureError` instead).
    """
    for i, config in enumerate(configs[:3]):
        if "strides" in config:
            return i
    return None


def first_weighted_layer(configs: list[dict]) -> int | None:
    """Index of the first layer whose config has ``filters`` or ``units`` (the margins' layer)."""
    for i, config in enumerate(configs):
        if "filters" in config or "units" in config:
            return i
    return None


# ----------------------------------------------------------------------------- DBI
def max_pool_flatten(a: np.ndarray, pool: int = DBI_POOL) -> np.ndarray:
    """Non-overlapping ``pool x pool`` max pooling ("valid", stride = pool) of ``(n, H, W, C)``, flattened.

    Guard: a feature map smaller than ``pool`` on a side is pooled with ``min(pool, side)``
    there (Keras' ``MaxPooling2D((4, 4))`` would produce an empty output and the original would
    crash). Inputs that are not 4-D are flattened unpooled.
    """
    a = np.asarray(a)
    if a.ndim != 4:
        return a.reshape(a.shape[0], -1)
    n, h, w, c = a.shape
    ph, pw = min(pool, h), min(pool, w)
    oh, ow = h // ph, w // pw
    a = a[:, : oh * ph, : ow * pw, :].reshape(n, oh, ph, ow, pw, c)
    return a.max(axis=(2, 4)).reshape(n, -1)


def davies_bouldin(features: np.ndarray, labels: np.ndarray) -> float:
    """scikit-learn's ``davies_bouldin_score`` of ``features`` clustered by ``labels``.

    The authors' ``db`` function is a copy of scikit-learn's (including its 0 for coinciding
    clusters); scikit-learn's own is called here. Guards: fewer than 2 distinct labels, as
    many labels as samples, or non-finite features give NaN with a
    :class:`DegenerateInputWarning` (scikit-learn raises).
    """
    from sklearn.metrics import davies_bouldin_score

    features = np.asarray(features, dtype=np.float64).reshape(len(labels), -1)
    labels = np.asarray(labels)
    k = np.unique(labels).size
    if not 1 < k < labels.size:
        _warn(f"Davies-Bouldin index needs 2 <= labels < samples, got {k} labels for {labels.size} samples; NaN")
        return float("nan")
    if not np.all(np.isfinite(features)):
        _warn("features contain NaN or inf; Davies-Bouldin index is NaN")
        return float("nan")
    return float(davies_bouldin_score(features, labels))


# ----------------------------------------------------------------------------- label-wise mixup
def pairwise_mixup(images: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """``alpha x_j + (1 - alpha) x_i`` for every pair ``i < j`` of ``images`` (row-major pair order)."""
    images = np.asarray(images)
    i, j = np.triu_indices(images.shape[0], 1)
    return alpha * images[j] + (1 - alpha) * images[i]


def labelwise_mixup_accuracy(
    predict: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    *,
    per_class: int = MIXUP_PER_CLASS,
    n_batches: int = MIXUP_BATCHES,
) -> tuple[float, dict[int, float]]:
    """Label-wise mixup accuracy of Natekar & Sharma; returns ``(accuracy, {class: accuracy})``.

    ``x, y`` are read in order in batches of ``per_class x n_classes`` (at most ``n_batches``;
    the last may be short when the data run out, where the original repeated the dataset). In
    each batch, for each class, every pair of same-class examples is averaged (alpha 0.5) and
    the fraction predicted as that class is recorded; class accuracy = mean over batches,
    model accuracy = mean over classes.

    Guard: a batch holding fewer than 2 examples of a class has no pair; the original then
    divided 0 by 0 and returned NaN for the whole model. Such (batch, class) cells are
    skipped; a class with no pair in any batch is left out; NaN with a
    :class:`DegenerateInputWarning` only when no class has a pair, or when the model outputs NaN
    or inf on the mixed examples (:func:`gen_measures.numerics.classification.accuracy`).
    """
    x, y = np.asarray(x), np.asarray(y).reshape(-1)
    size = per_class * n_classes
    n = min(x.shape[0], n_batches * size)
    mixed, owners = [], []
    for start in range(0, n, size):
        xb, yb = x[start:min(start + size, n)], y[start:min(start + size, n)]
        for c in range(n_classes):
            members = xb[yb == c]
            if members.shape[0] >= 2:
                pairs = pairwise_mixup(members)
                mixed.append(pairs)
                owners.append((c, pairs.shape[0]))
    if not mixed:
        _warn("no batch holds two examples of the same class; label-wise mixup accuracy is NaN")
        return float("nan"), {}
    scores = predict(np.concatenate(mixed))
    cells: dict[int, list[float]] = {}
    offset = 0
    for c, count in owners:
        cells.setdefault(c, []).append(accuracy(scores[offset:offset + count], np.full(count, c), warn=False))
        offset += count
    per_class_acc = {c: float(np.mean(v)) for c, v in sorted(cells.items())}
    value = float(np.mean(list(per_class_acc.values())))
    if np.isnan(value):
        _warn("the model outputs NaN or inf on the mixed examples; label-wise mixup accuracy is NaN")
    return value, per_class_acc


def _layer_configs(model) -> list[dict]:
    return [layer.get_config() for layer in model.layers]


def _pooled_layer_features(ctx, layer: int, x: np.ndarray) -> np.ndarray:
    from baselines import tf_ops

    fn = ctx.memo(("tf_ops.layer_output", layer), lambda: tf_ops.layer_function(ctx.model, layer, batch_size=ctx.batch_size))
    chunks = [max_pool_flatten(fn(x[s:s + ctx.batch_size])) for s in range(0, x.shape[0], ctx.batch_size)]
    return np.concatenate(chunks)


def dbi_value(ctx) -> tuple[float, list[float]]:
    """Mean Davies-Bouldin index of the pooled first-strided-layer features over 10 draws of 120."""
    layer = first_strided_layer(_layer_configs(ctx.model))
    if layer is None:
        raise NotApplicableError(f"dbi_mixup: {ctx.label} has no layer with strides (Conv or pooling) among its first three layers")
    rng = ctx.rng("dbi_mixup")
    draws = [rng.permutation(ctx.n_samples)[:DBI_DRAW_SIZE] for _ in range(DBI_DRAWS)]
    used = np.unique(np.concatenate(draws))
    features = _pooled_layer_features(ctx, layer, ctx.x[used])
    row = {int(i): r for r, i in enumerate(used)}
    scores = [davies_bouldin(features[[row[int(i)] for i in d]], ctx.y[d]) for d in draws]
    return float(np.mean(scores)), scores


@register_measure("dbi_mixup", direction=LARGER_GAP, needs=("data",), family="baseline", reference=REFERENCE, default=False)
def dbi_mixup(ctx) -> MeasureResult:
    """Natekar & Sharma's winning measure: Davies-Bouldin index x (1 - label-wise mixup accuracy).

    * DBI: output of the first layer with ``strides`` among the first three (the first conv of
      a PGDL convnet), max-pooled 4 x 4 and flattened; scikit-learn's Davies-Bouldin index of
      those features by label over 120 shuffled training examples; mean over 10 draws. The
      original drew the 10 x 120 examples from a repeated, shuffled stream (seed 1), so one
      draw could hold an example twice; here each draw is 120 distinct examples of the task
      sample (all of it when smaller), seeded from the context, the same for every model.
    * Label-wise mixup accuracy: see :func:`labelwise_mixup_accuracy` (batches of
      ``10 x n_classes`` read in order, at most 10; the bundled sample zoo has 4 batches on
      digits (360 examples) and 7 on shapes (400)).

    Guards: a feature map smaller than 4 x 4 is pooled with its side
    (:func:`max_pool_flatten`); a class with fewer than 2 examples in a mixup batch is
    skipped instead of making the value NaN; a model without a strided layer among its first
    three raises :class:`MeasureError` (the original returned NaN).

    References
    ----------
    Natekar & Sharma (2020), arXiv:2012.02775, ``complexityDB`` and ``complexityMixup``.
    """
    from gen_measures.context import require_samples

    require_samples(ctx, "dbi_mixup")
    dbi, draws = dbi_value(ctx)
    mixup_acc, per_class = labelwise_mixup_accuracy(ctx.predict, ctx.x, ctx.y, ctx.n_classes)
    return MeasureResult(float(dbi * (1.0 - mixup_acc)), {
        "dbi": dbi,
        "dbi_draws": [float(v) for v in draws],
        "mixup_accuracy": mixup_acc,
        "mixup_accuracy_per_class": {str(k): v for k, v in per_class.items()},
    })


# ----------------------------------------------------------------------------- margins
def labelwise_mix(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Within-class mixup of one batch: sort by label, average each example with a random same-class partner.

    The partner comes from a random permutation of the class's examples in the batch (an
    example may be paired with itself; a class with one example is left as it is), as the
    authors' ``batchMixupLabelwiseLinear``. Returns the mixed examples and their (sorted) labels.
    """
    x, y = np.asarray(x), np.asarray(y).reshape(-1)
    order = np.argsort(y, kind="stable")
    xs, ys = x[order], y[order]
    partner = np.arange(ys.size)
    for c in np.unique(ys):
        block = np.flatnonzero(ys == c)
        partner[block] = rng.permutation(block)
    return ((xs + xs[partner]) / 2).astype(x.dtype, copy=False), ys


def natekar_augment_params(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per-image parameters of the authors' "standard" augmentation (``augment.py``).

    Flip with probability 0.5; hue delta in [-0.05, 0.05] turn; saturation factor in
    [0.6, 1.2]; brightness delta in [-0.05, 0.05]; contrast factor in [0.7, 1.0]; with
    probability 0.5 a central crop of scale 0.85, 0.86, ..., 0.99 (uniform), else none (scale 1).
    """
    crop = rng.choice(CROP_SCALES, size=n)
    return {
        "flip": rng.random(n) < 0.5,
        "hue": rng.uniform(-0.05, 0.05, n),
        "saturation": rng.uniform(0.6, 1.2, n),
        "brightness": rng.uniform(-0.05, 0.05, n),
        "contrast": rng.uniform(0.7, 1.0, n),
        "crop_scale": np.where(rng.random(n) < 0.5, 1.0, crop),
    }


class FeatureVariance(ShiftedMoments):
    """Per-feature variance (population, ``ddof=0``) accumulated in float64 over batches.

    Shifted sums (:class:`~gen_measures.numerics.moments.ShiftedMoments`, shift = the first row
    seen: no cancellation when the mean dwarfs the spread); the width is that of the first
    batch. Accumulators over disjoint batches combine exactly with :meth:`merge`.
    """

    def __init__(self) -> None:
        super().__init__(None)

    @staticmethod
    def _pair(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a * b  # elementwise: per-feature sums of squares

    def update(self, h: np.ndarray) -> None:
        h = np.asarray(h, dtype=np.float64).reshape(np.shape(h)[0], -1)
        if self.dim is None:
            self._allocate(h.shape[1])
        elif h.shape[1] != self.dim:
            raise DataError(f"h has {h.shape[1]} features per row, expected {self.dim} (the width of the first batch)")
        if self._count[0] == 0:
            self._shift[0] = h[0]
        d = h - self._shift[0]
        self._add_shifted(0, h.shape[0], d.sum(axis=0), np.einsum("ij,ij->j", d, d))

    def variance(self) -> np.ndarray:
        mean = self._sum[0] / self.n
        return np.maximum(self._second[0] / self.n - mean * mean, 0.0)


def normalized_margin(numerators: np.ndarray, grad_norms: np.ndarray, feature_variance: np.ndarray,
                      *, trim: float = MARGIN_TRIM, eps: float = 1e-7) -> float:
    """Natekar & Sharma's margin summary: ``-mean_i [m_i / (sqrt(trim_mean(var)) + eps)]``.

    ``m_i = numerator_i / (grad_norm_i + eps)`` is the first-order distance of example ``i``
    to the decision boundary between its two classes at the layer (negative when
    misclassified); ``var`` is the per-feature variance of the layer's output over the same
    examples and ``trim_mean`` cuts ``trim`` of it at each end (``scipy.stats.trim_mean``). NaN
    margins are ignored (the original's ``np.nanmean``); NaN with a
    :class:`DegenerateInputWarning` when none is finite.
    """
    from scipy.stats import trim_mean

    margins = np.asarray(numerators, dtype=np.float64) / (np.asarray(grad_norms, dtype=np.float64) + eps)
    scale = float(np.sqrt(trim_mean(np.asarray(feature_variance, dtype=np.float64), trim)))
    values = margins / (scale + eps)
    if not np.any(np.isfinite(values)):
        _warn("no finite margin (non-finite outputs or features); margin is NaN")
        return float("nan")
    return float(-np.nanmean(np.where(np.isfinite(values), values, np.nan)))


def margin_value(ctx, kind: str) -> MeasureResult:
    """Minus the mean normalised margin at the first weighted layer on mixed (``kind="mixup"``)
    or augmented (``kind="augment"``) training examples; see :func:`mixup_margin`."""
    from baselines import tf_ops
    from gen_measures.context import require_samples

    require_samples(ctx, f"{kind}_margin")
    layer = first_weighted_layer(_layer_configs(ctx.model))
    if layer is None:
        raise NotApplicableError(f"{kind}_margin: {ctx.label} has no layer with filters or units")
    fn = ctx.memo(("tf_ops.margin", layer), lambda: tf_ops.margin_function(ctx.model, layer))
    rng = ctx.rng(f"{kind}_margin")
    order = rng.permutation(ctx.n_samples)[:MARGIN_SAMPLES]
    numerators, norms, variance = [], [], FeatureVariance()
    for start in range(0, order.size, MARGIN_BATCH):
        idx = order[start:start + MARGIN_BATCH]
        xb, yb = ctx.x[idx], ctx.y[idx]
        if kind == "mixup":
            xb, yb = labelwise_mix(xb, yb, rng)
        else:
            xb = tf_ops.natekar_augment(xb, **natekar_augment_params(xb.shape[0], rng))
        num, norm, h = fn(xb, yb)
        numerators.append(num)
        norms.append(norm)
        variance.update(h)
    num, norm = np.concatenate(numerators), np.concatenate(norms)
    value = normalized_margin(num, norm, variance.variance())
    return MeasureResult(value, {
        "layer": f"{layer}:{type(ctx.model.layers[layer]).__name__}",
        "examples": int(order.size),
        "misclassified_fraction": float(np.mean(num < 0)),
    })


@register_measure(
    "mixup_margin", direction=LARGER_GAP, needs=("data", "gradients"), family="baseline", reference=REFERENCE, default=False
)
def mixup_margin(ctx) -> MeasureResult:
    """Minus the mean normalised margin at the first weighted layer on within-class mixed examples.

    Natekar & Sharma's ``complexityMargin(augment='mixup')``: 500 shuffled training examples
    (all of the task sample when smaller: 360 / 400 on the bundled zoo), in batches of 50;
    each batch mixed within classes (:func:`labelwise_mix`); ``h`` = output of the first layer
    with filters or units; per example the margin between the top-2 outputs (or between the
    true and the predicted class when misclassified, negative) divided by the norm of its
    gradient w.r.t. ``h`` (:func:`baselines.tf_ops.margin_function`); normalised by the
    square root of the 5 %-trimmed mean per-feature variance of ``h``
    (:func:`normalized_margin`); value = minus the mean. Larger margins predict a smaller gap,
    so the value (a negated margin) is ``LARGER_GAP``. Seeded from the context (the original
    seeded its shuffle with 1 and its mixing with 2 in every batch).

    References
    ----------
    Natekar & Sharma (2020), arXiv:2012.02775; Jiang et al. (2019), "Predicting the
    generalization gap in deep networks with margin distributions", ICLR.
    """
    return margin_value(ctx, "mixup")


@register_measure(
    "augment_margin", direction=LARGER_GAP, needs=("data", "gradients"), family="baseline", reference=REFERENCE, default=False
)
def augment_margin(ctx) -> MeasureResult:
    """Minus the mean normalised margin at the first weighted layer on augmented examples.

    As :func:`mixup_margin`, with each example augmented instead of mixed (the authors'
    "standard" ``DataAugmentor``): horizontal flip (p 0.5), hue +-0.05, saturation 0.6-1.2,
    brightness +-0.05, contrast 0.7-1.0, and with p 0.5 a central crop of scale 0.85-0.99
    resized back (:func:`natekar_augment_params`, :func:`baselines.tf_ops.natekar_augment`).
    Guard: ``tf.image.random_hue`` / ``random_saturation`` raise on 1-channel images, so grey
    images skip those two (the original crashes on them). Needs image inputs
    ``(N, H, W, 1 or 3)`` (:class:`MeasureError` otherwise).

    References
    ----------
    Natekar & Sharma (2020), arXiv:2012.02775, ``augment.py`` and ``complexityMargin``.
    """
    return margin_value(ctx, "augment")
