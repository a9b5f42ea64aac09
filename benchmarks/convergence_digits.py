"""The seed paper's convergence result on scikit-learn's digits, two architectures, one figure.

Run: ``python benchmarks/convergence_digits.py [--epochs 30] [--sample-size 500] [--out docs/convergence.png]``
(about a minute on 2 CPU cores).

Two architectures, trained as ``make-zoo`` trains (:func:`bench_callback.train_digits`: SGD with
momentum, batch 32, 1347 training digits), but by default with the learning rate decayed to 0 by
a cosine over the run (``--schedule constant``: make-zoo's constant rate, with which the last
iterates keep moving and the final P-vector is one noisy snapshot), with
:class:`gen_measures.callbacks.FeatureConvergence` on a fixed, stratified sample of the training set:

* ``VGG-style``: :func:`gen_measures.io.zoo.vgg_layers` (width 8, depth 2: four 3x3 convs, max
  pooling, a Dense head);
* ``MLP``: Flatten, Dense 128, Dense 64, Dense 10 (ReLU).

Printed, per architecture: the angle between the P-vector at epoch 1 (and before training)
and the final P-vector, the angle at the second-to-last epoch (the last is 0 by definition),
how many of the epoch-to-epoch steps *rise* (a quasi-monotone fall has few), Spearman's rank
correlation with the epoch, and the final angle to the data P-vector. Then the model-model
angle (:func:`gen_measures.measures.pvector.model_model_angle_deg`) between penultimate-feature
P-vectors on the same sample: the two trained networks, the same two networks untrained (their
initial weights), and each architecture at two seeds, trained and untrained. The figure
(:func:`gen_measures.plot.training.convergence_figure`, epoch 0 = untrained) goes to ``--out``.

References
----------
Seed paper: "Empirical studies on the convergence of feature spaces" (P-vectors converge
during training; networks of different architectures trained on the same data end with close
P-vectors). Shenk, J. et al. (2021), "Feature space saturation during training", arXiv:2006.08679.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_callback import BATCH_SIZE, build_digits_model, digits_split, track_sample, train_digits  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MLP_LAYERS = [
    {"layer_name": "Flatten"},
    {"layer_name": "Dense", "units": 128, "activation": "relu"},
    {"layer_name": "Dense", "units": 64, "activation": "relu"},
    {"layer_name": "Dense", "units": 10},
]


def architectures() -> dict[str, list[dict]]:
    from gen_measures.io.zoo import vgg_layers

    return {"VGG-style": vgg_layers(8, 2, 0.0, 10), "MLP": MLP_LAYERS}


def features(model, x: np.ndarray) -> np.ndarray:
    """Penultimate features of ``x`` (the measures' rule, :data:`gen_measures.context.FEATURE_LAYER_RULE`)."""
    from gen_measures.context import ModelContext

    return ModelContext.from_keras(model, x, np.zeros(len(x), np.int64)).penultimate_features()


def trained(layers, seed: int, train, x_sample, epochs: int, schedule: str):
    """(untrained features, trained features, callback, train accuracy) of one architecture and seed."""
    from gen_measures.callbacks import FeatureConvergence

    steps = epochs * -(-len(train) // BATCH_SIZE)
    model = build_digits_model(layers, seed, decay_steps=steps if schedule == "cosine" else None)
    before = features(model, x_sample)
    cb = FeatureConvergence(x_sample)
    history = train_digits(model, train, epochs, [cb])
    return before, features(model, x_sample), cb, history.history["accuracy"][-1]


def fall_summary(values) -> str:
    from scipy.stats import spearmanr

    v = np.asarray(values)
    rises = int(np.count_nonzero(np.diff(v) > 0))
    rho = spearmanr(np.arange(len(v)), v).statistic
    return f"{rises} of {len(v) - 1} steps rise, Spearman rho with epoch {rho:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--sample-size", type=int, default=500)
    parser.add_argument("--out", default=str(ROOT / "docs" / "convergence.png"))
    parser.add_argument("--schedule", choices=("cosine", "constant"), default="cosine",
                        help="learning rate: cosine decay to 0 over the run (default) or make-zoo's constant rate")
    args = parser.parse_args(argv)

    import pandas as pd

    from gen_measures.callbacks import ANGLE_TO_DATA, ANGLE_TO_FINAL
    from gen_measures.measures.pvector import model_model_angle_deg
    from gen_measures.plot.training import convergence_figure

    train, _ = digits_split()
    x_sample = track_sample(train, args.sample_size)
    print(f"digits: {len(train)} training examples, callback sample {len(x_sample)}, {args.epochs} epochs, "
          f"SGD momentum 0.9, batch {BATCH_SIZE}, {args.schedule} learning rate")
    feats, frames = {}, []
    for name, layers in architectures().items():
        for seed in (0, 1):
            before, after, cb, acc = trained(layers, seed, train, x_sample, args.epochs, args.schedule)
            feats[(name, seed, "untrained")], feats[(name, seed, "trained")] = before, after
            if seed:
                continue
            v = cb.curves[ANGLE_TO_FINAL]
            print(f"\n{name} (seed 0, train accuracy {acc:.3f}): angle to the final P-vector "
                  f"{cb.initial[ANGLE_TO_FINAL]:.2f} deg untrained, {v[0]:.2f} after epoch 1, "
                  f"{v[len(v) // 2 - 1]:.2f} after epoch {len(v) // 2}, {v[-2]:.3f} after epoch {len(v) - 1}, "
                  f"{v[-1]:.1f} at the end")
            print(f"  fall: {fall_summary(v)}")
            print(f"  angle to the data P-vector: {cb.initial[ANGLE_TO_DATA]:.2f} deg untrained, "
                  f"{cb.curves[ANGLE_TO_DATA][-1]:.2f} deg trained")
            frames.append(cb.frame(include_initial=True).assign(model=name))

    print("\nmodel-model angle between penultimate-feature P-vectors on the same sample (degrees):")
    (a, b) = architectures()
    pairs = [
        (f"{a} vs {b}, seed 0", (a, 0), (b, 0)),
        (f"{a} seed 0 vs seed 1", (a, 0), (a, 1)),
        (f"{b} seed 0 vs seed 1", (b, 0), (b, 1)),
    ]
    print(f"  {'pair':32} {'untrained':>10} {'trained':>9}")
    for label, (n1, s1), (n2, s2) in pairs:
        untrained = model_model_angle_deg(feats[(n1, s1, "untrained")], feats[(n2, s2, "untrained")])
        done = model_model_angle_deg(feats[(n1, s1, "trained")], feats[(n2, s2, "trained")])
        print(f"  {label:32} {untrained:10.2f} {done:9.2f}")

    fig = convergence_figure(pd.concat(frames, ignore_index=True),
                             title=f"digits, {args.epochs} epochs ({args.schedule} learning rate): "
                                   "convergence of the P-vector and layer saturation")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
