"""PAC-Bayes flatness measures of the catalogue (Jiang et al. 2020, C.3; Dziugaite et al. 2020).

Two noise scales are searched, each once per model and shared with the core measure
``pacbayes_sharpness`` (:func:`gen_measures.measures.sharpness.pacbayes_search`, the one
implementation of the search: bisection on [0, 2], 10 Monte-Carlo draws per step, target
accuracy displacement 0.1 to a tolerance of 0.01):

* ``sigma``: plain Gaussian noise ``N(0, sigma^2)`` on every trainable weight;
* ``sigma'``: magnitude-aware noise of variance ``sigma'^2 w^2 + eps^2``, ``eps = 1e-3``.

With ``w`` the vector of the BatchNorm-folded kernels (no biases, :mod:`baselines.catalogue.prepare`),
``w0`` the same at initialization, ``omega`` its length and ``m`` the number of training examples:

* ``pacbayes_init``  = ``||w - w0||^2 / (4 sigma^2) + log(m / sigma) + 10``
* ``pacbayes_orig``  = ``||w||^2 / (4 sigma^2) + log(m / sigma) + 10``
* ``pacbayes_flatness`` = ``1 / sigma^2``
* ``pacbayes_mag_init`` = ``1/4 sum_i log((eps^2 + (sigma'^2 + 1) ||w - w0||^2 / omega) /
  (eps^2 + sigma'^2 (w_i - w0_i)^2)) + log(m / sigma') + 10``
* ``pacbayes_mag_orig``: the same with ``||w||^2`` in the numerator (the denominator keeps
  ``(w_i - w0_i)^2``, as in the reference)
* ``pacbayes_mag_flatness`` = ``1 / sigma'^2``

then adjusted for the dataset size as every catalogue measure: ``sqrt(v / m)``. Every value
points ``LARGER_GAP``.

Differences from the reference implementation, each stated where it acts: the noise has the
paper's variances (the reference passes them to ``torch.normal`` as standard deviations, see
:func:`gen_measures.measures.perturbation.pacbayes_sigma`); the search uses common random numbers
across steps and stops each step's evaluation once its answer is certain; accuracy is measured on
500 examples of the task's sample, not the whole training set; the noise is applied to the
trainable variables of the network as stored (the reference perturbs the BatchNorm-folded
network, whose BatchNorm layers it keeps as identities that are perturbed too).

References
----------
Jiang, Y., Neyshabur, B., Mobahi, H., Krishnan, D. & Bengio, S. (2020). "Fantastic
generalization measures and where to find them", ICLR, appendix C.3 (eqs. 48-61);
arXiv:1912.02178. Dziugaite, G. K. et al. (2020). "In search of robust measures of
generalization", NeurIPS; repository nitarshan/robust-generalization-measures,
``data/generation/measures.py`` (``_pacbayes_sigma``, ``get_all_measures``).
"""

from __future__ import annotations

import math

import numpy as np

from baselines.catalogue.prepare import folded_network, size_adjusted
from gen_measures.measures.sharpness import pacbayes_search
from gen_measures.registry import LARGER_GAP, MeasureResult, register_measure

REFERENCE = (
    "Jiang et al. 2020, 'Fantastic generalization measures and where to find them', ICLR, appendix C.3, "
    "arXiv:1912.02178; Dziugaite et al. 2020, 'In search of robust measures of generalization', NeurIPS, "
    "arXiv:2010.11924 (github.com/nitarshan/robust-generalization-measures)"
)
#: Magnitude epsilon of the magnitude-aware noise (Jiang et al.; the reference's ``mag_eps``).
MAGNITUDE_EPS = 1e-3
_CONSTANT = 10.0


def kernel_vector(ctx, *, initial: bool = False) -> np.ndarray:
    """The BatchNorm-folded kernels of ``ctx`` (trained or initial) as one float64 vector."""
    return ctx.memo(("catalogue", "kernel_vector", initial), lambda: np.concatenate(
        [np.asarray(k, np.float64).ravel() for k in folded_network(ctx, initial=initial).matrices()]))


def pacbayes_bound(norm_sq: float, sigma: float, m: int) -> float:
    """``norm_sq / (4 sigma^2) + log(m / sigma) + 10`` (Jiang et al. eqs. 48-49)."""
    return norm_sq / (4 * sigma**2) + math.log(m / sigma) + _CONSTANT


