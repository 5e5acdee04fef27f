"""`"shapes"`: a generated detection dataset that needs no files and no network.

Each image (size drawn per image, default 256..320 px per side) has a textured
background (colour gradient, sinusoidal stripes, noise) and 1..`max_objects`
solid shapes of the classes `CLASS_NAMES`, with sides from 3% to 80% of the
image's shorter side (log-uniform, so small objects are common). Shapes are
drawn largest first, so the smaller ones lie on top and none is hidden.
Every shape touches all four sides of its box on the pixel grid, so the boxes
are exact: `[y0 / H, x0 / W, (y0 + s) / H, (x0 + s) / W]` for a shape whose
`s`x`s` pixel block starts at row `y0`, column `x0`.

A model must also learn to answer "nothing here": `empty_share` of the images
(10% by default) have no objects, and `plain_share` (20%) have a background of
a flat colour and gradient, without stripes or noise. Without them every image
has objects on a textured background, every texture-free region a model sees in
training is an object's inside, and the model calls a blank image one large
square (measured: 0.85-0.91 on constant images).

Generation is pure TensorFlow (stateless random ops keyed by seed, split and
index), so it runs in a parallel `map`, the same seed gives the same images,
and the splits use disjoint random streams.
"""

from collections.abc import Sequence

import tensorflow as tf

from keras_ssd.ops.images import paste

CLASS_NAMES = ("circle", "square", "triangle")
SPLITS = {"train": 0, "validation": 1, "test": 2}
DEFAULT_NUM_EXAMPLES = {"train": 2000, "validation": 200, "test": 200}
# Per-channel offset of object colours from the background's mean colour,
# taken modulo 256: every channel then differs by at least 80 levels.
_MIN_COLOUR_OFFSET, _MAX_COLOUR_OFFSET = 80, 176


def class_names() -> list:
    """`["circle", "square", "triangle"]`: label k is `names[k]`."""
    return list(CLASS_NAMES)


def _uniform(seed, shape, lo, hi, dtype=tf.float32):
    return tf.random.stateless_uniform(shape, seed, lo, hi, dtype=dtype)


def _background(seeds, height, width, textured=True):
    hf, wf = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    yy = (tf.range(hf) + 0.5)[:, None, None] / hf  # [H,1,1]
    xx = (tf.range(wf) + 0.5)[None, :, None] / wf  # [1,W,1]
    # Plain backgrounds span the whole range, black and white included.
    mean = tf.where(textured, _uniform(seeds[0], [3], 30.0, 226.0), _uniform(seeds[0], [3], 0.0, 255.0))
    # Linear colour gradient in a random direction.
    grad = _uniform(seeds[1], [2, 3], -30.0, 30.0)
    image = mean + grad[0] * (yy - 0.5) * 2 + grad[1] * (xx - 0.5) * 2
    texture = tf.cast(textured, tf.float32)  # 0: a plain background
    # Sinusoidal stripes of random frequency and orientation.
    params = _uniform(seeds[2], [4], 0.0, 1.0)
    angle = params[0] * 3.14159
    freq = 3.0 + 20.0 * params[1]
    phase = tf.sin(
        (tf.cos(angle) * yy + tf.sin(angle) * xx) * freq * 6.28318 + params[2] * 6.28
    )
    image += texture * phase * (5.0 + 20.0 * params[3]) * _uniform(seeds[3], [3], 0.3, 1.0)
    image += texture * _uniform(seeds[4], tf.stack([height, width, 3]), -12.0, 12.0)
    return image, mean


def _shape_mask(label, s, top, left):
    """bool `[s, s]`: which pixels of the `s` x `s` block whose top-left
    corner is (`top`, `left`) (float32, whole pixels) shape `label` covers,
    tested at pixel centres."""
    yy = (top + tf.range(s) + 0.5)[:, None]
    xx = (left + tf.range(s) + 0.5)[None, :]
    cy, cx = top + s / 2, left + s / 2
    in_rows = (yy >= top) & (yy <= top + s)

    def circle():
        return tf.square(yy - cy) + tf.square(xx - cx) <= tf.square(s / 2)

    def square():
        return in_rows & ((xx >= left) & (xx <= left + s))

    def triangle():
        # Apex at the top centre; the extra half pixel keeps the apex row and
        # makes every triangle touch all four sides of its box.
        return in_rows & (tf.abs(xx - cx) <= (s / 2) * (yy - top) / s + 0.5)

    return tf.switch_case(label, [circle, square, triangle])


