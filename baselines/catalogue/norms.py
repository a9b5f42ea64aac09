"""Norm-, margin- and path-norm-based measures of the catalogue (Jiang et al. 2019, appendix C).

Definitions follow Jiang et al. (equation numbers below) as the reference re-implementation of
Dziugaite et al. (2020) computes them; the shared preparation (BatchNorm folding, weights =
folded kernels as matrices, margin, dataset-size adjustment) is :mod:`baselines.catalogue.prepare`.
With ``W_l`` the ``d`` folded kernels, ``W0_l`` the same at initialization, ``gamma`` the
margin and ``m`` the training set size (all norms squared, as the reference computes them):

* ``params`` (20): the number ``P`` of kernel entries;
* ``inverse_margin`` (22): ``1 / gamma^2``;
* ``log_prod_of_spec`` (32): ``sum_l log ||W_l||_2^2``;
* ``log_prod_of_spec_over_margin`` (31): ``sum_l log ||W_l||_2^2 - 2 log gamma``;
* ``log_sum_of_spec`` (35): ``log d + (1/d) sum_l log ||W_l||_2^2``, the log of ``d (prod_l ||W_l||_2^2)^(1/d)``;
* ``log_sum_of_spec_over_margin`` (34): ``log d + (1/d) (sum_l log ||W_l||_2^2 - 2 log gamma)``;
* ``fro_over_spec`` (33): ``sum_l ||W_l||_F^2 / ||W_l||_2^2``;
* ``log_spec_orig_main`` (30): ``log_prod_of_spec_over_margin + log sum_l ||W_l||_F^2 / ||W_l||_2^2``;
* ``log_spec_init_main`` (29): ``log_prod_of_spec_over_margin + log sum_l ||W_l - W0_l||_F^2 / ||W_l||_2^2``;
* ``log_prod_of_fro`` (37), ``log_prod_of_fro_over_margin`` (36), ``log_sum_of_fro`` (39),
  ``log_sum_of_fro_over_margin`` (38): as the spectral ones with ``||W_l||_F^2``;
* ``fro_dist`` (40): ``sum_l ||W_l - W0_l||_F^2``; ``dist_spec_init`` (41): ``sum_l ||W_l - W0_l||_2^2``;
* ``param_norm`` (42): ``sum_l ||W_l||_F^2``;
* ``path_norm`` (44): ``sum_i f_{w^2}(1)[i]`` (:func:`path_norm_value`); ``path_norm_over_margin``
  (43): ``path_norm / gamma^2``;
* ``l2``, ``l2_dist``: ``||w||_2``, ``||w - w0||_2`` of the vector of all kernel entries (the
  reference's "other measures"; not in Jiang et al.).

Every value is then adjusted for the dataset size as the reference: ``0.5 (v - log m)`` for the
``log_*`` measures, ``sqrt(v / m)`` for the others (so ``l2`` reports ``sqrt(||w||_2 / m)``, as the
reference does). ``details``: ``per_layer`` (the per-layer term of the sum, in depth order;
e.g. ``log ||W_l||_2^2``), ``unadjusted`` (``v``), ``m``, ``margin`` where used, ``batchnorm``
(how each BN layer was folded). A non-finite result (a zero kernel, a zero margin, ``W = W0``
in a logarithm) is NaN with a :class:`~gen_measures.errors.DegenerateInputWarning`.

Spectral norms are of the reshaped kernel matrices (``(cout, kh kw cin)`` for a convolution: an
approximation of the convolution's operator norm, which the reference's comment attributes to
Yoshida & Miyato 2017, Sec. 3.2), by a full SVD in float64. The exact convolution spectral
norms (Sedghi et al. 2019) are the ``*_fft`` measures of :mod:`baselines.catalogue.spectral_fft`.

Needs: every measure declares ``data``: besides the margin, the size adjustment needs ``m``,
which the runner passes with the training sample only. ``init_weights`` for the distances.
Direction: ``LARGER_GAP`` throughout (bounds: a larger value predicts a larger gap).

Where this differs from the reference (none of it changes a definition of Jiang et al.): the
margin's 10th percentile is taken over the task's class-stratified training sample, not the
whole training set (``m`` stays the training set size); BN layers are also folded forward, or
kept, where the reference's backward fold would not be exact (:mod:`~baselines.catalogue.prepare`);
the reference's folded BN layers leave a factor ``(1 + eps)^(-1/2)`` in its path norm, exact
folding does not; Dense layers are folded and counted like convolutions (the reference's
networks have none).

References
----------
Jiang, Y., Neyshabur, B., Mobahi, H., Krishnan, D. & Bengio, S. (2020). "Fantastic
generalization measures and where to find them." ICLR; arXiv:1912.02178, appendix C.
Dziugaite, G. K. et al. (2020). "In search of robust measures of generalization." NeurIPS;
arXiv:2010.11924; https://github.com/nitarshan/robust-generalization-measures
(``data/generation/measures.py``, ``get_all_measures``).
Bartlett, P. L., Foster, D. J. & Telgarsky, M. (2017). "Spectrally-normalized margin bounds for
neural networks." NeurIPS; arXiv:1706.08498.
Neyshabur, B., Tomioka, R. & Srebro, N. (2015). "Norm-based capacity control in neural
networks." COLT; arXiv:1503.00036 (path norm).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from baselines.catalogue.prepare import (
    REFERENCE,
    catalogue_margin,
    folded_model,
    folded_network,
    size_adjusted,
)
from gen_measures.errors import DegenerateInputWarning
from gen_measures.registry import LARGER_GAP, MeasureResult, register_measure

DATA = ("data",)
INIT = ("data", "init_weights")
CATALOGUE = {"direction": LARGER_GAP, "family": "catalogue", "default": False, "reference": REFERENCE}
SPEC = {**CATALOGUE, "reference": REFERENCE + "; Bartlett, Foster & Telgarsky 2017, 'Spectrally-normalized margin bounds "
                                              "for neural networks', NeurIPS, arXiv:1706.08498"}
PATH_REFERENCE = REFERENCE + "; Neyshabur, Tomioka & Srebro 2015, 'Norm-based capacity control in neural networks', COLT"


# ----------------------------------------------------------------------------- pure numerics
def spectral_norm(matrix: np.ndarray) -> float:
    """Largest singular value of ``matrix`` (full SVD, float64)."""
    return float(np.linalg.norm(np.asarray(matrix, dtype=np.float64), 2))


@dataclass(frozen=True)
class LayerNorms:
    """Per-layer squared norms of a list of kernel matrices (float64), with the layer names."""

    names: list[str]
    fro2: np.ndarray
    spec2: np.ndarray
    params: np.ndarray

    @classmethod
    def of(cls, names: Sequence[str], matrices: Sequence[np.ndarray]) -> LayerNorms:
        mats = [np.asarray(w, dtype=np.float64) for w in matrices]
        return cls(list(names), np.array([float(np.sum(w * w)) for w in mats]),
                   np.array([spectral_norm(w) ** 2 for w in mats]), np.array([float(w.size) for w in mats]))


def log_product(sq_norms: np.ndarray, log_margin2: float = 0.0) -> float:
    """``sum_l log s_l - log_margin2`` (log of the product of the squared norms over ``gamma^2``)."""
    return float(np.sum(np.log(sq_norms)) - log_margin2)


def log_balanced_sum(sq_norms: np.ndarray, log_margin2: float = 0.0) -> float:
    """``log d + (1/d) (sum_l log s_l - log_margin2)``: the log of ``d (prod_l s_l / gamma^2)^(1/d)``."""
    d = len(sq_norms)
    return float(math.log(d) + log_product(sq_norms, log_margin2) / d)


# ----------------------------------------------------------------------------- context quantities
def layer_norms(ctx, *, distance: bool = False) -> LayerNorms:
    """Squared norms of the folded kernels (or of their distances from initialization), once per context."""
    def compute() -> LayerNorms:
        net = folded_network(ctx)
        mats = net.matrices()
        if distance:
            mats = [w - w0 for w, w0 in zip(mats, folded_network(ctx, initial=True).matrices())]
        return LayerNorms.of(net.names, mats)

    return ctx.memo(("catalogue", "layer_norms", distance), compute)


def log_margin2(ctx) -> tuple[float, dict]:
    """``(2 log gamma, details)`` of the context's margin (``-inf`` for a zero margin)."""
    info = catalogue_margin(ctx)
    gamma = info["margin"]
    with np.errstate(divide="ignore"):
        return float(2.0 * np.log(gamma)), {"margin": gamma, "margin_rank": info["k"], "margin_sample": info["n"]}


