"""Figures of a run's results: measures against the gap, sign-error, layer-wise curves, P-vectors.

Every function takes tidy frames (see :mod:`gen_measures.plot`) and a ``task`` name (frames
with a ``task`` column are filtered to it; ``None`` when they hold one task only) and returns a
:class:`matplotlib.figure.Figure`. Models are coloured by their generalization gap (viridis,
with a colour bar) where lines are drawn, and by a hyperparameter where points are.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from gen_measures.errors import GenMeasuresError

__all__ = [
    "layer_curves_figure",
    "measure_scatter_figure",
    "models_frame",
    "pvector_figure",
    "sign_error_heatmap",
    "worst_hparams",
]

#: Measures whose per-layer curves :func:`layer_curves_figure` draws by default.
LAYER_MEASURES = ("saturation", "compression", "discrimination")
_GAP_CMAP = "viridis"
_HPARAM_COLORS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666")


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _one_task(frame: pd.DataFrame, task: str | None, what: str) -> pd.DataFrame:
    if "task" not in frame.columns:
        return frame
    if task is None:
        tasks = pd.unique(frame["task"])
        if len(tasks) > 1:
            raise GenMeasuresError(f"{what}: holds tasks {list(tasks)}; pass task= to choose one")
        return frame
    return frame[frame["task"] == task]


def models_frame(tasks: Iterable[Any]) -> pd.DataFrame:
    """``task, model, gap, <hyperparameters>``: one row per model of the tasks with reference data.

    ``tasks`` are :class:`gen_measures.io.pgdl.Task` objects; a task without reference data (or
    without gaps) contributes no row.
    """
    frames = []
    for task in tasks:
        ref = task.read_reference()
        if ref is None or not ref.has_gaps():
            continue
        frame = ref.hparams_frame().copy()
        frame.insert(0, "gap", ref.gaps().reindex(frame.index).to_numpy(dtype=float))
        frame.insert(0, "model", [str(i) for i in frame.index])
        frame.insert(0, "task", task.name)
        frames.append(frame.reset_index(drop=True))
    if not frames:
        return pd.DataFrame(columns=["task", "model", "gap"])
    return pd.concat(frames, ignore_index=True)


def worst_hparams(scores: pd.DataFrame, hparams: Sequence[str], task: str | None = None) -> dict[str, str]:
    """``{measure: hyperparameter}``: for each measure, the hyperparameter with the largest mean
    robust sign-error (``sign_error_mean_<h>``) on ``task``; measures with no finite value are left out."""
    table = _sign_error_table(scores, hparams, task)
    out = {}
    for measure, row in table.iterrows():
        finite = row.dropna()
        if len(finite):
            out[str(measure)] = str(finite.idxmax())
    return out


def _sign_error_table(scores: pd.DataFrame, hparams: Sequence[str], task: str | None) -> pd.DataFrame:
    scores = _one_task(scores, task, "scores")
    wanted = {f"sign_error_mean_{h}": h for h in hparams}
    sel = scores[scores["metric"].isin(list(wanted))]
    if not len(sel):
        return pd.DataFrame(columns=list(hparams), dtype=float)
    table = sel.pivot_table(index="measure", columns="metric", values="value", aggfunc="first", dropna=False)
    table = table.rename(columns=wanted).reindex(columns=list(hparams))
    order = list(dict.fromkeys(sel["measure"]))
    return table.reindex(order).astype(float)


def _gap_colors(gaps: pd.Series):
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    finite = gaps[np.isfinite(gaps.to_numpy(dtype=float))]
    lo, hi = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
    norm = Normalize(vmin=lo, vmax=hi if hi > lo else lo + 1e-12)
    cmap = colormaps[_GAP_CMAP]
    return norm, cmap


def _gap_colorbar(fig, axes, norm, cmap) -> None:
    from matplotlib.cm import ScalarMappable

    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=axes, label="generalization gap", shrink=0.9)


def _direction_arrow(direction: int | None) -> str:
    return {1: " (higher: larger gap)", -1: " (higher: smaller gap)"}.get(direction, "")


def _grid(n: int, ncols: int, width: float = 3.3, height: float = 2.8):
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig = _figure(width * ncols, height * nrows)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False).ravel())
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def measure_scatter_figure(results: pd.DataFrame, models: pd.DataFrame, scores: pd.DataFrame | None = None, *,
                           task: str | None = None, measures: Sequence[str] | None = None,
                           directions: Mapping[str, int] | None = None, ncols: int = 4):
    """One scatter per measure: its value (y) against the generalization gap (x), one point per
    model, coloured by the hyperparameter on which the measure's robust sign-error is worst
    (from ``scores``; the first hyperparameter when ``scores`` is ``None``). Titles carry the
    measure's direction (from ``directions``) and its Kendall tau (from ``scores``)."""
    results = _one_task(results, task, "results")
    models = _one_task(models, task, "models").set_index("model")
    if measures is None:
        measures = list(dict.fromkeys(results["measure"]))
    if not measures:
        raise GenMeasuresError("measure_scatter_figure: no measure to plot")
    hparams = [c for c in models.columns if c not in ("task", "gap")]
    worst = worst_hparams(scores, hparams, task) if scores is not None and hparams else {}
    taus = {}
    if scores is not None:
        sc = _one_task(scores, task, "scores")
        taus = dict(zip(sc.loc[sc.metric == "kendall_tau_a", "measure"], sc.loc[sc.metric == "kendall_tau_a", "value"]))
    fig, axes = _grid(len(measures), ncols)
    for ax, measure in zip(axes, measures):
        rows = results[(results["measure"] == measure)]
        values = pd.Series(rows["value"].to_numpy(dtype=float), index=rows["model"].astype(str))
        values = values[np.isfinite(values.to_numpy())]
        common = [m for m in values.index if m in models.index]
        title = measure + _direction_arrow((directions or {}).get(measure))
        ax.set_title(title, fontsize=8)
        ax.set_xlabel("generalization gap", fontsize=8)
        ax.tick_params(labelsize=7)
        if not common:
            ax.text(0.5, 0.5, "no finite value", ha="center", va="center", transform=ax.transAxes, fontsize=8)
            continue
        gaps = models.loc[common, "gap"].astype(float)
        hp = worst.get(measure, hparams[0] if hparams else None)
        if hp is None:
            ax.scatter(gaps, values[common], s=14, color=_HPARAM_COLORS[0])
        else:
            for i, level in enumerate(sorted(pd.unique(models.loc[common, hp]), key=str)):
                sel = [m for m in common if models.at[m, hp] == level]
                ax.scatter(gaps[sel], values[sel], s=14, color=_HPARAM_COLORS[i % len(_HPARAM_COLORS)],
                           label=f"{hp}={level}")
            ax.legend(fontsize=6, loc="best", framealpha=0.6,
                      title="worst sign-error" if measure in worst else None, title_fontsize=6)
        tau = taus.get(measure)
        if tau is not None and math.isfinite(tau):
            ax.text(0.02, 0.98, f"tau = {tau:+.2f}", ha="left", va="top", transform=ax.transAxes, fontsize=7)
    return fig