def _paint_shape(image, label, s, top, left, colour):
    """`image` (float32 `[H, W, 3]`) with shape `label` of side `s` at block
    (`top`, `left`) painted in `colour` (float32 `[3]`)."""
    mask = _shape_mask(label, s, top, left)
    r0, c0 = tf.cast(top, tf.int32), tf.cast(left, tf.int32)
    r1, c1 = r0 + tf.shape(mask)[0], c0 + tf.shape(mask)[1]
    block = tf.where(mask[..., None], colour, image[r0:r1, c0:c1])
    return paste(image, block, r0, c0)


@tf.autograph.experimental.do_not_convert
def generate_example(
    index: tf.Tensor,
    *,
    seed: tuple[int, int],
    split_name: str = "train",
    size_range: tuple[int, int] = (256, 320),
    max_objects: int = 4,
    min_objects: int = 1,
    object_size: tuple[float, float] = (0.03, 0.8),
    empty_share: float = 0.1,
    plain_share: float = 0.2,
):
    """Generates example `index` (graph-mode safe, no Python per pixel).

    Args:
        index: scalar int64, the example's index in its split.
        seed: `(seed, split id)`: the base of the stateless random stream.
        split_name: used in `image_id`.
        size_range: `(min, max)` image height and width in pixels (inclusive).
        max_objects, min_objects: object count range (inclusive).
        object_size: `(min, max)` object side as a fraction of the shorter
            image side.
        empty_share: probability that the image has no objects (M = 0).
        plain_share: probability that the background is a flat colour and
            gradient only (no stripes, no noise).

    Returns:
        `{"image": uint8[H,W,3], "boxes": float32[M,4]` normalised
        `[ymin, xmin, ymax, xmax]` in drawing order (back to front),
        `"labels": int32[M], "difficult": bool[M]` (all False),
        `"image_id": string}`.
    """
    key = tf.random.experimental.stateless_fold_in(tf.constant(seed, tf.int64), index)
    seeds = tf.unstack(tf.random.experimental.stateless_split(key, num=12))
    lo, hi = size_range
    hw = tf.random.stateless_uniform([2], seeds[0], lo, hi + 1, dtype=tf.int32)
    height, width = hw[0], hw[1]
    k_max = max_objects
    count = tf.random.stateless_uniform(
        [], seeds[1], min_objects, max_objects + 1, dtype=tf.int32
    )
    # Their own streams (folded from the key), so the default images stay as they were.
    extra = tf.random.stateless_uniform([2], tf.random.experimental.stateless_fold_in(key, -1))
    if empty_share > 0:
        count = tf.where(extra[0] < empty_share, 0, count)

    short = tf.cast(tf.minimum(height, width), tf.float32)
    log_side = _uniform(
        seeds[2], [k_max], tf.math.log(object_size[0]), tf.math.log(object_size[1])
    )
    side = tf.maximum(tf.round(tf.exp(log_side) * short), 3.0)
    side = tf.sort(side[:count], direction="DESCENDING")  # largest drawn first
    side_i = tf.cast(side, tf.int32)
    y0 = tf.floor(
        _uniform(seeds[3], [count], 0.0, 1.0) * tf.cast(height - side_i + 1, tf.float32)
    )
    x0 = tf.floor(
        _uniform(seeds[4], [count], 0.0, 1.0) * tf.cast(width - side_i + 1, tf.float32)
    )
    labels = tf.random.stateless_uniform(
        [count], seeds[5], 0, len(CLASS_NAMES), dtype=tf.int32
    )

    background, mean = _background(seeds[6:11], height, width, textured=extra[1] >= plain_share)
    offsets = tf.random.stateless_uniform(
        [count, 3], seeds[11], _MIN_COLOUR_OFFSET, _MAX_COLOUR_OFFSET, dtype=tf.int32
    )
    colours = tf.cast(
        tf.math.floormod(tf.cast(mean, tf.int32) + offsets, 256), tf.float32
    )

    # Objects are painted back to front, each only over its own s x s block
    # (the shapes never leave it), so the top-most one shows.
    image = background
    for k in range(k_max):
        image = tf.cond(
            k < count,
            lambda k=k: _paint_shape(image, labels[k], side[k], y0[k], x0[k], colours[k]),
            lambda: image,
        )
    image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)

    hf, wf = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    boxes = tf.stack([y0 / hf, x0 / wf, (y0 + side) / hf, (x0 + side) / wf], axis=1)
    return {
        "image": image,
        "boxes": tf.reshape(boxes, [-1, 4]),
        "labels": labels,
        "difficult": tf.zeros([count], tf.bool),
        "image_id": tf.strings.join(
            ["shapes/", split_name, "/", tf.strings.as_string(index, width=6, fill="0")]
        ),
    }


