"""VOC and COCO through TensorFlow Datasets (the download path users have).

`tensorflow_datasets` is imported only when one of these sources is used.
TFDS already gives boxes as normalised `[ymin, xmin, ymax, xmax]` (VOC's
1-based corners converted as in `voc.py`; COCO's category ids remapped to 0..79
in id order). This adapter renames the features to the package's example dict
and drops boxes that are non-finite, empty or outside [0, 1] (with one
`BadInputWarning` per example naming the file; with `strict=True` iterating
raises `tf.errors.InvalidArgumentError` naming it instead, since the check
runs in the graph).
"""

import warnings

import tensorflow as tf

from keras_ssd.data.reporting import BadInputWarning

TFDS_SOURCES = {
    "voc/2007": "voc/2007",
    "voc/2012": "voc/2012",
    "coco/2014": "coco/2014",
    "coco/2017": "coco/2017",
}

# COCO 2014/2017 detection categories in increasing category-id order.
COCO_CLASS_NAMES = [
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "dining table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
]

# Allowed rounding slack outside [0, 1] before a box counts as outside.
_EDGE_TOLERANCE = 1e-3


def _builder(name: str, data_dir: str | None):
    import tensorflow_datasets as tfds  # optional dependency, imported lazily

    return tfds.builder(TFDS_SOURCES[name], data_dir=data_dir)


def class_names(name: str, data_dir: str | None = None) -> list[str]:
    """Class names of a TFDS source (label k is `names[k]`)."""
    names = list(_builder(name, data_dir).info.features["objects"]["label"].names)
    if name.startswith("coco/") and (not names or names[0] == "0"):
        # TFDS only learns COCO's names from the downloaded files.
        names = list(COCO_CLASS_NAMES)
    return names


def _warn_dropped(filename, dropped):
    warnings.warn(
        f"Skipping box {filename.numpy().decode()}: {int(dropped)} box(es) non-finite, "
        "empty or outside the image",
        BadInputWarning,
    )
    return 0


@tf.autograph.experimental.do_not_convert
def _convert(example, *, is_coco: bool, strict: bool):
    objects = example["objects"]
    boxes = tf.reshape(tf.cast(objects["bbox"], tf.float32), [-1, 4])
    labels = tf.cast(objects["label"], tf.int32)
    flag = objects["is_crowd"] if is_coco else objects["is_difficult"]
    # Real TFDS data has equal lengths; be defensive (mock data does not).
    m = tf.reduce_min(
        tf.stack([tf.shape(boxes)[0], tf.shape(labels)[0], tf.shape(flag)[0]])
    )
    boxes, labels, flag = boxes[:m], labels[:m], tf.cast(flag[:m], tf.bool)
    if is_coco:
        image_id = tf.strings.as_string(example["image/id"])
        filename = example["image/filename"]
    else:
        filename = example["image/filename"]
        image_id = tf.strings.regex_replace(filename, r"\.[^.]*$", "")

    ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=1)
    finite = tf.reduce_all(tf.math.is_finite(boxes), axis=1)
    inside = tf.reduce_all(
        (boxes >= -_EDGE_TOLERANCE) & (boxes <= 1 + _EDGE_TOLERANCE), axis=1
    )
    keep = finite & inside & (ymax > ymin) & (xmax > xmin)
    dropped = tf.reduce_sum(tf.cast(~keep, tf.int32))
    if strict:
        check = tf.debugging.Assert(
            tf.equal(dropped, 0),
            [
                "non-finite, empty or out-of-image box(es) in",
                filename,
                "count:",
                dropped,
            ],
        )
        with tf.control_dependencies([check]):
            dropped = tf.identity(dropped)
    else:
        dropped = tf.cond(
            dropped > 0,
            lambda: tf.py_function(_warn_dropped, [filename, dropped], tf.int32),
            lambda: tf.constant(0),
        )
    with tf.control_dependencies([dropped]):
        boxes = tf.clip_by_value(tf.boolean_mask(boxes, keep), 0.0, 1.0)
    out = {
        "image": example["image"],
        "boxes": boxes,
        "labels": tf.boolean_mask(labels, keep),
        "image_id": image_id,
    }
    if is_coco:
        out["difficult"] = tf.zeros_like(out["labels"], tf.bool)
        out["is_crowd"] = tf.boolean_mask(flag, keep)
    else:
        out["difficult"] = tf.boolean_mask(flag, keep)
    return out


def load(
    name: str,
    split: str = "train",
    *,
    strict: bool = False,
    data_dir: str | None = None,
    download: bool = True,
    shuffle_files: bool = False,
) -> tf.data.Dataset:
    """Loads a TFDS detection dataset as the package's example dicts.

    Args:
        name: "voc/2007", "voc/2012", "coco/2014" or "coco/2017".
        split: TFDS split ("train", "validation", "test", slices like
            "train[:10%]", or "train+validation").
        strict: fail on bad boxes instead of dropping them.
        data_dir: TFDS data directory.
        download: let TFDS download and prepare the data if missing.
        shuffle_files: passed to `tfds.load`.

    Returns:
        Dataset of `{"image": uint8[H,W,3], "boxes": float32[M,4]` normalised
        `[ymin, xmin, ymax, xmax]`, `"labels": int32[M], "difficult": bool[M],
        "image_id": string}`; COCO adds `"is_crowd": bool[M]`.
    """
    import tensorflow_datasets as tfds

    ds = tfds.load(
        TFDS_SOURCES[name],
        split=split,
        data_dir=data_dir,
        download=download,
        shuffle_files=shuffle_files,
    )
    is_coco = name.startswith("coco/")
    return ds.map(
        lambda ex: _convert(ex, is_coco=is_coco, strict=strict),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
