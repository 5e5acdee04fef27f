"""ONNX export: the Keras detector, post-processing included, as one `.onnx` file for ONNX Runtime.

The graph takes `images` uint8 `[B, S, S, 3]` RGB (0..255, already resized to
the network input; the batch B is dynamic, named "batch") and returns the
SavedModel's four outputs by name: `detection_boxes` float32 `[B, K, 4]`
normalised `[ymin, xmin, ymax, xmax]`, `detection_scores` float32 `[B, K]`,
`detection_classes` int32 `[B, K]` (0-based object class), `num_detections`
int32 `[B]`; entries past `num_detections` are zero, K = `max_detections`.

It is `keras_ssd.build_detector`'s model itself, traced as a `tf.function`
on uint8 images and converted by tf2onnx (opset `OPSET`, the newest tf2onnx
targets): the decoding, clipping, softmax and per-class top-k are the
decoder's own TensorFlow ops, mapped one to one. The one op tf2onnx cannot
map is the decoder's `CombinedNonMaxSuppression` (tf2onnx converts it only
when all classes share their boxes; the decoder gives each class its own
top-`pre_nms_top_k` candidates), so the converter leaves it as a placeholder
that `onnx_nms.replace_combined_nms` replaces with ONNX `NonMaxSuppression`,
`TopK` and gathers. Thresholds and limits are the decoder's, read from the
traced graph. The file has only standard ONNX ops.

The class names go into the model's `metadata_props` (`CLASS_NAMES_KEY`, the
label-map text: line k names class k) and beside the file as
`<stem>.labels.txt`. `quantize="int8"` writes the network quantised for ONNX
Runtime (`onnx_quantize`: QDQ, int8 weights per channel, uint8 activations,
pre- and post-processing float32).
"""

import importlib
import os
import sys
import time

import tensorflow as tf

from keras_ssd.detector import build_detector
from keras_ssd.export import labels, versioning
from keras_ssd.model import ssd_config_of
from keras_ssd.precision import with_precision
from keras_ssd.version import __version__

OPSET = 18
CLASS_NAMES_KEY = "class_names"
INPUT_NAME = "images"
QUANTIZATIONS = ("none", "int8")


def require(module):
    """Imports one of the `onnx` extra's modules, or says how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"ONNX export and inference need {module}: pip install 'keras_ssd[onnx]' ({error})"
        ) from error


def _name_batch_dimension(graph):
    """Names the converter's anonymous batch dimension "batch" on the inputs and outputs."""
    for value in list(graph.input) + list(graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"


def convert_to_onnx(model, *, opset=OPSET, verbose=True, **postprocess):
    """Converts an SSD model, with its post-processing, to an ONNX model.

    Args:
        model: an `SSD` model (`keras_ssd.build_ssd` or a loaded `.keras` file), in any
            precision: the file is converted from its float32 twin.
        opset: the ONNX opset (tf2onnx targets up to 18; NonMaxSuppression
            needs 11 or more).
        verbose: print progress to stderr (conversion takes seconds to a
            minute for SSD300).
        **postprocess: `build_detector` overrides (`score_threshold`,
            `nms_iou_threshold`, `pre_nms_top_k`, `max_detections`).

    Returns:
        An `onnx.ModelProto` that passes `onnx.checker.check_model`.

    Raises:
        ImportError: onnx or tf2onnx is not installed.
        ValueError: `model` is not an SSD model, or a bad override.
    """
    cfg = ssd_config_of(model, "convert_to_onnx")
    onnx, tf2onnx = require("onnx"), require("tf2onnx")
    model = with_precision(model, "float32")  # a model trained in bf16 converts from its float32 twin
    from keras_ssd.export import onnx_nms

    detector = build_detector(model, **postprocess)
    decoder = detector.get_layer("detection_decoder")
    size = cfg.image_size

    @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.uint8, name=INPUT_NAME)])
    def serve(images):
        return detector(tf.cast(images, tf.float32), training=False)

    start = time.perf_counter()
    if verbose:
        print(f"ONNX export: converting {model.name} with tf2onnx (opset {opset})", file=sys.stderr, flush=True)
    proto, _ = tf2onnx.convert.from_function(
        serve, input_signature=serve.input_signature, opset=opset,
        custom_ops={onnx_nms.OP_TYPE: onnx_nms.PLACEHOLDER_DOMAIN},
    )
    if onnx_nms.replace_combined_nms(proto) != 1:
        raise RuntimeError("the converted detector has no single CombinedNonMaxSuppression to replace")
    _name_batch_dimension(proto.graph)
    proto.graph.name = model.name
    proto.producer_name, proto.producer_version = "keras_ssd", __version__
    proto.doc_string = (
        f"SSD object detector ({size}x{size} RGB uint8 input, {cfg.num_classes} classes, per-class NMS "
        f"at IoU {decoder.iou_threshold}, score threshold {decoder.score_threshold}, up to "
        f"{decoder.max_detections} detections; boxes normalised [ymin, xmin, ymax, xmax])"
    )
    onnx.helper.set_model_props(proto, {CLASS_NAMES_KEY: labels.labels_text(labels.model_class_names(model))})
    onnx.checker.check_model(proto)
    if verbose:
        print(f"ONNX export: {len(proto.graph.node)} nodes in {time.perf_counter() - start:.1f} s",
              file=sys.stderr, flush=True)
    return proto


def export_onnx(model, path, *, quantize="none", calibration=None, opset=OPSET, overwrite=False, verbose=True,
                **postprocess):
    """Writes `convert_to_onnx(...)` to the `.onnx` file `path`, its class names to `<stem>.labels.txt`.

    Args:
        model, opset, verbose, **postprocess: as for `convert_to_onnx`.
        path, overwrite: the file, and whether an existing one may be
            replaced (as for `export_tflite`).
        quantize: "none" (float32) or "int8" (`onnx_quantize.quantize_onnx`).
        calibration: for int8, uint8 `[N, S, S, 3]` representative images
            (`keras_ssd.export.calibration_images` of training data).

    Returns:
        `path`.

    Raises:
        FileExistsError: `path` exists and `overwrite` is False.
        ValueError: `path` does not end in `.onnx`, an unknown `quantize`, int8
            without calibration images, or as `convert_to_onnx`.
    """
    path = os.fspath(path)
    if not path.endswith(".onnx"):
        raise ValueError(f"ONNX path must end in .onnx, got {path!r}")
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"ONNX quantize must be one of {QUANTIZATIONS}, got {quantize!r}")
    if (quantize == "int8") != (calibration is not None):
        raise ValueError("calibration images are needed for quantize='int8', and only for it")
    versioning.refuse_existing(path, overwrite)
    proto = convert_to_onnx(model, opset=opset, verbose=verbose, **postprocess)
    if quantize == "int8":
        from keras_ssd.export.onnx_quantize import quantize_onnx

        start = time.perf_counter()
        proto = quantize_onnx(proto, calibration)
        if verbose:
            print(f"ONNX export: int8 on {len(calibration)} calibration images in "
                  f"{time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    versioning.write_atomically(path, proto.SerializeToString())
    labels.write_labels(labels.labels_path_beside(path), labels.model_class_names(model))
    return path
