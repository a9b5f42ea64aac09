"""The official PGDL conditional mutual information, reproduced quirk for quirk.

For every *ordered* pair of distinct hyperparameters ``(h1, h2)`` (file order), all ordered model
pairs ``(i, j)``, *self-pairs included*, fill a 2 x 2 x K table: axis 0 ``gap_i > gap_j``, axis 1
``measure_i > measure_j`` (ties "not greater"), axis 2 the slice *named* by the string
concatenation ``str(h1_i) + str(h1_j) + str(h2_i) + str(h2_j)``. The K = |V1|^2 |V2|^2 slice names
are enumerated from ``possible_values`` (h1 outer); when two names coincide (values ``1`` and
``11``: ``"1" + "11" == "11" + "1"``) the *later* index wins and the earlier slices stay empty.
Score(h1, h2) = unweighted mean over the K slices of the MI / unweighted mean of the gap-axis
entropy (log base 2, ``p + 1e-12`` inside the entropy's log); an empty slice makes the pair NaN
(``0 / 0``). The task score folds the pairs in order with Python's ``min(score, running)``,
which keeps ``running`` only when ``running < score``: a NaN replaces the running minimum and
the next score replaces the NaN. The program requires a complete grid with one model per cell.

Everything is computed from per-block pair counts (:mod:`scoring._pairs`): a block (pair of
cells of the partition by (h1, h2)) maps to one slice, found arithmetically when the names are
collision-free and by the names otherwise.

References
----------
* Y. Jiang et al., "NeurIPS 2020 Competition: Predicting Generalization in Deep Learning"
  (arXiv:2012.07976); PGDL starting kit, ``scoring_program/mutual_information.py`` and
  ``score.py`` (Apache-2.0, Y. Jiang, 2020), whose behaviour this module reproduces (no code
  copied).
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from scoring.errors import DegenerateInputWarning
from scoring.model_configs import ModelConfigs
from scoring._pairs import PairBits, PairCounter, gap_entropy, mutual_information, scatter_add
from scoring._validate import encode, hashable, joint_codes
from scoring.errors import GridError

__all__ = ["OFFICIAL_EPS", "OfficialCMIScorer", "check_official_grid", "fold_official", "warn_collisions"]

#: The official program's entropy regulariser (inside the log).
OFFICIAL_EPS = 1e-12


def check_official_grid(frame: pd.DataFrame | Mapping[str, Sequence[Any]], possible_values: Mapping[str, Sequence[Any]]) -> None:
    """Raise :class:`GridError` unless the grid is complete with exactly one model per cell.

    ``frame`` is a model x hyperparameter DataFrame or a mapping hyperparameter -> values.

    The grid is the product of ``possible_values``; the message lists missing and duplicated
    cells and values outside the grid (from :meth:`ModelConfigs.grid_report`).
    """
    if len(possible_values) < 2:
        raise GridError(
            f"official CMI needs at least 2 hyperparameters, got {list(possible_values)}; "
            "use mode='clean' (it reports |S| = 0 and 1)"
        )
    dims = [len(v) for v in possible_values.values()]
    columns = {h: list(frame[h]) for h in possible_values}
    n = len(next(iter(columns.values())))
    positions = []
    for h, values in possible_values.items():
        lookup: dict[Any, int] = {}
        for pos, v in enumerate(values):
            lookup.setdefault(hashable(v), pos)
        column = columns[h]
        try:
            positions.append([lookup.get(x, -1) for x in column])
        except TypeError:  # unhashable values
            positions.append([lookup.get(hashable(x), -1) for x in column])
    index = np.asarray(positions, dtype=np.int64).reshape(len(dims), n)
    if index.size and (index >= 0).all() and math.prod(dims) == n:
        counts = np.bincount(np.ravel_multi_index(tuple(index), dims), minlength=math.prod(dims))
        if (counts == 1).all():
            return
    ids = list(frame.index) if isinstance(frame, pd.DataFrame) else list(range(n))
    configs = ModelConfigs(  # the slow, detailed report, for the message
        path=None,
        possible_values={h: list(v) for h, v in possible_values.items()},
        hparams={str(k): {h: columns[h][i] for h in possible_values} for i, k in enumerate(ids)},
        metrics={},
    )
    report = configs.grid_report()
    if not report.complete:
        raise GridError(
            f"official CMI needs a complete grid with one model per cell: {report.describe(limit=10)}. "
            "Use mode='clean', which works on incomplete grids and reports the coverage"
        )


class OfficialCMIScorer:
    """The official PGDL CMI of any measure on a fixed zoo (gaps and grid fixed, reusable).

    Building it costs the gap-side work once; :meth:`score` then costs one pass per measure
    (used by the permutation baseline). The grid is *not* validated here (see
    :func:`check_official_grid`).

    Parameters
    ----------
    gaps : (n,) generalization gaps.
    frame : model x hyperparameter table (row order = ``gaps`` order): a DataFrame or a mapping
        hyperparameter -> list of values; only the ``possible_values`` columns are used.
    possible_values : hyperparameter -> possible values; its key order is the pair order.

    Attributes
    ----------
    pairs : the ordered hyperparameter pairs in the official fold order.
    n_slices, n_empty_slices, n_skipped_pairs : per pair: K, slices left empty by a name
        collision, model pairs whose slice name is not in the grid (values outside it).
    early_exit : True when no pair can score NaN (no empty slice, positive gap entropy): the
        fold is then a plain minimum and partitions can be scored one at a time.
    """

    def __init__(
        self,
        gaps: np.ndarray,
        frame: pd.DataFrame,
        possible_values: Mapping[str, Sequence[Any]],
        pairs: tuple[np.ndarray, ...] | None = None,
    ) -> None:
        names = list(possible_values)
        self.names = names
        coded = [encode([str(v) for v in frame[h]]) for h in names]
        unordered = list(itertools.combinations(range(len(names)), 2))
        parts, cells = [], []
        for a, b in unordered:
            codes, rows = joint_codes([coded[a][0], coded[b][0]])
            parts.append(codes)
            cells.append(rows)
        self.counter = PairCounter(np.asarray(gaps, dtype=np.float64), parts, [len(c) for c in cells], pairs)
        grid_strings = [_GridStrings([str(v) for v in possible_values[h]]) for h in names]
        self.pairs: list[tuple[str, str]] = []
        self._plan: list[dict[str, Any]] = []
        self._by_part: dict[int, list[int]] = {}
        src_all, dst_all, base = [], [], 0
        for ia in range(len(names)):
            for ib in range(len(names)):
                if ia == ib:
                    continue
                k = unordered.index((min(ia, ib), max(ia, ib)))
                first, second = (0, 1) if ia < ib else (1, 0)
                lab1 = [coded[ia][1][c] for c in cells[k][:, first]]
                lab2 = [coded[ib][1][c] for c in cells[k][:, second]]
                src, dst, n_slices = _slice_map(lab1, lab2, grid_strings[ia], grid_strings[ib])
                plan = {"part": k, "src": src, "dst": dst, "k": n_slices, "base": base}
                src_all.append(plan["src"] + self.counter.slices[k].start)
                dst_all.append(plan["dst"] + base)
                base += plan["k"]
                self._by_part.setdefault(k, []).append(len(self.pairs))
                self.pairs.append((names[ia], names[ib]))
                self._plan.append(plan)
        self._src = np.concatenate(src_all) if src_all else np.zeros(0, dtype=np.int64)
        self._dst = np.concatenate(dst_all) if dst_all else np.zeros(0, dtype=np.int64)
        self.n_slices = [p["k"] for p in self._plan]
        self._owner = np.repeat(np.arange(len(self.pairs)), self.n_slices)
        self._n_total = base
        self._k = np.asarray(self.n_slices, dtype=np.float64)
        self._ns = self._to_slices(self.counter.N)
        self._gs = self._to_slices(self.counter.G)
        n_pairs = len(self.pairs)
        self._h_mean = np.bincount(self._owner, weights=gap_entropy(self._ns, self._gs, eps=OFFICIAL_EPS), minlength=n_pairs) / self._k
        part_total = np.array([self.counter.N[self.counter.slices[p["part"]]].sum() for p in self._plan])
        self.n_skipped_pairs = part_total - np.bincount(self._owner, weights=self._ns, minlength=n_pairs)
        self.n_empty_slices = np.bincount(self._owner, weights=self._ns == 0, minlength=n_pairs).astype(int)
        for q, plan in enumerate(self._plan):
            plan["ns"] = self._ns[plan["base"]:plan["base"] + plan["k"]]
            plan["gs"] = self._gs[plan["base"]:plan["base"] + plan["k"]]
            plan["h_mean"] = float(self._h_mean[q])
        h = self._h_mean
        self.early_exit = bool(len(h)) and not self.n_empty_slices.any() and bool(np.all(np.isfinite(h) & (h > 0)))
        #: partitions in the order the permutation baseline scores them (fewest cells first).
        self.null_parts = sorted(self._by_part, key=lambda k: self.counter.sizes[k])

    def _to_slices(self, block_values: np.ndarray) -> np.ndarray:
        """Block counts (..., blocks) -> official slice counts (..., slices)."""
        return scatter_add(block_values[..., self._src], self._dst, self._n_total)

    def _pair_ratio(self, q: int, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
        """Mean slice MI (P,), mean slice gap entropy, ratio (P,) of ordered pair ``q`` from its blocks."""
        plan = self._plan[q]
        a_s = scatter_add(a[:, plan["src"]], plan["dst"], plan["k"])
        b_s = scatter_add(b[:, plan["src"]], plan["dst"], plan["k"])
        mi_mean = mutual_information(plan["ns"], plan["gs"], a_s, b_s).sum(axis=1) / plan["k"]
        with np.errstate(divide="ignore", invalid="ignore"):
            return mi_mean, plan["h_mean"], mi_mean / plan["h_mean"]

    def pair_scores(self, ranks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per ordered pair: mean slice MI, mean slice gap entropy, and their ratio.

        ``ranks`` is (n,) or a batch (P, n) of permutations; outputs are (pairs,) or (P, pairs).
        """
        a, b = self.counter.counts(ranks)
        mi = mutual_information(self._ns, self._gs, self._to_slices(a), self._to_slices(b))
        mi_mean = scatter_add(mi, self._owner, len(self.pairs)) / self._k
        h_mean = np.broadcast_to(self._h_mean, mi_mean.shape)
        with np.errstate(divide="ignore", invalid="ignore"):
            return mi_mean, h_mean, mi_mean / h_mean

    def partition_min(self, bits: PairBits, part: int) -> np.ndarray:
        """Minimum score over the (two) ordered pairs of partition ``part``, from ``counter.compare`` bits."""
        a, b = self.counter.block_counts(bits, parts=[part])
        return np.min([self._pair_ratio(q, a, b)[2] for q in self._by_part[part]], axis=0)

    def score(self, ranks: np.ndarray) -> float | np.ndarray:
        """The official task score of the measure ``ranks`` (a float), or of each row of a batch."""
        ratio = self.pair_scores(ranks)[2]
        if ratio.ndim == 1:
            return fold_official(ratio)
        return np.array([fold_official(row) for row in ratio])


