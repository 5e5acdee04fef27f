"""SSD augmentation: geometry against a drawn rectangle, switches, seeds."""

import numpy as np
import pytest
import tensorflow as tf

from keras_ssd.data.augment import (
    MEAN_RGB,
    AugmentOptions,
    augment_example,
    paint_fill,
    photometric_distort,
    sample_crop,
)

S = 128
# A white rectangle (rows 30..69, cols 40..99 inclusive) on black, 120 x 160.
H, W = 120, 160
RECT = (30, 40, 70, 100)  # continuous corners [row0, col0, row1, col1]


def _rect_example():
    image = np.zeros((H, W, 3), np.uint8)
    image[RECT[0] : RECT[2], RECT[1] : RECT[3]] = 255
    box = np.array([[RECT[0] / H, RECT[1] / W, RECT[2] / H, RECT[3] / W]], np.float32)
    return {
        "image": tf.constant(image),
        "boxes": tf.constant(box),
        "labels": tf.constant([0], tf.int32),
        "difficult": tf.constant([True]),
        "image_id": tf.constant("rect"),
    }


def _run_many(example, n, options, size=S):
    ds = tf.data.Dataset.range(n).map(
        lambda i: augment_example(
            example, size, tf.stack([i, tf.constant(3, tf.int64)]), options
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return list(ds.as_numpy_iterator())


def test_600_random_augmentations_keep_boxes_on_the_rectangle():
    options = AugmentOptions(photometric=False)  # geometry only: colours stay readable
    outs = _run_many(_rect_example(), 600, options)
    expanded = zoomed_in = 0
    for out in outs:
        image, boxes = out["image"], out["boxes"]
        assert image.shape == (S, S, 3) and image.dtype == np.float32
        assert boxes.shape[0] in (0, 1)
        assert out["labels"].shape == out["difficult"].shape == (boxes.shape[0],)
        white = np.all(image > 190, axis=-1)  # white vs black (0) and fill (~115)
        expanded += np.any(np.all(np.abs(image - MEAN_RGB) < 1e-3, axis=-1))
        if boxes.shape[0] == 0:
            continue
        box = boxes[0]
        assert np.all(box >= 0) and np.all(box <= 1), box
        assert box[2] > box[0] and box[3] > box[1], box
        assert out["difficult"].tolist() == [True]
        rows, cols = np.nonzero(white)
        visible = np.array(
            [rows.min(), cols.min(), rows.max() + 1, cols.max() + 1], np.float32
        )
        np.testing.assert_allclose(box * S, visible, atol=2.0, err_msg=str(box * S))
        zoomed_in += (box[2] - box[0]) * (box[3] - box[1]) > 0.125 * 1.2
    # A crop must contain the single object's centre, so the box always survives.
    assert all(out["boxes"].shape[0] == 1 for out in outs)
    # Expand and zoom-in crops both happened in a good share of the draws.
    assert expanded > 150 and zoomed_in > 50


def test_all_steps_off_is_exactly_tf_image_resize():
    ex = _rect_example()
    rng = np.random.default_rng(0)
    for h, w in [(120, 160), (37, 23), (400, 300)]:
        ex["image"] = tf.constant(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        out = augment_example(ex, S, tf.constant([1, 2]), AugmentOptions.none())
        want = tf.image.resize(
            tf.cast(ex["image"], tf.float32), [S, S], method="bilinear"
        )
        np.testing.assert_allclose(out["image"].numpy(), want.numpy(), atol=1e-3)
        np.testing.assert_array_equal(out["boxes"].numpy(), ex["boxes"].numpy())


def test_flip_mirrors_image_and_boxes():
    ex = _rect_example()
    ex["image"] = tf.constant(
        np.random.default_rng(1).integers(0, 256, (H, W, 3), dtype=np.uint8)
    )
    plain = augment_example(ex, S, tf.constant([0, 0]), AugmentOptions.none())
    flips = 0
    for i in range(8):
        out = augment_example(
            ex,
            S,
            tf.constant([i, 9]),
            AugmentOptions(photometric=False, expand=False, crop=False, flip=True),
        )
        if np.array_equal(out["image"].numpy(), plain["image"].numpy()):
            continue
        flips += 1
        np.testing.assert_allclose(
            out["image"].numpy(), plain["image"].numpy()[:, ::-1], atol=1e-4
        )
        y0, x0, y1, x1 = plain["boxes"].numpy()[0]
        np.testing.assert_allclose(
            out["boxes"].numpy()[0], [y0, 1 - x1, y1, 1 - x0], atol=1e-6
        )
    assert 0 < flips < 8


def test_photometric_changes_colours_only():
    ex = _rect_example()
    options = AugmentOptions(expand=False, crop=False, flip=False)
    outs = _run_many(ex, 40, options)
    plain = augment_example(ex, S, tf.constant([0, 0]), AugmentOptions.none())[
        "image"
    ].numpy()
    changed = 0
    for out in outs:
        np.testing.assert_array_equal(out["boxes"], ex["boxes"].numpy())
        assert out["image"].min() >= 0 and out["image"].max() <= 255
        changed += not np.allclose(out["image"], plain, atol=1)
    assert changed > 20


def test_same_seed_same_result_other_seed_other_result():
    ex = _rect_example()
    a = augment_example(ex, S, tf.constant([5, 6]))
    b = augment_example(ex, S, tf.constant([5, 6]))
    np.testing.assert_array_equal(a["image"].numpy(), b["image"].numpy())
    np.testing.assert_array_equal(a["boxes"].numpy(), b["boxes"].numpy())
    others = [
        augment_example(ex, S, tf.constant([5, k]))["image"].numpy()
        for k in range(7, 12)
    ]
    assert not all(np.array_equal(a["image"].numpy(), o) for o in others)


def test_expand_always_shrinks_the_object_and_fills_with_the_mean():
    options = AugmentOptions(photometric=False, crop=False, flip=False, expand_prob=1.0)
    areas = []
    for out in _run_many(_rect_example(), 50, options):
        (box,) = out["boxes"]
        areas.append((box[2] - box[0]) * (box[3] - box[1]))
        corners = out["image"][[0, 0, -1, -1], [0, -1, 0, -1]]
        assert np.any(np.all(np.abs(corners - MEAN_RGB) < 1e-3, axis=-1))
    base = (40 / H) * (60 / W)
    assert min(areas) >= base / 16 - 1e-6 and max(areas) < base
    assert min(areas) < base / 6  # some ratios near 4


def test_image_without_objects_augments_fine():
    ex = _rect_example()
    ex.update(
        boxes=tf.zeros([0, 4]),
        labels=tf.zeros([0], tf.int32),
        difficult=tf.zeros([0], tf.bool),
    )
    for out in _run_many(ex, 50, AugmentOptions()):
        assert out["boxes"].shape == (0, 4) and out["image"].shape == (S, S, 3)
        assert np.isfinite(out["image"]).all()


@pytest.mark.parametrize("threshold", [0.3, 0.5])
def test_crop_sampler_meets_the_min_iou(threshold):
    boxes = tf.constant([[0.1, 0.1, 0.5, 0.4], [0.55, 0.5, 0.95, 0.9]])
    options = AugmentOptions(min_ious=(threshold,))
    crops = 0
    for i in range(100):
        window = sample_crop(
            boxes, tf.constant(1.0), tf.constant([i, 1]), options
        ).numpy()
        if np.allclose(window, [0, 0, 1, 1]):
            continue
        crops += 1
        h, w = window[2] - window[0], window[3] - window[1]
        assert 0.3 - 1e-6 <= h <= 1 and 0.3 - 1e-6 <= w <= 1 and 0.5 <= h / w <= 2
        ious = []
        for b in boxes.numpy():
            cy, cx = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
            if not (window[0] < cy < window[2] and window[1] < cx < window[3]):
                continue
            ih = max(0, min(b[2], window[2]) - max(b[0], window[0]))
            iw = max(0, min(b[3], window[3]) - max(b[1], window[1]))
            inter = ih * iw
            ious.append(inter / ((b[2] - b[0]) * (b[3] - b[1]) + h * w - inter))
        assert ious and max(ious) >= threshold - 1e-6
    assert crops > 20


@pytest.mark.parametrize(
    "step, reference",
    [
        (dict(contrast_range=(1.3, 1.3)), lambda x: tf.image.adjust_contrast(x, 1.3)),
        (dict(contrast_range=(0.6, 0.6)), lambda x: tf.image.adjust_contrast(x, 0.6)),
        (dict(saturation_range=(1.4, 1.4)), lambda x: tf.image.adjust_saturation(x, 1.4)),
        (dict(saturation_range=(0.5, 0.5)), lambda x: tf.image.adjust_saturation(x, 0.5)),
        (dict(hue_delta=0.04), None),
        (dict(brightness_delta=20.0), None),
    ],
)
def test_each_photometric_step_is_tf_image_s_on_the_0_to_1_scale(step, reference):
    """One step on (the others set to their identity), against tf.image's op on
    x / 255 (clipped like the step), grey and saturated pixels included."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (40, 40, 3)).astype("float32")
    x[0] = 77.0  # grey
    x[1, :, 0], x[1, :, 1:] = 255.0, 0.0  # pure red
    x = tf.constant(x)
    identity = dict(brightness_delta=0.0, contrast_range=(1.0, 1.0), saturation_range=(1.0, 1.0), hue_delta=0.0)
    options = AugmentOptions(photometric_prob=1.0, **{**identity, **step})
    seed = tf.constant([5, 6])
    out = photometric_distort(x, seed, options).numpy()
    if reference is None:  # the step's amount is drawn: read it from the same draw
        u = tf.random.stateless_uniform([9], seed).numpy()
        if "hue_delta" in step:
            amount = -step["hue_delta"] + 2 * step["hue_delta"] * u[7]
            reference = lambda x: tf.image.adjust_hue(x, amount)  # noqa: E731
        else:
            amount = 255.0 * (-step["brightness_delta"] + 2 * step["brightness_delta"] * u[1]) / 255.0
            reference = lambda x: tf.image.adjust_brightness(x, amount / 255.0)  # noqa: E731
    want = tf.clip_by_value(reference(x / 255.0), 0.0, 1.0).numpy() * 255.0
    np.testing.assert_allclose(out, want, atol=0.05)
    assert not np.allclose(out, x.numpy(), atol=1)


def test_skipped_photometric_steps_leave_the_pixels_as_they_are():
    image = tf.random.stateless_uniform([20, 30, 3], [1, 2], 0.0, 255.0)
    never = AugmentOptions(photometric_prob=0.0)
    np.testing.assert_array_equal(photometric_distort(image, tf.constant([3, 4]), never).numpy(), image.numpy())
    always = AugmentOptions(photometric_prob=1.0)
    out = photometric_distort(image, tf.constant([3, 4]), always).numpy()
    assert out.min() >= 0 and out.max() <= 255 and not np.allclose(out, image.numpy(), atol=1)


@pytest.mark.parametrize("rows, cols", [((3, 9), (0, 12)), ((0, 12), (5, 6)), ((4, 4), (2, 7)), ((0, 12), (0, 12))])
def test_paint_fill_keeps_the_run_of_rows_and_columns_and_fills_the_rest(rows, cols):
    image = tf.random.stateless_uniform([12, 12, 3], [7, 8], 0.0, 255.0)
    in_rows = tf.range(12) >= rows[0]
    in_rows &= tf.range(12) < rows[1]
    in_cols = (tf.range(12) >= cols[0]) & (tf.range(12) < cols[1])
    fill = (1.0, 2.0, 3.0)
    inside = (in_rows[:, None] & in_cols[None, :]).numpy()[..., None]
    want = np.where(inside, image.numpy(), np.float32(fill))
    np.testing.assert_array_equal(paint_fill(image, in_rows, in_cols, fill).numpy(), want)
