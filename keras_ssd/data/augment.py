"""SSD data augmentation (Liu et al. 2016, section 2.2 and 3.6) as TF ops.

Steps, each switchable in `AugmentOptions`:

1. photometric distortion: brightness, contrast (before or after the colour
   step, at random), saturation and hue, each applied with probability 0.5;
2. expand ("zoom out"): with probability 0.5 place the image at a random
   spot of a canvas up to 4x its size filled with the mean colour;
3. min-IoU random crop (the paper's sampler): pick one of {whole image, IoU
   0.1, 0.3, 0.5, 0.7, 0.9, any}, try 50 patches with sides in [0.3, 1] of the
   canvas and aspect ratio in [1/2, 2], keep the first whose IoU with some
   object (among those whose centre it contains) reaches the threshold;
   objects are kept if their centre lies in the patch and clipped to it;
4. horizontal flip with probability 0.5;
5. resize to the square network input.

Expand, crop, flip and resize are one affine map, so they are applied as a
single bilinear resampling of the source image straight to `S x S` pixels:
no 4x canvas is ever built and the cost does not depend on the expand ratio.
Photometric distortion then runs on the `S x S` result, and the canvas fill
is painted last so the fill keeps the mean colour, as in the paper's order.

Everything is graph-mode TensorFlow with stateless random ops: usable in a
parallel `Dataset.map`, no Python per image, and the same `seed` (an int
tensor of shape [2]) gives the same result.
"""

import dataclasses
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from keras_ssd.layers.preprocessing import VGG_BGR_MEAN
from keras_ssd.ops import boxes as box_ops
from keras_ssd.ops.images import paste, resize_to_input

# VGG / ImageNet mean in RGB order, the paper's expand fill colour.
MEAN_RGB = tuple(reversed(VGG_BGR_MEAN))
# Per-object keys that are filtered together with "boxes".
OBJECT_KEYS = ("boxes", "labels", "difficult", "is_crowd")


@dataclasses.dataclass(frozen=True)
class AugmentOptions:
    """Switches and parameters of `augment_example`. Defaults follow the paper.

    Attributes:
        photometric: apply photometric distortion.
        brightness_delta: max brightness shift in pixel levels (0..255).
        contrast_range: contrast factor range.
        saturation_range: saturation factor range.
        hue_delta: max hue shift as a fraction of the hue circle (0.05 = 18
            degrees).
        photometric_prob: probability of each photometric step.
        expand: apply expand (zoom out).
        expand_prob: probability of expanding.
        max_expand_ratio: largest canvas side / image side.
        fill: RGB fill of the canvas (0..255).
        crop: apply the min-IoU random crop.
        min_ious: the sampler's options; None = keep the whole image,
            0.0 = any patch containing an object centre.
        crop_scale: range of patch side / canvas side.
        crop_aspect: range of patch height / width in pixels.
        crop_trials: patches tried per image (vectorised, not a loop).
        flip: apply horizontal flip with probability 0.5.
        min_box_size: boxes smaller than this many output pixels in height
            or width after augmentation are dropped.
    """

    photometric: bool = True
    brightness_delta: float = 32.0
    contrast_range: tuple[float, float] = (0.5, 1.5)
    saturation_range: tuple[float, float] = (0.5, 1.5)
    hue_delta: float = 0.05
    photometric_prob: float = 0.5
    expand: bool = True
    expand_prob: float = 0.5
    max_expand_ratio: float = 4.0
    fill: tuple[float, float, float] = MEAN_RGB
    crop: bool = True
    min_ious: Sequence[float | None] = (None, 0.1, 0.3, 0.5, 0.7, 0.9, 0.0)
    crop_scale: tuple[float, float] = (0.3, 1.0)
    crop_aspect: tuple[float, float] = (0.5, 2.0)
    crop_trials: int = 50
    flip: bool = True
    min_box_size: float = 1.0

    def __post_init__(self):
        # JSON/YAML give lists; store tuples so equal options compare equal.
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, list):
                object.__setattr__(self, field.name, tuple(value))

    @classmethod
    def none(cls) -> "AugmentOptions":
        """All steps off: `augment_example` only resizes."""
        return cls(photometric=False, expand=False, crop=False, flip=False)


