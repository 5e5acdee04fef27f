import numpy as np
import tensorflow as tf

from keras_ssd.ops.matching import match

ANCHORS = np.array(
    [
        [0.0, 0.0, 0.5, 0.5],  # 0
        [0.0, 0.0, 0.4, 0.4],  # 1
        [0.5, 0.5, 1.0, 1.0],  # 2
        [0.6, 0.6, 1.0, 1.0],  # 3
        [0.0, 0.5, 0.5, 1.0],  # 4
    ],
    np.float32,
)


def test_threshold_and_bipartite_rules():
    gt = np.array(
        [
            [0.0, 0.0, 0.45, 0.45],  # IoU 0.81 with a0, 0.79 with a1 -> both >= 0.5
            [0.55, 0.55, 0.95, 0.95],  # IoU 0.64 with a2, 0.51... with a3
            [0.0, 0.7, 0.1, 0.8],  # IoU 0.04 with a4 only: bipartite step gives it a4
        ],
        np.float32,
    )
    np.testing.assert_array_equal(match(gt, ANCHORS), [0, 0, 1, 1, 2])


def test_bipartite_step_overrides_a_better_threshold_match():
    anchors = np.array([[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.45, 0.45]], np.float32)  # X, Y
    gt = np.array(
        [
            [0.0, 0.0, 0.5, 0.62],  # A: IoU 0.806 with X, 0.653 with Y -> best anchor X
            [0.0, 0.0, 0.46, 0.46],  # B: IoU 0.846 with X, 0.957 with Y
        ],
        np.float32,
    )
    # The threshold rule alone gives X -> B (0.846 > 0.806); A claims X as its best.
    np.testing.assert_array_equal(match(gt, anchors), [0, 1])


def test_no_ground_truth_gives_all_unmatched_in_graph_mode():
    fn = tf.function(match, input_signature=[tf.TensorSpec([None, 4]), tf.TensorSpec([None, 4])])
    np.testing.assert_array_equal(fn(np.zeros((0, 4), np.float32), ANCHORS), [-1] * 5)


def test_box_with_no_overlap_claims_nothing():
    gt = np.array([[0.45, 0.0, 0.5, 0.05]], np.float32)  # overlaps a0 and a1 only a little
    result = match(gt, ANCHORS).numpy()
    assert (result == 0).sum() == 1 and result[0] == 0  # best anchor a0 claimed
    gt_outside = np.array([[2.0, 2.0, 3.0, 3.0]], np.float32)
    np.testing.assert_array_equal(match(gt_outside, ANCHORS), [-1] * 5)
