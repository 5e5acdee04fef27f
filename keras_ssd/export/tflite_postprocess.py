"""SSD post-processing in a `.tflite` file, built from `TFLite_Detection_PostProcess` ops.

The graph ends in TensorFlow Lite's `TFLite_Detection_PostProcess` custom op,
the op the TF Object Detection API's mobile SSDs end in. Every TFLite runtime
(ai-edge-litert, the Android and iOS libraries, MediaPipe) ships it as a native
kernel, so no Flex ops are needed, and its four float32 outputs (boxes
`[1, K, 4]` normalised yxyx, classes `[1, K]`, scores `[1, K]`, count `[1]`)
are what MediaPipe's `ObjectDetector` reads. It decodes offsets
`[ty, tx, th, tw]` against anchors `[yc, xc, h, w]` with scales
1 / variances = (10, 10, 5, 5), the encoding of `keras_ssd.ops.boxes`.

Two NMS modes (`use_regular_nms`):

* Regular (the default, the paper's and `DetectionDecoder`'s): NMS per class,
  then the best `max_detections` over all classes. LiteRT's kernel runs its
  own regular mode on several threads when the interpreter has more than one,
  and that path is wrong: its workers claim classes with a pre-incremented
  counter, so the class whose index equals the thread count is never
  searched, and with many candidates the process aborts with heap corruption.
  So the regular mode here is built as one op per class, each with a single
  class (the one class of an op is always searched by the first worker and no
  worker handles two), followed by a merge op: a fast-mode op (single-threaded
  in every LiteRT version) with IoU threshold 1.0 over the per-class survivors,
  which keeps the best `max_detections` without suppressing anything. Its
  anchors are the survivors' boxes, clipped to [0, 1], and its offsets zero,
  so the model's boxes are the merge op's own float output.
* Fast (`use_regular_nms=False`, the TF OD API's mobile default): one op,
  each box scored by its best class, NMS across classes. Its boxes are the
  op's unclipped decode; readers clip them to the image.

In both modes the outputs of the last op are the model's outputs, in the op's
order, and the post-processing runs in float32 on the dequantised network
outputs, also in int8 models: `FLOAT_SCOPE` names the ops that int8 conversion
keeps in float32 (the softmax, the per-class score columns, the merge's inputs).

The converter's MLIR pass (`tensorflow/compiler/mlir/lite/utils/nms_utils.cc`)
replaces a `tf.function` whose `experimental_implements` names the op with the
op itself, reading its attributes from that string; the function's body is a
placeholder and never runs in TFLite.
"""

import tensorflow as tf

from keras_ssd.ops import boxes as box_ops

OP_NAME = "TFLite_Detection_PostProcess"
# Name scope of the post-processing ops that int8 conversion keeps in float32.
FLOAT_SCOPE = "detection_float"


def _implements_signature(*, num_classes, max_detections, use_regular_nms, score_threshold,
                          iou_threshold, scales):
    attrs = [
        ("max_detections", "i", max_detections),
        ("max_classes_per_detection", "i", 1),
        ("detections_per_class", "i", max_detections),
        ("use_regular_nms", "b", "true" if use_regular_nms else "false"),
        ("nms_score_threshold", "f", float(score_threshold)),
        ("nms_iou_threshold", "f", float(iou_threshold)),
        ("y_scale", "f", float(scales[0])),
        ("x_scale", "f", float(scales[1])),
        ("h_scale", "f", float(scales[2])),
        ("w_scale", "f", float(scales[3])),
        ("num_classes", "i", num_classes),
    ]
    fields = [f'name: "{OP_NAME}"'] + [
        f'attr {{ key: "{key}" value {{ {kind}: {value} }} }}' for key, kind, value in attrs
    ]
    return " ".join(fields)


def _op(box_encodings, class_scores, anchors, **attrs):
    """One `TFLite_Detection_PostProcess` op; `attrs` as `_implements_signature`."""
    k = attrs["max_detections"]

    @tf.function(experimental_implements=_implements_signature(**attrs))
    def postprocess(box_encodings, class_scores, anchors):
        del box_encodings, class_scores, anchors  # read by the TFLite kernel only
        return tf.zeros([1, k, 4]), tf.zeros([1, k]), tf.zeros([1, k]), tf.zeros([1])

    return postprocess(box_encodings, class_scores, anchors)


def detection_postprocess(box_encodings, class_logits, decoder, use_regular_nms=True):
    """Marks the post-processing ops for the TFLite converter.

    Args:
        box_encodings: float32 `[1, N, 4]` offsets `[ty, tx, th, tw]`.
        class_logits: float32 `[1, N, num_classes + 1]` class logits,
            background at index 0; the softmax is part of the post-processing.
        decoder: the Keras detector's `DetectionDecoder`; the ops take its
            default boxes (as anchors `[yc, xc, h, w]`), variances, classes,
            `score_threshold` (must be > 0), `iou_threshold` and
            `max_detections`.
        use_regular_nms: per-class NMS (True) or the op's fast mode (False).

    Returns:
        In TFLite: `(boxes [1, K, 4]` normalised yxyx (clipped to [0, 1] in
        regular mode), `classes [1, K]` 0-based object class, `scores [1, K]`,
        `num_detections [1])`, all float32, K = `max_detections`. Run as
        TensorFlow (before conversion) it returns placeholder zeros.

    Raises:
        ValueError: a score threshold outside (0, 1).
    """
    if not 0.0 < decoder.score_threshold < 1.0:
        raise ValueError(
            f"TFLite export needs a score threshold in (0, 1), got {decoder.score_threshold}"
        )
    num_classes, k = decoder.num_classes, decoder.max_detections
    anchors = box_ops.corners_to_center(decoder.default_boxes.boxes())
    with tf.name_scope(FLOAT_SCOPE):
        class_scores = tf.nn.softmax(class_logits, axis=-1)
    common = dict(max_detections=k, score_threshold=decoder.score_threshold,
                  scales=[1.0 / v for v in decoder.variances])
    if not use_regular_nms:
        return _op(box_encodings, class_scores, anchors, num_classes=num_classes,
                   use_regular_nms=False, iou_threshold=decoder.iou_threshold, **common)
    survivors = []
    for k_class in range(num_classes):
        with tf.name_scope(FLOAT_SCOPE):  # a quantised slice would have to keep the softmax's scale
            one_class = tf.stack([class_scores[..., 0], class_scores[..., k_class + 1]], axis=-1)
        boxes, _, scores, _ = _op(box_encodings, one_class, anchors, num_classes=1,
                                  use_regular_nms=True, iou_threshold=decoder.iou_threshold, **common)
        survivors.append((boxes, scores, k_class))
    with tf.name_scope(FLOAT_SCOPE):
        boxes = tf.clip_by_value(tf.concat([b for b, _, _ in survivors], axis=1)[0], 0.0, 1.0)
        # Each survivor's score in its class's column: the merge op reads the class from it.
        scores = tf.concat(
            [s[..., None] * tf.one_hot(c + 1, num_classes + 1) for _, s, c in survivors], axis=1
        )
        anchors = box_ops.corners_to_center(boxes)
        offsets = tf.zeros_like(boxes)[None]
    # IoU threshold 1.0: the op suppresses only above it, so nothing is suppressed.
    return _op(offsets, scores, anchors, num_classes=num_classes, use_regular_nms=False,
               iou_threshold=1.0, **common)
