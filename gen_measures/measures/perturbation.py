"""The perturbation engine shared by every sharpness and flatness measure.

Every such measure asks the same question many times: *at these perturbed weights, is the
training accuracy lowered by more than a target?* (the worst-case ``sharpness``, the PAC-Bayes
sigma searches of ``pacbayes_sharpness`` and of the catalogue's ``pacbayes_*`` measures).
:class:`PerturbationEngine` answers it for one or several perturbations (Monte-Carlo draws)
whose mean accuracy counts, streaming the evaluation set batch by batch and **stopping as
soon as the answer is certain**: after ``s`` of the ``N`` examples (draws x evaluation set)
with ``c`` correct, the final mean accuracy lies in ``[c / N, (c + N - s) / N]`` whatever the
rest gives, so once every value of that interval gets the same answer the remaining batches and
draws cannot change it and are skipped. The answer is therefore exactly the one a full
evaluation would give; only the cost changes. A batch with a non-finite output makes the
draw's accuracy NaN, i.e. an infinite drop (always "too much").

:func:`pacbayes_sigma` is the one PAC-Bayes sigma search (Jiang et al. 2020, appendix C.3;
Dziugaite et al. 2020's ``_pacbayes_sigma``): the sigma in ``[0, 2]`` whose Gaussian weight
noise displaces the mean accuracy over 10 draws by 0.1, to 0.01, looked for in at most 15
points. The draws are *common random numbers*: draw ``j`` is ``std(sigma) * z_j`` with the same
standard normal ``z_j`` at every point, so the displacement is a deterministic, nearly monotone
function of sigma (the reference draws fresh noise at every step). The reference places its
points by bisection starting at 1 (``points="bisection"`` here); by default the points are
placed by interpolating the measured drops (:func:`search_sigma`), which reaches a point within
the tolerance in fewer points, starting from a probe of the drop curve (one draw at 8 scales in
one call, :func:`probe_start`). Every point that is within the tolerance answers the
definition; which one is found differs by less than the measure's own seeded noise (see the
benchmarks).

Cost is counted in passes over the context's sample (``examples evaluated / ctx.n_samples``),
the unit of the benchmarks' forward-pass equivalents.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np


__all__ = ["Bracket", "Decision", "PerturbationEngine", "SigmaSearch", "clip_slope", "displacement_class", "logit_of_drop",
           "next_point", "pacbayes_sigma", "probe_start", "search_sigma", "side_slope"]

#: Answers of the decisions.
UNDER, WITHIN, OVER = "under", "within", "over"
#: Noise draws kept in memory at most (float32 elements) before they are regenerated from their seeds.
_MAX_CACHED_NOISE = 50_000_000
#: Draws evaluated in the first call of a decision (far "over" answers are certain after two
#: draws), then per call; and the offsets of one call at most (float64 elements, 64 MB).
FIRST_CHUNK = 2
CHUNK = 4
_MAX_CHUNK_ELEMENTS = 8_000_000


@dataclass
class Decision:
    """The answer for one set of perturbations.

    ``answer``: the class the mean accuracy drop falls in; ``drop``: the drop when every example
    was evaluated (``complete``), else NaN; ``bounds``: the interval of the final mean accuracy
    known when the evaluation stopped; ``draws``: perturbations evaluated (in part or fully);
    ``estimate``: the drop over the examples evaluated (the drop itself when ``complete``; inf
    when an output was not finite), what a search may use to place its next point.
    """

    answer: str
    drop: float
    bounds: tuple[float, float]
    draws: int
    complete: bool
    estimate: float = math.nan


class PerturbationEngine:
    """Accuracy of perturbed trainable weights on a fixed evaluation set, with early decisions.

    Parameters
    ----------
    ctx : the :class:`~gen_measures.context.ModelContext`; its weights come back on :meth:`close`
        (or on leaving the ``with`` block).
    x, y : the evaluation set (default: the context's sample).
    batch_size : examples per forward pass (default: the context's).
    acc0 : the accuracy at the trained weights on the evaluation set when already known (the
        measures take it from the context's cached outputs on the sample, a pass every run
        makes anyway); default: measured here, one pass.

    Attributes
    ----------
    base : the trainable weights (numpy), the point perturbations are offsets from.
    acc0 : the accuracy at ``base`` on the evaluation set.
    passes : examples evaluated so far (``acc0`` included when measured here) / ``ctx.n_samples``.
    """

    def __init__(self, ctx, x: np.ndarray | None = None, y: np.ndarray | None = None, *,
                 batch_size: int | None = None, acc0: float | None = None) -> None:
        self.ctx = ctx
        self.x = ctx.x if x is None else x
        self.y = ctx.y if y is None else y
        self.batch_size = int(batch_size or ctx.batch_size)
        self._p = ctx.perturbation()
        self.base = self._p.base
        self.passes = 0.0
        self.acc0 = self._full_accuracy() if acc0 is None else float(acc0)

    def __enter__(self) -> PerturbationEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Put the trained weights back."""
        self._p.restore()

    def _count(self, n: int) -> None:
        self.passes += n / max(1, self.ctx.n_samples)

    def _full_accuracy(self) -> float:
        """Accuracy at ``base`` (the weights as the engine found them) on the evaluation set (NaN
        when an output is not finite)."""
        correct = 0
        for start in range(0, len(self.y), self.batch_size):
            sl = slice(start, start + self.batch_size)
            hits, finite = self._p.count_correct(self.x[sl], self.y[sl])
            if not finite:
                return math.nan
            correct += hits
        self._count(len(self.y))
        return correct / len(self.y) if len(self.y) else math.nan

    def set_offsets(self, offsets: Sequence[np.ndarray] | np.ndarray) -> None:
        self._p.set_offsets(offsets)

    def loss_gradient(self, x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
        """Cross-entropy gradient at the current weights on ``(x, y)`` (counted as 3 passes over ``x``)."""
        self._count(3 * len(y))
        return self._p.loss_gradient(x, y)[1]

    def ascent_step(self, u: np.ndarray, box: np.ndarray, x: np.ndarray, y: np.ndarray, step: float = 0.5) -> np.ndarray:
        """``clip(u + step * box * sign(grad at base + u), -box, box)`` on ``(x, y)``, flat vectors
        (:meth:`~gen_measures.context.WeightPerturbation.sign_ascent_step`; counted as 3 passes over ``x``)."""
        return self.ascent(u, box, [(x, y)], step)

    def ascent(self, u: np.ndarray, box: np.ndarray, batches: Sequence[tuple[np.ndarray, np.ndarray]],
               step: float = 0.5) -> np.ndarray:
        """:meth:`ascent_step` once per ``(x, y)`` of ``batches``, each step from the previous
        one's result (:meth:`~gen_measures.context.WeightPerturbation.sign_ascent_steps`: one
        call of the architecture's compiled loss gradient per step; 3 passes per example)."""
        self._count(3 * sum(len(y) for _, y in batches))
        return self._p.sign_ascent_steps(u, box, batches, step)

    def decide(self, draws: Sequence[Callable[[], Sequence[np.ndarray]]],
               classify: Callable[[float, float], str | None], *, first: int | None = None) -> Decision:
        """Evaluate the mean accuracy over ``draws`` (each a function returning offsets) until
        ``classify(drop_min, drop_max)`` names one answer for the whole interval of possible
        final drops (``acc0 - mean accuracy``), or everything is evaluated.

        ``classify`` returns the answer, or ``None`` while the interval straddles a boundary;
        with a single point (everything evaluated) it must answer. The interval is examined
        after every batch of every draw, in order, whether the draws are evaluated one call per
        batch or, when the evaluation set is one batch, several draws per call (:meth:`_results`):
        the answer, its bounds and its draw count do not depend on how they were grouped.
        ``first``: draws of the first call (default :data:`FIRST_CHUNK`; a search that expects a
        point near its target, where every draw counts, asks for all of them at once).
        """
        n_eval = len(self.y)
        total = n_eval * len(draws)
        seen = correct = 0
        for used, hits, finite, size in self._results(draws, None if first is None else max(1, int(first))):
            if not finite:
                return Decision(classify(math.inf, math.inf), math.inf, (math.nan, math.nan), used, False, math.inf)
            correct += hits
            seen += size
            lo, hi = correct / total, (correct + total - seen) / total
            if seen < total:
                answer = classify(self.acc0 - hi, self.acc0 - lo)
                if answer is not None:
                    return Decision(answer, math.nan, (lo, hi), used, False, self.acc0 - correct / seen)
        mean = correct / total
        drop = self.acc0 - mean
        return Decision(classify(drop, drop), drop, (mean, mean), len(draws), True, drop)

    def _results(self, draws, first: int | None = None, chunk: int | None = None) -> Iterator[tuple[int, int, bool, int]]:
        """``(draw number from 1, correct, finite, examples)`` per batch of each draw, evaluated
        lazily (what is not asked for is not evaluated). With an evaluation set of one batch and
        several draws, the draws go ``first`` (default :data:`FIRST_CHUNK`) to the first call and
        ``chunk`` (default :data:`CHUNK`) to each later one (:meth:`~gen_measures.context.WeightPerturbation.count_correct_many`, one
        compiled call per group); a group's draws past the answer are evaluated, and counted in
        :attr:`passes`, but not used."""
        n_eval = len(self.y)
        if len(draws) > 1 and 0 < n_eval <= self.batch_size:
            cap = self._group_cap()
            used, size = 0, FIRST_CHUNK if first is None else first
            chunk = CHUNK if chunk is None else chunk
            while used < len(draws):
                group = draws[used:used + min(size, cap)]
                hits, finite = self._p.count_correct_many(self.x, self.y, [make() for make in group])
                self._count(n_eval * len(group))
                for h, ok in zip(hits, finite):
                    used += 1
                    yield used, int(h), bool(ok), n_eval
                size = chunk
            return
        for used, make in enumerate(draws, 1):
            offsets = make()
            for start in range(0, n_eval, self.batch_size):
                sl = slice(start, min(start + self.batch_size, n_eval))
                # the draw's offsets are set with its first batch; later batches run at the same weights
                hits, finite = self._p.count_correct(self.x[sl], self.y[sl], offsets if start == 0 else None)
                self._count(sl.stop - sl.start)
                yield used, hits, finite, sl.stop - sl.start

    def _group_cap(self) -> int:
        """Offset vectors one call may hold (:data:`_MAX_CHUNK_ELEMENTS`)."""
        return max(1, _MAX_CHUNK_ELEMENTS // max(1, self._p.size))

    def drops(self, rows: Sequence[np.ndarray]) -> np.ndarray:
        """The accuracy drop ``acc0 - accuracy`` at ``base + row`` for each offset vector of
        ``rows``, every example evaluated (inf where an output is not finite): what a search
        probes its scale with. With an evaluation set of one batch the rows share calls (as many
        as the memory cap allows), otherwise each row streams the batches (:meth:`_results`)."""
        n_eval = len(self.y)
        if not n_eval:
            return np.full(len(rows), math.nan)
        correct = np.zeros(len(rows))
        finite = np.ones(len(rows), bool)
        every = max(1, len(rows))
        for used, hits, ok, _ in self._results([lambda row=row: row for row in rows], first=every, chunk=every):
            correct[used - 1] += hits
            finite[used - 1] &= ok
        return np.where(finite, self.acc0 - correct / n_eval, math.inf)


def displacement_class(target: float, tolerance: float) -> Callable[[float, float], str | None]:
    """The PAC-Bayes search's answer from an interval of drops: ``"within"`` when the
    displacement ``|drop|`` is within ``tolerance`` of ``target`` (strictly), ``"over"`` when it
    is above, ``"under"`` when below; ``None`` while the interval allows two answers."""

    def one(d: float) -> str:
        d = abs(d)
        if abs(d - target) < tolerance:
            return WITHIN
        return OVER if d > target else UNDER

    def classify(d_min: float, d_max: float) -> str | None:
        if not (math.isfinite(d_min) and math.isfinite(d_max)):
            return OVER
        # |drop| over [d_min, d_max]: its range, then the answers at the ends (classes are intervals of |drop|)
        lo = 0.0 if d_min <= 0 <= d_max else min(abs(d_min), abs(d_max))
        hi = max(abs(d_min), abs(d_max))
        a, b = one(lo), one(hi)
        return a if a == b else None

    return classify


@dataclass
class SigmaSearch:
    """Result of :func:`pacbayes_sigma`: sigma, the steps ``(sigma, answer, draws evaluated)``,
    passes over the sample it cost, the base accuracy, and the probe's ``(sigma, drop of draw
    0)`` pairs (empty without a probe)."""

    sigma: float
    steps: list[tuple[float, str, int]] = field(default_factory=list)
    passes: float = 0.0
    acc0: float = math.nan
    points: str = "interpolated"
    probe: list[tuple[float, float]] = field(default_factory=list)

    def details(self) -> dict:
        out = {"sigma": self.sigma, "steps": len(self.steps), "points": self.points, "passes": round(self.passes, 3),
               "draws_evaluated": sum(s[2] for s in self.steps), "base_accuracy": self.acc0,
               "trace": [[s, a, n] for s, a, n in self.steps]}
        if self.probe:
            out["probe"] = [[sc, d] for sc, d in self.probe]
        return out


#: Points of the sigma search: the reference's bisection, or bracketing points placed by interpolation.
POINTS = ("interpolated", "bisection")
#: Slope of ``logit(drop / acc0)`` against ``log sigma`` assumed where only one side of the root
#: is known (measured 2.3-3.1 near a drop of 0.1 on the bundled zoo's models, plain noise).
LOGIT_SLOPE = 2.5


def logit_of_drop(drop: float, acc0: float) -> float:
    """``logit(drop / acc0)``, the fraction of the accuracy lost, clipped to [1e-3, 1 - 1e-3]."""
    g = min(max(drop / acc0 if acc0 > 0 else 1.0, 1e-3), 1 - 1e-3) if math.isfinite(drop) else 1 - 1e-3
    return math.log(g / (1 - g))


def side_slope(points: Sequence[tuple[float, float]], default: float = LOGIT_SLOPE) -> float:
    """The slope of ``logit(drop / acc0)`` against ``log s`` to extrapolate with while the target
    is bracketed from one side only: the secant through the last two ``(s, logit)`` points of that
    side, kept within [0.5, 10], when both lie below the plateau (less than half of the accuracy
    lost; on the plateau of chance-level accuracy the logit is flat and says nothing of the slope
    below it); ``default`` (:data:`LOGIT_SLOPE`, or a slope measured beforehand) otherwise."""
    if len(points) < 2 or points[-1][0] == points[-2][0] or max(points[-1][1], points[-2][1]) >= 0:
        return default
    (s1, g1), (s2, g2) = points[-2], points[-1]
    slope = (g2 - g1) / (math.log(s2) - math.log(s1))
    return clip_slope(slope, default)


def clip_slope(slope: float, default: float = LOGIT_SLOPE) -> float:
    """``slope`` kept within [0.5, 10] (``default`` when it is not finite)."""
    return min(max(slope, 0.5), 10.0) if math.isfinite(slope) else default


def next_point(lo: float, g_lo: float | None, hi: float, g_hi: float | None, g_target: float,
               upper: float, slope: float = LOGIT_SLOPE) -> float | None:
    """The next point of an interpolated scale search (PAC-Bayes sigma, sharpness alpha),
    strictly inside the bracket ``(lo, hi)``.

    ``g_lo``/``g_hi``: ``logit(drop / acc0)`` measured at the ends (``None`` where the end was
    not evaluated: ``lo = 0`` before the first "under", ``hi = upper`` before the first "over").
    Both ends known: linear interpolation of the logit in ``log sigma`` (regula falsi), kept
    within the middle 80 % of the log-bracket so that it shrinks at every step. One end known:
    extrapolation from it with ``slope`` (:func:`side_slope`), by a factor of at most 8 (and at
    least 1.1 away from it). ``None`` when no point is left (every sigma up to ``upper`` is under).
    """
    if g_hi is None:  # nothing over yet
        if lo >= upper:
            return None
        step = min(max((g_target - g_lo) / slope, math.log(1.1)), math.log(8.0))
        return min(lo * math.exp(step), upper)
    if g_lo is None:  # nothing under yet: lo = 0
        step = min(max((g_target - g_hi) / slope, -math.log(8.0)), -math.log(1.1))
        return hi * math.exp(step)
    t = (g_target - g_lo) / (g_hi - g_lo) if g_hi > g_lo else 0.5
    t = min(max(t, 0.1), 0.9)
    return math.exp(math.log(lo) + t * (math.log(hi) - math.log(lo)))


class Bracket:
    """The state of an interpolated scale search (PAC-Bayes sigma, sharpness alpha): the bracket
    ``(lo, hi)`` with ``logit(drop / acc0)`` at its evaluated ends, and every point of each side,
    from which :meth:`next` places the next point (:func:`next_point`, with :func:`side_slope`
    while only one side is known; ``slope`` is its default, e.g. measured by a probe)."""

    def __init__(self, lo: float, hi: float, acc0: float, slope: float = LOGIT_SLOPE) -> None:
        self.lo, self.hi, self.acc0, self.slope = lo, hi, acc0, slope
        self.g_lo: float | None = None
        self.g_hi: float | None = None
        self._sides: dict[bool, list[tuple[float, float]]] = {False: [], True: []}  # (scale, logit) under / over

    def record(self, s: float, drop: float, over: bool) -> None:
        """Scale ``s`` measured at ``drop``; ``over``: above the target (it becomes ``hi``), else ``lo``."""
        g = logit_of_drop(drop, self.acc0)
        self._sides[over].append((s, g))
        if over:
            self.hi, self.g_hi = s, g
        else:
            self.lo, self.g_lo = s, g

    @property
    def closed(self) -> bool:
        """Both ends evaluated: the target is bracketed."""
        return self.g_lo is not None and self.g_hi is not None

    def next(self, g_target: float, upper: float) -> float | None:
        one_sided = (self.g_lo is None) != (self.g_hi is None)
        slope = side_slope(self._sides[self.g_lo is None], self.slope) if one_sided else self.slope
        return next_point(self.lo, self.g_lo, self.hi, self.g_hi, g_target, upper, slope)


#: Scales of the probe: ``upper * 2**-k`` for k = 1 .. :data:`PROBE_RUNGS` (1 down to 1/128 of sigma's range [0, 2]).
PROBE_RUNGS = 8


def probe_start(ladder: Sequence[tuple[float, float]], acc0: float, target: float,
                upper: float) -> tuple[float, float]:
    """The first point and the slope of an interpolated search from a probe of the drop curve.

    ``ladder``: ``(scale, drop)`` pairs (one noise draw per scale, e.g. ``upper * 2**-k``). On
    ``logit(drop / acc0)`` against ``log scale``, the first point is interpolated between the
    two neighbouring scales whose drops straddle ``target`` (the smallest scale above it and the
    scale below), and the slope is the secant there (:func:`clip_slope`; :data:`LOGIT_SLOPE`
    when the upper end is on the plateau of more than half of the accuracy lost). Every drop
    under the target: ``upper``. Every drop over: extrapolated down from the smallest scale with
    :data:`LOGIT_SLOPE` as :func:`next_point` does (by a factor of 1.1 to 8). Returns
    ``(first point, slope)``.
    """
    pts = sorted((float(sc), logit_of_drop(d, acc0)) for sc, d in ladder if sc > 0)
    if not pts:
        return upper / 2, LOGIT_SLOPE
    g_target = logit_of_drop(target, acc0)
    over = [i for i, (_, g) in enumerate(pts) if g > g_target]
    if not over:
        return float(upper), LOGIT_SLOPE
    i = over[0]
    s_hi, g_hi = pts[i]
    if i == 0:  # as a search extrapolates down from its first "over" (lo = 0 not evaluated)
        return next_point(0.0, None, s_hi, g_hi, g_target, upper, LOGIT_SLOPE), LOGIT_SLOPE
    s_lo, g_lo = pts[i - 1]
    width = math.log(s_hi) - math.log(s_lo)
    slope = clip_slope((g_hi - g_lo) / width) if g_hi < 0 else LOGIT_SLOPE
    t = (g_target - g_lo) / (g_hi - g_lo) if g_hi < 0 else (g_target - g_lo) / slope / width
    return math.exp(math.log(s_lo) + min(max(t, 0.0), 1.0) * width), slope


def search_sigma(evaluate: Callable[[float], Decision], acc0: float, *, points: str = "interpolated", depth: int = 15,
                 target: float = 0.1, upper: float = 2.0, start: float | None = None,
                 slope: float = LOGIT_SLOPE) -> tuple[float, list[tuple[float, str, int]]]:
    """The point sequence of the PAC-Bayes search, given ``evaluate(sigma)`` (a :class:`Decision`).

    ``points="bisection"``: the reference's bisection of ``[0, upper]`` from ``upper / 2``; the
    answer is the midpoint whose displacement is within the tolerance (or the last midpoint
    when ``depth`` steps run out). ``points="interpolated"``: the same bracket, first point
    ``start`` (default ``upper / 2``; :func:`probe_start` places it from a probe), each next
    point placed by :func:`next_point` from the drops measured so far (an early-stopped "over"
    contributes the drop over the examples it evaluated; ``slope`` extrapolates while the target
    is bracketed from one side only); it ends at
    the first point within the tolerance, at ``upper`` when even ``upper`` is under, or after
    ``depth`` points (returning the last). Either way the answer obeys the same definition, a
    sigma whose 10-draw displacement is within the tolerance of the target; interpolation
    needs fewer points (each "under" or near-target point costs all the draws). Returns
    ``(sigma, [(sigma, answer, draws evaluated), ...])``.
    """
    if points not in POINTS:
        raise ValueError(f"points={points!r}: expected one of {POINTS}")
    steps: list[tuple[float, str, int]] = []
    bracket = Bracket(0.0, float(upper), acc0, slope)  # the bisection never asks it for a point
    g_target = logit_of_drop(target, acc0)
    sigma = float(upper) / 2 if start is None or start <= 0 or points == "bisection" else min(float(start), float(upper))
    for _ in range(depth):
        decision = evaluate(sigma)
        steps.append((sigma, decision.answer, decision.draws))
        if decision.answer == WITHIN:
            break
        bracket.record(sigma, decision.estimate, decision.answer == OVER)
        if points == "bisection":
            sigma = (bracket.lo + bracket.hi) / 2
            continue
        nxt = bracket.next(g_target, upper)
        if nxt is None:
            break
        sigma = nxt
    return (steps[-1][0] if steps else sigma), steps


def pacbayes_sigma(
    engine: PerturbationEngine,
    rng: np.random.Generator,
    *,
    magnitude_eps: float | None = None,
    depth: int = 15,
    draws: int = 10,
    target: float = 0.1,
    tolerance: float = 0.01,
    upper: float = 2.0,
    points: str = "interpolated",
    probe: bool = True,
) -> SigmaSearch:
    """The PAC-Bayes noise scale: the sigma in ``[0, upper]`` whose Gaussian weight noise
    displaces the mean accuracy over ``draws`` draws by ``target`` (to ``tolerance``), found by
    :func:`search_sigma` (``points``: ``"interpolated"``, the default, or the reference's
    ``"bisection"``).

    Noise of draw ``j`` on weight ``w``: ``sigma * z_j`` (``magnitude_eps=None``), or
    ``sqrt(sigma^2 w^2 + eps^2) * z_j`` (magnitude-aware, ``eps = magnitude_eps``), with ``z_j``
    standard normal, drawn once from ``rng`` (common random numbers across steps). These are the
    paper's variances (Jiang et al. 2020, C.3: ``N(0, sigma^2)`` and ``N(0, sigma'^2 |w|^2 +
    eps^2)``); the reference implementation passes those variances to ``torch.normal`` where it
    expects a standard deviation, i.e. its noise is ``sigma^2 z`` and ``(sigma^2 w^2 + eps^2) z``.
    Each point's evaluation stops as soon as its answer is certain (see :class:`PerturbationEngine`).

    ``probe`` (interpolated points only): before the search, the drop curve is probed with draw
    0 alone at ``upper * 2**-k``, k = 1 .. :data:`PROBE_RUNGS`, in one call
    (:meth:`PerturbationEngine.drops`); the first point and the slope come from it
    (:func:`probe_start`), and the points, expected near the target where every draw counts, are
    then evaluated with all their draws in the first call. The probe only places points: every
    answer is still a decision on the mean over ``draws`` draws.
    """
    n_params = sum(int(w.size) for w in engine.base)
    seeds = rng.integers(0, 2**63 - 1, size=draws)
    cache: dict[int, np.ndarray] = {}

    def normals(j: int) -> np.ndarray:
        """Draw ``j``'s standard normals, one flat float32 vector in the order of ``engine.base``."""
        if j in cache:
            return cache[j]
        g = np.random.default_rng(int(seeds[j]))
        z = np.concatenate([g.standard_normal(w.shape).astype(np.float32).ravel() for w in engine.base])
        if n_params * draws <= _MAX_CACHED_NOISE:
            cache[j] = z
        return z

    mags = None if magnitude_eps is None else np.concatenate([np.abs(w).astype(np.float64).ravel() for w in engine.base])

    def offsets(sigma: float, j: int) -> np.ndarray:
        z = normals(j)
        return sigma * z if mags is None else np.sqrt(sigma**2 * mags**2 + magnitude_eps**2) * z

    classify = displacement_class(target, tolerance)
    search = SigmaSearch(sigma=math.nan, acc0=engine.acc0)
    start, slope, first = None, LOGIT_SLOPE, None
    if probe and points == "interpolated" and draws > 0:
        rungs = [float(upper) * 2.0**-k for k in range(1, PROBE_RUNGS + 1)]
        search.probe = list(zip(rungs, engine.drops([offsets(sc, 0) for sc in rungs]).tolist()))
        start, slope = probe_start(search.probe, engine.acc0, target, upper)
        first = draws

    def evaluate(sigma: float) -> Decision:
        return engine.decide([lambda s=sigma, j=j: offsets(s, j) for j in range(draws)], classify, first=first)

    search.sigma, search.steps = search_sigma(evaluate, engine.acc0, points=points, depth=depth, target=target,
                                              upper=upper, start=start, slope=slope)
    search.points = points
    search.passes = engine.passes
    return search
