"""The scoring program's files: .predict, reference layouts, scores.txt, tidy tables."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from gen_measures.errors import DegenerateInputWarning, MissingFileError, ScoringError
from scoring.model_configs import write_model_configs
from scoring.files import (
    SUBMISSION,
    find_predictions,
    find_references,
    format_scores_txt,
    read_predict,
    write_predict,
    write_score_tables,
)
from scoring.report import score_directories


def test_read_predict_id_styles_exceeded_null(tmp_path):
    p = tmp_path / "t.predict"
    p.write_text('{"model_1": 0.5, "2": 3, "model_3": "EXCEEDED", "4": null, "5": NaN}')
    pred = read_predict(p)
    assert pred.values["1"] == 0.5 and pred.values["2"] == 3.0
    assert pred.exceeded == ["3"] and "3" not in pred.values
    assert math.isnan(pred.values["4"]) and math.isnan(pred.values["5"])


@pytest.mark.parametrize(
    "text, match",
    [
        ('{"model_1": "fast", "2": true, "3": 1}', r"t.predict: non-numeric predictions for models model_1='fast', 2=True"),
        ('{"model_1": 1, "1": 2}', "appears twice"),
        ("[1, 2]", "expected a JSON object"),
        ("{bad json", "not valid JSON"),
    ],
)
def test_read_predict_errors_name_the_file(tmp_path, text, match):
    p = tmp_path / "t.predict"
    p.write_text(text)
    with pytest.raises(ScoringError, match=match):
        read_predict(p)


def test_missing_files_and_round_trip(tmp_path):
    with pytest.raises(MissingFileError, match="nope.predict"):
        read_predict(tmp_path / "nope.predict")
    values = {"1": 0.25, "model_2": float("nan"), "3": "EXCEEDED", "4": float("inf"), "5": None}
    path = write_predict(tmp_path / "a" / "t.predict", values)
    assert json.loads(path.read_text()) == {"model_1": 0.25, "model_3": "EXCEEDED"}  # non-finite: not written
    pred = read_predict(path)
    assert pred.values == {"1": 0.25} and pred.exceeded == ["3"]
    path.write_text('{"model_1": 0.25, "model_2": null, "model_3": NaN}')  # other writers' null / NaN still read
    pred = read_predict(path)
    assert pred.values["1"] == 0.25 and math.isnan(pred.values["2"]) and math.isnan(pred.values["3"])


def _write_ref(folder, grid_reference):
    write_model_configs(folder / "model_configs.json", grid_reference)


def test_find_references_all_layouts(tmp_path, grid_reference):
    comp = tmp_path / "comp"
    for task in ("task_a", "task_b"):
        _write_ref(comp / "reference_data" / task, grid_reference)
    (comp / "reference_data" / "README").write_text("not a task")
    assert sorted(find_references(comp)) == ["task_a", "task_b"]
    assert sorted(find_references(comp / "reference_data")) == ["task_a", "task_b"]
    direct = tmp_path / "direct"
    _write_ref(direct / "toy", grid_reference)
    assert list(find_references(direct)) == ["toy"]
    root = tmp_path / "root"
    _write_ref(root / "input_data" / "t1", grid_reference)
    assert list(find_references(root)) == ["t1"]
    with pytest.raises(MissingFileError, match="reference folder not found"):
        find_references(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingFileError, match="no model_configs.json"):
        find_references(tmp_path / "empty")


def test_find_predictions_layouts(tmp_path):
    sub = tmp_path / "sub"
    write_predict(sub / "t1.predict", {"0": 1.0})
    assert find_predictions(sub) == {SUBMISSION: {"t1": sub / "t1.predict"}}
    run = tmp_path / "run"
    write_predict(run / "predictions" / "m1" / "t1.predict", {"0": 1.0})
    write_predict(run / "predictions" / "m2" / "t2.predict", {"0": 1.0})
    found = find_predictions(run)
    assert sorted(found) == ["m1", "m2"] and list(found["m2"]) == ["t2"]
    assert find_predictions(run / "predictions") == found
    (tmp_path / "none").mkdir()
    with pytest.raises(MissingFileError, match="no .predict files"):
        find_predictions(tmp_path / "none")


def test_scores_txt_format():
    text = format_scores_txt({"b": 0.25, "a": 0.123456789012345, "c": None})
    assert text == (
        "task_a_score: 0.123456789012\n"
        "task_b_score: 0.250000000000\n"
        "task_c_score: -0.999999000000\n"
        f"task_average_score: {100 * (0.123456789012345 + 0.25) / 2:0.12f}\n"
        "Duration: 0\n"
    )
    assert "task_average_score: 0.000000000000" in format_scores_txt({"a": 0.5}, exceeded=True)


def test_write_score_tables(tmp_path):
    df = pd.DataFrame({"measure": ["m"], "task": ["t"], "metric": ["cmi_official"], "value": [float("nan")]})
    csv_path, json_path = write_score_tables(df, tmp_path)
    assert json.loads(json_path.read_text()) == [{"measure": "m", "task": "t", "metric": "cmi_official", "value": None}]
    assert pd.read_csv(csv_path).shape == (1, 4)
    with pytest.raises(ScoringError, match="missing column"):
        write_score_tables(df.drop(columns="metric"), tmp_path)


@pytest.fixture
def competition(tmp_path, grid_reference):
    for task in ("task1", "task2"):
        _write_ref(tmp_path / "ref" / "reference_data" / task, grid_reference)
    gaps = grid_reference.gaps()
    return tmp_path, gaps


def test_score_directories_single_submission(competition):
    root, gaps = competition
    rng = np.random.default_rng(0)
    write_predict(root / "res" / "task1.predict", {f"model_{k}": float(v) for k, v in gaps.items()})
    write_predict(root / "res" / "task2.predict", {k: float(rng.random()) for k in gaps.index})
    table = score_directories(root / "ref", root / "res", root / "out", n_permutations=20)
    assert set(table.columns) == {"measure", "task", "metric", "value"} and set(table["measure"]) == {"submission"}
    lines = (root / "out" / "scores.txt").read_text().splitlines()
    official = table[table.metric == "cmi_official"].set_index("task")["value"]
    assert lines[0] == f"task_task1_score: {official['task1']:0.12f}"
    assert lines[1] == f"task_task2_score: {official['task2']:0.12f}"
    assert lines[2] == f"task_average_score: {50 * (official['task1'] + official['task2']):0.12f}"
    assert lines[3] == "Duration: 0"
    assert official["task1"] == pytest.approx(1.0, abs=1e-9)
    records = json.loads((root / "out" / "scores.json").read_text())
    assert len(records) == len(table) and {"measure", "task", "metric", "value"} == set(records[0])


def test_score_directories_exceeded(competition):
    root, gaps = competition
    values = {k: float(v) for k, v in gaps.items()}
    write_predict(root / "res" / "task1.predict", values)
    values["3"] = "EXCEEDED"
    write_predict(root / "res" / "task2.predict", values)
    with pytest.warns(DegenerateInputWarning, match="EXCEEDED"):
        table = score_directories(root / "ref", root / "res", root / "out", n_permutations=0)
    text = (root / "out" / "scores.txt").read_text()
    assert "task_task2_score: 0.000000000000" in text
    assert "task_average_score: 0.000000000000" in text
    row = table[(table.task == "task2") & (table.metric == "cmi_clean")]["value"]
    assert row.isna().all()


def test_score_directories_missing_predictions(competition):
    root, gaps = competition
    values = {k: float(v) for k, v in gaps.items() if k not in ("4", "7")}
    write_predict(root / "res" / "task1.predict", values)
    write_predict(root / "res" / "task2.predict", {k: float(v) for k, v in gaps.items()})
    with pytest.raises(ScoringError, match=r"task1.predict: no prediction for models \[4, 7\].*allow_partial"):
        score_directories(root / "ref", root / "res", root / "out", n_permutations=0)
    with pytest.warns(DegenerateInputWarning, match="covered models only"):
        table = score_directories(root / "ref", root / "res", root / "out", allow_partial=True, n_permutations=10)
    t1 = table[table.task == "task1"].set_index("metric")["value"]
    assert t1["n_models"] == 16 and math.isnan(t1["cmi_official"]) and t1["cmi_clean"] > 0.9
    assert "task_task1_score: -0.999999000000" in (root / "out" / "scores.txt").read_text()


def test_score_directories_bad_values_name_file_and_models(competition):
    root, gaps = competition
    values = {k: float(v) for k, v in gaps.items()}
    values["5"] = float("inf")
    write_predict(root / "res" / "task1.predict", values)
    (root / "res" / "task1.predict").write_text(json.dumps({**{k: v for k, v in values.items() if k != "5"}, "model_5": float("nan")}))
    write_predict(root / "res" / "task2.predict", {k: float(v) for k, v in gaps.items()})
    with pytest.raises(ScoringError, match=r"task1.predict: NaN or infinite values for models \[5\]"):
        score_directories(root / "ref", root / "res", root / "out", n_permutations=0)


def test_score_directories_missing_task_file_and_directions(competition):
    root, gaps = competition
    write_predict(root / "run" / "predictions" / "m_up" / "task1.predict", {k: float(v) for k, v in gaps.items()})
    write_predict(root / "run" / "predictions" / "m_down" / "task1.predict", {k: -float(v) for k, v in gaps.items()})
    with pytest.warns(DegenerateInputWarning, match="no task2.predict"):
        table = score_directories(root / "ref", root / "run", root / "out", directions={"m_down": -1}, n_permutations=0)
    tau = table[table.metric == "kendall_tau_a"].set_index("measure")["value"]
    assert tau["m_up"] == pytest.approx(1.0) and tau["m_down"] == pytest.approx(1.0)
    lines = (root / "out" / "scores_m_up.txt").read_text().splitlines()
    assert lines[1] == "task_task2_score: -0.999999000000"
    assert (root / "out" / "scores_m_down.txt").is_file() and not (root / "out" / "scores.txt").exists()
