"""The FeatureConvergence training callback, its curves file, make-zoo --track and the figure.

One seeded training run (a small conv net on scikit-learn's digits, Adam, 12 epochs, about 4 s
on CPU) is shared by most tests. On it, seeds 0-2 gave Spearman correlations of the angle to
the final P-vector with the epoch of -1.00, -0.99, -1.00 and an 11th-epoch / 1st-epoch ratio of
0.03-0.04: the asserted bounds (rho <= -0.8, ratio < 0.3) leave a wide margin.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

keras = pytest.importorskip("keras")

from gen_measures.callbacks import ANGLE_CURVES, ANGLE_TO_DATA, ANGLE_TO_FINAL, ANGLE_TO_PREVIOUS, FeatureConvergence  # noqa: E402
from gen_measures.errors import DataError, GenMeasuresError, MeasureError, TaskFormatError  # noqa: E402

EPOCHS = 12
SAMPLE = 300
BATCH = 128  # 3 batches per pass over the sample


def _digits(n: int = 1000):
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images / 16.0).astype("float32")[:n, ..., None], d.target[:n]


def _conv_net(seed: int = 0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(10),
    ])
    model.compile(keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


class _Counting:
    """Wraps the callback's extractor and counts its calls (one call = one batch of the sample)."""

    def __init__(self, inner) -> None:
        self.inner, self.calls = inner, 0

    def __call__(self, x):
        self.calls += 1
        return self.inner(x)


def _train(every: int = 1, epochs: int = EPOCHS, csv_path=None, seed: int = 0):
    """Fit the conv net with the callback; returns (history, callback, extractor calls at each epoch end)."""
    x, y = _digits()
    model = _conv_net(seed)
    cb = FeatureConvergence(x[:SAMPLE], every, batch_size=BATCH, csv_path=csv_path)
    build = cb._build_extractor
    counter: list[_Counting] = []
    cb._build_extractor = lambda m: counter.append(_Counting(build(m))) or counter[-1]
    marks: list[int] = []
    mark = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: marks.append(counter[-1].calls))
    history = model.fit(x, y, epochs=epochs, batch_size=32, verbose=0, callbacks=[cb, mark])
    return history.history, cb, marks, counter[-1].calls


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("curves") / "curves.csv"
    history, cb, marks, calls = _train(csv_path=path)
    return {"history": history, "cb": cb, "marks": marks, "calls": calls, "csv": path}


def test_every_curve_has_one_value_per_epoch(run):
    history, cb = run["history"], run["cb"]
    names = [layer.name for layer in cb.model.layers if layer.weights]  # conv, dense, classifier
    assert [f"saturation/{n}" for n in names] == list(cb.curves)[3:] and len(names) == 3
    for key in (*ANGLE_CURVES, *cb.curves):
        assert len(history[key]) == EPOCHS, key
        assert history[key] == cb.curves[key]
        assert all(math.isfinite(v) for v in history[key]), key
    assert len(history["loss"]) == EPOCHS
    assert cb.epochs == list(range(1, EPOCHS + 1))


def test_angles_are_degrees_in_0_90(run):
    for key in ANGLE_CURVES:
        values = np.asarray(run["history"][key])
        assert ((values >= 0) & (values <= 90)).all(), (key, values)
    initial = run["cb"].initial
    assert 0 <= initial[ANGLE_TO_DATA] <= 90 and 0 <= initial[ANGLE_TO_FINAL] <= 90


def test_angle_to_final_falls_during_training(run):
    from scipy.stats import spearmanr

    v = np.asarray(run["history"][ANGLE_TO_FINAL])
    assert v[-2] < 0.3 * v[0], v
    assert spearmanr(np.arange(EPOCHS), v).statistic <= -0.8, v
    assert abs(v[-1]) < 1e-6  # the last tracked epoch's P-vector is the final one
    assert run["cb"].initial[ANGLE_TO_FINAL] > v[0]  # the untrained network is further still


def test_saturation_is_a_share_of_the_width(run):
    for key in run["cb"].curves:
        if key.startswith("saturation/"):
            values = np.asarray(run["history"][key])
            assert ((values > 0) & (values <= 1)).all(), key
    classifier = list(run["cb"].curves)[-1]  # 10 units: k / 10
    assert all(abs(v * 10 - round(v * 10)) < 1e-12 for v in run["history"][classifier])


def test_one_forward_pass_per_tracked_epoch(run):
    """Counted on the extractor: 3 batches per pass; one pass at train begin, one per epoch, none at the end."""
    batches = math.ceil(SAMPLE / BATCH)
    per_epoch = np.diff([batches] + run["marks"]) / batches
    assert (per_epoch <= 2).all() and (per_epoch == 1).all(), per_epoch
    assert run["calls"] == batches * (1 + EPOCHS)
    assert run["cb"].forward_passes == 1 + EPOCHS


