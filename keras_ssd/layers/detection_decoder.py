"""Detection post-processing: decode offsets, softmax, per-class NMS."""

import keras
import tensorflow as tf

from keras_ssd.layers.default_boxes import DefaultBoxes
from keras_ssd.ops import boxes as box_ops


@keras.saving.register_keras_serializable(package="keras_ssd")
class DetectionDecoder(keras.layers.Layer):
    """Turns `y_pred` into a fixed number of detections per image.

    Steps (paper section 3, "Inference"): decode offsets against the default
    boxes and clip to [0, 1]; softmax; per class keep the `pre_nms_top_k`
    highest-scoring boxes with score > `score_threshold`; NMS at
    `iou_threshold` per class; keep the `max_detections` best per image.

    Input: `y_pred` float `[B, N, 4 + num_classes + 1]`.
    Output: dict of
        `detection_boxes` float32 `[B, K, 4]` normalised yxyx,
        `detection_scores` float32 `[B, K]`,
        `detection_classes` int32 `[B, K]` (0-based object class),
        `num_detections` int32 `[B]`;
    entries past `num_detections` are zero padding. K = `max_detections`.

    Args:
        num_classes: object classes (background excluded).
        default_boxes: a `DefaultBoxes` layer or its config dict.
        variances: encoding variances.
        score_threshold, iou_threshold, pre_nms_top_k, max_detections: see above.
    """

    def __init__(
        self,
        num_classes,
        default_boxes,
        variances=(0.1, 0.1, 0.2, 0.2),
        score_threshold=0.01,
        iou_threshold=0.45,
        pre_nms_top_k=400,
        max_detections=200,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(default_boxes, dict):
            default_boxes = DefaultBoxes.from_config(default_boxes)
        self.num_classes = num_classes
        self.default_boxes = default_boxes
        self.variances = tuple(variances)
        self.score_threshold = score_threshold
        self.iou_threshold = iou_threshold
        self.pre_nms_top_k = pre_nms_top_k
        self.max_detections = max_detections
        self._anchors = default_boxes.boxes()

    def build(self, input_shape):
        self.default_boxes.build(input_shape)

    def call(self, y_pred):
        y_pred = tf.cast(y_pred, tf.float32)
        expected = (len(self._anchors), 4 + self.num_classes + 1)
        if tuple(y_pred.shape[1:]) != expected:
            raise ValueError(f"DetectionDecoder expects y_pred [B, {expected[0]}, {expected[1]}], "
                             f"got {y_pred.shape}")
        boxes = box_ops.decode(y_pred[..., :4], self._anchors[None], self.variances)
        boxes = tf.clip_by_value(boxes, 0.0, 1.0)
        scores = tf.nn.softmax(y_pred[..., 4:], axis=-1)[..., 1:]  # [B, N, C]
        top_k = min(self.pre_nms_top_k, len(self._anchors))
        top_scores, top_index = tf.math.top_k(tf.transpose(scores, [0, 2, 1]), top_k)  # [B, C, k]
        top_boxes = tf.gather(boxes, top_index, batch_dims=1)  # [B, C, k, 4]
        nms_boxes, nms_scores, nms_classes, valid = tf.image.combined_non_max_suppression(
            tf.transpose(top_boxes, [0, 2, 1, 3]),
            tf.transpose(top_scores, [0, 2, 1]),
            max_output_size_per_class=self.max_detections,
            max_total_size=self.max_detections,
            iou_threshold=self.iou_threshold,
            score_threshold=self.score_threshold,
            clip_boxes=False,
        )
        return {
            "detection_boxes": nms_boxes,
            "detection_scores": nms_scores,
            "detection_classes": tf.cast(nms_classes, tf.int32),
            "num_detections": valid,
        }

    def compute_output_spec(self, y_pred):
        batch, k = y_pred.shape[0], self.max_detections
        return {
            "detection_boxes": keras.KerasTensor((batch, k, 4), "float32"),
            "detection_scores": keras.KerasTensor((batch, k), "float32"),
            "detection_classes": keras.KerasTensor((batch, k), "int32"),
            "num_detections": keras.KerasTensor((batch,), "int32"),
        }

    def get_config(self):
        config = super().get_config()
        config.update(
            num_classes=self.num_classes,
            default_boxes=self.default_boxes.get_config(),
            variances=list(self.variances),
            score_threshold=self.score_threshold,
            iou_threshold=self.iou_threshold,
            pre_nms_top_k=self.pre_nms_top_k,
            max_detections=self.max_detections,
        )
        return config
