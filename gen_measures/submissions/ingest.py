"""Run an unmodified PGDL submission (``complexity(model, dataset)``) as one more measure.

The submission becomes a registered measure of family ``submission`` (:func:`submission_spec`)
whose code version is a hash of every file of the submission folder, so the runner stores,
resumes, budgets and parallelises it like any other measure. It only ever runs in worker
processes started with ``TF_USE_LEGACY_KERAS=1`` (Keras 2 semantics through ``tf_keras``), never
in the process that holds the results store; :func:`run_submission` is what such a worker does
for one model, reproducing the organizers' ingestion program:

* the model is a ``tf.keras`` 2 ``Sequential`` whose ``__call__`` accepts ``tape=`` (the tape
  then watches the input), every layer is an instance of a subclass named ``wrapped_layer``
  that remembers its last input as ``_last_seen_input`` (so layer names are
  ``wrapped_layer``, ``wrapped_layer_1``, ... as there), built with ``[0] + input_shape``;
  ``weights_init.hdf5`` when present is loaded first and kept as ``model.initial_weights``,
  then ``weights.hdf5``; the layer dicts still pass this project's allow-list (model files
  are data);
* the dataset is the unbatched ``tf.data.TFRecordDataset`` of the ``shard_*.tfrecord`` files in
  ``glob`` order, mapped to ``(float32 input, int32 label)``;
* ``complexity(model, dataset)`` is called, with ``program_dir=<submission folder>`` when the
  function accepts a ``program_dir`` argument; ``tf.keras.backend.clear_session()`` runs
  before each model;
* before each model, Python's ``random``, numpy's global generator and TensorFlow's global
  seed are set to the run's seed, so submissions with unseeded randomness repeat exactly;
* the numpy aliases that numpy 1.24 removed (``np.int``, ``np.float``, ``np.complex``,
  ``np.object``, ``np.str``, ``np.long``, ``np.unicode``) are put back, as the builtins they
  aliased.

References
----------
PGDL starting kit (Jiang et al. 2020), ``ingestion_program/{ingestion,data_manager,model_utils}.py``.
"""

from __future__ import annotations

import ast
import hashlib
import math
import re
import time
from pathlib import Path
from typing import Any

from gen_measures.errors import GenMeasuresError, MissingFileError

#: Environment of the worker processes that run submissions.
SUBMISSION_ENV = {"TF_USE_LEGACY_KERAS": "1"}
#: numpy aliases removed in numpy 1.24 that 2020 code uses, and what they aliased.
NUMPY_ALIASES = {"int": int, "float": float, "complex": complex, "object": object, "str": str,
                 "long": int, "unicode": str}


class SubmissionError(GenMeasuresError, ValueError):
    """A submission folder cannot be run (no ``complexity.py``, no ``complexity`` function, ...)."""


def _check_signature(path: Path) -> list[str]:
    """Parameter names of ``complexity`` in ``path``, read with ``ast`` (nothing is executed here)."""
    try:
        tree = ast.parse(path.read_text(), filename=str(path))
    except (SyntaxError, UnicodeDecodeError, ValueError) as exc:
        raise SubmissionError(f"{path}: cannot be parsed as Python ({exc})") from None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "complexity":
            names = [a.arg for a in node.args.posonlyargs + node.args.args]
            if len(names) < 2 and node.args.vararg is None:
                raise SubmissionError(f"{path}: complexity() takes {names}; the interface is complexity(model, dataset"
                                      "[, program_dir])")
            return names
    raise SubmissionError(f"{path}: defines no top-level function complexity(model, dataset)")


