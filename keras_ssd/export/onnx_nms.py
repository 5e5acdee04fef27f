"""TensorFlow's `CombinedNonMaxSuppression` with per-class boxes, as standard ONNX ops.

`DetectionDecoder` ends in `tf.image.combined_non_max_suppression` with
per-class boxes (each class's `pre_nms_top_k` candidates). tf2onnx maps that
op only when every class shares the same boxes, so `onnx.py` converts it as
a placeholder node and `replace_combined_nms` swaps the placeholder for this
graph, built with the `onnx.helper` API:

1. Boxes `[B, k, C, 4]` and scores `[B, k, C]` become `B * C` one-class
   problems (`[B * C, k, 4]`, `[B * C, 1, k]`) for ONNX `NonMaxSuppression`
   (yxyx corners, `center_point_box=0`): per class, candidates scoring above
   the score threshold, suppression above the IoU threshold, at most
   `max_output_size_per_class` kept, as the TensorFlow op does.
2. The survivors' scores are scattered into a `[B, C * k]` grid (-inf
   elsewhere) and `TopK` keeps the best `max_total_size` of each image over
   all classes, sorted by score.
3. Entries past the survivors are zero, as the TensorFlow op pads them;
   boxes are clipped to [0, 1] when the op's `clip_boxes` is set.

Outputs, as the TensorFlow op's: boxes float32 `[B, K, 4]` yxyx, scores
float32 `[B, K]`, classes float32 `[B, K]`, valid detections int32 `[B]`,
K = `max_total_size`.
"""

import numpy as np
from onnx import TensorProto, helper, numpy_helper

OP_TYPE = "CombinedNonMaxSuppression"
# The domain the converter tags the placeholder with (an ONNX custom-op domain).
PLACEHOLDER_DOMAIN = "keras_ssd.tensorflow"


