"""Task discovery in the three layouts, and the grid report of model_configs.json."""

from __future__ import annotations

import json
import shutil

from scoring.model_configs import ModelConfigs, canonical_model_id, prediction_key, read_model_configs
from gen_measures.io.pgdl import discover_tasks


def test_three_layouts(tiny_zoo, tmp_path):
    # a folder of tasks
    assert [t.name for t in discover_tasks(tiny_zoo)] == ["digits_vgg_tiny", "shapes_nin_tiny"]
    # one task folder
    one = discover_tasks(tiny_zoo / "shapes_nin_tiny")
    assert len(one) == 1 and one[0].reference_path == tiny_zoo / "shapes_nin_tiny" / "model_configs.json"
    # a competition root: input_data/<task> + reference_data/<task>/model_configs.json
    root = tmp_path / "competition"
    shutil.copytree(tiny_zoo / "digits_vgg_tiny", root / "input_data" / "task1")
    (root / "reference_data" / "task1").mkdir(parents=True)
    shutil.move(root / "input_data" / "task1" / "model_configs.json", root / "reference_data" / "task1" / "model_configs.json")
    tasks = discover_tasks(root)
    assert [t.name for t in tasks] == ["task1"]
    assert tasks[0].reference_path == root / "reference_data" / "task1" / "model_configs.json"
    assert tasks[0].read_reference().grid_report().complete
    # several paths at once
    assert len(discover_tasks([tiny_zoo, root])) == 3


def test_model_ids_sort_numerically(tmp_path):
    for mid in ["10", "2", "1"]:
        (tmp_path / "t" / f"model_{mid}").mkdir(parents=True)
    assert discover_tasks(tmp_path / "t")[0].model_ids == ("1", "2", "10")


def test_id_styles():
    assert canonical_model_id("model_12") == "12" == canonical_model_id(12) == canonical_model_id("12")
    assert prediction_key("12") == "model_12" == prediction_key("model_12")


def test_grid_report_names_missing_and_duplicated_cells(tmp_path):
    possible = {"a": [1, 11], "b": ["x", "y"]}
    hparams = {"0": {"a": 1, "b": "x"}, "1": {"a": 1, "b": "y"}, "2": {"a": 11, "b": "x"}, "3": {"a": 11, "b": "x"}}
    configs = ModelConfigs(None, possible, hparams, {k: {"train_acc": 1.0, "test_acc": 0.5} for k in hparams})
    report = configs.grid_report()
    assert not report.complete
    assert report.missing == [{"a": 11, "b": "y"}]
    assert list(report.duplicated.values()) == [["2", "3"]]
    text = report.describe()
    assert "1 missing cell(s): a=11, b='y'" in text and "models 2, 3 share one cell" in text
    # 1 and 11 (which string-concatenated keys confuse) stay distinct; so do 1 and "1"
    path = tmp_path / "m.json"
    path.write_text(json.dumps(configs.to_json_dict()))
    assert read_model_configs(path).grid_report().missing == report.missing


def test_gap_is_train_minus_test(toy_task):
    ref = toy_task.read_reference()
    gaps = ref.gaps()
    for mid in ref.model_ids:
        assert gaps[mid] == ref.metrics[mid]["train_acc"] - ref.metrics[mid]["test_acc"]
