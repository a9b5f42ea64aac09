"""What a change of the ``sharpness`` definition would cost and change: variants side by side.

Run: ``python benchmarks/bench_sharpness_variants.py [ZOO] [--variants JSON] [--seeds 0,1]``
(default ZOO: the bundled ``sample_data/``; about 30 s per variant and seed there). Run it alone.

The issue-15 cost target for ``sharpness`` (8 warm forward passes per model) is not reached
with the definition as it stands (two 128-example sign-gradient ascent steps per attack, a
drop window of 0.005); this script measures what candidate definitions would give, for a
decision on the definition rather than on the code. For each variant (options of
:func:`gen_measures.measures.sharpness.worst_case_sharpness`, e.g. ``{"ascent_steps": 1}``)
and seed, on every model of the zoo (:func:`gen_measures.measures.sharpness.sharpness_search`):

* ``attacks``: evaluated scales per model; ``passes``: examples evaluated / sample size per
  model (a gradient example counts 3), a machine-independent cost; ``s``: seconds in the
  searches of the whole zoo (wall clock, this process, after a warm-up run that traces each
  architecture's functions);
* ``tau(default)``: Kendall tau of the variant's values against the default definition's of
  the same seed, per task; ``tau(seeds)``: the variant's own seed-to-seed tau (first two
  seeds), its noise;
* ``CMI``, ``tau_gap``: the official CMI x100 and Kendall tau-a of the value ``1 / alpha^2``
  against the generalization gap (:func:`scoring.report.evaluate`), per task.

Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parents[1]
DEFAULT_VARIANTS = {
    "default": {},
    "tolerance 0.01": {"tolerance": 0.01},
    "1 ascent step": {"ascent_steps": 1},
    "1 step, tolerance 0.01": {"ascent_steps": 1, "tolerance": 0.01},
}


def run_variant(tasks, options: dict, seed: int, batch_size: int) -> tuple[dict[str, dict[str, dict]], float]:
    """Per task, per model: ``{"alpha", "attacks", "passes"}``; and the seconds spent in the searches."""
    from gen_measures.context import ModelContext, release_keras_state, task_sample
    from gen_measures.measures.sharpness import sharpness_search

    out: dict[str, dict[str, dict]] = {}
    seconds = 0.0
    for task in tasks:
        sample = task_sample(task, 2000, seed)
        out[task.name] = {}
        for mid in task.model_ids:
            ctx = ModelContext.from_task(task, mid, sample, load_initial=False, seed=seed, batch_size=batch_size)
            ctx.logits()  # the pass every run makes anyway
            t0 = time.perf_counter()
            result = sharpness_search(ctx, **options)
            seconds += time.perf_counter() - t0
            out[task.name][mid] = {"alpha": result.scale, "attacks": result.evaluations, "passes": result.passes}
            release_keras_state()
    return out, seconds


def kendall(a: dict[str, dict], b: dict[str, dict]) -> float:
    from scipy.stats import kendalltau

    ids = sorted(set(a) & set(b))
    return float(kendalltau([a[i]["alpha"] for i in ids], [b[i]["alpha"] for i in ids])[0])


def gap_scores(values: dict[str, dict], reference) -> tuple[float, float]:
    """``(official CMI x100, Kendall tau-a)`` of ``1 / alpha^2`` against the gap (NaN without a reference)."""
    if reference is None:
        return float("nan"), float("nan")
    from scoring.report import evaluate

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = evaluate({m: 1.0 / v["alpha"] ** 2 for m, v in values.items()}, reference, 1, allow_partial=True,
                       n_permutations=0)
    return 100 * float(out["cmi_official"]), float(out["kendall_tau_a"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("zoo", nargs="?", default=str(REPO / "sample_data"))
    parser.add_argument("--variants", type=json.loads, default=DEFAULT_VARIANTS,
                        help="JSON {name: {worst_case_sharpness options}} (default: %(default)s)")
    parser.add_argument("--seeds", default="0,1", help="comma-separated seeds (default 0,1)")
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args(argv)

    from gen_measures.io.pgdl import discover_tasks

    tasks = discover_tasks(args.zoo)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    variants = dict(args.variants)
    if "default" not in variants:
        variants = {"default": {}, **variants}
    references = {t.name: t.read_reference() for t in tasks}
    print(f"zoo {args.zoo}: {len(tasks)} tasks, {sum(len(t.model_ids) for t in tasks)} models; seeds {seeds}")
    # the first search of an architecture traces its functions (0.2-0.4 s each): a warm-up run
    # keeps that out of the first variant's seconds
    _, warmup = run_variant(tasks, {}, seeds[0], args.batch_size)
    print(f"  warm-up (the default, seed {seeds[0]}; traces each architecture's functions): {warmup:.1f} s")
    runs, seconds_of = {}, {}
    for name, options in variants.items():
        for seed in seeds:
            runs[name, seed], seconds_of[name, seed] = run_variant(tasks, options, seed, args.batch_size)
            print(f"  {name} (seed {seed}): {seconds_of[name, seed]:.1f} s", flush=True)

    head = f"{'variant':26s} {'task':12s} {'attacks':>7s} {'passes':>7s} {'s':>6s} {'tau(default)':>12s} " \
           f"{'tau(seeds)':>10s} {'CMI':>6s} {'tau_gap':>7s}"
    print("\n" + head + "\n" + "-" * len(head))
    first = seeds[0]
    for name in variants:
        for task in tasks:
            per_seed = [runs[name, s][task.name] for s in seeds]
            attacks = np.mean([np.mean([v["attacks"] for v in r.values()]) for r in per_seed])
            passes = np.mean([np.mean([v["passes"] for v in r.values()]) for r in per_seed])
            seconds = np.mean([seconds_of[name, s] for s in seeds])
            vs_default = np.mean([kendall(runs[name, s][task.name], runs["default", s][task.name]) for s in seeds])
            noise = kendall(per_seed[0], per_seed[1]) if len(seeds) > 1 else float("nan")
            cmi, tau_gap = np.mean([gap_scores(r, references[task.name]) for r in per_seed], axis=0)
            print(f"{name:26s} {task.name[:12]:12s} {attacks:7.2f} {passes:7.1f} {seconds:6.1f} {vs_default:12.3f} "
                  f"{noise:10.3f} {cmi:6.2f} {tau_gap:+7.3f}")
    print(f"\nattacks, passes: per model, mean over seeds; s: seconds in the searches of the whole zoo, mean over "
          f"seeds; tau(default): against the default definition, same seed (mean over seeds); tau(seeds): seed "
          f"{first} against seed {seeds[1] if len(seeds) > 1 else '-'}; CMI (x100), tau_gap: against the gap, mean "
          f"over seeds")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
