"""Resume: a stored result is reused only while its code and the files it read are unchanged."""

from __future__ import annotations

import os
import shutil

import pytest

from gen_measures.runner import RunStats, compute

MEASURES = "distance_to_init,pvector_angle,vc_dimension"


@pytest.fixture()
def task(task_copy):
    return task_copy


def _run(task, out, **kw):
    stats = RunStats()
    frame = compute(task, measures=MEASURES, output=out, workers=0, stats=stats, **kw)
    return frame.set_index(["model", "measure"]), stats


def _bump(path):
    """Rewrite a file in place (same bytes, new modification time), as retraining into the folder would."""
    data = path.read_bytes()
    st = path.stat()
    path.write_bytes(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))


def test_rerun_reuses_everything_and_fresh_recomputes(task, tmp_path):
    first, s1 = _run(task, tmp_path / "o")
    assert (s1.reused, s1.computed) == (0, 12)
    again, s2 = _run(task, tmp_path / "o")
    assert (s2.reused, s2.computed) == (12, 0)
    assert again["value"].equals(first["value"])
    _, s3 = _run(task, tmp_path / "o", fresh=True)
    assert (s3.reused, s3.computed) == (0, 12)


def test_retraining_a_model_recomputes_only_that_model(task, tmp_path):
    before, _ = _run(task, tmp_path / "o")
    # "retrain" model_0: its folder now holds model_1's weights
    shutil.copy(task / "model_1" / "weights.hdf5", task / "model_0" / "weights.hdf5")
    after, stats = _run(task, tmp_path / "o")
    assert (stats.reused, stats.computed) == (9, 3)
    assert after.loc[("0", "distance_to_init"), "value"] != before.loc[("0", "distance_to_init"), "value"]
    assert after.loc[("1", "pvector_angle"), "value"] == before.loc[("1", "pvector_angle"), "value"]


def test_replacing_a_shard_recomputes_what_read_the_data(task, tmp_path):
    _run(task, tmp_path / "o")
    shard = sorted((task / "dataset_1" / "train").glob("shard_*.tfrecord"))[0]
    _bump(shard)
    _, stats = _run(task, tmp_path / "o")
    # only pvector_angle needs data: 4 models recomputed, the data-free measures reused
    assert (stats.reused, stats.computed) == (8, 4)


def test_deleting_initial_weights_recomputes_and_reports_the_error(task, tmp_path):
    before, _ = _run(task, tmp_path / "o")
    assert before.loc[("2", "distance_to_init"), "status"] == "ok"
    (task / "model_2" / "weights_init.hdf5").unlink()
    after, stats = _run(task, tmp_path / "o")
    assert (stats.reused, stats.computed) == (11, 1)
    row = after.loc[("2", "distance_to_init")]
    assert row["status"] == "error" and "weights_init.hdf5" in row["message"]


def test_a_changed_measure_version_is_recomputed(task, tmp_path, monkeypatch):
    import dataclasses

    from gen_measures import registry

    _run(task, tmp_path / "o")
    spec = registry.get_measure("vc_dimension")
    monkeypatch.setitem(registry._REGISTRY, "vc_dimension", dataclasses.replace(spec, version="2"))
    _, stats = _run(task, tmp_path / "o")
    assert (stats.reused, stats.computed) == (8, 4)
