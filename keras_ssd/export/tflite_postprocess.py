"""SSD post-processing in a `.tflite` file: the `TFLite_Detection_PostProcess` op.

Decision: the TFLite graph ends in TensorFlow Lite's `TFLite_Detection_PostProcess`
custom op, not in NMS built from builtin ops. Reasons:

* It is the standard: the TF Object Detection API's mobile SSDs end in it, and
  its four outputs (boxes `[1, K, 4]` yxyx, classes `[1, K]`, scores `[1, K]`,
  count `[1]`, all float32) are what the TFLite task library's
  `ObjectDetector`, MediaPipe and the Android/iOS samples read.
* It exactly fits this package: it decodes offsets `[ty, tx, th, tw]` against
  anchors `[yc, xc, h, w]` with scales (y, x, h, w) = 1 / variances
  = (10, 10, 5, 5), the encoding of `keras_ssd.ops.boxes`, and with
  `use_regular_nms=true` runs per-class NMS then keeps the best
  `max_detections` over all classes, as `DetectionDecoder` does. Its input
  scores include the background column 0, which it skips.
* It ships in every TFLite runtime (ai-edge-litert's default op resolver, the
  Android and iOS libraries) as a native kernel, so no Flex (TF Select) ops are
  needed; `tf.image.combined_non_max_suppression` has no builtin TFLite kernel
  and would need Flex, and a builtin-op NMS (NON_MAX_SUPPRESSION_V5 per class)
  would be slower, non-standard, and still not read by the task library.
* Full-integer quantisation keeps it in float: the converter dequantises its
  inputs, so int8 models keep float boxes and scores.

Costs, all measured by the parity tests against the Keras detector: the op
takes batch size 1 only; it ranks every candidate above the score threshold
(no `pre_nms_top_k` cut, which changes nothing above the cut's score); it runs
NMS on the unclipped decoded boxes (the Keras decoder clips before NMS), and
its size terms are not capped at log(1000/16). Boxes are clipped to [0, 1]
after the op so the outputs keep the Keras detector's range.

The converter's MLIR pass (`tensorflow/compiler/mlir/lite/utils/nms_utils.cc`)
replaces a `tf.function` whose `experimental_implements` names the op with
the op itself, reading its attributes from that string; the function's own
body is a placeholder and never runs in TFLite.
"""

import tensorflow as tf

from keras_ssd.ops import boxes as box_ops

OP_NAME = "TFLite_Detection_PostProcess"


def _implements_signature(decoder):
    scales = [1.0 / v for v in decoder.variances]
    attrs = [
        ("max_detections", "i", decoder.max_detections),
        ("max_classes_per_detection", "i", 1),
        ("detections_per_class", "i", decoder.max_detections),
        ("use_regular_nms", "b", "true"),
        ("nms_score_threshold", "f", float(decoder.score_threshold)),
        ("nms_iou_threshold", "f", float(decoder.iou_threshold)),
        ("y_scale", "f", scales[0]),
        ("x_scale", "f", scales[1]),
        ("h_scale", "f", scales[2]),
        ("w_scale", "f", scales[3]),
        ("num_classes", "i", decoder.num_classes),
    ]
    fields = [f'name: "{OP_NAME}"'] + [
        f'attr {{ key: "{key}" value {{ {kind}: {value} }} }}' for key, kind, value in attrs
    ]
    return " ".join(fields)


def detection_postprocess(box_encodings, class_scores, decoder):
    """Marks the `TFLite_Detection_PostProcess` op for the TFLite converter.

    Args:
        box_encodings: float32 `[1, N, 4]` offsets `[ty, tx, th, tw]`.
        class_scores: float32 `[1, N, num_classes + 1]` softmax scores,
            background at index 0.
        decoder: the Keras detector's `DetectionDecoder`; the op takes its
            default boxes (as anchors `[yc, xc, h, w]`), variances, classes,
            `score_threshold`, `iou_threshold` and `max_detections`, so the
            TFLite model is configured exactly as the Keras detector.

    Returns:
        In TFLite: `(boxes [1, K, 4]` normalised yxyx, unclipped,
        `classes [1, K]` 0-based object class, `scores [1, K]`,
        `num_detections [1])`, all float32, K = `max_detections`. Run as
        TensorFlow (before conversion) it returns zeros of those shapes.
    """
    k = decoder.max_detections
    anchors = box_ops.corners_to_center(decoder.default_boxes.boxes())

    @tf.function(experimental_implements=_implements_signature(decoder))
    def postprocess(box_encodings, class_scores, anchors):
        del box_encodings, class_scores, anchors  # read by the TFLite kernel only
        return tf.zeros([1, k, 4]), tf.zeros([1, k]), tf.zeros([1, k]), tf.zeros([1])

    return postprocess(box_encodings, class_scores, anchors)