def sign_error_heatmap(scores: pd.DataFrame, hparams: Sequence[str], *, task: str | None = None):
    """Heat map of the mean robust sign-error per measure (rows) and hyperparameter (columns)."""
    table = _sign_error_table(scores, hparams, task)
    if not len(table) or not np.isfinite(table.to_numpy(dtype=float)).any():
        raise GenMeasuresError("sign_error_heatmap: no sign-error values in scores"
                               + (f" for task {task!r}" if task else ""))
    data = table.to_numpy(dtype=float)
    fig = _figure(1.4 + 1.1 * len(hparams), 1.0 + 0.28 * len(table))
    ax = fig.subplots()
    image = ax.imshow(np.ma.masked_invalid(data), cmap="magma_r", vmin=0.0, vmax=max(0.5, float(np.nanmax(data))),
                      aspect="auto")
    ax.set_xticks(range(len(hparams)), labels=list(hparams), rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(table)), labels=list(table.index), fontsize=7)
    for (i, j), v in np.ndenumerate(data):
        if math.isfinite(v):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6, color="white" if v > 0.3 else "black")
    fig.colorbar(image, ax=ax, label="mean robust sign-error", shrink=0.9)
    return fig


def layer_curves_figure(layers: pd.DataFrame, models: pd.DataFrame | None = None, *, task: str | None = None,
                        measures: Sequence[str] = LAYER_MEASURES):
    """Per-layer curves, one panel per measure of ``measures`` present in ``layers``: value
    against depth (0 = first Dense/Conv layer), one line per model, coloured by its gap (grey
    when ``models`` has none). Compression is drawn on a log scale when all its values are positive."""
    layers = _one_task(layers, task, "layers")
    present = [m for m in measures if (layers["measure"] == m).any()]
    if not present:
        raise GenMeasuresError(f"layer_curves_figure: no per-layer values of {list(measures)}"
                               + (f" for task {task!r}" if task else ""))
    gaps = pd.Series(dtype=float)
    if models is not None and len(models):
        m = _one_task(models, task, "models")
        gaps = pd.Series(m["gap"].to_numpy(dtype=float), index=m["model"].astype(str))
    norm, cmap = _gap_colors(gaps)
    fig, axes = _grid(len(present), 3, width=3.6, height=3.0)
    for ax, measure in zip(axes, present):
        sel = layers[layers["measure"] == measure]
        positive = True
        for model, group in sel.groupby("model", sort=False):
            group = group.sort_values("depth")
            y = group["value"].to_numpy(dtype=float)
            positive &= bool(np.all(y[np.isfinite(y)] > 0))
            gap = gaps.get(str(model), math.nan)
            color = cmap(norm(gap)) if math.isfinite(gap) else "0.5"
            ax.plot(group["depth"], y, marker="o", markersize=2.5, linewidth=1.0, color=color, alpha=0.85)
        if measure == "compression" and positive:
            ax.set_yscale("log")
        ax.set_title(f"{measure} per layer", fontsize=9)
        ax.set_xlabel("depth (Dense/Conv layer index)", fontsize=8)
        ax.tick_params(labelsize=7)
    if len(gaps):
        _gap_colorbar(fig, list(axes), norm, cmap)
    return fig


