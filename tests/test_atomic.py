"""Atomic writes under concurrency: writers of one file never share a temporary name."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

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


# ---------------------------------------------------------------------------------------------
# the run's exports under failure: SIGKILL mid-write, two writers at once, a failing writer

_SLOW_EXPORT = """
import sys
import numpy as np, pandas as pd
from gen_measures.io.results import write_results_csv
n = 3_000_000
frame = pd.DataFrame({"task": "t", "model": np.arange(n).astype(str), "measure": "m",
                      "value": np.random.default_rng(0).random(n), "status": "ok", "seconds": 0.5, "message": ""})
print("ready", flush=True)
write_results_csv(frame, sys.argv[1])
print("done", flush=True)
"""


def _age(path: Path, seconds: float = 3600.0) -> None:
    """Set ``path``'s modification time ``seconds`` in the past."""
    then = time.time() - seconds
    os.utime(path, (then, then))


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return int(proc.stdout)


def test_an_export_killed_mid_write_keeps_the_old_results_and_the_next_run_sweeps_its_temporary(tmp_path):
    from gen_measures.io.atomic import _host, sweep_stale_temporaries

    out = tmp_path / "out"
    out.mkdir()
    old = "task,model,measure,value,status,seconds,message\nt,0,m,1.5,ok,0.1,\n"
    (out / "results.csv").write_text(old)
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_EXPORT, str(out)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    deadline = time.monotonic() + 60
    temporaries: list[Path] = []
    while time.monotonic() < deadline and not temporaries and proc.poll() is None:
        with contextlib.suppress(FileNotFoundError):  # listed, then moved into place before its stat
            temporaries = [p for p in out.glob(".results.csv.*.tmp") if p.stat().st_size > 0]
        time.sleep(0.005)
    assert temporaries, "the writer finished or timed out without writing a temporary file first"
    os.kill(proc.pid, signal.SIGKILL)  # mid-write: the temporary has some bytes, not all
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert (out / "results.csv").read_text() == old  # a reader still sees the old file, whole
    (stale,) = temporaries
    assert stale.exists()

    # what the sweep must leave alone: a live writer's temporary, another host's, a user's file
    live = out / f".results.csv.{_host()}.{os.getpid()}.0123456789ab.tmp"
    other_host = out / f".results.csv.elsewhere.{_dead_pid()}.0123456789ab.tmp"
    users = out / ".notes.tmp"
    dead_folder = out / f".predictions.{_host()}.{_dead_pid()}.0123456789ab.tmp"
    (dead_folder / "m").mkdir(parents=True)
    (dead_folder / "m" / "t.predict").write_text("{}")
    for keep in (live, other_host, users):
        keep.write_text("x")
    nested = out / "sub" / f".x.{_host()}.{_dead_pid()}.0123456789ab.tmp"
    nested.parent.mkdir()
    nested.write_text("x")
    assert sweep_stale_temporaries(out) == []  # a dead writer's file changed just now may be a live
    for entry in [stale, dead_folder, nested, live, other_host, users]:  # one's in another pid namespace
        _age(entry)
    removed = sweep_stale_temporaries(out)
    assert sorted(removed) == sorted([stale, dead_folder])
    assert nested.exists()  # subfolders only when asked
    assert sweep_stale_temporaries(out, recursive=True) == [nested]
    assert not stale.exists() and not dead_folder.exists()
    assert all(p.exists() for p in (live, other_host, users))
    assert sweep_stale_temporaries(tmp_path / "missing") == []


def test_a_run_removes_the_temporaries_of_killed_writers_from_its_output_folder(tmp_path):
    from gen_measures.io.atomic import _host
    from gen_measures.runner import compute

    out = tmp_path / "out"
    stale = out / "cache" / "samples" / f".task-0123_x.npy.{_host()}.{_dead_pid()}.0123456789ab.tmp"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"\x93NUMPY half")
    export = out / f".results.csv.{_host()}.{_dead_pid()}.0123456789ab.tmp"
    export.write_text("task,model")
    _age(stale)
    _age(export)
    compute(tasks=[], measures=["distance_to_init"], output=out, workers=0, progress=False)
    assert not stale.exists() and not export.exists()


