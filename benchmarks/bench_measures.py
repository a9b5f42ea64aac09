"""Every core measure and every baseline on one zoo, in one run: scores and cost side by side.

Run: ``python benchmarks/bench_measures.py [ZOO] [--sample-size N] [--seed S] [--measures all]``
(rows sorted by CMI, best first)
(default ZOO: the bundled ``sample_data/``; a ``gen-measures make-zoo OUT --preset bench`` zoo
works the same way). It takes several minutes on the sample zoo: run it alone (the machine's
cores are shared and the costs are wall-clock).

One call to :func:`gen_measures.runner.compute` computes every selected measure on every model
(measures of one model share its context, as in a real run: a measure that reuses another's
cached forward pass is cheaper here than alone). Then, per measure, the table shows:

* ``CMI``: the official PGDL conditional mutual information x100, mean over tasks, and per task
  (:func:`scoring.report.evaluate`, key ``cmi_official``);
* ``pct:<task>``: the percentile of the task's official CMI among 200 random permutations of
  the values (how far from chance), and ``pct`` its mean over tasks;
* ``cleanCMI``: Jiang et al.'s clean CMI x100 (min over |S| = 2), mean over tasks;
* ``tau_a``: Kendall tau-a between the measure (direction applied) and the gap, mean over tasks;
* ``s/model``: mean wall-clock seconds per model;
* ``FPE``: that cost in forward-pass equivalents, ``seconds / forward``, where ``forward`` is
  the time of one *cold* forward pass of the same model over the same sample (a fresh context's
  first ``predict``: building and compiling the inference function included, as every measure's
  first pass includes it), median over the task's models; the warm forward time is printed too.
  In one run, measures share the model's cached passes (compression's layer pass serves
  discrimination, the feature pass serves the P-vector...), so these in-run costs understate a
  measure computed alone;
* ``FPEalone``: the cost of the measure computed *alone* on a fresh context (nothing cached),
  divided by the cold forward pass of the same model, mean over ``--alone-models`` models per
  task (default 2, spread over the task). The core cost targets are checked on this column.

Below the table: the FPE cost targets of the core measures (P-vector <= 1.5, saturation <= 2,
pseudo-validation <= 2, sharpness <= 60) with the measured values, the flatness targets in warm
forward passes (``pacbayes_sharpness`` <= 12, ``sharpness`` <= 8), checked on an *interleaved*
measurement (each model's warm forward pass timed just before the measure, in this process: on a
shared machine the run's forward passes, timed before it, can be off by 2x either way), split
into the models whose measure traced nothing (the architecture's functions already compiled in
this process: a zoo's steady state) and those whose measure traced (the first model of each
architecture; the bundled zoo has 4 models per architecture), and the peak resident memory of
this process (``resource.getrusage``).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import resource
import statistics
import sys
import time
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ZOO = REPO / "sample_data"

#: Core-measure cost targets in forward-pass equivalents (issue specs).
FPE_TARGETS = {
    "pvector_angle": 1.5,
    "saturation": 2.0,
    "pseudo_validation_gap": 2.0,
    "pseudo_validation_error": 2.0,
    "sharpness": 60.0,
}
#: Flatness cost targets in warm forward passes, in the run (issue 15).
WARM_FPE_TARGETS = {"pacbayes_sharpness": 12.0, "sharpness": 8.0}

try:  # scoring is written in parallel; keep the script usable against its documented interface
    from scoring.report import evaluate
except ImportError:  # pragma: no cover - depends on the checkout
    evaluate = None


def forward_times(task, sample, seed: int, batch_size: int) -> tuple[float, float]:
    """(median cold, median warm) seconds of one forward pass over ``sample``, over the task's models."""
    from gen_measures.context import ModelContext
    from gen_measures.context import release_keras_state as _release_model

    cold, warm = [], []
    for mid in task.model_ids:
        ctx = ModelContext.from_task(task, mid, sample, load_initial=False, seed=seed, batch_size=batch_size)
        t0 = time.perf_counter()
        ctx.predict(ctx.x)
        cold.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ctx.predict(ctx.x)
        warm.append(time.perf_counter() - t0)
        _release_model()
    return statistics.median(cold), statistics.median(warm)