def pacbayes_magnitude_bound(norm_sq: float, distance: np.ndarray, sigma: float, m: int,
                             eps: float = MAGNITUDE_EPS) -> float:
    """``1/4 sum_i log((eps^2 + (sigma^2 + 1) norm_sq / omega) / (eps^2 + sigma^2 distance_i^2)) + log(m / sigma) + 10``."""
    omega = distance.size
    numerator = eps**2 + (sigma**2 + 1) * norm_sq / omega
    denominator = eps**2 + sigma**2 * distance**2
    return 0.25 * float(np.sum(np.log(numerator / denominator))) + math.log(m / sigma) + _CONSTANT


def _search(ctx, magnitude: bool):
    return pacbayes_search(ctx, MAGNITUDE_EPS if magnitude else None)


def _result(ctx, value: float, search) -> MeasureResult:
    return MeasureResult(size_adjusted(value, ctx.n_train, log=False), {"unadjusted": value, **search.details()})


def _reference_norm(ctx, reference: str) -> float:
    w = kernel_vector(ctx)
    v = w - kernel_vector(ctx, initial=True) if reference == "init" else w
    return float(v @ v)


@register_measure("pacbayes_init", direction=LARGER_GAP, needs=("data", "init_weights"), family="catalogue",
                  default=False, reference=REFERENCE)
def pacbayes_init(ctx) -> MeasureResult:
    """PAC-Bayes bound with the prior at initialization: ||w - w0||^2 / (4 sigma^2) + log(m / sigma) + 10."""
    search = _search(ctx, magnitude=False)
    return _result(ctx, pacbayes_bound(_reference_norm(ctx, "init"), search.sigma, ctx.n_train), search)


@register_measure("pacbayes_orig", direction=LARGER_GAP, needs=("data",), family="catalogue", default=False,
                  reference=REFERENCE)
def pacbayes_orig(ctx) -> MeasureResult:
    """PAC-Bayes bound with the prior at the origin: ||w||^2 / (4 sigma^2) + log(m / sigma) + 10."""
    search = _search(ctx, magnitude=False)
    return _result(ctx, pacbayes_bound(_reference_norm(ctx, "orig"), search.sigma, ctx.n_train), search)


@register_measure("pacbayes_flatness", direction=LARGER_GAP, needs=("data",), family="catalogue", default=False,
                  reference=REFERENCE)
def pacbayes_flatness(ctx) -> MeasureResult:
    """1 / sigma^2 of the PAC-Bayes noise scale (the same search as pacbayes_sharpness), size-adjusted."""
    search = _search(ctx, magnitude=False)
    return _result(ctx, 1.0 / search.sigma**2, search)


def _magnitude_value(ctx, reference: str) -> MeasureResult:
    search = _search(ctx, magnitude=True)
    distance = kernel_vector(ctx) - kernel_vector(ctx, initial=True)
    value = pacbayes_magnitude_bound(_reference_norm(ctx, reference), distance, search.sigma, ctx.n_train)
    return _result(ctx, value, search)


@register_measure("pacbayes_mag_init", direction=LARGER_GAP, needs=("data", "init_weights"), family="catalogue",
                  default=False, reference=REFERENCE)
def pacbayes_mag_init(ctx) -> MeasureResult:
    """Magnitude-aware PAC-Bayes bound, prior at initialization (Jiang et al. eq. 56)."""
    return _magnitude_value(ctx, "init")


@register_measure("pacbayes_mag_orig", direction=LARGER_GAP, needs=("data", "init_weights"), family="catalogue",
                  default=False, reference=REFERENCE)
def pacbayes_mag_orig(ctx) -> MeasureResult:
    """Magnitude-aware PAC-Bayes bound, prior at the origin (Jiang et al. eq. 57)."""
    return _magnitude_value(ctx, "orig")


@register_measure("pacbayes_mag_flatness", direction=LARGER_GAP, needs=("data",), family="catalogue", default=False,
                  reference=REFERENCE)
def pacbayes_mag_flatness(ctx) -> MeasureResult:
    """1 / sigma'^2 of the magnitude-aware PAC-Bayes noise scale, size-adjusted."""
    search = _search(ctx, magnitude=True)
    return _result(ctx, 1.0 / search.sigma**2, search)
