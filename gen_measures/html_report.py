"""The HTML report of a run: one self-contained file, figures embedded, one section per task.

:func:`write_report` turns a :class:`gen_measures.pipeline.RunResult` (from a run, or from a
stored run with :func:`gen_measures.pipeline.load`) into ``report.html``. Each task section holds:

* the score table (official and clean CMI, Kendall tau, granulated Psi, the permutation
  percentile of the CMI, mean robust sign-error), best measure first (by official CMI, then
  clean CMI), each measure with its direction;
* a scatter of every measure against the generalization gap, coloured by the hyperparameter on
  which its sign-error is worst (:func:`gen_measures.plot.measure_scatter_figure`);
* the heat map of robust sign-error, measure x hyperparameter;
* per-layer saturation, compression and discrimination curves, one line per model coloured by
  its gap;
* the P-vector angle against the gap and the top-k singular-vector angles;
* the training curves of models made with ``make-zoo --track``.

Where a figure's data are missing (a measure not computed, no reference data, no training
curves) the section says so in its place. Images are PNG in ``data:`` URIs; the page has no
script and loads nothing from the network, so it opens from disk anywhere.
"""

from __future__ import annotations

import base64
import html
import io
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from gen_measures.errors import GenMeasuresError
from gen_measures.io.atomic import atomic_path

__all__ = ["REPORT_NAME", "TABLE_METRICS", "render_report", "write_report"]