def test_solver_is_warm_started_and_converges(run):
    infos = run["cb"].solver_info
    assert set(infos) == set(range(EPOCHS + 1))
    assert all(i.method == "adaptive" and i.converged and not i.fell_back for i in infos.values())


def test_csv_matches_history(run):
    table = pd.read_csv(run["csv"])
    assert list(table.columns) == ["epoch", *run["cb"].curves]
    assert table["epoch"].tolist() == list(range(1, EPOCHS + 1))
    for key in run["cb"].curves:
        np.testing.assert_array_equal(table[key].to_numpy(), np.asarray(run["history"][key]))


def test_frame_is_tidy(run):
    cb = run["cb"]
    frame = cb.frame()
    assert list(frame.columns) == ["epoch", "curve", "value"]
    assert len(frame) == EPOCHS * len(cb.curves)
    wide = frame.pivot(index="epoch", columns="curve", values="value")
    np.testing.assert_array_equal(wide[ANGLE_TO_FINAL].to_numpy(), cb.curves[ANGLE_TO_FINAL])
    with_initial = cb.frame(include_initial=True)
    assert set(with_initial.loc[with_initial["epoch"] == 0, "curve"]) == set(cb.curves) - {ANGLE_TO_PREVIOUS}


def test_every_2_gives_nan_on_untracked_epochs(tmp_path):
    history, cb, marks, calls = _train(every=2, epochs=5)
    batches = math.ceil(SAMPLE / BATCH)
    tracked = [False, True, False, True, True]  # epochs 2 and 4, and the last (5)
    for key in cb.curves:
        assert len(history[key]) == 5, key
        assert [math.isfinite(v) for v in history[key]] == tracked, (key, history[key])
    assert history[ANGLE_TO_FINAL][-1] == 0.0
    assert calls == batches * 4 and np.diff([batches] + marks).tolist() == [0, batches, 0, batches, batches]


def test_history_listed_before_the_callback_gets_the_curves_at_train_end():
    x, y = _digits(200)
    model = _conv_net()
    history = keras.callbacks.History()
    cb = FeatureConvergence(x[:50])
    model.fit(x, y, epochs=2, batch_size=50, verbose=0, callbacks=[history, cb])
    for key in cb.curves:
        assert history.history[key] == cb.curves[key]


def test_stopped_training_measures_the_final_model_once_more():
    """When training stops early (weights may have been restored), the final P-vector gets its own pass."""
    x, y = _digits(200)
    model = _conv_net()
    cb = FeatureConvergence(x[:50])
    stop = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: setattr(model, "stop_training", epoch == 1))
    history = model.fit(x, y, epochs=5, batch_size=50, verbose=0, callbacks=[cb, stop]).history
    assert cb.epochs == [1, 2] and len(history[ANGLE_TO_FINAL]) == 2
    assert cb.forward_passes == 4 and None in cb.pvectors  # begin, 2 epochs, the final model
    assert history[ANGLE_TO_FINAL][-1] < 0.01  # same weights as after epoch 2, solved again


@pytest.mark.parametrize("x_sample, match", [
    (np.array([["a", "b"], ["c", "d"]]), "x_sample must be a numeric array"),
    (np.zeros((1, 8, 8, 1)), "x_sample must hold at least 2 examples"),
    (np.zeros(5), "x_sample must hold at least 2 examples"),
    (np.array([[0.0, np.nan], [1.0, 2.0]]), "x_sample contains 1 NaN or inf"),
    ([[1.0, 2.0], [3.0]], "x_sample must be a numeric array"),
])
def test_bad_sample_names_the_argument(x_sample, match):
    with pytest.raises(DataError, match=match):
        FeatureConvergence(x_sample)


@pytest.mark.parametrize("kwargs, match", [
    ({"every": 0}, "every must be an integer >= 1"),
    ({"every": 1.5}, "every must be an integer >= 1"),
    ({"batch_size": 0}, "batch_size must be an integer >= 1"),
    ({"threshold": 1.5}, r"threshold must be a number in \(0, 1\]"),
])
def test_bad_options_name_the_argument(kwargs, match):
    with pytest.raises(MeasureError, match=match):
        FeatureConvergence(np.zeros((4, 8, 8, 1)), **kwargs)


def test_shape_mismatch_is_reported_at_train_begin_with_both_shapes():
    x, y = _digits(64)
    cb = FeatureConvergence(np.zeros((10, 8, 8), np.float32))
    with pytest.raises(DataError, match=r"x_sample has examples of shape \(8, 8\).*inputs of shape \(8, 8, 1\)"):
        _conv_net().fit(x, y, epochs=1, verbose=0, callbacks=[cb])
    assert issubclass(DataError, GenMeasuresError) and issubclass(DataError, ValueError)


