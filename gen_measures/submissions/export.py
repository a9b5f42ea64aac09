"""``gen-measures export-submission MEASURE OUT_DIR``: any registered measure as a PGDL submission.

The folder holds ``complexity.py`` and ``metadata`` as the competition expected, plus copies of
the ``scoring``, ``gen_measures`` and (for a baseline) ``baselines`` packages, so it runs inside
the official ingestion program with nothing installed but the libraries this package needs
(numpy, scipy, pandas, h5py, TensorFlow, Keras 3). :func:`measure_kit_model` is what its
``complexity(model, dataset)`` calls: the ``tf.keras`` 2 model the ingestion program hands over
is rebuilt as a Keras 3 model with the same weights (layer by layer, through the allow-list),
the training sample is drawn from the dataset with :mod:`gen_measures.sampling` (the same
seeded, class-stratified rule as ``gen-measures run``, over the examples in the order the
dataset yields them), and the measure is computed on a :class:`~gen_measures.context.ModelContext`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from gen_measures.errors import GenMeasuresError
from gen_measures.sampling import DEFAULT_SAMPLE_SIZE, DEFAULT_SEED

_COMPLEXITY = '''"""PGDL submission computing the gen-measures measure {name!r} (exported by gen-measures {version}).

{summary}
Reference: {reference}
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

MEASURE = {name!r}
SAMPLE_SIZE = {sample_size!r}
SEED = {seed!r}


def complexity(model, dataset):
    from gen_measures.submissions.export import measure_kit_model

    return measure_kit_model(MEASURE, model, dataset, sample_size=SAMPLE_SIZE, seed=SEED)
'''


def export_submission(measure: str, out_dir: str | Path, *, sample_size: int | None = DEFAULT_SAMPLE_SIZE,
                      seed: int = DEFAULT_SEED) -> Path:
    """Write the submission folder for ``measure`` into ``out_dir`` (created; must be empty or absent)."""
    import gen_measures
    from gen_measures.registry import get_measure

    spec = get_measure(measure)
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise GenMeasuresError(f"{out}: exists and is not an empty folder; give a new folder for the submission")
    module_root = spec.func.__module__.split(".")[0]
    if module_root not in ("gen_measures", "baselines"):
        raise GenMeasuresError(f"{measure}: a plug-in measure ({spec.func.__module__}) cannot be exported; "
                               "only this package's measures and baselines can")
    out.mkdir(parents=True, exist_ok=True)
    root = Path(gen_measures.__file__).resolve().parent.parent
    packages = ["scoring", "gen_measures"] + (["baselines"] if module_root == "baselines" else [])
    for package in packages:
        shutil.copytree(root / package, out / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (out / "complexity.py").write_text(_COMPLEXITY.format(name=spec.name, version=gen_measures.__version__,
                                                          summary=spec.summary, reference=spec.reference,
                                                          sample_size=sample_size, seed=seed))
    (out / "metadata").write_text(f"description: gen-measures {spec.name} ({spec.direction_text})\n")
    return out


def keras3_twin(model):
    """A Keras 3 ``Sequential`` with the architecture and weights of a ``tf.keras`` 2 ``Sequential``."""
    import keras

    from gen_measures.errors import ModelLoadError
    from gen_measures.io.keras_models import ALLOWED_LAYERS, _allowed_kwargs, _check_value

    layers = []
    for index, layer in enumerate(model.layers):
        cls_name = next((c.__name__ for c in type(layer).__mro__ if c.__module__.startswith(("tf_keras", "keras"))
                         and c.__name__ in ALLOWED_LAYERS), None)
        if cls_name is None:
            raise ModelLoadError(f"layer {index} ({type(layer).__name__}) is not on the allow-list")
        cls = getattr(keras.layers, cls_name)
        allowed = _allowed_kwargs(cls) - {"name", "input_shape", "batch_input_shape", "input_dim", "dtype"}
        kwargs = {k: v for k, v in layer.get_config().items() if k in allowed and _check_value(v)}
        layers.append(cls(**kwargs))
    twin = keras.Sequential([keras.Input(shape=tuple(model.input_shape[1:]))] + layers)
    weights = [w.numpy() if hasattr(w, "numpy") else w for w in model.get_weights()]
    if [tuple(w.shape) for w in twin.get_weights()] != [tuple(w.shape) for w in weights]:
        raise ModelLoadError("the Keras 3 rebuild of the model has other weight shapes than the model")
    twin.set_weights(weights)
    return twin


def measure_kit_model(measure: str, model, dataset, *, sample_size: int | None = DEFAULT_SAMPLE_SIZE,
                      seed: int = DEFAULT_SEED) -> float:
    """``measure`` of a model handed over by the PGDL ingestion program (see the module docstring)."""
    import numpy as np

    from gen_measures.context import ModelContext
    from gen_measures.registry import MeasureResult, get_measure
    from gen_measures.sampling import stratified_sample_indices

    spec = get_measure(measure)
    twin = keras3_twin(model)
    initial = getattr(model, "initial_weights", None) if "init_weights" in spec.needs else None
    if "data" in spec.needs:
        xs, ys = [], []
        for x, y in dataset.as_numpy_iterator():
            xs.append(np.asarray(x, dtype=np.float32))
            ys.append(int(np.asarray(y).reshape(-1)[0]))
        y_all = np.asarray(ys, dtype=np.int64)
        idx = stratified_sample_indices(y_all, sample_size, seed)
        x, y = np.stack(xs)[idx], y_all[idx]
    else:
        x, y = np.zeros((0,) + tuple(twin.input_shape[1:]), np.float32), np.zeros(0, np.int64)
    ctx = ModelContext(twin, x, y, initial_weights=initial, seed=seed)
    out = spec.func(ctx)
    return float(out.value if isinstance(out, MeasureResult) else out)