#: File name of the report in a run's output folder.
REPORT_NAME = "report.html"
#: Columns of the score table: metric -> header.
TABLE_METRICS = {
    "cmi_official": "CMI (official)",
    "cmi_clean": "CMI (clean)",
    "kendall_tau_a": "Kendall tau",
    "granulated_psi": "granulated Psi",
    "cmi_percentile": "CMI permutation percentile",
    "sign_error_mean": "robust sign-error (mean)",
}
_DPI = 100
_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1300px; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 2px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
h3 { font-size: 1.1em; margin-top: 1.5em; }
table { border-collapse: collapse; font-size: .85em; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: right; }
th { background: #f3f3f3; } td.name, th.name { text-align: left; }
.missing { color: #8a5a00; background: #fff6e0; padding: .4em .8em; border-left: 4px solid #e0a000; }
.meta { color: #555; font-size: .9em; }
figure { margin: 1em 0; } figcaption { color: #555; font-size: .85em; }
img { max-width: 100%; height: auto; }
nav a { margin-right: 1em; }
"""


def write_report(result: Any, path: str | Path, *, progress: bool = False) -> Path:
    """Render :func:`render_report` of ``result`` to ``path`` (folders created); returns the path."""
    path = Path(path)
    if path.is_dir():
        raise GenMeasuresError(f"report: {path} is a folder; give the path of the HTML file to write")
    text = render_report(result, progress=progress)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def render_report(result: Any, *, progress: bool = False) -> str:
    """The report of ``result`` (a :class:`~gen_measures.pipeline.RunResult`) as an HTML string."""
    from gen_measures.io.results import layer_values, topk_angle_values
    from gen_measures.plot import models_frame

    directions = {s.name: s.direction for s in result.specs}
    if len(result.fused):
        directions.update({name: 1 for name in result.fused["measure"].unique()})
    frames = {
        "results": result.results,
        "scores": result.scores,
        "models": models_frame(result.tasks),
        "layers": layer_values(result.results),
        "topk": topk_angle_values(result.results),
        "curves": _training_curves(result.tasks),
    }
    values = pd.concat([result.results, result.fused], ignore_index=True) if len(result.fused) else result.results
    frames["values"] = values
    bar = _bar(progress, len(result.tasks))
    sections = []
    for task in result.tasks:
        sections.append(_task_section(task, frames, directions))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return _page(result, sections)


def _bar(enabled: bool, total: int):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="report", unit="task")


def _training_curves(tasks) -> pd.DataFrame:
    from gen_measures.io.training_curves import read_training_curves

    frames = [read_training_curves(task.path) for task in tasks]
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["task", "model", "epoch", "curve", "value"])


def _page(result: Any, sections: list[str]) -> str:
    measures = ", ".join(s.name for s in result.specs)
    source = html.escape(str(result.output)) if result.output is not None else "(not stored)"
    nav = " ".join(f'<a href="#task-{_anchor(t.name)}">{html.escape(t.name)}</a>' for t in result.tasks)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<title>gen-measures report</title>\n"
        f"<style>{_CSS}</style>\n</head>\n<body>\n"
        "<h1>gen-measures report</h1>\n"
        f"<p class=\"meta\">Run folder: <code>{source}</code> &middot; generated {html.escape(stamp)} &middot; "
        f"{len(result.tasks)} task(s), {len(result.specs)} measure(s): {html.escape(measures)}</p>\n"
        f"<nav>{nav}</nav>\n" + "\n".join(sections) + "\n</body>\n</html>\n"
    )


def _anchor(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name)


def _missing(text: str) -> str:
    return f'<p class="missing">{html.escape(text)}</p>'


def _figure_html(make: Callable[[], Any], caption: str, missing: str) -> str:
    """The figure ``make()`` returns, embedded as PNG; ``missing`` in its place when it cannot be drawn."""
    try:
        fig = make()
    except GenMeasuresError as exc:
        return _missing(f"{missing}: {exc}")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return (f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _task_section(task: Any, frames: dict[str, pd.DataFrame], directions: dict[str, int]) -> str:
    from gen_measures import plot

    name = task.name
    sel = {k: (f[f["task"] == name] if "task" in f.columns else f) for k, f in frames.items()}
    results, scores, models = sel["results"], sel["scores"], sel["models"]
    hparams = [c for c in models.columns if c not in ("task", "model", "gap")]
    parts = [f'<section class="task" id="task-{_anchor(name)}">', f"<h2>{html.escape(name)}</h2>",
             f'<p class="meta">{results["model"].nunique()} model(s); folder <code>{html.escape(str(task.path))}</code></p>']
    parts.append(_failures(results))
    has_reference = len(models) > 0
    parts.append("<h3>Scores</h3>")
    parts.append(_score_table(scores, directions) if len(scores) else _missing(
        "No scores: " + ("no measure could be scored on this task" if has_reference
                         else "the task has no reference metrics (model_configs.json with train and test accuracy)")))
    parts.append("<h3>Each measure against the generalization gap</h3>")
    if has_reference:
        parts.append(_figure_html(
            lambda: plot.measure_scatter_figure(sel["values"], models, scores, task=name, directions=directions),
            "Value (y) against generalization gap (x), one point per model, coloured by the hyperparameter on "
            "which the measure's robust sign-error is worst.", "Scatter not drawn"))
        parts.append("<h3>Robust sign-error by hyperparameter</h3>")
        parts.append(_figure_html(lambda: plot.sign_error_heatmap(scores, hparams, task=name),
                                  "Mean robust sign-error of each measure when one hyperparameter changes "
                                  "(0 = always the right sign, 0.5 = chance).", "Heat map not drawn"))
    else:
        parts.append(_missing("No generalization gaps for this task: the scatter and sign-error figures need them."))
    parts.append("<h3>Layer-wise saturation, compression and discrimination</h3>")
    parts.append(_figure_html(lambda: plot.layer_curves_figure(sel["layers"], models, task=name),
                              "Per-layer values, one line per model, coloured by its generalization gap.",
                              "Layer curves not drawn (compute saturation, compression or discrimination)"))
    parts.append("<h3>P-vectors</h3>")
    if has_reference:
        parts.append(_figure_html(lambda: plot.pvector_figure(results, sel["topk"], models, task=name),
                                  "Model-data P-vector angle against the gap; largest principal angle between "
                                  "the top-k singular subspaces of features and data.",
                                  "P-vector figure not drawn (compute pvector_angle)"))
    else:
        parts.append(_missing("No generalization gaps for this task: the P-vector figure plots against them."))
    parts.append("<h3>Training curves</h3>")
    parts.append(_figure_html(lambda: _curves_figure(sel["curves"], name),
                              "P-vector angles and per-layer saturation per epoch (recorded by "
                              "gen_measures.callbacks.FeatureConvergence).",
                              "No training curves"))
    parts.append("</section>")
    return "\n".join(parts)


def _curves_figure(curves: pd.DataFrame, task: str):
    from gen_measures.plot import convergence_figure

    if not len(curves):
        raise GenMeasuresError(f"task {task!r} has no model_<id>/training_curves.csv "
                               "(made by gen-measures make-zoo --track)")
    return convergence_figure(curves)


def _failures(results: pd.DataFrame) -> str:
    from gen_measures.runner.measure import FAILED_STATUSES

    failed = results[results["status"].isin(FAILED_STATUSES)]
    if not len(failed):
        return ""
    shown = "; ".join(f"model {m} / {me}: {st} ({msg})" for m, me, st, msg in
                      failed[["model", "measure", "status", "message"]].head(5).itertuples(index=False))
    more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
    return _missing(f"{len(failed)} result(s) failed: {shown}{more}. See results.csv.")


def _score_table(scores: pd.DataFrame, directions: dict[str, int]) -> str:
    table = scores.pivot_table(index="measure", columns="metric", values="value", aggfunc="first", dropna=False)
    table = table.reindex(columns=list(TABLE_METRICS))
    key = table["cmi_official"].fillna(table["cmi_clean"]).fillna(-math.inf)
    table = table.loc[key.sort_values(ascending=False, kind="stable").index]
    head = "".join(f"<th>{html.escape(h)}</th>" for h in TABLE_METRICS.values())
    rows = []
    for measure, row in table.iterrows():
        d = directions.get(str(measure))
        arrow = {1: "higher &rarr; larger gap", -1: "higher &rarr; smaller gap"}.get(d, "")
        cells = "".join(f"<td>{_fmt(row[m], m)}</td>" for m in TABLE_METRICS)
        rows.append(f'<tr><td class="name">{html.escape(str(measure))}</td><td class="name">{arrow}</td>{cells}</tr>')
    return (f'<table><thead><tr><th class="name">measure</th><th class="name">direction</th>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>"
            '<p class="meta">Direction: whether a higher value of the measure predicts a larger or a smaller '
            "generalization gap. Sorted best first by official CMI (clean CMI where the official one is "
            "undefined). Percentile: of the CMI among random permutations of the measure's values.</p>")


def _fmt(value: Any, metric: str) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return ""
    if not math.isfinite(v):
        return "&ndash;"
    return f"{v:.1f}" if metric == "cmi_percentile" else f"{v:.3f}"
