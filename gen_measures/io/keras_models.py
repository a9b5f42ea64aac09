"""Build Keras models from PGDL ``config.json`` and load/save Keras-2 HDF5 weights.

This is the one place where models are built. A ``config.json`` is data, never code: every
layer class must be on :data:`ALLOWED_LAYERS`, every keyword must be a constructor argument
of that class, and values must be JSON scalars or lists of them (no nested objects, so no
``class_name``/``module`` deserialisation can import anything). Whole-number floats are cast
to ``int`` as the competition's loader did.

Weights are the Keras-2 HDF5 files written by ``model.save_weights("weights.hdf5")`` in
TF 2.x. Keras 3 reads them by layer position (``load_weights`` on a built model); it cannot
write them, so :func:`save_keras2_weights` writes the layout itself (root attribute
``layer_names``; one group per layer with attribute ``weight_names`` and one dataset per name).

References
----------
PGDL starting kit, ``ingestion_program`` model loader (Jiang et al. 2020),
https://github.com/google-research/google-research/tree/master/pgdl
"""

from __future__ import annotations

import inspect
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from gen_measures.errors import MissingFileError, ModelLoadError
from scoring.jsonfile import read_json

#: Layer classes a config may name (the ones PGDL tasks used, plus plain structural layers).
ALLOWED_LAYERS = (
    "Activation",
    "AveragePooling2D",
    "BatchNormalization",
    "Conv2D",
    "Dense",
    "DepthwiseConv2D",
    "Dropout",
    "ELU",
    "Flatten",
    "GaussianNoise",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling2D",
    "LayerNormalization",
    "LeakyReLU",
    "MaxPooling2D",
    "ReLU",
    "Reshape",
    "SeparableConv2D",
    "Softmax",
    "SpatialDropout2D",
    "ZeroPadding2D",
)

#: Most parameters one model may hold (checked from the config and from the HDF5 metadata
#: before anything is allocated); override with the environment variable
#: ``GEN_MEASURES_MAX_PARAMS`` (``gen-measures run --max-params N`` sets it).
DEFAULT_MAX_PARAMS = 50_000_000
#: Most layers one config may list.
MAX_LAYERS = 1000
#: Most values one layer output may hold per example.
MAX_ACTIVATION = 50_000_000


def max_params() -> int:
    """The parameter limit in force (:data:`DEFAULT_MAX_PARAMS` unless ``GEN_MEASURES_MAX_PARAMS`` says otherwise)."""
    text = os.environ.get("GEN_MEASURES_MAX_PARAMS", "")
    try:
        return int(float(text)) if text else DEFAULT_MAX_PARAMS
    except ValueError:
        return DEFAULT_MAX_PARAMS


#: Keywords every layer accepts besides its constructor arguments.
_BASE_LAYER_KWARGS = frozenset({"name", "dtype", "trainable", "input_shape", "batch_input_shape", "input_dim"})
#: Keywords accepted for compatibility but dropped (Keras-2 only, meaningless in Keras 3).
_DROPPED_KWARGS = frozenset({"input_shape", "batch_input_shape", "input_dim"})