# -- make-zoo --track -----------------------------------------------------------------------------


def _mini_recipe():
    from gen_measures.io.zoo import TaskRecipe, digits_data, vgg_layers

    return TaskRecipe(name="digits_mini", data=lambda seed: digits_data(150, seed), architecture=vgg_layers,
                      grid={"width": [2], "depth": [1], "dropout": [0.0, 0.3], "weight_decay": [0.0], "batch_size": [32]},
                      epochs=3, n_shards=1)


def test_make_zoo_track_writes_curves_and_keeps_the_weights(tmp_path, monkeypatch, capsys):
    """CLI ``make-zoo --track`` on a 2-model recipe: curves files, their reader, and weights bit for bit
    equal to the same zoo made without --track (the callback draws no training randomness)."""
    from gen_measures.cli import main
    from gen_measures.io.keras_models import read_keras2_weights
    from gen_measures.io import zoo
    from gen_measures.io.training_curves import CURVE_COLUMNS, read_training_curves

    monkeypatch.setitem(zoo.PRESETS, "mini", [_mini_recipe()])
    assert main(["make-zoo", str(tmp_path / "tracked"), "--preset", "mini", "--track"]) == 0
    assert main(["make-zoo", str(tmp_path / "plain"), "--preset", "mini"]) == 0
    task = tmp_path / "tracked" / "digits_mini"
    assert sorted(p.parent.name for p in task.glob("model_*/training_curves.csv")) == ["model_0", "model_1"]
    assert not list((tmp_path / "plain").glob("*/model_*/training_curves.csv"))
    assert "--track" in (tmp_path / "tracked" / "README.md").read_text()

    curves = read_training_curves(task)
    assert list(curves.columns) == list(CURVE_COLUMNS)
    assert set(curves["task"]) == {"digits_mini"} and list(pd.unique(curves["model"])) == ["0", "1"]
    one = curves[curves["model"] == "0"]
    assert sorted(set(one["epoch"])) == [1, 2, 3]
    assert {ANGLE_TO_DATA, ANGLE_TO_PREVIOUS, ANGLE_TO_FINAL} < set(one["curve"])
    assert one.loc[(one["curve"] == ANGLE_TO_FINAL) & (one["epoch"] == 3), "value"].item() == 0.0
    assert zoo.read_training_curves is read_training_curves

    for model in ("model_0", "model_1"):  # every array, by position (layer names differ between sessions)
        tracked, plain = (read_keras2_weights(tmp_path / kind / "digits_mini" / model / "weights.hdf5")
                          for kind in ("tracked", "plain"))
        assert len(tracked) == len(plain) == 8  # 2 convs, 2 dense: kernel + bias each
        for a, b in zip(tracked, plain):
            assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes(), model


def test_read_training_curves_without_files_is_empty(tmp_path):
    from gen_measures.io.training_curves import CURVE_COLUMNS, read_training_curves

    (tmp_path / "task" / "model_0").mkdir(parents=True)
    frame = read_training_curves(tmp_path / "task")
    assert frame.empty and list(frame.columns) == list(CURVE_COLUMNS)


@pytest.mark.parametrize("text, match", [
    ("step,pvector_angle_to_data\n1,2.0\n", "no 'epoch' column"),
    ("epoch,pvector_angle_to_data\n1.5,2.0\n", "'epoch' must hold integers"),
    ("epoch,pvector_angle_to_data\n1,abc\n", "non-numeric"),
    ("", "not a readable training-curves CSV"),
])
def test_malformed_curves_file_is_named(tmp_path, text, match):
    from gen_measures.io.training_curves import read_training_curves

    path = tmp_path / "task" / "model_3" / "training_curves.csv"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    with pytest.raises(TaskFormatError, match=match) as err:
        read_training_curves(tmp_path / "task")
    assert str(path) in str(err.value)


# -- figure ------------------------------------------------------------------------------------------


def test_convergence_figure_one_and_several_models(run, tmp_path):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    from gen_measures.plot.training import convergence_figure

    one = run["cb"].frame(include_initial=True)
    fig = convergence_figure(one, title="digits")
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert len(fig.axes[0].get_lines()) == 3 and len(fig.axes[1].get_lines()) == 3
    several = pd.concat([one.assign(model="a"), one.assign(model="b")])
    fig2 = convergence_figure(several)
    assert len(fig2.axes[0].get_lines()) == 6
    fig2.savefig(tmp_path / "c.png")
    assert (tmp_path / "c.png").stat().st_size > 1000
    with pytest.raises(DataError, match="missing column"):
        convergence_figure(pd.DataFrame({"epoch": [1]}))
    assert len(convergence_figure(one.iloc[:0]).axes) == 2
