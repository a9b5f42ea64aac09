"""Weighted aggregation of several measures' rankings into one consensus ranking.

Input: a model x measure table of ranks (from :func:`scoring.ranking.rank_table`, so a higher
rank predicts a larger gap) and one non-negative weight per measure. Output: a consensus
"rank" per model, higher = larger predicted gap, which is scored like any measure (direction
``+1``). Methods:

``"footrule"``
    The exact minimiser of the weighted Spearman footrule ``sum_k w_k sum_i |p_i - r_k(i)|``
    over permutations ``p``: a linear assignment of models to positions with cost
    ``C[i, p] = sum_k w_k |p - r_k(i)|`` (Dwork et al. 2001), solved by
    :func:`scipy.optimize.linear_sum_assignment`.
``"borda"``
    Weighted Borda count: the average rank of ``sum_k w_k r_k(i)`` (ties averaged).
``"kendall"``
    A seeded cross-entropy Monte-Carlo search (Rubinstein 1999) for the permutation minimising
    the weighted Kendall distance ``sum_k w_k K(p, r_k)``, as in RankAggreg (Pihur, Datta &
    Datta 2009): a model x position probability matrix generates candidate orderings; the
    elite (best ``elite_fraction``) updates it with smoothing ``smoothing``; the search stops
    when the best elite distance has not changed for ``patience`` iterations; the result is
    then polished by adjacent swaps (and compared with the Borda and footrule orders). It is
    O(samples x n^2) per iteration: meant for short lists (at most
    :data:`MAX_KENDALL_ITEMS` models). A pair that measure ``k`` ties costs ``w_k / 2``
    whatever the order.

Presets (:data:`PRESETS`) name published recipes; ``"pvalid_pvector"`` is the seed paper's:
pseudo-validation error fused with the model/data P-vector angle with weight 0.05 on the angle.
It uses Borda (a weighted rank sum): with footrule, a 0.05 weight can only break ties.

References
----------
* V. Pihur, S. Datta, S. Datta, "RankAggreg, an R package for weighted rank aggregation",
  BMC Bioinformatics 10:62 (2009).
* C. Dwork, R. Kumar, M. Naor, D. Sivakumar, "Rank aggregation methods for the web", WWW 2001
  (footrule aggregation as an assignment problem).
* R. Y. Rubinstein, "The cross-entropy method for combinatorial and continuous optimization",
  Methodol. Comput. Appl. Probab. 1 (1999).
* J.-C. de Borda, "Memoire sur les elections au scrutin" (1781).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from scoring.errors import ScoringError
from scoring.ranking import LARGER_GAP, average_ranks, rank_table

__all__ = [
    "METHODS",
    "PRESETS",
    "aggregate_ranks",
    "borda_aggregate",
    "footrule_aggregate",
    "fuse",
    "fuse_preset",
    "fused_results",
    "kendall_aggregate",
    "validate_weights",
    "weighted_footrule_distance",
    "weighted_kendall_distance",
]

METHODS = ("borda", "footrule", "kendall")

#: Named recipes: measure weights, known directions (others come from the caller), method.
PRESETS: dict[str, dict[str, Any]] = {
    "pvalid_pvector": {
        "weights": {"pseudo_validation_error": 0.95, "pvector_angle": 0.05},
        "directions": {"pseudo_validation_error": LARGER_GAP},
        "method": "borda",
        "reference": (
            "Seed paper, 'Empirical studies on the convergence of feature spaces': pseudo-validation "
            "error fused with the model/data P-vector angle, weight 0.05 on the angle"
        ),
    },
}

#: Largest zoo the cross-entropy search accepts (its cost grows as n^2 per sample).
MAX_KENDALL_ITEMS = 60


def validate_weights(weights: Mapping[str, float] | Any, names: list[str]) -> np.ndarray:
    """Weights aligned on ``names``, normalised to sum 1.

    ``weights`` is a mapping ``measure -> weight`` (every name required, no unknown key), a
    sequence aligned on ``names``, or ``None`` (equal weights).

    Raises
    ------
    ScoringError
        Missing or unknown measures, wrong length, non-finite or negative weights, all zero.
    """
    if weights is None:
        w = np.ones(len(names))
    elif isinstance(weights, Mapping):
        unknown = [k for k in weights if k not in names]
        missing = [n for n in names if n not in weights]
        if unknown or missing:
            raise ScoringError(f"weights: unknown measure(s) {unknown}, missing measure(s) {missing}; expected keys {names}")
        w = np.array([weights[n] for n in names], dtype=object)
    else:
        w = np.asarray(list(weights), dtype=object)
        if len(w) != len(names):
            raise ScoringError(f"weights: {len(w)} weights for {len(names)} measures {names}")
    try:
        w = np.array([float(x) for x in w], dtype=np.float64)
    except (TypeError, ValueError):
        raise ScoringError(f"weights: not all numbers: {list(w)}") from None
    if not np.all(np.isfinite(w)):
        raise ScoringError(f"weights: must be finite, got {dict(zip(names, w.tolist()))}")
    if np.any(w < 0):
        raise ScoringError(f"weights: must be non-negative, got {dict(zip(names, w.tolist()))}")
    if not np.any(w > 0):
        raise ScoringError("weights: all zero; give at least one measure a positive weight")
    return w / w.sum()


def _check_ranks(ranks: pd.DataFrame) -> np.ndarray:
    if not isinstance(ranks, pd.DataFrame) or ranks.shape[1] == 0:
        raise ScoringError("ranks: expected a model x measure DataFrame with at least one column")
    r = ranks.to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(r)):
        bad = ranks.index[~np.isfinite(r).all(axis=1)].tolist()
        raise ScoringError(f"ranks: NaN or infinite ranks for models {bad[:10]}")
    if len(ranks) < 2:
        raise ScoringError(f"ranks: {len(ranks)} model(s); aggregation needs at least 2")
    return r


def weighted_footrule_distance(positions: Any, ranks: pd.DataFrame, weights: Any = None) -> float:
    """``sum_k w_k sum_i |positions_i - r_k(i)|`` (weights normalised)."""
    r = _check_ranks(ranks)
    w = validate_weights(weights, list(ranks.columns))
    p = np.asarray(positions, dtype=np.float64)
    return float(np.abs(p[:, None] - r).sum(axis=0) @ w)


def _preference(r: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``Q[a, b]`` = weight of the measures ranking ``a`` above ``b`` (ties count half)."""
    above = (r[:, None, :] > r[None, :, :]).astype(np.float64)
    tie = (r[:, None, :] == r[None, :, :]).astype(np.float64)
    q = (above + 0.5 * tie) @ w
    np.fill_diagonal(q, 0.0)
    return q


