"""Atomic writes under concurrency: writers of one file never share a temporary name."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from gen_measures.io.atomic import atomic_path
from gen_measures.runner.jobs import has_sample, read_sample, read_train_size, write_sample


def test_two_writers_of_one_sample_at_once_both_succeed(tmp_path):
    # what two Dask workers on one machine do when they cache the same task's sample
    stem = tmp_path / "samples" / "task-abc"
    x = np.arange(6000, dtype=np.float32).reshape(200, 30)
    y = np.arange(200) % 10
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def writer():
        start.wait()
        try:
            for _ in range(25):
                write_sample(stem, x, y, 150)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert has_sample(stem)
    rx, ry = read_sample(stem)
    np.testing.assert_array_equal(rx, x)
    np.testing.assert_array_equal(ry, y)
    assert read_train_size(stem) == 150
    assert sorted(p.name for p in stem.parent.iterdir()) == [f"task-abc{s}" for s in ("_n.npy", "_x.npy", "_y.npy")]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "report.html"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_the_written_file_has_the_default_mode(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    with atomic_path(tmp_path / "atomic.txt") as tmp:
        tmp.write_text("x")
    assert (tmp_path / "atomic.txt").stat().st_mode == plain.stat().st_mode
