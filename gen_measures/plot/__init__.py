"""Figures of a run, each a function returning a :class:`matplotlib.figure.Figure`.

The inputs are the tidy frames a run produces, so a notebook shows the same pictures as
``gen-measures report``:

* ``results``: :func:`gen_measures.runner.read_results` (``task, model, measure, value, ...``);
* ``scores``: :func:`scoring.report.score_results` (``measure, task, metric, value``);
* ``models``: :func:`models_frame` (``task, model, gap`` and one column per hyperparameter);
* ``layers``: :func:`gen_measures.io.results.layer_values`;
* ``topk``: :func:`gen_measures.io.results.topk_angle_values`;
* ``curves``: :func:`gen_measures.io.zoo.read_training_curves` (training curves of ``make-zoo --track``).

Figures are built on :class:`matplotlib.figure.Figure` directly (no ``pyplot`` state, no display
needed: the Agg canvas renders them). Show one in a notebook by evaluating it, save it with
``fig.savefig(path)``.
"""

from gen_measures.plot.results import (
    layer_curves_figure,
    measure_scatter_figure,
    models_frame,
    pvector_figure,
    sign_error_heatmap,
    worst_hparams,
)
from gen_measures.plot.training import convergence_figure

__all__ = [
    "convergence_figure",
    "layer_curves_figure",
    "measure_scatter_figure",
    "models_frame",
    "pvector_figure",
    "sign_error_heatmap",
    "worst_hparams",
]
