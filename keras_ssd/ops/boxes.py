"""Pure box functions: format conversion, IoU, SSD encoding and decoding.

Boxes are `[ymin, xmin, ymax, xmax]` (corner form, "yxyx") unless a name says
otherwise. The centre form `[cy, cx, h, w]` is private to this module. All
functions are TensorFlow ops that run eagerly, inside `tf.function` and inside
`tf.data.Dataset.map`; they broadcast over leading dimensions.
"""

import tensorflow as tf

_EPSILON = 1e-8


def _to_center(boxes):
    """yxyx `[..., 4]` -> centre form `(cy, cx, h, w)`, each `[...]`."""
    ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=-1)
    return (ymin + ymax) / 2.0, (xmin + xmax) / 2.0, ymax - ymin, xmax - xmin


def _from_center(cy, cx, h, w):
    """Centre form, each `[...]` -> yxyx `[..., 4]`."""
    return tf.stack([cy - h / 2.0, cx - w / 2.0, cy + h / 2.0, cx + w / 2.0], axis=-1)


def center_to_corners(boxes):
    """Converts `[..., 4]` boxes from `[cy, cx, h, w]` to `[ymin, xmin, ymax, xmax]`."""
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    return _from_center(*tf.unstack(boxes, axis=-1))


def corners_to_center(boxes):
    """Converts `[..., 4]` boxes from `[ymin, xmin, ymax, xmax]` to `[cy, cx, h, w]`.

    Written with slices (single-output ops), so a TFLite converter can keep
    every op of it in float32 by name.
    """
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    low, high = boxes[..., :2], boxes[..., 2:]
    return tf.concat([(low + high) / 2.0, high - low], axis=-1)


def area(boxes):
    """Area of yxyx boxes `[..., 4]` -> `[...]`; inverted boxes have area 0."""
    ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=-1)
    return tf.maximum(ymax - ymin, 0.0) * tf.maximum(xmax - xmin, 0.0)


def iou(boxes_a, boxes_b):
    """Pairwise intersection over union.

    Args:
        boxes_a: float `[M, 4]` yxyx boxes.
        boxes_b: float `[N, 4]` yxyx boxes.

    Returns:
        float32 `[M, N]`; 0 where the union is empty.
    """
    boxes_a = tf.convert_to_tensor(boxes_a, tf.float32)
    boxes_b = tf.convert_to_tensor(boxes_b, tf.float32)
    a = boxes_a[:, None, :]
    b = boxes_b[None, :, :]
    top_left = tf.maximum(a[..., :2], b[..., :2])
    bottom_right = tf.minimum(a[..., 2:], b[..., 2:])
    hw = tf.maximum(bottom_right - top_left, 0.0)
    intersection = hw[..., 0] * hw[..., 1]
    union = area(a) + area(b) - intersection
    return tf.math.divide_no_nan(intersection, union)


def encode(boxes, anchors, variances=(0.1, 0.1, 0.2, 0.2)):
    """Encodes yxyx boxes as SSD offsets `[ty, tx, th, tw]` against anchors.

    ty = (cy - cy_a) / h_a / v0, tx = (cx - cx_a) / w_a / v1,
    th = log(h / h_a) / v2,      tw = log(w / w_a) / v3.

    Args:
        boxes: float `[..., 4]` yxyx boxes (positive size).
        anchors: float `[..., 4]` yxyx default boxes, broadcastable to `boxes`.
        variances: the four encoding variances.

    Returns:
        float32 `[..., 4]` offsets. Degenerate boxes are floored at a tiny
        size so the result stays finite.
    """
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    anchors = tf.convert_to_tensor(anchors, tf.float32)
    cy, cx, h, w = _to_center(boxes)
    acy, acx, ah, aw = _to_center(anchors)
    v = tf.constant(variances, tf.float32)
    return tf.stack(
        [
            (cy - acy) / ah / v[0],
            (cx - acx) / aw / v[1],
            tf.math.log(tf.maximum(h, _EPSILON) / ah) / v[2],
            tf.math.log(tf.maximum(w, _EPSILON) / aw) / v[3],
        ],
        axis=-1,
    )


def decode(offsets, anchors, variances=(0.1, 0.1, 0.2, 0.2)):
    """Inverse of `encode`: offsets `[..., 4]` `[ty, tx, th, tw]` -> yxyx boxes `[..., 4]`.

    The size terms are clipped at log(1000 / 16) before the exponential, as
    torchvision does, so untrained heads cannot overflow to Inf.
    """
    offsets = tf.convert_to_tensor(offsets, tf.float32)
    anchors = tf.convert_to_tensor(anchors, tf.float32)
    acy, acx, ah, aw = _to_center(anchors)
    v = tf.constant(variances, tf.float32)
    ty, tx, th, tw = tf.unstack(offsets, axis=-1)
    max_log = tf.math.log(1000.0 / 16.0)
    cy = ty * v[0] * ah + acy
    cx = tx * v[1] * aw + acx
    h = tf.exp(tf.minimum(th * v[2], max_log)) * ah
    w = tf.exp(tf.minimum(tw * v[3], max_log)) * aw
    return _from_center(cy, cx, h, w)