class _GridStrings:
    """The ``str`` of a hyperparameter's possible values, their positions, and prefix-freeness."""

    def __init__(self, strings: list[str]) -> None:
        self.strings = strings
        self.position = {v: i for i, v in enumerate(strings)}
        # distinct and no string a prefix of another: concatenations decode uniquely
        self.prefix_free = len(self.position) == len(strings) and not any(
            a != b and b.startswith(a) for a in strings for b in strings
        )


def _slice_map(lab1: list[str], lab2: list[str], v1: _GridStrings, v2: _GridStrings) -> tuple[np.ndarray, np.ndarray, int]:
    """Official slice of every block ``(c, c')`` of an ordered pair's partition.

    A block's slice is named ``lab1[c] + lab1[c'] + lab2[c] + lab2[c']``; the K slice names are
    ``str(v) + str(w) + str(x) + str(y)`` over the possible values (h1 outer), and a repeated
    name maps to its *last* position (the earlier ones stay empty). Blocks whose name is not a
    slice name are dropped. Returns ``(block index, slice index, K)``.
    """
    c_k = len(lab1)
    n1, n2 = len(v1.strings), len(v2.strings)
    n_slices = n1 * n1 * n2 * n2
    in_grid = all(x in v1.position for x in lab1) and all(x in v2.position for x in lab2)
    names = None
    if not (v1.prefix_free and v2.prefix_free):
        names = [a + b + c + d for a in v1.strings for b in v1.strings for c in v2.strings for d in v2.strings]
    if in_grid and (names is None or len(set(names)) == n_slices):
        # collision-free names and labels in the grid: the slice index is arithmetic
        i1 = np.array([v1.position[x] for x in lab1], dtype=np.int64)
        i2 = np.array([v2.position[x] for x in lab2], dtype=np.int64)
        dst = ((i1[:, None] * n1 + i1[None, :]) * n2 + i2[:, None]) * n2 + i2[None, :]
        return np.arange(c_k * c_k, dtype=np.int64), dst.ravel(), n_slices
    if names is None:
        names = [a + b + c + d for a in v1.strings for b in v1.strings for c in v2.strings for d in v2.strings]
    lookup = {name: pos for pos, name in enumerate(names)}
    src, dst = [], []
    for c in range(c_k):
        for c2 in range(c_k):
            pos = lookup.get(lab1[c] + lab1[c2] + lab2[c] + lab2[c2])
            if pos is not None:
                src.append(c * c_k + c2)
                dst.append(pos)
    return np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64), n_slices


def fold_official(pair_scores: Sequence[float]) -> float:
    """Fold pair scores as the official program does: ``running = min(score, running)``.

    Python's ``min(x, y)`` returns ``y`` only when ``y < x``: a NaN score therefore replaces the
    running minimum, and the next score replaces the NaN. ``inf`` when there is no pair.
    """
    running = math.inf
    for s in pair_scores:
        s = float(s)
        running = running if running < s else s
    return running


def warn_collisions(scorer: OfficialCMIScorer) -> None:
    """Warn when slice names collide (those pairs score NaN, as in the official program)."""
    bad = [pair for pair, empty in zip(scorer.pairs, scorer.n_empty_slices) if empty]
    if bad:
        warnings.warn(
            f"official CMI: string-concatenated slice names collide for hyperparameter pairs {bad[:5]} "
            "(e.g. values 1 and 11); those pairs score NaN, and the official fold lets a NaN reset the minimum. "
            "This is the official behaviour; mode='clean' has no such collisions",
            DegenerateInputWarning,
            stacklevel=4,
        )
