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
Dziugaite et al. 2020's ``_pacbayes_sigma``): bisection on ``[0, 2]`` starting at 1, at most 15
steps, 10 Gaussian draws per step, stopping when the mean accuracy displacement is within 0.01
of 0.1. The draws are *common random numbers*: draw ``j`` is ``std(sigma) * z_j`` with the same
standard normal ``z_j`` at every step, so the displacement is a deterministic, nearly monotone
function of sigma (the reference draws fresh noise at every step).

Cost is counted in passes over the context's sample (``examples evaluated / ctx.n_samples``),
the unit of the benchmarks' forward-pass equivalents.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from gen_measures.numerics.classification import accuracy as accuracy_of

__all__ = ["Decision", "PerturbationEngine", "SigmaSearch", "pacbayes_sigma", "displacement_class"]

#: Answers of the decisions.
UNDER, WITHIN, OVER = "under", "within", "over"
#: Noise draws kept in memory at most (float32 elements) before they are regenerated from their seeds.
_MAX_CACHED_NOISE = 50_000_000


@dataclass
class Decision:
    """The answer for one set of perturbations.

    ``answer``: the class the mean accuracy drop falls in; ``drop``: the drop when every example
    was evaluated (``complete``), else NaN; ``bounds``: the interval of the final mean accuracy
    known when the evaluation stopped; ``draws``: perturbations evaluated (in part or fully).
    """

    answer: str
    drop: float
    bounds: tuple[float, float]
    draws: int
    complete: bool


class PerturbationEngine:
    """Accuracy of perturbed trainable weights on a fixed evaluation set, with early decisions.

    Parameters
    ----------
    ctx : the :class:`~gen_measures.context.ModelContext`; its weights come back on :meth:`close`
        (or on leaving the ``with`` block).
    x, y : the evaluation set (default: the context's sample).
    batch_size : examples per forward pass (default: the context's).

    Attributes
    ----------
    base : the trainable weights (numpy), the point perturbations are offsets from.
    acc0 : the accuracy at ``base`` on the evaluation set.
    passes : examples evaluated so far (``acc0`` included) / ``ctx.n_samples``.
    """

    def __init__(self, ctx, x: np.ndarray | None = None, y: np.ndarray | None = None, *,
                 batch_size: int | None = None) -> None:
        self.ctx = ctx
        self.x = ctx.x if x is None else x
        self.y = ctx.y if y is None else y
        self.batch_size = int(batch_size or ctx.batch_size)
        self._p = ctx.perturbation()
        self.base = self._p.base
        self.passes = 0.0
        self.acc0 = self._full_accuracy()

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
        self._count(len(self.y))
        return accuracy_of(self.ctx.predict(self.x), self.y, warn=False)

    def set_offsets(self, offsets: Sequence[np.ndarray]) -> None:
        self._p.set_offsets(offsets)

    def loss_gradient(self, x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
        """Cross-entropy gradient at the current weights on ``(x, y)`` (counted as 3 passes over ``x``)."""
        self._count(3 * len(y))
        return self._p.loss_gradient(x, y)[1]

    def decide(self, draws: Sequence[Callable[[], Sequence[np.ndarray]]],
               classify: Callable[[float, float], str | None]) -> Decision:
        """Evaluate the mean accuracy over ``draws`` (each a function returning offsets) until
        ``classify(drop_min, drop_max)`` names one answer for the whole interval of possible
        final drops (``acc0 - mean accuracy``), or everything is evaluated.

        ``classify`` returns the answer, or ``None`` while the interval straddles a boundary;
        with a single point (everything evaluated) it must answer.
        """
        n_eval = len(self.y)
        total = n_eval * len(draws)
        seen = correct = 0
        used = 0
        for make in draws:
            used += 1
            self.set_offsets(make())
            for start in range(0, n_eval, self.batch_size):
                sl = slice(start, min(start + self.batch_size, n_eval))
                out = self.ctx.predict(self.x[sl], self.batch_size)
                self._count(sl.stop - sl.start)
                if not np.all(np.isfinite(out)):
                    return Decision(classify(math.inf, math.inf), math.inf, (math.nan, math.nan), used, False)
                correct += int(np.sum(np.argmax(out, axis=1) == self.y[sl]))
                seen += sl.stop - sl.start
                lo, hi = correct / total, (correct + total - seen) / total
                if seen < total:
                    answer = classify(self.acc0 - hi, self.acc0 - lo)
                    if answer is not None:
                        return Decision(answer, math.nan, (lo, hi), used, False)
        mean = correct / total
        drop = self.acc0 - mean
        return Decision(classify(drop, drop), drop, (mean, mean), used, True)


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
    passes over the sample it cost, and the base accuracy."""

    sigma: float
    steps: list[tuple[float, str, int]] = field(default_factory=list)
    passes: float = 0.0
    acc0: float = math.nan

    def details(self) -> dict:
        return {"sigma": self.sigma, "steps": len(self.steps), "passes": round(self.passes, 3),
                "draws_evaluated": sum(s[2] for s in self.steps), "base_accuracy": self.acc0,
                "trace": [[s, a, n] for s, a, n in self.steps]}


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
) -> SigmaSearch:
    """The PAC-Bayes noise scale: bisection on ``[0, upper]`` for the sigma whose Gaussian weight
    noise displaces the mean accuracy over ``draws`` draws by ``target`` (to ``tolerance``).

    Noise of draw ``j`` on weight ``w``: ``sigma * z_j`` (``magnitude_eps=None``), or
    ``sqrt(sigma^2 w^2 + eps^2) * z_j`` (magnitude-aware, ``eps = magnitude_eps``), with ``z_j``
    standard normal, drawn once from ``rng`` (common random numbers across steps). These are the
    paper's variances (Jiang et al. 2020, C.3: ``N(0, sigma^2)`` and ``N(0, sigma'^2 |w|^2 +
    eps^2)``); the reference implementation passes those variances to ``torch.normal`` where it
    expects a standard deviation, i.e. its noise is ``sigma^2 z`` and ``(sigma^2 w^2 + eps^2) z``.
    Each step stops at the first step whose answer is certain (see :class:`PerturbationEngine`);
    the returned sigma is the last midpoint, as in the reference (also when ``depth`` runs out).
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
    lower, high = 0.0, float(upper)
    search = SigmaSearch(sigma=math.nan, acc0=engine.acc0)
    sigma = (lower + high) / 2
    for _ in range(depth):
        sigma = (lower + high) / 2
        decision = engine.decide([lambda s=sigma, j=j: offsets(s, j) for j in range(draws)], classify)
        search.steps.append((sigma, decision.answer, decision.draws))
        if decision.answer == WITHIN:
            break
        if decision.answer == OVER:
            high = sigma
        else:
            lower = sigma
    search.sigma = sigma
    search.passes = engine.passes
    return search
