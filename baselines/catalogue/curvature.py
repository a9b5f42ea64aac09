"""Curvature of the training loss at the trained weights: top Hessian eigenvalue and Hessian trace.

Sharp minima (large curvature of the training loss) were linked to a large generalization gap
by Keskar et al. (2017); PyHessian (Yao et al. 2020) made the two summaries below the standard
matrix-free ones. Both act on ``H``, the Hessian of the *mean* training loss over the context's
sample (sparse categorical cross-entropy, the outputs read as logits unless the last layer
applies a softmax, as :class:`~gen_measures.context.WeightPerturbation`; inference mode) w.r.t. *all* trainable
weights (kernels, biases, normalisation scales and shifts; PyHessian's ``get_params_grad``
takes every parameter with a gradient). ``H`` is never formed: both use Hessian-vector
products (:func:`baselines.tf_ops.loss_hessian_vector_product_function`: double
backpropagation, batched over the sample, batches combined in float64 weighted by their
sizes, as PyHessian's ``dataloader_hv_product``).

* ``hessian_top_eigenvalue``: power iteration (:func:`power_iteration`), PyHessian's
  ``hessian.eigenvalues`` (``pyhessian/hessian.py`` lines 93-140 at commit ``de8cf23``): a
  Gaussian start vector (seeded here), normalised; each iteration ``lambda_k = v^T H v`` (the
  Rayleigh quotient of the unit vector ``v``) and ``v <- Hv / ||Hv||``; stop when
  ``|lambda_k - lambda_{k-1}| / (|lambda_{k-1}| + 1e-6) < tol`` (their test, tol ``1e-3``) or
  after ``max_iterations`` (100) products. Power iteration finds the eigenvalue of largest
  *magnitude*; at a trained network it is the top (positive) one, as in PyHessian, which
  makes the same choice. Deviation: PyHessian returns the estimate *before* the last product
  when it stops; this returns the last one (one product more accurate).
* ``hessian_trace``: Hutchinson's estimator (:func:`hutchinson_trace`), PyHessian's
  ``hessian.trace`` (lines 142-173): Rademacher vectors ``z`` (entries +-1 with probability
  1/2), ``tr(H) ~ mean z^T H z`` (unbiased, ``E[z z^T] = I``). Deviation: a fixed number of
  draws (50) with the standard error ``std(z^T H z, ddof=1) / sqrt(draws)`` in the details,
  instead of PyHessian's stop when the running mean changes by less than ``tol`` relatively:
  that change is ``(x_k - mean_{k-1}) / k``, so their rule stops at the first draw that
  happens to land near the running mean (as early as the second one), a random stopping time
  that gives no error bar.

Both point ``LARGER_GAP`` (sharper minimum = larger predicted gap). The start vector and the
Rademacher vectors come from the context's seed (:meth:`~gen_measures.context.ModelContext.rng`),
so the values are reproducible.

Cost, counted in Hessian-vector products (``details["hvps"]``): the eigenvalue takes at most
``max_iterations`` (4-21 to converge on the bundled zoo), the trace exactly ``draws`` (50), plus
one tracing of the product function per model (0.3-1.3 s), shared by both measures. Measured on
the bundled zoo (64 models, 360/400 examples, 2 shared CPU cores, one worker): one product costs
about 5 (digits_vgg) / 8 (shapes_nin) compiled forward passes over the sample; per model the
eigenvalue took 0.3-3.9 s (mean 0.6 / 1.7 s, about 100 forward passes) and the trace 0.7-12.5 s
(mean 1.0 / 5.9 s, 190 / 330 forward passes); 290 s for both measures on the whole zoo. The
trace's relative standard error there was 4-19 % (mean 6 / 10 %); its cost is linear in
:data:`TRACE_DRAWS`.

References
----------
Keskar, N. S., Mudigere, D., Nocedal, J., Smelyanskiy, M. & Tang, P. T. P. (2017). "On
large-batch training for deep learning: generalization gap and sharp minima." ICLR.
Yao, Z., Gholami, A., Keutzer, K. & Mahoney, M. W. (2020). "PyHessian: neural networks through
the lens of the Hessian." IEEE BigData; https://github.com/amirgholami/PyHessian
Hutchinson, M. F. (1989). "A stochastic estimator of the trace of the influence matrix for
Laplacian smoothing splines." Communications in Statistics - Simulation and Computation 18(3).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gen_measures.errors import MeasureError
from gen_measures.numerics._check import check_int, warn_degenerate
from gen_measures.registry import LARGER_GAP, MeasureResult, register_measure

__all__ = ["HutchinsonTrace", "PowerIteration", "hutchinson_trace", "power_iteration"]

REFERENCE = (
    "Keskar, Mudigere, Nocedal, Smelyanskiy & Tang 2017, 'On large-batch training for deep learning: generalization "
    "gap and sharp minima', ICLR; Yao, Gholami, Keutzer & Mahoney 2020, 'PyHessian: neural networks through the lens "
    "of the Hessian', IEEE BigData (github.com/amirgholami/PyHessian)"
)

#: Power iteration: at most this many Hessian-vector products (PyHessian's ``maxIter``).
MAX_ITERATIONS = 100
#: Power iteration: relative change of consecutive eigenvalue estimates that stops it (PyHessian's ``tol``).
RELATIVE_TOLERANCE = 1e-3
#: Hutchinson: number of Rademacher draws.
TRACE_DRAWS = 50
#: How many of the last eigenvalue estimates the details keep.
HISTORY_TAIL = 5

HessianVectorProduct = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class PowerIteration:
    """Result of :func:`power_iteration` (``iterations`` = Hessian-vector products used)."""

    eigenvalue: float
    iterations: int
    converged: bool
    history: tuple[float, ...]


@dataclass(frozen=True)
class HutchinsonTrace:
    """Result of :func:`hutchinson_trace`: the estimate, its standard error and the draws ``z^T H z``."""

    trace: float
    standard_error: float
    samples: tuple[float, ...]

    @property
    def draws(self) -> int:
        return len(self.samples)


def _product(hvp: HessianVectorProduct, v: np.ndarray) -> np.ndarray | None:
    """``hvp(v)`` as a float64 vector of ``v``'s shape; ``None`` (warned) when it is not finite."""
    out = np.asarray(hvp(v), dtype=np.float64)
    if out.shape != v.shape:
        raise MeasureError(f"the Hessian-vector product returned shape {out.shape} for a vector of shape {v.shape}")
    if not np.all(np.isfinite(out)):
        warn_degenerate("a Hessian-vector product is NaN or inf (non-finite loss or weights); the value is NaN", 4)
        return None
    return out


