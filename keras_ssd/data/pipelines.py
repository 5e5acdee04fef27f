"""`train_pipeline` and `eval_pipeline`: example dicts -> model-ready batches.

Training: shuffle, SSD augmentation (`augment.py`) and target encoding
(`keras_ssd.TargetEncoder`) in one parallel map, batch with static shapes,
prefetch. The model stays a pure function of the image; y_true never holds
NaN or Inf because every box reaching the encoder is finite and non-empty.

Evaluation: resize only, and keep what metrics need (original size, boxes,
labels, difficult, is_crowd) in padded batches.

The map functions here and in the sources are plain graph code (tf.cond,
tf.switch_case, no Python control flow on tensors), marked `do_not_convert`:
AutoGraph's conversion of them took ~6 s of every training run's start.
"""

import tensorflow as tf

from keras_ssd.data.augment import (
    AugmentOptions,
    augment_example,
    drop_small_boxes,
    filter_objects,
    resize,
)
from keras_ssd.ops.images import resize_to_input

_AUTOTUNE = tf.data.AUTOTUNE


def _encoder(cfg):
    from keras_ssd.encoder import TargetEncoder  # the core; imported late

    return TargetEncoder(cfg)


@tf.autograph.experimental.do_not_convert
def _with_defaults(example: dict) -> dict:
    """Adds `difficult`/`is_crowd` (all False) when a source lacks them."""
    example = dict(example)
    m = tf.shape(example["labels"])[0]
    for key in ("difficult", "is_crowd"):
        if key not in example:
            example[key] = tf.zeros([m], tf.bool)
    example["boxes"] = tf.reshape(tf.cast(example["boxes"], tf.float32), [-1, 4])
    example["labels"] = tf.cast(example["labels"], tf.int32)
    return example


def train_pipeline(
    ds: tf.data.Dataset,
    cfg,
    batch_size: int,
    *,
    augment: bool | AugmentOptions = True,
    shuffle: bool | int = True,
    seed: int | None = None,
    drop_difficult: bool = False,
    drop_crowd: bool = True,
    repeat: bool = False,
    cache: bool = False,
    num_parallel_calls: int = _AUTOTUNE,
    deterministic: bool | None = None,
) -> tf.data.Dataset:
    """Builds the training input of `model.fit`.

    Args:
        ds: example dicts from `keras_ssd.data.load` (`"image"` uint8
            `[H, W, 3]`, `"boxes"` float32 `[M, 4]` normalised
            `[ymin, xmin, ymax, xmax]`, `"labels"` int32 `[M]`, optional
            `"difficult"`, `"is_crowd"`).
        cfg: `keras_ssd.SSDConfig` (uses `image_size`; the encoder uses the
            default boxes).
        batch_size: examples per batch; the last partial batch is dropped so
            shapes are static.
        augment: True for the paper's augmentation, False to only resize, or
            an `AugmentOptions` to switch single steps.
        shuffle: True (buffer 1024), False, or a buffer size.
        seed: makes shuffling and augmentation repeatable (each epoch still
            differs from the last); None draws fresh randomness.
        drop_difficult: drop VOC `difficult` objects before encoding (Caffe
            SSD keeps them, the default).
        drop_crowd: drop COCO crowd boxes before encoding (default).
        repeat: repeat forever (then pass `steps_per_epoch` to `fit`).
        cache: cache the decoded examples in memory before augmenting.
        num_parallel_calls: parallelism of the augment+encode map.
        deterministic: element order of the parallel map (None: tf.data's
            default, i.e. deterministic unless options say otherwise).

    Returns:
        Dataset of `(images float32 [B, S, S, 3] RGB 0..255,
        y_true float32 [B, N, 5])`, S = `cfg.image_size`, N = number of
        default boxes.
    """
    options = AugmentOptions() if augment is True else augment
    if options is False or options is None:
        options = None
    elif not isinstance(options, AugmentOptions):
        raise ValueError(f"augment must be a bool or AugmentOptions, got {augment!r}")
    encoder = _encoder(cfg)
    size = int(cfg.image_size)

    ds = ds.map(_with_defaults, num_parallel_calls=_AUTOTUNE)
    if cache:
        ds = ds.cache()
    if shuffle:
        buffer = 1024 if shuffle is True else int(shuffle)
        ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    # One stateless seed pair per example; new pairs every epoch.
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    ds = tf.data.Dataset.zip((ds, seeds))

    @tf.autograph.experimental.do_not_convert
    def prepare(example, pair):
        keep = tf.ones_like(example["labels"], tf.bool)
        if drop_difficult:
            keep &= ~example["difficult"]
        if drop_crowd:
            keep &= ~example["is_crowd"]
        example = filter_objects(dict(example), keep)
        if options is None:
            example = drop_small_boxes(resize(example, size), size)
        else:
            example = augment_example(example, size, pair, options)
        image = tf.ensure_shape(example["image"], [size, size, 3])
        y_true = encoder(example["boxes"], example["labels"])
        return image, y_true

    ds = ds.map(
        prepare, num_parallel_calls=num_parallel_calls, deterministic=deterministic
    )
    ds = ds.batch(batch_size, drop_remainder=True)
    return ds.prefetch(_AUTOTUNE)