def _kendall_costs(orders: np.ndarray, q: np.ndarray, chunk: int = 64) -> np.ndarray:
    """Weighted Kendall distance of every ordering (row of items from lowest to highest)."""
    n = orders.shape[1]
    upper = np.triu(np.ones((n, n), dtype=bool), k=1)
    out = np.empty(len(orders))
    for lo in range(0, len(orders), chunk):
        o = orders[lo:lo + chunk]
        out[lo:lo + chunk] = q[o[:, :, None], o[:, None, :]][:, upper].sum(axis=1)
    return out


def weighted_kendall_distance(positions: Any, ranks: pd.DataFrame, weights: Any = None) -> float:
    """``sum_k w_k K(positions, r_k)``: discordant pairs weighted by measure (ties in ``r_k`` cost 1/2)."""
    r = _check_ranks(ranks)
    w = validate_weights(weights, list(ranks.columns))
    order = np.argsort(np.asarray(positions, dtype=np.float64), kind="stable")
    return float(_kendall_costs(order[None, :], _preference(r, w))[0])


def _series(values: np.ndarray, ranks: pd.DataFrame, name: str) -> pd.Series:
    return pd.Series(values.astype(np.float64), index=ranks.index, name=name)


def borda_aggregate(ranks: pd.DataFrame, weights: Any = None) -> pd.Series:
    """Weighted Borda: average ranks of ``sum_k w_k r_k(i)`` (higher = larger predicted gap)."""
    r = _check_ranks(ranks)
    w = validate_weights(weights, list(ranks.columns))
    return _series(average_ranks(r @ w), ranks, "borda")