def finish(ctx, raw: float, *, log: bool, per_layer: np.ndarray | None = None, names: Sequence[str] | None = None,
           extra: dict | None = None, what: str = "the measure") -> MeasureResult:
    """The size-adjusted :class:`MeasureResult` of an unadjusted value ``raw`` (NaN, warned, if not finite)."""
    details: dict = {}
    if per_layer is not None:
        details["per_layer"] = {name: float(v) for name, v in zip(names, per_layer)}
    details.update(extra or {})
    details.update(unadjusted=float(raw), m=int(ctx.n_train))
    folds = folded_network(ctx).folds
    if folds:
        details["batchnorm"] = folds
    if not math.isfinite(raw):
        warnings.warn(f"{ctx.label}: {what} is not finite ({raw}: a zero kernel, a zero margin or weights equal to "
                      "their initial values in a logarithm); reported as NaN", DegenerateInputWarning, stacklevel=3)
        return MeasureResult(float("nan"), details)
    return MeasureResult(size_adjusted(raw, ctx.n_train, log=log), details)


def product_measure(ctx, norms: LayerNorms, sq: np.ndarray, *, over_margin: bool, balanced: bool, what: str) -> MeasureResult:
    """``log prod`` (or, ``balanced``, ``log sum``) of the per-layer squared norms ``sq``, optionally over ``gamma^2``."""
    lm2, extra = log_margin2(ctx) if over_margin else (0.0, {})
    with np.errstate(divide="ignore"):
        raw = log_balanced_sum(sq, lm2) if balanced else log_product(sq, lm2)
        per_layer = np.log(sq)
    return finish(ctx, raw, log=True, per_layer=per_layer, names=norms.names, extra=extra, what=what)