def standalone_fpe(tasks, specs, sample_size: int, seed: int, batch_size: int, per_task: int) -> dict[str, float]:
    """Mean over a few models of (seconds of the measure alone on a fresh context) / (cold forward pass)."""
    from gen_measures.context import ModelContext, task_sample
    from gen_measures.context import release_keras_state as _release_model

    ratios: dict[str, list[float]] = {s.name: [] for s in specs}
    for task in tasks:
        sample = task_sample(task, sample_size, seed)
        ids = list(task.model_ids)
        picks = [ids[round(i * (len(ids) - 1) / max(per_task - 1, 1))] for i in range(min(per_task, len(ids)))]
        for mid in dict.fromkeys(picks):
            ctx = ModelContext.from_task(task, mid, sample, load_initial=False, seed=seed, batch_size=batch_size)
            t0 = time.perf_counter()
            ctx.predict(ctx.x)
            cold = time.perf_counter() - t0
            _release_model()
            for spec in specs:
                ctx = ModelContext.from_task(task, mid, sample, load_initial="init_weights" in spec.needs, seed=seed,
                                             batch_size=batch_size)
                t0 = time.perf_counter()
                try:
                    spec.func(ctx)
                except Exception:  # noqa: BLE001 - a failing measure has no cost figure
                    _release_model()
                    continue
                ratios[spec.name].append((time.perf_counter() - t0) / cold)
                _release_model()
    return {k: float(np.mean(v)) if v else math.nan for k, v in ratios.items()}


def interleaved_warm_fpe(tasks, names, sample_size: int, seed: int,
                         batch_size: int) -> dict[str, list[tuple[float, bool]]]:
    """Per model and measure: ``(seconds of the measure on the model's context / its warm forward
    pass timed just before (median of 3), whether the measure traced a function)``, model after
    model in this process, so both figures see the same load of a shared machine. Each measure
    gets a fresh context of the model (nothing cached but the architecture's compiled functions,
    which the first model of an architecture compiles inside the measure's time, as in a run;
    :attr:`~gen_measures.traces.ArchitectureTraces.traced` tells which calls did)."""
    from gen_measures.context import ModelContext, task_sample
    from gen_measures.context import release_keras_state as _release_model
    from gen_measures.registry import get_measure

    ratios: dict[str, list[tuple[float, bool]]] = {n: [] for n in names}
    for task in tasks:
        sample = task_sample(task, sample_size, seed)
        for mid in task.model_ids:
            for name in names:
                ctx = ModelContext.from_task(task, mid, sample, load_initial=False, seed=seed, batch_size=batch_size)
                ctx.logits()  # the cached pass every run makes anyway (the searches take acc0 from it)
                times = []
                for _ in range(3):
                    t0 = time.perf_counter()
                    ctx.predict(ctx.x)
                    times.append(time.perf_counter() - t0)
                traces = ctx.traces()
                before = traces.traced if traces is not None else frozenset()
                t0 = time.perf_counter()
                get_measure(name).func(ctx)
                seconds = time.perf_counter() - t0
                traced = traces is not None and traces.traced != before
                ratios[name].append((seconds / statistics.median(times), traced))
                _release_model()
    return ratios


def split_costs(costs: list[tuple[float, bool]]) -> dict[str, float]:
    """Median and mean of the interleaved costs; mean and count of the models whose measure
    traced nothing (every function already compiled: the steady state of a zoo with many models
    per architecture) and of those whose measure traced."""
    every = [c for c, _ in costs]
    warm = [c for c, traced in costs if not traced]
    cold = [c for c, traced in costs if traced]

    def mean(v: list[float]) -> float:
        return float(np.mean(v)) if v else math.nan

    return {"median": float(np.median(every)) if every else math.nan, "mean": mean(every), "warm": mean(warm),
            "n_warm": len(warm), "traced": mean(cold), "n_traced": len(cold)}


def score(values: Mapping[str, float], reference, direction: int) -> dict[str, float]:
    """``cmi_official``, ``cmi_clean``, ``kendall_tau_a`` (NaN when scoring is unavailable or fails)."""
    keys = ("cmi_official", "cmi_clean", "kendall_tau_a", "cmi_percentile", "n_models")
    if evaluate is None or reference is None:
        return {k: math.nan for k in keys}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            out = evaluate(values, reference, direction, allow_partial=True, n_permutations=200)
        except Exception as exc:  # noqa: BLE001 - a measure that cannot be scored is shown as NaN
            logging.getLogger(__name__).warning("scoring failed: %s", exc)
            return {k: math.nan for k in keys}
    return {k: float(out.get(k, math.nan)) for k in keys}


