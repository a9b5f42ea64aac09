"""The HTML report, its figures and the tidy per-layer values, on the bundled zoo.

The browser test opens the report of the bundled zoo in the system's headless Chromium (as a
person would), checks that it loads with no console error, that every image decodes to a
non-zero size and that there is one section per task. Without Chromium it is skipped, unless
``GEN_MEASURES_REQUIRE_BROWSER=1`` (set by ``.ci/run``, which installs Chromium) makes the
absence a failure.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from gen_measures.io.results import LAYER_COLUMNS, layer_values, topk_angle_values
from gen_measures.pipeline import load, report, run, sample_data_path
from tests.browser import find_chromium, open_page

MEASURES = ["pvector_angle", "saturation", "compression", "discrimination", "distance_to_init"]


@pytest.fixture(scope="module")
def zoo_run(tmp_path_factory):
    """The bundled zoo with the measures the figures need (computed in this process)."""
    out = tmp_path_factory.mktemp("report_run")
    result = run([sample_data_path()], measures=MEASURES, output=out, workers=0, report=True)
    return result


def test_run_report_writes_one_self_contained_file(zoo_run):
    path = zoo_run.output / "report.html"
    assert path in zoo_run.files and path.is_file()
    text = path.read_text(encoding="utf-8")
    assert "<script" not in text
    # nothing is fetched: every src/href is a data: URI or an in-page anchor
    for ref in re.findall(r'(?:src|href)="([^"]*)"', text):
        assert ref.startswith(("data:image/png;base64,", "#")), ref
    for task in zoo_run.tasks:
        assert f'id="task-{task.name}"' in text
    # the score table shows each measure with its direction, best (official CMI) first
    scores = zoo_run.scores[(zoo_run.scores.task == "digits_vgg") & (zoo_run.scores.metric == "cmi_official")]
    best = scores.sort_values("value", ascending=False)["measure"].tolist()
    section = text.split('id="task-digits_vgg"')[1].split("</table>")[0]
    order = [m for m in re.findall(r'<td class="name">([a-z_]+)</td>', section)]
    assert order == best
    assert "higher &rarr; smaller gap" in section  # discrimination's direction
    assert "make-zoo --track" in text or "Training curves" in text


@pytest.mark.skipif(find_chromium() is None and os.environ.get("GEN_MEASURES_REQUIRE_BROWSER") != "1",
                    reason="Chromium is not installed (apt-get install chromium; .ci/run installs it)")
def test_report_in_a_real_browser(zoo_run, tmp_path):
    pytest.importorskip("playwright", reason="playwright is in the test extras: pip install -e '.[test]'")
    shot = tmp_path / "report.png"
    check = open_page(zoo_run.output / "report.html", shot)
    assert check.errors == []
    assert check.requests == []
    assert len(check.images) >= 4 * len(zoo_run.tasks)
    assert all(complete and w > 0 and h > 0 for complete, w, h in check.images), check.images
    assert check.sections == [f"task-{t.name}" for t in zoo_run.tasks]
    assert shot.stat().st_size > 10_000


def test_per_layer_values_survive_the_run(zoo_run):
    """The tidy reader gives the stored details; layer_values.csv holds the same rows; the
    measure values agree with their curves (saturation = mean over layers, compression and
    discrimination = the penultimate entry)."""
    stored = load(zoo_run.output)
    layers = layer_values(stored.results)
    assert list(layers.columns) == LAYER_COLUMNS
    csv = pd.read_csv(zoo_run.output / "layer_values.csv", dtype={"model": str})
    pd.testing.assert_frame_equal(csv, layers, check_dtype=False)
    values = stored.results.set_index(["task", "model", "measure"])["value"]
    n_models = sum(len(t.model_ids) for t in zoo_run.tasks)
    for measure in ("saturation", "compression", "discrimination"):
        sel = layers[layers.measure == measure]
        assert sel.groupby(["task", "model"]).ngroups == n_models
        for (task, model), group in sel.groupby(["task", "model"]):
            assert list(group["depth"]) == list(range(len(group)))
            expected = group["value"].mean() if measure == "saturation" else group["value"].iloc[-1]
            assert values[(task, model, measure)] == pytest.approx(expected, rel=1e-12)
            if measure != "saturation":
                assert group["layer"].iloc[-1] == "penultimate"


def test_topk_angles_start_with_the_pvector_angle(zoo_run):
    """The stored top-k angles: the first is the P-vector angle, and one model's agree with
    scipy's principal angles between numpy full-SVD subspaces of its features and of the data."""
    import scipy.linalg

    from gen_measures.context import ModelContext, task_sample
    from gen_measures.sampling import DEFAULT_SAMPLE_SIZE

    topk = topk_angle_values(zoo_run.results)
    values = zoo_run.results[zoo_run.results.measure == "pvector_angle"].set_index(["task", "model"])["value"]
    first = topk[topk.k == 1].set_index(["task", "model"])["value"]
    assert len(first) == len(values)
    np.testing.assert_allclose(first.reindex(values.index), values, atol=1e-3)  # exact vs adaptive solver
    assert ((topk.value >= 0) & (topk.value <= 90 + 1e-9)).all()
    task = next(t for t in zoo_run.tasks if t.name == "shapes_nin")
    ctx = ModelContext.from_task(task, "5", task_sample(task, DEFAULT_SAMPLE_SIZE, 0))
    ux = np.linalg.svd(ctx.x.reshape(ctx.n_samples, -1).astype(np.float64), full_matrices=False)[0]
    uf = np.linalg.svd(ctx.penultimate_features().reshape(ctx.n_samples, -1).astype(np.float64), full_matrices=False)[0]
    expected = [np.degrees(scipy.linalg.subspace_angles(ux[:, :k], uf[:, :k]).max()) for k in range(1, 6)]
    got = topk[(topk.task == "shapes_nin") & (topk.model == "5")].sort_values("k")["value"].to_numpy()
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_missing_figures_are_said_in_place(tmp_path):
    """A run without the per-layer and P-vector measures still gives a report, saying what is missing."""
    task = sample_data_path() / "digits_vgg"
    result = run([task], measures=["distance_to_init"], output=tmp_path / "out", workers=0)
    path = report(result.output)
    text = path.read_text(encoding="utf-8")
    assert path == result.output / "report.html"
    assert "Layer curves not drawn (compute saturation, compression or discrimination)" in text
    assert "P-vector figure not drawn (compute pvector_angle)" in text
    assert text.count("data:image/png;base64,") == 2  # the scatter and the heat map