def load(
    split: str = "train",
    *,
    num_examples: int | None = None,
    image_size: int | Sequence[int] = (256, 320),
    max_objects: int = 4,
    min_objects: int = 1,
    object_size: tuple[float, float] = (0.03, 0.8),
    empty_share: float = 0.1,
    plain_share: float = 0.2,
    seed: int = 0,
) -> tf.data.Dataset:
    """The generated shapes dataset.

    Args:
        split: "train", "validation" or "test" (disjoint random streams).
        num_examples: examples in the split (default 2000 train, 200 others).
        image_size: side in pixels, or `(min, max)` range: each image draws
            its height and width from it.
        max_objects, min_objects: objects per image (inclusive range).
        object_size: `(min, max)` object side as a fraction of the image's
            shorter side.
        empty_share: share of images without objects (only background), in
            [0, 1].
        plain_share: share of images whose background is a flat colour
            (any level, black and white included) and gradient without
            stripes or noise, in [0, 1].
        seed: base seed; the same seed gives the same dataset.

    Returns:
        Dataset of `{"image": uint8[H,W,3], "boxes": float32[M,4]` normalised
        `[ymin, xmin, ymax, xmax]`, `"labels": int32[M], "difficult": bool[M],
        "image_id": string}`.

    Raises:
        ValueError: for an unknown split or inconsistent sizes.
    """
    if split not in SPLITS:
        raise ValueError(
            f"Unknown shapes split {split!r}; valid splits: {sorted(SPLITS)}"
        )
    size_range = (
        (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    )
    if len(size_range) != 2 or not 8 <= size_range[0] <= size_range[1]:
        raise ValueError(
            f"image_size must be an int >= 8 or a (min, max) pair, got {image_size!r}"
        )
    if not 1 <= min_objects <= max_objects:
        raise ValueError(
            f"need 1 <= min_objects <= max_objects, got {min_objects!r} and {max_objects!r}"
        )
    if not 0 < object_size[0] <= object_size[1] <= 1:
        raise ValueError(
            f"object_size must satisfy 0 < min <= max <= 1, got {object_size!r}"
        )
    for name, share in (("empty_share", empty_share), ("plain_share", plain_share)):
        if not 0 <= share <= 1:
            raise ValueError(f"{name} must be in [0, 1], got {share!r}")
    n = DEFAULT_NUM_EXAMPLES[split] if num_examples is None else int(num_examples)
    if n < 0:
        raise ValueError(f"num_examples must be >= 0, got {num_examples!r}")
    options = {
        "seed": (int(seed), SPLITS[split]),
        "split_name": split,
        "size_range": size_range,
        "max_objects": int(max_objects),
        "min_objects": int(min_objects),
        "object_size": tuple(float(v) for v in object_size),
        "empty_share": float(empty_share),
        "plain_share": float(plain_share),
    }
    return tf.data.Dataset.range(n).map(
        lambda i: generate_example(i, **options),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