def _cast_whole_floats(value: Any) -> Any:
    """Cast floats that are whole numbers to int, recursively in lists (the competition's rule)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_cast_whole_floats(v) for v in value]
    return value


def _check_value(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, list):
        return all(_check_value(v) for v in value)
    return False


def _allowed_kwargs(cls: type) -> frozenset[str]:
    params = inspect.signature(cls.__init__).parameters
    names = {n for n, p in params.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and n != "self"}
    return frozenset(names) | _BASE_LAYER_KWARGS


def read_model_config(path: str | Path) -> tuple[list[dict[str, Any]], list[int]]:
    """Parse ``config.json``: returns (layer dicts, input shape). Errors name the file."""
    path = Path(path)
    raw = read_json(path, ModelLoadError, "config.json")
    if not isinstance(raw, dict) or "model_config" not in raw or "input_shape" not in raw:
        raise ModelLoadError(f"{path}: expected an object with keys 'model_config' and 'input_shape'")
    layers, shape = raw["model_config"], raw["input_shape"]
    if not isinstance(layers, list) or not layers or not all(isinstance(d, dict) for d in layers):
        raise ModelLoadError(f"{path}: 'model_config' must be a non-empty list of layer objects")
    if len(layers) > MAX_LAYERS:
        raise ModelLoadError(f"{path}: 'model_config' lists {len(layers)} layers; at most {MAX_LAYERS} are accepted")
    if not isinstance(shape, list) or not shape or not all(
        isinstance(s, (int, float)) and not isinstance(s, bool) and float(s).is_integer() and s > 0 for s in shape
    ):
        raise ModelLoadError(f"{path}: 'input_shape' must be a list of positive integers, got {shape!r}")
    return layers, [int(s) for s in shape]


def build_layers(layer_dicts: Sequence[dict[str, Any]], where: str = "config") -> list:
    """Instantiate Keras layers from PGDL layer dicts through the allow-list.

    ``where`` names the source (model folder) in error messages.
    """
    import keras

    layers = []
    for index, spec in enumerate(layer_dicts):
        spec = dict(spec)
        cls_name = spec.pop("layer_name", None)
        if cls_name is None:
            raise ModelLoadError(f"{where}: layer {index} has no 'layer_name'")
        if cls_name not in ALLOWED_LAYERS:
            raise ModelLoadError(
                f"{where}: layer {index}: layer class {cls_name!r} is not allowed "
                f"(allowed: {', '.join(ALLOWED_LAYERS)}); model files are data and may not carry code"
            )
        cls = getattr(keras.layers, cls_name)
        allowed = _allowed_kwargs(cls)
        kwargs: dict[str, Any] = {}
        for key, value in spec.items():
            if key not in allowed:
                raise ModelLoadError(f"{where}: layer {index} ({cls_name}): unknown keyword {key!r}")
            if not _check_value(value):
                raise ModelLoadError(
                    f"{where}: layer {index} ({cls_name}): keyword {key!r} holds a nested object; "
                    "only numbers, strings, booleans, null and lists of them are accepted"
                )
            if key not in _DROPPED_KWARGS:
                kwargs[key] = _cast_whole_floats(value)
        try:
            layers.append(cls(**kwargs))
        except Exception as exc:  # noqa: BLE001 - any refusal of a constructor is this config's error
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelLoadError(f"{where}: layer {index} ({cls_name}): {text}") from None
    return layers


def _layer_params(layer, in_shape: tuple) -> int:
    """Parameters ``layer`` would create on an input of ``in_shape`` (batch first), without building it."""
    name = type(layer).__name__
    channels = in_shape[-1] if in_shape and in_shape[-1] is not None else 0
    bias = 1 if getattr(layer, "use_bias", False) else 0
    if name == "Dense":
        return (channels + bias) * int(layer.units)
    if name == "Conv2D":
        kh, kw = layer.kernel_size
        return (kh * kw * channels + bias) * int(layer.filters)
    if name == "DepthwiseConv2D":
        kh, kw = layer.kernel_size
        return kh * kw * channels * int(layer.depth_multiplier) + bias * channels * int(layer.depth_multiplier)
    if name == "SeparableConv2D":
        kh, kw = layer.kernel_size
        mult = int(layer.depth_multiplier)
        return kh * kw * channels * mult + channels * mult * int(layer.filters) + bias * int(layer.filters)
    if name in ("BatchNormalization", "LayerNormalization"):
        return 4 * channels
    return 0


def check_model_size(layers: Sequence, input_shape: Sequence[int], where: str, limit: int | None = None) -> int:
    """Parameters of ``layers`` on ``input_shape``, from shapes alone; :class:`ModelLoadError` past ``limit``.

    Runs before any weight is allocated, so a config with ``units: 1e12`` is an error naming
    the file and the layer, not an out-of-memory crash.
    """
    limit = max_params() if limit is None else limit
    shape: tuple = (None,) + tuple(int(s) for s in input_shape)
    total = 0
    for index, layer in enumerate(layers):
        total += _layer_params(layer, shape)
        if total > limit:
            raise ModelLoadError(
                f"{where}: layer {index} ({type(layer).__name__}) brings the model to {total:.3g} parameters, over the "
                f"limit of {limit:.3g} (set GEN_MEASURES_MAX_PARAMS or --max-params to allow more)")
        try:
            shape = tuple(layer.compute_output_shape(shape))
        except Exception as exc:  # noqa: BLE001 - shapes that do not fit are this config's error
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelLoadError(f"{where}: layer {index} ({type(layer).__name__}) does not fit its input {shape[1:]}: {text}") from None
        values = math.prod(int(d) for d in shape[1:] if d is not None)
        if values > MAX_ACTIVATION:
            raise ModelLoadError(f"{where}: layer {index} ({type(layer).__name__}) outputs {values:.3g} values per example "
                                 f"(shape {shape[1:]}), over the limit of {MAX_ACTIVATION:.3g}")
    return total


def build_model(layer_dicts: Sequence[dict[str, Any]], input_shape: Sequence[int], where: str = "config"):
    """A built ``keras.Sequential`` with input ``[None] + input_shape``."""
    import keras

    layers = build_layers(layer_dicts, where)
    check_model_size(layers, input_shape, where)
    try:
        model = keras.Sequential([keras.Input(shape=tuple(int(s) for s in input_shape))] + layers)
    except Exception as exc:  # noqa: BLE001 - whatever Keras refuses is this config's error
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"{where}: the layers do not fit together: {text}") from None
    return model


def load_model_from_config(config_path: str | Path):
    """Build the model described by a ``config.json`` (no weights loaded)."""
    config_path = Path(config_path)
    layers, shape = read_model_config(config_path)
    return build_model(layers, shape, where=str(config_path.parent))


def _weight_layers(model) -> list:
    return [layer for layer in model.layers if layer.weights]


def _read_keras2_layers(path: Path, values: bool) -> list[tuple[str, list]]:
    """``(layer name, [array or shape per weight])`` for every layer of a Keras-2 file that holds weights.

    Shapes come from the HDF5 metadata; arrays are read only after every entry has been checked
    to be a numeric dataset and their total size to be within :func:`max_params`.
    """
    if path.is_dir():
        raise MissingFileError(f"{path}: is a folder, not a weights file")
    if not path.is_file():
        raise MissingFileError(f"{path}: weights file not found")
    try:
        with h5py.File(path, "r") as f:
            root = f["model_weights"] if "model_weights" in f else f
            if "layer_names" not in root.attrs:
                raise ModelLoadError(f"{path}: not a Keras-2 weights file (no 'layer_names' attribute)")
            layers = []
            for raw_name in root.attrs["layer_names"]:
                name = raw_name.decode() if isinstance(raw_name, bytes) else str(raw_name)
                group = root[name]
                if not isinstance(group, h5py.Group):
                    raise ModelLoadError(f"{path}: layer entry {name!r} is a dataset, not a group of weights")
                wnames = [w.decode() if isinstance(w, bytes) else str(w) for w in group.attrs.get("weight_names", [])]
                datasets = []
                for w in wnames:
                    item = group.get(w)
                    if item is None:
                        raise ModelLoadError(f"{path}: layer {name!r}: weight {w!r} is listed but absent")
                    if not isinstance(item, h5py.Dataset) or item.dtype.kind not in "fiu":
                        raise ModelLoadError(f"{path}: layer {name!r}: weight {w!r} is not a numeric dataset")
                    datasets.append(item)
                if datasets:
                    layers.append((name, datasets))
            total = sum(math.prod(d.shape) for _, ds in layers for d in ds)
            if total > max_params():
                raise ModelLoadError(f"{path}: declares {total:.3g} weights, over the limit of {max_params():.3g} "
                                     "(set GEN_MEASURES_MAX_PARAMS or --max-params to allow more)")
            out = []
            for name, ds in layers:
                if values:
                    arrays = [np.asarray(d) for d in ds]
                    for w, a in zip(ds, arrays):
                        if a.dtype.kind == "f" and not np.isfinite(a).all():
                            raise ModelLoadError(f"{path}: layer {name!r}: weight {w.name.split('/')[-1]!r} holds "
                                                 f"{int((~np.isfinite(a)).sum())} non-finite values (NaN or inf)")
                    out.append((name, arrays))
                else:
                    out.append((name, [tuple(d.shape) for d in ds]))
            return out
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot read HDF5 file (truncated or corrupt?): {str(exc).splitlines()[0]}") from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise ModelLoadError(f"{path}: malformed Keras-2 weights file: {str(exc).splitlines()[0]}") from None
    except KeyError as exc:
        raise ModelLoadError(f"{path}: inconsistent Keras-2 weights file: missing entry {exc}") from None


def check_keras2_weights(model, path: str | Path) -> None:
    """Verify that a Keras-2 HDF5 file matches ``model`` (layer count and every shape).

    Raises :class:`ModelLoadError` naming the file and the first mismatch, or
    :class:`MissingFileError`. Keras's own loader gives terse messages (or, for ``by_name``,
    silently loads nothing), hence this check.
    """
    path = Path(path)
    stored = _read_keras2_layers(path, values=False)
    layers = _weight_layers(model)
    if len(stored) != len(layers):
        raise ModelLoadError(
            f"{path}: holds weights for {len(stored)} layers but the architecture has {len(layers)} layers with weights"
        )
    for i, (layer, (name, shapes)) in enumerate(zip(layers, stored)):
        expected = [tuple(w.shape) for w in layer.weights]
        if shapes != expected:
            raise ModelLoadError(
                f"{path}: weight layer {i} ({name!r} in file, {layer.name!r} in model): "
                f"file shapes {shapes} != architecture shapes {expected}"
            )


def load_keras2_weights(model, path: str | Path) -> None:
    """Load a Keras-2 HDF5 weights file into ``model`` by position, after :func:`check_keras2_weights`."""
    check_keras2_weights(model, path)
    try:
        model.load_weights(str(path))
    except Exception as exc:  # noqa: BLE001 - whatever Keras's reader refuses is this file's error
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"{path}: Keras could not load the weights: {text}") from None
    for layer in model.layers:
        for var in layer.weights:
            value = np.asarray(var)
            if value.dtype.kind == "f" and not np.isfinite(value).all():
                raise ModelLoadError(f"{path}: layer {layer.name!r}: weight {var.name!r} holds "
                                     f"{int((~np.isfinite(value)).sum())} non-finite values (NaN or inf)")


def read_keras2_weights(path: str | Path) -> list[np.ndarray]:
    """All weight arrays of a Keras-2 HDF5 file, in layer then ``weight_names`` order (no model needed)."""
    return [w for _, arrays in _read_keras2_layers(Path(path), values=True) for w in arrays]


def save_keras2_weights(model, path: str | Path) -> Path:
    """Write ``model``'s weights in the Keras-2 (TF 2.x ``save_weights``) HDF5 layout.

    One group per layer (all layers, in order, as Keras 2 did), attribute ``weight_names``
    listing ``<layer>/<var>:0``; the arrays are stored at ``<layer>/<layer>/<var>:0``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = [layer.name for layer in model.layers]
    if len(set(names)) != len(names):
        raise ModelLoadError(f"{path}: model has duplicate layer names {names}; cannot write Keras-2 weights")
    with h5py.File(path, "w") as f:
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.4.0"
        f.attrs["layer_names"] = np.array([n.encode() for n in names])
        for layer in model.layers:
            group = f.create_group(layer.name)
            wnames = []
            for var in layer.weights:
                wname = f"{layer.name}/{var.name.split('/')[-1].split(':')[0]}:0"
                wnames.append(wname.encode())
                group.create_dataset(wname, data=np.asarray(var.numpy()))
            group.attrs["weight_names"] = np.array(wnames, dtype="S") if wnames else np.array([], dtype="S1")
    return path
