"""train_pipeline / eval_pipeline: shapes, seeds, targets, and model.fit."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_ssd
from keras_ssd import data


@pytest.fixture
def shapes_ds():
    return data.load("shapes", "train", num_examples=12, image_size=(64, 96))


def test_train_batches_have_static_shapes_and_finite_targets(shapes_ds, tiny_cfg):
    ds = data.train_pipeline(shapes_ds, tiny_cfg, batch_size=4, seed=0)
    n = keras_ssd.TargetEncoder(tiny_cfg).num_boxes
    images_spec, y_spec = ds.element_spec
    assert (
        images_spec.shape.as_list() == [4, 160, 160, 3]
        and images_spec.dtype == tf.float32
    )
    assert y_spec.shape.as_list() == [4, n, 5] and y_spec.dtype == tf.float32
    batches = list(ds.as_numpy_iterator())
    assert len(batches) == 3  # 12 examples, drop_remainder
    for images, y_true in batches:
        assert images.min() >= 0 and images.max() <= 255
        assert np.isfinite(y_true).all()
        classes = y_true[..., 4]
        assert set(np.unique(classes)) <= {0, 1, 2, 3}
        assert (classes > 0).sum() > 0


def test_seed_repeats_the_run_and_epochs_differ(shapes_ds, tiny_cfg):
    def run():
        ds = data.train_pipeline(shapes_ds, tiny_cfg, batch_size=4, seed=7)
        return [b[0] for b in ds.as_numpy_iterator()], [
            b[0] for b in ds.as_numpy_iterator()
        ]

    (a1, a2), (b1, b2) = run(), run()
    for x, y in zip(a1 + a2, b1 + b2):
        np.testing.assert_array_equal(x, y)
    assert not all(np.array_equal(x, y) for x, y in zip(a1, a2))  # new draws each epoch


def test_without_augmentation_targets_are_the_encoded_source_boxes(shapes_ds, tiny_cfg):
    ds = data.train_pipeline(
        shapes_ds, tiny_cfg, batch_size=1, augment=False, shuffle=False
    )
    encoder = keras_ssd.TargetEncoder(tiny_cfg)
    for ex, (image, y_true) in zip(shapes_ds.take(4), ds.take(4)):
        np.testing.assert_allclose(
            y_true[0].numpy(), encoder(ex["boxes"], ex["labels"]).numpy()
        )
        want = tf.image.resize(tf.cast(ex["image"], tf.float32), [160, 160])
        np.testing.assert_allclose(image[0].numpy(), want.numpy(), atol=1e-3)


def test_crowd_boxes_are_dropped_for_training(tiny_cfg):
    ex = {
        "image": tf.zeros([32, 32, 3], tf.uint8),
        "boxes": tf.constant([[0.1, 0.1, 0.6, 0.6], [0.2, 0.3, 0.9, 0.9]]),
        "labels": tf.constant([0, 1], tf.int32),
        "difficult": tf.constant([False, False]),
        "is_crowd": tf.constant([True, False]),
        "image_id": tf.constant("c"),
    }
    ds = tf.data.Dataset.from_tensors(ex)
    ((_, y_true),) = data.train_pipeline(
        ds, tiny_cfg, 1, augment=False
    ).as_numpy_iterator()
    assert set(np.unique(y_true[..., 4])) == {0, 2}  # only class 1 (logit 2) is matched
    ((_, y_keep),) = data.train_pipeline(
        ds, tiny_cfg, 1, augment=False, drop_crowd=False
    ).as_numpy_iterator()
    assert set(np.unique(y_keep[..., 4])) == {0, 1, 2}


def test_eval_batches_keep_metrics_inputs(tiny_cfg):
    source = data.load(
        "shapes", "validation", num_examples=5, image_size=(40, 70), max_objects=3
    )
    examples = list(source.as_numpy_iterator())
    batches = list(
        data.eval_pipeline(source, tiny_cfg, batch_size=3).as_numpy_iterator()
    )
    assert [b["image"].shape[0] for b in batches] == [3, 2]
    for start, batch in zip((0, 3), batches):
        assert batch["image"].dtype == np.float32 and batch["image"].shape[1:] == (
            160,
            160,
            3,
        )
        m = batch["labels"].shape[1]
        for j, ex in enumerate(examples[start : start + len(batch["labels"])]):
            k = len(ex["labels"])
            assert batch["original_size"][j].tolist() == list(ex["image"].shape[:2])
            np.testing.assert_array_equal(batch["boxes"][j, :k], ex["boxes"])
            np.testing.assert_array_equal(batch["labels"][j, :k], ex["labels"])
            assert (batch["boxes"][j, k:] == 0).all() and (
                batch["labels"][j, k:] == -1
            ).all()
            assert not batch["difficult"][j].any() and not batch["is_crowd"][j].any()
            assert (
                batch["difficult"].shape
                == batch["is_crowd"].shape
                == (len(batch["labels"]), m)
            )
            assert batch["image_id"][j] == ex["image_id"]
            want = tf.image.resize(ex["image"].astype(np.float32), [160, 160]).numpy()
            np.testing.assert_allclose(batch["image"][j], want, atol=1e-3)


def test_pipeline_feeds_model_fit_for_ssd_tiny_on_shapes(tiny_cfg):
    source = data.load("shapes", "train", num_examples=16, image_size=(96, 128))
    train = data.train_pipeline(source, tiny_cfg, batch_size=8, seed=0)
    model = keras_ssd.build_ssd(tiny_cfg)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=keras_ssd.SSDLoss())
    history = model.fit(train, epochs=2, verbose=0)
    losses = history.history["loss"]
    assert len(losses) == 2 and all(np.isfinite(losses)) and losses[0] > 0


def test_y_true_stays_finite_for_tiny_degenerate_and_nan_boxes(tiny_cfg):
    ex = {
        "image": tf.fill([50, 70, 3], tf.constant(90, tf.uint8)),
        "boxes": tf.constant(
            [
                [0.2, 0.2, 0.2001, 0.9],  # far below one output pixel high
                [0.5, 0.5, 0.5, 0.5],  # no area
                [np.nan, 0.1, 0.5, 0.5],
                [0.3, 0.3, 0.8, 0.7],  # the one real object
            ]
        ),
        "labels": tf.constant([0, 1, 2, 1], tf.int32),
    }
    source = tf.data.Dataset.from_tensors(ex).repeat(40)
    for augment in (True, False):
        ds = data.train_pipeline(
            source, tiny_cfg, batch_size=8, augment=augment, seed=1
        )
        for _, y_true in ds.as_numpy_iterator():
            assert np.isfinite(y_true).all()
            assert set(np.unique(y_true[..., 4])) <= {
                0,
                2,
            }  # only the real object (class 1)
