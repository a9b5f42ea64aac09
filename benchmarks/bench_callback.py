"""Cost of the FeatureConvergence callback: a plain ``fit`` and a ``fit`` with the callback, side by side.

Run: ``python benchmarks/bench_callback.py [--epochs 10] [--sample-size 500] [--repeats 3] [--every 1]``.
Run it alone (the machine's cores are shared and the times are wall-clock).

Both fits train the same model on the same data with the same seeds: the VGG-style network
of the ``digits_vgg`` zoo (:func:`gen_measures.io.zoo.vgg_layers`, width 8, depth 2) on the
scikit-learn digits training split (1347 examples), batch 32, SGD with momentum as
``make-zoo`` trains (:func:`train_digits`). The callback follows ``--sample-size`` training
examples (class-stratified, seeded). Per configuration, the fit is repeated ``--repeats`` times
(alternating plain / callback); printed:

* ``s/epoch``: median over repeats and epochs 2..N of the wall-clock time of one epoch, measured
  by a timing callback listed *after* FeatureConvergence (so its ``on_epoch_end`` work is
  inside the epoch); epoch 1 (graph tracing) is left out;
* ``begin+end s``: the rest of the fit (``fit`` total minus its epochs): for the callback, the
  extractor build, the data P-vector and the pass over the untrained network;
* the overhead per epoch in seconds and in % of the plain epoch (a difference of two noisy
  medians), and the time spent inside the callback's ``on_epoch_end`` (measured directly: the
  steadier figure on a shared machine);
* forward passes over the sample per tracked epoch, counted by wrapping the callback's
  extractor (calls / batches per pass), and the median passes of the P-vector solver over the
  feature matrix (warm-started at the previous epoch's P-vector).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

BATCH_SIZE = 32
LEARNING_RATE = 0.01  # make-zoo's: 0.01 * sqrt(batch / 16), momentum 0.9


def digits_split(seed: int = 0):
    """The scikit-learn digits train / test split of ``make-zoo`` (1347 / 450 examples, stratified)."""
    from gen_measures.io.zoo import digits_data

    return digits_data(1347, seed)


def track_sample(train, n: int, seed: int = 0) -> np.ndarray:
    """The callback's sample: ``n`` class-stratified training inputs (as ``make-zoo --track``)."""
    from gen_measures.sampling import stratified_sample_indices

    return train.x[stratified_sample_indices(train.y, n, seed)]


def build_digits_model(layers, seed: int, decay_steps: int | None = None):
    """``layers`` (config dicts) built by :func:`gen_measures.io.keras_models.build_model`, seeded, compiled.

    ``decay_steps``: decay the learning rate to 0 by a cosine over that many steps (default: constant).
    """
    import keras

    from gen_measures.io.keras_models import build_model

    keras.utils.set_random_seed(seed)
    model = build_model(layers, (8, 8, 1), where="benchmark")
    rate = LEARNING_RATE * math.sqrt(BATCH_SIZE / 16)
    if decay_steps:
        rate = keras.optimizers.schedules.CosineDecay(rate, decay_steps)
    optimizer = keras.optimizers.SGD(learning_rate=rate, momentum=0.9)
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


def train_digits(model, train, epochs: int, callbacks=()):
    """``model.fit`` on the training split, shuffled, batch 32, silent; returns the History."""
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    return model.fit(train.x, train.y, batch_size=BATCH_SIZE, epochs=epochs, shuffle=True, verbose=0,
                     callbacks=list(callbacks))


class EpochTimer:
    """Keras callback: wall-clock seconds of every epoch (list it last)."""

    def __new__(cls):
        import keras

        class _Timer(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self.seconds, self._t = [], None

            def on_epoch_begin(self, epoch, logs=None):
                self._t = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                self.seconds.append(time.perf_counter() - self._t)

        return _Timer()


class CountingExtractor:
    """Wraps a FeatureConvergence extractor and counts its calls (one call = one batch of the sample)."""

    def __init__(self, inner) -> None:
        self.inner, self.calls = inner, 0

    def __call__(self, x):
        self.calls += 1
        return self.inner(x)


def one_fit(layers, train, x_sample, epochs: int, every: int, with_callback: bool) -> dict:
    from gen_measures.callbacks import FeatureConvergence

    model = build_digits_model(layers, seed=0)
    timer = EpochTimer()
    callbacks, counter = [timer], []
    if with_callback:
        cb = FeatureConvergence(x_sample, every)
        build = cb._build_extractor
        cb._build_extractor = lambda m: counter.append(CountingExtractor(build(m))) or counter[-1]
        inside, on_epoch_end = [], cb.on_epoch_end

        def timed(epoch, logs=None):
            t = time.perf_counter()
            on_epoch_end(epoch, logs)
            inside.append(time.perf_counter() - t)

        cb.on_epoch_end = timed
        callbacks.insert(0, cb)
    t0 = time.perf_counter()
    train_digits(model, train, epochs, callbacks)
    total = time.perf_counter() - t0
    out = {"epochs": timer.seconds, "total": total}
    if with_callback:
        batches = math.ceil(len(x_sample) / cb.batch_size)
        tracked = sum(math.isfinite(v) for v in cb.curves["pvector_angle_to_data"])
        out["inside"] = inside
        out["passes_per_tracked_epoch"] = (counter[-1].calls / batches - 1) / tracked  # minus the train-begin pass
        out["solver_passes"] = statistics.median(i.passes for i in cb.solver_info.values())
        out["final_angle"] = cb.curves["pvector_angle_to_final"]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--sample-size", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--every", type=int, default=1)
    args = parser.parse_args(argv)

    from gen_measures.io.zoo import vgg_layers

    train, _ = digits_split()
    x_sample = track_sample(train, args.sample_size)
    layers = vgg_layers(8, 2, 0.0, 10)
    runs = {False: [], True: []}
    for _ in range(args.repeats):
        for with_cb in (False, True):
            runs[with_cb].append(one_fit(layers, train, x_sample, args.epochs, args.every, with_cb))
    per_epoch = {k: statistics.median(s for r in v for s in r["epochs"][1:]) for k, v in runs.items()}
    rest = {k: statistics.median(r["total"] - sum(r["epochs"]) for r in v) for k, v in runs.items()}
    print(f"VGG-style (width 8, depth 2) on {len(train)} digits, batch {BATCH_SIZE}, {args.epochs} epochs; "
          f"callback sample {len(x_sample)}, every={args.every}; {args.repeats} repeats, median")
    print(f"{'':16} {'s/epoch':>9} {'begin+end s':>12}")
    print(f"{'plain fit':16} {per_epoch[False]:9.3f} {rest[False]:12.3f}")
    print(f"{'with callback':16} {per_epoch[True]:9.3f} {rest[True]:12.3f}")
    over = per_epoch[True] - per_epoch[False]
    print(f"overhead per epoch: {over:.3f} s ({100 * over / per_epoch[False]:.0f} %)")
    cb_runs = runs[True]
    inside = statistics.median(s for r in cb_runs for s in r["inside"][1:])
    print(f"time inside the callback's on_epoch_end: {inside:.3f} s per tracked epoch "
          f"({100 * inside / per_epoch[False]:.0f} % of a plain epoch; median, epoch 1 left out)")
    print(f"forward passes over the sample per tracked epoch (counted on the extractor): "
          f"{max(r['passes_per_tracked_epoch'] for r in cb_runs):g}")
    print(f"P-vector solver passes over the features (median): {cb_runs[0]['solver_passes']:g}")
    same = all(r["final_angle"] == cb_runs[0]["final_angle"] for r in cb_runs)
    print(f"curves identical across repeats: {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