def photometric_distort(
    image: tf.Tensor, seed: tf.Tensor, options: AugmentOptions
) -> tf.Tensor:
    """Random brightness, contrast, saturation and hue.

    Args:
        image: float32 `[H, W, 3]` RGB in 0..255.
        seed: int `[2]` stateless seed.
        options: ranges and probability.

    Returns:
        float32 `[H, W, 3]` RGB clipped to 0..255.
    """
    u = tf.random.stateless_uniform([9], seed)
    p = options.photometric_prob

    def pick(i, lo, hi, identity):
        return tf.where(u[i] < p, lo + (hi - lo) * u[i + 1], identity)

    delta = pick(0, -options.brightness_delta, options.brightness_delta, 0.0)
    contrast = pick(2, options.contrast_range[0], options.contrast_range[1], 1.0)
    saturation = pick(4, options.saturation_range[0], options.saturation_range[1], 1.0)
    hue = pick(6, -options.hue_delta, options.hue_delta, 0.0)
    contrast_first = u[8] < 0.5

    def adjust_contrast(x):
        # (x - mean) * c + mean with one broadcasting op, not two (each costs
        # several element-wise ones on [H, W, 3]).
        shift = tf.reduce_mean(x, axis=[0, 1]) * (1.0 - contrast)
        return tf.clip_by_value(x * contrast + shift, 0.0, 255.0)

    def brighten(x):
        return tf.clip_by_value(x + delta, 0.0, 255.0)

    # HSV saturation and hue do not depend on the value scale, so the kernels
    # run on 0..255 directly; they can leave rounding error just outside it.
    def saturate(x):
        return tf.clip_by_value(tf.image.adjust_saturation(x, saturation), 0.0, 255.0)

    def rotate_hue(x):
        return tf.clip_by_value(tf.image.adjust_hue(x, hue), 0.0, 255.0)

    def unless(identity, step, x):
        # A skipped step (half of them) costs no pass over the pixels.
        return tf.cond(identity, lambda: x, lambda: step(x))

    no_contrast = contrast == 1.0
    image = unless(delta == 0.0, brighten, image)
    image = unless(~contrast_first | no_contrast, adjust_contrast, image)
    image = unless(saturation == 1.0, saturate, image)
    image = unless(hue == 0.0, rotate_hue, image)
    return unless(contrast_first | no_contrast, adjust_contrast, image)


def _centres_inside(boxes: tf.Tensor, windows: tf.Tensor) -> tf.Tensor:
    """Whether each box centre lies strictly inside each window -> `[T, M]`."""
    cy = (boxes[:, 0] + boxes[:, 2]) / 2
    cx = (boxes[:, 1] + boxes[:, 3]) / 2
    w = windows[:, None, :]
    return (cy > w[..., 0]) & (cy < w[..., 2]) & (cx > w[..., 1]) & (cx < w[..., 3])


def sample_expand(seed: tf.Tensor, options: AugmentOptions):
    """Samples the expand step.

    Returns:
        `(ratio, offset)`: scalar canvas/image side ratio (1 = no expand) and
        float32 `[2]` `(top, left)` of the image on the canvas, as fractions
        of the canvas side.
    """
    u = tf.random.stateless_uniform([4], seed)
    ratio = tf.where(
        u[0] < options.expand_prob, 1.0 + (options.max_expand_ratio - 1.0) * u[1], 1.0
    )
    offset = (1.0 - 1.0 / ratio) * u[2:4]
    return ratio, offset


