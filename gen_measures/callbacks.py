"""Live training curves: a Keras callback that follows the convergence of the feature space.

:class:`FeatureConvergence` records, on a fixed sample of inputs and at every tracked epoch,
the quantities the measures compute on trained models, with the same numerics:

* ``pvector_angle_to_data``: angle between the model P-vector (penultimate features, rule
  :data:`gen_measures.context.FEATURE_LAYER_RULE`) and the data P-vector of the sample (as the
  ``pvector_angle`` measure);
* ``pvector_angle_to_previous``: angle between this and the previous tracked epoch's P-vector
  (for the first tracked epoch: the P-vector of the network at train begin, i.e. untrained);
* ``pvector_angle_to_final``: angle to the P-vector of the model at the end of training (the
  seed paper's convergence curve), filled in at train end;
* ``saturation/<layer name>``: saturation of every Dense/Conv layer (as the ``saturation``
  measure: channelwise covariance of the layer output, ``k`` for 99 % of the variance / width).

References
----------
Seed paper: "Empirical studies on the convergence of feature spaces" (P-vectors; the angle to
the final P-vector falls during training). Shenk, J., Richter, M. L., Arpteg, A. & Huss, M.
(2021). "Feature space saturation during training", arXiv:2006.08679.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from gen_measures.context import _LazyCompiled, classifier_layer_index, kernel_layer_indices, layer_output_model, pooled_features
from gen_measures.errors import DataError, MeasureError
from gen_measures.io.training_curves import write_curves_csv
from gen_measures.measures.saturation import covariance_saturation
from gen_measures.numerics._check import as_float_array, check_int
from gen_measures.numerics.singular_vectors import angle_between, pvector
from gen_measures.numerics.spectra import StreamingCovariance

__all__ = ["ANGLE_CURVES", "ANGLE_TO_DATA", "ANGLE_TO_FINAL", "ANGLE_TO_PREVIOUS", "SATURATION_PREFIX", "FeatureConvergence"]

ANGLE_TO_DATA = "pvector_angle_to_data"
ANGLE_TO_PREVIOUS = "pvector_angle_to_previous"
ANGLE_TO_FINAL = "pvector_angle_to_final"
#: The three angle curves, in the order of :attr:`FeatureConvergence.curves`.
ANGLE_CURVES = (ANGLE_TO_DATA, ANGLE_TO_PREVIOUS, ANGLE_TO_FINAL)
#: Prefix of the per-layer saturation curves: ``saturation/<layer name>``.
SATURATION_PREFIX = "saturation/"

_NAN = float("nan")


class FeatureConvergence(keras.callbacks.Callback):
    """Keras 3 callback recording P-vector angles and per-layer saturation during ``fit``.

    Parameters
    ----------
    x_sample : array_like, shape (n, ...)
        A fixed sample of training inputs (``n >= 2``, finite, shaped like the model's
        inputs; checked at train begin). Its data P-vector (top left singular vector of the
        flattened, uncentred ``n x D`` matrix) is computed once.
    every : int, default 1
        Track every ``every``-th epoch (epochs ``every, 2 every, ...`` counted from 1) and the
        last planned epoch (``params["epochs"]``); untracked epochs get NaN in every curve.
    batch_size : int, default 256
        Batch size of the forward passes over the sample.
    csv_path : str or Path, optional
        Also write the curves there (:func:`gen_measures.io.training_curves.write_curves_csv`:
        one row per epoch, ``epoch`` + one column per curve), rewritten after every epoch and
        completed at train end.
    threshold : float, default 0.99
        Variance share of the saturation (``k`` = eigen-directions needed for it).
    seed : int, default 0
        Seed of the P-vector solver's random start component (numpy; never Keras' RNG).

    Attributes
    ----------
    curves : dict[str, list[float]]
        Curve name -> one value per epoch of the last ``fit`` (keys: :data:`ANGLE_CURVES` then
        ``saturation/<layer name>`` in model order). The same lists are in
        ``model.fit(...).history``.
    epochs : list[int]
        The epoch number of each entry (epochs completed: 1 for the first epoch).
    initial : dict[str, float]
        The same quantities for the network at train begin (untrained in a first ``fit``):
        angle to the data, angle to the final P-vector, per-layer saturation.
    pvectors : dict[int | None, numpy.ndarray]
        The P-vector of every tracked epoch, shape ``(n,)`` (key 0: at train begin; key
        ``None``: the final model, when it needed a pass of its own).
    solver_info : dict[int, SolverInfo]
        How each P-vector was solved (passes over the features, fallback).
    forward_passes : int
        Passes over the sample since train begin (one at train begin, one per tracked epoch,
        one at train end only when the final model's P-vector is not already known).

    Notes
    -----
    *Cost*: one forward pass over the sample per tracked epoch: a single extractor model,
    built at train begin, outputs every Dense/Conv layer and the classifier's input; the
    saturation covariances are accumulated batch by batch (float64,
    :class:`~gen_measures.numerics.spectra.StreamingCovariance`), the features kept for the
    P-vector, solved by the adaptive solver warm-started at the previous tracked epoch's
    P-vector (:func:`~gen_measures.numerics.singular_vectors.pvector`, ``start=``).

    *Final P-vector*: when the last epoch was tracked and training was not stopped early, its
    P-vector is the final one (no extra pass; its ``pvector_angle_to_final`` is exactly 0);
    otherwise (``model.stop_training`` set, e.g. by ``EarlyStopping``, which may restore
    other weights, or an untracked last epoch) one more pass at train end.

    *History*: Keras 3 appends its ``History`` callback after the user's callbacks and hands
    all of them the same ``logs`` dict, so the per-epoch curves written into ``logs`` reach
    ``history.history``. ``pvector_angle_to_final`` is only known at the end: at train end
    this callback writes its curves into ``model.history.history`` (one entry per epoch of
    this ``fit``; entries of earlier ``fit`` calls into the same ``History`` are kept, NaN
    where this callback did not run), which also covers a ``History`` listed before it.

    The callback runs inference only (``training=False``: dropout off, batch-norm statistics
    untouched) and draws no Keras random numbers, so training with it gives the same weights
    as without it.

    Raises
    ------
    DataError
        ``x_sample`` is not a numeric array of at least 2 finite examples; at train begin,
        its example shape differs from the model's input shape.
    MeasureError
        ``every`` or ``batch_size`` is not an integer >= 1, ``threshold`` not in ``(0, 1]``;
        at train begin, the model has no symbolic graph (build it with ``keras.Input``).

    Examples
    --------
    >>> cb = FeatureConvergence(x_train[:500])                          # doctest: +SKIP
    >>> history = model.fit(x_train, y_train, epochs=10, callbacks=[cb]) # doctest: +SKIP
    >>> history.history["pvector_angle_to_final"][-1]                    # doctest: +SKIP
    0.0
    >>> cb.frame().head()                                                # doctest: +SKIP

    References
    ----------
    .. [1] Seed paper, "Empirical studies on the convergence of feature spaces" (P-vectors and
       their convergence during training).
    .. [2] Shenk, J., Richter, M. L., Arpteg, A. & Huss, M. (2021). "Feature space saturation
       during training", arXiv:2006.08679.
    """

    def __init__(self, x_sample, every: int = 1, *, batch_size: int = 256, csv_path: str | Path | None = None,
                 threshold: float = 0.99, seed: int = 0) -> None:
        super().__init__()
        self.x_sample = _checked_sample(x_sample)
        self.every = check_int(every, "every", 1)
        self.batch_size = check_int(batch_size, "batch_size", 1)
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.number)) or not 0 < threshold <= 1:
            raise MeasureError(f"threshold must be a number in (0, 1], got {threshold!r}")
        self.threshold = float(threshold)
        self.csv_path = None if csv_path is None else Path(csv_path)
        self.seed = int(seed)
        self.curves: dict[str, list[float]] = {}
        self.epochs: list[int] = []
        self.initial: dict[str, float] = {}
        self.pvectors: dict[int, np.ndarray] = {}
        self.solver_info: dict[int, Any] = {}
        self.forward_passes = 0
        self._data_pvector: np.ndarray | None = None
        self._layer_names: list[str] = []
        self._extractor = None
        self._last_tracked: int | None = None

    # -- Keras hooks ------------------------------------------------------------------------
    def on_train_begin(self, logs=None) -> None:
        _check_sample_shape(self.x_sample, self.model)
        self._extractor = self._build_extractor(self.model)
        if self._data_pvector is None:
            self._data_pvector = pvector(self.x_sample.reshape(len(self.x_sample), -1), seed=self.seed)
        self.curves = {key: [] for key in (*ANGLE_CURVES, *(SATURATION_PREFIX + n for n in self._layer_names))}
        self.epochs, self.pvectors, self.solver_info, self.forward_passes = [], {}, {}, 0
        self._last_tracked = None
        self.initial = {k: v for k, v in self._measure(0).items() if k != ANGLE_TO_PREVIOUS}

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        number = int(epoch) + 1
        values = self._measure(number) if self._is_tracked(number) else dict.fromkeys(self.curves, _NAN)
        values.setdefault(ANGLE_TO_FINAL, _NAN)
        self.epochs.append(number)
        for key in self.curves:
            self.curves[key].append(values[key])
        if logs is not None:
            logs.update({k: v for k, v in values.items() if k != ANGLE_TO_FINAL})
        if self.csv_path is not None:
            self.write_csv(self.csv_path)

    def on_train_end(self, logs=None) -> None:
        if not self.epochs:
            return
        final_key = self.epochs[-1]
        if self._last_tracked != final_key or getattr(self.model, "stop_training", False):
            self._measure(None)  # the final model's P-vector is not known yet: one more pass
            final_key = None
        final = self.pvectors[final_key]
        self.curves[ANGLE_TO_FINAL] = [angle_between(self.pvectors[e], final) if e in self.pvectors else _NAN
                                       for e in self.epochs]
        self.initial[ANGLE_TO_FINAL] = angle_between(self.pvectors[0], final)
        self._update_history()
        if self.csv_path is not None:
            self.write_csv(self.csv_path)

    # -- results -----------------------------------------------------------------------------
    def frame(self, include_initial: bool = False) -> pd.DataFrame:
        """The curves as a tidy frame, columns ``epoch, curve, value`` (epoch-major).

        ``include_initial=True`` adds epoch 0: :attr:`initial`, the network at train begin
        (no ``pvector_angle_to_previous`` there).
        """
        rows = [(0, k, v) for k, v in self.initial.items()] if include_initial else []
        rows += [(e, k, self.curves[k][i]) for i, e in enumerate(self.epochs) for k in self.curves]
        return pd.DataFrame(rows, columns=["epoch", "curve", "value"]).astype({"epoch": np.int64, "value": np.float64})

    def write_csv(self, path: str | Path) -> Path:
        """Write the curves to ``path``, one row per epoch (see :mod:`gen_measures.io.training_curves`)."""
        return write_curves_csv(path, self.epochs, self.curves)

    # -- internals -------------------------------------------------------------------------------
    def _build_extractor(self, model) -> Any:
        """One inference model: every Dense/Conv output, then the classifier's input (built once)."""
        indices = kernel_layer_indices(model)
        classifier = model.layers[classifier_layer_index(model, model.name)]
        self._layer_names = [model.layers[i].name for i in indices]
        outputs = [model.layers[i].output for i in indices] + [classifier.input]
        return _LazyCompiled(layer_output_model(model, outputs, model.name), tuple(self.x_sample.shape[1:]))

    def _is_tracked(self, number: int) -> bool:
        return number % self.every == 0 or number == self.params.get("epochs")

    def _sample_pass(self) -> tuple[np.ndarray, dict[str, float]]:
        """One forward pass over the sample: penultimate features and per-layer saturation."""
        self.forward_passes += 1
        x = self.x_sample
        feats: list[np.ndarray] = []
        covs: list[StreamingCovariance] = []
        for start in range(0, len(x), self.batch_size):
            *layer_outs, classifier_input = self._extractor(x[start:start + self.batch_size])
            feats.append(np.asarray(pooled_features(classifier_input), dtype=np.float32))
            for j, out in enumerate(layer_outs):
                out = np.asarray(out)
                if len(covs) <= j:
                    covs.append(StreamingCovariance(int(out.shape[-1])))
                covs[j].update(out.reshape(-1, covs[j].dim))  # channelwise for conv outputs
        saturation = {SATURATION_PREFIX + name: covariance_saturation(acc.covariance(), acc.dim, self.threshold)
                      for name, acc in zip(self._layer_names, covs)}
        return np.concatenate(feats), saturation

    def _measure(self, number: int | None) -> dict[str, float]:
        """Pass over the sample, store the P-vector under ``number`` (None: final model); the curves' values."""
        features, saturation = self._sample_pass()
        previous = self.pvectors.get(self._last_tracked) if self._last_tracked is not None else None
        start = previous if previous is not None and np.isfinite(previous).all() else None
        p, info = pvector(features.reshape(len(features), -1), method="adaptive", start=start, seed=self.seed,
                          return_info=True)
        self.pvectors[number], self.solver_info[number] = p, info
        values = {ANGLE_TO_DATA: angle_between(self._data_pvector, p),
                  ANGLE_TO_PREVIOUS: angle_between(previous, p) if previous is not None else _NAN, **saturation}
        if number is not None:
            self._last_tracked = number
        return values

    def _update_history(self) -> None:
        """Put this fit's curves into ``model.history.history``: one entry per epoch of every fit."""
        store = getattr(getattr(self.model, "history", None), "history", None)
        if not isinstance(store, dict):
            return
        n = len(self.epochs)
        total = max((len(v) for k, v in store.items() if k not in self.curves), default=n)
        earlier = max(0, total - n)
        for key, values in self.curves.items():
            kept = list(store.get(key, []))[:earlier]
            store[key] = kept + [_NAN] * (earlier - len(kept)) + list(values)


def _checked_sample(x_sample) -> np.ndarray:
    """``x_sample`` as a C-contiguous float32 array of at least 2 finite examples."""
    try:
        x = as_float_array(x_sample, "x_sample")
    except (ValueError, TypeError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"x_sample must be a numeric array of examples ({exc})") from None
    if x.ndim < 2 or x.shape[0] < 2:
        raise DataError(f"x_sample must hold at least 2 examples, shape (n, ...) with n >= 2, got shape {x.shape}")
    bad = int(np.count_nonzero(~np.isfinite(x)))
    if bad:
        raise DataError(f"x_sample contains {bad} NaN or inf value(s); pass finite inputs")
    return np.ascontiguousarray(x, dtype=np.float32)


def _check_sample_shape(x: np.ndarray, model) -> None:
    """:class:`DataError` naming both shapes when ``x``'s examples do not fit ``model``'s input."""
    try:
        shape = model.input_shape
    except (AttributeError, ValueError) as exc:
        raise MeasureError(f"model {model.name!r} has no input shape yet ({exc}); build it with keras.Input") from None
    if isinstance(shape, list):
        raise MeasureError(f"model {model.name!r} has {len(shape)} inputs; FeatureConvergence needs a single-input model")
    expected = tuple(shape[1:])
    if len(expected) != x.ndim - 1 or any(e is not None and e != s for e, s in zip(expected, x.shape[1:])):
        raise DataError(f"x_sample has examples of shape {tuple(x.shape[1:])} (x_sample.shape = {tuple(x.shape)}) but "
                        f"model {model.name!r} takes inputs of shape {expected} (model.input_shape = {tuple(shape)})")
