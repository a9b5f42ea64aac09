"""weightwatcher's data-free layer metrics: alpha-weighted, log norms, stable rank, log alpha-norm.

Martin & Mahoney's heavy-tailed self-regularisation (HT-SR) theory reads a layer's quality
from the empirical spectral density (ESD) of its weight matrix ``W``: the eigenvalues
``lambda_i`` of ``W^T W`` (squared singular values). The weightwatcher tool reports, per layer,
and averages over layers (``WeightWatcher.get_summary``, lines 3645-3660: the plain mean of each column of the
per-layer table over the analysed layers):

* ``ww_alpha_weighted``: ``alpha * log10(lambda_max)`` (column ``alpha_weighted``, "alpha-hat");
* ``ww_log_norm``: ``log10(sum_i lambda_i) = log10 ||W||_F^2`` (column ``log_norm``);
* ``ww_log_spectral_norm``: ``log10(lambda_max) = log10 ||W||_2^2`` (column ``log_spectral_norm``);
* ``ww_stable_rank``: ``sum_i lambda_i / lambda_max = ||W||_F^2 / ||W||_2^2`` (column ``stable_rank``);
* ``ww_log_alpha_norm``: ``log10(sum_i lambda_i^alpha)``, the log of the Schatten alpha-norm
  raised to the power alpha (column ``log_alpha_norm``).

``alpha`` is the layer's power-law exponent. Sources followed (read, not copied), weightwatcher
0.7.5.5, ``weightwatcher/weightwatcher.py`` at commit ``d6fd015``:

* the formulas: ``apply_norm_metrics`` (lines 4525-4565): ``norm = sum(evals)``,
  ``log_norm = log10(norm)``, ``spectral_norm = max(evals)``, ``log_spectral_norm =
  log10(spectral_norm)``, ``alpha_weighted = alpha * log_spectral_norm``, ``log_alpha_norm =
  log10(sum(evals ** alpha))``, ``stable_rank = norm / spectral_norm`` (so weightwatcher's
  "norm" and "spectral norm" are the *squared* Frobenius and spectral norms);
* the ESD: ``combined_eigenvalues`` (lines 2757-2830): ``evals = sv ** 2`` of every singular
  value (no ``1/N`` normalisation: that option was removed in 0.6.5), pooled over the
  matrices of a layer;
* conv layers: ``conv2D_Wmats`` (lines 1248-1320) with Keras's channels rule (``KerasLayer``,
  line 150): a ``(kh, kw, c_in, c_out)`` kernel gives ``kh * kw`` matrices ``(c_in, c_out)``,
  one per offset, whose eigenvalues are pooled into one ESD (the default ``pool=True``; also
  when its shape heuristic misfires on a tiny kernel such as 3x3x1x4, its "flipped" branch
  extracts the same slices); this is :func:`baselines.spectral.layer_eigenvalues`;
* the conv scaling: ``apply_normalize_Wmats`` (lines 2833-2875) with the default
  ``conv2d_norm=True`` multiplies every conv matrix by ``sqrt(conv2d_count / 2)``, and
  ``conv2d_count`` is 1 for a pooled layer (it is the number of slices only in the
  ``pool=False`` slice iterator ``WW2xSliceIterator``, lines 1744-1760): conv eigenvalues are **halved**
  (:data:`CONV2D_EIGENVALUE_SCALE`). Reproduced by default (``conv2d_norm=True``); alpha and
  the stable rank do not depend on it, the log metrics shift by ``log10(1/2)`` per conv layer;
* the layers: Dense and Conv kernels only (no biases, ``add_biases=False``; BatchNorm layers
  are type ``NORM`` and skipped, their parameters are not folded in: weightwatcher reads the
  raw kernels).

Deviations, both in the layer set and the fit, are those of :mod:`baselines.spectral` (whose
robust power-law fit gives ``alpha``, :func:`baselines.spectral.robust_power_law_alpha`):
weightwatcher fits with the ``powerlaw`` package and analyses a layer when it has at least
``min_evals = 10`` eigenvalues (``layer_supported``, lines 1665-1740); here a layer is
analysed when the robust fit succeeds (at least 5 positive, non-identical eigenvalues; the
bundled zoo's 3x3x1 input convolutions have 9). Every metric is averaged over the *same*
analysed layers (as weightwatcher's summary averages every column over the same rows), the
layers of ``spectral_alpha``; the others are listed in ``details["skipped"]``.

Direction: HT-SR associates heavier-tailed, better-trained layers and better test accuracy
with *smaller* values of all five (Martin, Peng & Mahoney 2021: lower alpha-hat, log alpha-norm,
log spectral norm and log Frobenius norm go with higher test accuracy across series of
pretrained models; a smaller stable rank means a spectrum dominated by its top eigenvalue,
the signature of strong self-regularisation, and norm-based capacity bounds grow with
``||W||_F^2 / ||W||_2^2``). A higher value therefore predicts a *larger* gap: ``LARGER_GAP``.

References
----------
Martin, C. H. & Mahoney, M. W. (2021). "Implicit self-regularization in deep neural networks:
evidence from random matrix theory and implications for learning." JMLR 22(165), 1-73.
Martin, C. H., Peng, T. S. & Mahoney, M. W. (2021). "Predicting trends in the quality of
state-of-the-art neural networks without access to training or testing data." Nature
Communications 12, 4122.
weightwatcher, https://github.com/CalculatedContent/WeightWatcher (0.7.5.5).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from baselines.spectral import layer_eigenvalues, named_kernels, robust_power_law_alpha
from gen_measures.numerics._check import warn_degenerate
from gen_measures.registry import LARGER_GAP, MeasureResult, register_measure

__all__ = ["CONV2D_EIGENVALUE_SCALE", "METRICS", "layer_metrics", "weightwatcher_metrics"]

REFERENCE = (
    "Martin & Mahoney 2021, 'Implicit self-regularization in deep neural networks', JMLR 22(165); Martin, Peng & "
    "Mahoney 2021, 'Predicting trends in the quality of state-of-the-art neural networks without access to training "
    "or testing data', Nature Communications 12:4122; weightwatcher (github.com/CalculatedContent/WeightWatcher)"
)

#: weightwatcher's ``conv2d_norm`` (default on; pooled conv layers): matrices times sqrt(1/2), eigenvalues times 1/2.
CONV2D_EIGENVALUE_SCALE = 0.5
#: The per-layer metrics, in weightwatcher's column names.
METRICS = ("alpha_weighted", "log_norm", "log_spectral_norm", "stable_rank", "log_alpha_norm")


def layer_metrics(eigvals: np.ndarray, alpha: float) -> dict[str, float]:
    """The five weightwatcher metrics of one layer from its ESD ``eigvals`` and its exponent ``alpha``.

    ``eigvals`` are the eigenvalues of ``W^T W`` (non-negative, not all zero); the formulas are
    those of the module docstring. ``log10(sum lambda_i^alpha)`` is evaluated as
    ``alpha log10(lambda_max) + log10(sum (lambda_i / lambda_max)^alpha)`` (no overflow).
    """
    e = np.clip(np.asarray(eigvals, dtype=np.float64).ravel(), 0.0, None)
    top = float(e.max())
    total = float(e.sum())
    log_top = math.log10(top)
    return {
        "alpha_weighted": alpha * log_top,
        "log_norm": math.log10(total),
        "log_spectral_norm": log_top,
        "stable_rank": total / top,
        "log_alpha_norm": alpha * log_top + math.log10(float(np.sum((e / top) ** alpha))),
    }


def weightwatcher_metrics(kernels: Sequence[np.ndarray], names: Sequence[str] | None = None, *,
                          conv2d_norm: bool = True) -> dict:
    """Per-layer and mean weightwatcher metrics of ``kernels`` (Keras layout, depth order).

    Returns ``{"mean": {metric: value}, "per_layer": {metric: {name: value}}, "alpha": {name:
    alpha}, "skipped": [names]}``. A layer is analysed when the robust power-law fit of its ESD
    succeeds (:func:`baselines.spectral.robust_power_law_alpha`); conv ESDs are scaled by
    :data:`CONV2D_EIGENVALUE_SCALE` when ``conv2d_norm``. With no analysed layer every mean is
    NaN, with a :class:`~gen_measures.errors.DegenerateInputWarning`.
    """
    names = list(names) if names is not None else [f"kernel_{i}" for i in range(len(kernels))]
    per_layer: dict[str, dict[str, float]] = {m: {} for m in METRICS}
    alphas: dict[str, float] = {}
    skipped: list[str] = []
    for name, kernel in zip(names, kernels):
        e = layer_eigenvalues(kernel)
        if np.ndim(kernel) == 4 and conv2d_norm:
            e = e * CONV2D_EIGENVALUE_SCALE
        alpha, _ = robust_power_law_alpha(e)
        if not math.isfinite(alpha):
            skipped.append(name)
            continue
        alphas[name] = float(alpha)
        for metric, value in layer_metrics(e, alpha).items():
            per_layer[metric][name] = float(value)
    if not alphas:
        warn_degenerate("no Dense/Conv layer has at least 5 positive, non-identical eigenvalues to fit; the "
                        "weightwatcher metrics are NaN")
        mean = {m: float("nan") for m in METRICS}
    else:
        mean = {m: float(np.mean(list(per_layer[m].values()))) for m in METRICS}
    return {"mean": mean, "per_layer": per_layer, "alpha": alphas, "skipped": skipped}


# ----------------------------------------------------------------------------- adapters
def _metric(ctx, metric: str) -> MeasureResult:
    """The model value of ``metric`` with its per-layer values; one spectral pass per context serves all five."""
    def compute() -> dict:
        names, kernels = named_kernels(ctx)
        return weightwatcher_metrics(kernels, names)

    out = ctx.memo("weightwatcher_metrics", compute)
    return MeasureResult(out["mean"][metric], {
        "per_layer": dict(out["per_layer"][metric]),
        "alpha": dict(out["alpha"]),
        "skipped": list(out["skipped"]),
    })


_REGISTER = dict(direction=LARGER_GAP, needs=(), family="catalogue", reference=REFERENCE, default=False)


@register_measure("ww_alpha_weighted", **_REGISTER)
def ww_alpha_weighted(ctx) -> MeasureResult:
    """Mean over layers of ``alpha * log10(lambda_max)`` (weightwatcher's alpha-hat; data-free).

    References
    ----------
    Martin, Peng & Mahoney (2021), Nature Communications 12:4122 (alpha-hat); weightwatcher
    ``apply_norm_metrics``. See the module docstring.
    """
    return _metric(ctx, "alpha_weighted")


@register_measure("ww_log_norm", **_REGISTER)
def ww_log_norm(ctx) -> MeasureResult:
    """Mean over layers of ``log10 ||W||_F^2`` (weightwatcher's log_norm; data-free).

    References
    ----------
    Martin & Mahoney (2021), JMLR 22(165); weightwatcher ``apply_norm_metrics``. See the module
    docstring.
    """
    return _metric(ctx, "log_norm")


@register_measure("ww_log_spectral_norm", **_REGISTER)
def ww_log_spectral_norm(ctx) -> MeasureResult:
    """Mean over layers of ``log10 lambda_max = log10 ||W||_2^2`` (weightwatcher's log_spectral_norm; data-free).

    References
    ----------
    Martin & Mahoney (2021), JMLR 22(165); weightwatcher ``apply_norm_metrics``. See the module
    docstring.
    """
    return _metric(ctx, "log_spectral_norm")


@register_measure("ww_stable_rank", **_REGISTER)
def ww_stable_rank(ctx) -> MeasureResult:
    """Mean over layers of ``||W||_F^2 / lambda_max`` (weightwatcher's stable_rank; data-free).

    References
    ----------
    Martin & Mahoney (2021), JMLR 22(165); weightwatcher ``apply_norm_metrics``. See the module
    docstring.
    """
    return _metric(ctx, "stable_rank")


@register_measure("ww_log_alpha_norm", **_REGISTER)
def ww_log_alpha_norm(ctx) -> MeasureResult:
    """Mean over layers of ``log10 sum_i lambda_i^alpha`` (log Schatten alpha-norm; data-free).

    References
    ----------
    Martin, Peng & Mahoney (2021), Nature Communications 12:4122 (log alpha-norm); weightwatcher
    ``apply_norm_metrics``. See the module docstring.
    """
    return _metric(ctx, "log_alpha_norm")