def spec_ratio_measure(ctx, norms: LayerNorms, spec2: np.ndarray, numerator: np.ndarray, *, main: bool,
                       what: str) -> MeasureResult:
    """``sum_l numerator_l / spec2_l``; ``main``: ``log prod spec2 - 2 log gamma + log`` of that sum (eqs. 29, 30)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = numerator / spec2
        if not main:
            return finish(ctx, float(np.sum(ratios)), log=False, per_layer=ratios, names=norms.names, what=what)
        lm2, extra = log_margin2(ctx)
        raw = log_product(spec2, lm2) + float(np.log(np.sum(ratios)))
    return finish(ctx, raw, log=True, per_layer=ratios, names=norms.names, extra=extra, what=what)


def sum_measure(ctx, norms: LayerNorms, terms: np.ndarray, *, root: bool = False, what: str) -> MeasureResult:
    """``sum_l terms_l`` (``root``: its square root), adjusted ``sqrt(v / m)``."""
    total = float(np.sum(terms))
    per_layer = np.sqrt(terms) if root else terms
    return finish(ctx, math.sqrt(total) if root else total, log=False, per_layer=per_layer, names=norms.names, what=what)


# ----------------------------------------------------------------------------- size, margin
@register_measure("params", needs=DATA, **CATALOGUE)
def params(ctx) -> MeasureResult:
    """Number of kernel parameters P (Jiang et al. eq. 20), reported sqrt(P / m)."""
    n = layer_norms(ctx)
    return sum_measure(ctx, n, n.params, what="params")


@register_measure("inverse_margin", needs=DATA, **CATALOGUE)
def inverse_margin(ctx) -> MeasureResult:
    """1 / gamma^2, gamma = |10th percentile of the training margins| (eq. 22), reported sqrt(v / m)."""
    _, extra = log_margin2(ctx)
    with np.errstate(divide="ignore"):
        raw = float(1.0 / np.float64(extra["margin"]) ** 2)
    return finish(ctx, raw, log=False, extra=extra, what="inverse_margin")


# ----------------------------------------------------------------------------- spectral (reshaped kernels)
@register_measure("log_prod_of_spec", needs=DATA, **SPEC)
def log_prod_of_spec(ctx) -> MeasureResult:
    """sum_l log ||W_l||_2^2 over the folded kernels (eq. 32), reported 0.5 (v - log m)."""
    n = layer_norms(ctx)
    return product_measure(ctx, n, n.spec2, over_margin=False, balanced=False, what="log_prod_of_spec")


@register_measure("log_prod_of_spec_over_margin", needs=DATA, **SPEC)
def log_prod_of_spec_over_margin(ctx) -> MeasureResult:
    """sum_l log ||W_l||_2^2 - 2 log gamma (eq. 31), reported 0.5 (v - log m)."""
    n = layer_norms(ctx)
    return product_measure(ctx, n, n.spec2, over_margin=True, balanced=False, what="log_prod_of_spec_over_margin")


@register_measure("log_sum_of_spec", needs=DATA, **SPEC)
def log_sum_of_spec(ctx) -> MeasureResult:
    """log d + (1/d) sum_l log ||W_l||_2^2 (eq. 35), reported 0.5 (v - log m)."""
    n = layer_norms(ctx)
    return product_measure(ctx, n, n.spec2, over_margin=False, balanced=True, what="log_sum_of_spec")


@register_measure("log_sum_of_spec_over_margin", needs=DATA, **SPEC)
def log_sum_of_spec_over_margin(ctx) -> MeasureResult:
    """log d + (1/d) (sum_l log ||W_l||_2^2 - 2 log gamma) (eq. 34), reported 0.5 (v - log m)."""
    n = layer_norms(ctx)
    return product_measure(ctx, n, n.spec2, over_margin=True, balanced=True, what="log_sum_of_spec_over_margin")


@register_measure("fro_over_spec", needs=DATA, **SPEC)
def fro_over_spec(ctx) -> MeasureResult:
    """sum_l ||W_l||_F^2 / ||W_l||_2^2 (eq. 33), reported sqrt(v / m)."""
    n = layer_norms(ctx)
    return spec_ratio_measure(ctx, n, n.spec2, n.fro2, main=False, what="fro_over_spec")


@register_measure("log_spec_orig_main", needs=DATA, **SPEC)
def log_spec_orig_main(ctx) -> MeasureResult:
    """log(prod_l ||W_l||_2^2 / gamma^2 * sum_l ||W_l||_F^2 / ||W_l||_2^2) (eq. 30), reported 0.5 (v - log m)."""
    n = layer_norms(ctx)
    return spec_ratio_measure(ctx, n, n.spec2, n.fro2, main=True, what="log_spec_orig_main")


@register_measure("log_spec_init_main", needs=INIT, **SPEC)
def log_spec_init_main(ctx) -> MeasureResult:
    """log(prod_l ||W_l||_2^2 / gamma^2 * sum_l ||W_l - W0_l||_F^2 / ||W_l||_2^2) (eq. 29), reported 0.5 (v - log m)."""
    n = layer_norms(ctx)
    return spec_ratio_measure(ctx, n, n.spec2, layer_norms(ctx, distance=True).fro2, main=True, what="log_spec_init_main")


@register_measure("dist_spec_init", needs=INIT, **SPEC)
def dist_spec_init(ctx) -> MeasureResult:
    """sum_l ||W_l - W0_l||_2^2 (eq. 41), reported sqrt(v / m)."""
    n = layer_norms(ctx, distance=True)
    return sum_measure(ctx, n, n.spec2, what="dist_spec_init")


# ----------------------------------------------------------------------------- Frobenius
@register_measure("log_prod_of_fro", needs=DATA, **CATALOGUE)
def log_prod_of_fro(ctx) -> MeasureResult:
    """sum_l log ||W_l||_F^2 (eq. 37), reported 0.5 (v - log m)."""
    n = layer_norms(ctx)
    return product_measure(ctx, n, n.fro2, over_margin=False, balanced=False, what="log_prod_of_fro")


@register_measure("log_prod_of_fro_over_margin", needs=DATA, **CATALOGUE)
def log_prod_of_fro_over_margin(ctx) -> MeasureResult:
    """sum_l log ||W_l||_F^2 - 2 log gamma (eq. 36), reported 0.5 (v - log m)."""
    n = layer_norms(ctx)
    return product_measure(ctx, n, n.fro2, over_margin=True, balanced=False, what="log_prod_of_fro_over_margin")


@register_measure("log_sum_of_fro", needs=DATA, **CATALOGUE)
def log_sum_of_fro(ctx) -> MeasureResult:
    """log d + (1/d) sum_l log ||W_l||_F^2 (eq. 39), reported 0.5 (v - log m)."""
    n = layer_norms(ctx)
    return product_measure(ctx, n, n.fro2, over_margin=False, balanced=True, what="log_sum_of_fro")


@register_measure("log_sum_of_fro_over_margin", needs=DATA, **CATALOGUE)
def log_sum_of_fro_over_margin(ctx) -> MeasureResult:
    """log d + (1/d) (sum_l log ||W_l||_F^2 - 2 log gamma) (eq. 38), reported 0.5 (v - log m)."""
    n = layer_norms(ctx)
    return product_measure(ctx, n, n.fro2, over_margin=True, balanced=True, what="log_sum_of_fro_over_margin")


@register_measure("fro_dist", needs=INIT, **CATALOGUE)
def fro_dist(ctx) -> MeasureResult:
    """sum_l ||W_l - W0_l||_F^2 (eq. 40), reported sqrt(v / m)."""
    n = layer_norms(ctx, distance=True)
    return sum_measure(ctx, n, n.fro2, what="fro_dist")


@register_measure("param_norm", needs=DATA, **CATALOGUE)
def param_norm(ctx) -> MeasureResult:
    """sum_l ||W_l||_F^2 (eq. 42), reported sqrt(v / m)."""
    n = layer_norms(ctx)
    return sum_measure(ctx, n, n.fro2, what="param_norm")


@register_measure("l2", needs=DATA, **CATALOGUE)
def l2(ctx) -> MeasureResult:
    """||w||_2 of all folded kernel entries (the reference's L2), reported sqrt(v / m)."""
    n = layer_norms(ctx)
    return sum_measure(ctx, n, n.fro2, root=True, what="l2")


@register_measure("l2_dist", needs=INIT, **CATALOGUE)
def l2_dist(ctx) -> MeasureResult:
    """||w - w0||_2 of all folded kernel entries (the reference's L2_DIST), reported sqrt(v / m)."""
    n = layer_norms(ctx, distance=True)
    return sum_measure(ctx, n, n.fro2, root=True, what="l2_dist")


# ----------------------------------------------------------------------------- path norm
def path_norm_value(ctx) -> float:
    """``sum_i f_{w^2}(1)[i]``: the outputs, summed, of the folded network with every parameter squared on an all-ones input.

    Every parameter of the BatchNorm-folded network is squared, *biases included* (the
    kernels-only rule of the other measures does not apply here), as the reference squares
    every trainable parameter before its forward pass; a kept (unfoldable) BN layer is the
    affine map ``a^2 x + b^2``. The forward pass runs the model's own layers (activations,
    pooling, padding) in float64 on one all-ones example of the input shape. The reference's
    folded BN layers remain as ``x / sqrt(1 + eps)`` (its ``_reparam`` resets them to the
    identity statistics); here folding removes them exactly, a relative difference of
    ``(1 + eps)^(-1/2)`` per BN layer (``eps = 1e-5`` there).
    """
    def compute() -> float:
        twin = folded_model(ctx.model, folded_network(ctx), transform=np.square, dtype="float64")
        ones = np.ones((1,) + tuple(ctx.model.input_shape[1:]), dtype=np.float64)
        return float(np.sum(np.asarray(twin(ones, training=False), dtype=np.float64)))

    return ctx.memo(("catalogue", "path_norm"), compute)


@register_measure("path_norm", needs=DATA, **{**CATALOGUE, "reference": PATH_REFERENCE})
def path_norm(ctx) -> MeasureResult:
    """sum of the outputs of the folded network with squared parameters (biases included) on ones (eq. 44), sqrt(v / m)."""
    return finish(ctx, path_norm_value(ctx), log=False, what="path_norm")


@register_measure("path_norm_over_margin", needs=DATA, **{**CATALOGUE, "reference": PATH_REFERENCE})
def path_norm_over_margin(ctx) -> MeasureResult:
    """path_norm / gamma^2 (eq. 43), reported sqrt(v / m)."""
    _, extra = log_margin2(ctx)
    with np.errstate(divide="ignore"):
        raw = float(path_norm_value(ctx) / np.float64(extra["margin"]) ** 2)
    return finish(ctx, raw, log=False, extra=extra, what="path_norm_over_margin")