def power_iteration(
    hvp: HessianVectorProduct,
    dim: int,
    rng: np.random.Generator,
    *,
    max_iterations: int = MAX_ITERATIONS,
    tol: float = RELATIVE_TOLERANCE,
) -> PowerIteration:
    """The eigenvalue of largest magnitude of a symmetric operator, by PyHessian's power iteration.

    Parameters
    ----------
    hvp : ``v -> H v`` for vectors of shape ``(dim,)`` (float64 in and out).
    dim : the dimension of ``H``.
    rng : draws the Gaussian start vector.
    max_iterations : most products ``H v`` (>= 1).
    tol : stop when ``|lambda_k - lambda_{k-1}| / (|lambda_{k-1}| + 1e-6) < tol`` (> 0).

    Returns
    -------
    PowerIteration
        ``eigenvalue`` = the last Rayleigh quotient ``v^T H v`` (``v`` a unit vector),
        ``converged`` whether the tolerance was met, ``history`` every estimate. A zero product
        ``H v = 0`` (``H = 0`` almost surely for a random ``v``) gives eigenvalue 0, converged;
        a non-finite product gives NaN with a :class:`~gen_measures.errors.DegenerateInputWarning`.

    References
    ----------
    Yao et al. (2020), PyHessian, ``hessian.eigenvalues`` (``pyhessian/hessian.py``).
    """
    dim = check_int(dim, "dim", 1)
    max_iterations = check_int(max_iterations, "max_iterations", 1)
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not (math.isfinite(tol) and tol > 0):
        raise MeasureError(f"tol must be a positive number, got {tol!r}")
    v = rng.standard_normal(dim)
    v /= np.linalg.norm(v)
    history: list[float] = []
    converged = False
    for _ in range(max_iterations):
        hv = _product(hvp, v)
        if hv is None:
            return PowerIteration(float("nan"), len(history) + 1, False, tuple(history))
        history.append(float(v @ hv))
        norm = float(np.linalg.norm(hv))
        if norm == 0.0:
            converged = True
            break
        v = hv / norm
        if len(history) > 1 and abs(history[-2] - history[-1]) / (abs(history[-2]) + 1e-6) < tol:
            converged = True
            break
    return PowerIteration(history[-1], len(history), converged, tuple(history))


