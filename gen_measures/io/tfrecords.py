"""Read and write PGDL TFRecord shards (``dataset_1/<split>/shard_*.tfrecord``).

Each example has two features, ``inputs`` and ``output``, each a ``tf.io.serialize_tensor``
byte string: a float32 input tensor and an int32 label.

References
----------
PGDL starting kit, ``ingestion_program/data_manager.py`` (Jiang et al. 2020).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gen_measures.errors import DataError, MissingFileError
from gen_measures.numerics.classification import label_class_count

SPLITS = ("train", "test")


@dataclass(frozen=True)
class ArrayDataset:
    """A split held in memory: inputs ``x`` (float32, N x input shape) and labels ``y`` (int64, N)."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def n_label_classes(self) -> int:
        """Classes the labels span, ``max label + 1`` (:func:`~gen_measures.numerics.classification.label_class_count`).

        A property of the data; the classes a model predicts are its output width
        (:attr:`gen_measures.context.ModelContext.n_classes`).
        """
        return label_class_count(self.y)


def _natural_key(path: Path) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def shard_paths(split_dir: str | Path) -> list[Path]:
    """The ``shard_*.tfrecord`` files of a split folder in natural order (shard_2 before shard_10)."""
    split_dir = Path(split_dir)
    if not split_dir.is_dir():
        raise MissingFileError(f"{split_dir}: data folder not found (expected dataset_1/<split>/shard_*.tfrecord)")
    shards = sorted(split_dir.glob("*.tfrecord"), key=_natural_key)
    if not shards:
        raise MissingFileError(f"{split_dir}: no *.tfrecord shard in the data folder")
    return shards


def _parse_fn():
    import tensorflow as tf

    spec = {
        "inputs": tf.io.FixedLenFeature([], tf.string),
        "output": tf.io.FixedLenFeature([], tf.string),
    }

    def parse(record):
        ex = tf.io.parse_single_example(record, spec)
        x = tf.io.parse_tensor(ex["inputs"], out_type=tf.float32)
        y = tf.io.parse_tensor(ex["output"], out_type=tf.int32)
        return x, y

    return parse


def tf_dataset(split_dir: str | Path):
    """An unbatched ``tf.data.Dataset`` of ``(input, label)`` over the split's shards (the submission interface)."""
    import tensorflow as tf

    files = [str(p) for p in shard_paths(split_dir)]
    return tf.data.TFRecordDataset(files).map(_parse_fn())


#: Records parsed per ``tf.data`` batch when reading a split.
READ_BATCH = 512


def _parsed_batches(ds, spec):
    import tensorflow as tf

    return ds.batch(READ_BATCH).map(lambda r: tf.io.parse_example(r, spec), num_parallel_calls=tf.data.AUTOTUNE)


def _batched_records(split_dir: Path, indices: np.ndarray | None = None):
    """``(source, batch of serialized inputs, batch of serialized labels)`` over the split, in order.

    ``source`` is the shard (or, with ``indices``, the split folder). With ``indices`` (sorted
    positions in the split) only those records are kept: the others are read from disk, which
    TFRecord requires, but never parsed or decoded.
    """
    import tensorflow as tf

    spec = {"inputs": tf.io.FixedLenFeature([], tf.string), "output": tf.io.FixedLenFeature([], tf.string)}
    shards = shard_paths(split_dir)
    if indices is None:
        sources = [(shard, tf.data.TFRecordDataset(str(shard))) for shard in shards]
    else:
        size = int(indices.max()) + 1
        mask = np.zeros(size, dtype=bool)
        mask[indices] = True
        keep = tf.constant(mask)

        def wanted(i, record):
            return tf.gather(keep, i)

        def record_only(i, record):
            return record

        ds = tf.data.TFRecordDataset([str(p) for p in shards]).take(size).enumerate()
        sources = [(split_dir, ds.filter(wanted).map(record_only))]
    for source, ds in sources:
        try:
            for batch in _parsed_batches(ds, spec):
                yield source, batch["inputs"], batch["output"]
        except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DataError(f"{source}: not a valid PGDL TFRecord shard ({msg})") from None


