"""`TargetEncoder`: ground-truth boxes and labels -> the `y_true` SSDLoss trains on."""

import tensorflow as tf

from keras_ssd.layers.default_boxes import default_boxes
from keras_ssd.ops import boxes as box_ops
from keras_ssd.ops.matching import match


class TargetEncoder:
    """Matches ground truth to default boxes and encodes the targets.

    Runs in graph mode, so it belongs inside `tf.data.Dataset.map` (the model
    stays a pure function of the image, as in the TF Model Garden).

    Args:
        cfg: `SSDConfig` (default boxes, variances, match threshold).

    Call:
        boxes: float `[M, 4]` normalised yxyx ground truth (M may be 0).
        labels: int `[M]` 0-based object classes.
    Returns:
        y_true float32 `[N, 5]`: `[:, :4]` offsets `[ty, tx, th, tw]` (0 for
        background), `[:, 4]` class id (0 background, k + 1 for class k).
        Boxes with no area or a negative label are left out of matching.
    """

    def __init__(self, cfg):
        self.cfg = cfg
        self.anchors = tf.constant(default_boxes(cfg))

    @property
    def num_boxes(self):
        """N, the number of default boxes."""
        return int(self.anchors.shape[0])

    def __call__(self, boxes, labels):
        boxes = tf.reshape(tf.cast(boxes, tf.float32), [-1, 4])
        labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
        valid = (
            (boxes[:, 2] > boxes[:, 0])
            & (boxes[:, 3] > boxes[:, 1])
            & (labels >= 0)
            & tf.reduce_all(tf.math.is_finite(boxes), axis=1)
        )
        boxes = tf.boolean_mask(boxes, valid)
        labels = tf.boolean_mask(labels, valid)

        matched = match(boxes, self.anchors, self.cfg.match_iou_threshold)  # [N]
        positive = matched >= 0
        safe_index = tf.maximum(matched, 0)
        # With M == 0 there is nothing to gather: use a dummy box (never positive).
        gt_boxes = tf.gather(tf.concat([boxes, [[0.0, 0.0, 1.0, 1.0]]], 0), safe_index)
        gt_labels = tf.gather(tf.concat([labels, [0]], 0), safe_index)
        offsets = box_ops.encode(gt_boxes, self.anchors, self.cfg.variances)
        offsets = tf.where(positive[:, None], offsets, 0.0)
        class_ids = tf.where(positive, gt_labels + 1, 0)
        return tf.concat([offsets, tf.cast(class_ids, tf.float32)[:, None]], axis=1)