def hutchinson_trace(
    hvp: HessianVectorProduct,
    dim: int,
    rng: np.random.Generator,
    *,
    draws: int = TRACE_DRAWS,
) -> HutchinsonTrace:
    """Hutchinson's estimate of ``tr(H)`` from ``draws`` Rademacher vectors, with its standard error.

    ``z`` has independent entries +-1 (probability 1/2 each; drawn one vector at a time from
    ``rng``), ``trace = mean_k z_k^T H z_k`` and ``standard_error = std(z^T H z, ddof=1) /
    sqrt(draws)``. The estimator is unbiased; its variance is ``2 (||H||_F^2 - sum_i H_ii^2)``
    per draw, so it is exact (standard error 0) for a diagonal ``H``. A non-finite product
    gives NaN with a :class:`~gen_measures.errors.DegenerateInputWarning`.

    References
    ----------
    Hutchinson (1989); Yao et al. (2020), PyHessian, ``hessian.trace`` (``pyhessian/hessian.py``).
    """
    dim = check_int(dim, "dim", 1)
    draws = check_int(draws, "draws", 2)
    samples: list[float] = []
    for _ in range(draws):
        z = rng.integers(0, 2, size=dim).astype(np.float64) * 2.0 - 1.0
        hz = _product(hvp, z)
        if hz is None:
            return HutchinsonTrace(float("nan"), float("nan"), tuple(samples))
        samples.append(float(z @ hz))
    x = np.asarray(samples)
    return HutchinsonTrace(float(x.mean()), float(x.std(ddof=1) / math.sqrt(draws)), tuple(samples))


# ----------------------------------------------------------------------------- adapters
def _loss_hvp(ctx, what: str) -> tuple[HessianVectorProduct, int]:
    """The context's ``(hvp, dim)`` of the mean sample loss (compiled once per context, shared by both measures)."""
    from baselines import tf_ops
    from gen_measures.context import require_samples

    require_samples(ctx, what)
    last = ctx.model.layers[-1]
    # outputs are logits unless the last layer applies a softmax (WeightPerturbation's rule)
    from_logits = getattr(getattr(last, "activation", None), "__name__", "") != "softmax"
    return ctx.memo("tf_ops.loss_hessian_vector_product", lambda: tf_ops.loss_hessian_vector_product_function(
        ctx.model, ctx.x, ctx.y, from_logits=from_logits, batch_size=ctx.batch_size))


@register_measure("hessian_top_eigenvalue", direction=LARGER_GAP, needs=("data", "gradients"), family="catalogue",
                  reference=REFERENCE, default=False)
def hessian_top_eigenvalue(ctx) -> MeasureResult:
    """Top eigenvalue of the Hessian of the mean training loss (power iteration, PyHessian's rule).

    At most :data:`MAX_ITERATIONS` (100) Hessian-vector products over the sample, stopped at a
    relative change :data:`RELATIVE_TOLERANCE` (1e-3) of consecutive estimates; seeded
    Gaussian start vector (``ctx.rng("hessian_top_eigenvalue")``). Details: ``iterations``
    (= ``hvps``, the cost), ``converged``, ``history_tail`` (the last 5 estimates),
    ``parameters`` (the dimension of the Hessian) and ``examples``. See the module docstring.

    References
    ----------
    Keskar et al. (2017), ICLR; Yao et al. (2020), PyHessian, ``hessian.eigenvalues``.
    """
    hvp, dim = _loss_hvp(ctx, "hessian_top_eigenvalue")
    out = power_iteration(hvp, dim, ctx.rng("hessian_top_eigenvalue"))
    return MeasureResult(out.eigenvalue, {
        "iterations": out.iterations,
        "converged": out.converged,
        "history_tail": list(out.history[-HISTORY_TAIL:]),
        "hvps": out.iterations,
        "max_iterations": MAX_ITERATIONS,
        "tolerance": RELATIVE_TOLERANCE,
        "parameters": dim,
        "examples": ctx.n_samples,
    })


@register_measure("hessian_trace", direction=LARGER_GAP, needs=("data", "gradients"), family="catalogue",
                  reference=REFERENCE, default=False)
def hessian_trace(ctx) -> MeasureResult:
    """Trace of the Hessian of the mean training loss (Hutchinson, 50 Rademacher draws).

    Seeded Rademacher vectors (``ctx.rng("hessian_trace")``). Details: ``draws`` (= ``hvps``,
    the cost), ``standard_error`` of the estimate, ``parameters`` (the dimension of the
    Hessian) and ``examples``. See the module docstring.

    References
    ----------
    Hutchinson (1989); Yao et al. (2020), PyHessian, ``hessian.trace``.
    """
    hvp, dim = _loss_hvp(ctx, "hessian_trace")
    out = hutchinson_trace(hvp, dim, ctx.rng("hessian_trace"))
    return MeasureResult(out.trace, {
        "draws": out.draws,
        "standard_error": out.standard_error,
        "hvps": out.draws,
        "parameters": dim,
        "examples": ctx.n_samples,
    })
