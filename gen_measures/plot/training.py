"""Training curves: the convergence of the feature space and the saturation of the layers.

:func:`convergence_figure` draws the tidy curves of :class:`gen_measures.callbacks.FeatureConvergence`
(``callback.frame()``, columns ``epoch, curve, value``) or of a zoo made with ``make-zoo --track``
(:func:`gen_measures.io.training_curves.read_training_curves`, with ``task`` and ``model``
columns), for one model or several.

References
----------
Seed paper: "Empirical studies on the convergence of feature spaces" (the angle between a
network's P-vector and its final P-vector falls during training). Shenk, J., Richter, M. L.,
Arpteg, A. & Huss, M. (2021). "Feature space saturation during training", arXiv:2006.08679.
"""

from __future__ import annotations

import pandas as pd

from gen_measures.errors import DataError
from gen_measures.plot.results import _figure, _one_task

__all__ = ["convergence_figure"]

#: Angle curves (name in the frame, legend label, colour), in drawing order.
_ANGLES = (
    ("pvector_angle_to_final", "to final P-vector", "#d95f02"),
    ("pvector_angle_to_data", "to data P-vector", "#1b9e77"),
    ("pvector_angle_to_previous", "to previous epoch", "#7570b3"),
)
_SATURATION = "saturation/"
_STYLES = ("-", "--", ":", "-.")
_REQUIRED = ("epoch", "curve", "value")


def convergence_figure(curves: pd.DataFrame, *, task: str | None = None, title: str | None = None,
                       width: float = 10.0, height: float = 4.0):
    """Two panels against the epoch: the three P-vector angles, and every layer's saturation.

    Parameters
    ----------
    curves : pandas.DataFrame
        Tidy curves, columns ``epoch, curve, value`` (curve names as in
        :mod:`gen_measures.callbacks`: ``pvector_angle_to_final``, ``pvector_angle_to_data``,
        ``pvector_angle_to_previous``, ``saturation/<layer>``); optional ``model`` (one line per
        model and curve) and ``task`` columns. NaN values (untracked epochs) are skipped, so
        each line joins the tracked epochs.
    task : str, optional
        Keep the rows of this task (frames with a ``task`` column holding several tasks need it).
    title : str, optional
        The figure's title.
    width, height : float
        Figure size in inches.

    Returns
    -------
    matplotlib.figure.Figure
        Left: the angles (degrees), colour = curve; up to 4 models are told apart by line style
        (legend), more are drawn as thin lines. Right: saturation ``k / width`` per layer; for
        one model, colour = layer (legend: layer names); for several, colour = relative depth
        (first layer to classifier), line style = model. A frame without rows gives the two
        panels with a note.

    Raises
    ------
    DataError
        ``curves`` lacks one of the columns ``epoch``, ``curve``, ``value``.

    References
    ----------
    .. [1] Seed paper, "Empirical studies on the convergence of feature spaces".
    .. [2] Shenk, J. et al. (2021). "Feature space saturation during training", arXiv:2006.08679.
    """
    missing = [c for c in _REQUIRED if c not in curves.columns]
    if missing:
        raise DataError(f"curves: missing column(s) {missing}; expected the tidy frame of FeatureConvergence.frame() "
                        f"or read_training_curves() (columns {list(_REQUIRED)}, optional model, task)")
    frame = _one_task(curves, task, "curves")
    models = list(pd.unique(frame["model"])) if "model" in frame.columns else [None]
    fig = _figure(width, height)
    ax_angle, ax_sat = fig.subplots(1, 2)
    _angle_panel(ax_angle, frame, models)
    _saturation_panel(fig, ax_sat, frame, models)
    if frame.empty:
        for ax in (ax_angle, ax_sat):
            ax.text(0.5, 0.5, "no training curves", ha="center", va="center", transform=ax.transAxes, color="0.4")
    if title:
        fig.suptitle(title)
    return fig


def _series(frame: pd.DataFrame, model, curve: str) -> pd.DataFrame:
    """The finite points of one curve of one model, by epoch."""
    rows = frame[frame["curve"] == curve]
    if model is not None:
        rows = rows[rows["model"] == model]
    return rows.dropna(subset=["value"]).sort_values("epoch")


def _line_style(models: list, i: int) -> dict:
    """Distinct line styles for up to 4 models; thin translucent lines beyond."""
    if len(models) <= len(_STYLES):
        return {"linestyle": _STYLES[i], "linewidth": 1.6}
    return {"linestyle": "-", "linewidth": 0.8, "alpha": 0.5}


def _angle_panel(ax, frame: pd.DataFrame, models: list) -> None:
    from matplotlib.lines import Line2D

    handles, labels = [], []
    for curve, label, color in _ANGLES:
        for i, model in enumerate(models):
            s = _series(frame, model, curve)
            if s.empty:
                continue
            ax.plot(s["epoch"], s["value"], color=color, marker="o" if len(s) <= 15 else None, markersize=3,
                    **_line_style(models, i))
            if label not in labels:
                handles.append(Line2D([], [], color=color))
                labels.append(label)
    if 1 < len(models) <= len(_STYLES):
        handles += _model_handles(models)
        labels += [str(m) for m in models]
    ax.set_xlabel("epoch")
    ax.set_ylabel("angle between P-vectors (degrees)")
    ax.set_title("P-vector of the penultimate features")
    top = max((line.get_ydata().max() for line in ax.get_lines() if len(line.get_ydata())), default=1.0)
    ax.set_ylim(0, 1.45 * top)  # room for the legend above the curves
    ax.grid(alpha=0.3)
    if handles:
        ax.legend(handles, labels, fontsize="small", loc="upper right", ncol=2 if len(handles) > 3 else 1)


def _model_handles(models: list) -> list:
    """Grey legend proxies of the models' line styles."""
    from matplotlib.lines import Line2D

    return [Line2D([], [], color="0.25", **_line_style(models, i)) for i in range(len(models))]


def _layers(frame: pd.DataFrame, model) -> list[str]:
    rows = frame if model is None else frame[frame["model"] == model]
    return [c for c in pd.unique(rows["curve"]) if str(c).startswith(_SATURATION)]


def _saturation_panel(fig, ax, frame: pd.DataFrame, models: list) -> None:
    from matplotlib import colormaps

    single = len(models) == 1
    for i, model in enumerate(models):
        layers = _layers(frame, model)
        for j, curve in enumerate(layers):
            s = _series(frame, model, curve)
            if s.empty:
                continue
            if single:
                color, label = colormaps["tab10"](j % 10), curve[len(_SATURATION):]
            else:
                color, label = colormaps["viridis"](j / max(1, len(layers) - 1)), None
            ax.plot(s["epoch"], s["value"], color=color, label=label, **_line_style(models, 0 if single else i))
    ax.set_xlabel("epoch")
    ax.set_ylabel("saturation (k / width)")
    ax.set_title("Layer saturation (99 % of the variance)")
    ax.set_ylim(0, 1.05)
    ax.grid(alpha=0.3)
    if not single:
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize

        bar = fig.colorbar(ScalarMappable(Normalize(0, 1), "viridis"), ax=ax, ticks=[0, 1])
        bar.ax.set_yticklabels(["first layer", "classifier"])
    if single and ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small", ncol=2 if len(ax.get_lines()) > 6 else 1)
    elif not single and len(models) <= len(_STYLES):
        ax.legend(_model_handles(models), [str(m) for m in models], fontsize="small")