def sample_crop(
    boxes: tf.Tensor, aspect: tf.Tensor, seed: tf.Tensor, options: AugmentOptions
) -> tf.Tensor:
    """The paper's min-IoU patch sampler, vectorised over all trials.

    Args:
        boxes: float32 `[M, 4]` normalised `[ymin, xmin, ymax, xmax]` on the
            canvas (M may be 0: then any patch is accepted).
        aspect: scalar canvas height / width in pixels.
        seed: int `[2]` stateless seed.
        options: sampler options.

    Returns:
        float32 `[4]` patch `[ymin, xmin, ymax, xmax]` in canvas-normalised
        coordinates (`[0, 0, 1, 1]` for "whole image" or when no trial fits).
    """
    seeds = tf.random.experimental.stateless_split(seed, num=2)
    thresholds = tf.constant(
        [-1.0 if t is None else float(t) for t in options.min_ious]
    )
    choice = tf.random.stateless_uniform(
        [], seeds[0], 0, len(options.min_ious), dtype=tf.int32
    )
    min_iou = thresholds[choice]
    u = tf.random.stateless_uniform([options.crop_trials, 4], seeds[1])
    lo, hi = options.crop_scale
    h = lo + (hi - lo) * u[:, 0]
    w = lo + (hi - lo) * u[:, 1]
    top = (1.0 - h) * u[:, 2]
    left = (1.0 - w) * u[:, 3]
    windows = tf.stack([top, left, top + h, left + w], axis=1)
    ratio = h * aspect / w
    ok = (ratio >= options.crop_aspect[0]) & (ratio <= options.crop_aspect[1])
    inside = _centres_inside(boxes, windows)
    iou = tf.where(inside, box_ops.iou(windows, boxes), -1.0)
    best = tf.reduce_max(
        tf.concat([iou, tf.fill([options.crop_trials, 1], -1.0)], 1), axis=1
    )
    has_objects = tf.shape(boxes)[0] > 0
    ok &= tf.logical_not(has_objects) | (
        tf.reduce_any(inside, axis=1) & (best >= min_iou)
    )
    found = tf.reduce_any(ok) & (min_iou >= 0.0)
    first = tf.argmax(tf.cast(ok, tf.int32), output_type=tf.int32)
    return tf.where(found, windows[first], tf.constant([0.0, 0.0, 1.0, 1.0]))


def _axis_samples(start, stop, size_in, size_out):
    """Bilinear taps along one axis for output pixels covering [start, stop].

    `start`/`stop` are continuous pixel coordinates of the source (pixel i
    spans [i, i + 1]); output pixel j samples the source at
    `start + (j + 0.5) * (stop - start) / size_out`, half-pixel centres as in
    `tf.image.resize`. Samples are clamped to the image; `inside` marks output
    pixels whose centre falls on the image (the rest show the fill).
    """
    size_f = tf.cast(size_in, tf.float32)
    j = tf.range(size_out, dtype=tf.float32) + 0.5
    coords = start + j * (stop - start) / size_out  # continuous
    inside = (coords >= 0.0) & (coords <= size_f)
    idx = tf.clip_by_value(coords - 0.5, 0.0, size_f - 1.0)
    i0 = tf.floor(idx)
    i1 = tf.minimum(i0 + 1.0, size_f - 1.0)
    frac = idx - i0
    return tf.cast(i0, tf.int32), tf.cast(i1, tf.int32), frac, inside


def resample(image: tf.Tensor, window: tf.Tensor, size: int, flip=False):
    """Bilinearly resamples `window` of `image` to `size x size`.

    Args:
        image: `[H, W, 3]` any real/uint dtype.
        window: float32 `[4]` `[ymin, xmin, ymax, xmax]` normalised to the
            image; may extend outside [0, 1] (that part is reported as
            outside).
        size: output side S.
        flip: bool scalar; mirror left-right.

    Returns:
        `(float32 [S, S, 3], in_rows bool [S], in_cols bool [S])`: the
        resampled window and which output rows / columns lie on the image
        (pixel (i, j) does when both do).
    """
    shape = tf.shape(image)
    h, w = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
    y0, y1, fy, in_y = _axis_samples(window[0] * h, window[2] * h, shape[0], size)
    x0, x1, fx, in_x = _axis_samples(window[1] * w, window[3] * w, shape[1], size)
    x0, x1, fx, in_x = [
        tf.where(flip, tf.reverse(t, [0]), t) for t in (x0, x1, fx, in_x)
    ]
    # Gather the needed rows first, then convert: only S rows become float.
    top = tf.cast(tf.gather(image, y0), tf.float32)
    bottom = tf.cast(tf.gather(image, y1), tf.float32)
    rows = top + (bottom - top) * fy[:, None, None]
    left = tf.gather(rows, x0, axis=1)
    out = left + (tf.gather(rows, x1, axis=1) - left) * fx[None, :, None]
    return out, in_y, in_x


