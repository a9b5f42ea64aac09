"""Read and write PGDL TFRecord shards (``dataset_1/<split>/shard_*.tfrecord``).

Each example has two features, ``inputs`` and ``output``, each a ``tf.io.serialize_tensor``
byte string: a float32 input tensor and an int32 label.

References
----------
PGDL starting kit, ``ingestion_program/data_manager.py`` (Jiang et al. 2020).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gen_measures.errors import DataError, MissingFileError
from gen_measures.numerics.classification import label_class_count

SPLITS = ("train", "test")
log = logging.getLogger(__name__)


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
    if split_dir.is_symlink():
        log.warning("%s is a symbolic link to %s; reading the data there", split_dir, split_dir.resolve())
    shards = sorted(split_dir.glob("shard_*.tfrecord"), key=_natural_key)
    others = sorted(p.name for p in split_dir.glob("*.tfrecord") if not p.name.startswith("shard_"))
    if others:
        log.warning("%s: ignoring %s (the PGDL format reads only shard_*.tfrecord)", split_dir, ", ".join(others))
    not_files = [p.name for p in shards if not p.is_file()]
    if not_files:
        raise DataError(f"{split_dir}: {', '.join(not_files)} is not a file")
    if not shards:
        raise MissingFileError(f"{split_dir}: no shard_*.tfrecord file in the data folder"
                               + (f" (found {', '.join(others)}, which the format does not read)" if others else ""))
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


def _batched_records(split_dir: Path, indices: np.ndarray | None = None, *, labels_only: bool = False,
                     shard_sizes: list[int] | None = None):
    """``(shard, record positions in the shard, serialized inputs, serialized labels)``, batch by batch.

    With ``indices`` (sorted positions in the whole split) only those records are parsed and
    decoded; the others are read from disk, which TFRecord requires, but nothing more.
    ``labels_only`` parses only the labels (the inputs batch is then ``None``);
    ``shard_sizes`` (records per shard, e.g. from :func:`read_labels`) saves counting them.
    """
    import tensorflow as tf

    spec = {"output": tf.io.FixedLenFeature([], tf.string)}
    if not labels_only:
        spec["inputs"] = tf.io.FixedLenFeature([], tf.string)
    offset = 0
    for j, shard in enumerate(shard_paths(split_dir)):
        ds = tf.data.TFRecordDataset(str(shard))
        kept = None
        if indices is not None:
            n = shard_sizes[j] if shard_sizes is not None else _count_records(shard)
            local = indices[(indices >= offset) & (indices < offset + n)] - offset
            offset += n
            if len(local) == 0:
                continue
            mask = np.zeros(n, dtype=bool)
            mask[local] = True
            keep = tf.constant(mask)

            def wanted(i, record, keep=keep):
                return tf.gather(keep, i)

            def record_only(i, record):
                return record

            ds = ds.enumerate().filter(wanted).map(record_only)
            kept = local
        try:
            start = 0
            for batch in _parsed_batches(ds, spec):
                size = int(batch["output"].shape[0])
                positions = np.arange(start, start + size) if kept is None else kept[start:start + size]
                yield shard, positions, batch.get("inputs"), batch["output"]
                start += size
        except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DataError(f"{shard}: not a valid PGDL TFRecord shard ({msg})") from None
        if indices is None:
            offset += start


def _count_records(shard: Path) -> int:
    import tensorflow as tf

    try:
        return int(tf.data.TFRecordDataset(str(shard)).reduce(np.int64(0), lambda n, _: n + 1))
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{shard}: not a valid PGDL TFRecord shard ({msg})") from None


def _decode(serialized, dtype, shard: Path, what: str, positions: np.ndarray) -> np.ndarray:
    """Decode a batch of ``tf.io.serialize_tensor`` strings (``TensorProto``) into one array of one shape.

    Parsed with the protobuf class directly (a few microseconds a record; ``tf.map_fn`` over
    ``tf.io.parse_tensor`` costs more than the per-example loop it replaces).
    """
    import tensorflow as tf
    from google.protobuf.message import DecodeError
    from tensorflow.core.framework import tensor_pb2

    want = dtype.as_datatype_enum
    np_dtype = dtype.as_numpy_dtype
    arrays = []
    shape = None
    for k, raw in enumerate(serialized.numpy()):
        try:
            proto = tensor_pb2.TensorProto.FromString(raw)
        except DecodeError:
            raise DataError(f"{shard}: record {int(positions[k])}: the {what} are not serialized tensors") from None
        if proto.dtype != want:
            got = tf.dtypes.as_dtype(proto.dtype).name if proto.dtype else "unknown"
            raise DataError(f"{shard}: record {int(positions[k])}: the {what} are {got} tensors; "
                            f"the PGDL format stores {dtype.name}")
        dims = tuple(d.size for d in proto.tensor_shape.dim)
        if shape is None:
            shape = dims
        elif dims != shape:
            raise DataError(f"{shard}: record {int(positions[k])}: the {what} have shape {list(dims)}, "
                            f"other records {list(shape)}")
        if proto.tensor_content:
            arrays.append(np.frombuffer(proto.tensor_content, dtype=np_dtype).reshape(dims))
        else:
            arrays.append(np.asarray(tf.make_ndarray(proto), dtype=np_dtype).reshape(dims))
    return np.stack(arrays)


def _labels(serialized, shard: Path, positions: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    y = _decode(serialized, tf.int32, shard, "labels ('output')", positions)
    if y.ndim > 1 and y.shape[1:] != (1,):
        raise DataError(f"{shard}: record {int(positions[0])}: the label has shape {list(y.shape[1:])}; a label must be one integer "
                        "(a scalar class index)")
    y = y.reshape(-1).astype(np.int64)
    if y.size and y.min() < 0:
        bad = int(np.flatnonzero(y < 0)[0])
        raise DataError(f"{shard}: record {int(positions[bad])}: label {int(y[bad])} is negative; labels are class indices 0, 1, ...")
    return y


def _inputs(serialized, shard: Path, positions: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    x = _decode(serialized, tf.float32, shard, "inputs ('inputs')", positions)
    finite = np.isfinite(x.reshape(x.shape[0], -1)).all(axis=1)
    if not finite.all():
        bad = int(np.flatnonzero(~finite)[0])
        raise DataError(f"{shard}: record {int(positions[bad])}: the input holds NaN or infinite values "
                        f"({int((~finite).sum())} such records in this batch)")
    return x


def read_labels(split_dir: str | Path, *, shard_sizes: bool = False):
    """Every label of the split, in order, without parsing the inputs.

    With ``shard_sizes=True`` returns ``(labels, records per shard)``, which :func:`read_split`
    takes to read a sample without counting the records again.
    """
    split_dir = Path(split_dir)
    ys, sizes, last = [], [], None
    for shard, pos, _, lab in _batched_records(split_dir, labels_only=True):
        ys.append(_labels(lab, shard, pos))
        if shard != last:
            sizes.append(0)
            last = shard
        sizes[-1] += len(pos)
    if not ys:
        raise DataError(f"{split_dir}: the shards hold no example")
    labels = np.concatenate(ys)
    if shard_sizes:
        n_shards = len(shard_paths(split_dir))
        if len(sizes) != n_shards:  # an empty shard yields no batch
            sizes = [_count_records(p) for p in shard_paths(split_dir)]
        return labels, sizes
    return labels


def read_split(split_dir: str | Path, indices: np.ndarray | None = None, *,
               shard_sizes: list[int] | None = None) -> ArrayDataset:
    """Read a split (or only the examples at sorted ``indices``) into numpy, with batched ``tf.data`` parsing.

    Errors name the shard, the record and the problem: an invalid shard, inputs that are not
    float32 or not finite, labels that are not int32 scalars or are negative.
    """
    split_dir = Path(split_dir)
    if indices is not None:
        indices = np.asarray(indices, dtype=np.int64)
        if len(indices) == 0:
            raise DataError(f"{split_dir}: no example requested")
    xs, ys = [], []
    for shard, pos, inputs, labels in _batched_records(split_dir, indices, shard_sizes=shard_sizes):
        xs.append(_inputs(inputs, shard, pos))
        ys.append(_labels(labels, shard, pos))
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
