"""gen-measures ingest: unmodified PGDL submissions on the runner (store, resume, budget, errors),
and conformance with the organizers' own ingestion program on their toy task."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from gen_measures.cli import main

from .builders import wait_for_stored_rows
from .conftest import ANCHORS, TOY

KIT = ANCHORS / "pgdl_kit"
VPM = KIT / "submissions" / "VPM_1"

RANDOMISED = textwrap.dedent('''
    import random
    import time
    import numpy as np
    import tensorflow as tf

    def complexity(model, dataset):
        """Unseeded randomness of three kinds, as 2020 submissions had; np.float is the removed alias."""
        time.sleep(float(__import__("os").environ.get("SUBMISSION_PAUSE", "0")))
        x, y = next(iter(dataset.batch(16)))
        noise = tf.random.normal(x.shape) * 0.01
        out = model(x + noise)
        return np.float(tf.reduce_mean(out)) + random.random() + np.random.rand()
''')

RAISES_ON_SECOND = textwrap.dedent('''
    CALLS = [0]

    def complexity(model, dataset, program_dir):
        CALLS[0] += 1
        if CALLS[0] == 2:
            raise RuntimeError("boom on the second model")
        if CALLS[0] == 3:
            return "not a number"
        return float(len(model.layers)) + len(program_dir) * 0.0
''')


def _submission(folder: Path, source: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "complexity.py").write_text(source)
    return folder


def _ingest(args, env=None, **kw):
    return subprocess.Popen([sys.executable, "-m", "gen_measures", "ingest", *args], env=dict(os.environ, **(env or {})),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _values(out: Path, task: str) -> dict:
    return json.loads((out / f"{task}.predict").read_text())


@pytest.mark.slow  # 54 s: in CI's slow step (keeps the default run under 15 min)
def test_randomised_submission_is_reproducible_and_a_killed_ingest_resumes(tiny_zoo, tmp_path):
    sub = _submission(tmp_path / "rand_sub", RANDOMISED)
    task = tiny_zoo / "digits_vgg_tiny"
    args = [str(sub), str(task), "--seed", "3", "--quiet"]
    first = _ingest(args + ["--output", str(tmp_path / "a")])
    _, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    second = _ingest(args + ["--output", str(tmp_path / "b")])
    _, err = second.communicate(timeout=600)
    assert second.returncode == 0, err
    a = _values(tmp_path / "a", task.name)
    assert a == _values(tmp_path / "b", task.name) and len(a) == 4

    killed = tmp_path / "k"
    proc = _ingest(args + ["--output", str(killed)], env={"SUBMISSION_PAUSE": "2"})
    assert wait_for_stored_rows(killed, 2, proc) >= 2
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    rerun = _ingest(args + ["--output", str(killed)])
    out, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err
    assert "reused from the store" in out and " 0 reused" not in out
    assert _values(killed, task.name) == a


def test_a_submission_that_raises_on_one_model_costs_that_model_only(tiny_zoo, tmp_path, capsys):
    sub = _submission(tmp_path / "raiser", RAISES_ON_SECOND)
    code = main(["ingest", str(sub), str(tiny_zoo / "shapes_nin_tiny"), "--output", str(tmp_path / "o"), "--quiet"])
    assert code == 1
    res = pd.read_csv(tmp_path / "o" / "results.csv", dtype={"model": str}).set_index("model")
    assert list(res.status) == ["ok", "error", "error", "ok"]
    assert "complexity() raised RuntimeError: boom on the second model" in res.loc["1", "message"]
    assert "returned str 'not a number', not a number" in res.loc["2", "message"]
    assert sorted(_values(tmp_path / "o", "shapes_nin_tiny")) == ["model_0", "model_3"]


def test_a_folder_without_a_proper_complexity_function_is_named(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["ingest", str(empty), "--output", str(tmp_path / "o")]) == 2
    assert str(empty / "complexity.py") in capsys.readouterr().err
    bad = _submission(tmp_path / "bad", "def complexity(model):\n    return 1.0\n")
    assert main(["ingest", str(bad), "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert str(bad / "complexity.py") in err and "complexity(model, dataset" in err


SEEDING_WRAPPER = textwrap.dedent('''
    import importlib.util, random, sys
    import numpy as np
    import tensorflow as tf
    for alias, target in {{"int": int, "float": float, "object": object}}.items():
        setattr(np, alias, target)
    _spec = importlib.util.spec_from_file_location("vpm_complexity", {source!r})
    _vpm = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_vpm)

    def complexity(model, dataset):
        random.seed({seed}); np.random.seed({seed}); tf.random.set_seed({seed})
        return _vpm.complexity(model, dataset)
''')


@pytest.mark.skipif(not (KIT.is_dir() and TOY.is_dir()), reason=f"PGDL kit / toy anchors not found under {ANCHORS}")
def test_vpm_through_ingest_equals_the_organizers_ingestion_program(tmp_path):
    """VPM_1 with seed 0 on 6 toy models: our ingest against the organizers' ingestion.py (run
    unmodified, under tf_keras, with a wrapper submission that only seeds before each model)."""
    inputs = tmp_path / "input_data"
    task = inputs / "toy6"
    task.mkdir(parents=True)
    for name in ["dataset_1", "model_configs.json"] + [f"model_{i}" for i in range(6)]:
        (task / name).symlink_to(TOY / name)  # read in place, never copied
    wrapper = _submission(tmp_path / "seeded_vpm", SEEDING_WRAPPER.format(source=str(VPM / "complexity.py"), seed=0))
    organizers_out = tmp_path / "organizers"
    # data_io.py imports data_converter, a module the kit does not ship (used only for sparse
    # AutoML formats, never by PGDL): an empty stand-in lets the unmodified program start.
    shims = tmp_path / "shims"
    shims.mkdir()
    (shims / "data_converter.py").write_text('"""Empty stand-in for the AutoML kit module data_io imports."""\n')
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=os.pathsep.join([str(shims), os.environ.get("PYTHONPATH", "")]))
    official = subprocess.run([sys.executable, str(KIT / "ingestion_program" / "ingestion.py"), str(inputs),
                               str(organizers_out), str(KIT / "ingestion_program"), str(wrapper)],
                              capture_output=True, text=True, timeout=900, env=env, cwd=tmp_path)
    assert official.returncode == 0, official.stderr[-3000:]
    theirs = json.loads((organizers_out / "toy6.predict").read_text())

    ours_out = tmp_path / "ours"
    ours = _ingest([str(VPM), str(task), "--seed", "0", "--output", str(ours_out), "--quiet"])
    _, err = ours.communicate(timeout=900)
    assert ours.returncode == 0, err
    mine = _values(ours_out, "toy6")
    assert sorted(mine) == sorted(theirs) == [f"model_{i}" for i in range(6)]
    for key in theirs:
        assert mine[key] == pytest.approx(theirs[key], rel=1e-6), key


@pytest.mark.slow
@pytest.mark.skipif(not (KIT.is_dir() and TOY.is_dir()), reason=f"PGDL kit / toy anchors not found under {ANCHORS}")
@pytest.mark.parametrize("measure", ["distance_to_init", "pvector_angle"])
def test_exported_submission_in_the_organizers_ingestion_equals_run(tmp_path, measure):
    inputs = tmp_path / "input_data"
    task = inputs / "toy6"
    task.mkdir(parents=True)
    for name in ["dataset_1", "model_configs.json"] + [f"model_{i}" for i in range(6)]:
        (task / name).symlink_to(TOY / name)
    sub = tmp_path / "exported"
    assert main(["export-submission", measure, str(sub)]) == 0
    assert (sub / "complexity.py").is_file() and (sub / "metadata").is_file()
    shims = tmp_path / "shims"
    shims.mkdir()
    (shims / "data_converter.py").write_text("")
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(shims))
    official = subprocess.run([sys.executable, str(KIT / "ingestion_program" / "ingestion.py"), str(inputs),
                               str(tmp_path / "organizers"), str(KIT / "ingestion_program"), str(sub)],
                              capture_output=True, text=True, timeout=900, env=env, cwd=tmp_path)
    assert official.returncode == 0, official.stderr[-3000:]
    theirs = json.loads((tmp_path / "organizers" / "toy6.predict").read_text())
    assert main(["run", str(task), "--measures", measure, "--output", str(tmp_path / "run"), "--quiet", "--fuse", ""]) == 0
    ours = json.loads((tmp_path / "run" / "predictions" / measure / "toy6.predict").read_text())
    assert sorted(theirs) == sorted(ours)
    for key in ours:
        assert theirs[key] == pytest.approx(ours[key], rel=1e-5, abs=1e-6), key
