"""Runner figures, measured side by side in one run (these machines are noisy: compare ratios).

1. Wall time and peak memory (RSS summed over the process tree, sampled every 0.2 s) of
   ``gen-measures run`` on a zoo of >= 64 models with ``--workers 1`` and ``--workers 2``, and
   their ratio (target: 2 workers >= 1.7x faster on 2 cores).
2. Reading and sampling a 50 000-example CIFAR-shaped training split (generated here):
   the former per-example Python loop over ``tf.data`` against the batched reader, for the whole
   split and for a 2000-example stratified sample (labels first, then only the chosen inputs).

Usage: ``python benchmarks/bench_runner.py [ZOO] [--measures NAMES] [--examples 50000] [--skip-data]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def _tree_rss(proc) -> int:
    import psutil

    try:
        p = psutil.Process(proc.pid)
        return sum(q.memory_info().rss for q in [p] + p.children(recursive=True))
    except psutil.Error:
        return 0


def timed_run(zoo: Path, measures: str, workers: int, out: Path) -> tuple[float, float]:
    cmd = [sys.executable, "-m", "gen_measures", "run", str(zoo), "--measures", measures, "--workers", str(workers),
           "--output", str(out), "--fresh", "--quiet", "--fuse", ""]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _tree_rss(proc))
        time.sleep(0.2)
    seconds = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        raise SystemExit(f"run failed ({proc.returncode}): {proc.stderr.read()[-2000:]}")
    return seconds, peak / 2**20


def bench_workers(zoo: Path, measures: str) -> None:
    from gen_measures.io.pgdl import discover_tasks

    n = sum(len(t.model_ids) for t in discover_tasks(zoo))
    print(f"== runner: {n} models of {zoo}, measures {measures}, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        figures = {w: timed_run(zoo, measures, w, Path(tmp) / f"w{w}") for w in (1, 2)}
    for w, (s, mb) in figures.items():
        print(f"--workers {w}: {s:7.1f} s wall, peak RSS {mb:7.0f} MiB (process tree)")
    ratio = figures[1][0] / figures[2][0]
    print(f"speed-up of 2 workers over 1: {ratio:.2f}x (target >= 1.7x){'' if ratio >= 1.7 else '  -- target NOT met'}")


def _old_read_split(split_dir: Path):
    """The reader before the batched one: one ``as_numpy_iterator`` step per example (reference only)."""
    import tensorflow as tf

    from gen_measures.io.tfrecords import shard_paths

    spec = {"inputs": tf.io.FixedLenFeature([], tf.string), "output": tf.io.FixedLenFeature([], tf.string)}

    def parse(record):
        ex = tf.io.parse_single_example(record, spec)
        return tf.io.parse_tensor(ex["inputs"], tf.float32), tf.io.parse_tensor(ex["output"], tf.int32)

    xs, ys = [], []
    for shard in shard_paths(split_dir):
        for x, y in tf.data.TFRecordDataset(str(shard)).map(parse).as_numpy_iterator():
            xs.append(x)
            ys.append(int(np.asarray(y).reshape(-1)[0]))
    return np.stack(xs), np.asarray(ys)


def bench_reading(n: int) -> None:
    from gen_measures.io.tfrecords import ArrayDataset, read_labels, read_split, write_split
    from gen_measures.sampling import stratified_sample_indices

    print(f"\n== reading a {n}-example 32x32x3 float32 training split (generated)")
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        split = Path(tmp) / "train"
        t0 = time.perf_counter()
        write_split(split, ArrayDataset(rng.random((n, 32, 32, 3), dtype=np.float32), rng.integers(0, 10, n)), n_shards=10)
        print(f"generated in {time.perf_counter() - t0:.1f} s ({sum(p.stat().st_size for p in split.iterdir()) / 2**20:.0f} MiB)")
        t0 = time.perf_counter()
        x_old, y_old = _old_read_split(split)
        old = time.perf_counter() - t0
        t0 = time.perf_counter()
        full = read_split(split)
        new_full = time.perf_counter() - t0
        t0 = time.perf_counter()
        labels, sizes = read_labels(split, shard_sizes=True)
        idx = stratified_sample_indices(labels, 2000, 0)
        sample = read_split(split, idx, shard_sizes=sizes)
        new_sample = time.perf_counter() - t0
        assert np.array_equal(full.x, x_old) and np.array_equal(sample.x, x_old[idx]) and np.array_equal(sample.y, y_old[idx])
    print(f"before (per-example loop, whole split):        {old:7.2f} s")
    print(f"after  (batched tf.data, whole split):         {new_full:7.2f} s   {old / new_full:5.1f}x faster")
    print(f"after  (labels, then 2000 sampled inputs only): {new_sample:7.2f} s   {old / new_sample:5.1f}x faster than reading all before")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("zoo", nargs="?", default=str(REPO / "sample_data"))
    parser.add_argument("--measures", default="default")
    parser.add_argument("--examples", type=int, default=50_000)
    parser.add_argument("--skip-data", action="store_true")
    parser.add_argument("--skip-workers", action="store_true")
    args = parser.parse_args()
    if not args.skip_workers:
        bench_workers(Path(args.zoo), args.measures)
    if not args.skip_data:
        bench_reading(args.examples)


if __name__ == "__main__":
    main()