def pvector_figure(results: pd.DataFrame, topk: pd.DataFrame, models: pd.DataFrame, *, task: str | None = None):
    """Left: the P-vector angle (model vs data) against the gap. Right: the largest principal
    angle between the top-``k`` singular subspaces of the features and of the data against
    ``k``, one line per model coloured by its gap."""
    results = _one_task(results, task, "results")
    topk = _one_task(topk, task, "topk")
    m = _one_task(models, task, "models")
    gaps = pd.Series(m["gap"].to_numpy(dtype=float), index=m["model"].astype(str))
    rows = results[results["measure"] == "pvector_angle"]
    if not len(rows):
        raise GenMeasuresError("pvector_figure: no pvector_angle values" + (f" for task {task!r}" if task else ""))
    norm, cmap = _gap_colors(gaps)
    fig = _figure(8.0, 3.2)
    left, right = fig.subplots(1, 2)
    values = pd.Series(rows["value"].to_numpy(dtype=float), index=rows["model"].astype(str))
    common = [k for k in values.index if k in gaps.index and math.isfinite(values[k])]
    left.scatter(gaps[common], values[common], c=[cmap(norm(gaps[k])) for k in common], s=16)
    left.set_xlabel("generalization gap", fontsize=8)
    left.set_ylabel("P-vector angle to the data (degrees)", fontsize=8)
    left.set_title("model-data P-vector angle", fontsize=9)
    for model, group in topk.groupby("model", sort=False):
        gap = gaps.get(str(model), math.nan)
        right.plot(group["k"], group["value"], marker="o", markersize=2.5, linewidth=1.0, alpha=0.85,
                   color=cmap(norm(gap)) if math.isfinite(gap) else "0.5")
    right.set_xlabel("k (top-k singular subspaces)", fontsize=8)
    right.set_ylabel("largest principal angle (degrees)", fontsize=8)
    right.set_title("top-k singular-vector angles to the data", fontsize=9)
    if not len(topk):
        right.text(0.5, 0.5, "no top-k angles stored", ha="center", va="center", transform=right.transAxes, fontsize=8)
    for ax in (left, right):
        ax.tick_params(labelsize=7)
    _gap_colorbar(fig, [left, right], norm, cmap)
    return fig