def paint_fill(image: tf.Tensor, in_rows: tf.Tensor, in_cols: tf.Tensor, fill) -> tf.Tensor:
    """Sets the pixels of `image` (float32 `[S, S, 3]`) outside `in_rows` x
    `in_cols` (bool `[S]` each, one contiguous run of True, as `resample`
    gives) to the RGB `fill`.

    The image part is pasted into a fill image (`ops.images.paste`).
    """
    size = image.shape[0]
    canvas = tf.constant(np.broadcast_to(np.asarray(fill, np.float32), (size, size, 3)))

    def run(inside):
        first = tf.argmax(tf.cast(inside, tf.int32), output_type=tf.int32)
        return first, first + tf.reduce_sum(tf.cast(inside, tf.int32))

    (r0, r1), (c0, c1) = run(in_rows), run(in_cols)
    return paste(canvas, image[r0:r1, c0:c1], r0, c0)


def filter_objects(example: dict, keep: tf.Tensor) -> dict:
    """Keeps the objects where `keep` (bool `[M]`) in every per-object key."""
    example = dict(example)
    for key in OBJECT_KEYS:
        if key in example:
            example[key] = tf.boolean_mask(example[key], keep)
    return example


class Geometry(NamedTuple):
    """The sampled geometric steps of one example (`sample_geometry`).

    Attributes:
        boxes: float32 `[M, 4]` the objects after expand, crop, flip,
            normalised `[ymin, xmin, ymax, xmax]` of the output, clipped to it.
        keep: bool `[M]`, objects that stay: centre in the patch and at least
            `min_box_size` output pixels high and wide.
        window: float32 `[4]`, the patch in canvas-normalised coordinates.
        ratio: scalar canvas side / image side (1 without expand).
        offset: float32 `[4]`, the image's `(top, left, top, left)` on the canvas
            as fractions of the canvas side.
        flip: bool scalar.
    """

    boxes: tf.Tensor
    keep: tf.Tensor
    window: tf.Tensor
    ratio: tf.Tensor
    offset: tf.Tensor
    flip: tf.Tensor


def sample_geometry(
    boxes: tf.Tensor, aspect: tf.Tensor, image_size: int, seeds, options: AugmentOptions
) -> Geometry:
    """Samples expand, crop and flip for one example and moves its boxes.

    Args:
        boxes: float32 `[M, 4]` normalised `[ymin, xmin, ymax, xmax]`.
        aspect: scalar image height / width in pixels.
        image_size: side S of the square output.
        seeds: three int `[2]` stateless seeds (expand, crop, flip).
        options: which steps run, and their parameters.

    Returns:
        A `Geometry`.
    """
    if options.expand:
        ratio, offset = sample_expand(seeds[0], options)
    else:
        ratio, offset = tf.constant(1.0), tf.zeros([2])
    offset4 = tf.tile(offset, [2])
    canvas_boxes = offset4 + boxes / ratio
    if options.crop:
        window = sample_crop(canvas_boxes, aspect, seeds[1], options)
    else:
        window = tf.constant([0.0, 0.0, 1.0, 1.0])
    flip = (
        tf.random.stateless_uniform([], seeds[2]) < 0.5
        if options.flip
        else tf.constant(False)
    )

    # Objects: keep those whose centre is in the patch, clip, renormalise.
    keep = _centres_inside(canvas_boxes, window[None])[0] | tf.reduce_all(
        window == tf.constant([0.0, 0.0, 1.0, 1.0])
    )
    size_hw = tf.tile(window[2:] - window[:2], [2])
    clipped = tf.clip_by_value(
        canvas_boxes, tf.tile(window[:2], [2]), tf.tile(window[2:], [2])
    )
    new_boxes = (clipped - tf.tile(window[:2], [2])) / size_hw
    ymin, xmin, ymax, xmax = tf.unstack(tf.clip_by_value(new_boxes, 0.0, 1.0), axis=1)
    xmin, xmax = tf.where(flip, 1.0 - xmax, xmin), tf.where(flip, 1.0 - xmin, xmax)
    new_boxes = tf.stack([ymin, xmin, ymax, xmax], axis=1)
    min_side = options.min_box_size / image_size
    keep &= (ymax - ymin >= min_side) & (xmax - xmin >= min_side)
    return Geometry(new_boxes, keep, window, ratio, offset4, flip)


