"""The runner under failure, as failure happens: SIGKILL mid-run, two writers, a measure past its
budget, a worker that dies, a corrupt model among good ones, a Dask cluster."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from gen_measures.cli import main
from gen_measures.errors import GenMeasuresError
from gen_measures.registry import load_plugin_file
from gen_measures.runner import RunStats, compute, read_results
from gen_measures.runner.store import STORE_NAME, ResultStore, RunLock, StoredRow

from .builders import wait_for_stored_rows

PROBES = Path(__file__).parent / "plugins" / "runner_probes.py"
SEEDED = "distance_to_init,pvector_angle,pseudo_validation_error"


@pytest.fixture(autouse=True)
def _probes():
    load_plugin_file(PROBES)


def _cli(args, env=None, **kw):
    return subprocess.Popen([sys.executable, "-m", "gen_measures", *args], env=dict(os.environ, **(env or {})),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _csv(folder) -> pd.DataFrame:
    frame = pd.read_csv(Path(folder) / "results.csv", dtype={"model": str})
    return frame.drop(columns=["seconds"])


def _stored_keys(folder) -> tuple[int, int]:
    with sqlite3.connect(Path(folder) / STORE_NAME) as db:
        total = db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
        distinct = db.execute("SELECT COUNT(*) FROM (SELECT DISTINCT task_path, model, measure, sample_size, seed FROM results)").fetchone()[0]
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    return total, distinct


@pytest.mark.slow  # 80 s: in CI's slow step (keeps the default run under 15 min)
def test_sigkill_mid_run_then_resume_equals_an_uninterrupted_run(tiny_zoo, tmp_path):
    measures = SEEDED + ",probe_pause"
    common = ["run", str(tiny_zoo), "--measures", measures, "--plugin", str(PROBES), "--fuse", "", "--quiet"]
    env = {"PROBE_PAUSE_SECONDS": "1.0"}
    killed = tmp_path / "killed"
    proc = _cli(common + ["--output", str(killed)], env)
    assert wait_for_stored_rows(killed, 8, proc) >= 8  # some, not all, results are stored
    os.kill(proc.pid, signal.SIGKILL)  # the main process only: its worker must notice and exit
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    stored_before = _stored_keys(killed)[0]
    assert 8 <= stored_before < 8 * 4

    # the killed run's store already exports
    assert main(["export", str(killed), "--quiet"]) == 0
    assert len(_csv(killed)) == stored_before

    rerun = _cli(common + ["--output", str(killed)], env)
    out, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err
    assert f"{stored_before} reused from the store" in out

    whole = tmp_path / "whole"
    once = _cli(common + ["--output", str(whole)], env)
    _, err = once.communicate(timeout=600)
    assert once.returncode == 0, err
    pd.testing.assert_frame_equal(_csv(killed), _csv(whole))
    total, distinct = _stored_keys(killed)
    assert total == distinct == 8 * 4


def test_a_second_run_into_a_busy_folder_stops_with_a_clear_message(tiny_zoo, tmp_path, capsys):
    out = tmp_path / "out"
    with RunLock(out):
        code = main(["run", str(tiny_zoo), "--measures", "distance_to_init", "--output", str(out), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert "another gen-measures run is writing into this folder" in err and f"pid {os.getpid()}" in err
    # and once the lock is free the same command works
    assert main(["run", str(tiny_zoo), "--measures", "distance_to_init", "--output", str(out), "--quiet", "--workers", "0"]) == 0


def _writer(folder: str, tag: str, n: int) -> None:
    with ResultStore(folder) as store:
        for i in range(n):
            store.put(StoredRow("t", "t", f"{tag}{i}", "m", -1, 0, "v", "f", float(i), "ok", 0.0))


def test_two_processes_writing_one_store_at_once_lose_nothing(tmp_path):
    """SQLite's own locking (WAL, busy timeout) under two concurrent writer processes."""
    code = "import sys; from tests.test_runner import _writer; _writer(sys.argv[1], sys.argv[2], 300)"
    root = Path(__file__).resolve().parent.parent
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path), tag], cwd=root) for tag in "ab"]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    total, distinct = _stored_keys(tmp_path)
    assert total == distinct == 600


def test_a_model_past_its_budget_times_out_and_the_run_goes_on(tiny_zoo, tmp_path, monkeypatch):
    monkeypatch.setenv("PROBE_SLEEP_MODELS", "1")
    monkeypatch.setenv("PROBE_SLEEP_SECONDS", "120")
    task = tiny_zoo / "digits_vgg_tiny"
    stats = RunStats()
    t0 = time.perf_counter()
    res = compute(task, measures="distance_to_init,probe_sleep,pvector_angle", output=tmp_path / "o",
                  model_timeout=8, workers=1, stats=stats)
    assert time.perf_counter() - t0 < 100
    by = res.set_index(["model", "measure"])
    assert by.loc[("1", "distance_to_init"), "status"] == "ok"  # finished before the budget ran out
    for m in ("probe_sleep", "pvector_angle"):
        row = by.loc[("1", m)]
        assert row["status"] == "timeout" and row["seconds"] >= 8
        assert "--model-timeout 8 s" in row["message"] and "probe_sleep" in row["message"]
    others = res[res.model != "1"]
    assert set(others.status) == {"ok"} and len(others) == 3 * 3
    assert stats.failed == 2 and any("timeout" in f for f in stats.failures)


