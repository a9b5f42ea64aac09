"""evaluate / score_results / format_score_table: the interface the CLI calls."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from gen_measures.errors import DegenerateInputWarning, ScoringError
from scoring.model_configs import ModelConfigs
from scoring.report import evaluate, format_score_table, metric_names, score_results


def test_oracle_metrics(grid_reference):
    gaps = grid_reference.gaps()
    m = evaluate(gaps.to_dict(), grid_reference, 1, n_permutations=50)
    assert list(m) == metric_names(grid_reference)
    assert all(isinstance(v, float) for v in m.values())
    assert m["n_models"] == 18 and m["grid_coverage"] == 1.0
    assert m["cmi_official"] == pytest.approx(1.0, abs=1e-9)
    assert [m["cmi_clean"], m["cmi_clean_s0"], m["cmi_clean_s1"]] == pytest.approx([1.0, 1.0, 1.0])
    assert m["kendall_tau_a"] == m["granulated_psi"] == 1.0 and m["kendall_tau_b"] == pytest.approx(1.0)
    assert m["psi_width"] == 1.0 and m["sign_error_max"] == 0.0 and m["sign_error_p90_act"] == 0.0
    assert m["cmi_percentile"] == 100.0 and m["cmi_p_value"] == pytest.approx(1 / 51)


def test_direction_is_applied_once(grid_reference):
    rng = np.random.default_rng(0)
    values = {k: float(v) for k, v in zip(grid_reference.model_ids, rng.random(18))}
    up = evaluate(values, grid_reference, 1, n_permutations=10)
    down = evaluate({k: -v for k, v in values.items()}, grid_reference, -1, n_permutations=10)
    assert up == pytest.approx(down, nan_ok=True)
    flipped = evaluate(values, grid_reference, -1, n_permutations=0)
    assert flipped["kendall_tau_a"] == pytest.approx(-up["kendall_tau_a"])
    assert flipped["sign_error_mean"] == pytest.approx(1 - up["sign_error_mean"])
    with pytest.raises(ScoringError, match="direction"):
        evaluate(values, grid_reference, 2)


def test_missing_nan_unknown_and_prefixed_ids(grid_reference):
    gaps = grid_reference.gaps()
    values = {f"model_{k}": float(v) for k, v in gaps.items()}
    assert evaluate(values, grid_reference, n_permutations=0)["n_models"] == 18
    partial = {k: v for k, v in values.items() if k not in ("model_3", "model_11")}
    with pytest.raises(ScoringError, match=r"values: no prediction for models \[3, 11\]"):
        evaluate(partial, grid_reference)
    with pytest.warns(DegenerateInputWarning, match="covered models only"):
        m = evaluate(partial, grid_reference, allow_partial=True, n_permutations=10)
    assert m["n_models"] == 16 and math.isnan(m["cmi_official"]) and m["cmi_clean"] == pytest.approx(1.0)
    assert m["cmi_percentile"] == 100.0  # falls back to the clean CMI
    bad = dict(values, model_5=float("nan"), model_6=float("inf"))
    with pytest.raises(ScoringError, match=r"NaN or infinite values for models \[5, 6\]"):
        evaluate(bad, grid_reference)
    with pytest.raises(ScoringError, match=r"model_5='high'"):
        evaluate(dict(values, model_5="high"), grid_reference)
    with pytest.raises(ScoringError, match=r"models \[99\] are not in the reference"):
        evaluate(dict(values, model_99=1.0), grid_reference)
    with pytest.raises(ScoringError, match="given twice"):
        evaluate(dict(values, **{"5": 1.0}), grid_reference)
    with pytest.raises(ScoringError, match="at least 3"):
        evaluate({"1": 0.1, "2": 0.2}, grid_reference, allow_partial=True)


def test_exceeded_official_semantics(grid_reference):
    values = {k: 0.1 * i for i, k in enumerate(grid_reference.model_ids)}
    values["4"] = "EXCEEDED"
    with pytest.warns(DegenerateInputWarning, match="EXCEEDED"):
        m = evaluate(values, grid_reference)
    assert m["cmi_official"] == 0.0 and math.isnan(m["kendall_tau_a"])


def test_single_valued_hparam_and_incomplete_reference():
    pv = {"a": [0, 1, 2], "const": [7], "b": ["x", "y"]}
    import itertools

    cells = list(itertools.product(*pv.values()))
    rng = np.random.default_rng(1)
    ref = ModelConfigs(
        path=None,
        possible_values=pv,
        hparams={str(i): dict(zip(pv, c)) for i, c in enumerate(cells)},
        metrics={str(i): {"train_acc": 1.0, "test_acc": float(rng.random())} for i in range(len(cells))},
    )
    values = {str(i): float(rng.random()) for i in range(len(cells))}
    with pytest.warns(DegenerateInputWarning, match="single value"):
        m = evaluate(values, ref, n_permutations=0)
    assert np.isfinite(m["cmi_official"]) and math.isnan(m["psi_const"]) and math.isnan(m["sign_error_max_const"])
    del ref.hparams["2"], ref.metrics["2"]
    with pytest.warns(DegenerateInputWarning, match=r"cmi_official is NaN.*missing cell"):
        m = evaluate({k: v for k, v in values.items() if k != "2"}, ref, n_permutations=0)
    assert math.isnan(m["cmi_official"]) and np.isfinite(m["cmi_clean_s1"])


def _results(reference, measures):
    rows = []
    for name, values in measures.items():
        for k, v in values.items():
            rows.append({"task": "t1", "model": f"model_{k}", "measure": name, "value": v})
    return pd.DataFrame(rows)


def test_score_results_tidy_and_failures(grid_reference):
    gaps = grid_reference.gaps()
    rng = np.random.default_rng(2)
    failing = {k: float(v) for k, v in zip(gaps.index, rng.random(18))}
    failing["3"] = float("nan")
    results = _results(grid_reference, {"oracle": gaps.to_dict(), "neg": (-gaps).to_dict(), "flaky": failing})
    with pytest.warns(DegenerateInputWarning, match=r"flaky.*\[3\]"):
        table = score_results(results, {"t1": grid_reference}, {"oracle": 1, "neg": -1, "flaky": 1}, n_permutations=5)
    assert list(table.columns) == ["measure", "task", "metric", "value"]
    wide = table.pivot_table(index="measure", columns="metric", values="value", dropna=False)
    assert wide.loc["oracle", "kendall_tau_a"] == 1.0 and wide.loc["neg", "kendall_tau_a"] == 1.0
    assert math.isnan(wide.loc["flaky", "cmi_clean"]) and wide.loc["flaky", "n_models"] == 17
    with pytest.warns(DegenerateInputWarning):
        table = score_results(results, {"t1": grid_reference}, {"oracle": 1, "neg": -1, "flaky": 1},
                              allow_partial=True, n_permutations=0)
    flaky = table[table.measure == "flaky"].set_index("metric")["value"]
    assert flaky["n_models"] == 17 and np.isfinite(flaky["cmi_clean"])
    with pytest.raises(ScoringError, match="no direction for measure"):
        score_results(results, {"t1": grid_reference}, {"oracle": 1})
    with pytest.raises(ScoringError, match="duplicated"):
        score_results(pd.concat([results, results.iloc[:1]]), {"t1": grid_reference}, {"oracle": 1, "neg": -1, "flaky": 1})
    with pytest.warns(DegenerateInputWarning, match="no reference"):
        empty = score_results(results.assign(task="t9"), {"t1": grid_reference}, {"oracle": 1, "neg": -1, "flaky": 1})
    assert empty.empty


def test_format_score_table(grid_reference):
    gaps = grid_reference.gaps()
    results = _results(grid_reference, {"oracle": gaps.to_dict(), "noise": {k: float(i % 5) for i, k in enumerate(gaps.index)}})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = score_results(results, {"t1": grid_reference}, {"oracle": 1, "noise": 1}, n_permutations=10)
    text = format_score_table(table)
    lines = text.splitlines()
    assert "t1" in lines[0] and "cmi" in lines[1] and "tau_a" in lines[1]
    assert lines[2].startswith("oracle") and "1.0000" in lines[2] and "100.0" in lines[2]
    assert lines[3].startswith("noise")
    assert format_score_table(table.iloc[:0]) == "(no scores)"


def test_score_results_exceeded_and_non_numeric(grid_reference):
    gaps = grid_reference.gaps()
    timed_out = {k: float(v) for k, v in gaps.items()}
    timed_out["2"] = "EXCEEDED"
    garbled = dict(timed_out, **{"2": "n/a"})
    results = _results(grid_reference, {"slow": timed_out, "garbled": garbled})
    with pytest.warns(DegenerateInputWarning) as record:
        table = score_results(results, {"t1": grid_reference}, {"slow": 1, "garbled": 1}, n_permutations=0)
    messages = " ".join(str(w.message) for w in record)
    assert "EXCEEDED" in messages and "[2]" in messages
    metrics = table.pivot_table(index="measure", columns="metric", values="value", dropna=False)
    assert metrics.loc["slow", "cmi_official"] == 0.0 and math.isnan(metrics.loc["garbled", "cmi_official"])