def eval_pipeline(
    ds: tf.data.Dataset,
    cfg,
    batch_size: int,
    *,
    num_parallel_calls: int = _AUTOTUNE,
) -> tf.data.Dataset:
    """Builds evaluation batches that keep what metrics need.

    Args:
        ds: example dicts from `keras_ssd.data.load`.
        cfg: `keras_ssd.SSDConfig` (uses `image_size`), or None to keep each
            image as loaded (uint8, its own size; `batch_size` must then be 1),
            for exported detectors, which resize inside.
        batch_size: examples per batch (the last batch may be smaller).
        num_parallel_calls: parallelism of the resize map.

    Returns:
        Dataset of dicts:
          `"image"`: float32 `[B, S, S, 3]` RGB 0..255, resized (bilinear);
            with `cfg=None`, uint8 `[1, H, W, 3]` as loaded;
          `"original_size"`: int32 `[B, 2]` (height, width) before resizing;
          `"boxes"`: float32 `[B, M, 4]` normalised `[ymin, xmin, ymax, xmax]`
            (normalised coordinates are the same in the original and resized
            image), zero-padded to the batch's largest M;
          `"labels"`: int32 `[B, M]`, padded with -1;
          `"difficult"`, `"is_crowd"`: bool `[B, M]`, padded with False;
          `"image_id"`: string `[B]`.
    """
    if cfg is None and batch_size != 1:
        raise ValueError(
            f"eval_pipeline without a cfg keeps images at their own sizes: batch_size must be 1, "
            f"got {batch_size!r}"
        )
    size = None if cfg is None else int(cfg.image_size)

    @tf.autograph.experimental.do_not_convert
    def prepare(example):
        example = _with_defaults(example)
        image = tf.cast(example["image"], tf.uint8 if size is None else tf.float32)
        out = {
            "image": image if size is None else resize_to_input(image, size),
            "original_size": tf.shape(example["image"])[:2],
            "boxes": example["boxes"],
            "labels": example["labels"],
            "difficult": tf.cast(example["difficult"], tf.bool),
            "is_crowd": tf.cast(example["is_crowd"], tf.bool),
            "image_id": tf.strings.as_string(example["image_id"])
            if "image_id" in example and example["image_id"].dtype != tf.string
            else example.get("image_id", tf.constant("")),
        }
        return out

    ds = ds.map(prepare, num_parallel_calls=num_parallel_calls)
    padding = {
        "image": tf.constant(0, tf.uint8) if size is None else 0.0,
        "original_size": 0,
        "boxes": 0.0,
        "labels": -1,
        "difficult": False,
        "is_crowd": False,
        "image_id": "",
    }
    ds = ds.padded_batch(
        batch_size,
        padded_shapes={
            "image": [size, size, 3],  # [None, None, 3] without a cfg
            "original_size": [2],
            "boxes": [None, 4],
            "labels": [None],
            "difficult": [None],
            "is_crowd": [None],
            "image_id": [],
        },
        padding_values=padding,
    )
    return ds.prefetch(_AUTOTUNE)
