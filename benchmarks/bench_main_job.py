"""The README's main job, timed: ``gen-measures run sample_data --workers auto`` from a fresh store.

Run: ``python benchmarks/bench_main_job.py [--against REV] [--rounds N]``

Prints the wall-clock seconds of the main job (what the README states), the seconds its
measures took per model (from the run's ``results.csv``) and, with ``--against REV``, the
same for another revision of this repository, checked out in a temporary git worktree and run
with the same interpreter and packages, the two alternating for ``--rounds`` rounds so that both
see the same machine (these machines are shared: compare the ratio, not the seconds across
sessions). Nothing is asserted; run it alone (it uses both cores).
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_once(tree: Path, out: Path) -> tuple[float, dict[str, float]]:
    """Wall seconds of the main job run from ``tree``'s code, and its measures' seconds per model."""
    env = dict(os.environ, PYTHONPATH=str(tree), TF_CPP_MIN_LOG_LEVEL="3")
    cmd = [sys.executable, "-m", "gen_measures", "run", str(REPO / "sample_data"), "--workers", "auto",
           "--output", str(out), "--fresh", "--quiet"]
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=tree, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    seconds: dict[str, list[float]] = defaultdict(list)
    with open(out / "results.csv", newline="") as f:
        for row in csv.DictReader(f):
            seconds[row["measure"]].append(float(row["seconds"]))
    return wall, {m: sum(v) / len(v) for m, v in seconds.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", metavar="REV", help="also time this git revision, alternating with the checkout")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each tree (default 1)")
    args = parser.parse_args(argv)

    trees = {"checkout": REPO}
    with tempfile.TemporaryDirectory(prefix="bench_main_job_") as tmp:
        tmp = Path(tmp)
        if args.against:
            other = tmp / "against"
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-f", str(other), args.against],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            trees[args.against] = other
        walls: dict[str, list[float]] = defaultdict(list)
        per_model: dict[str, dict[str, float]] = {}
        try:
            for r in range(args.rounds):
                for name, tree in trees.items():
                    wall, sec = run_once(tree, tmp / f"out_{len(walls[name])}_{name.replace('/', '_')}")
                    walls[name].append(wall)
                    per_model[name] = sec
                    print(f"round {r + 1}: {name}: {wall:.1f} s", flush=True)
        finally:
            if args.against:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(trees[args.against])],
                               check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(f"\nmain job (gen-measures run sample_data --workers auto, {os.cpu_count()} CPUs), median wall seconds:")
    for name in trees:
        print(f"  {name:<12} {statistics.median(walls[name]):7.1f} s  (runs: {', '.join(f'{w:.1f}' for w in walls[name])})")
    if args.against:
        ratio = statistics.median(walls[args.against]) / statistics.median(walls["checkout"])
        print(f"  speed-up of the checkout over {args.against}: {ratio:.2f}x")
    measures = sorted({m for sec in per_model.values() for m in sec})
    print("\nmeasure seconds per model (last run of each tree):")
    print(f"  {'measure':<26}" + "".join(f"{name:>14}" for name in trees))
    for m in measures:
        print(f"  {m:<26}" + "".join(f"{per_model[name].get(m, float('nan')):>14.3f}" for name in trees))
    return 0


if __name__ == "__main__":
    sys.exit(main())