def test_two_writers_exporting_into_one_folder_leave_one_whole_results_file(tmp_path):
    import pandas as pd

    from gen_measures.io.results import write_results_csv

    frames = [pd.DataFrame({"task": "t", "model": [str(i) for i in range(2000)], "measure": f"m{w}",
                            "value": np.arange(2000) * (w + 1.0), "status": "ok", "seconds": 0.1, "message": ""})
              for w in range(4)]
    errors: list[BaseException] = []
    start = threading.Barrier(len(frames))

    def writer(frame):
        start.wait()
        try:
            for _ in range(10):
                write_results_csv(frame, tmp_path)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(f,)) for f in frames]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    whole = [f.to_csv(index=False, float_format="%.17g") for f in frames]
    assert (tmp_path / "results.csv").read_text() in whole
    assert [p.name for p in tmp_path.iterdir()] == ["results.csv"]


def test_the_predictions_folder_is_replaced_whole_and_kept_when_a_write_fails(tmp_path, monkeypatch):
    import pandas as pd

    import gen_measures.io.results as results_io

    def frame(measures):
        return pd.DataFrame([{"task": "t", "model": str(i), "measure": m, "value": i + 0.5, "status": "ok"}
                             for m in measures for i in range(3)])

    written = results_io.write_predictions(frame(["a", "b"]), tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in written) == ["predictions/a/t.predict",
                                                                           "predictions/b/t.predict"]
    assert all(p.is_file() for p in written)
    results_io.write_predictions(frame(["a"]), tmp_path)  # 'b' has no value now: no file
    assert sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "predictions").rglob("*.predict")) == [
        "predictions/a/t.predict"]

    calls = []

    def failing(path, values):
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("half")

    monkeypatch.setattr(results_io, "write_predict", failing)
    with pytest.raises(OSError, match="disk full"):
        results_io.write_predictions(frame(["c", "d"]), tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "predictions").rglob("*.predict")) == [
        "predictions/a/t.predict"]
    assert (tmp_path / "predictions" / "a" / "t.predict").read_text().startswith("{")
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))  # no temporary left


_FOLDER_WRITER = """
import sys
from pathlib import Path
from gen_measures.io.atomic import atomic_folder
out, me = Path(sys.argv[1]), sys.argv[2]
for i in range(150):
    with atomic_folder(out / "predictions") as tmp:
        for m in ("a", "b"):
            (tmp / m).mkdir()
            (tmp / m / "t.predict").write_text(me)
print("ok", flush=True)
"""


def test_two_processes_replacing_one_predictions_folder_swap_one_after_the_other(tmp_path):
    # two runs (or a run and an export) finishing into one output folder at once
    procs = [subprocess.Popen([sys.executable, "-c", _FOLDER_WRITER, str(tmp_path), name], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for name in ("one", "two")]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outputs]
    texts = {(tmp_path / "predictions" / m / "t.predict").read_text() for m in ("a", "b")}
    assert len(texts) == 1 and texts <= {"one", "two"}  # one writer's folder, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == [".predictions.lock", "predictions"]


def test_a_symlinked_predictions_folder_is_replaced_at_its_target(tmp_path):
    import pandas as pd

    from gen_measures.io.results import write_predictions

    target = tmp_path / "elsewhere" / "preds"
    target.mkdir(parents=True)
    (target / "stale.txt").write_text("old")
    out = tmp_path / "out"
    out.mkdir()
    (out / "predictions").symlink_to(target, target_is_directory=True)
    frame = pd.DataFrame([{"task": "t", "model": "1", "measure": "a", "value": 0.5, "status": "ok"}])
    write_predictions(frame, out)
    assert (out / "predictions").is_symlink()
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()) == ["a/t.predict"]


def test_a_temporary_the_sweep_cannot_remove_is_kept_with_a_warning(tmp_path, monkeypatch, caplog):
    from gen_measures.io.atomic import _host, sweep_stale_temporaries

    blocked = tmp_path / f".results.csv.{_host()}.{_dead_pid()}.0123456789ab.tmp"
    gone = tmp_path / f".layer_values.csv.{_host()}.{_dead_pid()}.0123456789ab.tmp"
    huge_pid = tmp_path / f".results.csv.{_host()}.9999999999.0123456789ab.tmp"
    for entry in (blocked, gone, huge_pid):
        entry.write_text("x")
        _age(entry)
    original = Path.unlink

    def unlink(self, *args, **kwargs):
        if self == blocked:
            raise PermissionError(13, "Operation not permitted", str(self))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Path, "unlink", unlink)
    with caplog.at_level("WARNING", logger="gen_measures.io.atomic"):
        removed = sweep_stale_temporaries(tmp_path)
    assert gone in removed and blocked not in removed and blocked.exists()
    assert huge_pid.exists() and huge_pid not in removed  # no pid of this system (not ours): kept, no crash
    assert "could not be removed" in caplog.text and blocked.name in caplog.text
