"""Registry-wide contract: every registered measure, on real models of both sample-zoo families."""

from __future__ import annotations

import json
import math

import pytest

from gen_measures.context import ModelContext, task_sample
from gen_measures.registry import MeasureResult, list_measures
from gen_measures.runner import compute

from .conftest import SAMPLE_DATA

MEASURES = [s.name for s in list_measures()]
#: Measures whose contract cases take 25-60 s each on 2 cores (50 Hessian-vector products per
#: model; the kit's sharpness search): run in CI's slow step, so the default run stays under 15 min.
SLOW = {"hessian_trace", "kit_sharpness"}
CASES = [pytest.param(name, marks=pytest.mark.slow) if name in SLOW else name for name in MEASURES]


def _value(spec, ctx):
    out = spec.func(ctx)
    if isinstance(out, MeasureResult):
        assert isinstance(out.details, dict)
        json.dumps(out.details, allow_nan=True)  # details must be JSON-serialisable
        out = out.value
    assert isinstance(out, float), f"{spec.name} returned {type(out).__name__}, not float"
    return out


@pytest.mark.parametrize("name", CASES)
def test_finite_and_deterministic_on_both_families(name, sample_tasks):
    spec = next(s for s in list_measures() if s.name == name)
    for task in sample_tasks:
        sample = task_sample(task, None, 0)
        mid = task.model_ids[-1]
        first = _value(spec, ModelContext.from_task(task, mid, sample, seed=3))
        again = _value(spec, ModelContext.from_task(task, mid, sample, seed=3))
        assert math.isfinite(first), f"{name} on {task.name}/model_{mid} = {first}"
        assert first == again, f"{name} is not deterministic under a fixed seed: {first} != {again}"


@pytest.mark.parametrize("name", MEASURES)
def test_works_with_only_its_declared_needs(name, sample_tasks):
    """No training sample unless ``data`` is declared, no initial weights unless ``init_weights`` is."""
    spec = next(s for s in list_measures() if s.name == name)
    for task in sample_tasks:
        sample = task_sample(task, 256, 0) if "data" in spec.needs else None
        mid = task.model_ids[0]
        ctx = ModelContext.from_task(task, mid, sample, load_initial="init_weights" in spec.needs, seed=1)
        assert ctx.has_initial_weights == ("init_weights" in spec.needs)
        assert (ctx.n_samples > 0) == ("data" in spec.needs)
        value = _value(spec, ctx)
        assert math.isfinite(value), f"{name} with only its declared needs {sorted(spec.needs)}: {value}"


@pytest.mark.slow
def test_every_measure_on_every_sample_model():
    results = compute(SAMPLE_DATA, measures="all")
    bad = results[results.status != "ok"]
    assert bad.empty, bad[["task", "model", "measure", "message"]].to_string()
    assert len(results) == 64 * len(MEASURES)
