"""Round trips: what the project writes reads back identically, in Keras 3 and in a Keras-2 reader."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from gen_measures.io.keras_models import build_model, load_keras2_weights, read_keras2_weights, save_keras2_weights
from scoring.model_configs import read_model_configs, write_model_configs
from gen_measures.io.pgdl import discover_tasks, write_model
from gen_measures.io.tfrecords import ArrayDataset, read_split, tf_dataset, write_split
from gen_measures.io.zoo import nin_layers, vgg_layers

ARCHS = {
    "vgg": (vgg_layers(4, 2, 0.3, 10), [8, 8, 1]),
    "nin": (nin_layers(4, 2, 0.2, 6), [16, 16, 3]),
}


def _randomised(layers, shape, seed):
    model = build_model(layers, shape)
    rng = np.random.default_rng(seed)
    # Non-trivial values everywhere, BN statistics included (variance kept positive).
    model.set_weights([rng.uniform(0.5, 1.5, w.shape).astype(np.float32) if "variance" in v.path
                       else rng.normal(0, 0.3, w.shape).astype(np.float32)
                       for v, w in zip(model.weights, model.get_weights())])
    return model


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_keras3_round_trip_is_exact(tmp_path, arch):
    layers, shape = ARCHS[arch]
    model = _randomised(layers, shape, 1)
    folder = write_model(tmp_path / "task", "7", layers, shape, model, initial_model=model)
    task = discover_tasks(tmp_path / "task")[0]
    assert task.model_ids == ("7",)
    loaded = task.load_model("7")
    x = np.random.default_rng(2).random([5] + shape, dtype=np.float32)
    np.testing.assert_array_equal(np.asarray(loaded(x, training=False)), np.asarray(model(x, training=False)))
    for a, b in zip(read_keras2_weights(folder / "weights_init.hdf5"), model.get_weights()):
        np.testing.assert_array_equal(a, b)


KERAS2_READER = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tf_keras

    def cast(v):
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, list):
            return [cast(u) for u in v]
        return v

    folder, xfile, outfile = sys.argv[1:4]
    config = json.load(open(folder + "/config.json"))
    layers = []
    for spec in config["model_config"]:
        spec = {k: cast(v) for k, v in spec.items()}
        name = spec.pop("layer_name")
        layers.append(getattr(tf_keras.layers, name)(**spec))
    model = tf_keras.Sequential(layers)
    model.build([None] + config["input_shape"])
    model.load_weights(folder + "/weights.hdf5")
    np.save(outfile, model(np.load(xfile), training=False).numpy())
    """
)


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_keras2_reader_accepts_written_weights(tmp_path, arch):
    """A Keras-2 (tf_keras) model built the competition's way loads our HDF5 and predicts the same."""
    pytest.importorskip("tf_keras")
    layers, shape = ARCHS[arch]
    model = _randomised(layers, shape, 3)
    folder = write_model(tmp_path, "0", layers, shape, model)
    x = np.random.default_rng(4).random([6] + shape, dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    script = tmp_path / "reader.py"
    script.write_text(KERAS2_READER)
    env = {"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, str(script), str(folder), str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), np.asarray(model(x, training=False)), rtol=1e-5, atol=1e-6)


def test_tfrecord_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    data = ArrayDataset(rng.random((23, 4, 4, 3), dtype=np.float32), rng.integers(0, 5, 23))
    paths = write_split(tmp_path / "train", data, n_shards=12)
    assert [p.name for p in paths][-3:] == ["shard_9.tfrecord", "shard_10.tfrecord", "shard_11.tfrecord"]
    back = read_split(tmp_path / "train")  # natural shard order keeps the example order
    np.testing.assert_array_equal(back.x, data.x)
    np.testing.assert_array_equal(back.y, data.y)
    xs, ys = zip(*[(x.numpy(), int(y.numpy())) for x, y in tf_dataset(tmp_path / "train")])
    np.testing.assert_array_equal(np.stack(xs), data.x)
    assert list(ys) == data.y.tolist()


def test_model_configs_round_trip_and_prefixed_ids(tmp_path, toy_task):
    ref = toy_task.read_reference()
    path = write_model_configs(tmp_path / "a.json", ref)
    again = read_model_configs(path)
    assert again.hparams == ref.hparams and again.metrics == ref.metrics
    raw = json.loads(path.read_text())
    prefixed = {f"model_{k}": v for k, v in raw.items()}
    (tmp_path / "b.json").write_text(json.dumps(prefixed))
    assert read_model_configs(tmp_path / "b.json").hparams == ref.hparams


def test_generated_zoo_reads_back_with_recorded_metrics(tiny_zoo):
    """Every generated model reloads from disk and reproduces its recorded train/test accuracy."""
    from gen_measures.context import ModelContext

    tasks = discover_tasks(tiny_zoo)
    assert [t.name for t in tasks] == ["digits_vgg_tiny", "shapes_nin_tiny"]
    for task in tasks:
        ref = task.read_reference()
        assert ref.grid_report().complete
        train, test = task.read_data("train"), task.read_data("test")
        for mid in task.model_ids:
            model = task.load_model(mid)
            assert ModelContext(model, train.x, train.y).accuracy() == pytest.approx(ref.metrics[mid]["train_acc"], abs=1e-12)
            assert ModelContext(model, test.x, test.y).accuracy() == pytest.approx(ref.metrics[mid]["test_acc"], abs=1e-12)