def test_report_cli(zoo_run, tmp_path):
    out = tmp_path / "nested" / "r.html"
    proc = subprocess.run([sys.executable, "-m", "gen_measures", "report", str(zoo_run.output), "-o", str(out), "-q"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert out.is_file() and f"wrote {out}" in proc.stdout
    missing = tmp_path / "no_such_run"
    proc = subprocess.run([sys.executable, "-m", "gen_measures", "report", str(missing)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0
    assert str(missing) in proc.stderr and "Traceback" not in proc.stderr


def test_plot_functions_return_figures_for_a_notebook(zoo_run):
    from matplotlib.figure import Figure

    from gen_measures import plot
    from gen_measures.errors import GenMeasuresError

    models = plot.models_frame(zoo_run.tasks)
    layers = layer_values(zoo_run.results)
    hparams = [c for c in models.columns if c not in ("task", "model", "gap")]
    figs = [
        plot.measure_scatter_figure(zoo_run.results, models, zoo_run.scores, task="shapes_nin"),
        plot.sign_error_heatmap(zoo_run.scores, hparams, task="shapes_nin"),
        plot.layer_curves_figure(layers, models, task="shapes_nin"),
        plot.pvector_figure(zoo_run.results, topk_angle_values(zoo_run.results), models, task="shapes_nin"),
    ]
    assert all(isinstance(f, Figure) for f in figs)
    with pytest.raises(GenMeasuresError, match="pass task="):
        plot.layer_curves_figure(layers, models)
    worst = plot.worst_hparams(zoo_run.scores, hparams, task="shapes_nin")
    sc = zoo_run.scores[(zoo_run.scores.task == "shapes_nin")]
    for measure, hp in worst.items():
        row = sc[(sc.measure == measure) & sc.metric.str.startswith("sign_error_mean_")]
        best = row.loc[row["value"].idxmax(), "metric"]
        assert best == f"sign_error_mean_{hp}"


def test_training_curves_of_a_tracked_zoo_are_plotted(tmp_path, monkeypatch):
    """A zoo made with make-zoo --track: the report draws its training curves instead of saying they are missing."""
    from gen_measures.io import zoo
    from gen_measures.io.zoo import TaskRecipe, digits_data, vgg_layers

    recipe = TaskRecipe(name="digits_mini", data=lambda seed: digits_data(150, seed), architecture=vgg_layers,
                        grid={"width": [2], "depth": [1], "dropout": [0.0, 0.3], "weight_decay": [0.0], "batch_size": [32]},
                        epochs=3, n_shards=1)
    monkeypatch.setitem(zoo.PRESETS, "mini", [recipe])
    (task,) = zoo.make_zoo(tmp_path / "zoo", preset="mini", track=True)
    result = run([task], measures=["saturation"], output=tmp_path / "out", workers=0, report=True)
    text = (result.output / "report.html").read_text(encoding="utf-8")
    curves = text.split("<h3>Training curves</h3>")[1]
    assert "No training curves" not in curves
    assert curves.count("data:image/png;base64,") == 1
