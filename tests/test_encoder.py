import numpy as np
import tensorflow as tf

import keras_ssd
from keras_ssd.ops import boxes as box_ops


def test_positives_carry_shifted_labels_and_decode_back(tiny_cfg):
    encoder = keras_ssd.TargetEncoder(tiny_cfg)
    gt = np.array([[0.1, 0.1, 0.5, 0.4], [0.5, 0.55, 0.9, 0.95]], np.float32)
    y_true = encoder(gt, np.array([0, 2])).numpy()
    assert y_true.shape == (encoder.num_boxes, 5) == (2390, 5)
    classes = y_true[:, 4]
    assert set(np.unique(classes)) == {0.0, 1.0, 3.0}
    anchors = keras_ssd.default_boxes(tiny_cfg)
    for label, box in zip((1.0, 3.0), gt):
        rows = classes == label
        decoded = box_ops.decode(y_true[rows, :4], anchors[rows], tiny_cfg.variances)
        np.testing.assert_allclose(decoded, np.tile(box, (rows.sum(), 1)), atol=1e-5)
        ious = box_ops.iou(box[None], anchors[rows]).numpy()[0]
        # Every positive passes the 0.5 rule except possibly the bipartite one.
        assert (ious >= 0.5).sum() >= rows.sum() - 1
    assert (y_true[classes == 0, :4] == 0).all()


def test_no_boxes_gives_all_background(tiny_cfg):
    y_true = keras_ssd.TargetEncoder(tiny_cfg)(np.zeros((0, 4), np.float32), np.zeros((0,), np.int32))
    np.testing.assert_array_equal(y_true, np.zeros((2390, 5)))


def test_runs_inside_dataset_map_with_ragged_box_counts(tiny_cfg):
    encoder = keras_ssd.TargetEncoder(tiny_cfg)
    boxes = tf.ragged.constant([[[0.1, 0.1, 0.6, 0.6]], [], [[0.2, 0.2, 0.3, 0.3], [0.0, 0.0, 1.0, 1.0]]],
                               ragged_rank=1, inner_shape=(4,))
    labels = tf.ragged.constant([[1], [], [0, 2]])
    ds = tf.data.Dataset.from_tensor_slices((boxes, labels)).map(
        lambda b, l: encoder(b, l), num_parallel_calls=2
    )
    counts = [int((y[:, 4] > 0).numpy().sum()) for y in ds]
    assert counts[0] > 0 and counts[1] == 0 and counts[2] > counts[0]


def test_degenerate_nan_and_negative_label_boxes_are_left_out(tiny_cfg):
    encoder = keras_ssd.TargetEncoder(tiny_cfg)
    gt = np.array([[0.5, 0.5, 0.5, 0.7], [np.nan, 0.1, 0.2, 0.2], [0.1, 0.1, 0.4, 0.4]], np.float32)
    y_true = encoder(gt, np.array([0, 1, -1])).numpy()
    assert np.isfinite(y_true).all()
    np.testing.assert_array_equal(y_true[:, 4], 0)