class _Builder:
    """Collects nodes and constants under one name prefix."""

    def __init__(self, prefix):
        self.prefix, self.nodes, self.constants, self._count = prefix, [], [], 0

    def name(self, hint):
        self._count += 1
        return f"{self.prefix}/{hint}_{self._count}"

    def const(self, value, dtype):
        name = self.name("const")
        self.constants.append(numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def op(self, op_type, inputs, outputs=1, **attrs):
        names = [self.name(op_type) for _ in range(outputs)] if isinstance(outputs, int) else list(outputs)
        self.nodes.append(helper.make_node(op_type, inputs, names, name=self.name(op_type), **attrs))
        return names[0] if len(names) == 1 else names


def combined_nms_nodes(boxes, scores, outputs, *, max_per_class, max_total, iou_threshold, score_threshold,
                       clip_boxes, prefix="combined_nms"):
    """Nodes and constants computing `CombinedNonMaxSuppression` (per-class boxes, no per-class padding).

    Args:
        boxes: name of the float32 `[B, k, C, 4]` yxyx boxes (each class its own).
        scores: name of the float32 `[B, k, C]` scores.
        outputs: names for the four outputs (boxes `[B, K, 4]`, scores `[B, K]`,
            classes `[B, K]` float32, valid detections int32 `[B]`).
        max_per_class, max_total, iou_threshold, score_threshold, clip_boxes:
            the TensorFlow op's inputs and attribute of those names.
        prefix: name prefix of the new nodes and constants.

    Returns:
        `(nodes, initializers)`, in topological order.
    """
    b = _Builder(prefix)
    int64, float32 = np.int64, np.float32
    by_class_boxes = b.op("Transpose", [boxes], perm=[0, 2, 1, 3])  # [B, C, k, 4]
    by_class_scores = b.op("Transpose", [scores], perm=[0, 2, 1])  # [B, C, k]
    shape = b.op("Shape", [by_class_scores])
    batch = b.op("Slice", [shape, b.const([0], int64), b.const([1], int64)])
    k = b.op("Slice", [shape, b.const([2], int64), b.const([3], int64)])
    minus_one, one, four = b.const([-1], int64), b.const([1], int64), b.const([4], int64)

    nms_boxes = b.op("Reshape", [by_class_boxes, b.op("Concat", [minus_one, k, four], axis=0)])
    flat_scores = b.op("Reshape", [by_class_scores, b.op("Concat", [minus_one, k], axis=0)])  # [B * C, k]
    nms_scores = b.op("Unsqueeze", [flat_scores, b.const([1], int64)])  # [B * C, 1, k]
    selected = b.op("NonMaxSuppression", [
        nms_boxes, nms_scores, b.const(max_per_class, int64),
        b.const(iou_threshold, float32), b.const(score_threshold, float32),
    ], center_point_box=0)  # [M, 3]: (problem, 0, candidate)
    problem_candidate = b.op("Gather", [selected, b.const([0, 2], int64)], axis=1)
    selected_scores = b.op("GatherND", [flat_scores, problem_candidate])
    empty = b.op("ConstantOfShape", [b.op("Shape", [flat_scores])],
                 value=helper.make_tensor("value", TensorProto.FLOAT, [1], [-np.inf]))
    grid = b.op("ScatterND", [empty, problem_candidate, selected_scores])
    grid = b.op("Reshape", [grid, b.op("Concat", [batch, minus_one], axis=0)])  # [B, C * k]

    top = b.op("Min", [b.const([max_total], int64), b.op("Slice", [b.op("Shape", [grid]), one, b.const([2], int64)])])
    top_scores, top_index = b.op("TopK", [grid, top], outputs=2, axis=1, largest=1, sorted=1)
    valid = b.op("Not", [b.op("IsInf", [top_scores], detect_positive=0)])
    classes = b.op("Cast", [b.op("Div", [top_index, k])], to=TensorProto.FLOAT)
    all_boxes = b.op("Reshape", [by_class_boxes, b.op("Concat", [batch, minus_one, four], axis=0)])
    top_boxes = b.op("GatherND", [all_boxes, b.op("Unsqueeze", [top_index, b.const([2], int64)])], batch_dims=1)
    if clip_boxes:
        top_boxes = b.op("Clip", [top_boxes, b.const(0.0, float32), b.const(1.0, float32)])

    zero = b.const(0.0, float32)
    valid_float = b.op("Cast", [valid], to=TensorProto.FLOAT)
    top_boxes = b.op("Mul", [top_boxes, b.op("Unsqueeze", [valid_float, b.const([2], int64)])])
    top_scores = b.op("Where", [valid, top_scores, zero])
    classes = b.op("Where", [valid, classes, zero])
    # Fewer than max_total candidates in all: zero rows up to max_total, as TensorFlow pads.
    missing = b.op("Sub", [b.const([max_total], int64), top])
    zeros2 = b.const([0, 0, 0], int64)
    pads2 = b.op("Concat", [zeros2, missing], axis=0)
    pads3 = b.op("Concat", [b.const([0, 0, 0, 0], int64), missing, b.const([0], int64)], axis=0)
    b.op("Pad", [top_boxes, pads3], outputs=[outputs[0]])
    b.op("Pad", [top_scores, pads2], outputs=[outputs[1]])
    b.op("Pad", [classes, pads2], outputs=[outputs[2]])
    b.op("ReduceSum", [b.op("Cast", [valid], to=TensorProto.INT32), one], outputs=[outputs[3]], keepdims=0)
    return b.nodes, b.constants


def replace_combined_nms(model):
    """Replaces every placeholder `CombinedNonMaxSuppression` node of `model` with `combined_nms_nodes`.

    The placeholder is the TensorFlow node as the converter left it (domain
    `PLACEHOLDER_DOMAIN`): inputs boxes, scores and the constant
    `max_output_size_per_class`, `max_total_size`, `iou_threshold`,
    `score_threshold`; attributes `clip_boxes`, `pad_per_class`.

    Args:
        model: an `onnx.ModelProto`, changed in place.

    Returns:
        The number of nodes replaced.

    Raises:
        ValueError: a placeholder with non-constant settings or `pad_per_class`.
    """
    graph = model.graph
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    replaced, nodes = 0, []
    for node in graph.node:
        if node.op_type != OP_TYPE or node.domain != PLACEHOLDER_DOMAIN:
            nodes.append(node)
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        settings = node.input[2:6]
        if attrs.get("pad_per_class") or not all(name in constants for name in settings):
            raise ValueError(f"{node.name}: only constant settings without pad_per_class are supported")
        per_class, total, iou, score = (constants[name].item() for name in settings)
        new_nodes, new_constants = combined_nms_nodes(
            node.input[0], node.input[1], node.output, max_per_class=per_class, max_total=total,
            iou_threshold=iou, score_threshold=score, clip_boxes=bool(attrs.get("clip_boxes", 1)),
            prefix=node.name,
        )
        nodes.extend(new_nodes)
        graph.initializer.extend(new_constants)
        replaced += 1
    del graph.node[:]
    graph.node.extend(nodes)
    used = {name for node in graph.node for name in node.input}
    unused = [t for t in graph.initializer if t.name not in used]
    for tensor in unused:
        graph.initializer.remove(tensor)
    kept = [o for o in model.opset_import if o.domain != PLACEHOLDER_DOMAIN]
    del model.opset_import[:]
    model.opset_import.extend(kept)
    return replaced
