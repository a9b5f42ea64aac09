"""Shared fixtures: anchors (read in place, skipped when absent) and a tiny generated zoo."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parents[1]
ANCHORS = REPO.parent / "shared" / "anchors"
TOY = ANCHORS / "pgdl_toy" / "toy_data"
PUBLIC = ANCHORS / "pgdl_public"
SAMPLE_DATA = REPO / "sample_data"


@pytest.fixture(scope="session")
def toy_task():
    """The organizers' toy task (18 models), read in place."""
    if not TOY.is_dir():
        pytest.skip(f"PGDL toy anchor not found at {TOY} (only present in the project workplace)")
    from gen_measures.io.pgdl import open_task

    return open_task(TOY)


@pytest.fixture(scope="session")
def tiny_zoo(tmp_path_factory):
    """The `tiny` preset (2 tasks x 4 models, 3 epochs), generated once per session."""
    from gen_measures.io.zoo import make_zoo

    out = tmp_path_factory.mktemp("tiny_zoo")
    make_zoo(out, preset="tiny", seed=0)
    return out


@pytest.fixture()
def task_copy(tiny_zoo, tmp_path):
    """A writable copy of one tiny task (digits_vgg_tiny, 4 models) in this test's temporary folder."""
    import shutil

    dst = tmp_path / "task"
    shutil.copytree(tiny_zoo / "digits_vgg_tiny", dst)
    return dst


@pytest.fixture(scope="session")
def sample_tasks():
    """The bundled sample zoo's tasks."""
    from gen_measures.io.pgdl import discover_tasks

    return discover_tasks(SAMPLE_DATA)


@pytest.fixture(scope="session")
def sample_contexts(sample_tasks):
    """Contexts of two models (first, last) of each sample-zoo task, on the whole training set."""
    from gen_measures.context import ModelContext, task_sample

    out = {}
    for task in sample_tasks:
        sample = task_sample(task, None, 0)
        cache: dict = {}
        for mid in (task.model_ids[0], task.model_ids[-1]):
            out[(task.name, mid)] = ModelContext.from_task(task, mid, sample, task_cache=cache)
    return out