def footrule_aggregate(ranks: pd.DataFrame, weights: Any = None) -> pd.Series:
    """Exact weighted-footrule consensus: positions 1..n from a linear assignment."""
    r = _check_ranks(ranks)
    w = validate_weights(weights, list(ranks.columns))
    n = len(r)
    positions = np.arange(1, n + 1, dtype=np.float64)
    cost = np.abs(positions[None, :, None] - r[:, None, :]) @ w
    import scipy.optimize  # imported here: it is slow to import and only this function needs it

    rows, cols = scipy.optimize.linear_sum_assignment(cost)
    out = np.empty(n)
    out[rows] = positions[cols]
    return _series(out, ranks, "footrule")


def kendall_aggregate(
    ranks: pd.DataFrame,
    weights: Any = None,
    *,
    seed: int = 0,
    n_samples: int | None = None,
    elite_fraction: float = 0.1,
    smoothing: float = 0.25,
    max_iter: int = 1000,
    patience: int = 7,
) -> pd.Series:
    """Weighted-Kendall consensus by a seeded cross-entropy Monte-Carlo search (RankAggreg's CE).

    Parameters
    ----------
    ranks : model x measure ranks (higher = larger predicted gap).
    weights : per-measure weights (see :func:`validate_weights`).
    seed : seed of :func:`numpy.random.default_rng`.
    n_samples : orderings drawn per iteration (default ``min(2000, max(100, 10 n^2))``).
    elite_fraction : share of the samples that update the probabilities (RankAggreg's ``rho``).
    smoothing : weight of the elite frequencies in the update (RankAggreg's ``weight``).
    max_iter, patience : stop after ``max_iter`` iterations, or when the best elite distance
        has not changed for ``patience`` iterations (RankAggreg's ``convIn``).

    Returns
    -------
    pandas.Series of positions 1..n: the best ordering found. The search's best ordering and
    the Borda and footrule orderings are each polished by adjacent swaps and the best of the
    three is returned, so the result is never worse than those two aggregates.
    """
    r = _check_ranks(ranks)
    w = validate_weights(weights, list(ranks.columns))
    n = len(r)
    if n > MAX_KENDALL_ITEMS:
        raise ScoringError(
            f"ranks: {n} models; the cross-entropy Kendall search is meant for at most {MAX_KENDALL_ITEMS}. "
            "Use method='footrule' (exact) or 'borda'"
        )
    if not (0 < elite_fraction <= 1) or not (0 < smoothing <= 1):
        raise ScoringError(f"elite_fraction and smoothing must be in (0, 1], got {elite_fraction}, {smoothing}")
    n_samples = int(n_samples) if n_samples is not None else min(2000, max(100, 10 * n * n))
    if n_samples < 2 or max_iter < 1 or patience < 1:
        raise ScoringError(f"n_samples >= 2, max_iter >= 1 and patience >= 1 required, got {n_samples}, {max_iter}, {patience}")
    q = _preference(r, w)
    rng = np.random.default_rng(seed)
    prob = np.full((n, n), 1.0 / n)  # item x position
    n_elite = max(1, math.ceil(elite_fraction * n_samples))
    rows = np.arange(n_samples)
    best_order, best_cost = None, math.inf
    last, stable = math.inf, 0
    for _ in range(max_iter):
        available = np.ones((n_samples, n), dtype=bool)
        orders = np.empty((n_samples, n), dtype=np.int64)
        for pos in range(n):
            weights_pos = np.where(available, prob[:, pos][None, :], 0.0)
            total = weights_pos.sum(axis=1)
            empty = total <= 0
            weights_pos[empty] = available[empty]
            total[empty] = available[empty].sum(axis=1)
            cum = np.cumsum(weights_pos, axis=1)
            u = rng.random(n_samples) * total
            pick = np.minimum((cum <= u[:, None]).sum(axis=1), n - 1)
            bad = ~available[rows, pick]  # rounding at the edge: take the last available item
            if bad.any():
                pick[bad] = n - 1 - np.argmax(available[bad][:, ::-1], axis=1)
            orders[:, pos] = pick
            available[rows, pick] = False
        costs = _kendall_costs(orders, q)
        elite = np.argsort(costs, kind="stable")[:n_elite]
        if costs[elite[0]] < best_cost:
            best_cost, best_order = float(costs[elite[0]]), orders[elite[0]].copy()
        freq = np.zeros((n, n))
        np.add.at(freq, (orders[elite], np.broadcast_to(np.arange(n), (n_elite, n))), 1.0)
        prob = (1.0 - smoothing) * prob + smoothing * freq / n_elite
        current = float(costs[elite[0]])
        stable = stable + 1 if math.isclose(current, last, rel_tol=0, abs_tol=1e-12) else 0
        last = current
        if stable >= patience:
            break
    # polish: the CE best and the Borda and footrule orders, each to an adjacent-swap optimum
    starts = [best_order, np.argsort(r @ w, kind="stable"), np.argsort(footrule_aggregate(ranks, w).to_numpy(), kind="stable")]
    polished = [_adjacent_swaps(o, q) for o in starts]
    costs = _kendall_costs(np.stack(polished), q)
    best_order = polished[int(np.argmin(costs))]
    out = np.empty(n)
    out[best_order] = np.arange(1, n + 1, dtype=np.float64)
    return _series(out, ranks, "kendall")


