"""Checked annotation records and the `tf.data.Dataset` built from them.

The VOC and COCO readers parse and check every annotation in Python (once,
before training) and produce `Record`s; `records_to_dataset` turns them into a
dataset whose map only reads and decodes the image files, in parallel.
"""

import dataclasses
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from keras_ssd.data import image_files


@dataclasses.dataclass
class Record:
    """One checked example.

    Attributes:
        image_path: path of the image file.
        image_id: identifier string (VOC: file stem; COCO: the image id).
        boxes: float32 `[M, 4]` normalised `[ymin, xmin, ymax, xmax]`.
        labels: int32 `[M]`, 0-based object class.
        difficult: bool `[M]`.
        is_crowd: bool `[M]`, or None for sources without crowd boxes.
    """

    image_path: str
    image_id: str
    boxes: np.ndarray
    labels: np.ndarray
    difficult: np.ndarray
    is_crowd: np.ndarray | None = None


def _ragged(arrays: Sequence[np.ndarray], dtype, inner_shape=()):
    lengths = np.array([len(a) for a in arrays], dtype=np.int64)
    if len(arrays):
        values = np.concatenate(
            [np.asarray(a, dtype).reshape((-1,) + inner_shape) for a in arrays]
        )
    else:
        values = np.zeros((0,) + inner_shape, dtype)
    return tf.RaggedTensor.from_row_lengths(tf.constant(values, dtype), lengths)


def records_to_dataset(
    records: list[Record], *, with_crowd: bool, ignore_decode_errors: bool
) -> tf.data.Dataset:
    """Builds the example-dict dataset of `records`.

    Args:
        records: checked records, in the order the dataset yields them.
        with_crowd: add the `"is_crowd"` key (COCO sources).
        ignore_decode_errors: drop (with TensorFlow's logged warning) an
            example whose image passed the header check but fails to decode.

    Returns:
        Dataset of `{"image": uint8[H,W,3], "boxes": float32[M,4]` normalised
        yxyx, `"labels": int32[M], "difficult": bool[M], "image_id": string}`
        (plus `"is_crowd": bool[M]` if `with_crowd`).
    """
    columns = {
        "image_path": tf.constant(
            [r.image_path for r in records], tf.string, shape=[len(records)]
        ),
        "image_id": tf.constant(
            [r.image_id for r in records], tf.string, shape=[len(records)]
        ),
        "boxes": _ragged([r.boxes for r in records], np.float32, (4,)),
        "labels": _ragged([r.labels for r in records], np.int32),
        "difficult": _ragged([r.difficult for r in records], np.bool_),
    }
    if with_crowd:
        columns["is_crowd"] = _ragged(
            [
                r.is_crowd if r.is_crowd is not None else np.zeros(len(r.labels), bool)
                for r in records
            ],
            np.bool_,
        )

    @tf.autograph.experimental.do_not_convert
    def read(example):
        example = dict(example)
        path = example.pop("image_path")
        example["image"] = image_files.load_image(path)
        example["boxes"] = tf.ensure_shape(example["boxes"], [None, 4])
        return example

    ds = tf.data.Dataset.from_tensor_slices(columns)
    ds = ds.map(read, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if ignore_decode_errors:
        ds = ds.ignore_errors(log_warning=True)
    return ds
