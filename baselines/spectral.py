"""A data-free spectral baseline in the spirit of weightwatcher: mean per-layer power-law alpha.

For every Dense/Conv kernel, the empirical spectral density (ESD) is the set of eigenvalues of
``W^T W`` (the squared singular values of ``W``); its tail is fitted by a power law
``p(x) ~ x^-alpha`` and the model value is the mean of the per-layer alphas. Heavy-tailed
self-regularisation theory (Martin & Mahoney) associates smaller alphas (heavier tails,
typically 2-4) with better-trained layers and better test accuracy, so a higher value predicts
a *larger* gap.

Layer matrices, as weightwatcher forms them: a Dense kernel ``(in, out)`` is one matrix; a
convolution kernel ``(kh, kw, c_in, c_out)`` is ``kh x kw`` matrices ``(c_in, c_out)``, one per
spatial offset, whose eigenvalues are pooled into one ESD; any other kernel is reshaped to
``(prod(shape[:-1]), shape[-1])``.

The fit, made robust to the few eigenvalues small layers give (a 3 x 3 x 1 x 4 convolution
has 9, a Dense 16 -> 10 layer 10):

* only eigenvalues above ``1e-10`` times the largest count (exact zeros of rank-deficient
  matrices are not part of a power law); a layer with fewer than ``min_eigenvalues`` (5) of
  them is skipped;
* ``xmin`` is chosen by the Kolmogorov-Smirnov criterion of Clauset, Shalizi & Newman
  (:func:`baselines.power_law.power_law_fit`), but only among the candidates that leave at
  least half of the layer's eigenvalues (and at least 5) in the tail: on a spectrum of 10
  values the unconstrained search happily fits the top 5 and returns a noisy, large alpha;
* the maximum-likelihood exponent is debiased for the tail size ``m``:
  ``alpha = 1 + (m - 1) / sum ln(x_i / xmin)`` (Clauset et al. eq. 3.7's unbiased form; the
  plain MLE overestimates ``alpha - 1`` by ``m / (m - 1)``, 25 % on a tail of 5);
* the model value is the mean over the fitted layers; NaN with a
  :class:`~gen_measures.errors.DegenerateInputWarning` when no layer can be fitted. Per-layer
  alphas, tail sizes and skipped layers are in the details.

References
----------
Martin, C. H. & Mahoney, M. W. (2021). "Implicit self-regularization in deep neural networks:
evidence from random matrix theory and implications for learning." JMLR 22(165), 1-73.
Martin, C. H., Peng, T. S. & Mahoney, M. W. (2021). "Predicting trends in the quality of
state-of-the-art neural networks without access to training or testing data." Nature
Communications 12, 4122; weightwatcher, https://github.com/CalculatedContent/WeightWatcher
Clauset, A., Shalizi, C. R. & Newman, M. E. J. (2009). "Power-law distributions in empirical
data." SIAM Review 51(4), 661-703.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from baselines.power_law import power_law_fit
from gen_measures.errors import DegenerateInputWarning
from gen_measures.registry import LARGER_GAP, MeasureResult, register_measure

REFERENCE = (
    "Martin & Mahoney 2021, 'Implicit self-regularization in deep neural networks', JMLR 22(165); Martin, Peng & "
    "Mahoney 2021, Nature Communications 12:4122 (weightwatcher); fit after Clauset, Shalizi & Newman 2009"
)

MIN_EIGENVALUES = 5
TAIL_FRACTION = 0.5
RELATIVE_ZERO = 1e-10


def layer_eigenvalues(kernel: np.ndarray) -> np.ndarray:
    """The ESD of one kernel: eigenvalues of ``W^T W`` (float64), pooled over conv offsets, descending."""
    w = np.asarray(kernel, dtype=np.float64)
    if w.ndim == 4:
        mats = w.reshape(-1, w.shape[2], w.shape[3])
    elif w.ndim == 2:
        mats = w[None]
    else:
        mats = w.reshape(1, -1, w.shape[-1]) if w.ndim else w.reshape(1, 1, 1)
    sv = np.linalg.svd(mats, compute_uv=False)
    return np.sort(np.square(sv).ravel())[::-1]


def robust_power_law_alpha(eigvals: np.ndarray, *, min_eigenvalues: int = MIN_EIGENVALUES,
                           tail_fraction: float = TAIL_FRACTION) -> tuple[float, int]:
    """``(alpha, tail size)`` of an ESD by the robust fit of the module docstring; ``(nan, 0)`` if unfittable.

    No warning is issued for an unfittable spectrum (too few eigenvalues, identical values):
    the caller decides (a skipped layer is normal for tiny layers).
    """
    e = np.asarray(eigvals, dtype=np.float64).ravel()
    if e.size == 0 or not np.all(np.isfinite(e)):
        return float("nan"), 0
    top = float(e.max())
    x = e[e > RELATIVE_ZERO * top] if top > 0 else e[:0]
    if x.size < min_eigenvalues:
        return float("nan"), 0
    min_tail = max(int(min_eigenvalues), int(math.ceil(tail_fraction * x.size)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateInputWarning)
        fit = power_law_fit(x, min_tail=min_tail)
    m = int(fit.n_tail)
    if not math.isfinite(fit.alpha) or m < 2:
        return float("nan"), 0
    # plain MLE: alpha - 1 = m / S; unbiased: (m - 1) / S
    return 1.0 + (fit.alpha - 1.0) * (m - 1) / m, m


def mean_layer_alpha(kernels, names=None) -> MeasureResult:
    """Mean robust alpha over ``kernels``; per-layer values and skipped layers in the details."""
    names = list(names) if names is not None else [f"kernel_{i}" for i in range(len(kernels))]
    per_layer, tails, skipped = {}, {}, []
    for name, k in zip(names, kernels):
        alpha, m = robust_power_law_alpha(layer_eigenvalues(k))
        if math.isfinite(alpha):
            per_layer[name], tails[name] = float(alpha), m
        else:
            skipped.append(name)
    if not per_layer:
        warnings.warn(f"no layer has at least {MIN_EIGENVALUES} positive, non-identical eigenvalues to fit; "
                      "spectral alpha is NaN", DegenerateInputWarning, stacklevel=2)
        return MeasureResult(float("nan"), {"skipped": skipped})
    return MeasureResult(float(np.mean(list(per_layer.values()))), {"per_layer": per_layer, "tail_sizes": tails, "skipped": skipped})


def named_kernels(ctx) -> tuple[list[str], list[np.ndarray]]:
    """``(names, kernels)``: the trained Dense/Conv kernels of ``ctx`` in depth order.

    A kernel is named ``"<layer index>:<layer class>"`` (e.g. ``"4:Dense"``), the names of the
    per-layer details of the spectral measures (:func:`spectral_alpha`,
    :mod:`baselines.catalogue.weightwatcher`).
    """
    kernel_ids = {id(ctx.model.weights[i]): k for i, k in zip(ctx.kernel_indices(), ctx.kernels())}
    names, kernels = [], []
    for i, layer in enumerate(ctx.model.layers):
        for v in layer.weights:
            if id(v) in kernel_ids:
                names.append(f"{i}:{type(layer).__name__}")
                kernels.append(kernel_ids[id(v)])
    return names, kernels


@register_measure("spectral_alpha", direction=LARGER_GAP, family="baseline", reference=REFERENCE, default=False)
def spectral_alpha(ctx) -> MeasureResult:
    """Mean over Dense/Conv kernels of the power-law exponent of their ``W^T W`` spectrum (data-free).

    See the module docstring for the layer matrices and the robust fit. Kernels only (no
    biases or normalisation parameters), as weightwatcher.

    References
    ----------
    Martin & Mahoney (2021), JMLR 22(165); Martin, Peng & Mahoney (2021), Nature
    Communications 12:4122; Clauset, Shalizi & Newman (2009), SIAM Review 51(4).
    """
    names, kernels = named_kernels(ctx)
    return mean_layer_alpha(kernels, names)
