"""Default-box to ground-truth matching (SSD paper, section 2.2 "Matching strategy")."""

import tensorflow as tf

from keras_ssd.ops import boxes as box_ops


def match(gt_boxes, anchors, iou_threshold=0.5):
    """Matches every default box to at most one ground-truth box.

    Two rules, as in the paper and Caffe's `MatchBBox`: every ground truth takes
    the default box it overlaps most (bipartite step, so no object is left
    without a positive), then every other default box with IoU >= `iou_threshold`
    to some ground truth takes its best one.

    Args:
        gt_boxes: float `[M, 4]` yxyx ground-truth boxes; M may be 0.
        anchors: float `[N, 4]` yxyx default boxes.
        iou_threshold: IoU at or above which a default box is matched.

    Returns:
        int32 `[N]`: index into `gt_boxes` of each default box's match, or -1.
    """
    gt_boxes = tf.convert_to_tensor(gt_boxes, tf.float32)
    anchors = tf.convert_to_tensor(anchors, tf.float32)
    num_gt = tf.shape(gt_boxes)[0]
    overlaps = box_ops.iou(gt_boxes, anchors)  # [M, N]
    # A zero row keeps argmax/max defined when M == 0; it never wins a match.
    padded = tf.concat([overlaps, tf.zeros_like(anchors[None, :, 0])], axis=0)
    best_gt = tf.argmax(padded, axis=0, output_type=tf.int32)  # [N]
    best_iou = tf.reduce_max(padded, axis=0)
    matched = tf.where(best_iou >= iou_threshold, best_gt, -1)

    # Bipartite step: each ground truth with any overlap claims its best anchor.
    best_anchor = tf.argmax(overlaps, axis=1, output_type=tf.int32)  # [M]
    has_overlap = tf.reduce_max(tf.concat([overlaps, tf.zeros_like(overlaps[:, :1])], 1), 1) > 0
    claimed = tf.boolean_mask(best_anchor, has_overlap)
    claimants = tf.boolean_mask(tf.range(num_gt, dtype=tf.int32), has_overlap)
    return tf.tensor_scatter_nd_update(matched, claimed[:, None], claimants)
