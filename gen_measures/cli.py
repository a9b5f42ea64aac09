"""``gen-measures`` command line: argument parsing and presentation only.

Every command calls the public API; heavy modules (TensorFlow) are imported only by the
commands that need them, so ``gen-measures list`` and ``gen-measures score`` start fast.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from gen_measures.context import DEFAULT_BATCH_SIZE
from gen_measures.errors import GenMeasuresError
from gen_measures.pipeline import DEFAULT_FUSE, DEFAULT_OUTPUT
from gen_measures.runner.compute import DEFAULT_MODEL_TIMEOUT
from gen_measures.sampling import DEFAULT_SAMPLE_SIZE, DEFAULT_SEED

log = logging.getLogger("gen_measures")




def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


class Progress:
    """One self-overwriting line on stderr (plain lines when stderr is not a terminal)."""

    def __init__(self, what: str, stream=None) -> None:
        self.what = what
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.start = time.perf_counter()
        self.last = -1.0

    def __call__(self, done: int, total: int, label: str) -> None:
        now = time.perf_counter()
        elapsed = now - self.start
        if not self.tty and done < total and now - self.last < 5.0 and done != 0:
            return
        self.last = now
        eta = f", ~{elapsed / done * (total - done):.0f} s left" if 0 < done < total else ""
        line = f"{self.what}: {done}/{total} models ({elapsed:.0f} s{eta}) {label}"
        if self.tty:
            self.stream.write("\r\033[K" + line + ("\n" if done >= total else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


# ----------------------------------------------------------------------------- commands
def cmd_list(args: argparse.Namespace) -> int:
    from gen_measures.registry import list_measures, plugin_failures, resolve_measures

    _load_plugins(args)
    specs = list_measures()
    default = {s.name for s in resolve_measures("default")}
    width = max(len(s.name) for s in specs)
    print(f"{'measure':<{width}}  {'family':<8}  {'default':<7}  {'direction':<20}  needs")
    for s in specs:
        needs = ",".join(sorted(s.needs)) or "-"
        print(f"{s.name:<{width}}  {s.family:<8}  {'yes' if s.name in default else 'no':<7}  {s.direction_text:<20}  {needs}")
        if args.long:
            print(f"{'':<{width}}  {s.summary}\n{'':<{width}}  ref: {s.reference}")
    print("\ngroups: default (core measures run by default), core, baselines, catalogue, plugins, all")
    for name, reason in plugin_failures():
        print(f"plug-in not loaded: {name}: {reason}")
    return 0


#: Short layer names for the `inspect` table (a legend is printed above it).
_LAYER_CODES = {
    "Conv2D": "C", "Dense": "D", "MaxPooling2D": "MP", "AveragePooling2D": "AP", "BatchNormalization": "BN",
    "Dropout": "Do", "Flatten": "F", "GlobalAveragePooling2D": "GAP", "GlobalMaxPooling2D": "GMP", "Activation": "A",
}


def cmd_inspect(args: argparse.Namespace) -> int:
    _quiet_tensorflow()
    import pandas as pd

    from gen_measures.io.pgdl import discover_tasks
    from gen_measures.io.summary import summarize_task

    for task in discover_tasks(args.path):
        s = summarize_task(task)
        print(f"task {s.name}  ({s.path})")
        print(f"  models: {len(s.models)}   input shape: {s.input_shape}   train examples: {s.n_train}   test examples: {s.n_test}")
        print(f"  grid: {s.grid.describe() if s.grid else 'no model_configs.json (no reference metrics)'}")
        if "gap" in s.models:
            g = s.models["gap"].astype(float)
            print(f"  generalization gap: min {g.min():.4f}  median {g.median():.4f}  max {g.max():.4f}")
        models = s.models.copy()
        used = sorted({name for text in models["layers"] for name in text.split()})
        if used:
            print("  layers: " + ", ".join(f"{_LAYER_CODES.get(n, n)}={n}" for n in used))
            models["layers"] = [
                "-".join(_LAYER_CODES.get(n, n) for n in text.split()) for text in models["layers"]
            ]
        with pd.option_context("display.width", 200, "display.max_columns", 30, "display.max_colwidth", 80):
            cols = [c for c in models.columns if c != "error" or models["error"].astype(bool).any()]
            width = max((len(str(v)) for v in models["layers"]), default=0)
            print(models[cols].to_string(float_format=lambda v: f"{v:.4f}", justify="left",
                                         formatters={"layers": lambda v: f"{v:<{width}}"}))
        print()
    return 0


def cmd_make_zoo(args: argparse.Namespace) -> int:
    _quiet_tensorflow()
    from gen_measures.io.zoo import make_zoo

    t0 = time.perf_counter()
    tasks = make_zoo(args.out, preset=args.preset, seed=args.seed, progress=Progress("training"), track=args.track)
    print(f"wrote {len(tasks)} task(s) to {args.out} in {time.perf_counter() - t0:.0f} s: " + ", ".join(t.name for t in tasks))
    return 0


def _load_plugins(args: argparse.Namespace) -> None:
    from gen_measures.registry import load_plugin_file, load_plugins

    load_plugins()
    for path in getattr(args, "plugin", None) or []:
        load_plugin_file(path)


def cmd_run(args: argparse.Namespace) -> int:
    _quiet_tensorflow()
    from gen_measures.io.pgdl import discover_tasks
    from gen_measures.pipeline import run, sample_data_path
    from gen_measures.registry import resolve_measures

    from gen_measures.pipeline import check_presets
    from gen_measures.runner.compute import check_arguments

    if args.max_params is not None:
        if args.max_params < 1:
            raise GenMeasuresError(f"--max-params: expected a whole number >= 1, got {args.max_params}")
        os.environ["GEN_MEASURES_MAX_PARAMS"] = str(args.max_params)  # worker processes inherit it
    check_arguments(sample_size=args.sample_size, seed=args.seed, batch_size=args.batch_size, workers=args.workers,
                    model_timeout=args.model_timeout or None, output=args.output)
    check_presets(args.fuse)
    _load_plugins(args)
    paths = args.paths or [sample_data_path()]
    specs = resolve_measures(args.measures)
    tasks = discover_tasks(paths)
    _say(args, f"{len(tasks)} task(s), {sum(len(t.model_ids) for t in tasks)} models, measures: {', '.join(s.name for s in specs)}")
    try:
        result = run(paths, measures=[s.name for s in specs], output=args.output, fuse=args.fuse,
                     sample_size=args.sample_size, seed=args.seed, batch_size=args.batch_size, workers=args.workers,
                     model_timeout=args.model_timeout or None, fresh=args.fresh, retry_failed=args.retry_failed,
                     dask_scheduler=args.dask_scheduler, progress=not args.quiet, report=args.report)
    except KeyboardInterrupt:
        return _interrupted(args.output)
    return _print_run(result, args)


def cmd_ingest(args: argparse.Namespace) -> int:
    _quiet_tensorflow()
    from gen_measures.pipeline import ingest, sample_data_path

    paths = args.paths or [sample_data_path()]
    try:
        result = ingest(args.submission, paths, output=args.output, seed=args.seed, workers=args.workers,
                        model_timeout=args.model_timeout or None, fresh=args.fresh, retry_failed=args.retry_failed,
                        dask_scheduler=args.dask_scheduler, progress=not args.quiet, report=args.report)
    except KeyboardInterrupt:
        return _interrupted(args.output)
    if not args.quiet:
        for row in result.results.itertuples():
            shown = f"{row.value:.6g}" if row.status == "ok" else f"{row.status}: {row.message}"
            print(f"{row.task}/model_{row.model}: {shown}  ({row.seconds:.1f} s)")
    return _print_run(result, args)


def _interrupted(output: str) -> int:
    print(f"\ninterrupted: every result computed so far is stored in {Path(output) / 'results.sqlite'}; "
          f"run the same command again to resume (or `gen-measures export {output}` to write the files "
          "from what is stored)", file=sys.stderr)
    return 130


def cmd_export_submission(args: argparse.Namespace) -> int:
    from gen_measures.submissions.export import export_submission

    _load_plugins(args)
    out = export_submission(args.measure, args.out_dir, sample_size=args.sample_size, seed=args.seed)
    print(f"wrote the submission for {args.measure} to {out} (complexity.py, metadata and the packages it needs)")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from gen_measures.pipeline import export

    result = export(args.output)
    _say(args, f"exported {len(result.results)} stored results of the last run in {args.output}")
    return _print_run(result, args)


def cmd_report(args: argparse.Namespace) -> int:
    _quiet_tensorflow()
    from gen_measures.pipeline import report

    path = report(args.run_dir, args.output, progress=not args.quiet)
    print(f"wrote {path}")
    return 0


def _say(args: argparse.Namespace, text: str) -> None:
    if not getattr(args, "quiet", False):
        print(text, file=sys.stderr)


def _print_run(result, args: argparse.Namespace) -> int:
    import pandas as pd

    from scoring.report import format_score_table

    with pd.option_context("display.width", 200, "display.max_columns", 40, "display.max_rows", args.max_rows):
        print(result.value_table().to_string(float_format=lambda v: f"{v:.5g}"))
    if len(result.scores):
        print("\nhow well each measure predicts the generalization gap:")
        print(format_score_table(result.scores))
    st = result.stats
    if st is not None and st.total:
        print(f"\n{st.total} results: {st.reused} reused from the store, {st.computed} computed"
              + (f" in {st.seconds:.0f} s" if st.computed else ""))
    print(f"wrote {result.output / 'results.csv'} and {result.output / 'predictions'}/<measure>/<task>.predict "
          f"(store: {result.output / 'results.sqlite'})")
    for path in result.files:
        if path.suffix == ".html":
            print(f"wrote the report {path}")
    return _report_failures(result.results)


def _report_failures(results) -> int:
    """Print one line per distinct failure or timeout; exit status 1 when any result failed."""
    from gen_measures.runner.measure import FAILED_STATUSES

    failed = results[results["status"].isin(FAILED_STATUSES)]
    for _, row in failed.drop_duplicates("message").iterrows():
        word = "TIMEOUT" if row["status"] == "timeout" else "FAILED"
        print(f"{word} {row['task']}/model_{row['model']} {row['measure']}: {row['message']}", file=sys.stderr)
    if len(failed):
        n_timeout = int((failed["status"] == "timeout").sum())
        print(f"{len(failed)} of {len(results)} results failed ({n_timeout} timed out)", file=sys.stderr)
        return 1
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from scoring.report import format_score_table, score_directories

    directions = None
    if args.direction_from_registry:
        from gen_measures.registry import list_measures

        directions = {s.name: s.direction for s in list_measures()}
    scores = score_directories(
        args.reference_dir, args.prediction_dir, args.output_dir, allow_partial=args.allow_partial, directions=directions
    )
    print(format_score_table(scores))
    print(f"\nwrote scores to {args.output_dir}")
    return 0


# ----------------------------------------------------------------------------- parser
def _add_runner_options(p: argparse.ArgumentParser, workers_help: str) -> None:
    """The options of the resumable runner, shared by `run` and `ingest`."""
    p.add_argument("--workers", "-j", default="1", help=workers_help)
    p.add_argument("--model-timeout", type=float, default=DEFAULT_MODEL_TIMEOUT, metavar="SECONDS",
                   help=f"time budget of one model's measures together; a model over it gets status=timeout rows and its "
                        f"worker is replaced (default {DEFAULT_MODEL_TIMEOUT:g}, the competition's; 0 = no limit)")
    p.add_argument("--fresh", action="store_true", help="recompute everything instead of reusing the results stored in --output")
    p.add_argument("--retry-failed", action="store_true", help="also recompute stored results whose status is error (timeouts always are)")
    p.add_argument("--dask-scheduler", metavar="ADDRESS", default=None,
                   help="compute on an existing dask.distributed cluster (e.g. tcp://host:8786; needs pip install -e '.[dask]')")
    p.add_argument("--report", nargs="?", const=True, default=False, metavar="HTML",
                   help="at the end, write the HTML report (default path: OUTPUT/report.html; see `gen-measures report`)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gen-measures",
        description="Predict the generalization of trained deep networks (PGDL format) and score the predictions.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("list", help="registered measures with direction, needs and references")
    p.add_argument("--long", "-l", action="store_true", help="also show summaries and references")
    p.add_argument("--plugin", action="append", metavar="FILE", help="also load measures from this .py file (repeatable)")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("inspect", help="models, layers, parameters, grid and gaps of task(s)")
    p.add_argument("path", help="task folder, folder of tasks or competition root")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("make-zoo", help="train a zoo on CPU and write it in the PGDL layout")
    p.add_argument("out", help="output folder (one sub-folder per task)")
    p.add_argument("--preset", default="sample", help="sample (bundled zoo), bench (96 models/task) or tiny (tests); default sample")
    p.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    p.add_argument("--track", action="store_true",
                   help="record each model's training curves (P-vector angles, layer saturation) in model_<id>/training_curves.csv")
    p.set_defaults(func=cmd_make_zoo)

    p = sub.add_parser("run", help="compute measures for every model; write predictions and results.csv")
    p.add_argument("paths", nargs="*", help="task folder(s), folder(s) of tasks or competition root(s) (default: the bundled sample_data/)")
    p.add_argument("--measures", "-m", default=None, help="comma-separated measure or group names (default: the 'default' group; see `gen-measures list`)")
    p.add_argument("--output", "-o", default=DEFAULT_OUTPUT, help=f"output folder (default {DEFAULT_OUTPUT}/)")
    p.add_argument("--sample-size", type=int, default=DEFAULT_SAMPLE_SIZE,
                   help=f"training examples per task that measures see (default {DEFAULT_SAMPLE_SIZE}; all when fewer)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"seed of the sample and of the measures' randomness (default {DEFAULT_SEED})")
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help=f"forward-pass batch size (default {DEFAULT_BATCH_SIZE})")
    p.add_argument("--plugin", action="append", metavar="FILE", help="also load measures from this .py file (repeatable)")
    _add_runner_options(p, "worker processes: a number, or 'auto' for one per core; "
                           "0 computes in this process without time budget or isolation (default 1)")
    p.add_argument("--max-params", type=int, default=None, metavar="N",
                   help="most parameters a model may have; larger models are an error before anything is allocated "
                        "(default 5e7, or the environment variable GEN_MEASURES_MAX_PARAMS)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.add_argument("--max-rows", type=int, default=80, help="rows of the value table printed (default 80)")
    p.add_argument("--fuse", default=DEFAULT_FUSE,
                   help="comma-separated fusion presets scored beside the measures when their measures were computed "
                        "(default pvalid_pvector: the seed paper's pseudo-validation + 0.05 x P-vector angle; '' for none)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "ingest", help="run an unmodified PGDL submission (complexity.py) over task(s), as the organizers' ingestion program did",
        description="Run a PGDL competition submission: a folder with complexity.py defining complexity(model, dataset) "
                    "(or complexity(model, dataset, program_dir)). Each model is built as the organizers' ingestion program "
                    "built it (a tf.keras 2 Sequential accepting tape=, layers remembering _last_seen_input, "
                    "model.initial_weights from weights_init.hdf5), the dataset is the unbatched training tf.data.Dataset "
                    "of (input, label), and the submission runs in worker processes with Keras 2 semantics (tf_keras). "
                    "Running a submission executes its code: run only submissions you trust. Values are stored as they "
                    "are computed (a killed ingest resumes), each model has --model-timeout seconds, and a model on "
                    "which the submission raises gets an error row while the others go on.")
    p.add_argument("submission", help="the submission folder (holding complexity.py)")
    p.add_argument("paths", nargs="*", help="task folder(s), folder(s) of tasks or competition root(s) (default: the bundled sample_data/)")
    p.add_argument("--output", "-o", default=DEFAULT_OUTPUT, help=f"output folder (default {DEFAULT_OUTPUT}/)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED,
                   help=f"seeds Python's random, numpy and TensorFlow before each model (default {DEFAULT_SEED})")
    _add_runner_options(p, "worker processes: a number >= 1 or 'auto' (default 1)")
    p.add_argument("--max-rows", type=int, default=80, help="rows of the value table printed (default 80)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar and no line per model")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("export-submission", help="write a registered measure as a self-contained PGDL submission folder")
    p.add_argument("measure", help="a registered measure name (see `gen-measures list`)")
    p.add_argument("out_dir", help="new folder for complexity.py, metadata and the copied packages")
    p.add_argument("--sample-size", type=int, default=DEFAULT_SAMPLE_SIZE, help=f"sample drawn from the dataset (default {DEFAULT_SAMPLE_SIZE})")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"seed of the sample and the measure (default {DEFAULT_SEED})")
    p.set_defaults(func=cmd_export_submission)

    p = sub.add_parser("export", help="write results.csv and the .predict files from a run's store (e.g. after it was killed)")
    p.add_argument("output", nargs="?", default=DEFAULT_OUTPUT, help=f"the run's output folder (default {DEFAULT_OUTPUT}/)")
    p.add_argument("--max-rows", type=int, default=80, help="rows of the value table printed (default 80)")
    p.add_argument("--quiet", "-q", action="store_true", help="print less")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("report", help="write a self-contained HTML report (scores and figures) of a run's output folder",
                       description="One HTML file, figures embedded (opens from disk, needs no network): per task the "
                                   "score table, each measure against the gap, robust sign-error by hyperparameter, "
                                   "layer-wise curves, P-vector angles and, for zoos made with make-zoo --track, "
                                   "the training curves.")
    p.add_argument("run_dir", nargs="?", default=DEFAULT_OUTPUT,
                   help=f"output folder of `run` or `ingest` (holding results.sqlite; default {DEFAULT_OUTPUT}/)")
    p.add_argument("--output", "-o", default=None, metavar="HTML", help="the file to write (default RUN_DIR/report.html)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("score", help="score predictions like the official PGDL program (plus more metrics)")
    p.add_argument("reference_dir", help="folder with reference_data/<task>/model_configs.json or <task>/model_configs.json")
    p.add_argument("prediction_dir", help="folder with <task>.predict files, or a `gen-measures run` output folder")
    p.add_argument("output_dir", help="where scores.txt, scores.csv and scores.json are written")
    p.add_argument("--allow-partial", action="store_true", help="score the covered models when some predictions are missing")
    p.add_argument("--direction-from-registry", action="store_true",
                   help="apply each registered measure's direction to Kendall metrics (default: higher value = larger gap)")
    p.set_defaults(func=cmd_score)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING if args.verbose == 0 else logging.INFO if args.verbose == 1 else logging.DEBUG
    if args.command == "list":
        level = logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except GenMeasuresError as exc:
        print(f"gen-measures {args.command}: error: {str(exc).strip().splitlines()[0] if str(exc).strip() else exc!r}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - one line for the user; the traceback with -vv
        if args.verbose >= 2:
            raise
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"gen-measures {args.command}: error: {type(exc).__name__}: {text} (run with -vv for the traceback)",
              file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
