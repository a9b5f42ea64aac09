"""Hostile and broken input (issue 11): every case ends in a correct value or a one-line reason
naming the file, for that model or task only; everything else is computed and kept.

Each test builds its bad input with :mod:`tests.builders` in a temporary copy of a tiny task.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from gen_measures.cli import main
from gen_measures.errors import TaskFormatError
from gen_measures.runner import compute, read_results
from scoring.model_configs import read_model_configs

from . import builders

DATA_FREE = "distance_to_init,vc_dimension"
WITH_DATA = "distance_to_init,pvector_angle"


@pytest.fixture()
def task(task_copy):
    return task_copy


def _run(task, tmp_path, measures=DATA_FREE, **kw):
    kw.setdefault("workers", 0)
    return compute(task, measures=measures, output=tmp_path / "out", **kw).set_index(["model", "measure"])


def _only_model_failed(res, model, *must_contain):
    bad = res[res.status != "ok"]
    assert set(bad.index.get_level_values(0)) == {model}, bad.to_string()
    for message in bad.message:
        assert "\n" not in message
        for text in must_contain:
            assert text in message, message


# -- 1. a model file that would kill the run ---------------------------------------------------
@pytest.mark.parametrize("case", ["deep_json", "deep_keyword", "many_layers", "huge_units"])
def test_hostile_configs_are_that_models_error(task, tmp_path, case):
    def edit(config):
        if case == "deep_keyword":
            value = 3
            for _ in range(300):
                value = [value]
            config["model_config"][0]["kernel_size"] = value
        elif case == "many_layers":
            config["model_config"] = [{"layer_name": "Activation", "activation": "relu"}] * 5000 + config["model_config"]
        else:
            dense = next(d for d in config["model_config"] if d["layer_name"] == "Dense")
            dense["units"] = 1e12

    if case == "deep_json":  # deeper than any JSON encoder or decoder recursion allows
        path = task / "model_1" / "config.json"
        path.write_text(path.read_text().rstrip().rstrip("}") + ', "extra": ' + "[" * 5000 + "1" + "]" * 5000 + "}")
    else:
        path = builders.edit_config(task, "1", edit)
    res = _run(task, tmp_path)
    _only_model_failed(res, "1", str(path.parent))


def test_weight_name_pointing_to_a_group(task, tmp_path):
    path = builders.weight_name_pointing_to_a_group(task / "model_2" / "weights.hdf5")
    _only_model_failed(_run(task, tmp_path), "2", str(path), "not a numeric dataset")


def test_huge_declared_dataset_is_refused_before_it_is_read(task, tmp_path):
    path = builders.huge_dataset_weights(task / "model_0" / "weights_init.hdf5")
    assert path.stat().st_size < 100_000
    res = _run(task, tmp_path)
    assert res.loc[("0", "vc_dimension"), "status"] == "ok"  # does not read initial weights
    row = res.loc[("0", "distance_to_init")]
    assert row["status"] == "error" and str(path) in row["message"]
    assert (res.drop(index=("0", "distance_to_init")).status == "ok").all()


# -- 2. training data that would fool the measures ---------------------------------------------
def test_nan_pixel_is_an_error_naming_shard_and_record(task, tmp_path):
    def change(x, y):
        x[5].flat[3] = np.nan
        return x, y

    shard = builders.rewrite_train_split(task, change)
    res = _run(task, tmp_path, WITH_DATA, sample_size=None)
    assert (res.xs("distance_to_init", level=1).status == "ok").all()  # data-free measures unaffected
    for msg in res.xs("pvector_angle", level=1).message:
        assert str(shard) in msg and "record 5" in msg and "NaN" in msg


def test_only_competition_shard_names_are_read(task, tmp_path, caplog):
    from gen_measures.io.tfrecords import read_split

    split = task / "dataset_1" / "train"
    n = len(read_split(split))
    shutil.copy(next(split.glob("shard_*.tfrecord")), split / "extra_copy.tfrecord")
    assert len(read_split(split)) == n
    assert any("extra_copy.tfrecord" in r.getMessage() for r in caplog.records)


def test_vector_labels_are_an_error(task, tmp_path):
    shard = builders.rewrite_train_split(task, lambda x, y: (x, [np.array([int(v), 0, 0]) for v in y]))
    res = _run(task, tmp_path, WITH_DATA)
    for msg in res.xs("pvector_angle", level=1).message:
        assert str(shard) in msg and "label has shape [3]" in msg


def test_labels_beyond_the_model_outputs_are_an_error(task, tmp_path):
    builders.rewrite_train_split(task, lambda x, y: (x, list(y + 50)))
    res = _run(task, tmp_path, WITH_DATA)
    assert all("model has" in m and "outputs" in m for m in res.xs("pvector_angle", level=1).message)


def test_wrong_input_dtype_says_expected_and_found(task, tmp_path):
    from gen_measures.errors import DataError
    from gen_measures.io.tfrecords import read_split

    builders.rewrite_train_split(task, lambda x, y: (list(x.astype(np.float64)), list(y)))
    with pytest.raises(DataError, match="are float64 tensors; the PGDL format stores float32"):
        read_split(task / "dataset_1" / "train")


# -- 3. reference data that would mislead the scores -------------------------------------------
@pytest.mark.parametrize("case, expected", [
    ("duplicate", "appears twice"), ("string", "'0.9' (str), not a number"),
    ("bool", "True (bool), not a number"), ("nan", "must be a finite number"),
])
def test_bad_reference_data_names_model_and_file(task, case, expected):
    path = task / "model_configs.json"
    text = path.read_text()
    data = json.loads(text)
    if case == "duplicate":
        first = next(iter(data))
        text = text.rstrip().rstrip("}") + f', "{first}": {json.dumps(data[first])}' + "}"
    else:
        data["1"]["metrics"]["train_acc"] = {"string": "0.9", "bool": True, "nan": float("nan")}[case]
        text = json.dumps(data)
    path.write_text(text)
    with pytest.raises(TaskFormatError) as e:
        read_model_configs(path)
    assert str(path) in str(e.value) and expected in str(e.value)
    if case != "duplicate":
        assert "model '1'" in str(e.value)


# -- 4. arguments checked before anything is loaded --------------------------------------------
@pytest.mark.parametrize("args, expected", [
    (["--fuse", "no_such_preset"], "unknown fusion preset 'no_such_preset'"),
    (["--seed", "-1"], "--seed"), (["--sample-size", "0"], "--sample-size"),
    (["--batch-size", "0"], "--batch-size"), (["--batch-size", "-1"], "--batch-size"),
    (["--measures", ""], "no measure named"), (["--workers", "lots"], "--workers"),
    (["--model-timeout", "-5"], "--model-timeout"),
])
def test_bad_arguments_fail_fast(task, tmp_path, capsys, args, expected):
    out = tmp_path / "out"
    t0 = time.perf_counter()
    assert main(["run", str(task), "--output", str(out), "--quiet"] + args) == 2
    assert time.perf_counter() - t0 < 10
    assert expected in capsys.readouterr().err
    assert not (out / "results.sqlite").exists()


def test_output_that_is_a_file(task, tmp_path, capsys):
    out = tmp_path / "a_file"
    out.write_text("x")
    assert main(["run", str(task), "--output", str(out), "--quiet"]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


# -- 5. stale outputs ----------------------------------------------------------------------------
def test_a_measure_that_now_fails_everywhere_leaves_no_predict_file(task, tmp_path):
    args = ["run", str(task), "--measures", DATA_FREE, "--output", str(tmp_path / "o"), "--quiet", "--workers", "0", "--fuse", ""]
    assert main(args) == 0
    predict = tmp_path / "o" / "predictions" / "distance_to_init" / "task.predict"
    assert predict.is_file()
    for init in task.glob("model_*/weights_init.hdf5"):
        init.unlink()
    assert main(args) == 1
    assert not predict.exists()
    assert (tmp_path / "o" / "predictions" / "vc_dimension" / "task.predict").is_file()


# -- 6. interrupts -------------------------------------------------------------------------------
def test_ctrl_c_stops_promptly_keeps_results_and_says_how_to_resume(task, tmp_path):
    probes = os.path.join(os.path.dirname(__file__), "plugins", "runner_probes.py")
    out = tmp_path / "o"
    cmd = [sys.executable, "-m", "gen_measures", "run", str(task), "--measures", "distance_to_init,probe_pause",
           "--plugin", probes, "--output", str(out), "--quiet", "--fuse", ""]
    # the run starts with Ctrl-C's default action, as from a terminal, even when pytest itself was started
    # as a background job (which inherits SIGINT ignored, and so would the run)
    proc = subprocess.Popen(cmd, env=dict(os.environ, PROBE_PAUSE_SECONDS="3"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert builders.wait_for_stored_rows(out, 2, proc) >= 2
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole process group
    t0 = time.time()
    _, err = proc.communicate(timeout=60)
    assert time.time() - t0 < 20
    assert proc.returncode == 130, err
    assert "run the same command again to resume" in err and "Traceback" not in err
    stored = read_results(out)
    assert len(stored) >= 2 and not (stored.status == "error").any()


# -- 7. paths --------------------------------------------------------------------------------------
def test_symlinked_model_folder_is_named_in_a_warning(task, tmp_path, caplog):
    from gen_measures.io.pgdl import open_task

    elsewhere = tmp_path / "elsewhere"
    shutil.move(task / "model_3", elsewhere)
    (task / "model_3").symlink_to(elsewhere, target_is_directory=True)
    assert "3" in open_task(task).model_ids
    assert any(str(elsewhere) in r.getMessage() and "symbolic link" in r.getMessage() for r in caplog.records)


def test_weights_file_that_is_a_folder(task, tmp_path):
    path = task / "model_1" / "weights.hdf5"
    path.unlink()
    path.mkdir()
    _only_model_failed(_run(task, tmp_path), "1", str(path), "is a folder")


def test_inspect_with_a_corrupt_shard_is_one_line(task, capsys):
    shard = next((task / "dataset_1" / "train").glob("shard_*.tfrecord"))
    shard.write_bytes(shard.read_bytes()[:100])
    code = main(["inspect", str(task)])
    err = capsys.readouterr().err
    assert code in (0, 2)
    assert "Traceback" not in err


# -- 8. messages that say the cause --------------------------------------------------------------
def test_nan_in_a_kernel_names_file_and_layer(task, tmp_path):
    path = builders.nan_in_kernel(task / "model_2" / "weights.hdf5")
    _only_model_failed(_run(task, tmp_path), "2", str(path), "non-finite")
