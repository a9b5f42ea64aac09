"""Fixtures of the scoring tests (anchors are read in place and skipped when absent)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from scoring.model_configs import ModelConfigs

ANCHORS = Path(__file__).resolve().parents[2] / ".." / "shared" / "anchors"


@pytest.fixture(scope="session")
def anchors() -> Path:
    """``repo_root/../shared/anchors`` (skipped when absent)."""
    if not (ANCHORS / "pgdl_public" / "expected_scores.csv").is_file():
        pytest.skip(f"PGDL anchors not found at {ANCHORS.resolve()} (only present in the shared workplace)")
    return ANCHORS


@pytest.fixture
def grid_reference() -> ModelConfigs:
    """A complete 3 x 3 x 2 grid (18 models) with distinct gaps, in memory."""
    rng = np.random.default_rng(7)
    pv = {"width": [64, 128, 256], "depth": [1, 2, 3], "act": ["relu", "tanh"]}
    cells = list(itertools.product(*pv.values()))
    hparams = {str(i): dict(zip(pv, c)) for i, c in enumerate(cells)}
    gaps = rng.permutation(len(cells)) / 100 + 0.05
    metrics = {str(i): {"train_acc": 1.0, "test_acc": 1.0 - float(g)} for i, g in enumerate(gaps)}
    return ModelConfigs(path=None, possible_values=pv, hparams=hparams, metrics=metrics)