def _adjacent_swaps(order: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Swap neighbours while that lowers the weighted Kendall distance (odd-even passes).

    Swapping the items ``x`` (lower) and ``y`` at neighbouring positions changes the distance by
    ``q[y, x] - q[x, y]`` and nothing else.
    """
    order = np.array(order, dtype=np.int64)
    n = len(order)
    for _ in range(n * n + 1):
        swapped = False
        for offset in (0, 1):
            left = np.arange(offset, n - 1, 2)
            x, y = order[left], order[left + 1]
            better = q[y, x] - q[x, y] < -1e-12
            if better.any():
                order[left[better]], order[left[better] + 1] = y[better], x[better]
                swapped = True
        if not swapped:
            break
    return order


def aggregate_ranks(ranks: pd.DataFrame, weights: Any = None, method: str = "borda", *, seed: int = 0) -> pd.Series:
    """Dispatch to :func:`borda_aggregate`, :func:`footrule_aggregate` or :func:`kendall_aggregate`."""
    if method == "borda":
        return borda_aggregate(ranks, weights)
    if method == "footrule":
        return footrule_aggregate(ranks, weights)
    if method == "kendall":
        return kendall_aggregate(ranks, weights, seed=seed)
    raise ScoringError(f"method: expected one of {METHODS}, got {method!r}")


def fuse(
    values: pd.DataFrame,
    directions: Mapping[str, int],
    weights: Any = None,
    method: str = "borda",
    *,
    seed: int = 0,
    name: str = "fused",
) -> pd.Series:
    """Fuse raw measure values (model x measure) into one consensus ranking.

    Each column is ranked with its direction (:func:`scoring.ranking.rank_table`), the ranks
    are aggregated, and the result (higher = larger predicted gap) is named ``name``; score it
    with direction ``+1``.
    """
    ranks = rank_table(values, directions)
    out = aggregate_ranks(ranks, weights, method, seed=seed)
    out.name = name
    return out


def fuse_preset(
    values: pd.DataFrame,
    preset: str = "pvalid_pvector",
    directions: Mapping[str, int] | None = None,
    *,
    seed: int = 0,
) -> pd.Series:
    """Fuse with a named recipe from :data:`PRESETS`.

    ``values`` must hold the preset's measures as columns (others are ignored). Directions not
    fixed by the preset (e.g. ``pvector_angle``) come from ``directions`` (from the registry:
    ``get_measure(name).direction``).
    """
    if preset not in PRESETS:
        raise ScoringError(f"preset: unknown {preset!r}; known presets: {sorted(PRESETS)}")
    spec = PRESETS[preset]
    names = list(spec["weights"])
    missing = [m for m in names if m not in values.columns]
    if missing:
        raise ScoringError(f"values: preset {preset!r} needs measure column(s) {missing}; got {list(values.columns)}")
    dirs = {**spec["directions"], **dict(directions or {})}
    unknown = [m for m in names if m not in dirs]
    if unknown:
        raise ScoringError(
            f"directions: preset {preset!r} needs the direction of {unknown} (+1 if a higher value predicts "
            "a larger gap, -1 otherwise; see the measure registry)"
        )
    return fuse(values[names], dirs, spec["weights"], spec["method"], seed=seed, name=preset)


def fused_results(
    results: pd.DataFrame,
    weights: Mapping[str, float],
    directions: Mapping[str, int],
    method: str = "borda",
    *,
    name: str = "fused",
    seed: int = 0,
) -> pd.DataFrame:
    """Rows ``task, model, measure=name, value`` of the fusion of ``results`` (tidy) per task.

    Only models with a finite value for every weighted measure are fused; the others get NaN.
    Append the rows to ``results`` and score them with direction ``+1``.
    """
    needed = {"task", "model", "measure", "value"}
    if not needed <= set(results.columns):
        raise ScoringError(f"results: missing column(s) {sorted(needed - set(results.columns))}")
    names = list(weights)
    rows = []
    for task, part in results[results["measure"].isin(names)].groupby("task", sort=True):
        wide = part.pivot_table(index="model", columns="measure", values="value", aggfunc="first").reindex(columns=names)
        ok = wide.notna().all(axis=1) & np.isfinite(wide.to_numpy(dtype=np.float64)).all(axis=1)
        fused = pd.Series(np.nan, index=wide.index)
        if ok.sum() >= 2:
            fused[ok] = fuse(wide[ok], directions, weights, method, seed=seed, name=name)
        rows.append(pd.DataFrame({"task": task, "model": wide.index, "measure": name, "value": fused.to_numpy()}))
    if not rows:
        return pd.DataFrame(columns=["task", "model", "measure", "value"])
    return pd.concat(rows, ignore_index=True)


def preset_results(
    results: pd.DataFrame,
    preset: str,
    directions: Mapping[str, int],
    *,
    seed: int = 0,
) -> pd.DataFrame:
    """Rows ``task, model, measure="fused_<preset>", value`` of a named recipe, or an empty frame
    when ``results`` lacks one of the recipe's measures.

    The fused value is a rank score: higher predicts a larger gap (score it with direction +1).
    """
    if preset not in PRESETS:
        raise ScoringError(f"preset: unknown {preset!r}; known presets: {sorted(PRESETS)}")
    spec = PRESETS[preset]
    if not set(spec["weights"]) <= set(results["measure"]):
        return pd.DataFrame(columns=["task", "model", "measure", "value"])
    dirs = {**spec["directions"], **{k: v for k, v in directions.items() if k in spec["weights"]}}
    return fused_results(results, spec["weights"], dirs, spec["method"], name=f"fused_{preset}", seed=seed)