def submission_files_hash(folder: Path) -> str:
    """SHA-256 (16 hex digits) of every file of the submission folder (relative names and contents)."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        h.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def submission_name(folder: Path) -> str:
    return "submission_" + (re.sub(r"[^a-z0-9_]", "_", folder.name.lower()).strip("_") or "unnamed")


def submission_spec(folder: str | Path):
    """Register the submission in ``folder`` as a measure; returns its :class:`MeasureSpec`.

    Raises :class:`SubmissionError` naming the file when ``complexity.py`` is missing or has no
    ``complexity(model, dataset)`` function.
    """
    from gen_measures.registry import LARGER_GAP, _REGISTRY, register_measure

    folder = Path(folder).expanduser().resolve()
    if not folder.is_dir():
        raise MissingFileError(f"{folder}: submission folder not found (expected a folder with complexity.py)")
    source = folder / "complexity.py"
    if not source.is_file():
        raise MissingFileError(f"{source}: not found; a PGDL submission is a folder with complexity.py")
    _check_signature(source)
    name = submission_name(folder)
    version = submission_files_hash(folder)

    def stub(ctx):  # pragma: no cover - submissions run in Keras-2 worker processes only
        raise SubmissionError(f"{name}: a submission runs only in a worker process (gen-measures ingest)")

    stub.__doc__ = f"PGDL submission {folder} (run by gen-measures ingest)."
    stub.__qualname__ = stub.__name__ = name
    _REGISTRY.pop(name, None)
    register_measure(name, direction=LARGER_GAP, needs=("dataset", "init_weights"), family="submission",
                     reference=f"submission folder {folder}", default=False, version=version)(stub)
    stub.submission_dir = str(folder)
    from gen_measures.registry import get_measure

    return get_measure(name)


# ----------------------------------------------------------------------------- in the worker
def provide_numpy_aliases() -> None:
    import numpy as np

    for alias, target in NUMPY_ALIASES.items():
        if alias not in np.__dict__:
            setattr(np, alias, target)


def load_complexity(folder: str | Path):
    """Import ``complexity.py`` of ``folder`` (its folder first on ``sys.path``, as the organizers did)."""
    import importlib.util
    import sys

    folder = str(Path(folder))
    provide_numpy_aliases()
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location("complexity", Path(folder) / "complexity.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["complexity"] = module
    spec.loader.exec_module(module)
    if not callable(getattr(module, "complexity", None)):
        raise SubmissionError(f"{folder}/complexity.py: defines no function complexity(model, dataset)")
    return module.complexity


_WRAPPED: dict[type, type] = {}


def _wrapped(layer_cls: type) -> type:
    if layer_cls not in _WRAPPED:
        def __call__(self, x, *args, **kwargs):
            self._last_seen_input = x
            return super(cls, self).__call__(x, *args, **kwargs)

        cls = type("wrapped_layer", (layer_cls,), {"__call__": __call__})
        _WRAPPED[layer_cls] = cls
    return _WRAPPED[layer_cls]


def kit_model(task, model_id: str):
    """``model_<id>`` built and loaded the way the organizers' ``DataManager.load_model`` did (tf.keras 2)."""
    import tensorflow as tf

    from gen_measures.errors import ModelLoadError
    from gen_measures.io.keras_models import ALLOWED_LAYERS, _cast_whole_floats, _check_value, read_model_config

    if not tf.keras.Sequential.__module__.startswith("tf_keras"):
        raise GenMeasuresError("submissions need Keras 2 semantics: install tf_keras and set TF_USE_LEGACY_KERAS=1")
    config_path = task.config_path(model_id)
    layer_dicts, shape = read_model_config(config_path)

    class Sequential(tf.keras.Sequential):
        def __call__(self, x, tape=False, *args, **kwargs):
            if tape:
                tape.watch(x)
            return super().__call__(x, *args, **kwargs)

    layers = []
    for index, spec in enumerate(layer_dicts):
        spec = dict(spec)
        name = spec.pop("layer_name", None)
        if name not in ALLOWED_LAYERS:
            raise ModelLoadError(f"{config_path}: layer {index}: layer class {name!r} is not allowed")
        if not all(_check_value(v) for v in spec.values()):
            raise ModelLoadError(f"{config_path}: layer {index} ({name}): a keyword holds a nested object")
        try:
            layers.append(_wrapped(getattr(tf.keras.layers, name))(**{k: _cast_whole_floats(v) for k, v in spec.items()}))
        except Exception as exc:  # noqa: BLE001 - the config's error
            raise ModelLoadError(f"{config_path}: layer {index} ({name}): {str(exc).splitlines()[0]}") from None
    model = Sequential(layers)
    model.build([0] + list(shape))
    init = task.weights_path(model_id, initial=True)
    if init.is_file():
        try:
            model.load_weights(str(init))
            model.initial_weights = model.get_weights()
        except ValueError:  # the organizers' loader printed the error and went on
            pass
    model.load_weights(str(task.weights_path(model_id)))
    return model


def kit_dataset(task):
    """The unbatched training ``tf.data.Dataset`` of ``(input, label)``, shards in ``glob`` order as the organizers read them."""
    import glob

    import tensorflow as tf

    shards = glob.glob(str(task.split_dir("train") / "shard_*.tfrecord"))
    if not shards:
        raise MissingFileError(f"{task.split_dir('train')}: no shard_*.tfrecord file")
    spec = {"inputs": tf.io.FixedLenFeature([], tf.string), "output": tf.io.FixedLenFeature([], tf.string)}

    def deserialize(record):
        ex = tf.io.parse_single_example(record, features=spec)
        return tf.io.parse_tensor(ex["inputs"], out_type=tf.float32), tf.io.parse_tensor(ex["output"], out_type=tf.int32)

    return tf.data.TFRecordDataset(shards).map(deserialize)


def seed_everything(seed: int) -> None:
    import random

    import numpy as np
    import tensorflow as tf

    random.seed(seed)
    np.random.seed(seed)
    tf.random.set_seed(seed)


def run_submission(task, model_id: str, folder: str, name: str, seed: int, complexity) -> Any:
    """One model through the submission, as a :class:`~gen_measures.runner.measure.ResultRow`."""
    import inspect

    import tensorflow as tf

    from gen_measures.runner.measure import STATUS_ERROR, STATUS_NAN, STATUS_OK, ResultRow, error_text

    label = f"{task.name}/model_{model_id}"
    t0 = time.perf_counter()
    tf.keras.backend.clear_session()
    try:
        model = kit_model(task, model_id)
        dataset = kit_dataset(task)
    except Exception as exc:  # noqa: BLE001 - this model's error
        return ResultRow(task.name, model_id, name, math.nan, STATUS_ERROR, time.perf_counter() - t0,
                         f"{label}: {error_text(exc)}")
    kwargs = {"program_dir": folder} if "program_dir" in inspect.signature(complexity).parameters else {}
    seed_everything(seed)
    t0 = time.perf_counter()
    try:
        value = complexity(model, dataset, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the submission's failure on this model
        return ResultRow(task.name, model_id, name, math.nan, STATUS_ERROR, time.perf_counter() - t0,
                         f"{name} on {label}: complexity() raised {type(exc).__name__}: {error_text(exc)}")
    seconds = time.perf_counter() - t0
    try:
        number = float(value)
    except (TypeError, ValueError):
        return ResultRow(task.name, model_id, name, math.nan, STATUS_ERROR, seconds,
                         f"{name} on {label}: complexity() returned {type(value).__name__} {str(value)[:60]!r}, not a number")
    if not math.isfinite(number):
        return ResultRow(task.name, model_id, name, math.nan, STATUS_NAN, seconds, f"{name} on {label}: returned {number}")
    return ResultRow(task.name, model_id, name, number, STATUS_OK, seconds)