def fmt(v: float, spec: str = ".2f") -> str:
    return "nan" if v is None or not math.isfinite(v) else format(v, spec)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("zoo", nargs="?", default=str(DEFAULT_ZOO), help="task folder, folder of tasks or competition root")
    parser.add_argument("--measures", default="all", help="measure names or groups (default: all)")
    parser.add_argument("--sample-size", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--alone-models", type=int, default=2, help="models per task timed alone (0 skips)")
    parser.add_argument("--workers", default="1", help="worker processes of the run (default 1; 'auto' = one per "
                        "core: the costs are then those of a worker with its share of the cores, and the forward "
                        "passes they are divided by are timed with the same thread count)")
    parser.add_argument("--model-timeout", type=float, default=3600.0,
                        help="seconds one model's measures may take (default 3600: the catalogue's Hessian "
                             "measures take minutes on the bench preset's larger models)")
    args = parser.parse_args(argv)
    from gen_measures.runner.compute import _workers

    workers = _workers(args.workers)
    if workers > 1:  # the forward passes below are the unit of the workers' costs: same thread count
        from gen_measures.runner.executors import threads_per_worker
        from gen_measures.runner.worker import configure_threads

        configure_threads(threads_per_worker(workers))

    from gen_measures.context import task_sample
    from gen_measures.io.pgdl import discover_tasks
    from gen_measures.registry import resolve_measures
    from gen_measures.runner import compute

    warnings.simplefilter("ignore")
    logging.basicConfig(level=logging.ERROR)
    tasks = discover_tasks(args.zoo)
    specs = resolve_measures(args.measures)
    n_models = sum(len(t.model_ids) for t in tasks)
    print(f"zoo {args.zoo}: {len(tasks)} tasks, {n_models} models; {len(specs)} measures; "
          f"sample_size={args.sample_size}, seed={args.seed}; load average {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} cores; scoring {'available' if evaluate else 'NOT importable (NaN scores)'}")

    fwd = {}
    for task in tasks:
        sample = task_sample(task, args.sample_size, args.seed)
        fwd[task.name] = forward_times(task, sample, args.seed, args.batch_size)
        print(f"  {task.name}: {sample[0].shape[0]} examples; forward pass cold {fwd[task.name][0] * 1e3:.1f} ms, "
              f"warm {fwd[task.name][1] * 1e3:.1f} ms (median over models)")

    t0 = time.perf_counter()
    last = [time.perf_counter()]

    def progress(done, total, label):
        if time.perf_counter() - last[0] > 30:
            print(f"  ... {done}/{total} models ({label}), {time.perf_counter() - t0:.0f} s", flush=True)
            last[0] = time.perf_counter()

    results = compute(tasks=tasks, measures=[s.name for s in specs], sample_size=args.sample_size, seed=args.seed,
                      batch_size=args.batch_size, progress=progress, workers=workers, model_timeout=args.model_timeout)
    wall = time.perf_counter() - t0
    references = {t.name: t.read_reference() for t in tasks}
    alone = (standalone_fpe(tasks, specs, args.sample_size, args.seed, args.batch_size, args.alone_models)
             if args.alone_models > 0 else {s.name: math.nan for s in specs})

    task_names = [t.name for t in tasks]
    header = (f"{'measure':26s} {'family':8s} {'dir':>3s} {'CMI':>6s} "
              + " ".join(f"{('CMI:' + n)[:12]:>12s}" for n in task_names) + " "
              + " ".join(f"{('pct:' + n)[:10]:>10s}" for n in task_names)
              + f" {'cleanCMI':>8s} {'tau_a':>6s} {'pct':>5s} {'s/model':>8s} {'FPE':>6s} {'FPEwarm':>7s} {'FPEalone':>8s} {'ok':>7s}")
    lines = [header, "-" * len(header)]
    ranked = []
    warm: dict[str, float] = {}
    for spec in specs:
        rows = results[results.measure == spec.name]
        per_task, fpes, fpes_warm = {}, [], []
        for task in tasks:
            r = rows[rows.task == task.name]
            values = {str(m): float(v) for m, v in zip(r.model, r.value) if np.isfinite(v)}
            per_task[task.name] = score(values, references[task.name], spec.direction)
            if len(r):
                fpes.append(float(r.seconds.mean()) / fwd[task.name][0])
                fpes_warm.append(float(r.seconds.mean()) / fwd[task.name][1])
        mean = {k: float(np.nanmean([d[k] for d in per_task.values()])) if any(np.isfinite(d[k]) for d in per_task.values())
                else math.nan for k in ("cmi_official", "cmi_clean", "kendall_tau_a", "cmi_percentile")}
        fpe = float(np.mean(fpes)) if fpes else math.nan
        fpe_warm = float(np.mean(fpes_warm)) if fpes_warm else math.nan
        warm[spec.name] = fpe_warm
        ok = int((rows.status == "ok").sum())
        key = mean["cmi_official"] if math.isfinite(mean["cmi_official"]) else -math.inf
        ranked.append((key,
            f"{spec.name:26s} {spec.family:8s} {'+' if spec.direction > 0 else '-':>3s} {fmt(100 * mean['cmi_official']):>6s} "
            + " ".join(f"{fmt(100 * per_task[n]['cmi_official']):>12s}" for n in task_names) + " "
            + " ".join(f"{fmt(per_task[n]['cmi_percentile'], '.0f'):>10s}" for n in task_names)
            + f" {fmt(100 * mean['cmi_clean']):>8s} {fmt(mean['kendall_tau_a'], '+.3f'):>6s} {fmt(mean['cmi_percentile'], '.0f'):>5s} "
            f"{fmt(float(rows.seconds.mean()) if len(rows) else math.nan, '.3f'):>8s} {fmt(fpe, '.1f'):>6s} {fmt(fpe_warm, '.0f'):>7s} "
            f"{fmt(alone[spec.name], '.1f'):>8s} {ok:>3d}/{len(rows):<3d}"
        ))
    lines += [line for _, line in sorted(ranked, key=lambda r: -r[0])]
    print()
    print("\n".join(lines))
    print("sorted by CMI (mean over tasks); pct = percentile of the official CMI among 200 permutations of the values "
          "(pct:<task> per task, pct their mean)")
    print("CMI, cleanCMI: x100; dir '+': higher value = larger predicted gap; FPE = s/model (in this run, caches shared) / "
          "cold forward pass over the same sample; FPEwarm = the same over a warm (already traced) forward pass, "
          "the strict view; FPEalone = the measure alone on a fresh context / cold forward pass")

    flat = [n for n in WARM_FPE_TARGETS if n in warm]
    inter = interleaved_warm_fpe(tasks, flat, args.sample_size, args.seed, args.batch_size) if flat else {}
    print("\nFlatness cost targets in warm forward passes: FPEwarm of the run above (forward passes timed "
          "before the run), and interleaved (each model's warm forward pass timed just before the measure, "
          "median / mean over models; then the mean over the models whose measure traced nothing, every "
          "function of the architecture already compiled, and over those whose measure traced, the first "
          "model of an architecture in the process):")
    for name, target in WARM_FPE_TARGETS.items():
        if name in warm:
            c = split_costs(inter.get(name, []))
            verdict = "ok" if math.isfinite(c["mean"]) and c["mean"] <= target else "OVER"
            print(f"  {name:26s} run {fmt(warm[name], '.1f'):>6s}   interleaved median {fmt(c['median'], '.1f'):>6s}, "
                  f"mean {fmt(c['mean'], '.1f'):>6s}  (target <= {target:g} on the mean)  {verdict}")
            print(f"  {'':26s} nothing traced: mean {fmt(c['warm'], '.1f')} on {c['n_warm']} models; "
                  f"traced: mean {fmt(c['traced'], '.1f')} on {c['n_traced']} models")
    print(f"\nFPE cost targets of the core measures (measure alone, {args.alone_models} models per task):")
    for name, target in FPE_TARGETS.items():
        if name in alone:
            value = alone[name]
            if not math.isfinite(value):
                print(f"  {name:26s} not measured (--alone-models {args.alone_models}, or the measure failed alone)")
                continue
            verdict = "ok" if value <= target else "OVER"
            print(f"  {name:26s} {fmt(value, '.2f'):>8s} FPE  (target <= {target:g})  {verdict}")
    failed = results[results.status != "ok"]
    if len(failed):
        print(f"\n{len(failed)} rows not ok; first messages:")
        for msg in failed.message.drop_duplicates().head(5):
            print(f"  {msg}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_mb = peak / 1024 if sys.platform != "darwin" else peak / 2**20
    print(f"\ncompute: {wall:.0f} s wall for {n_models} models x {len(specs)} measures; peak memory (ru_maxrss) {peak_mb:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