def _decode(serialized, dtype, shard: Path, what: str) -> np.ndarray:
    """Decode a batch of ``tf.io.serialize_tensor`` strings into one array (all of one shape)."""
    import tensorflow as tf

    try:
        first = tf.io.parse_tensor(serialized[0], out_type=dtype)
        signature = tf.TensorSpec(first.shape, dtype)
        out = tf.map_fn(lambda t: tf.ensure_shape(tf.io.parse_tensor(t, out_type=dtype), first.shape),
                        serialized, fn_output_signature=signature)
    except (tf.errors.InvalidArgumentError, ValueError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{shard}: cannot decode the {what} of its examples as {dtype.name} tensors of one shape ({msg})") from None
    return out.numpy()


def _labels(serialized, shard: Path) -> np.ndarray:
    import tensorflow as tf

    y = _decode(serialized, tf.int32, shard, "labels ('output')")
    return y.reshape(y.shape[0], -1)[:, 0].astype(np.int64) if y.ndim > 1 else y.astype(np.int64)


def read_labels(split_dir: str | Path) -> np.ndarray:
    """Every label of the split, in order, without decoding the inputs."""
    split_dir = Path(split_dir)
    ys = [_labels(lab, shard) for shard, _, lab in _batched_records(split_dir)]
    if not ys:
        raise DataError(f"{split_dir}: the shards hold no example")
    return np.concatenate(ys)


def read_split(split_dir: str | Path, indices: np.ndarray | None = None) -> ArrayDataset:
    """Read a split (or only the examples at sorted ``indices``) into numpy, with batched ``tf.data`` parsing.

    Errors name the shard and the problem.
    """
    import tensorflow as tf

    split_dir = Path(split_dir)
    if indices is not None:
        indices = np.asarray(indices, dtype=np.int64)
        if len(indices) == 0:
            raise DataError(f"{split_dir}: no example requested")
    xs, ys = [], []
    for shard, inputs, labels in _batched_records(split_dir, indices):
        xs.append(_decode(inputs, tf.float32, shard, "inputs ('inputs')"))
        ys.append(_labels(labels, shard))
    if not xs:
        raise DataError(f"{split_dir}: the shards hold no example")
    shapes = {x.shape[1:] for x in xs}
    if len(shapes) != 1:
        raise DataError(f"{split_dir}: examples have different input shapes {sorted(shapes)[:3]}")
    return ArrayDataset(np.concatenate(xs).astype(np.float32, copy=False), np.concatenate(ys))


def write_split(split_dir: str | Path, data: ArrayDataset, n_shards: int = 1) -> list[Path]:
    """Write ``data`` as PGDL shards ``shard_<i>.tfrecord`` (contiguous chunks, order kept)."""
    import tensorflow as tf

    split_dir = Path(split_dir)
    split_dir.mkdir(parents=True, exist_ok=True)
    n_shards = max(1, min(int(n_shards), len(data)))
    paths = []
    for i, idx in enumerate(np.array_split(np.arange(len(data)), n_shards)):
        path = split_dir / f"shard_{i}.tfrecord"
        with tf.io.TFRecordWriter(str(path)) as writer:
            for j in idx:
                x = tf.io.serialize_tensor(tf.constant(data.x[j], dtype=tf.float32)).numpy()
                y = tf.io.serialize_tensor(tf.constant(int(data.y[j]), dtype=tf.int32)).numpy()
                example = tf.train.Example(
                    features=tf.train.Features(
                        feature={
                            "inputs": tf.train.Feature(bytes_list=tf.train.BytesList(value=[x])),
                            "output": tf.train.Feature(bytes_list=tf.train.BytesList(value=[y])),
                        }
                    )
                )
                writer.write(example.SerializeToString())
        paths.append(path)
    return paths
