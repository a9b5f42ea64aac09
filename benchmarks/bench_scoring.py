"""Benchmark of ``scoring``: vectorised official CMI vs a plain loop, and a 1000-model zoo.

Run: ``python benchmarks/bench_scoring.py``. Prints, side by side:

1. the official PGDL CMI of one measure on a 96-model, 7-hyperparameter complete grid (the
   public task1_v4 anchor when ``../shared/anchors`` is present, else a synthetic grid), by a
   straightforward pure-Python loop written here from the definition (GUIDE.md section 2) and
   by :func:`scoring.cmi.conditional_mutual_information`; target ratio >= 50x;
2. :func:`scoring.report.evaluate` (every metric, 200 permutations) on a synthetic
   1000-model complete grid; target < 2 s. The permutation baseline stops counting a
   permutation as soon as it scores below the measure, so a random measure (shown too) is its
   slowest case.

Wall-clock times depend on the machine's load (the load average is printed); the CPU time of
this process is printed too.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from scoring.model_configs import ModelConfigs, canonical_model_id, read_model_configs
from scoring.cmi import conditional_mutual_information
from scoring.report import evaluate

ANCHORS = Path(__file__).resolve().parents[1] / ".." / "shared" / "anchors" / "pgdl_public"


def loop_official_cmi(prediction: dict, specs: dict, possible_values: dict) -> float:
    """The official CMI as the competition computed it: nested Python loops over every pair."""
    names = list(possible_values)
    ids = list(specs)
    running = math.inf
    for h1 in names:
        for h2 in names:
            if h1 == h2:
                continue
            slice_names = [
                str(v) + str(w) + str(x) + str(y)
                for v in possible_values[h1] for w in possible_values[h1]
                for x in possible_values[h2] for y in possible_values[h2]
            ]
            position = {name: k for k, name in enumerate(slice_names)}
            table = np.zeros((2, 2, len(slice_names)))
            for i in ids:
                for j in ids:
                    name = str(specs[i]["hp"][h1]) + str(specs[j]["hp"][h1]) + str(specs[i]["hp"][h2]) + str(specs[j]["hp"][h2])
                    if name not in position:
                        continue
                    a = 0 if specs[i]["gap"] > specs[j]["gap"] else 1
                    b = 0 if prediction[i] > prediction[j] else 1
                    table[a, b, position[name]] += 1
            mi_sum = h_sum = 0.0
            for k in range(table.shape[2]):
                t = table[:, :, k]
                total = t.sum()
                rows, cols = t.sum(axis=1), t.sum(axis=0)
                p = rows / total
                h_sum += -np.sum(p * np.log2(p + 1e-12))
                for a in range(2):
                    for b in range(2):
                        joint = t[a, b] / total
                        if joint != 0:
                            mi_sum += joint * np.log2(joint / ((rows[a] / total) * (cols[b] / total)))
            score = (mi_sum / table.shape[2]) / (h_sum / table.shape[2])
            running = running if running < score else score
    return float(running)


def task_96() -> tuple[str, ModelConfigs, dict[str, float]]:
    ref_path = ANCHORS / "reference_data" / "task1_v4" / "model_configs.json"
    if ref_path.is_file():
        ref = read_model_configs(ref_path)
        raw = json.loads((ANCHORS / "predictions" / "RBF" / "task1_v4.predict").read_text())
        return "anchor task1_v4 (RBF predictions)", ref, {canonical_model_id(k): float(v) for k, v in raw.items()}
    ref, values = synthetic_grid([2, 2, 3, 2, 2, 2, 1], seed=0)
    return "synthetic 96-model grid", ref, values


def synthetic_grid(sizes: list[int], seed: int) -> tuple[ModelConfigs, dict[str, float]]:
    rng = np.random.default_rng(seed)
    pv = {f"h{k}": list(range(s)) for k, s in enumerate(sizes)}
    cells = list(itertools.product(*pv.values()))
    effect = rng.normal(size=len(sizes))
    gaps = np.array([np.dot(effect, c) for c in cells]) * 0.02 + rng.normal(0, 0.02, len(cells)) + 0.2
    ref = ModelConfigs(
        path=None,
        possible_values=pv,
        hparams={str(i): dict(zip(pv, c)) for i, c in enumerate(cells)},
        metrics={str(i): {"train_acc": 1.0, "test_acc": 1.0 - float(g)} for i, g in enumerate(gaps)},
    )
    values = {str(i): float(g + rng.normal(0, 0.03)) for i, g in enumerate(gaps)}
    return ref, values


def timed(fn, repeat: int) -> tuple[float, float, object]:
    """(median wall seconds, median CPU seconds, last result) over ``repeat`` runs."""
    walls, cpus, out = [], [], None
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus), out


def main() -> int:
    warnings.simplefilter("ignore")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"scoring benchmark (python {sys.version.split()[0]}, numpy {np.__version__}, {os.cpu_count()} CPUs, load average {load:.2f})")

    label, ref, values = task_96()
    ids = ref.model_ids
    gaps = ref.gaps()
    specs = {i: {"hp": ref.hparams[i], "gap": gaps[i]} for i in ids}
    frame = ref.hparams_frame()
    vec = [values[i] for i in ids]
    loop_wall, loop_cpu, loop_score = timed(lambda: loop_official_cmi(values, specs, ref.possible_values), 1)
    fast_wall, fast_cpu, fast_score = timed(
        lambda: conditional_mutual_information(vec, gaps.to_numpy(), frame, "official", possible_values=ref.possible_values), 7
    )
    print(f"\n1) official CMI, {label}: {len(ids)} models, {len(ref.hparam_names)} hyperparameters")
    print(f"   {'':24s}{'wall [s]':>12s}{'cpu [s]':>12s}{'score':>18s}")
    print(f"   {'pure-Python loop':24s}{loop_wall:12.4f}{loop_cpu:12.4f}{loop_score:18.12f}")
    print(f"   {'scoring.cmi (median/7)':24s}{fast_wall:12.4f}{fast_cpu:12.4f}{fast_score:18.12f}")
    ratio = loop_wall / fast_wall
    print(f"   speed-up {ratio:.0f}x (wall), {loop_cpu / fast_cpu:.0f}x (cpu); target >= 50x: {'PASS' if ratio >= 50 else 'FAIL'}; "
          f"|difference| = {abs(loop_score - fast_score):.1e}")

    big_ref, big_values = synthetic_grid([2, 4, 5, 5, 5], seed=1)
    wall, cpu, metrics = timed(lambda: evaluate(big_values, big_ref, 1, n_permutations=200, seed=0), 3)
    print(f"\n2) evaluate(): every metric incl. 200 permutations, synthetic {len(big_ref.model_ids)}-model grid "
          f"({' x '.join(str(len(v)) for v in big_ref.possible_values.values())})")
    print(f"   wall {wall:.3f} s (median of 3), cpu {cpu:.3f} s; target < 2 s: {'PASS' if wall < 2 else 'FAIL'}")
    shown = ["cmi_official", "cmi_clean", "cmi_percentile", "kendall_tau_a", "granulated_psi", "sign_error_mean"]
    print("   " + ", ".join(f"{k}={metrics[k]:.4f}" for k in shown))
    rng = np.random.default_rng(2)
    noise = {k: float(rng.random()) for k in big_values}
    wall_r, cpu_r, metrics_r = timed(lambda: evaluate(noise, big_ref, 1, n_permutations=200, seed=0), 1)
    print(f"   same zoo, a random measure (the permutation baseline's worst case: few early exits): "
          f"wall {wall_r:.3f} s, cpu {cpu_r:.3f} s, cmi_percentile={metrics_r['cmi_percentile']:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
