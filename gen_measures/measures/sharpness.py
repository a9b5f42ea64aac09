"""Sharpness: how small a weight perturbation costs 10 points of training accuracy.

* ``sharpness`` (worst case, magnitude-aware): the box scale ``alpha`` at which an
  adversarial perturbation ``u`` with ``|u_i| <= alpha (|w_i| + eps)`` (eps = 1e-3), found by
  projected sign-gradient *ascent* of the training loss, lowers the sample accuracy by 0.1:
  the largest scale found whose drop is at most 0.1, and at least 0.095 unless the bracket
  narrows to 1.1 % first (:func:`largest_scale_within_drop`). Value ``1 / alpha^2``.
* ``pacbayes_sharpness``: ``1 / sigma^2`` for the Gaussian weight-noise scale ``sigma`` whose
  noise ``u ~ N(0, sigma^2 I)`` displaces the mean accuracy over 10 draws (on 500 examples of
  the sample) by 0.1, to 0.01: the PAC-Bayes search of Jiang et al. and of Dziugaite et al.'s
  reference (sigma in [0, 2], at most 15 points; :func:`gen_measures.measures.perturbation.pacbayes_sigma`),
  with common random numbers across the points. The catalogue's ``pacbayes_*`` measures use the
  same search (:func:`pacbayes_search`, computed once per model).

Both searches place their points by interpolating the measured drops (regula falsi on
``logit(drop / acc0)`` against the log of the scale) where the reference bisects, and so need
fewer of them for the same definition. On the 64 models of the bundled zoo (seed 0): the plain
PAC-Bayes search evaluates 26 (digits) / 34 (shapes) noise draws per model instead of 51 / 55
with the reference's bisection, sharpness 24 / 15 sample passes instead of 31 / 25; the values'
Kendall tau against the bisection's is 0.94 / 0.92 (PAC-Bayes) and 0.95 / 0.96 (sharpness),
against 0.84 / 0.63 and 0.88 / 0.96 between two seeds of the bisection itself. The sharpness
attacks start from one random direction scaled to each box (common random numbers): 19 / 13
passes instead of 24 / 15 with a fresh start per scale, Kendall tau 0.93 / 0.98 against the
fresh starts' values of the same seed, 0.88 / 0.97 between two seeds of the fresh starts. The
sharpness points are aimed at the middle of the accepted drop window, not at its upper edge:
5.6 / 4.7 attacks and 17.4 / 13.5 passes per model instead of 6.0 / 4.6 and 18.7 / 13.4,
Kendall tau 0.996 / 0.992 against the edge-aimed values (seed 0, sample of 2000). Both
searches take the trained accuracy from the context's cached outputs (one pass fewer). The
PAC-Bayes search then starts from a probe of the drop curve (draw 0 alone at 8 noise scales, one
call): 2.25 (digits) / 2.9 (shapes) points per model instead of 4.3 / 5.4, for about as many
draws (30.5 / 37 including the probe's 8, against 30.4 / 42) but fewer calls; Kendall tau of its
values against the unprobed search's 0.94 / 0.94 (seed 0) and 0.91 / 0.96 (seed 1), against
0.81 / 0.65 between those two seeds without the probe (0.84 / 0.62 with it).

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

from gen_measures.measures.perturbation import (OVER, UNDER, Bracket, PerturbationEngine, SigmaSearch, logit_of_drop,
                                                pacbayes_sigma)
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


#: Bracket ratio ``hi / lo`` at which a scale search stops refining (2^(1/64), 1.1 %).
RESOLUTION = 2 ** (1 / 64)
#: Evaluations a scale search makes at most (a safeguard; searches end after about 6).
MAX_EVALUATIONS = 40


def largest_scale_within_drop(
    drop_at: Callable[[float], float],
    *,
    target: float = TARGET_DROP,
    tolerance: float = 0.01,
    start: float,
    lo_bound: float,
    hi_bound: float,
    steps: int,
    acc0: float = 1.0,
) -> tuple[float, list[tuple[float, float]]]:
    """The scale ``s`` in ``[lo_bound, hi_bound]`` where ``drop_at(s)`` reaches ``target``, from below.

    Returns the first evaluated scale whose drop is within ``tolerance`` below the target
    (``target - tolerance <= drop <= target``); failing that, after ``steps`` refinements of the
    bracket or once it is narrower than :data:`RESOLUTION`, the largest scale known to be
    within target (the bracket's lower end). Points are placed by
    :func:`~gen_measures.measures.perturbation.next_point` on ``logit(drop / acc0)`` against
    ``log s``: extrapolation from ``start`` until the target is bracketed, then regula falsi.
    A drop still within target at ``hi_bound`` returns ``hi_bound``; one above target even at
    ``lo_bound`` returns ``lo_bound``. Also returns the ``(scale, drop)`` trace.
    """
    trace: list[tuple[float, float]] = []
    # points are aimed at the middle of the accepted window [target - tolerance, target], not at
    # its upper edge: a measured drop scatters around the interpolated one, and aimed at the
    # edge about half the points land over the target and are rejected
    g_target = logit_of_drop(target - tolerance / 2, acc0)
    bracket = Bracket(lo_bound, hi_bound, acc0)
    s = min(max(start, lo_bound), hi_bound)
    refinements = 0
    while len(trace) < MAX_EVALUATIONS:
        d = drop_at(s)
        trace.append((s, d))
        bracket.record(s, d, d > target)
        if d <= target and (d >= target - tolerance or s >= hi_bound):
            return s, trace
        if d > target and s <= lo_bound:
            return lo_bound, trace
        if bracket.closed:
            if refinements >= steps or bracket.hi / bracket.lo <= RESOLUTION:
                return bracket.lo, trace
            refinements += 1
        s = min(max(bracket.next(g_target, hi_bound), lo_bound), hi_bound)
    return (bracket.lo if bracket.g_lo is not None else lo_bound), trace


def worst_case_sharpness(
    engine: PerturbationEngine,
    rng: np.random.Generator,
    gradient_batch: Callable[[int], tuple[np.ndarray, np.ndarray]],
    *,
    target: float = TARGET_DROP,
    eps: float = 1e-3,
    ascent_steps: int = 2,
    refine_steps: int = 6,
    tolerance: float = 0.005,
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
    flat_mags = np.concatenate([m.ravel() for m in mags])
    last: dict[float, tuple[float, list[np.ndarray]]] = {}
    # common random numbers: one random start direction for every scale (drawn variable by
    # variable), so the drop is a smoother function of alpha and the search needs fewer points
    start_dir = np.concatenate([(rng.uniform(-1, 1, size=m.shape) * m * 0.5).ravel() for m in mags])

    def classify(d_min: float, d_max: float) -> str | None:
        if d_min > target:
            return OVER
        return UNDER if d_min == d_max else None

    def attack(alpha: float) -> float:
        u = alpha * start_dir  # the random start inside the box (flat float64 vectors from here on)
        box = alpha * flat_mags
        u = engine.ascent(u, box, [gradient_batch(step) for step in range(ascent_steps)])
        decision = engine.decide([lambda: u], classify)
        drop = decision.drop if decision.complete else decision.estimate  # an early 'over': the drop so far
        drop = drop if math.isfinite(drop) else math.inf
        last[alpha] = (drop, u)
        return drop

    alpha, trace = largest_scale_within_drop(attack, target=target, tolerance=tolerance, start=start, lo_bound=1e-6,
                                             hi_bound=1e3, steps=refine_steps, acc0=engine.acc0)
    drop, offsets = last[alpha]
    sizes = np.cumsum([w.size for w in base])[:-1]
    offsets = [part.reshape(w.shape) for part, w in zip(np.split(offsets, sizes), base)]
    return SearchResult(alpha, drop, len(trace), offsets, trace)


def gaussian_sharpness(engine: PerturbationEngine, rng: np.random.Generator, *, magnitude_aware: bool = False,
                       eps: float = 1e-3, **options) -> SigmaSearch:
    """The PAC-Bayes noise scale sigma: :func:`gen_measures.measures.perturbation.pacbayes_sigma`
    (plain noise, or magnitude-aware with epsilon ``eps``); ``options`` are passed on."""
    return pacbayes_sigma(engine, rng, magnitude_eps=eps if magnitude_aware else None, **options)


# ----------------------------------------------------------------------------- adapters
SHARPNESS_BATCH = 128
PACBAYES_SAMPLES = 500
#: An evaluation set of at most this many examples is evaluated in one call (one call's fixed
#: cost is about a quarter of a forward pass over the bundled zoo's samples); a larger one goes
#: in batches of the context's size, so that an attack far over target stops early.
ONE_CALL_EXAMPLES = 500


def _evaluation_batch(ctx, n: int) -> int:
    """The engine's batch size for an evaluation set of ``n`` examples (:data:`ONE_CALL_EXAMPLES`)."""
    return max(ctx.batch_size, n) if n <= ONE_CALL_EXAMPLES else ctx.batch_size


def sharpness_search(ctx, **options) -> SearchResult:
    """The search of the ``sharpness`` measure on ``ctx``'s model (:func:`worst_case_sharpness`
    on the sample, ascent batches of :data:`SHARPNESS_BATCH` examples from the context's seeded
    order). ``options`` are passed on to :func:`worst_case_sharpness` (e.g. ``ascent_steps``,
    ``tolerance``): for studies of the definition (``benchmarks/bench_sharpness_variants.py``);
    the measure uses the defaults."""
    from gen_measures.context import require_samples

    require_samples(ctx, "sharpness")
    rng = ctx.rng("sharpness")
    order = rng.permutation(ctx.n_samples)

    def gradient_batch(step: int):
        idx = np.take(order, np.arange(step * SHARPNESS_BATCH, (step + 1) * SHARPNESS_BATCH), mode="wrap")
        return ctx.x[idx], ctx.y[idx]

    with PerturbationEngine(ctx, batch_size=_evaluation_batch(ctx, ctx.n_samples), acc0=ctx.accuracy(warn=False)) as engine:
        result = worst_case_sharpness(engine, rng, gradient_batch, **options)
        result.passes = engine.passes
    return result


@register_measure("sharpness", direction=LARGER_GAP, needs=("data", "gradients"), reference=REFERENCE)
def sharpness(ctx) -> MeasureResult:
    """1/alpha^2, alpha = largest magnitude-aware box whose worst-case perturbation costs <= 0.1 accuracy."""
    result = ctx.memo("sharpness_search", lambda: sharpness_search(ctx))
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
        with PerturbationEngine(ctx, ctx.x[idx], ctx.y[idx], batch_size=_evaluation_batch(ctx, len(idx)),
                                acc0=ctx.accuracy(idx, warn=False)) as engine:
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
