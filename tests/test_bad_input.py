"""Bad input: each case gives one clear error naming the file and the problem; nothing else is lost."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from gen_measures.cli import main
from gen_measures.errors import DataError, MissingFileError, ModelLoadError, TaskFormatError
from gen_measures.io.keras_models import load_model_from_config
from scoring.model_configs import read_model_configs
from gen_measures.io.pgdl import discover_tasks, open_task
from gen_measures.runner import compute


def _one_line(exc_info) -> str:
    text = str(exc_info.value)
    assert "\n" not in text
    return text


def test_malformed_config_json(task_copy):
    path = task_copy / "model_0" / "config.json"
    path.write_text('{"model_config": [')
    with pytest.raises(ModelLoadError) as e:
        load_model_from_config(path)
    assert str(path) in _one_line(e) and "not valid JSON" in str(e.value)


def test_malformed_model_configs_json(task_copy):
    path = task_copy / "model_configs.json"
    path.write_text("{not json")
    with pytest.raises(TaskFormatError) as e:
        read_model_configs(path)
    assert str(path) in _one_line(e) and "not valid JSON" in str(e.value)


def _set_layer(task_copy, index, spec):
    path = task_copy / "model_0" / "config.json"
    config = json.loads(path.read_text())
    config["model_config"][index] = spec
    path.write_text(json.dumps(config))
    return path


def test_unknown_layer_class(task_copy):
    path = _set_layer(task_copy, 1, {"layer_name": "FancyConv", "filters": 3})
    with pytest.raises(ModelLoadError) as e:
        load_model_from_config(path)
    msg = _one_line(e)
    assert str(task_copy / "model_0") in msg and "layer 1" in msg and "'FancyConv'" in msg


def test_lambda_layer_is_refused_without_executing_it(task_copy, tmp_path):
    marker = tmp_path / "executed"
    path = _set_layer(task_copy, 0, {"layer_name": "Lambda", "function": f"open('{marker}', 'w')"})
    with pytest.raises(ModelLoadError) as e:
        load_model_from_config(path)
    assert "layer 0" in _one_line(e) and "'Lambda'" in str(e.value) and "not allowed" in str(e.value)
    assert not marker.exists()


def test_unknown_keyword_names_the_key(task_copy):
    path = _set_layer(task_copy, 0, {"layer_name": "Conv2D", "filters": 4, "kernel_size": 3, "colour": "red"})
    with pytest.raises(ModelLoadError) as e:
        load_model_from_config(path)
    assert "layer 0" in _one_line(e) and "'colour'" in str(e.value)


def test_nested_object_values_are_refused(task_copy):
    path = _set_layer(task_copy, 0, {"layer_name": "Conv2D", "filters": 4, "kernel_size": 3,
                                     "kernel_initializer": {"class_name": "Evil", "module": "os"}})
    with pytest.raises(ModelLoadError) as e:
        load_model_from_config(path)
    assert "'kernel_initializer'" in _one_line(e) and "nested object" in str(e.value)


def test_weights_of_another_architecture(task_copy):
    task = open_task(task_copy)
    shutil.copy(task.weights_path("2"), task.weights_path("0"))  # model 2 is deeper than model 0
    with pytest.raises(ModelLoadError) as e:
        task.load_model("0")
    msg = _one_line(e)
    assert str(task.weights_path("0")) in msg and "layers with weights" in msg


def test_weights_with_wrong_shape(task_copy):
    import h5py

    task = open_task(task_copy)
    path = task.weights_path("0")
    with h5py.File(path, "r+") as f:
        name = f.attrs["layer_names"][0].decode()
        wname = f[name].attrs["weight_names"][1].decode()  # the bias
        del f[name][wname]
        f[name].create_dataset(wname, data=np.zeros(99, np.float32))
    with pytest.raises(ModelLoadError) as e:
        task.load_model("0")
    assert str(path) in _one_line(e) and "(99,)" in str(e.value)


def test_truncated_hdf5(task_copy):
    task = open_task(task_copy)
    path = task.weights_path("0")
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(ModelLoadError) as e:
        task.load_model("0")
    assert str(path) in _one_line(e)


def test_missing_weights_file(task_copy):
    task = open_task(task_copy)
    task.weights_path("0").unlink()
    with pytest.raises(MissingFileError) as e:
        task.load_model("0")
    assert str(task.weights_path("0")) in _one_line(e)


def test_missing_shard(task_copy):
    for shard in (task_copy / "dataset_1" / "train").glob("*.tfrecord"):
        shard.unlink()
    with pytest.raises(MissingFileError) as e:
        open_task(task_copy).read_data("train")
    assert str(task_copy / "dataset_1" / "train") in _one_line(e) and "no shard_*.tfrecord" in str(e.value)


def test_corrupt_shard(task_copy):
    shard = next((task_copy / "dataset_1" / "train").glob("*.tfrecord"))
    shard.write_bytes(shard.read_bytes()[:-40])
    with pytest.raises(DataError) as e:
        open_task(task_copy).read_data("train")
    assert str(shard) in _one_line(e)


def test_empty_task_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(TaskFormatError) as e:
        discover_tasks(tmp_path / "empty")
    assert str(tmp_path / "empty") in _one_line(e) and "no PGDL task" in str(e.value)


def test_path_is_a_file(tmp_path):
    path = tmp_path / "weights.hdf5"
    path.write_bytes(b"x")
    with pytest.raises(TaskFormatError) as e:
        discover_tasks(path)
    assert str(path) in _one_line(e) and "is a file" in str(e.value)


def test_missing_path(tmp_path):
    with pytest.raises(MissingFileError) as e:
        discover_tasks(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in _one_line(e)


def test_run_with_one_broken_model_keeps_the_others(task_copy, tmp_path, capsys):
    (task_copy / "model_1" / "weights.hdf5").write_bytes(b"\x89HDF\r\n\x1a\n garbage")
    results = compute(task_copy, measures="distance_to_init,vc_dimension")
    ok = results[results.status == "ok"]
    assert sorted(ok.model.unique()) == ["0", "2", "3"]
    broken = results[results.model == "1"]
    assert set(broken.status) == {"error"} and all("model_1" in m for m in broken.message)
    code = main(["run", str(task_copy), "--measures", "distance_to_init", "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1
    assert "FAILED" in err and "model_1" in err
    written = json.loads((tmp_path / "out" / "predictions" / "distance_to_init" / "task.predict").read_text())
    assert sorted(written) == ["model_0", "model_2", "model_3"]


def test_cli_reports_bad_path_in_one_line(tmp_path, capsys):
    code = main(["run", str(tmp_path / "nowhere"), "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "nowhere" in err[0]


def test_unknown_measure_suggests_close_match(tmp_path, capsys):
    code = main(["run", str(tmp_path), "--measures", "distance_to_innit"])
    err = capsys.readouterr().err
    assert code == 2 and "'distance_to_init'" in err
