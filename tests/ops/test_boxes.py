import numpy as np
import tensorflow as tf

from keras_ssd.ops import boxes as box_ops


def test_corner_center_round_trip():
    corners = np.array([[0.1, 0.2, 0.5, 0.8], [0.0, 0.0, 1.0, 1.0]], np.float32)
    center = box_ops.corners_to_center(corners)
    np.testing.assert_allclose(center, [[0.3, 0.5, 0.4, 0.6], [0.5, 0.5, 1.0, 1.0]], atol=1e-6)
    np.testing.assert_allclose(box_ops.center_to_corners(center), corners, atol=1e-6)


def test_iou_hand_computed():
    a = [[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 1.0, 1.0]]
    b = [[0.25, 0.25, 0.75, 0.75], [0.0, 0.0, 0.5, 0.5], [0.6, 0.6, 0.7, 0.7], [0.2, 0.2, 0.2, 0.4]]
    # a0 vs b0: inter 0.25^2 = 0.0625, union 0.25 + 0.25 - 0.0625 = 0.4375 -> 1/7.
    expected = [[1 / 7, 1.0, 0.0, 0.0], [0.25, 0.25, 0.01, 0.0]]
    np.testing.assert_allclose(box_ops.iou(a, b), expected, atol=1e-6)


def test_encode_hand_computed():
    anchor = [[0.4, 0.4, 0.6, 0.6]]  # centre 0.5, size 0.2
    box = [[0.45, 0.3, 0.85, 0.7]]  # centre (0.65, 0.5), size (0.4, 0.4)
    # ty = 0.15 / 0.2 / 0.1 = 7.5; tx = 0; th = tw = log(2) / 0.2.
    expected = [[7.5, 0.0, np.log(2) / 0.2, np.log(2) / 0.2]]
    np.testing.assert_allclose(box_ops.encode(box, anchor), expected, rtol=1e-5, atol=1e-6)


def test_decode_inverts_encode_in_graph_mode():
    rng = np.random.default_rng(0)
    centres = rng.uniform(0.2, 0.8, (100, 2))
    sizes = rng.uniform(0.05, 0.4, (100, 2))
    boxes = np.concatenate([centres - sizes / 2, centres + sizes / 2], 1).astype(np.float32)
    anchors = np.roll(boxes, 1, axis=0) * 0.9 + 0.05

    @tf.function
    def round_trip(b, a):
        return box_ops.decode(box_ops.encode(b, a), a)

    np.testing.assert_allclose(round_trip(boxes, anchors), boxes, atol=1e-5)


def test_degenerate_and_huge_values_stay_finite():
    anchor = [[0.4, 0.4, 0.6, 0.6]]
    assert np.isfinite(box_ops.encode([[0.5, 0.5, 0.5, 0.5]], anchor)).all()
    assert np.isfinite(box_ops.decode([[0.0, 0.0, 1e4, 1e4]], anchor)).all()
