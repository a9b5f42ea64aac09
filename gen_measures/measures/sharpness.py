"""Sharpness: how small a weight perturbation costs 10 points of training accuracy.

* ``sharpness`` (worst case, magnitude-aware): the largest box scale ``alpha`` such that an
  adversarial perturbation ``u`` with ``|u_i| <= alpha (|w_i| + eps)`` (eps = 1e-3), found by
  projected sign-gradient *ascent* of the training loss, lowers the sample accuracy by at most
  0.1. Value ``1 / alpha^2``.
* ``pacbayes_sharpness``: ``1 / sigma^2`` for the Gaussian weight-noise scale ``sigma`` whose
  noise ``u ~ N(0, sigma^2 I)`` displaces the mean accuracy over 10 draws (on 500 examples of
  the sample) by 0.1, to 0.01: the PAC-Bayes search of Jiang et al. and of Dziugaite et al.'s
  reference (bisection on [0, 2], at most 15 steps; :func:`gen_measures.measures.perturbation.pacbayes_sigma`),
  with common random numbers across the steps. The catalogue's ``pacbayes_*`` measures use the
  same search (:func:`pacbayes_search`, computed once per model).

Both evaluate perturbed weights with :class:`~gen_measures.measures.perturbation.PerturbationEngine`,
which stops an evaluation as soon as its answer is certain (same answers, fewer forward
passes; the passes are in the details). All randomness comes from the context's seed. Both
point ``LARGER_GAP``. Unlike the PGDL starting kit's sharpness baseline (which descends the loss
and so returns a constant, see ``baselines.kit.kit_sharpness``), the perturbation here ascends
the loss, so the value varies across models. Both perturb every trainable variable of the
model as stored (kernels, biases, BatchNorm scales and shifts); the reference perturbs the
parameters of the BatchNorm-folded network.

References
----------
Jiang, Y., Neyshabur, B., Mobahi, H., Krishnan, D. & Bengio, S. (2020). "Fantastic
generalization measures and where to find them", ICLR, appendix C (sharpness and PAC-Bayes
flatness measures). Keskar et al. (2017), "On large-batch training for deep learning".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from gen_measures.measures.perturbation import OVER, UNDER, PerturbationEngine, SigmaSearch, pacbayes_sigma
from gen_measures.registry import LARGER_GAP, MeasureResult, register_measure

REFERENCE = (
    "Jiang, Neyshabur, Mobahi, Krishnan & Bengio 2020, 'Fantastic generalization measures and where to find them', "
    "ICLR, appendix C (sharpness, PAC-Bayes flatness)"
)
TARGET_DROP = 0.1


@dataclass
class SearchResult:
    """Outcome of a scale search: the scale, the accuracy drop measured there, and the trace."""

    scale: float
    drop: float
    evaluations: int
    offsets: list[np.ndarray] = field(default_factory=list, repr=False)
    trace: list[tuple[float, float]] = field(default_factory=list, repr=False)
    passes: float = 0.0


def largest_scale_within_drop(
    drop_at: Callable[[float], float],
    *,
    target: float = TARGET_DROP,
    start: float,
    lo_bound: float,
    hi_bound: float,
    steps: int,
) -> tuple[float, list[tuple[float, float]]]:
    """Largest scale ``s`` in ``[lo_bound, hi_bound]`` with ``drop_at(s) <= target``.

    Brackets by doubling/halving from ``start``, then bisects (geometrically when the bracket
    is positive) for ``steps`` rounds. Returns the scale and the ``(scale, drop)`` trace.
    A drop that is still within target at ``hi_bound`` returns ``hi_bound``; one above target
    even at ``lo_bound`` returns ``lo_bound``.
    """
    trace: list[tuple[float, float]] = []

    def ok(s: float) -> bool:
        d = drop_at(s)
        trace.append((s, d))
        return d <= target

    s = min(max(start, lo_bound), hi_bound)
    if ok(s):
        lo, hi = s, None
        while lo < hi_bound:
            nxt = min(lo * 2, hi_bound)
            if ok(nxt):
                lo = nxt
            else:
                hi = nxt
                break
        if hi is None:
            return lo, trace
    else:
        hi, lo = s, None
        while hi > lo_bound:
            nxt = max(hi / 2, lo_bound)
            if ok(nxt):
                lo = nxt
                break
            hi = nxt
        if lo is None:
            return lo_bound, trace
    for _ in range(steps):
        mid = math.sqrt(lo * hi) if lo > 0 else (lo + hi) / 2
        if ok(mid):
            lo = mid
        else:
            hi = mid
    return lo, trace


def worst_case_sharpness(
    engine: PerturbationEngine,
    rng: np.random.Generator,
    gradient_batch: Callable[[int], tuple[np.ndarray, np.ndarray]],
    *,
    target: float = TARGET_DROP,
    eps: float = 1e-3,
    ascent_steps: int = 2,
    bisection_steps: int = 6,
    start: float = 0.01,
) -> SearchResult:
    """Magnitude-aware worst-case sharpness scale ``alpha`` (see the module docstring).

    Parameters
    ----------
    engine : evaluates the accuracy of perturbed weights (:class:`PerturbationEngine`); an
        attack whose drop is certainly above ``target`` stops its evaluation early, an attack
        within target is evaluated on every example (its drop is exact).
    rng : the random start inside the box comes from it.
    gradient_batch : ``gradient_batch(step)`` = the ``(x, y)`` mini-batch of ascent step ``step``.
    """
    base = engine.base
    mags = [np.abs(w).astype(np.float64) + eps for w in base]
    last: dict[float, tuple[float, list[np.ndarray]]] = {}

    def classify(d_min: float, d_max: float) -> str | None:
        if d_min > target:
            return OVER
        return UNDER if d_min == d_max else None

    def attack(alpha: float) -> float:
        boxes = [alpha * m for m in mags]
        u = [rng.uniform(-1, 1, size=b.shape) * b * 0.5 for b in boxes]
        for step in range(ascent_steps):
            engine.set_offsets(u)
            grads = engine.loss_gradient(*gradient_batch(step))
            u = [np.clip(ui + 0.5 * b * np.sign(g), -b, b) for ui, b, g in zip(u, boxes, grads)]
        decision = engine.decide([lambda: u], classify)
        drop = decision.drop if decision.complete else engine.acc0 - decision.bounds[1]
        drop = drop if math.isfinite(drop) else math.inf
        last[alpha] = (drop, u)
        return drop

    alpha, trace = largest_scale_within_drop(attack, target=target, start=start, lo_bound=1e-6, hi_bound=1e3,
                                             steps=bisection_steps)
    drop, offsets = last[alpha]
    return SearchResult(alpha, drop, len(trace), offsets, trace)


def gaussian_sharpness(engine: PerturbationEngine, rng: np.random.Generator, *, magnitude_aware: bool = False,
                       eps: float = 1e-3, **options) -> SigmaSearch:
    """The PAC-Bayes noise scale sigma: :func:`gen_measures.measures.perturbation.pacbayes_sigma`
    (plain noise, or magnitude-aware with epsilon ``eps``); ``options`` are passed on."""
    return pacbayes_sigma(engine, rng, magnitude_eps=eps if magnitude_aware else None, **options)


# ----------------------------------------------------------------------------- adapters
SHARPNESS_BATCH = 128
PACBAYES_SAMPLES = 500


def _sharpness_search(ctx) -> SearchResult:
    from gen_measures.context import require_samples

    require_samples(ctx, "sharpness")
    rng = ctx.rng("sharpness")
    order = rng.permutation(ctx.n_samples)

    def gradient_batch(step: int):
        idx = np.take(order, np.arange(step * SHARPNESS_BATCH, (step + 1) * SHARPNESS_BATCH), mode="wrap")
        return ctx.x[idx], ctx.y[idx]

    with PerturbationEngine(ctx) as engine:
        result = worst_case_sharpness(engine, rng, gradient_batch)
        result.passes = engine.passes
    return result


@register_measure("sharpness", direction=LARGER_GAP, needs=("data", "gradients"), reference=REFERENCE)
def sharpness(ctx) -> MeasureResult:
    """1/alpha^2, alpha = largest magnitude-aware box whose worst-case perturbation costs <= 0.1 accuracy."""
    result = ctx.memo("sharpness_search", lambda: _sharpness_search(ctx))
    if result.scale <= 0:
        return MeasureResult(float("nan"), {"alpha": result.scale})
    return MeasureResult(1.0 / result.scale**2, {"alpha": result.scale, "drop": result.drop, "evaluations": result.evaluations,
                                                 "passes": round(result.passes, 3)})


def pacbayes_search(ctx, magnitude_eps: float | None = None) -> SigmaSearch:
    """The PAC-Bayes sigma of ``ctx``'s model (:func:`gaussian_sharpness` on a seeded subset of
    ``PACBAYES_SAMPLES`` (500) examples of the sample), computed once per context and
    ``magnitude_eps``: ``pacbayes_sharpness`` and the catalogue's ``pacbayes_*`` measures share it."""
    from gen_measures.context import require_samples

    def search() -> SigmaSearch:
        require_samples(ctx, "the PAC-Bayes sigma search")
        rng = ctx.rng("pacbayes_sharpness" if magnitude_eps is None else "pacbayes_magnitude")
        idx = np.sort(rng.permutation(ctx.n_samples)[:PACBAYES_SAMPLES])
        # one forward call per draw (the evaluation set is small): early answers come per draw
        with PerturbationEngine(ctx, ctx.x[idx], ctx.y[idx], batch_size=max(ctx.batch_size, len(idx))) as engine:
            return pacbayes_sigma(engine, rng, magnitude_eps=magnitude_eps)

    return ctx.memo(("pacbayes_sigma", magnitude_eps), search)


@register_measure("pacbayes_sharpness", direction=LARGER_GAP, needs=("data",), reference=REFERENCE)
def pacbayes_sharpness(ctx) -> MeasureResult:
    """1/sigma^2, sigma = the Gaussian weight-noise scale displacing the mean accuracy by 0.1 (10 draws).

    The same search as the catalogue's ``pacbayes_flatness`` (:func:`pacbayes_search`), which
    reports it adjusted for the dataset size (``sqrt(1 / (sigma^2 m))``); this value is not adjusted.
    """
    result = pacbayes_search(ctx)
    return MeasureResult(1.0 / result.sigma**2, result.details())