def _example_seeds(seed):
    """The four stateless seeds of one example: expand, crop, flip, photometric."""
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
    return tf.unstack(tf.random.experimental.stateless_split(seed, num=4))


def image_aspect(image):
    """Scalar float32 height / width of an `[H, W, C]` image."""
    shape = tf.shape(image)
    return tf.cast(shape[0], tf.float32) / tf.cast(shape[1], tf.float32)


def augment_boxes(
    boxes: tf.Tensor,
    aspect: tf.Tensor,
    image_size: int,
    seed: tf.Tensor,
    options: AugmentOptions = AugmentOptions(),
) -> tf.Tensor:
    """The boxes `augment_example` gives for the same `seed`, without the pixels.

    For measuring objects as the matcher sees them in training (e.g.
    `keras_ssd.fit_default_boxes`), at the cost of a few small ops per example.

    Args:
        boxes: float `[M, 4]` normalised `[ymin, xmin, ymax, xmax]`.
        aspect: scalar image height / width in pixels.
        image_size: side S of the square output.
        seed: int `[2]` stateless seed.
        options: which steps run, and their parameters.

    Returns:
        float32 `[M', 4]`: the objects that stay, normalised to the output.
    """
    boxes = tf.reshape(tf.cast(boxes, tf.float32), [-1, 4])
    geometry = sample_geometry(boxes, aspect, image_size, _example_seeds(seed)[:3], options)
    return tf.boolean_mask(geometry.boxes, geometry.keep)


def augment_example(
    example: dict,
    image_size: int,
    seed: tf.Tensor,
    options: AugmentOptions = AugmentOptions(),
) -> dict:
    """Applies SSD augmentation to one example and resizes it.

    Args:
        example: `{"image": uint8/float [H, W, 3] RGB 0..255, "boxes": float32
            [M, 4]` normalised `[ymin, xmin, ymax, xmax]`, `"labels": [M]`,
            optional `"difficult"`, `"is_crowd"` `[M]`, other keys passed
            through}`.
        image_size: side S of the square output.
        seed: int `[2]` stateless seed (e.g. from `tf.data.Dataset.random`).
        options: which steps run, and their parameters.

    Returns:
        The example with `"image"` float32 `[S, S, 3]` RGB 0..255 and the
        per-object keys transformed and filtered alike; boxes normalised
        `[ymin, xmin, ymax, xmax]` within [0, 1], each at least
        `options.min_box_size` output pixels high and wide.
    """
    example = dict(example)
    seeds = _example_seeds(seed)
    image = example["image"]
    boxes = tf.reshape(tf.cast(example["boxes"], tf.float32), [-1, 4])
    geometry = sample_geometry(boxes, image_aspect(image), image_size, seeds[:3], options)
    example["boxes"] = geometry.boxes
    example = filter_objects(example, geometry.keep)

    # Pixels: one resampling from the source; the window in image coordinates.
    image_window = (geometry.window - geometry.offset) * geometry.ratio
    out, in_rows, in_cols = resample(image, image_window, image_size, geometry.flip)
    if options.photometric:
        out = photometric_distort(out, seeds[3], options)
    example["image"] = tf.cond(
        tf.reduce_all(in_rows) & tf.reduce_all(in_cols),
        lambda: out,
        lambda: paint_fill(out, in_rows, in_cols, options.fill),
    )
    return example


def drop_small_boxes(example: dict, image_size: int, min_size: float = 1.0) -> dict:
    """Drops objects whose box is under `min_size` pixels high or wide (or
    non-finite) at an output side of `image_size`; boxes are normalised
    `[ymin, xmin, ymax, xmax]`. Keeps the encoder's log-size targets small."""
    boxes = tf.reshape(tf.cast(example["boxes"], tf.float32), [-1, 4])
    side = min_size / image_size
    keep = (boxes[:, 2] - boxes[:, 0] >= side) & (boxes[:, 3] - boxes[:, 1] >= side)
    return filter_objects(example, keep)


def resize(example: dict, image_size: int) -> dict:
    """Resizes the image to `[S, S, 3]` float32 (bilinear, half-pixel
    centres); normalised boxes are unchanged."""
    return {**example, "image": resize_to_input(example["image"], image_size)}