def test_a_dying_worker_and_a_corrupt_model_cost_only_their_models(tiny_zoo, tmp_path, monkeypatch, capsys):
    import shutil

    task = tmp_path / "task"
    shutil.copytree(tiny_zoo / "digits_vgg_tiny", task)
    weights = task / "model_3" / "weights.hdf5"
    weights.write_bytes(weights.read_bytes()[:200])  # truncated
    monkeypatch.setenv("PROBE_CRASH_MODELS", "1")
    code = main(["run", str(task), "--measures", "distance_to_init,probe_crash", "--plugin", str(PROBES),
                 "--output", str(tmp_path / "o"), "--fuse", "", "--quiet"])
    assert code == 1
    err = capsys.readouterr().err
    res = read_results(tmp_path / "o").set_index(["model", "measure"])
    assert res.loc[("1", "distance_to_init"), "status"] == "ok"
    crash = res.loc[("1", "probe_crash")]
    assert crash["status"] == "error" and "killed by signal SIGKILL" in crash["message"] and "probe_crash" in crash["message"]
    for m in ("distance_to_init", "probe_crash"):
        assert res.loc[("3", m), "status"] == "error" and str(weights) in res.loc[("3", m), "message"]
    assert set(res.loc[["0", "2"], "status"]) == {"ok"}
    assert "killed by signal SIGKILL" in err and "2 of 8 results failed" not in err  # 3 failed: 1 crash + 2 corrupt
    assert "3 of 8 results failed" in err


@pytest.mark.slow
def test_two_workers_give_the_results_of_one(tiny_zoo, tmp_path):
    measures = SEEDED + ",saturation"
    one = compute(tiny_zoo, measures=measures, output=tmp_path / "one", workers=1)
    two = compute(tiny_zoo, measures=measures, output=tmp_path / "two", workers=2)
    pd.testing.assert_frame_equal(one.drop(columns=["seconds"]), two.drop(columns=["seconds"]))
    assert set(one.status) == {"ok"}


@pytest.mark.slow
def test_dask_local_cluster_equals_a_local_run(tiny_zoo, tmp_path):
    distributed = pytest.importorskip("distributed", reason="the dask extra (dask.distributed) is not installed")
    local = compute(tiny_zoo, measures=SEEDED, output=tmp_path / "local", workers=1)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        remote = compute(tiny_zoo, measures=SEEDED, output=tmp_path / "dask", dask_scheduler=cluster.scheduler_address)
    pd.testing.assert_frame_equal(local.drop(columns=["seconds"]), remote.drop(columns=["seconds"]))
    again = RunStats()
    compute(tiny_zoo, measures=SEEDED, output=tmp_path / "dask", stats=again, dask_scheduler="tcp://127.0.0.1:1")
    assert again.reused == len(local) and again.computed == 0  # resumes like a local run, no cluster needed


def test_unknown_workers_value_is_an_argument_error(tiny_zoo, tmp_path):
    with pytest.raises(GenMeasuresError, match="--workers"):
        compute(tiny_zoo, measures="distance_to_init", output=tmp_path, workers="many")


def test_measures_that_do_not_apply_are_not_failures(tmp_path, capsys):
    """An MLP zoo under --measures all: image-only baselines are not_applicable; exit status 0."""
    from .builders import mlp_task

    task = mlp_task(tmp_path / "mlp", n_models=2)
    code = main(["run", str(task), "--measures", "all", "--output", str(tmp_path / "o"), "--quiet", "--workers", "0",
                 "--fuse", ""])
    res = read_results(tmp_path / "o")
    bad = res[res.status.isin(["error", "timeout"])]
    assert code == 0, bad[["model", "measure", "message"]].to_string()
    skipped = res[res.status == "not_applicable"]
    assert {"augment_margin", "augmentation_robustness", "dbi_mixup"} <= set(skipped.measure)
    assert all("does not apply" in m for m in skipped.message)
    assert (res.status == "ok").sum() > 0


def test_free_workers_take_the_jobs_of_the_architecture_they_ran_last():
    """Dispatch order of the process executor: a worker keeps to its architecture (its traced
    functions are warm), a fresh one starts on an architecture nobody else is running."""
    from collections import deque
    from types import SimpleNamespace

    from gen_measures.runner.executors import ProcessExecutor
    from gen_measures.runner.jobs import ModelJob

    def job(i, arch):
        return ModelJob(job_id=i, task_path="t", task_name="t", model_id=str(i), measures=["m"], seed=0, batch_size=8,
                        architecture=arch)

    pending = deque(job(i, arch) for i, arch in enumerate("aaaabbbbcccc"))
    executor = ProcessExecutor(workers=2)
    one, two = SimpleNamespace(architecture=""), SimpleNamespace(architecture="")
    executor.pool = [one, two]
    taken = {id(one): [], id(two): []}
    for w in [one, two] * 6:
        j = executor._next_job(pending, w)
        w.architecture = j.architecture
        taken[id(w)].append(j.architecture)
    assert "".join(taken[id(one)]) == "aaaacc" and "".join(taken[id(two)]) == "bbbbcc"
    assert not pending
    # unread architectures ("") are taken in order
    pending = deque(job(i, "") for i in range(3))
    assert [executor._next_job(pending, one).job_id for _ in range(3)] == [0, 1, 2]
