"""The command line: every command has --help; run writes the competition's files; inspect shows the grid."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from gen_measures.cli import main

COMMANDS = ["list", "inspect", "make-zoo", "run", "ingest", "export", "export-submission", "score"]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_of_every_command(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    assert "usage: gen-measures " + command in capsys.readouterr().out


def test_module_entry_point():
    out = subprocess.run([sys.executable, "-m", "gen_measures", "list"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "distance_to_init" in out.stdout and "higher = larger gap" in out.stdout


def test_run_writes_predictions_and_results(tiny_zoo, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["run", str(tiny_zoo), "--measures", "distance_to_init,vc_dimension", "--output", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    results = pd.read_csv(out / "results.csv", dtype={"model": str})
    assert list(results.columns) == ["task", "model", "measure", "value", "status", "seconds", "message"]
    assert len(results) == 2 * 4 * 2 and set(results.status) == {"ok"}
    for task in ("digits_vgg_tiny", "shapes_nin_tiny"):
        pred = json.loads((out / "predictions" / "vc_dimension" / f"{task}.predict").read_text())
        assert sorted(pred) == ["model_0", "model_1", "model_2", "model_3"]
        rows = results[(results.task == task) & (results.measure == "vc_dimension")]
        assert {f"model_{m}": v for m, v in zip(rows.model, rows.value)} == pytest.approx(pred, rel=1e-15)
    assert "distance_to_init" in captured.out and "digits_vgg_tiny" in captured.out


def test_inspect_shows_models_grid_and_gaps(tiny_zoo, capsys):
    assert main(["inspect", str(tiny_zoo / "shapes_nin_tiny")]) == 0
    out = capsys.readouterr().out
    assert "complete grid: 4 models in 4 cells" in out
    assert "GlobalAveragePooling2D" in out and "generalization gap" in out
    assert "train examples: 120" in out and "test examples: 60" in out


def test_score_command_reproduces_a_published_score_without_tensorflow(tmp_path):
    from .conftest import PUBLIC

    if not PUBLIC.is_dir():
        pytest.skip(f"PGDL public anchors not found at {PUBLIC}")
    code = (
        "import sys; from gen_measures.cli import main; "
        f"rc = main(['score', {str(PUBLIC / 'reference_data')!r}, {str(PUBLIC / 'predictions' / 'RBF')!r}, {str(tmp_path)!r}]); "
        "print('TF', 'tensorflow' in sys.modules); sys.exit(rc)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "TF False" in out.stdout
    lines = (tmp_path / "scores.txt").read_text().splitlines()
    assert lines[0] == "task_task1_v4_score: 0.286613527487"  # published: expected_scores.csv


def test_run_scores_the_seed_paper_fusion_preset(tiny_zoo, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["run", str(tiny_zoo / "digits_vgg_tiny"), "--measures", "pseudo_validation_error,pvector_angle", "--output", str(out)])
    assert code == 0
    fused = json.loads((out / "predictions" / "fused_pvalid_pvector" / "digits_vgg_tiny.predict").read_text())
    errors = json.loads((out / "predictions" / "pseudo_validation_error" / "digits_vgg_tiny.predict").read_text())
    assert sorted(fused) == sorted(errors)
    # weight 0.95 on pseudo-validation: the fused order never contradicts a strict pseudo-validation order
    keys = sorted(errors)
    for a in keys:
        for b in keys:
            if errors[a] > errors[b]:
                assert fused[a] >= fused[b]
    assert "fused_pvalid_pvector" in capsys.readouterr().out
    results = pd.read_csv(out / "results.csv")
    assert "fused_pvalid_pvector" not in set(results.measure)  # results.csv holds computed measures only
